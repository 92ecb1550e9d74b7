//! An image's /etc/passwd and /etc/group, which a container's spec needs to
//! resolve its user and supplementary groups. They are read straight from
//! the snapshot directories and cached by the image's chain id: a layer stack
//! cannot change, and a new container's writable layer starts empty. With the
//! files in memory, CreateContainer can write the container record before
//! preparing its rootfs, so the snapshot never needs a creation lease.

use crate::containerd::Mount;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Entries kept before the cache starts over (one per image in use).
const MAX_IMAGES: usize = 256;

/// The user database files of an image; `None` when the image has none.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImageUserFiles {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

impl ImageUserFiles {
    /// Read both files from the directories behind a rootfs's mounts.
    pub fn read(rootfs: &[Mount]) -> Self {
        ImageUserFiles {
            passwd: read_rootfs_file(rootfs, "etc/passwd"),
            group: read_rootfs_file(rootfs, "etc/group"),
        }
    }
}

/// Chain id of an image's top layer → its user files.
#[derive(Default)]
pub struct UserFilesCache(Mutex<HashMap<String, Arc<ImageUserFiles>>>);

impl UserFilesCache {
    pub fn get(&self, chain_id: &str) -> Option<Arc<ImageUserFiles>> {
        self.0.lock().unwrap().get(chain_id).cloned()
    }

    pub fn insert(&self, chain_id: &str, files: Arc<ImageUserFiles>) {
        let mut map = self.0.lock().unwrap();
        if map.len() >= MAX_IMAGES {
            map.clear();
        }
        map.insert(chain_id.to_string(), files);
    }
}

/// Read a small file of an image rootfs straight from the snapshot's
/// directories (upper first, then each lower), without mounting anything.
/// Whiteouts (0/0 character devices) hide the file.
fn read_rootfs_file(mounts: &[Mount], rel: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let mut dirs: Vec<PathBuf> = vec![];
    for m in mounts {
        match m.r#type.as_str() {
            "bind" => dirs.push(PathBuf::from(&m.source)),
            "overlay" => {
                for opt in &m.options {
                    if let Some(up) = opt.strip_prefix("upperdir=") {
                        dirs.insert(0, PathBuf::from(up));
                    } else if let Some(lower) = opt.strip_prefix("lowerdir=") {
                        dirs.extend(lower.split(':').map(PathBuf::from));
                    }
                }
            }
            _ => {}
        }
    }
    for d in dirs {
        let p = d.join(rel);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_char_device() => return None,
            Ok(m) if m.is_file() && m.len() <= 1 << 20 => return std::fs::read_to_string(&p).ok(),
            Ok(_) => return None,
            Err(_) => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(upper: &std::path::Path, lowers: &[&std::path::Path]) -> Mount {
        let lowers: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("upperdir={}", upper.display()),
                format!("lowerdir={}", lowers.join(":")),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn files_come_from_the_topmost_layer_that_has_them() {
        let t = tempfile::tempdir().unwrap();
        let (upper, top, base) = (t.path().join("u"), t.path().join("l1"), t.path().join("l0"));
        for d in [&upper, &top, &base] {
            std::fs::create_dir_all(d.join("etc")).unwrap();
        }
        std::fs::write(base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(base.join("etc/group"), "root:x:0:\n").unwrap();
        std::fs::write(top.join("etc/passwd"), "app:x:1000:1000::/:/bin/sh\n").unwrap();
        let files = ImageUserFiles::read(&[overlay(&upper, &[&top, &base])]);
        assert_eq!(
            files.passwd.as_deref(),
            Some("app:x:1000:1000::/:/bin/sh\n")
        );
        assert_eq!(files.group.as_deref(), Some("root:x:0:\n"));
    }

    #[test]
    fn an_image_without_the_files_has_none() {
        let t = tempfile::tempdir().unwrap();
        let files = ImageUserFiles::read(&[overlay(&t.path().join("u"), &[t.path()])]);
        assert_eq!(files, ImageUserFiles::default());
    }

    #[test]
    fn the_cache_starts_over_when_full() {
        let cache = UserFilesCache::default();
        for i in 0..MAX_IMAGES {
            cache.insert(&format!("sha256:{i}"), Arc::default());
        }
        assert!(cache.get("sha256:0").is_some());
        cache.insert("sha256:new", Arc::default());
        assert!(cache.get("sha256:0").is_none());
        assert!(cache.get("sha256:new").is_some());
    }
}
