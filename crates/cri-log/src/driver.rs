//! The log driver: copies a container's stdout and stderr into its CRI log
//! file and serves the control socket (`reopen`, `attach`).
//!
//! Owns: the open log file, the reader threads (one per stream), the control
//! listener and the attach fan-out. Plain threads and blocking I/O keep it
//! small; it is run by the `crid-logger` process (one per container, started
//! by containerd's runc shim). crid's shim speaks the same protocol from
//! the same parts on its tokio thread (crates/crid-shim/src/output.rs).
//!
//! Control protocol, one line per connection:
//! `reopen` → reopen the log at the same path, reply `ok` / `error <msg>`;
//! `attach` → reply `ok`, then stream frames ([`crate::encode_frame`]) of the
//! output from now on, until the output ends.

use crate::{encode_frame, format_entry, rfc3339_nano, LineSplitter, Stream};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Frames queued per attach client before it is considered too slow.
const ATTACH_QUEUE: usize = 256;
const READ_BUF: usize = 32 * 1024;
/// Read/write limit on a control connection (a stuck client cannot hold us).
const CONTROL_IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Output chunks on their way to one attached client.
type AttachQueue = SyncSender<Arc<Vec<u8>>>;

struct Shared {
    log: LogFile,
    /// Queues of attached clients; `None` once output has ended.
    attached: Mutex<Option<Vec<AttachQueue>>>,
    /// Control connection threads, joined at the end so attach clients get the tail.
    conn_threads: Mutex<Vec<JoinHandle<()>>>,
    /// Set when the driver finishes: the control listener stops accepting.
    closed: AtomicBool,
}

/// One container's log driver. [`LogDriver::finish`] waits for the end of
/// output and tears everything down.
pub struct LogDriver {
    shared: Arc<Shared>,
    control: Option<PathBuf>,
    listener: Option<JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
}

/// Open (append, created 0640 with its parent dirs) the CRI log file.
pub fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// The CRI log file a driver appends to, reopened at the same path on the
/// control socket's `reopen` (after kubelet rotated it). Shared by this
/// driver and crid's shim, so both answer `reopen` alike.
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = open_log(path)
            .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append formatted entries (nothing to do for none).
    pub fn append(&self, entries: &[u8]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        lock(&self.file).write_all(entries)
    }

    /// Reopen the file at its path; the control reply (`ok` or `error
    /// <msg>`, one line).
    pub fn reopen(&self) -> String {
        let mut file = lock(&self.file);
        let _ = file.flush();
        match open_log(&self.path) {
            Ok(f) => {
                *file = f;
                "ok\n".to_string()
            }
            Err(e) => format!("error {e}\n"),
        }
    }

    pub fn flush(&self) {
        let _ = lock(&self.file).flush();
    }

    /// The open file, for a sync off the writer's thread.
    pub fn try_clone(&self) -> io::Result<File> {
        lock(&self.file).try_clone()
    }
}

/// Append to `out` the CRI entries of one chunk of `stream` (`Some`), or of
/// what `splitter` still holds at the end of the stream (`None`), stamped
/// now.
pub fn format_chunk(
    out: &mut Vec<u8>,
    splitter: &mut LineSplitter,
    stream: Stream,
    chunk: Option<&[u8]>,
) {
    let ts = rfc3339_nano(chrono::Utc::now());
    let mut emit = |content: &[u8], partial| format_entry(out, &ts, stream, partial, content);
    match chunk {
        Some(bytes) => splitter.push(bytes, &mut emit),
        None => splitter.finish(&mut emit),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogDriver {
    /// Open the log file and, when `control` is given, listen on it.
    pub fn open(log_path: &Path, control: Option<&Path>) -> io::Result<LogDriver> {
        let shared = Arc::new(Shared {
            log: LogFile::open(log_path)?,
            attached: Mutex::new(Some(Vec::new())),
            conn_threads: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        });
        let mut listener = None;
        if let Some(sock) = control {
            let _ = std::fs::remove_file(sock);
            // Without its control socket the log still flows: not fatal.
            match UnixListener::bind(sock) {
                Ok(l) => {
                    let shared = shared.clone();
                    listener = Some(std::thread::spawn(move || serve_control(l, shared)));
                }
                Err(e) => eprintln!("cri-log: bind {}: {e}", sock.display()),
            }
        }
        Ok(LogDriver {
            shared,
            control: control.map(Path::to_path_buf),
            listener,
            readers: Vec::new(),
        })
    }

    /// Copy `src` (a pipe or pty end) into the log until EOF.
    pub fn follow(&mut self, src: File, stream: Stream) {
        let shared = self.shared.clone();
        self.readers.push(std::thread::spawn(move || {
            copy_stream(src, stream, &shared)
        }));
    }

    /// Copy the FIFO at `path` into the log; opening it waits for its writer,
    /// in the reader thread.
    pub fn follow_fifo(&mut self, path: PathBuf, stream: Stream) {
        let shared = self.shared.clone();
        self.readers
            .push(std::thread::spawn(move || match File::open(&path) {
                Ok(file) => copy_stream(file, stream, &shared),
                Err(e) => eprintln!("cri-log: open {}: {e}", path.display()),
            }));
    }

    /// Flush the log file to the kernel.
    pub fn flush(&self) {
        self.shared.log.flush();
    }

    /// A handle that flushes the log from another thread.
    pub fn flusher(&self) -> impl Fn() + Send + 'static {
        let shared = self.shared.clone();
        move || shared.log.flush()
    }

    /// Wait for every stream to reach EOF, flush and sync the log, end the
    /// attach streams (after they drained), stop listening and remove the
    /// control socket.
    pub fn finish(mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        if let Ok(log) = self.shared.log.try_clone() {
            let _ = log.sync_data();
        }
        // Ending the queues ends every attach connection once it has drained.
        *lock(&self.shared.attached) = None;
        self.shared.closed.store(true, Ordering::SeqCst);
        if let (Some(sock), true) = (&self.control, self.listener.is_some()) {
            // Wake the listener so it sees `closed`, then remove the socket.
            let _ = UnixStream::connect(sock);
            if let Some(l) = self.listener.take() {
                let _ = l.join();
            }
            let _ = std::fs::remove_file(sock);
        }
        let threads = std::mem::take(&mut *lock(&self.shared.conn_threads));
        for t in threads {
            let _ = t.join();
        }
    }
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
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // EIO: the pty's other side closed.
            Err(_) => break,
        };
        out.clear();
        format_chunk(&mut out, &mut splitter, stream, Some(&buf[..n]));
        write_log(shared, &out);
        broadcast(shared, stream, &buf[..n]);
    }
    out.clear();
    format_chunk(&mut out, &mut splitter, stream, None);
    write_log(shared, &out);
}

fn write_log(shared: &Shared, entries: &[u8]) {
    if let Err(e) = shared.log.append(entries) {
        eprintln!("cri-log: write {}: {e}", shared.log.path().display());
    }
}

fn broadcast(shared: &Shared, stream: Stream, data: &[u8]) {
    let mut guard = lock(&shared.attached);
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
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let handle = {
            let shared = shared.clone();
            std::thread::spawn(move || handle_control(conn, &shared))
        };
        let mut threads = lock(&shared.conn_threads);
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
    }
}

fn handle_control(conn: UnixStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(CONTROL_IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(CONTROL_IO_TIMEOUT));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut conn = &conn;
    match line.trim() {
        "reopen" => {
            let _ = conn.write_all(shared.log.reopen().as_bytes());
        }
        "attach" => {
            let (tx, rx) = sync_channel(ATTACH_QUEUE);
            // After the end of output `tx` is dropped here: the stream is empty.
            if let Some(a) = lock(&shared.attached).as_mut() {
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
