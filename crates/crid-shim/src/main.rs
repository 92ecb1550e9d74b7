//! containerd-shim-crid-v1: crid's own containerd runtime v2 shim
//! (runtime type `io.containerd.crid.v1`).
//!
//! One process serves every container of a pod (grouped by the
//! `io.kubernetes.cri.sandbox-id` annotation, as containerd's runc shim
//! does), runs them with runc or crun, and writes their output straight to
//! the CRI log files (no crid-logger process). The shim protocol (the
//! flags, spawning, the event publisher, the generated ttrpc service) comes
//! from the `containerd-shim` crate; this crate owns the task service.
//!
//! Layout: `shim` (lifecycle of the shim process), `service` (the ttrpc
//! task API, translation only), `task` (containers and execs, the domain),
//! `runc_exec` (running the runtime binary under the shim's reaper),
//! `stdio` (container stdio: log driver, FIFOs, console), `output` (the
//! log driver and copies on the runtime), `oom` (TaskOOM).

mod any;
mod oom;
mod output;
mod runc_exec;
mod service;
mod shim;
mod stats;
mod stdio;
mod task;

/// The runtime type containerd resolves to this binary's name.
pub const RUNTIME_ID: &str = "io.containerd.crid.v1";

/// Ready fds handled per wake-up of the runtime.
const IO_EVENTS_PER_WAKEUP: usize = 32;

fn main() {
    // One malloc arena for all threads: the rare short-lived ones (tokio's
    // blocking pool) need no arena of their own (~40 KiB resident each).
    // SAFETY: mallopt only sets a glibc tunable; called before any thread.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let flags = match containerd_shim::parse(&args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{RUNTIME_ID}: {e}");
            std::process::exit(2);
        }
    };
    if flags.version {
        println!(
            "{}: {RUNTIME_ID} {}",
            env!("CARGO_BIN_NAME"),
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    // One thread for the task API, the exits, the containers' output into
    // their logs, the control sockets, the OOM watches and the terminals
    // (only a process fed from a stdin FIFO has a feeder thread, see
    // `stdio::feed_stdin`). The shim mostly waits; a few ready fds per
    // wake-up are plenty (tokio's default is room for 1024 epoll events,
    // 12 KiB per shim).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_io_events_per_tick(IO_EVENTS_PER_WAKEUP)
        // The blocking pool only runs rare short jobs (the event
        // publisher's connect, a log's fsync after an exit): one thread at
        // a time, so one stack left in glibc's cache, not one per job.
        .max_blocking_threads(1)
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(shim::main(flags)) {
        eprintln!("{RUNTIME_ID}: {e}");
        std::process::exit(1);
    }
}
