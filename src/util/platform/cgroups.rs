//! Which kinds of cgroup limit the node's OCI runtime can apply: the cgroup
//! mode (v1, hybrid, v2) and, per kind, whether its controller (or the part
//! of one it needs) is there. Detected once for the host (`host()`); the
//! detection itself (`Cgroups::detect`) is pure logic over a cgroup root,
//! the mount table and crid's own cgroup, so tests run it on fake trees.
//! Owns detection only: what to do with a limit the node lacks is decided
//! in `container::spec::resources`.
//!
//! As runc sees it: on v1 every controller is a hierarchy of its own
//! (found in the mount table, wherever it is mounted); on a hybrid host
//! (v1 hierarchies plus cgroup2 at `<root>/unified`) runc applies limits
//! through the v1 hierarchies only, so a controller counts only when its v1
//! hierarchy is mounted, and `unified` entries are refused as on v1; on v2
//! the root's `cgroup.controllers` says which controllers there are.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// How the node's cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every controller in a v1 hierarchy of its own.
    V1,
    /// v1 hierarchies, plus cgroup2 at `<root>/unified` that holds no
    /// limits (systemd's bookkeeping, pressure information).
    Hybrid,
    /// One cgroup2 hierarchy at the root.
    V2,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::V1 => "cgroup v1",
            Mode::Hybrid => "hybrid cgroups: limits through v1 hierarchies only",
            Mode::V2 => "cgroup v2",
        })
    }
}

/// A kind of limit that needs a controller, or part of one, a node may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// Hugepage limits.
    Hugetlb,
    /// Swap limits: v1 `memory.memsw.*`, v2 `memory.swap.max`.
    MemorySwap,
    Pids,
    /// cpuset cpus and mems.
    Cpuset,
    /// CFS bandwidth: cpu quota, period and burst.
    CpuQuota,
    /// Real-time cpu time (`cpu.rt_runtime_us`, v1 only).
    CpuRealtime,
    /// v1 `blkio`, v2 `io`.
    Io,
    Rdma,
    Misc,
    /// `unified` entries (cgroup v2 files) of a controller not listed
    /// above, or any `unified` entry on v1 and hybrid hosts.
    Unified,
}

impl Controller {
    pub const ALL: [Controller; 10] = [
        Controller::Hugetlb,
        Controller::MemorySwap,
        Controller::Pids,
        Controller::Cpuset,
        Controller::CpuQuota,
        Controller::CpuRealtime,
        Controller::Io,
        Controller::Rdma,
        Controller::Misc,
        Controller::Unified,
    ];

    /// What the node lacks, for logs and errors.
    pub fn describe(self) -> &'static str {
        match self {
            Controller::Hugetlb => "the hugetlb controller",
            Controller::MemorySwap => "swap accounting (memory.memsw / memory.swap.max)",
            Controller::Pids => "the pids controller",
            Controller::Cpuset => "the cpuset controller",
            Controller::CpuQuota => "CFS bandwidth control (cpu quota)",
            Controller::CpuRealtime => "real-time cpu time (cpu.rt_runtime_us)",
            Controller::Io => "the blkio/io controller",
            Controller::Rdma => "the rdma controller",
            Controller::Misc => "the misc controller",
            Controller::Unified => "cgroup v2 files",
        }
    }
}

/// What the node's cgroups can apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroups {
    pub mode: Mode,
    available: BTreeSet<Controller>,
    /// The v2 root's `cgroup.controllers` (empty unless `Mode::V2`).
    v2_controllers: BTreeSet<String>,
}

/// One filesystem of the mount table.
struct Mount {
    point: PathBuf,
    fstype: String,
    /// Super options; a v1 hierarchy's controllers are among them.
    options: Vec<String>,
}

impl Mount {
    fn is_v1(&self) -> bool {
        self.fstype == "cgroup"
    }
    fn is_v2(&self) -> bool {
        self.fstype == "cgroup2"
    }
}

impl Cgroups {
    /// The host's, detected on first use: `/sys/fs/cgroup`,
    /// `/proc/self/mountinfo`, `/proc/self/cgroup`. Logged once.
    pub fn host() -> &'static Cgroups {
        static HOST: OnceLock<Cgroups> = OnceLock::new();
        HOST.get_or_init(|| {
            let read = |p: &str| {
                std::fs::read_to_string(p).unwrap_or_else(|e| {
                    tracing::warn!("cannot read {p}: {e}; cgroup controllers may be missed");
                    String::new()
                })
            };
            let c = Cgroups::detect(
                Path::new("/sys/fs/cgroup"),
                &read("/proc/self/mountinfo"),
                &read("/proc/self/cgroup"),
            );
            let missing: Vec<_> = Controller::ALL
                .iter()
                .filter(|k| !c.has(**k))
                .map(|k| format!("{k:?}"))
                .collect();
            tracing::info!(mode = ?c.mode, missing = %missing.join(","), "cgroup controllers detected");
            c
        })
    }

    /// Pure detection: `root` is where cgroups are mounted (`/sys/fs/cgroup`),
    /// `mountinfo` the text of `/proc/self/mountinfo`, `self_cgroup` that of
    /// `/proc/self/cgroup` (v2 swap accounting shows in non-root cgroups only).
    pub fn detect(root: &Path, mountinfo: &str, self_cgroup: &str) -> Cgroups {
        let mounts = mounts(mountinfo);
        let at = |p: &Path| mounts.iter().rev().find(|m| m.point == p);
        let mode = match (at(root), at(&root.join("unified"))) {
            (Some(m), _) if m.is_v2() => Mode::V2,
            (_, Some(m)) if m.is_v2() => Mode::Hybrid,
            _ => Mode::V1,
        };
        let mut available = BTreeSet::new();
        let mut v2_controllers = BTreeSet::new();
        if mode == Mode::V2 {
            v2_controllers = std::fs::read_to_string(root.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect();
            let has = |c: &str| v2_controllers.contains(c);
            for (name, kind) in [
                ("hugetlb", Controller::Hugetlb),
                ("pids", Controller::Pids),
                ("cpuset", Controller::Cpuset),
                ("cpu", Controller::CpuQuota),
                ("io", Controller::Io),
                ("rdma", Controller::Rdma),
                ("misc", Controller::Misc),
            ] {
                if has(name) {
                    available.insert(kind);
                }
            }
            if has("memory") && v2_swap_file(root, self_cgroup) {
                available.insert(Controller::MemorySwap);
            }
            available.insert(Controller::Unified);
        } else {
            // runc takes the first hierarchy of each controller.
            let v1 = |c: &str| {
                mounts
                    .iter()
                    .find(|m| m.is_v1() && m.options.iter().any(|o| o == c))
                    .map(|m| m.point.as_path())
            };
            for (name, kind) in [
                ("hugetlb", Controller::Hugetlb),
                ("pids", Controller::Pids),
                ("cpuset", Controller::Cpuset),
                ("blkio", Controller::Io),
                ("rdma", Controller::Rdma),
                ("misc", Controller::Misc),
            ] {
                if v1(name).is_some() {
                    available.insert(kind);
                }
            }
            for (name, file, kind) in [
                ("cpu", "cpu.cfs_quota_us", Controller::CpuQuota),
                ("cpu", "cpu.rt_runtime_us", Controller::CpuRealtime),
                (
                    "memory",
                    "memory.memsw.limit_in_bytes",
                    Controller::MemorySwap,
                ),
            ] {
                if v1(name).is_some_and(|dir| dir.join(file).exists()) {
                    available.insert(kind);
                }
            }
        }
        Cgroups {
            mode,
            available,
            v2_controllers,
        }
    }

    /// Whether limits of this kind can be applied.
    pub fn has(&self, kind: Controller) -> bool {
        self.available.contains(&kind)
    }

    /// What a `unified` entry (a cgroup v2 file name) needs that the node
    /// lacks, if anything: the kind, and a description naming the controller.
    pub fn unified_key_lacks(&self, key: &str) -> Option<(Controller, String)> {
        if self.mode != Mode::V2 {
            return Some((
                Controller::Unified,
                "cgroup v2 (runc refuses unified on v1)".into(),
            ));
        }
        let prefix = key.split('.').next().unwrap_or_default();
        let kind = match prefix {
            // Core files of every cgroup.
            "cgroup" => return None,
            "memory" if key.starts_with("memory.swap.") => Controller::MemorySwap,
            "hugetlb" => Controller::Hugetlb,
            "pids" => Controller::Pids,
            "cpuset" => Controller::Cpuset,
            "io" => Controller::Io,
            "rdma" => Controller::Rdma,
            "misc" => Controller::Misc,
            other if self.v2_controllers.contains(other) => return None,
            other => {
                return Some((Controller::Unified, format!("the {other} controller")));
            }
        };
        (!self.has(kind)).then(|| (kind, kind.describe().to_string()))
    }

    /// Log at debug, once per process and kind, that `asked` was left out
    /// for lack of its controller.
    pub fn log_dropped_once(&self, kind: Controller, asked: &str) {
        static LOGGED: AtomicU32 = AtomicU32::new(0);
        let bit = 1u32 << (kind as u32);
        if LOGGED.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            tracing::debug!(
                "{asked} dropped: the node ({}) lacks {} (logged once)",
                self.mode,
                kind.describe()
            );
        }
    }

    /// Every kind available (tests of spec generation, which are not about the host).
    pub fn everything() -> Cgroups {
        Cgroups {
            mode: Mode::V2,
            available: Controller::ALL.into_iter().collect(),
            v2_controllers: [
                "cpu", "memory", "io", "pids", "cpuset", "hugetlb", "rdma", "misc",
            ]
            .map(String::from)
            .into(),
        }
    }

    /// Only the given kinds available (tests).
    pub fn only(mode: Mode, kinds: &[Controller], v2_controllers: &[&str]) -> Cgroups {
        Cgroups {
            mode,
            available: kinds.iter().copied().collect(),
            v2_controllers: v2_controllers.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// v2 swap accounting: `memory.swap.max` exists in non-root cgroups only,
/// so look in crid's own cgroup (and its parents), as containerd does; in
/// any child of the root when crid runs in the root cgroup.
fn v2_swap_file(root: &Path, self_cgroup: &str) -> bool {
    let own = self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/');
    let mut dir = root.join(own);
    while dir.starts_with(root) && dir != root {
        if dir.join("memory.swap.max").exists() {
            return true;
        }
        if !dir.pop() {
            break;
        }
    }
    std::fs::read_dir(root).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.path().join("memory.swap.max").exists())
    })
}

/// The mounts of a mount table (`/proc/self/mountinfo`), in order: fields
/// `id parent dev root point options [tags...] - fstype source superoptions`.
fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let point = pre.split(' ').nth(4)?;
            let mut post = post.split(' ');
            let fstype = post.next()?;
            let options = post.nth(1).unwrap_or_default();
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_string(),
                options: options.split(',').map(String::from).collect(),
            })
        })
        .collect()
}

/// Mount points escape space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                let v = d.iter().fold(0u16, |v, c| v * 8 + u16::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[path = "cgroups_tests.rs"]
mod tests;
