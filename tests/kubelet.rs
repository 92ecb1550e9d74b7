//! A stock kubelet on crid, end to end (issue 28): a standalone kubelet (no
//! API server, one static pod) drives crid on a real containerd with a real
//! CNI bridge. One test walks through the steps in order, since a kubelet
//! takes seconds to start: the pod runs, its log is where kubelet looks,
//! probes pass and fail, containers restart, kubelet rotates a log without
//! losing a line, `/stats/summary` has the pod's usage, a kubelet restart
//! leaves the pod alone, and removing the manifest leaves nothing behind.
//!
//! A second test has kubelet take pod stats from ListPodSandboxStats alone.
//!
//! Runs only when `CRID_KUBELET` names a kubelet binary (v1.26 was used);
//! `make test` does not build one. `CRID_KUBELET_LOGS=<dir>` keeps copies of
//! the kubelet's and crid's logs. As root, the kubelet writes a few things
//! outside its own directories, all undone at the end: cgroups under a
//! private `cgroupRoot` in every hierarchy, pod logs under `/var/log/pods`
//! and `/var/log/containers`, `/var/lib/kubelet/device-plugins` (a fixed
//! path in kubelet) and six kernel sysctls it sets at start-up.

mod support;

use crid::cri::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::image::free_port;
use support::pod::PodEnv;
use support::*;

const CONTAINERS: [&str; 4] = ["main", "crasher", "liveness", "chatty"];

/// The sysctls kubelet's container manager sets (setupKernelTunables).
const SYSCTLS: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

// ---------------------------------------------------------------- HTTP

/// GET `path` from `addr` over HTTP/1.0: (status, body).
fn get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let mut s =
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
            .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read {addr}{path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP head from {addr}{path}: {text:?}"))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line from {addr}{path}: {head:?}"))?;
    Ok((code, body.to_string()))
}

fn get_json(addr: &str, path: &str) -> Result<Value, String> {
    match get(addr, path)? {
        (200, body) => serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}")),
        (code, body) => Err(format!("{path}: HTTP {code}: {body}")),
    }
}

// ---------------------------------------------------------------- kubelet

/// A kubelet process of the test's own, started with setsid and stopped by PID.
struct Kubelet {
    bin: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    log: PathBuf,
    read_only: String,
    healthz: String,
    child: Option<Child>,
}

impl Kubelet {
    /// Start and wait (bounded) until `/healthz` answers `ok`.
    fn start(&mut self) {
        let mut logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        writeln!(logf, "==== test: kubelet start ====").unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args);
        self.child = Some(spawn_in_own_session(&mut cmd, &self.log));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, body)) = get(&self.healthz, "/healthz") {
                if body.trim() == "ok" {
                    return;
                }
            }
            if let Ok(Some(st)) = self.child.as_mut().unwrap().try_wait() {
                self.child = None;
                panic!("kubelet exited ({st}) before it was healthy");
            }
            assert!(
                Instant::now() < deadline,
                "kubelet not healthy on {} within 60s",
                self.healthz
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(15));
        }
    }

    /// The kubelet process is gone (or a zombie): it crashed or was stopped.
    fn exited(&self) -> bool {
        let Some(c) = &self.child else { return true };
        match std::fs::read_to_string(format!("/proc/{}/stat", c.id())) {
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_none_or(|state| state == "Z" || state == "X"),
            Err(_) => true,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// kubelet's pod list (read-only port).
    fn pods(&self) -> Result<Value, String> {
        get_json(&self.read_only, "/pods")
    }

    /// Our pod in kubelet's `/pods`, if listed.
    fn pod(&self, name: &str) -> Option<Value> {
        let pods = self.pods().ok()?;
        pods["items"]
            .as_array()?
            .iter()
            .find(|p| p["metadata"]["name"] == name)
            .cloned()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = std::env::var_os("CRID_KUBELET_LOGS") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(&self.log, Path::new(&dir).join("kubelet.log"));
        }
        if std::thread::panicking() {
            eprintln!(
                "---- kubelet log (last 150 lines of {}) ----\n{}",
                self.log.display(),
                self.tail(150)
            );
        }
        // kubelet bind-mounts its root dir onto itself (MakeRShared).
        umount_under(&self.dir);
    }
}

/// The status of container `name` in a kubelet pod object.
fn ctr_status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

// ---------------------------------------------------------------- host state

/// Mount points of v1 cgroup hierarchies (and the v2 one, `unified`).
fn cgroup_mounts() -> Vec<(PathBuf, bool)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mp = pre.split(' ').nth(4)?;
            match fstype {
                "cgroup" => Some((PathBuf::from(mp), true)),
                "cgroup2" => Some((PathBuf::from(mp), false)),
                _ => None,
            }
        })
        .collect()
}

/// rmdir a cgroup tree depth-first; the dirs that could not be removed.
fn rmdir_tree(p: &Path) -> Vec<String> {
    let mut failed = vec![];
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                failed.extend(rmdir_tree(&e.path()));
            }
        }
    }
    if p.exists() {
        if let Err(e) = std::fs::remove_dir(p) {
            let procs = std::fs::read_to_string(p.join("cgroup.procs")).unwrap_or_default();
            failed.push(format!("{}: {e} (procs: {:?})", p.display(), procs.trim()));
        }
    }
    failed
}

/// Every cgroup dir under `root` in `hierarchy`, relative paths.
fn cgroup_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path());
                cgroup_dirs(&e.path(), out);
            }
        }
    }
}

/// What the kubelet may change on the host, restored on drop: its cgroup
/// root in every hierarchy, the sysctls it sets, the logs of the node's
/// static pods (named `<pod>-<node>`), the fixed-path dirs it creates when
/// they were not there before.
struct HostGuard {
    node: String,
    sysctls: Vec<(String, String)>,
    created: Vec<(&'static str, bool)>,
}

impl HostGuard {
    fn new(node: &str) -> HostGuard {
        let sysctls = SYSCTLS
            .iter()
            .filter_map(|s| {
                let v = std::fs::read_to_string(format!("/proc/sys/{s}")).ok()?;
                Some((s.to_string(), v.trim().to_string()))
            })
            .collect();
        let created = ["/var/lib/kubelet", "/var/log/pods", "/var/log/containers"]
            .into_iter()
            .map(|d| (d, !Path::new(d).exists()))
            .collect();
        let g = HostGuard {
            node: node.to_string(),
            sysctls,
            created,
        };
        // kubelet refuses a cgroupRoot that does not exist in every hierarchy.
        for (mp, v1) in cgroup_mounts() {
            if !v1 {
                continue;
            }
            let dir = mp.join(&g.node);
            std::fs::create_dir_all(&dir).unwrap();
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if dir.join(f).exists() {
                    let v = std::fs::read_to_string(mp.join(f)).unwrap();
                    std::fs::write(dir.join(f), v.trim()).unwrap();
                }
            }
        }
        g
    }

    /// Remove the cgroup root everywhere; the dirs that would not go.
    fn remove_cgroups(&self) -> Vec<String> {
        cgroup_mounts()
            .into_iter()
            .flat_map(|(mp, _)| rmdir_tree(&mp.join(&self.node)))
            .collect()
    }

    /// Cgroups under the root whose last component starts with `prefix`.
    fn cgroups_named(&self, prefix: &str) -> Vec<PathBuf> {
        let mut all = vec![];
        for (mp, _) in cgroup_mounts() {
            cgroup_dirs(&mp.join(&self.node), &mut all);
        }
        all.into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect()
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let failed = self.remove_cgroups();
        if !failed.is_empty() {
            eprintln!("cleanup: cgroups left: {failed:?}");
        }
        for (s, v) in &self.sysctls {
            let _ = std::fs::write(format!("/proc/sys/{s}"), v);
        }
        // `default_<pod>-<node>_<uid>` and `<pod>-<node>_default_<ctr>-<id>.log`.
        let ours = format!("-{}_", self.node);
        for dir in ["/var/log/pods", "/var/log/containers"] {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().contains(&ours) {
                    let p = e.path();
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        let _ = std::fs::remove_dir_all(&p);
                    } else {
                        let _ = std::fs::remove_file(&p);
                    }
                }
            }
        }
        for (dir, created) in &self.created {
            if !created {
                continue;
            }
            if *dir == "/var/lib/kubelet" {
                // Only the device manager's fixed-path socket and checkpoint.
                let _ = std::fs::remove_dir_all("/var/lib/kubelet/device-plugins");
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

// ---------------------------------------------------------------- CRI

fn cname(c: &Container) -> &str {
    c.metadata.as_ref().map_or("", |m| m.name.as_str())
}

fn attempt(c: &Container) -> u32 {
    c.metadata.as_ref().map_or(0, |m| m.attempt)
}

fn running(c: &Container) -> bool {
    c.state == ContainerState::ContainerRunning as i32
}

/// The running container called `name` (latest attempt).
fn running_named<'a>(cs: &'a [Container], name: &str) -> Option<&'a Container> {
    cs.iter()
        .filter(|c| cname(c) == name && running(c))
        .max_by_key(|c| attempt(c))
}

/// (name, id, attempt) of every running container, sorted.
fn running_set(cs: &[Container]) -> Vec<(String, String, u32)> {
    let mut v: Vec<_> = cs
        .iter()
        .filter(|c| running(c))
        .map(|c| (cname(c).to_string(), c.id.clone(), attempt(c)))
        .collect();
    v.sort();
    v
}

/// containerd's snapshots: (key, kind), sorted.
fn snapshots(env: &PodEnv) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = env
        .containerd
        .ctr(&["snapshots", "ls"])
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), f.last()?.to_string()))
        })
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- logs

/// Sequence numbers of the complete `seq=N` lines of a CRI log file.
fn seqs(text: &str) -> Vec<u64> {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .filter_map(|l| {
            let mut parts = l.splitn(4, ' ');
            let (_ts, _stream, tag, content) =
                (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
            assert!(
                tag.starts_with('F'),
                "partial line in a short-line log: {l:?}"
            );
            content
                .strip_prefix("seq=")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The container's log files, oldest first (`0.log.<time>[.gz]`, then
/// `0.log`), each with its sequence numbers; None when kubelet moved a
/// file while they were read.
fn log_files(dir: &Path) -> Option<Vec<(String, Vec<u64>)>> {
    let list = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("0.log.") && !n.ends_with(".tmp"))
            .collect();
        names.sort();
        names.push("0.log".into());
        names
    };
    let before = list();
    let mut out = vec![];
    for n in &before {
        let raw = std::fs::read(dir.join(n)).ok()?;
        let text = if n.ends_with(".gz") {
            let mut s = String::new();
            flate2::read::GzDecoder::new(raw.as_slice())
                .read_to_string(&mut s)
                .ok()?;
            s
        } else {
            String::from_utf8_lossy(&raw).into_owned()
        };
        out.push((n.clone(), seqs(&text)));
    }
    (list() == before).then_some(out)
}

// ---------------------------------------------------------------- the pod

fn manifest(image: &str) -> Value {
    let pad = "x".repeat(100);
    let chatty = format!(
        "i=0; while true; do n=0; while [ $n -lt 2000 ]; do i=$((i+1)); n=$((n+1)); \
         echo \"seq=$i {pad}\"; done; sleep 1; done"
    );
    let data = json!([{"name": "data", "mountPath": "/data"}]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "crid-kubelet-test"}},
        "spec": {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 2,
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [
                {
                    "name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "echo main started; sleep 2; touch /tmp/ready; exec sleep 3600"],
                    "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                                       "periodSeconds": 1, "failureThreshold": 1}
                },
                {
                    // Exits 1 once; its second attempt finds the marker in the
                    // pod's emptyDir and stays up.
                    "name": "crasher", "image": image, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "if [ -f /data/crashed ]; then echo second run; exec sleep 3600; fi; \
                                             touch /data/crashed; echo first run; sleep 2; exit 1"],
                    "volumeMounts": data
                },
                {
                    // Alive for 4 s on its first attempt only.
                    "name": "liveness", "image": image, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "touch /tmp/alive; if [ ! -f /data/probed ]; then touch /data/probed; \
                                             (sleep 4; rm /tmp/alive) & fi; exec sleep 3600"],
                    "livenessProbe": {"exec": {"command": ["test", "-f", "/tmp/alive"]},
                                      "periodSeconds": 1, "failureThreshold": 1},
                    "volumeMounts": data
                },
                {
                    // About 290 KB/s of numbered lines: over 1 MiB between two of
                    // kubelet's log checks (every 10 s).
                    "name": "chatty", "image": image, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", chatty]
                }
            ]
        }
    })
}

fn step(n: u32, what: &str, since: Instant) {
    eprintln!(
        "kubelet e2e: step {n} ({what}): {:.1}s",
        since.elapsed().as_secs_f64()
    );
}

/// Poll `f` every `every` until it returns Ok, at most `limit`; panic with
/// `what` and the last diagnostic otherwise, or at once if the kubelet exits.
async fn wait_for<T, F, Fut>(
    kubelet: &Kubelet,
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    let max_rounds = (limit.as_millis() / every.as_millis().max(1)) as usize + 2;
    for _ in 0..max_rounds {
        assert!(
            !kubelet.exited(),
            "{what}: the kubelet exited (see its log)"
        );
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(every).await;
    }
    panic!("{what}: not within {limit:?}; last: {last}");
}

/// One kubelet at a time: every kubelet serves its device manager on the
/// same fixed path (/var/lib/kubelet/device-plugins/kubelet.sock).
static ONE_KUBELET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The kubelet binary named by CRID_KUBELET, or None after one SKIP line.
fn kubelet_binary() -> Option<PathBuf> {
    let Some(bin) = std::env::var_os("CRID_KUBELET").filter(|v| !v.is_empty()) else {
        eprintln!("SKIP: CRID_KUBELET not set (path to a kubelet binary); see README \"kubelet\"");
        return None;
    };
    if missing_tools() {
        return None;
    }
    let bin = PathBuf::from(bin);
    assert!(
        bin.is_file(),
        "CRID_KUBELET={} is not a file",
        bin.display()
    );
    Some(bin)
}

/// A node: crid on its containerd with a CNI bridge and the busybox image
/// pulled, and a standalone kubelet on it. Fields drop in order: the
/// kubelet (stopped by PID), its dirs, crid, containerd and the registry,
/// then the host state the kubelet changed.
struct Node {
    kubelet: Kubelet,
    manifests: PathBuf,
    root_dir: PathBuf,
    kdir: tempfile::TempDir,
    env: PodEnv,
    host: HostGuard,
    name: String,
}

impl Node {
    /// Start everything; `extra` is merged into the KubeletConfiguration.
    async fn start(bin: PathBuf, extra: Value) -> Node {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("crid-kt-{}-{seq}", std::process::id());
        let host = HostGuard::new(&name);
        let env = PodEnv::new().await;
        let kdir = short_tempdir("kubelet");
        let k = kdir.path();
        let root_dir = k.join("root");
        let manifests = k.join("manifests");
        for d in [&root_dir, &manifests] {
            std::fs::create_dir_all(d).unwrap();
        }
        let (port, ro_port, hz_port) = (free_port(), free_port(), free_port());
        let mut config = json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "staticPodPath": manifests,
            "fileCheckFrequency": "1s",
            "syncFrequency": "5s",
            "address": "127.0.0.1",
            "port": port,
            "readOnlyPort": ro_port,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": hz_port,
            "authentication": {"anonymous": {"enabled": true}, "webhook": {"enabled": false}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": true,
            "cgroupRoot": format!("/{name}"),
            "failSwapOn": false,
            "makeIPTablesUtilChains": false,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "containerLogMaxSize": "1Mi",
            "containerLogMaxFiles": 3,
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "volumePluginDir": k.join("volume-plugins"),
        });
        for (key, v) in extra.as_object().cloned().unwrap_or_default() {
            config[key] = v;
        }
        std::fs::write(
            k.join("config.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        let endpoint = format!("unix://{}", env.crid.socket.display());
        let mut kubelet = Kubelet {
            bin,
            args: vec![
                format!("--config={}", k.join("config.json").display()),
                format!("--root-dir={}", root_dir.display()),
                format!("--cert-dir={}", k.join("pki").display()),
                format!("--container-runtime-endpoint={endpoint}"),
                format!("--image-service-endpoint={endpoint}"),
                format!("--hostname-override={name}"),
                "--v=2".into(),
            ],
            dir: k.to_path_buf(),
            log: k.join("kubelet.log"),
            read_only: format!("127.0.0.1:{ro_port}"),
            healthz: format!("127.0.0.1:{hz_port}"),
            child: None,
        };
        kubelet.start();
        Node {
            kubelet,
            manifests,
            root_dir,
            kdir,
            env,
            host,
            name,
        }
    }

    /// Put a static pod's manifest in place, atomically (kubelet reads
    /// the directory every `fileCheckFrequency`).
    fn add_pod(&self, manifest: &Value) {
        let name = manifest["metadata"]["name"].as_str().unwrap();
        let tmp = self.kdir.path().join(format!("{name}.json.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(manifest).unwrap()).unwrap();
        std::fs::rename(&tmp, self.manifests.join(format!("{name}.json"))).unwrap();
    }

    fn remove_pod(&self, name: &str) {
        std::fs::remove_file(self.manifests.join(format!("{name}.json"))).unwrap();
    }

    /// A static pod's name on this node.
    fn pod_name(&self, name: &str) -> String {
        format!("{name}-{}", self.name)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(dir) = std::env::var_os("CRID_KUBELET_LOGS") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(Path::new(&dir).join("crid.log"), self.env.crid.log());
        }
    }
}

/// Wait (30 s at most) until kubelet has stopped every pod sandbox.
async fn wait_sandboxes_stopped(node: &Node) {
    let env = &node.env;
    wait_for(
        &node.kubelet,
        "every sandbox stopped",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || async {
            let sbs = env.sandboxes().await;
            sbs.iter()
                .all(|s| s.state != PodSandboxState::SandboxReady as i32)
                .then_some(())
                .ok_or(format!("{sbs:?}"))
        },
    )
    .await;
}

/// Wait until kubelet has restarted container `name` (attempt 1 running);
/// that container and the exit code of attempt 0, when it is still listed.
async fn wait_restarted(node: &Node, name: &str) -> (Container, Option<i32>) {
    let env = &node.env;
    let restarted = wait_for(
        &node.kubelet,
        &format!("{name} restarted (attempt 1 running)"),
        Duration::from_secs(60),
        Duration::from_millis(250),
        || async {
            let cs = env.containers().await;
            running_named(&cs, name)
                .filter(|c| attempt(c) >= 1)
                .cloned()
                .ok_or(format!("{:?}", running_set(&cs)))
        },
    )
    .await;
    let cs = env.containers().await;
    let first = cs.iter().find(|c| cname(c) == name && attempt(c) == 0);
    let exit_code = match first {
        Some(c) => Some(env.status(&c.id).await.exit_code),
        None => None,
    };
    (restarted, exit_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_runs_a_static_pod_on_crid() {
    let Some(bin) = kubelet_binary() else {
        return;
    };
    let _one = ONE_KUBELET.lock().await;
    let t0 = Instant::now();
    let mut node = Node::start(bin, json!({})).await;
    step(0, "crid and kubelet up", t0);
    let env = &node.env;
    let pod_name = node.pod_name("web");
    let root_dir = node.root_dir.clone();
    let k = node.kdir.path().to_path_buf();
    let k = k.as_path();

    // Step 1: the static pod runs.
    let image_snapshots = snapshots(env);
    assert!(
        image_snapshots.iter().all(|(_, kind)| kind == "Committed"),
        "{image_snapshots:?}"
    );
    let t_pod = Instant::now();
    node.add_pod(&manifest(&env.image));
    let sandbox = wait_for(
        &node.kubelet,
        "pod sandbox ready with its four containers created",
        Duration::from_secs(90),
        Duration::from_millis(250),
        || async {
            let sbs = env.sandboxes().await;
            let sb = sbs
                .iter()
                .find(|s| {
                    s.state == PodSandboxState::SandboxReady as i32
                        && s.metadata.as_ref().is_some_and(|m| m.name == pod_name)
                })
                .ok_or(format!("sandboxes: {sbs:?}"))?;
            let cs = env.containers().await;
            for n in CONTAINERS {
                if !cs
                    .iter()
                    .any(|c| c.pod_sandbox_id == sb.id && cname(c) == n)
                {
                    return Err(format!("no {n} yet: {:?}", running_set(&cs)));
                }
            }
            Ok(sb.clone())
        },
    )
    .await;
    let sid = sandbox.id.clone();
    let meta = sandbox.metadata.clone().unwrap();
    assert_eq!(meta.namespace, "default");
    let kpod = wait_for(
        &node.kubelet,
        "kubelet /pods: pod Running",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || async {
            let p = node.kubelet.pod(&pod_name).ok_or("not in /pods")?;
            (p["status"]["phase"] == "Running")
                .then_some(p.clone())
                .ok_or(format!("phase {}", p["status"]["phase"]))
        },
    )
    .await;
    assert_eq!(
        kpod["metadata"]["uid"],
        meta.uid.as_str(),
        "uid in /pods vs CRI"
    );
    let ip = env.pod_ip(&sid).await;
    assert_eq!(
        kpod["status"]["podIP"],
        ip.as_str(),
        "pod IP in /pods vs CRI"
    );
    let prefix = env.subnet.rsplit_once('.').unwrap().0;
    assert!(ip.starts_with(prefix), "pod IP {ip} not in {}", env.subnet);
    step(1, "static pod running", t_pod);
    eprintln!("  sandbox {sid}, uid {}, ip {ip}", meta.uid);

    // Step 2: the log is where kubelet put it.
    let t = Instant::now();
    let log_dir = PathBuf::from(format!("/var/log/pods/default_{pod_name}_{}", meta.uid));
    let cs = env.containers().await;
    let main = cs.iter().find(|c| cname(c) == "main").unwrap().clone();
    let st = env.status(&main.id).await;
    let main_log = log_dir.join("main/0.log");
    assert_eq!(
        Path::new(&st.log_path),
        main_log,
        "ContainerStatus.log_path"
    );
    let text = env.wait_for_file(&main_log, "main started").await;
    assert!(
        text.lines().any(|l| l.contains(" stdout F main started")),
        "{text}"
    );
    step(2, "log at /var/log/pods/<ns>_<name>_<uid>/main/0.log", t);

    // Step 3: the readiness probe passes.
    let t = Instant::now();
    wait_for(
        &node.kubelet,
        "main Ready in kubelet /pods",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || async {
            let p = node.kubelet.pod(&pod_name).ok_or("not in /pods")?;
            let c = ctr_status(&p, "main").ok_or("no status for main")?;
            (c["ready"] == true).then_some(()).ok_or(format!("{c}"))
        },
    )
    .await;
    step(3, "exec readiness probe: main Ready", t);
    eprintln!(
        "  ({:.1}s after the pod appeared)",
        t_pod.elapsed().as_secs_f64()
    );

    // Step 4: a container that exits is restarted.
    let t = Instant::now();
    let (crasher, exit_code) = wait_restarted(&node, "crasher").await;
    if let Some(code) = exit_code {
        assert_eq!(code, 1, "crasher attempt 0");
    }
    let log1 = std::fs::read_to_string(log_dir.join("crasher/1.log")).unwrap_or_default();
    step(4, "exited container restarted", t);
    eprintln!(
        "  crasher attempt {} ({:.1}s after the pod appeared), 1.log: {:?}",
        attempt(&crasher),
        t_pod.elapsed().as_secs_f64(),
        log1.lines().next().unwrap_or("")
    );

    // Step 5: a failing liveness probe restarts its container.
    let t = Instant::now();
    let (live, exit_code) = wait_restarted(&node, "liveness").await;
    if let Some(code) = exit_code {
        assert_eq!(
            code, 137,
            "liveness attempt 0 (sleep as PID 1 ignores SIGTERM: SIGKILL)"
        );
    }
    assert!(
        node.kubelet.log_text().contains("failed liveness probe"),
        "kubelet did not log a failed liveness probe"
    );
    step(5, "failed liveness probe restarted the container", t);
    eprintln!(
        "  liveness attempt {} ({:.1}s after the pod appeared)",
        attempt(&live),
        t_pod.elapsed().as_secs_f64()
    );

    // Step 6: kubelet rotates the chatty log; no line is lost.
    let t = Instant::now();
    let chatty_dir = log_dir.join("chatty");
    let first_rotation = std::cell::Cell::new(None);
    let (files, total) = wait_for(
        &node.kubelet,
        "chatty log rotated twice, with lines after the last rotation",
        Duration::from_secs(60),
        Duration::from_millis(500),
        || async {
            let files = log_files(&chatty_dir).ok_or("files moved while read")?;
            if files.len() >= 2 && first_rotation.get().is_none() {
                first_rotation.set(Some(t.elapsed()));
            }
            let all: Vec<u64> = files.iter().flat_map(|(_, s)| s.iter().copied()).collect();
            for w in all.windows(2) {
                if w[1] != w[0] + 1 {
                    let names: Vec<(&String, Option<&u64>, Option<&u64>, usize)> = files
                        .iter()
                        .map(|(n, s)| (n, s.first(), s.last(), s.len()))
                        .collect();
                    panic!(
                        "log lines lost or repeated: {} then {}; files {names:?}",
                        w[0], w[1]
                    );
                }
            }
            // Two rotations: kubelet has compressed the first rotated file.
            if !files.iter().any(|(n, _)| n.ends_with(".gz")) {
                return Err(format!("no second rotation yet: {files:?}"));
            }
            if files.last().unwrap().1.len() < 100 {
                return Err("few lines in 0.log since the rotation".into());
            }
            Ok((files.clone(), all.len()))
        },
    )
    .await;
    let summary: Vec<String> = files
        .iter()
        .map(|(n, s)| {
            format!(
                "{n}: {}..{}",
                s.first().unwrap_or(&0),
                s.last().unwrap_or(&0)
            )
        })
        .collect();
    assert!(
        env.crid.log().contains("ReopenContainerLog"),
        "crid never served ReopenContainerLog"
    );
    step(6, "log rotated twice, lines contiguous across files", t);
    eprintln!(
        "  first rotation seen after {:.1}s; {total} lines in sequence: {summary:?}",
        first_rotation.get().unwrap_or_default().as_secs_f64()
    );

    // Step 7: /stats/summary has the pod's CPU, memory and filesystem use.
    let t = Instant::now();
    let stats = wait_for(
        &node.kubelet,
        "pod stats in /stats/summary",
        Duration::from_secs(60),
        Duration::from_secs(1),
        || async {
            let s = get_json(&node.kubelet.read_only, "/stats/summary")?;
            let p = s["pods"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["podRef"]["name"] == pod_name))
                .cloned()
                .ok_or("pod not in /stats/summary")?;
            let n = |v: &Value| v.as_u64().unwrap_or(0);
            let mut missing = vec![];
            if n(&p["cpu"]["usageNanoCores"]) == 0 && n(&p["cpu"]["usageCoreNanoSeconds"]) == 0 {
                missing.push("pod cpu".to_string());
            }
            if n(&p["memory"]["workingSetBytes"]) == 0 {
                missing.push("pod memory.workingSetBytes".into());
            }
            if n(&p["ephemeral-storage"]["usedBytes"]) == 0 {
                missing.push("pod ephemeral-storage.usedBytes".into());
            }
            let cs = p["containers"].as_array().cloned().unwrap_or_default();
            for name in CONTAINERS {
                let Some(c) = cs.iter().find(|c| c["name"] == name) else {
                    missing.push(format!("container {name}"));
                    continue;
                };
                if n(&c["cpu"]["usageCoreNanoSeconds"]) == 0 {
                    missing.push(format!("{name} cpu"));
                }
                if n(&c["memory"]["workingSetBytes"]) == 0 {
                    missing.push(format!("{name} memory"));
                }
                if c["rootfs"]["usedBytes"].as_u64().is_none() {
                    missing.push(format!("{name} rootfs"));
                }
                if c["logs"]["usedBytes"].as_u64().is_none() {
                    missing.push(format!("{name} logs"));
                }
            }
            if n(&p["cpu"]["usageNanoCores"]) == 0 {
                missing.push("pod cpu.usageNanoCores".into());
            }
            if missing.is_empty() {
                Ok(p)
            } else {
                Err(format!("missing {missing:?} in {p}"))
            }
        },
    )
    .await;
    step(7, "/stats/summary: pod cpu, memory, ephemeral storage", t);
    let chatty_stats = stats["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "chatty")
        .unwrap();
    eprintln!(
        "  pod cpu {} nanocores, memory workingSet {} B, ephemeral-storage {} B; chatty rootfs {} B, logs {} B; network: {}",
        stats["cpu"]["usageNanoCores"],
        stats["memory"]["workingSetBytes"],
        stats["ephemeral-storage"]["usedBytes"],
        chatty_stats["rootfs"]["usedBytes"],
        chatty_stats["logs"]["usedBytes"],
        if stats["network"].is_object() { "present" } else { "absent" },
    );

    // Step 8: a kubelet restart leaves the running pod alone.
    let t = Instant::now();
    let before = running_set(&env.containers().await);
    assert_eq!(before.len(), 4, "{before:?}");
    let max_attempts: Vec<(String, u32)> = CONTAINERS
        .iter()
        .map(|n| {
            let a = before
                .iter()
                .filter(|c| c.0 == *n)
                .map(|c| c.2)
                .max()
                .unwrap();
            (n.to_string(), a)
        })
        .collect();
    node.kubelet.stop();
    let t_restart = Instant::now();
    node.kubelet.start();
    eprintln!(
        "  kubelet stopped and healthy again in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let watch = Duration::from_secs(20);
    for _ in 0..(watch.as_millis() / 500) {
        assert!(
            !node.kubelet.exited(),
            "the kubelet exited after its restart"
        );
        let sbs = env.sandboxes().await;
        let ids: Vec<(&str, i32)> = sbs.iter().map(|s| (s.id.as_str(), s.state)).collect();
        assert_eq!(
            ids,
            vec![(sid.as_str(), PodSandboxState::SandboxReady as i32)],
            "sandboxes changed after the kubelet restart"
        );
        let cs = env.containers().await;
        assert_eq!(
            running_set(&cs),
            before,
            "running containers changed after the kubelet restart"
        );
        for (n, a) in &max_attempts {
            let newest = cs.iter().filter(|c| cname(c) == n).map(attempt).max();
            assert_eq!(
                newest,
                Some(*a),
                "new attempt of {n} after the kubelet restart"
            );
        }
        if t_restart.elapsed() > watch {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let kpod = node
        .kubelet
        .pod(&pod_name)
        .expect("pod in /pods after restart");
    assert_eq!(kpod["status"]["phase"], "Running", "{kpod}");
    wait_for(
        &node.kubelet,
        "main Ready again after the kubelet restart",
        Duration::from_secs(20),
        Duration::from_millis(250),
        || async {
            let p = node.kubelet.pod(&pod_name).ok_or("not in /pods")?;
            let c = ctr_status(&p, "main").ok_or("no status")?;
            (c["ready"] == true).then_some(()).ok_or(format!("{c}"))
        },
    )
    .await;
    step(8, "kubelet restarted; same sandbox and containers", t);

    // Step 9: removing the manifest tears the pod down, leaking nothing.
    let t = Instant::now();
    node.remove_pod("web");
    wait_for(
        &node.kubelet,
        "no running containers",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || async {
            let cs = env.containers().await;
            let r = running_set(&cs);
            r.is_empty().then_some(()).ok_or(format!("{r:?}"))
        },
    )
    .await;
    eprintln!(
        "  containers stopped after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    wait_sandboxes_stopped(&node).await;
    eprintln!("  sandbox stopped after {:.1}s", t.elapsed().as_secs_f64());
    // kubelet removes dead containers and sandboxes in its garbage
    // collection, once a minute.
    wait_for(
        &node.kubelet,
        "no sandboxes or containers in CRI",
        Duration::from_secs(90),
        Duration::from_millis(500),
        || async {
            let sbs = env.sandboxes().await;
            let cs = env.containers().await;
            (sbs.is_empty() && cs.is_empty())
                .then_some(())
                .ok_or(format!("{} sandboxes, {} containers", sbs.len(), cs.len()))
        },
    )
    .await;
    eprintln!(
        "  sandbox and containers removed after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    env.assert_no_leaks();
    assert_eq!(
        snapshots(env),
        image_snapshots,
        "snapshots other than the images' layers"
    );
    let pod_uid = meta.uid.replace('-', "_");
    wait_for(
        &node.kubelet,
        "pod and container cgroups removed",
        Duration::from_secs(30),
        Duration::from_millis(500),
        || async {
            let mut left = node.host.cgroups_named("pod");
            left.extend(node.host.cgroups_named("crid-"));
            left.is_empty()
                .then_some(())
                .ok_or(format!("{left:?} (pod uid {pod_uid})"))
        },
    )
    .await;
    let mounts: Vec<String> = mounts_under(k)
        .into_iter()
        .filter(|m| Path::new(m) != root_dir)
        .collect();
    assert_eq!(
        mounts,
        Vec::<String>::new(),
        "mounts left under kubelet's dirs"
    );
    wait_for(
        &node.kubelet,
        "pod log dir removed by kubelet",
        Duration::from_secs(10),
        Duration::from_millis(500),
        || async {
            (!log_dir.exists())
                .then_some(())
                .ok_or(format!("{} still there", log_dir.display()))
        },
    )
    .await;
    step(9, "manifest removed; pod gone, nothing leaked", t);

    node.kubelet.stop();
    let failed = node.host.remove_cgroups();
    assert!(failed.is_empty(), "cgroups that would not go: {failed:?}");
    eprintln!("kubelet e2e: total {:.1}s", t0.elapsed().as_secs_f64());
}

/// The stats path of kubelets that take pod stats from the runtime alone
/// (`PodAndContainerStatsFromCRI`, alpha in 1.26, the default path in
/// later kubelets' plans): `/stats/summary` is built from
/// ListPodSandboxStats, network included, for a pod on the CNI bridge and
/// one on the host's network, and the kubelet keeps serving it once their
/// sandboxes are stopped.
///
/// A `network` without `default_interface` (crid once sent one for a
/// host-network pod or a stopped sandbox) makes kubelet 1.26 panic
/// (cri_stats_provider.go:936, criInterfaceToSummary); its eviction manager
/// asks every 10 s, so the kubelet exits. Like containerd, crid sets
/// `network` only with a default interface, and lists no stats for
/// sandboxes that are not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_takes_pod_stats_from_cri() {
    let Some(bin) = kubelet_binary() else {
        return;
    };
    let _one = ONE_KUBELET.lock().await;
    let t0 = Instant::now();
    let node = Node::start(
        bin,
        json!({"featureGates": {"PodAndContainerStatsFromCRI": true}}),
    )
    .await;
    let env = &node.env;
    let sleeper = |name: &str, host_network: bool| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "hostNetwork": host_network,
                "terminationGracePeriodSeconds": 1,
                "containers": [{
                    "name": "sleeper", "image": env.image, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "trap 'exit 0' TERM; while sleep 1; do :; done"]
                }]
            }
        })
    };
    let pods = [("bridged", false), ("hostnet", true)];
    for (name, host_network) in pods {
        node.add_pod(&sleeper(name, host_network));
    }
    let names: Vec<String> = pods.iter().map(|(n, _)| node.pod_name(n)).collect();
    wait_for(
        &node.kubelet,
        "both pods running",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || async {
            let cs = env.containers().await;
            (cs.iter().filter(|c| running(c)).count() == 2)
                .then_some(())
                .ok_or(format!("{:?}", running_set(&cs)))
        },
    )
    .await;
    step(1, "a bridged and a host-network pod running", t0);

    let t = Instant::now();
    let summary = wait_for(
        &node.kubelet,
        "pod stats from CRI in /stats/summary",
        Duration::from_secs(60),
        Duration::from_secs(1),
        || async {
            let s = get_json(&node.kubelet.read_only, "/stats/summary")?;
            let mut found = vec![];
            for name in &names {
                let p = s["pods"]
                    .as_array()
                    .and_then(|ps| ps.iter().find(|p| p["podRef"]["name"] == name.as_str()))
                    .cloned()
                    .ok_or(format!("{name} not in /stats/summary"))?;
                for (what, v) in [
                    ("cpu.usageNanoCores", &p["cpu"]["usageNanoCores"]),
                    ("memory.workingSetBytes", &p["memory"]["workingSetBytes"]),
                    (
                        "containers[0].rootfs",
                        &p["containers"][0]["rootfs"]["usedBytes"],
                    ),
                ] {
                    if v.as_u64().unwrap_or(0) == 0 {
                        return Err(format!("{name}: no {what}: {p}"));
                    }
                }
                found.push(p);
            }
            Ok(found)
        },
    )
    .await;
    let bridged = &summary[0];
    assert_eq!(
        bridged["network"]["name"], "eth0",
        "the bridged pod's default interface: {bridged}"
    );
    step(2, "/stats/summary from ListPodSandboxStats", t);
    eprintln!(
        "  bridged pod: network {}; host-network pod: network {}",
        bridged["network"], summary[1]["network"]
    );

    // Stopped sandboxes stay listed until kubelet's garbage collection;
    // kubelet (eviction manager every 10 s, and this test) keeps asking.
    let t = Instant::now();
    for (name, _) in pods {
        node.remove_pod(name);
    }
    wait_sandboxes_stopped(&node).await;
    for _ in 0..12 {
        assert!(
            !node.kubelet.exited(),
            "the kubelet exited while its pods' sandboxes were stopped"
        );
        get_json(&node.kubelet.read_only, "/stats/summary").expect("/stats/summary");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(!node.kubelet.exited(), "the kubelet exited");
    step(3, "kubelet serves stats with stopped sandboxes", t);
}
