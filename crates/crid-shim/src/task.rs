//! The containers and exec processes one shim serves, and their lifecycle:
//! create, start, exec, kill, wait, delete, and the exits the reaper reports
//! (turned into TaskExit events exactly as containerd's runc shim sends
//! them: `id` is the container id for the init process, the exec id for an
//! exec).
//!
//! Locks: the map of containers and each process's state are std mutexes,
//! never held across an await; a per-container async lock orders the
//! runtime calls of one container.

use crate::any::Named;
use crate::runc_exec;
use crate::stdio::{ConsoleSocket, ProcessIo};
use containerd_shim::asynchronous::monitor::monitor_subscribe;
use containerd_shim::asynchronous::util::{mount_rootfs, write_options};
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::monitor::{Subject, Topic};
use containerd_shim::protos::api::{self, Status};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim::oci::Options;
use containerd_shim::protos::shim_async::Events;
use containerd_shim::protos::topics;
use containerd_shim::protos::ttrpc::r#async::TtrpcContext;
use containerd_shim::publisher::RemotePublisher;
use runc::Runc;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Exits of pids not (yet) known as a container's process: a process that
/// ended before its pid was read, or the runtime's own commands. Bounded.
const PARKED_EXITS: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Runtime(String),
}

pub type Result<T> = std::result::Result<T, TaskError>;

fn runtime_err(what: &str) -> impl Fn(runc::error::Error) -> TaskError + '_ {
    move |e| TaskError::Runtime(format!("{what}: {e}"))
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> TaskError + '_ {
    move |e| TaskError::Runtime(format!("{what}: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Created,
    Running,
    Stopped,
}

/// What `State`, `Wait` and `Delete` report of a process.
#[derive(Debug, Clone)]
pub struct ProcStatus {
    pub pid: u32,
    pub state: ProcState,
    pub exit_status: u32,
    pub exited_at: Option<Timestamp>,
}

/// A container's init process or an exec.
pub struct Process {
    /// The exec id; empty for the init process.
    pub exec_id: String,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub io: Arc<ProcessIo>,
    status: Mutex<ProcStatus>,
    /// Becomes true once the exit is recorded and published.
    exited: watch::Sender<bool>,
    /// An exec's process spec (runtime-spec `Process`, JSON as containerd
    /// sent it).
    spec: Option<Vec<u8>>,
}

impl Process {
    fn new(
        exec_id: &str,
        (stdin, stdout, stderr): (&str, &str, &str),
        io: ProcessIo,
        spec: Option<Vec<u8>>,
    ) -> Process {
        Process {
            exec_id: exec_id.to_string(),
            stdin: stdin.to_string(),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
            io: Arc::new(io),
            status: Mutex::new(ProcStatus {
                pid: 0,
                state: ProcState::Created,
                exit_status: 0,
                exited_at: None,
            }),
            exited: watch::channel(false).0,
            spec,
        }
    }

    pub fn status(&self) -> ProcStatus {
        self.status.lock().unwrap().clone()
    }

    fn set_running(&self, pid: u32) {
        let mut s = self.status.lock().unwrap();
        s.pid = pid;
        if s.state == ProcState::Created {
            s.state = ProcState::Running;
        }
    }

    /// Wait until the exit has been recorded and published.
    pub async fn wait(&self) -> ProcStatus {
        let mut rx = self.exited.subscribe();
        let _ = rx.wait_for(|done| *done).await;
        self.status()
    }
}

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    runc: Runc,
    /// `<runtime> exec` for this container.
    exec_command: runc_exec::ExecCommand,
    /// Who the stdio of its processes belongs to: the root of its user
    /// namespace, from the runc options' `io_uid`/`io_gid` (none: the
    /// host's root).
    io_owner: Option<(u32, u32)>,
    pub init: Arc<Process>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    /// Orders this container's runtime calls.
    op: tokio::sync::Mutex<()>,
}

impl Container {
    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>> {
        if exec_id.is_empty() {
            return Ok(self.init.clone());
        }
        self.execs
            .lock()
            .unwrap()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| TaskError::NotFound(format!("exec {exec_id} of {}", self.id)))
    }
}

struct Inner {
    namespace: String,
    publisher: RemotePublisher,
    exit: Arc<ExitSignal>,
    containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Also serialises "find the process of a pid" against "record a pid".
    parked: Mutex<VecDeque<(i32, i32)>>,
}

/// The shim's containers; cheap to clone.
#[derive(Clone)]
pub struct Tasks(Arc<Inner>);

/// The create request, without the transport.
pub struct CreateSpec<'a> {
    pub id: &'a str,
    pub bundle: &'a str,
    pub rootfs: &'a [api::Mount],
    pub terminal: bool,
    pub stdio: (&'a str, &'a str, &'a str),
    pub options: Option<&'a [u8]>,
}

/// Unmount what create mounted on `<bundle>/rootfs`. Best effort.
pub fn unmount_rootfs(bundle: &Path) {
    let rootfs = bundle.join("rootfs");
    // Lazy, and again until nothing is left (stacked mounts).
    for _ in 0..8 {
        if nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

fn now() -> Timestamp {
    containerd_shim::util::timestamp().unwrap_or_default()
}

impl Tasks {
    pub fn new(namespace: String, publisher: RemotePublisher, exit: Arc<ExitSignal>) -> Tasks {
        Tasks(Arc::new(Inner {
            namespace,
            publisher,
            exit,
            containers: Mutex::new(HashMap::new()),
            parked: Mutex::new(VecDeque::new()),
        }))
    }

    pub fn get(&self, id: &str) -> Result<Arc<Container>> {
        self.0
            .containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| TaskError::NotFound(format!("container {id}")))
    }

    /// Queue `event` for containerd (the publisher's queue retries and
    /// keeps the order). Packed by [`crate::any::pack`], not by the
    /// publisher's own `publish`, which builds reflection descriptors.
    async fn publish<E: Named>(&self, topic: &str, event: E) {
        let mut envelope = Envelope::new();
        envelope.topic = topic.to_string();
        envelope.namespace = self.0.namespace.clone();
        envelope.timestamp = Some(now()).into();
        match crate::any::pack(&event) {
            Ok(any) => envelope.event = Some(any).into(),
            Err(e) => {
                log::warn!("publish {topic}: {e}");
                return;
            }
        }
        let mut req = ForwardRequest::new();
        req.envelope = Some(envelope).into();
        // The publisher's Events::forward only queues the envelope.
        if let Err(e) = self
            .0
            .publisher
            .forward(&TtrpcContext::default(), req)
            .await
        {
            log::warn!("publish {topic}: {e}");
        }
    }

    /// Follow the reaper: every exit of a known process is recorded.
    pub async fn watch_exits(&self) {
        let mut sub = match monitor_subscribe(Topic::All).await {
            Ok(s) => s,
            Err(e) => {
                log::error!("subscribe to exits: {e}");
                return;
            }
        };
        let tasks = self.clone();
        tokio::spawn(async move {
            while let Some(e) = sub.rx.recv().await {
                if let Subject::Pid(pid) = e.subject {
                    tasks.reaped(pid, e.exit_code);
                }
            }
        });
    }

    /// A pid was reaped: record it for its process, or park it.
    fn reaped(&self, pid: i32, code: i32) {
        let found = {
            let mut parked = self.0.parked.lock().unwrap();
            let found = self.process_of_pid(pid);
            if found.is_none() {
                if parked.len() >= PARKED_EXITS {
                    parked.pop_front();
                }
                parked.push_back((pid, code));
            }
            found
        };
        if let Some((c, p)) = found {
            self.exited(c, p, code);
        }
    }

    fn process_of_pid(&self, pid: i32) -> Option<(Arc<Container>, Arc<Process>)> {
        let containers = self.0.containers.lock().unwrap();
        for c in containers.values() {
            let running = |p: &Process| {
                let s = p.status.lock().unwrap();
                s.pid as i32 == pid && s.state != ProcState::Stopped
            };
            if running(&c.init) {
                return Some((c.clone(), c.init.clone()));
            }
            if let Some(p) = c.execs.lock().unwrap().values().find(|p| running(p)) {
                return Some((c.clone(), p.clone()));
            }
        }
        None
    }

    /// Record `pid` as `p`'s; an exit already reaped for it is applied.
    fn started(&self, c: &Arc<Container>, p: &Arc<Process>, pid: u32) {
        let early = {
            let mut parked = self.0.parked.lock().unwrap();
            p.set_running(pid);
            let at = parked.iter().position(|(q, _)| *q == pid as i32);
            at.and_then(|i| parked.remove(i)).map(|(_, code)| code)
        };
        if let Some(code) = early {
            self.exited(c.clone(), p.clone(), code);
        }
    }

    /// The process ended: its output drains into the log, then TaskExit is
    /// published and waiters wake.
    fn exited(&self, c: Arc<Container>, p: Arc<Process>, code: i32) {
        let exited_at = now();
        let pid = {
            let mut s = p.status.lock().unwrap();
            s.state = ProcState::Stopped;
            s.exit_status = code as u32;
            s.exited_at = Some(exited_at.clone());
            s.pid
        };
        let tasks = self.clone();
        tokio::spawn(async move {
            p.io.close_process_ends();
            p.io.finish_output().await;
            let mut ev = TaskExit::new();
            ev.container_id = c.id.clone();
            ev.id = if p.exec_id.is_empty() {
                c.id.clone()
            } else {
                p.exec_id.clone()
            };
            ev.pid = pid;
            ev.exit_status = code as u32;
            ev.exited_at = Some(exited_at).into();
            tasks.publish(topics::TASK_EXIT_EVENT_TOPIC, ev).await;
            p.exited.send_replace(true);
        });
    }

    pub async fn create(&self, req: CreateSpec<'_>) -> Result<u32> {
        if self.get(req.id).is_ok() {
            return Err(TaskError::AlreadyExists(format!("container {}", req.id)));
        }
        let bundle = PathBuf::from(req.bundle);
        let opts = match req.options {
            Some(b) if !b.is_empty() => Options::parse_from_bytes(b)
                .map_err(|e| TaskError::InvalidArgument(format!("runtime options: {e}")))?,
            _ => Options::new(),
        };
        write_options(&bundle, &opts)
            .await
            .map_err(|e| TaskError::Runtime(format!("write options: {e}")))?;
        if !req.rootfs.is_empty() {
            let rootfs = bundle.join("rootfs");
            std::fs::create_dir_all(&rootfs).map_err(io_err("create rootfs dir"))?;
            for m in req.rootfs {
                if let Err(e) = mount_rootfs(m, &rootfs).await {
                    unmount_rootfs(&bundle);
                    return Err(TaskError::Runtime(format!("mount rootfs: {e}")));
                }
            }
        }
        let made = self.create_init(&req, &bundle, &opts).await;
        let (container, pid) = match made {
            Ok(v) => v,
            Err(e) => {
                unmount_rootfs(&bundle);
                return Err(e);
            }
        };
        self.0
            .containers
            .lock()
            .unwrap()
            .insert(req.id.to_string(), container.clone());
        {
            // Created, not yet running: the pid is known for State.
            container.init.status.lock().unwrap().pid = pid;
        }
        let mut ev = TaskCreate::new();
        ev.container_id = req.id.to_string();
        ev.bundle = req.bundle.to_string();
        ev.rootfs = req.rootfs.to_vec();
        let mut io = TaskIO::new();
        (io.stdin, io.stdout, io.stderr) = (
            req.stdio.0.to_string(),
            req.stdio.1.to_string(),
            req.stdio.2.to_string(),
        );
        io.terminal = req.terminal;
        ev.io = Some(io).into();
        ev.pid = pid;
        self.publish(topics::TASK_CREATE_EVENT_TOPIC, ev).await;
        Ok(pid)
    }

    async fn create_init(
        &self,
        req: &CreateSpec<'_>,
        bundle: &Path,
        opts: &Options,
    ) -> Result<(Arc<Container>, u32)> {
        let (stdin, stdout, stderr) = req.stdio;
        let io = ProcessIo::open(stdin, stdout, stderr, req.terminal).map_err(io_err("stdio"))?;
        if let Some(owner) = io_owner(opts) {
            io.give_to(owner)
                .map_err(io_err("give stdio to io_uid/io_gid"))?;
        }
        let runc = runc_exec::runtime(&self.0.namespace, opts).map_err(runtime_err("runtime"))?;
        let init = Arc::new(Process::new("", req.stdio, io, None));
        let pid_file = bundle.join("init.pid");
        let console = if req.terminal {
            Some(ConsoleSocket::new().map_err(io_err("console socket"))?)
        } else {
            None
        };
        let mut copts = runc::options::CreateOpts::new()
            .pid_file(&pid_file)
            .io(init.io.clone());
        if let Some(c) = &console {
            copts = copts.console_socket(c.path());
        }
        let created = runc.create(req.id, bundle, Some(&copts)).await;
        init.io.close_process_ends();
        created.map_err(runtime_err("create"))?;
        if let Some(c) = console {
            let master = c.receive().await.map_err(io_err("terminal"));
            match master.and_then(|m| init.io.attach_console(m).map_err(io_err("terminal"))) {
                Ok(()) => {}
                Err(e) => {
                    let _ = runc
                        .delete(req.id, Some(&runc::options::DeleteOpts::new().force(true)))
                        .await;
                    return Err(e);
                }
            }
        }
        let pid = read_pid(&pid_file)?;
        let container = Arc::new(Container {
            id: req.id.to_string(),
            bundle: bundle.to_path_buf(),
            runc,
            exec_command: runc_exec::ExecCommand::new(&self.0.namespace, opts),
            io_owner: io_owner(opts),
            init,
            execs: Mutex::new(HashMap::new()),
            op: tokio::sync::Mutex::new(()),
        });
        Ok((container, pid))
    }

    pub async fn start(&self, id: &str, exec_id: &str) -> Result<u32> {
        let c = self.get(id)?;
        let p = c.process(exec_id)?;
        let _op = c.op.lock().await;
        if p.status().state != ProcState::Created {
            return Err(TaskError::Precondition(format!(
                "process {id}/{exec_id} was already started"
            )));
        }
        if exec_id.is_empty() {
            c.runc.start(id).await.map_err(runtime_err("start"))?;
            let pid = p.status().pid;
            self.started(&c, &p, pid);
            if let Err(e) = crate::oom::watch(self.clone(), id, pid) {
                log::warn!("OOM events of {id}: {e}");
            }
            let mut ev = TaskStart::new();
            ev.container_id = id.to_string();
            ev.pid = pid;
            self.publish(topics::TASK_START_EVENT_TOPIC, ev).await;
            return Ok(pid);
        }
        let pid = self.start_exec(&c, &p).await?;
        let mut ev = TaskExecStarted::new();
        ev.container_id = id.to_string();
        ev.exec_id = exec_id.to_string();
        ev.pid = pid;
        self.publish(topics::TASK_EXEC_STARTED_EVENT_TOPIC, ev)
            .await;
        Ok(pid)
    }

    async fn start_exec(&self, c: &Arc<Container>, p: &Arc<Process>) -> Result<u32> {
        let spec = p
            .spec
            .as_ref()
            .ok_or_else(|| TaskError::InvalidArgument("exec without a process spec".into()))?;
        let pid_file = c.bundle.join(format!("{}.pid", p.exec_id));
        let console = if p.io.terminal {
            Some(ConsoleSocket::new().map_err(io_err("console socket"))?)
        } else {
            None
        };
        let console_path = console.as_ref().map(ConsoleSocket::path);
        let ran = c
            .exec_command
            .run(
                &c.id,
                &c.bundle,
                spec,
                &pid_file,
                console_path.as_deref(),
                p.io.as_ref(),
            )
            .await;
        p.io.close_process_ends();
        ran.map_err(runtime_err("exec"))?;
        if let Some(s) = console {
            let master = s.receive().await.map_err(io_err("terminal"))?;
            p.io.attach_console(master).map_err(io_err("terminal"))?;
        }
        let pid = read_pid(&pid_file);
        let _ = std::fs::remove_file(&pid_file);
        let pid = pid?;
        self.started(c, p, pid);
        Ok(pid)
    }

    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        terminal: bool,
        stdio: (&str, &str, &str),
        spec_json: &[u8],
    ) -> Result<()> {
        let c = self.get(id)?;
        if c.init.status().state == ProcState::Stopped {
            return Err(TaskError::Precondition(format!(
                "container {id} is stopped"
            )));
        }
        check_process_spec(spec_json)?;
        {
            if c.execs.lock().unwrap().contains_key(exec_id) {
                return Err(TaskError::AlreadyExists(format!("exec {exec_id} of {id}")));
            }
        }
        let io = ProcessIo::open(stdio.0, stdio.1, stdio.2, terminal).map_err(io_err("stdio"))?;
        if let Some(owner) = c.io_owner {
            io.give_to(owner)
                .map_err(io_err("give stdio to io_uid/io_gid"))?;
        }
        let p = Arc::new(Process::new(exec_id, stdio, io, Some(spec_json.to_vec())));
        c.execs.lock().unwrap().insert(exec_id.to_string(), p);
        let mut ev = TaskExecAdded::new();
        ev.container_id = id.to_string();
        ev.exec_id = exec_id.to_string();
        self.publish(topics::TASK_EXEC_ADDED_EVENT_TOPIC, ev).await;
        Ok(())
    }

    /// Signal a process. Ordered with the container's other runtime calls,
    /// as containerd's runc shim orders them: a Delete that comes while
    /// `runc kill` still runs (the process died first, its exit was
    /// published, the client deleted it) waits, so the shim cannot answer
    /// Delete, be shut down and exit before Kill has its answer.
    pub async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<()> {
        let c = self.get(id)?;
        let p = c.process(exec_id)?;
        let _op = c.op.lock().await;
        // Deleted while this waited: gone, as containerd says of a task it
        // no longer has.
        if !self.get(id).is_ok_and(|now| Arc::ptr_eq(&now, &c)) {
            return Err(TaskError::NotFound(format!("container {id} was deleted")));
        }
        let st = p.status();
        if st.state == ProcState::Stopped && !all {
            return Err(TaskError::NotFound(format!(
                "process {id}/{exec_id} already finished"
            )));
        }
        if exec_id.is_empty() {
            let opts = runc::options::KillOpts::new().all(all);
            return c
                .runc
                .kill(id, signal, Some(&opts))
                .await
                .map_err(runtime_err("kill"));
        }
        if st.state == ProcState::Created {
            return Err(TaskError::Precondition(format!(
                "exec {exec_id} not started"
            )));
        }
        let sig = nix::sys::signal::Signal::try_from(signal as i32)
            .map_err(|e| TaskError::InvalidArgument(format!("signal {signal}: {e}")))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.pid as i32), sig)
            .map_err(|e| TaskError::NotFound(format!("exec {exec_id}: {e}")))
    }

    pub async fn delete(&self, id: &str, exec_id: &str) -> Result<ProcStatus> {
        let c = self.get(id)?;
        let p = c.process(exec_id)?;
        let _op = c.op.lock().await;
        let st = p.status();
        if st.state == ProcState::Running {
            return Err(TaskError::Precondition(format!(
                "process {id}/{exec_id} is running"
            )));
        }
        if !exec_id.is_empty() {
            c.execs.lock().unwrap().remove(exec_id);
            return Ok(st);
        }
        // A task never started (or its exit is still draining): force.
        let del = runc::options::DeleteOpts::new().force(true);
        if let Err(e) = c.runc.delete(id, Some(&del)).await {
            log::warn!("runtime delete {id}: {e}");
        }
        if st.state == ProcState::Created {
            p.io.close_process_ends();
            p.io.finish_output().await;
        }
        unmount_rootfs(&c.bundle);
        self.0.containers.lock().unwrap().remove(id);
        let mut ev = TaskDelete::new();
        ev.container_id = id.to_string();
        ev.id = id.to_string();
        ev.pid = st.pid;
        ev.exit_status = st.exit_status;
        ev.exited_at = st.exited_at.clone().into();
        self.publish(topics::TASK_DELETE_EVENT_TOPIC, ev).await;
        Ok(st)
    }

    pub async fn pids(&self, id: &str) -> Result<Vec<u32>> {
        let c = self.get(id)?;
        let pids = c.runc.ps(id).await.map_err(runtime_err("ps"))?;
        Ok(pids.into_iter().map(|p| p as u32).collect())
    }

    pub async fn update(&self, id: &str, resources_json: &[u8]) -> Result<()> {
        let c = self.get(id)?;
        let res: oci_spec::runtime::LinuxResources = serde_json::from_slice(resources_json)
            .map_err(|e| TaskError::InvalidArgument(format!("resources: {e}")))?;
        c.runc.update(id, &res).await.map_err(runtime_err("update"))
    }

    /// Exit when containerd asks and nothing is left to serve.
    pub fn shutdown(&self) {
        if self.0.containers.lock().unwrap().is_empty() {
            self.0.exit.signal();
        }
    }

    pub async fn publish_oom(&self, id: &str) {
        let mut ev = containerd_shim::protos::events::task::TaskOOM::new();
        ev.container_id = id.to_string();
        self.publish(topics::TASK_OOM_EVENT_TOPIC, ev).await;
    }
}

/// An exec's process spec must be a JSON object with a command; the
/// runtime checks the rest when it starts the process.
fn check_process_spec(spec_json: &[u8]) -> Result<()> {
    let spec: serde_json::Value = serde_json::from_slice(spec_json)
        .map_err(|e| TaskError::InvalidArgument(format!("exec spec: {e}")))?;
    let has_command = spec
        .get("args")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|args| !args.is_empty() && args.iter().all(serde_json::Value::is_string));
    if !has_command {
        return Err(TaskError::InvalidArgument(
            "exec spec: a process with a command (args) is required".into(),
        ));
    }
    Ok(())
}

/// The owner the runc options give a task's stdio (`io_uid`/`io_gid`, set
/// for a container in a user namespace of its own); none when both are the
/// host's root.
fn io_owner(opts: &Options) -> Option<(u32, u32)> {
    let owner = (opts.io_uid, opts.io_gid);
    (owner != (0, 0)).then_some(owner)
}

fn read_pid(path: &Path) -> Result<u32> {
    std::fs::read_to_string(path)
        .map_err(io_err("read pid file"))?
        .trim()
        .parse()
        .map_err(|e| TaskError::Runtime(format!("pid file {}: {e}", path.display())))
}

impl ProcState {
    pub fn to_api(self) -> Status {
        match self {
            ProcState::Created => Status::CREATED,
            ProcState::Running => Status::RUNNING,
            ProcState::Stopped => Status::STOPPED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_spec_needs_a_json_command() {
        assert!(check_process_spec(br#"{"args":["sh","-c","true"],"cwd":"/"}"#).is_ok());
        for bad in [
            &b"not json"[..],
            br#"["sh"]"#,
            br#"{"cwd":"/"}"#,
            br#"{"args":[]}"#,
            br#"{"args":["sh",1]}"#,
        ] {
            assert!(
                matches!(check_process_spec(bad), Err(TaskError::InvalidArgument(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
