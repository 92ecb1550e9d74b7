//! Seccomp profiles for containers: crid's `RuntimeDefault` (an allow-list in
//! the spirit of Docker's/containerd's default profile, generated in code and
//! widened by the capabilities the container holds) and Localhost profiles
//! given as JSON text. Pure: no file access here.

use crate::error::{Error, Result};
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg,
    LinuxSeccompArgBuilder, LinuxSeccompOperator as Op, LinuxSyscall,
};

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Syscalls any container may make.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    "arch_prctl",
    "modify_ldt",
    "socket",
];

/// Namespace flags `clone` may not carry without CAP_SYS_ADMIN
/// (NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
const CLONE_NS_FLAGS: u64 = 0x7E02_0000;

/// Syscalls unlocked by a capability, as in Docker's default profile.
const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// A condition on the first syscall argument.
fn arg(value: u64, value_two: Option<u64>, op: Op) -> LinuxSeccompArg {
    let b = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(value)
        .op(op);
    let b = match value_two {
        Some(v) => b.value_two(v),
        None => b,
    };
    b.build().expect("complete seccomp arg")
}

fn rule(names: &[&str], action: Act) -> LinuxSyscall {
    let mut s = LinuxSyscall::default();
    s.set_names(names.iter().map(|n| n.to_string()).collect());
    s.set_action(action);
    s
}

/// crid's `RuntimeDefault` profile for a process holding `caps` (its
/// bounding set): everything not listed fails with EPERM. Keys, reboot,
/// module loading, mount, unshare/setns, namespace-creating clone and
/// ptrace are refused unless the matching capability is held.
pub fn default_profile(caps: &Capabilities) -> LinuxSeccomp {
    let mut syscalls = vec![rule(ALLOWED, Act::ScmpActAllow)];
    // Only the harmless personalities: PER_LINUX, PER_LINUX32, UNAME26, query.
    for v in [0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff] {
        let mut r = rule(&["personality"], Act::ScmpActAllow);
        r.set_args(Some(vec![arg(v, None, Op::ScmpCmpEq)]));
        syscalls.push(r);
    }
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(cap) {
            syscalls.push(rule(names, Act::ScmpActAllow));
        }
    }
    if !caps.contains(&Capability::SysAdmin) {
        // clone without namespace flags; clone3 hides its flags in memory,
        // so it reports ENOSYS and libc falls back to clone.
        let mut clone = rule(&["clone"], Act::ScmpActAllow);
        clone.set_args(Some(vec![arg(
            CLONE_NS_FLAGS,
            Some(0),
            Op::ScmpCmpMaskedEq,
        )]));
        syscalls.push(clone);
        let mut clone3 = rule(&["clone3"], Act::ScmpActErrno);
        clone3.set_errno_ret(Some(ENOSYS));
        syscalls.push(clone3);
    }
    let mut p = LinuxSeccomp::default();
    p.set_default_action(Act::ScmpActErrno);
    p.set_default_errno_ret(Some(EPERM));
    p.set_architectures(Some(vec![
        Arch::ScmpArchX86_64,
        Arch::ScmpArchX86,
        Arch::ScmpArchX32,
    ]));
    p.set_syscalls(Some(syscalls));
    p
}

/// Every syscall the pause process makes: crid's pause program (a static
/// Rust binary: its start-up, signal handlers, `pause`, `wait4` reaping
/// zombies, exit) and the OCI runtime's last steps after it loads the filter
/// and before `execve` (runc init closes its fds, checks /proc/self/fd with
/// `fstatfs` and `getdents64`, and Go's scheduler may run). Read off strace
/// of runc 1.1; an OCI runtime that makes other calls there fails the
/// sandbox's start: `minimal_pause_seccomp = false` is the way out.
const PAUSE_PROGRAM: &[&str] = &[
    "arch_prctl",
    "brk",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "dup3",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
    "execve",
    "exit",
    "exit_group",
    "fcntl",
    "fstat",
    "fstatfs",
    "futex",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "gettimeofday",
    "getuid",
    "madvise",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "pause",
    "poll",
    "ppoll",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "restart_syscall",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "set_robust_list",
    "set_tid_address",
    "sigaltstack",
    "statfs",
    "statx",
    "tgkill",
    "uname",
    "wait4",
    "waitid",
    "write",
    "writev",
];

/// The pause process's profile when the sandbox asks for `RuntimeDefault`
/// and runs crid's own pause program: only the syscalls listed in
/// `PAUSE_PROGRAM`, on the native architecture only (no architectures
/// listed). Stricter than `default_profile`, and far cheaper for the runtime
/// to compile: medians of `runc create` of the pause container here were
/// 41–46 ms with this profile or none, 50–62 ms with the default profile
/// (~360 rules for three architectures).
pub fn pause_program_profile() -> LinuxSeccomp {
    let mut p = LinuxSeccomp::default();
    p.set_default_action(Act::ScmpActErrno);
    p.set_default_errno_ret(Some(EPERM));
    p.set_architectures(None);
    p.set_syscalls(Some(vec![rule(PAUSE_PROGRAM, Act::ScmpActAllow)]));
    p
}

/// Parse a Localhost profile (OCI `linux.seccomp` JSON, as kubelet's
/// seccomp profiles are written). `source` names it in errors.
pub fn parse_profile(json: &str, source: &str) -> Result<LinuxSeccomp> {
    serde_json::from_str(json).map_err(|e| Error::invalid(format!("seccomp profile {source}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls().as_ref().unwrap().iter().any(|s| {
            s.action() == Act::ScmpActAllow
                && s.args().is_none()
                && s.names().iter().any(|n| n == name)
        })
    }

    #[test]
    fn default_denies_dangerous_calls_without_capabilities() {
        let p = default_profile(&Capabilities::new());
        assert_eq!(p.default_action(), Act::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(EPERM));
        for n in ["read", "write", "openat", "execve", "futex", "socket"] {
            assert!(allowed(&p, n), "{n} allowed");
        }
        for n in [
            "unshare",
            "keyctl",
            "add_key",
            "request_key",
            "mount",
            "reboot",
            "setns",
            "ptrace",
            "init_module",
            "clone",
        ] {
            assert!(!allowed(&p, n), "{n} refused");
        }
        // clone only without namespace flags.
        let clone = p
            .syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .find(|s| s.names() == &["clone"])
            .unwrap();
        let arg = &clone.args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.op(), arg.value(), arg.value_two()),
            (Op::ScmpCmpMaskedEq, CLONE_NS_FLAGS, Some(0))
        );
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let caps: Capabilities = [Capability::SysAdmin, Capability::SysPtrace]
            .into_iter()
            .collect();
        let p = default_profile(&caps);
        for n in ["unshare", "mount", "setns", "clone", "ptrace"] {
            assert!(allowed(&p, n), "{n} allowed");
        }
        assert!(!allowed(&p, "reboot"));
        assert!(!allowed(&p, "keyctl"));
    }

    #[test]
    fn localhost_profile_parses_or_names_the_source() {
        let p = parse_profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#, "x.json").unwrap();
        assert_eq!(p.default_action(), Act::ScmpActAllow);
        let e = parse_profile("{", "bad.json").unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(m) if m.contains("bad.json")));
    }
}
