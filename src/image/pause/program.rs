//! crid's pause program: the init process of a pod sandbox. Owns nothing but
//! itself: reaps zombies (SIGCHLD → waitpid loop), exits 0 on SIGTERM/SIGINT,
//! otherwise sleeps in pause() forever. Built by build.rs as a static binary
//! with only `std` and a few libc declarations, then embedded in crid.

use std::sync::atomic::{AtomicBool, Ordering};

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn pause() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn getpid() -> i32;
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIGCHLD: i32 = 17;
const WNOHANG: i32 = 1;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_child(_: i32) {
    // Reap every exited child; waitpid is async-signal-safe.
    unsafe { while waitpid(-1, std::ptr::null_mut(), WNOHANG) > 0 {} }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("-v") {
        println!("crid-pause");
        return;
    }
    unsafe {
        if getpid() != 1 {
            eprintln!("crid-pause: warning: not running as PID 1");
        }
        signal(SIGINT, on_stop);
        signal(SIGTERM, on_stop);
        signal(SIGCHLD, on_child);
        while !STOP.load(Ordering::SeqCst) {
            pause();
        }
    }
    std::process::exit(0);
}
