//! The shim process's lifecycle, as containerd drives it (runtime v2):
//! - `start`: in the container's bundle; print the address of the pod's
//!   shim, spawning it unless it already serves;
//! - `delete`: clean up after a dead shim (print a `DeleteResponse`);
//! - no action: serve the task API on `-socket` until shut down.
//!
//! `start` speaks the start protocol of the containerd that runs it
//! (`bootstrap`): containerd 2.3+ writes `BootstrapParams` on stdin and
//! gets a `BootstrapResult` (version 3, task API `containerd.task.v3.Task`,
//! the socket in the params' `socket_dir`); containerd 1.6 writes nothing
//! or the runtime options and gets the plain ttrpc address it reads as
//! task API `containerd.task.v2.Task`. The v3 task messages are
//! wire-compatible with v2, so the one service is registered under both
//! names. Either way the bundle's `address` file holds the plain address,
//! which `delete` reads.
//!
//! The `containerd-shim` crate's own entry point (`asynchronous::run`)
//! answers older daemons with a JSON reply (version 3) that containerd 1.6
//! cannot read; its parts (flags, spawn, publisher, reaper notifications,
//! generated service, bootstrap messages) are used here instead.

mod bootstrap;

use crate::service::TaskService;
use crate::task::Tasks;
use bootstrap::{read_start_input, StartProtocol};
use containerd_shim::asynchronous::monitor::monitor_notify_by_pid;
use containerd_shim::asynchronous::{spawn, ExitSignal};
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim_async::{create_task, Task};
use containerd_shim::protos::ttrpc::r#async::{transport::Listener, Server};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Flags, StartOpts};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

/// The annotation crid (and containerd's CRI) put on every container of a
/// pod: the containers of one pod share one shim process.
pub const ANN_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// Exit status reported for a task whose shim died (128 + SIGKILL).
const KILLED_STATUS: u32 = 137;

/// The task service names containerd versions call.
const TASK_SERVICE_V3: &str = "containerd.task.v3.Task";
const TASK_SERVICE_V2: &str = "containerd.task.v2.Task";

pub type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Which shim serves the container whose bundle is `bundle`: its pod's
/// sandbox id, else its own id.
pub fn grouping_of(bundle: &Path, id: &str) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|spec| {
            spec.get("annotations")?
                .get(ANN_SANDBOX_ID)?
                .as_str()
                .map(str::to_string)
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_string())
}

fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

pub async fn main(flags: Flags) -> Result<(), AnyError> {
    match flags.action.as_str() {
        "start" => start(flags).await,
        "delete" => delete(flags).await,
        _ => serve(flags).await,
    }
}

/// glibc reads its malloc tunables from this variable at process start.
const GLIBC_TUNABLES: &str = "GLIBC_TUNABLES";

/// The malloc tunables the serving shim starts with: no per-thread cache.
/// glibc's tcache keeps up to 7 freed chunks of each small size for reuse;
/// in a shim, which mostly waits, those stay resident and split the heap
/// (~36 KiB of a one-container shim's 160 KiB heap). mallopt cannot turn it
/// off, so the variable is set for the spawned shim; the runtime commands
/// it runs inherit it, and containers get the environment of their spec.
/// A setting containerd's environment already has is kept first.
fn serving_malloc_tunables() -> String {
    const NO_TCACHE: &str = "glibc.malloc.tcache_count=0";
    match std::env::var(GLIBC_TUNABLES) {
        Ok(t) if !t.is_empty() => format!("{t}:{NO_TCACHE}"),
        _ => NO_TCACHE.to_string(),
    }
}

/// `start`: print the pod's shim address, spawning the shim if needed.
/// On success nothing else may reach stdout or stderr: containerd (1.6
/// and 2.x) reads both together as the reply.
async fn start(flags: Flags) -> Result<(), AnyError> {
    let protocol = StartProtocol::of(&read_start_input(), &flags.id, &flags.namespace);
    let grouping = grouping_of(Path::new("."), &flags.id);
    let opts = StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address: flags.address.clone(),
        ttrpc_address: protocol
            .ttrpc_address()
            .unwrap_or_else(|| std::env::var("TTRPC_ADDRESS").unwrap_or_default()),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        socket_dir: protocol.socket_dir(),
        ..Default::default()
    };
    let address = opts.socket_address(&grouping);
    // The pod's shim already serves: reuse it.
    let address = if UnixStream::connect(socket_path(&address)).is_ok() {
        address
    } else {
        let tunables = serving_malloc_tunables();
        spawn(opts, &grouping, vec![(GLIBC_TUNABLES, tunables.as_str())]).await?
    };
    std::fs::write("address", &address)?;
    let mut out = std::io::stdout();
    out.write_all(&protocol.reply(&address)?)?;
    out.flush()?;
    Ok(())
}

/// `delete`: the shim serving this container is gone; remove what it left.
async fn delete(flags: Flags) -> Result<(), AnyError> {
    let reaper = tokio::spawn(reap_children());
    let bundle = std::env::current_dir()?;
    crate::runc_exec::force_delete(&flags.namespace, &flags.id, &bundle).await;
    reaper.abort();
    // containerd also runs `delete` after a task of a live pod shim is
    // gone: the socket goes only when nothing answers on it.
    if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
        let path = socket_path(address.trim());
        if UnixStream::connect(path).is_err() {
            let _ = std::fs::remove_file(path);
        }
    }
    let mut resp = containerd_shim::protos::api::DeleteResponse::new();
    resp.exit_status = KILLED_STATUS;
    resp.exited_at = Some(containerd_shim::util::timestamp()?).into();
    let mut out = std::io::stdout();
    out.write_all(&resp.write_to_bytes()?)?;
    out.flush()?;
    Ok(())
}

fn listen(socket: &str) -> std::io::Result<UnixListener> {
    let path = Path::new(socket_path(socket));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = match UnixListener::bind(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{} is served by another shim", path.display()),
                ));
            }
            // A stale socket of a dead shim.
            std::fs::remove_file(path)?;
            UnixListener::bind(path)
        }
        r => r,
    }?;
    // Only containerd (root) talks to the shim.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serve the task API until containerd shuts the shim down.
async fn serve(flags: Flags) -> Result<(), AnyError> {
    if flags.socket.is_empty() {
        return Err("-socket is required".into());
    }
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) on this process only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    containerd_shim::logger::init(flags.debug, "info", &flags.namespace, &flags.id)?;
    tokio::spawn(reap_children());
    let publisher = RemotePublisher::new(std::env::var("TTRPC_ADDRESS")?).await?;
    let exit = Arc::new(ExitSignal::default());
    let tasks = Tasks::new(flags.namespace.clone(), publisher, exit.clone());
    tasks.watch_exits().await;
    let service: Arc<dyn Task + Send + Sync> = Arc::new(TaskService::new(tasks));
    let mut services = create_task(service.clone());
    if let Some(v2) = create_task(service).remove(TASK_SERVICE_V3) {
        services.insert(TASK_SERVICE_V2.to_string(), v2);
    }
    let listener = Listener::try_from(listen(&flags.socket)?)?;
    let mut server = Server::new()
        .add_listener(listener)
        .register_service(services);
    server.start().await?;
    // Started: stdout (the pipe `start` reads) becomes stderr.
    // SAFETY: dup2 of this process's standard fds.
    unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
    exit.wait().await;
    let _ = server.shutdown().await;
    let _ = std::fs::remove_file(socket_path(&flags.socket));
    Ok(())
}

/// Reap every child on SIGCHLD (the shim is a subreaper: container
/// processes are its children) and report exits to the crate's monitor,
/// where `task` and `runc_exec` subscribe.
async fn reap_children() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut sigchld) = signal(SignalKind::child()) else {
        log::error!("cannot watch SIGCHLD");
        return;
    };
    loop {
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            if let Err(e) = monitor_notify_by_pid(pid.as_raw(), code).await {
                log::error!("exit of {pid}: {e}");
            }
        }
        if sigchld.recv().await.is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_of_a_pod_share_the_sandbox_id_grouping() {
        let dir = std::env::temp_dir().join(format!("crid-shim-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            br#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .unwrap();
        assert_eq!(grouping_of(&dir, "c1"), "pod1");
        std::fs::write(dir.join("config.json"), br#"{"annotations":{}}"#).unwrap();
        assert_eq!(grouping_of(&dir, "c1"), "c1");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(grouping_of(&dir, "c2"), "c2");
    }
}
