//! `crid check`: the preflight run on a node before kubelet is switched over
//! to crid. A list of checks, each with a result (ok, warn, BLOCKER, or
//! skipped when what it needs is missing), a one-line detail and, for
//! every result that is not ok, the fix. Each check asks the code the
//! running crid uses (cgroup detection, oom_score_adj clamp, CNI loading,
//! runtime handlers, the containerd adapter), so it judges as crid would.
//! Owns judging and reporting; changes nothing on the node (the pod log
//! probe file is removed at once).
//!
//! What blocks (exit 1) and why:
//! - containerd unreachable: crid serves nothing without it.
//! - containerd's CRI plugin loaded while crid works in `k8s.io`, the
//!   plugin's namespace: two runtimes recover, reap and garbage-collect
//!   each other's containers and tasks. In another namespace it is a
//!   warning: neither sees the other's objects and kubelet talks to one of
//!   them, but the plugin keeps the pods it started running and reads the
//!   same CNI config, so it should go once they are drained.
//! - The configured snapshotter not loaded: no image can be unpacked.
//! - The default handler's OCI runtime or shim missing: no pod starts.
//!   Another handler's is a warning (only pods of that RuntimeClass fail).
//! - A CNI config that is invalid or names a plugin binary that is not
//!   installed: every pod network setup fails. No config at all is a
//!   warning: crid starts and reports NetworkReady=false (as its Status
//!   does), kubelet waits for a network add-on to write one.
//! - Cgroup driver mismatch: crid's `cgroup_driver` against a handler's
//!   `systemd_cgroup`, against kubelet's `cgroupDriver` (`--kubelet-config`),
//!   or the systemd driver without systemd: runc or kubelet fail every pod.
//! - A missing cgroup controller is a warning under
//!   `missing_cgroup_controllers = "drop"` (crid leaves out such limits); under
//!   `"refuse"` it blocks for the limits kubelet sends for ordinary pods
//!   (hugepage limits whenever the kernel has huge page sizes, CFS quota).
//! - No CAP_SYS_RESOURCE is a warning: crid clamps oom_score_adj to its own.
//! - The pod log directory not writable: no container log can be written.
//! - The sandbox image is never a blocker once containerd and its
//!   snapshotter work: crid pulls it or builds its own pause image from the
//!   pause program inside the crid binary. A name that is no valid image
//!   reference blocks.
//! - A CDI spec that cannot be read, or two defining one device: every
//!   container asking for those devices fails (as `crid check` always said).

mod cdi;
mod cgroups;
mod containerd;
mod network;
mod node;
mod report;
mod runtimes;

use crate::config::Config;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

pub use report::{render_json, render_table};

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Warn,
    Blocker,
    /// Not run: what it needs failed (containerd unreachable).
    Skipped,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Warn => "warn",
            Outcome::Blocker => "BLOCKER",
            Outcome::Skipped => "skipped",
        })
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub group: Group,
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
    /// What to do; set for every warning and blocker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn new(group: Group, check: impl Into<String>, outcome: Outcome, detail: String) -> Self {
        Finding {
            group,
            check: check.into(),
            outcome,
            detail,
            fix: None,
        }
    }
    fn ok(group: Group, check: impl Into<String>, detail: String) -> Self {
        Self::new(group, check, Outcome::Ok, detail)
    }
    fn warn(group: Group, check: impl Into<String>, detail: String, fix: String) -> Self {
        Self::new(group, check, Outcome::Warn, detail).with_fix(fix)
    }
    fn blocker(group: Group, check: impl Into<String>, detail: String, fix: String) -> Self {
        Self::new(group, check, Outcome::Blocker, detail).with_fix(fix)
    }
    fn with_fix(mut self, fix: String) -> Self {
        self.fix = Some(fix);
        self
    }
}

/// Groups of checks, selectable with `crid check --only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Containerd,
    Runtimes,
    Network,
    Cgroups,
    Node,
    Cdi,
}

impl Group {
    pub const ALL: [Group; 6] = [
        Group::Containerd,
        Group::Runtimes,
        Group::Network,
        Group::Cgroups,
        Group::Node,
        Group::Cdi,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Group::Containerd => "containerd",
            Group::Runtimes => "runtimes",
            Group::Network => "network",
            Group::Cgroups => "cgroups",
            Group::Node => "node",
            Group::Cdi => "cdi",
        }
    }
}

impl std::str::FromStr for Group {
    type Err = String;
    fn from_str(s: &str) -> Result<Group, String> {
        Group::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Group::ALL.iter().map(|g| g.name()).collect();
                format!("unknown check group {s:?}; one of {}", names.join(", "))
            })
    }
}

/// What the preflight looks at besides crid's configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// kubelet's KubeletConfiguration file, to compare its `cgroupDriver`.
    pub kubelet_config: Option<PathBuf>,
    /// Where kubelet has container logs written (`/var/log/pods`).
    pub pod_log_dir: PathBuf,
    /// Groups to run; empty runs all.
    pub only: Vec<Group>,
    /// Longest wait for any one containerd call.
    pub containerd_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kubelet_config: None,
            pod_log_dir: "/var/log/pods".into(),
            only: vec![],
            containerd_timeout: Duration::from_secs(3),
        }
    }
}

/// Everything the preflight found.
#[derive(Debug)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// The CDI section, printed as `crid check` always printed it.
    pub cdi: Option<crate::container::cdi::Listing>,
}

impl Report {
    pub fn has_blocker(&self) -> bool {
        self.findings.iter().any(|f| f.outcome == Outcome::Blocker)
    }
    pub fn count(&self, outcome: Outcome) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome == outcome)
            .count()
    }
}

/// Run the selected checks in a fixed order.
pub async fn run(config: &Config, opts: &Options) -> Report {
    let wanted = |g: Group| opts.only.is_empty() || opts.only.contains(&g);
    let mut findings = vec![];
    if wanted(Group::Containerd) {
        findings.extend(containerd::check(config, opts.containerd_timeout).await);
    }
    if wanted(Group::Runtimes) {
        findings.extend(runtimes::check(&config.containerd).await);
    }
    if wanted(Group::Network) {
        findings.extend(network::check(config));
    }
    if wanted(Group::Cgroups) {
        findings.extend(cgroups::check(config, opts.kubelet_config.as_deref()));
    }
    if wanted(Group::Node) {
        findings.extend(node::check(&opts.pod_log_dir));
    }
    let mut cdi = None;
    if wanted(Group::Cdi) {
        let (finding, listing) = cdi::check(&config.cdi);
        findings.push(finding);
        cdi = Some(listing);
    }
    Report { findings, cdi }
}
