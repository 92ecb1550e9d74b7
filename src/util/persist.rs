//! Small files written atomically (temp file + rename), so state that must
//! survive a crid restart is never half-written. There is no fsync: a crid
//! crash or restart keeps the page cache, and what a machine crash would lose
//! (pods, netns, CNI allocations) does not outlive the crash either — the
//! same trade libcni makes for its result cache.

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::io::Write;
use std::path::Path;

/// Replace `path` atomically: readers see the old or the new content.
pub fn replace_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::internal(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    // A unique temp name: concurrent writers of one file must not share it.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}.{seq}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
    f.write_all(data)
        .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("rename to {}", path.display()), e)
    })
}

/// `value` as JSON, atomically (see `replace_file`).
pub fn replace_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    replace_file(path, &encode(path, value)?)
}

fn encode<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| Error::internal(format!("encode {}: {e}", path.display())))
}

/// `None` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| Error::internal(format!("decode {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// Remove a directory tree crid owns, without following a symlink at `path`.
pub fn remove_dir_all_nofollow(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("stat {}", path.display()), e)),
        Ok(m) if m.file_type().is_symlink() || m.is_file() => std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("remove {}", path.display()), e)),
        // std's remove_dir_all does not follow symlinks inside the tree.
        Ok(_) => std::fs::remove_dir_all(path)
            .map_err(|e| Error::io(format!("remove {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), None);
        replace_json(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), Some(vec![1, 2]));
    }

    #[test]
    fn remove_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        remove_dir_all_nofollow(&link).unwrap();
        assert!(outside.join("keep").exists());
        assert!(!link.exists());
    }
}
