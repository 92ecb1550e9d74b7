//! crid-logger: the per-container log driver started by containerd's runc v2
//! shim for a task whose stdio is `binary:///…/crid-logger?log=…&control=…`.
//!
//! fd 3 = container stdout, fd 4 = container stderr, fd 5 = ready pipe
//! (closed once the log file is open and the control socket listens).
//! Query parameters arrive as `key value` argument pairs:
//! - `log`     — the CRI log file (append, created 0640 with parent dirs);
//! - `control` — a unix socket serving one-line commands:
//!   `reopen` → reopen `log` at the same path, reply `ok` / `error <msg>`;
//!   `attach` → reply `ok`, then stream frames (see `cri_log`);
//! - `stdout`, `stderr` — FIFOs to read instead of fds 3 and 4. crid starts
//!   the logger itself this way for a container with stdin and no terminal:
//!   containerd 1.6's shim gives such a container no stdin when its output
//!   goes to a `binary://` logger, so its stdio are plain FIFOs instead.
//!
//! It depends on nothing but its fds: it keeps logging when crid is down.
//! The driver (log file, control socket, attach) is `cri_log::driver`; crid's
//! own shim does the same job in-process instead of starting this program.

use cri_log::driver::LogDriver;
use cri_log::Stream;
use std::fs::File;
use std::os::unix::io::FromRawFd;
use std::path::PathBuf;
use std::time::Duration;

/// How long output may keep arriving after the shim's SIGTERM.
const DRAIN_AFTER_SIGTERM: Duration = Duration::from_secs(8);

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut log_path = None;
    let mut control = None;
    let mut fifos: [Option<PathBuf>; 2] = [None, None];
    for pair in args.chunks(2) {
        match (pair[0].trim_start_matches('-'), pair.get(1)) {
            ("log", Some(v)) => log_path = Some(PathBuf::from(v)),
            ("control", Some(v)) => control = Some(PathBuf::from(v)),
            ("stdout", Some(v)) => fifos[0] = Some(PathBuf::from(v)),
            ("stderr", Some(v)) => fifos[1] = Some(PathBuf::from(v)),
            _ => {}
        }
    }
    let Some(log_path) = log_path else {
        eprintln!("crid-logger: missing `log` parameter");
        std::process::exit(2);
    };
    // First, before any thread exists: every thread must block SIGTERM.
    let sigterm = block_sigterm();
    let mut driver = match LogDriver::open(&log_path, control.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("crid-logger: {e}");
            std::process::exit(1);
        }
    };
    drain_on_sigterm(sigterm, driver.flusher());

    for ((fd, stream), fifo) in [(3, Stream::Stdout), (4, Stream::Stderr)]
        .into_iter()
        .zip(fifos)
    {
        if let Some(fifo) = fifo {
            driver.follow_fifo(fifo, stream);
        } else if fd_is_open(fd) {
            // SAFETY: the shim hands us fds 3 and 4; nothing else owns them.
            driver.follow(unsafe { File::from_raw_fd(fd) }, stream);
        }
    }

    // Ready: the log file is open and the control socket listens.
    if fd_is_open(5) {
        // SAFETY: fd 5 is the shim's ready pipe, ours to close.
        drop(unsafe { File::from_raw_fd(5) });
    }

    driver.finish();
    std::process::exit(0);
}

/// Block SIGTERM in this thread (and so in every later thread).
fn block_sigterm() -> libc::sigset_t {
    // SAFETY: plain signal-mask calls on a local, zeroed sigset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// The shim sends SIGTERM when the task is deleted, after closing its ends
/// of the output pipes, so that the log driver can flush and exit; it kills
/// it 12 s later. One thread takes SIGTERM and lets the readers drain to EOF
/// (the normal exit path) for up to `DRAIN_AFTER_SIGTERM`, then flushes and
/// exits whatever is left.
fn drain_on_sigterm(set: libc::sigset_t, flush: impl Fn() + Send + 'static) {
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: sigwait on the blocked set, with a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        std::thread::sleep(DRAIN_AFTER_SIGTERM);
        flush();
        eprintln!("crid-logger: output not at EOF {DRAIN_AFTER_SIGTERM:?} after SIGTERM; exiting");
        std::process::exit(0);
    });
}
