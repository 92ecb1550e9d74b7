//! Reading a process's cgroup usage from the cgroup filesystem (v1 and v2),
//! found through `/proc/<pid>/cgroup`. Parsing is separated from I/O so it
//! can be unit-tested.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One sample of a cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupUsage {
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    pub memory_working_set: u64,
    pub memory_rss: u64,
    pub memory_limit: Option<u64>,
    pub page_faults: u64,
    pub major_page_faults: u64,
    pub pids: u64,
    /// Pressure stall information, from the cgroup v2 (unified) hierarchy.
    pub psi: Psi,
    /// The cgroup's directory in the unified hierarchy, if it has one.
    pub unified_dir: Option<PathBuf>,
}

/// One line of a `*.pressure` file; `total` in microseconds, as the
/// kernel writes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PsiLine {
    pub total_us: u64,
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
}

/// A `*.pressure` file: `some` and (on kernels that have it) `full`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pressure {
    pub some: PsiLine,
    pub full: Option<PsiLine>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Psi {
    pub cpu: Option<Pressure>,
    pub memory: Option<Pressure>,
    pub io: Option<Pressure>,
}

/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` (and a `full` line).
pub fn parse_pressure(text: &str) -> Option<Pressure> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next();
        let mut l = PsiLine::default();
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                continue;
            };
            match k {
                "avg10" => l.avg10 = v.parse().ok()?,
                "avg60" => l.avg60 = v.parse().ok()?,
                "avg300" => l.avg300 = v.parse().ok()?,
                "total" => l.total_us = v.parse().ok()?,
                _ => {}
            }
        }
        match kind {
            Some("some") => some = Some(l),
            Some("full") => full = Some(l),
            _ => {}
        }
    }
    Some(Pressure { some: some?, full })
}

/// The cgroup's directory in the unified (v2) hierarchy: `/sys/fs/cgroup`
/// on a v2 host, `/sys/fs/cgroup/unified` on a hybrid one.
pub fn unified_dir(paths: &HashMap<String, String>) -> Option<PathBuf> {
    let path = paths.get("")?.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    let hybrid = root.join("unified");
    let base = if hybrid.join("cgroup.controllers").exists() {
        hybrid
    } else {
        root.to_path_buf()
    };
    Some(base.join(path))
}

/// The pressure files of a v2 cgroup directory (each absent when the
/// kernel has no PSI).
pub fn psi_of(dir: &Path) -> Psi {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .and_then(|t| parse_pressure(&t))
    };
    Psi {
        cpu: read("cpu.pressure"),
        memory: read("memory.pressure"),
        io: read("io.pressure"),
    }
}

/// `/proc/<pid>/cgroup` → controller (or "" for the v2 unified path) → path.
pub fn parse_proc_cgroup(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        if controllers.is_empty() {
            out.insert(String::new(), path.to_string());
        } else {
            for c in controllers.split(',') {
                out.insert(c.trim_start_matches("name=").to_string(), path.to_string());
            }
        }
    }
    out
}

/// `key value` lines (memory.stat, cpu.stat).
pub fn parse_flat_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect()
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Usage of the cgroup the process `pid` is in; `None` when it is gone.
pub fn usage_of_pid(pid: u32) -> Option<CgroupUsage> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let paths = parse_proc_cgroup(&text);
    let root = Path::new("/sys/fs/cgroup");
    let unified = unified_dir(&paths);
    let mut usage = if let Some(mem) = paths.get("memory") {
        usage_v1(root, &paths, mem)
    } else {
        usage_v2(unified.as_deref()?)
    };
    if let Some(dir) = &unified {
        usage.psi = psi_of(dir);
    }
    usage.unified_dir = unified;
    Some(usage)
}

/// The memory cgroup directory of the process `pid`: its v1 `memory`
/// controller's directory, or its v2 directory; `None` when it is gone.
pub fn memory_dir_of_pid(pid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let paths = parse_proc_cgroup(&text);
    match paths.get("memory") {
        Some(mem) => Some(controller_dir(Path::new("/sys/fs/cgroup"), "memory", mem)),
        None => unified_dir(&paths),
    }
}

/// How many processes the kernel's OOM killer killed in the memory cgroup
/// `dir` (`oom_kill` of v2 `memory.events`, or of v1 `memory.oom_control`
/// since Linux 4.13); `None` when the cgroup is gone or has no counter.
pub fn oom_kills(dir: &Path) -> Option<u64> {
    ["memory.events", "memory.oom_control"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .and_then(|t| parse_flat_keyed(&t).get("oom_kill").copied())
}

fn controller_dir(root: &Path, controller: &str, path: &str) -> PathBuf {
    root.join(controller).join(path.trim_start_matches('/'))
}

fn usage_v1(root: &Path, paths: &HashMap<String, String>, mem_path: &str) -> CgroupUsage {
    let mem = controller_dir(root, "memory", mem_path);
    let stat = std::fs::read_to_string(mem.join("memory.stat"))
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default();
    let usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
    let inactive = stat.get("total_inactive_file").copied().unwrap_or(0);
    let limit = read_u64(&mem.join("memory.limit_in_bytes")).filter(|l| *l < (1 << 62));
    let cpu = paths
        .get("cpuacct")
        .and_then(|p| read_u64(&controller_dir(root, "cpuacct", p).join("cpuacct.usage")))
        .unwrap_or(0);
    let pids = paths
        .get("pids")
        .and_then(|p| read_u64(&controller_dir(root, "pids", p).join("pids.current")))
        .unwrap_or(0);
    CgroupUsage {
        cpu_usage_ns: cpu,
        memory_usage: usage,
        memory_working_set: usage.saturating_sub(inactive),
        memory_rss: stat.get("total_rss").copied().unwrap_or(0),
        memory_limit: limit,
        page_faults: stat.get("total_pgfault").copied().unwrap_or(0),
        major_page_faults: stat.get("total_pgmajfault").copied().unwrap_or(0),
        pids,
        psi: Psi::default(),
        unified_dir: None,
    }
}

fn usage_v2(dir: &Path) -> CgroupUsage {
    let stat = std::fs::read_to_string(dir.join("memory.stat"))
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default();
    let cpu = std::fs::read_to_string(dir.join("cpu.stat"))
        .map(|t| parse_flat_keyed(&t))
        .unwrap_or_default();
    let usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
    CgroupUsage {
        cpu_usage_ns: cpu.get("usage_usec").copied().unwrap_or(0) * 1000,
        memory_usage: usage,
        memory_working_set: usage.saturating_sub(stat.get("inactive_file").copied().unwrap_or(0)),
        memory_rss: stat.get("anon").copied().unwrap_or(0),
        memory_limit: read_u64(&dir.join("memory.max")),
        page_faults: stat.get("pgfault").copied().unwrap_or(0),
        major_page_faults: stat.get("pgmajfault").copied().unwrap_or(0),
        pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
        psi: Psi::default(),
        unified_dir: None,
    }
}

/// Per-interface (rx bytes, rx errors, tx bytes, tx errors) from `/proc/<pid>/net/dev`,
/// which shows the network namespace of that process.
pub fn parse_net_dev(text: &str) -> Vec<(String, [u64; 4])> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() >= 11).then(|| (name.trim().to_string(), [f[0], f[2], f[8], f[10]]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_v1_and_v2_lines() {
        let m = parse_proc_cgroup("12:memory:/kubepods/podx/abc\n5:cpu,cpuacct:/kubepods/podx/abc\n1:name=systemd:/init\n0::/unified/x\n");
        assert_eq!(m["memory"], "/kubepods/podx/abc");
        assert_eq!(m["cpuacct"], "/kubepods/podx/abc");
        assert_eq!(m["cpu"], "/kubepods/podx/abc");
        assert_eq!(m["systemd"], "/init");
        assert_eq!(m[""], "/unified/x");
    }

    #[test]
    fn pressure_files_with_and_without_full() {
        let p = parse_pressure(
            "some avg10=1.38 avg60=8.19 avg300=9.05 total=6314717413\nfull avg10=0.00 avg60=0.50 avg300=0.00 total=12\n",
        )
        .unwrap();
        assert_eq!(p.some.total_us, 6314717413);
        assert_eq!(p.some.avg60, 8.19);
        assert_eq!(p.full.unwrap().total_us, 12);
        let p = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n").unwrap();
        assert_eq!((p.some.total_us, p.full), (5, None));
        assert_eq!(parse_pressure(""), None);
        assert_eq!(parse_pressure("some avg10=x total=1\n"), None);
    }

    #[test]
    fn net_dev_columns() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:    5000      40    1    0    0     0          0         0     7000      50    3    0    0     0       0          0\n";
        let v = parse_net_dev(text);
        assert_eq!(v[1], ("eth0".to_string(), [5000, 1, 7000, 3]));
    }

    #[test]
    fn oom_kill_counter_of_v1_and_v2_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(oom_kills(dir.path()), None);
        std::fs::write(
            dir.path().join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(oom_kills(dir.path()), Some(2));
        std::fs::write(
            dir.path().join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kills(dir.path()), Some(1));
    }

    #[test]
    fn flat_keyed_skips_garbage() {
        let m = parse_flat_keyed("total_rss 10\nbogus\ntotal_inactive_file 3\n");
        assert_eq!(m["total_rss"], 10);
        assert_eq!(m.len(), 2);
    }
}
