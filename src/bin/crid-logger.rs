//! crid-logger: the per-container log driver started by containerd's runc v2
//! shim for a task whose stdio is `binary:///…/crid-logger?log=…&control=…`.
//!
//! fd 3 = container stdout, fd 4 = container stderr, fd 5 = ready pipe
//! (closed once the log file is open and the control socket listens).
//! Query parameters arrive as `key value` argument pairs:
//! - `log`     — the CRI log file (append, created 0640 with parent dirs);
//! - `control` — a unix socket serving one-line commands:
//!   `reopen` → reopen `log` at the same path, reply `ok` / `error <msg>`;
//!   `attach` → reply `ok`, then stream frames (see `crid::logger`);
//! - `stdout`, `stderr` — FIFOs to read instead of fds 3 and 4. crid starts
//!   the logger itself this way for a container with stdin and no terminal:
//!   containerd 1.6's shim gives such a container no stdin when its output
//!   goes to a `binary://` logger, so its stdio are plain FIFOs instead.
//!
//! It depends on nothing but its fds: it keeps logging when crid is down.
//! Plain threads keep it small: two readers, one control listener, one
//! thread per attached client (bounded queue, dropped when it falls behind).

use crid::logger::{encode_frame, format_entry, rfc3339_nano, LineSplitter, Stream};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::FromRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Frames queued per attach client before it is considered too slow.
const ATTACH_QUEUE: usize = 256;
const READ_BUF: usize = 32 * 1024;
/// How long output may keep arriving after the shim's SIGTERM.
const DRAIN_AFTER_SIGTERM: Duration = Duration::from_secs(8);

/// Output chunks on their way to one attached client.
type AttachQueue = SyncSender<Arc<Vec<u8>>>;

struct Shared {
    log_path: PathBuf,
    log: Mutex<File>,
    /// Queues of attached clients; `None` once output has ended.
    attached: Mutex<Option<Vec<AttachQueue>>>,
    /// Attach connection threads, joined before exit so they deliver the tail.
    attach_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

fn open_log(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

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
    let log = match open_log(&log_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("crid-logger: open {}: {e}", log_path.display());
            std::process::exit(1);
        }
    };
    let shared = Arc::new(Shared {
        log_path,
        log: Mutex::new(log),
        attached: Mutex::new(Some(Vec::new())),
        attach_threads: Mutex::new(Vec::new()),
    });

    // First, before any thread exists: every thread must block SIGTERM.
    drain_on_sigterm(shared.clone());

    if let Some(sock) = &control {
        let _ = std::fs::remove_file(sock);
        match UnixListener::bind(sock) {
            Ok(listener) => {
                let shared = shared.clone();
                std::thread::spawn(move || serve_control(listener, shared));
            }
            Err(e) => eprintln!("crid-logger: bind {}: {e}", sock.display()),
        }
    }

    let readers: Vec<_> = [(3, Stream::Stdout), (4, Stream::Stderr)]
        .into_iter()
        .zip(fifos)
        .filter_map(|((fd, stream), fifo)| {
            let shared = shared.clone();
            if let Some(fifo) = fifo {
                // Opening blocks until the shim opens its end: in the thread,
                // so the ready signal does not wait for it.
                return Some(std::thread::spawn(move || match File::open(&fifo) {
                    Ok(file) => copy_stream(file, stream, &shared),
                    Err(e) => eprintln!("crid-logger: open {}: {e}", fifo.display()),
                }));
            }
            if !fd_is_open(fd) {
                return None;
            }
            // SAFETY: the shim hands us fds 3 and 4; nothing else owns them.
            let file = unsafe { File::from_raw_fd(fd) };
            Some(std::thread::spawn(move || {
                copy_stream(file, stream, &shared)
            }))
        })
        .collect();

    // Ready: the log file is open and the control socket listens.
    if fd_is_open(5) {
        // SAFETY: fd 5 is the shim's ready pipe, ours to close.
        drop(unsafe { File::from_raw_fd(5) });
    }

    for r in readers {
        let _ = r.join();
    }
    if let Ok(mut log) = shared.log.lock() {
        let _ = log.flush();
        let _ = log.sync_data();
    }
    // Ending the queues ends every attach connection once it has drained.
    *shared.attached.lock().unwrap_or_else(|p| p.into_inner()) = None;
    if let Some(sock) = &control {
        let _ = std::fs::remove_file(sock);
    }
    // Attach sockets have a write timeout: a stuck client cannot hold us long.
    let threads = std::mem::take(
        &mut *shared
            .attach_threads
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    for t in threads {
        let _ = t.join();
    }
    std::process::exit(0);
}

/// The shim sends SIGTERM when the task is deleted, after closing its ends
/// of the output pipes, so that the log driver can flush and exit; it kills
/// it 12 s later. SIGTERM is blocked in every thread and taken by one thread
/// that lets the readers drain to EOF (the normal exit path) for up to
/// `DRAIN_AFTER_SIGTERM`, then flushes and exits whatever is left.
fn drain_on_sigterm(shared: Arc<Shared>) {
    // SAFETY: plain signal-mask calls on a local, zeroed sigset; done before
    // any other thread exists, so every later thread inherits the mask.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: sigwait on the blocked set, with a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
            return;
        }
        std::thread::sleep(DRAIN_AFTER_SIGTERM);
        if let Ok(mut log) = shared.log.lock() {
            let _ = log.flush();
        }
        eprintln!("crid-logger: output not at EOF {DRAIN_AFTER_SIGTERM:?} after SIGTERM; exiting");
        std::process::exit(0);
    });
}

/// Read one container stream until EOF, writing CRI entries and fanning the
/// raw bytes out to attached clients.
fn copy_stream(mut src: File, stream: Stream, shared: &Shared) {
    let mut splitter = LineSplitter::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(READ_BUF + 256);
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let ts = rfc3339_nano(chrono::Utc::now());
        out.clear();
        splitter.push(&buf[..n], |content, partial| {
            format_entry(&mut out, &ts, stream, partial, content)
        });
        write_log(shared, &out);
        broadcast(shared, stream, &buf[..n]);
    }
    let ts = rfc3339_nano(chrono::Utc::now());
    out.clear();
    splitter.finish(|content, partial| format_entry(&mut out, &ts, stream, partial, content));
    write_log(shared, &out);
}

fn write_log(shared: &Shared, entries: &[u8]) {
    if entries.is_empty() {
        return;
    }
    let mut log = shared.log.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = log.write_all(entries) {
        eprintln!("crid-logger: write {}: {e}", shared.log_path.display());
    }
}

fn broadcast(shared: &Shared, stream: Stream, data: &[u8]) {
    let mut guard = shared.attached.lock().unwrap_or_else(|p| p.into_inner());
    let Some(attached) = guard.as_mut().filter(|a| !a.is_empty()) else {
        return;
    };
    let frame = Arc::new(encode_frame(stream, data));
    // A full queue means a slow client: drop it rather than block logging.
    attached.retain(|tx| match tx.try_send(frame.clone()) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => false,
    });
}

fn serve_control(listener: UnixListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let handle = {
            let shared = shared.clone();
            std::thread::spawn(move || handle_control(conn, &shared))
        };
        let mut threads = shared
            .attach_threads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }
}

fn handle_control(conn: UnixStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut conn = &conn;
    match line.trim() {
        "reopen" => {
            let reply = {
                let mut log = shared.log.lock().unwrap_or_else(|p| p.into_inner());
                let _ = log.flush();
                match open_log(&shared.log_path) {
                    Ok(f) => {
                        *log = f;
                        "ok\n".to_string()
                    }
                    Err(e) => format!("error {e}\n"),
                }
            };
            let _ = conn.write_all(reply.as_bytes());
        }
        "attach" => {
            let (tx, rx) = sync_channel(ATTACH_QUEUE);
            // After the end of output `tx` is dropped here: the stream is empty.
            if let Some(a) = shared
                .attached
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                a.push(tx);
            }
            if conn.write_all(b"ok\n").is_ok() {
                stream_frames(conn, rx);
            }
        }
        other => {
            let _ = conn.write_all(format!("error unknown command {other:?}\n").as_bytes());
        }
    }
}

fn stream_frames(mut conn: &UnixStream, rx: Receiver<Arc<Vec<u8>>>) {
    // Ends when the sender is dropped: output ended or the client fell behind.
    while let Ok(frame) = rx.recv() {
        if conn.write_all(&frame).is_err() {
            return;
        }
    }
}
