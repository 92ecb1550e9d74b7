//! CPU time and memory of a process, from /proc.

use std::path::Path;

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
    let mut count = 0;
    let mut rss = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
        else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        let is_shim = args
            .first()
            .map(|a| String::from_utf8_lossy(a).contains("containerd-shim"))
            .unwrap_or(false);
        let has = |flag: &str, val: &str| {
            args.windows(2)
                .any(|w| w[0] == flag.as_bytes() && w[1] == val.as_bytes())
        };
        if is_shim && has("-namespace", namespace) && has("-address", address) {
            count += 1;
            rss += memory_kib(pid).map(|m| m.0).unwrap_or(0);
        }
    }
    (count, rss)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stat_cpu_fields() {
        let line = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 100 0 0";
        assert_eq!(super::parse_stat_cpu(line), Some(12));
        assert!(super::cpu_seconds(std::process::id()).is_some());
        assert!(super::memory_kib(std::process::id()).unwrap().0 > 0);
    }
}
