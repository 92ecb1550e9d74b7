//! Facts about the node that shape specs: the lowest `oom_score_adj` crid may
//! set (no CAP_SYS_RESOURCE → it may not go below its own), the cgroup
//! controllers there are (`cgroups`).

pub mod cgroup_usage;
pub mod cgroups;

use cgroups::{Cgroups, Controller, Mode};
use std::sync::OnceLock;

const CAP_SYS_RESOURCE: u32 = 24;

/// crid may lower `oom_score_adj` below its own (and raise hard rlimits).
pub fn has_cap_sys_resource() -> bool {
    has_capability(CAP_SYS_RESOURCE)
}

fn has_capability(cap: u32) -> bool {
    effective_capabilities() & (1 << cap) != 0
}

/// crid's effective capability set, as a bit mask (bit n = capability n).
/// "All capabilities" (a privileged container, an add of ALL) means these,
/// as in containerd: runc cannot hand out what its caller lacks. All bits
/// when /proc cannot be read.
pub fn effective_capabilities() -> u64 {
    static MASK: OnceLock<u64> = OnceLock::new();
    *MASK.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(u64::MAX)
    })
}

/// The lowest `oom_score_adj` a container may be given. Without
/// CAP_SYS_RESOURCE, lowering below crid's own value fails inside runc, so
/// requests are clamped to it (logged once).
pub fn oom_score_adj_min() -> i32 {
    static MIN: OnceLock<i32> = OnceLock::new();
    *MIN.get_or_init(|| {
        if has_cap_sys_resource() {
            return -1000;
        }
        let own = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        tracing::warn!(
            min = own,
            "no CAP_SYS_RESOURCE: oom_score_adj requests below {own} are clamped to {own}"
        );
        own
    })
}

/// Clamp a requested `oom_score_adj` to what crid may set.
pub fn clamp_oom_score_adj(requested: i64) -> i32 {
    (requested.clamp(-1000, 1000) as i32).max(oom_score_adj_min())
}

/// True on a unified (cgroup v2 only) hierarchy.
pub fn cgroup_v2_unified() -> bool {
    Cgroups::host().mode == Mode::V2
}

/// True when the kernel has AppArmor enabled.
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// True when a swap limit can be set (v1 with memsw accounting, v2 with
/// `memory.swap.max`).
pub fn swap_accounting() -> bool {
    Cgroups::host().has(Controller::MemorySwap)
}

/// Fix glibc malloc's mmap and trim thresholds at 1 MiB, before any thread
/// starts. By default both grow with the largest block freed (up to 32 MiB):
/// after a pull or the build of the pause image (blocks of 1–5 MiB), freed
/// memory stays in the top of a thread's arena, which `malloc_trim` does not
/// shrink, and an idle crid kept ~3.5 MiB it no longer used. Blocks of
/// 1 MiB and more (layer chunks, the pause layer) now come from mmap and go
/// back on free; gRPC messages and everything smaller stay in the arenas.
pub fn fix_malloc_thresholds() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator tunables; called first in main,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

/// Return the allocator's free pages to the system. A pull frees many
/// buffers below the mmap threshold (see [`fix_malloc_thresholds`]), and
/// the free pages between live blocks of an arena stay resident until
/// trimmed.
pub fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
