//! CPU time and memory of a process, from /proc.

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of `pid` in seconds (its own threads, not its children).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat).map(|ticks| ticks as f64 / clock_ticks())
}

/// utime + stime in ticks from a /proc/<pid>/stat line (comm may hold spaces).
pub fn parse_stat_cpu(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// (VmRSS, VmHWM) of `pid` in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// containerd shims serving `namespace` for the containerd at `address`:
/// (count, summed VmRSS KiB).
pub fn shims(namespace: &str, address: &str) -> (usize, u64) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| is_shim_of(*pid, namespace, address))
        .collect();
    let rss = pids
        .iter()
        .map(|p| memory_kib(*p).map(|m| m.0).unwrap_or(0))
        .sum();
    (pids.len(), rss)
}

/// (Pss, Pss_Anon) of `pid` in KiB, from /proc/<pid>/smaps_rollup: its
/// share of the pages it maps, each shared page divided by its mappers.
pub fn pss_kib(pid: u32) -> Option<(u64, u64)> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("Pss:")?, field("Pss_Anon:")?))
}

/// What a runtime runs per pod besides the workload: its shims and, below
/// them, crid's log processes and pause containers.
pub const RUNTIME_KINDS: [&str; 3] = ["shim", "crid-logger", "pause"];

/// The runtime's processes for the pods of containerd `namespace` at
/// `address`: (kind from [`RUNTIME_KINDS`], pid). The shims are found by
/// their flags; crid-logger and pause processes by being their descendants.
pub fn runtime_processes(namespace: &str, address: &str) -> Vec<(&'static str, u32)> {
    let mut found = vec![];
    // pid -> (parent, command name)
    let mut procs = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        procs.insert(pid, (ppid, comm));
    }
    let shims: std::collections::HashSet<u32> = procs
        .keys()
        .copied()
        .filter(|pid| is_shim_of(*pid, namespace, address))
        .collect();
    for (pid, (_, comm)) in &procs {
        if shims.contains(pid) {
            found.push(("shim", *pid));
            continue;
        }
        let kind = match comm.as_str() {
            "crid-logger" => "crid-logger",
            "pause" => "pause",
            _ => continue,
        };
        // Below one of the shims (bounded: pid chains are short).
        let mut at = *pid;
        for _ in 0..64 {
            match procs.get(&at) {
                Some((parent, _)) if shims.contains(parent) => {
                    found.push((kind, *pid));
                    break;
                }
                Some((parent, _)) if *parent > 1 => at = *parent,
                _ => break,
            }
        }
    }
    found.sort();
    found
}

fn is_shim_of(pid: u32, namespace: &str, address: &str) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
    let is_shim = args
        .first()
        .is_some_and(|a| String::from_utf8_lossy(a).contains("containerd-shim"));
    let has = |flag: &str, val: &str| {
        args.windows(2)
            .any(|w| w[0] == flag.as_bytes() && w[1] == val.as_bytes())
    };
    is_shim && has("-namespace", namespace) && has("-address", address)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stat_cpu_fields() {
        let line = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 100 0 0";
        assert_eq!(super::parse_stat_cpu(line), Some(12));
        assert!(super::cpu_seconds(std::process::id()).is_some());
        assert!(super::memory_kib(std::process::id()).unwrap().0 > 0);
        let (pss, anon) = super::pss_kib(std::process::id()).unwrap();
        assert!(pss > 0 && anon <= pss);
    }
}
