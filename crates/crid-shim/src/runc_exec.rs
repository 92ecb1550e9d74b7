//! Running the OCI runtime binary (runc or crun) from the shim.
//!
//! The shim is a subreaper and reaps every child on SIGCHLD (the
//! `containerd-shim` crate's reaper), so a plain `Child::wait` could lose
//! the runtime's exit status: [`ReaperSpawner`] takes it from the reaper's
//! exit notifications instead.

use async_trait::async_trait;
use containerd_shim::asynchronous::monitor::{monitor_subscribe, monitor_unsubscribe};
use containerd_shim::asynchronous::util::read_options;
use containerd_shim::monitor::{Subject, Topic};
use containerd_shim::protos::shim::oci::Options;
use runc::{Command, Runc, Spawner};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// containerd's runc shim keeps runtime state under this root, per namespace.
const DEFAULT_RUNTIME_ROOT: &str = "/run/containerd/runc";
/// Longest run of one runtime command; a hung runtime is killed after it.
const RUNTIME_COMMAND_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub struct ReaperSpawner;

async fn read_all(r: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let mut out = Vec::new();
    if let Some(mut r) = r {
        let _ = r.read_to_end(&mut out).await;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait]
impl Spawner for ReaperSpawner {
    async fn execute(&self, mut cmd: Command) -> runc::Result<(ExitStatus, u32, String, String)> {
        // Subscribed before the spawn: the exit cannot be missed.
        let mut sub = monitor_subscribe(Topic::Pid).await.map_err(|e| {
            runc::error::Error::Other(Box::new(std::io::Error::other(e.to_string())))
        })?;
        let result = async {
            let mut child = cmd
                .spawn()
                .map_err(runc::error::Error::ProcessSpawnFailed)?;
            let pid = child.id().unwrap_or_default();
            let (stdout, stderr) =
                tokio::join!(read_all(child.stdout.take()), read_all(child.stderr.take()));
            let waited = tokio::time::timeout(RUNTIME_COMMAND_LIMIT, async {
                while let Some(e) = sub.rx.recv().await {
                    if matches!(e.subject, Subject::Pid(p) if p == pid as i32) {
                        return Some(e.exit_code);
                    }
                }
                None
            })
            .await;
            let code = match waited {
                Ok(Some(code)) => code,
                _ => {
                    let _ = child.start_kill();
                    return Err(runc::error::Error::Other(Box::new(std::io::Error::other(
                        format!("runtime command (pid {pid}) did not finish"),
                    ))));
                }
            };
            Ok((ExitStatus::from_raw(code << 8), pid, stdout, stderr))
        }
        .await;
        let _ = monitor_unsubscribe(sub.id).await;
        result
    }
}

/// The runtime client for a container, from its runc options.
pub fn runtime(namespace: &str, opts: &Options) -> runc::Result<Runc> {
    let root = if opts.root.is_empty() {
        PathBuf::from(DEFAULT_RUNTIME_ROOT)
    } else {
        PathBuf::from(&opts.root)
    };
    let binary = if opts.binary_name.is_empty() {
        "runc"
    } else {
        opts.binary_name.as_str()
    };
    let mut global = runc::options::GlobalOpts::new()
        .command(binary)
        .root(root.join(namespace))
        .systemd_cgroup(opts.systemd_cgroup);
    global.custom_spawner(Arc::new(ReaperSpawner));
    global.build()
}

/// After the shim died: force-delete the container from the runtime and
/// unmount its rootfs. Best effort, as containerd expects.
pub async fn force_delete(namespace: &str, id: &str, bundle: &Path) {
    let opts = read_options(bundle).await.unwrap_or_default();
    if let Ok(rt) = runtime(namespace, &opts) {
        let del = runc::options::DeleteOpts::new().force(true);
        if let Err(e) = rt.delete(id, Some(&del)).await {
            log::warn!("runtime delete --force {id}: {e}");
        }
    }
    crate::task::unmount_rootfs(bundle);
}
