//! Test support: a real containerd and a real crid, each started on its own
//! paths under a temp dir and stopped by PID; a CRI client; test images built
//! from Debian's busybox-static.
#![allow(dead_code)]

pub mod gated;
pub mod h2raw;
pub mod http;
pub mod image;
pub mod pod;
pub mod spdy;
pub mod tls;
pub mod token;
pub mod userns;

use crid::cri::image_service_client::ImageServiceClient;
use crid::cri::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub type RuntimeClient = RuntimeServiceClient<Channel>;
pub type ImageClient = ImageServiceClient<Channel>;

/// A short temp dir (unix socket paths are limited to 108 bytes).
pub fn short_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .expect("tempdir")
}

/// Skip (return true) when the machine lacks what integration tests need;
/// `make test` installs it, so CI never skips.
pub fn missing_tools() -> bool {
    for tool in ["containerd", "runc"] {
        if which(tool).is_none() && !(tool == "containerd" && test_containerd_dir().is_some()) {
            eprintln!("SKIP: {tool} not installed (run `make test`, which installs it)");
            return true;
        }
    }
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP: integration tests need root");
        return true;
    }
    false
}

/// `CRID_TEST_CONTAINERD=/path/to/containerd` runs every test containerd
/// from that binary (a containerd 2.x built by hand, say) instead of the
/// one on PATH; its directory, where its `ctr` and
/// `containerd-shim-runc-v2` sit, goes first on containerd's PATH (shim
/// lookup) and gives the tests' `ctr`. Unset, nothing changes.
const TEST_CONTAINERD_ENV: &str = "CRID_TEST_CONTAINERD";

/// The containerd binary tests start (see `TEST_CONTAINERD_ENV`).
pub fn test_containerd_binary() -> PathBuf {
    match std::env::var_os(TEST_CONTAINERD_ENV) {
        Some(bin) => PathBuf::from(bin),
        None => which("containerd").expect("containerd installed"),
    }
}

/// The directory of the containerd named by `TEST_CONTAINERD_ENV`, if set.
fn test_containerd_dir() -> Option<PathBuf> {
    std::env::var_os(TEST_CONTAINERD_ENV).map(|bin| {
        Path::new(&bin)
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf()
    })
}

/// The major version `containerd --version` prints
/// (`containerd github.com/containerd/containerd/v2 v2.3.4 <rev>`;
/// Debian's 1.6 prints `... 1.6.20~ds1 ...`).
fn containerd_major_version(bin: &Path) -> u32 {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{} --version: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.trim_start_matches('v').split('.').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{} --version printed {text:?}", bin.display()))
}

/// `ctr` as the tests run it: the one next to `TEST_CONTAINERD_ENV`'s
/// containerd when set.
fn ctr_command() -> Command {
    match test_containerd_dir() {
        Some(dir) if dir.join("ctr").is_file() => Command::new(dir.join("ctr")),
        _ => Command::new("ctr"),
    }
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Wait (bounded: 30 s) until `path` accepts connections; panics with the
/// log if `child` exits first.
pub fn wait_for_socket(path: &Path, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before listening:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{what} did not listen on {} within 30s:\n{}",
                path.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Start `cmd` in a session of its own (so a signal to the test's process
/// group does not reach it), stdin empty, stdout and stderr appended to `log`.
pub fn spawn_in_own_session(cmd: &mut Command, log: &Path) -> Child {
    let logf = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    cmd.stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf);
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::unistd::setsid().ok();
            Ok(())
        });
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()))
}

/// Stop a process we started: SIGTERM, then SIGKILL after `grace`.
pub fn stop_child(child: &mut Child, grace: Duration) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
}

/// Unmount everything mounted under `dir` (deepest first), for cleanup.
pub fn umount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mount points under `dir` (for leak assertions).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

/// PIDs of the machine's processes whose arguments (`/proc/<pid>/cmdline`,
/// split at NULs) match.
pub fn pids_whose_cmdline(matches: impl Fn(&[&[u8]]) -> bool) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            matches(&args)
        })
        .collect()
}

/// Whether the crids the tests start without a config of their own run
/// their pods on crid's shim, crid's default handler (`crid-shim`). Set
/// `CRID_TEST_SHIM=0` to run them on containerd's runc shim instead
/// (handler `runc`, with a crid-logger per container): `make test` runs a
/// smaller set of test files that way too. Every test containerd finds the
/// shim built next to crid on its PATH either way.
pub fn on_crids_shim() -> bool {
    std::env::var_os("CRID_TEST_SHIM").is_none_or(|v| v != "0")
}

/// crid's config with containerd's runc shim as the default runtime handler
/// (the rest of crid's default config is kept).
pub const RUNC_SHIM_DEFAULT_CONFIG: &str = "[containerd]\ndefault_runtime = \"runc\"\n";

/// A PATH for a test containerd (or `crid check`, which looks where
/// containerd does): `first`, then the directory of crid's shim (the default
/// handler's, built next to crid), then this process's PATH.
pub fn path_with_crids_shim(first: impl IntoIterator<Item = PathBuf>) -> std::ffi::OsString {
    let built_shims = built_next_to_crid(CRID_SHIM)
        .parent()
        .unwrap()
        .to_path_buf();
    let system = std::env::var_os("PATH").unwrap_or_default();
    let dirs = first
        .into_iter()
        .chain([built_shims])
        .chain(std::env::split_paths(&system));
    std::env::join_paths(dirs).expect("PATH entries without ':'")
}

/// crid's own shim binary, as containerd looks it up.
pub const CRID_SHIM: &str = "containerd-shim-crid-v1";

/// A binary of another workspace crate (the shim, crid-logger), where `cargo
/// build --bins` puts it: next to crid, where crid looks for it too.
pub fn built_next_to_crid(name: &str) -> PathBuf {
    let built = Path::new(env!("CARGO_BIN_EXE_crid")).with_file_name(name);
    assert!(
        built.exists(),
        "{} missing: run `cargo build --bins` first",
        built.display()
    );
    built
}

/// A directory holding a link to crid's shim as built next to crid (`cargo
/// build --bins` builds it), to put first on a test containerd's PATH.
/// `CRID_SHIM_BINARY` names another build (a release one, to measure it).
pub fn crid_shim_bin_dir() -> tempfile::TempDir {
    let built = match std::env::var_os("CRID_SHIM_BINARY") {
        Some(other) => PathBuf::from(other),
        None => built_next_to_crid(CRID_SHIM),
    };
    assert!(built.exists(), "{} missing", built.display());
    // A relative CRID_SHIM_BINARY would make a dangling link.
    let built = built.canonicalize().unwrap();
    let dir = short_tempdir("shimbin");
    std::os::unix::fs::symlink(&built, dir.path().join(CRID_SHIM)).unwrap();
    dir
}

/// A containerd of the test's own: own root, state and socket, CRI plugin
/// disabled unless `cri_plugin` is set.
pub struct TestContainerd {
    pub dir: tempfile::TempDir,
    pub address: PathBuf,
    /// TOML appended to the config on every (re)start.
    pub extra_config: String,
    /// Load containerd's own CRI plugin on the next (re)start. Its section
    /// (`[plugins."io.containerd.grpc.v1.cri"]`, which needs
    /// `restrict_oom_score_adj = true` here) goes in `extra_config`.
    pub cri_plugin: bool,
    /// A directory put first on containerd's PATH, where it looks up shim
    /// binaries (`containerd-shim-<name>-<version>`) before the system's.
    pub path_first: Option<PathBuf>,
    child: Option<Child>,
}

impl TestContainerd {
    pub fn start() -> TestContainerd {
        Self::start_with_config("")
    }

    /// Start with `extra` appended to the config (plugin sections).
    pub fn start_with_config(extra: &str) -> TestContainerd {
        Self::start_with_config_unstarted(extra).spawn()
    }

    /// Start with containerd's CRI plugin loaded, configured by `cri_toml`
    /// (its plugin section; see `cri_plugin`).
    pub fn start_with_cri_plugin(cri_toml: &str) -> TestContainerd {
        let mut t = Self::start_with_config_unstarted(cri_toml);
        t.cri_plugin = true;
        t.spawn()
    }

    /// Start with `dir` first on containerd's PATH (see `path_first`).
    pub fn start_with_path_first(dir: &Path) -> TestContainerd {
        let mut t = Self::start_with_config_unstarted("");
        t.path_first = Some(dir.to_path_buf());
        t.spawn()
    }

    fn start_with_config_unstarted(extra: &str) -> TestContainerd {
        let dir = short_tempdir("ctd");
        let address = dir.path().join("c.sock");
        TestContainerd {
            dir,
            address,
            extra_config: extra.to_string(),
            cri_plugin: false,
            path_first: None,
            child: None,
        }
    }

    fn spawn(mut self) -> TestContainerd {
        self.spawn_child();
        self
    }

    fn spawn_child(&mut self) {
        let d = self.dir.path();
        let binary = test_containerd_binary();
        let containerd2 = containerd_major_version(&binary) >= 2;
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
{disabled}
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{sock}.debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = self.address.display(),
            disabled = match (self.cri_plugin, containerd2) {
                (true, false) => "",
                (false, false) => r#"disabled_plugins = ["io.containerd.grpc.v1.cri"]"#,
                // NRI would listen on the machine's /var/run/nri/nri.sock.
                (true, true) => r#"disabled_plugins = ["io.containerd.nri.v1.nri"]"#,
                (false, true) => {
                    r#"disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"]"#
                }
            },
        );
        // containerd 2.x reads this version-2 config (it migrates it); its
        // shim manager puts shim sockets in `socket_dir`, by default the
        // machine's /run/containerd/s: keep them in the test's dir.
        let shim_sockets = if containerd2 {
            format!(
                "[plugins.\"io.containerd.shim.v1.manager\"]\n  socket_dir = \"{}\"\n",
                self.shim_socket_dir().display()
            )
        } else {
            String::new()
        };
        let config = format!("{config}{shim_sockets}{}\n", self.extra_config);
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = d.join("containerd.log");
        let mut cmd = Command::new(&binary);
        cmd.arg("--config").arg(d.join("config.toml"));
        let dirs = self.path_first.iter().cloned().chain(test_containerd_dir());
        cmd.env("PATH", path_with_crids_shim(dirs));
        let mut child = spawn_in_own_session(&mut cmd, &log);
        wait_for_socket(&self.address, &mut child, "containerd", &log);
        self.child = Some(child);
    }

    /// Stop containerd (by PID) and start it again on the same paths.
    pub fn restart(mut self) -> TestContainerd {
        self.stop();
        self.start_again();
        self
    }

    /// Start containerd again on the same paths after `stop` (shims of
    /// running tasks live on and are reconnected).
    pub fn start_again(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.address);
        self.spawn_child();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(10));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Whether this is a containerd 2.x (`TEST_CONTAINERD_ENV`).
    pub fn is_containerd2(&self) -> bool {
        containerd_major_version(&test_containerd_binary()) >= 2
    }

    /// The `socket_dir` a containerd 2.x's shim manager is given (1.6 has
    /// no such setting).
    pub fn shim_socket_dir(&self) -> PathBuf {
        self.dir.path().join("s")
    }

    /// The bundle of task `id` in k8s.io, where its shim's `start` and
    /// `delete` run, with the `address` file (and on containerd 2.x
    /// `bootstrap.json`, what it made of `start`'s reply).
    pub fn task_bundle(&self, id: &str) -> PathBuf {
        self.dir
            .path()
            .join("state/io.containerd.runtime.v2.task/k8s.io")
            .join(id)
    }

    /// PIDs of the shims serving this containerd (their command line names
    /// its address), containerd's runc shim and crid's alike: which one a
    /// pod gets depends on crid's config (`CRID_TEST_SHIM`, a test's own).
    pub fn shim_pids(&self) -> Vec<u32> {
        let mut pids = self.shim_pids_of("containerd-shim-runc-v2");
        pids.extend(self.shim_pids_of(CRID_SHIM));
        pids
    }

    /// PIDs of the shims of binary `name` serving this containerd.
    pub fn shim_pids_of(&self, name: &str) -> Vec<u32> {
        let address = self.address.to_string_lossy().into_owned();
        pids_whose_cmdline(|args| {
            args.first().is_some_and(|a| a.ends_with(name.as_bytes()))
                && args.contains(&address.as_bytes())
        })
    }

    /// `ctr` against this containerd in the k8s.io namespace.
    pub fn ctr(&self, args: &[&str]) -> String {
        self.try_ctr(args)
            .unwrap_or_else(|e| panic!("ctr {args:?} failed: {e}"))
    }

    /// `ctr`, its stderr as the error when it fails.
    pub fn try_ctr(&self, args: &[&str]) -> Result<String, String> {
        let out = ctr_command()
            .arg("--address")
            .arg(&self.address)
            .args(["--namespace", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl TestContainerd {
    /// SIGKILL and delete every task in k8s.io (what a failed test left
    /// running), so no shim or container outlives the test.
    pub fn kill_all_tasks(&self) {
        let ctr = |args: &[&str]| {
            ctr_command()
                .arg("--address")
                .arg(&self.address)
                .args(["--namespace", "k8s.io"])
                .args(args)
                .stderr(Stdio::null())
                .output()
        };
        let Ok(out) = ctr(&["tasks", "ls", "-q"]) else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
        {
            let _ = ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", id]);
            let _ = ctr(&["tasks", "rm", "--force", id]);
        }
    }
}

impl Drop for TestContainerd {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill_all_tasks();
        }
        self.stop();
        // Shims `kill_all_tasks` could not reach (a containerd that had died,
        // tasks in another namespace) and whatever runs under them.
        kill_process_trees(&self.shim_pids());
        umount_under(self.dir.path());
    }
}

/// SIGKILL each process in `roots` and all of its descendants (collected
/// before the first signal, so a child reparented meanwhile is not missed).
pub fn kill_process_trees(roots: &[u32]) {
    if roots.is_empty() {
        return;
    }
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut tree: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for &(pid, ppid) in &parents {
            if ppid == parent && !tree.contains(&pid) {
                tree.push(pid);
            }
        }
        i += 1;
    }
    for pid in tree {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Options for a crid under test.
#[derive(Clone, Default)]
pub struct CridOptions {
    pub cni_conf_dir: Option<PathBuf>,
    pub extra_args: Vec<String>,
    pub config_toml: Option<String>,
    /// A command crid runs under, with crid's path and arguments appended
    /// (it must exec them, so the child's PID is crid's).
    pub command_prefix: Vec<String>,
}

/// A crid of the test's own, talking to a `TestContainerd`.
pub struct TestCrid {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    pub cni_conf_dir: PathBuf,
    pub containerd_address: PathBuf,
    pub opts: CridOptions,
    child: Option<Child>,
}

impl TestCrid {
    pub fn start(containerd: &TestContainerd) -> TestCrid {
        Self::start_with(containerd, CridOptions::default())
    }

    pub fn start_with(containerd: &TestContainerd, opts: CridOptions) -> TestCrid {
        let dir = short_tempdir("crid");
        let d = dir.path().to_path_buf();
        let cni_conf_dir = opts.cni_conf_dir.clone().unwrap_or_else(|| d.join("net.d"));
        std::fs::create_dir_all(&cni_conf_dir).unwrap();
        let t = TestCrid {
            socket: d.join("crid.sock"),
            root: d.join("root"),
            state: d.join("state"),
            cni_conf_dir,
            containerd_address: containerd.address.clone(),
            opts,
            dir,
            child: None,
        };
        let mut t = t;
        t.spawn();
        t
    }

    /// crid with this test crid's configuration and paths (its global
    /// options), ready for a subcommand or to serve.
    pub fn command(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = match self.opts.command_prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_crid"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_crid")),
        };
        if let Some(toml) = &self.opts.config_toml {
            std::fs::write(d.join("config.toml"), toml).unwrap();
            cmd.arg("--config").arg(d.join("config.toml"));
        } else {
            // Never read the machine's /etc/crid/config.toml in tests.
            let toml = if on_crids_shim() {
                ""
            } else {
                RUNC_SHIM_DEFAULT_CONFIG
            };
            std::fs::write(d.join("config.toml"), toml).unwrap();
            cmd.arg("--config").arg(d.join("config.toml"));
        }
        cmd.arg("--listen")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--containerd-address")
            .arg(&self.containerd_address)
            .arg("--root")
            .arg(&self.root)
            .arg("--state")
            .arg(&self.state)
            .arg("--cni-conf-dir")
            .arg(&self.cni_conf_dir)
            .arg("--cni-bin-dir")
            .arg("/usr/lib/cni:/opt/cni/bin")
            .arg("--registry-config-path")
            .arg(d.join("certs.d"))
            .arg("--log-level")
            .arg("crid=debug,info")
            .args(&self.opts.extra_args);
        cmd
    }

    fn spawn(&mut self) {
        let log = self.dir.path().join("crid.log");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf);
        let mut child = cmd.spawn().expect("start crid");
        wait_for_socket(&self.socket, &mut child, "crid", &log);
        self.child = Some(child);
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGTERM (graceful) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(15));
        }
    }

    /// SIGKILL: crid dies mid-flight.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start crid again on the same paths (after `stop` or `kill9`).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("crid.log")).unwrap_or_default()
    }

    pub async fn channel(&self) -> Channel {
        crid::util::unix_grpc::connect(&self.socket)
            .await
            .expect("connect to crid")
    }

    pub async fn runtime(&self) -> RuntimeClient {
        RuntimeServiceClient::new(self.channel().await).max_decoding_message_size(16 << 20)
    }

    pub async fn images(&self) -> ImageClient {
        ImageServiceClient::new(self.channel().await)
    }
}

impl Drop for TestCrid {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- crid log ----\n{}", self.log());
        }
        umount_under(self.dir.path());
    }
}
