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
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
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

/// The runtime binary and its global flags for a container, from its runc
/// options: shared by the `runc` crate's client and [`ExecCommand`].
struct RuntimeFlags {
    binary: String,
    root: PathBuf,
    systemd_cgroup: bool,
}

impl RuntimeFlags {
    fn of(namespace: &str, opts: &Options) -> RuntimeFlags {
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
        RuntimeFlags {
            binary: binary.to_string(),
            root: root.join(namespace),
            systemd_cgroup: opts.systemd_cgroup,
        }
    }
}

/// The runtime client for a container, from its runc options.
pub fn runtime(namespace: &str, opts: &Options) -> runc::Result<Runc> {
    let flags = RuntimeFlags::of(namespace, opts);
    let mut global = runc::options::GlobalOpts::new()
        .command(&flags.binary)
        .root(flags.root)
        .systemd_cgroup(flags.systemd_cgroup);
    global.custom_spawner(Arc::new(ReaperSpawner));
    global.build()
}

/// `<runtime> exec` for a container, run by the shim itself rather than by
/// the `runc` crate: the crate's `exec` takes the process as an `oci-spec`
/// `Process`, and reading containerd's JSON into that type links a regex
/// engine (its `execCPUAffinity` check), ~0.5 MB of code in every shim.
/// The shim passes containerd's JSON through to the runtime untouched, as
/// containerd's own runc shim does.
pub struct ExecCommand {
    flags: RuntimeFlags,
}

impl ExecCommand {
    pub fn new(namespace: &str, opts: &Options) -> ExecCommand {
        ExecCommand {
            flags: RuntimeFlags::of(namespace, opts),
        }
    }

    /// Start `process` (a runtime-spec `Process`, JSON) in container `id`
    /// whose bundle is `bundle`, detached: its pid goes to `pid_file`, its
    /// terminal master (if any) to `console_socket`, its stdio comes from
    /// `io`.
    pub async fn run(
        &self,
        id: &str,
        bundle: &Path,
        process: &[u8],
        pid_file: &Path,
        console_socket: Option<&Path>,
        io: &dyn runc::Io,
    ) -> runc::Result<()> {
        let spec =
            process_file(bundle, process).map_err(runc::error::Error::SpecFileCreationFailed)?;
        let mut cmd = runc::Command::new(&self.flags.binary);
        cmd.arg("--root").arg(&self.flags.root);
        if self.flags.systemd_cgroup {
            cmd.arg("--systemd-cgroup");
        }
        cmd.args(["exec", "--detach", "--process"])
            .arg(spec.path())
            .arg("--pid-file")
            .arg(pid_file);
        if let Some(socket) = console_socket {
            cmd.arg("--console-socket").arg(socket);
        }
        cmd.arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Set only when systemd runs a service; it changes runc's ways.
            .env_remove("NOTIFY_SOCKET");
        io.set(&mut cmd)
            .await
            .map_err(|e| runc::error::Error::IoSet(e.to_string()))?;
        let (status, _pid, stdout, stderr) = ReaperSpawner.execute(cmd).await?;
        if !status.success() {
            return Err(runc::error::Error::CommandFailed {
                status,
                stdout,
                stderr,
            });
        }
        Ok(())
    }
}

/// A temporary file in the container's bundle holding an exec's process
/// JSON, removed when dropped (after the runtime read it).
fn process_file(bundle: &Path, process: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("exec-process-")
        .suffix(".json")
        .tempfile_in(bundle)?;
    file.write_all(process)?;
    file.flush()?;
    Ok(file)
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
