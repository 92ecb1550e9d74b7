//! A process's output on the shim's one tokio thread: the CRI log driver
//! (pipes or the pty master into the CRI log file, the control socket's
//! `reopen` and `attach`) and plain fd-to-fd copies (a terminal's output
//! into a FIFO, the stdin FIFO into a terminal).
//!
//! It speaks the same log format and control protocol as the threaded
//! driver crid-logger runs (`cri_log::driver`), built from the same
//! `cri_log` parts; here every source is a non-blocking fd polled by the
//! runtime, so a pod's shim has no thread per stream or per socket. Nothing
//! here knows about tasks or containerd.

use cri_log::driver::{format_chunk, LogFile};
use cri_log::{encode_frame, LineSplitter, Stream};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Interest};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Frames queued per attach client before it is considered too slow.
const ATTACH_QUEUE: usize = 256;
/// Bytes read from a stream at a time (conmon reads 8 KiB too). The buffer
/// stays resident in every shim whose containers ever wrote output, so it
/// is kept small; a busy stream is just read more often.
const READ_CHUNK: usize = 8 * 1024;
/// Capacity the entry scratch keeps between reads. A chunk of many short
/// lines formats to several times its size (a timestamp and stream tag per
/// line); that burst is given back instead of being kept for the shim's
/// life.
const ENTRIES_KEPT: usize = 2 * READ_CHUNK;
/// Read/write limit on a control connection (a stuck client cannot hold us).
const CONTROL_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept on a control socket.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Longest control command line (`reopen`, `attach`).
const CONTROL_LINE_MAX: u64 = 256;

/// Output chunks on their way to one attached client.
type AttachQueue = mpsc::Sender<Arc<Vec<u8>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Set `O_NONBLOCK` on the open file description of `f`.
pub fn set_nonblocking(f: &File) -> io::Result<()> {
    let fd = f.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor owned by `f`.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Register `fd` (non-blocking) with the shim's runtime.
pub fn register<T: AsRawFd>(fd: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: the types registered here (File, an inotify instance) own
    // their fd: it stays open and the same until the AsyncFd drops them.
    Ok(unsafe { AsyncFd::register(fd) }?)
}

/// `f` made non-blocking and registered with the runtime.
pub fn polled(f: File) -> io::Result<AsyncFd<File>> {
    set_nonblocking(&f)?;
    register(f)
}

/// The read buffer and entry scratch every stream of the shim shares: a
/// stream is read and its entries written without an await in between.
static SCRATCH: Mutex<(Vec<u8>, Vec<u8>)> = Mutex::new((Vec::new(), Vec::new()));

/// What a read of a stream gave.
enum Chunk {
    /// Bytes were logged; read again.
    Logged,
    /// Nothing to read yet.
    NotReady,
    /// End of the stream (EOF, or EIO once a pty's other side closed).
    End,
}

struct Shared {
    log: LogFile,
    /// Queues of attached clients; `None` once output has ended.
    attached: Mutex<Option<Vec<AttachQueue>>>,
    /// Control connections, awaited at the end so attach clients get the tail.
    connections: Mutex<Vec<JoinHandle<()>>>,
}

/// One process's log driver; [`LogDriver::finish`] waits for the end of its
/// output and tears everything down.
pub struct LogDriver {
    shared: Arc<Shared>,
    control: Option<(PathBuf, JoinHandle<()>)>,
    readers: Vec<JoinHandle<()>>,
}

impl LogDriver {
    /// Open the log file and, when `control` is given, listen on it.
    pub fn open(log_path: &Path, control: Option<&Path>) -> io::Result<LogDriver> {
        let shared = Arc::new(Shared {
            log: LogFile::open(log_path)?,
            attached: Mutex::new(Some(Vec::new())),
            connections: Mutex::new(Vec::new()),
        });
        let mut listening = None;
        if let Some(sock) = control {
            let _ = std::fs::remove_file(sock);
            // Without its control socket the log still flows: not fatal.
            match UnixListener::bind(sock) {
                Ok(l) => {
                    let task = tokio::spawn(serve_control(l, shared.clone()));
                    listening = Some((sock.to_path_buf(), task));
                }
                Err(e) => log::warn!("bind {}: {e}", sock.display()),
            }
        }
        Ok(LogDriver {
            shared,
            control: listening,
            readers: Vec::new(),
        })
    }

    /// Copy `src` (a pipe's read end or a pty master) into the log until
    /// its end. `src` is made non-blocking: a pty master's other users
    /// must expect `EAGAIN`.
    pub fn follow(&mut self, src: File, stream: Stream) -> io::Result<()> {
        let src = polled(src)?;
        let shared = self.shared.clone();
        self.readers
            .push(tokio::spawn(copy_stream(src, stream, shared)));
        Ok(())
    }

    /// Wait for every stream to end, flush and sync the log, end the attach
    /// streams (once they drained), stop listening and remove the control
    /// socket.
    pub async fn finish(mut self) {
        for r in self.readers.drain(..) {
            let _ = r.await;
        }
        if let Ok(log) = self.shared.log.try_clone() {
            let _ = tokio::task::spawn_blocking(move || log.sync_data()).await;
        }
        // Ending the queues ends every attach connection once it has drained.
        *lock(&self.shared.attached) = None;
        if let Some((sock, listener)) = self.control.take() {
            listener.abort();
            let _ = std::fs::remove_file(sock);
        }
        let connections = std::mem::take(&mut *lock(&self.shared.connections));
        for c in connections {
            let _ = c.await;
        }
    }
}

impl Drop for LogDriver {
    /// A driver dropped without [`LogDriver::finish`] (its process was never
    /// started) stops listening; its streams end with their writers.
    fn drop(&mut self) {
        if let Some((sock, listener)) = self.control.take() {
            listener.abort();
            let _ = std::fs::remove_file(sock);
        }
    }
}

/// Read one stream until its end, writing CRI entries and fanning the raw
/// bytes out to attached clients.
async fn copy_stream(src: AsyncFd<File>, stream: Stream, shared: Arc<Shared>) {
    let mut splitter = LineSplitter::new();
    loop {
        let Ok(mut ready) = src.readable().await else {
            break;
        };
        match log_chunk(src.get_ref(), stream, &mut splitter, &shared) {
            Chunk::Logged => {}
            Chunk::NotReady => ready.clear_ready(),
            Chunk::End => break,
        }
    }
    let mut out = Vec::new();
    format_chunk(&mut out, &mut splitter, stream, None);
    write_log(&shared, &out);
}

/// One non-blocking read of `src` into the log and the attach queues.
fn log_chunk(
    mut src: &File,
    stream: Stream,
    splitter: &mut LineSplitter,
    shared: &Shared,
) -> Chunk {
    let mut scratch = lock(&SCRATCH);
    let (buf, out) = &mut *scratch;
    buf.resize(READ_CHUNK, 0);
    let n = match src.read(buf) {
        Ok(0) => return Chunk::End,
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Chunk::NotReady,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Chunk::Logged,
        Err(_) => return Chunk::End,
    };
    out.clear();
    format_chunk(out, splitter, stream, Some(&buf[..n]));
    write_log(shared, out);
    out.clear();
    out.shrink_to(ENTRIES_KEPT);
    broadcast(shared, stream, &buf[..n]);
    Chunk::Logged
}

fn write_log(shared: &Shared, entries: &[u8]) {
    if let Err(e) = shared.log.append(entries) {
        log::warn!("write {}: {e}", shared.log.path().display());
    }
}

fn broadcast(shared: &Shared, stream: Stream, data: &[u8]) {
    let mut guard = lock(&shared.attached);
    let Some(attached) = guard.as_mut().filter(|a| !a.is_empty()) else {
        return;
    };
    let frame = Arc::new(encode_frame(stream, data));
    // A full queue means a slow client: drop it rather than hold the log.
    attached.retain(|tx| tx.try_send(frame.clone()).is_ok());
}

async fn serve_control(listener: UnixListener, shared: Arc<Shared>) {
    loop {
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(e) => {
                // Out of fds, say: try again later, not in a busy loop.
                log::warn!("control socket: {e}");
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let task = tokio::spawn(handle_control(conn, shared.clone()));
        let mut connections = lock(&shared.connections);
        connections.retain(|c| !c.is_finished());
        connections.push(task);
    }
}

async fn handle_control(conn: UnixStream, shared: Arc<Shared>) {
    let (rd, mut wr) = conn.into_split();
    let mut line = String::new();
    let mut reader = BufReader::with_capacity(64, rd.take(CONTROL_LINE_MAX));
    let read = tokio::time::timeout(CONTROL_IO_TIMEOUT, reader.read_line(&mut line)).await;
    if !matches!(read, Ok(Ok(_))) {
        return;
    }
    match line.trim() {
        "reopen" => {
            send(&mut wr, shared.log.reopen().as_bytes()).await;
        }
        "attach" => {
            let (tx, mut rx) = mpsc::channel::<Arc<Vec<u8>>>(ATTACH_QUEUE);
            // After the end of output `tx` is dropped here: the stream is empty.
            if let Some(a) = lock(&shared.attached).as_mut() {
                a.push(tx);
            }
            if !send(&mut wr, b"ok\n").await {
                return;
            }
            // Until the output ends or the client falls behind (its
            // queue's sender dropped).
            while let Some(frame) = rx.recv().await {
                if !send(&mut wr, &frame).await {
                    return;
                }
            }
        }
        other => {
            send(
                &mut wr,
                format!("error unknown command {other:?}\n").as_bytes(),
            )
            .await;
        }
    }
}

/// Write `bytes` to a control client, within [`CONTROL_IO_TIMEOUT`].
async fn send(conn: &mut OwnedWriteHalf, bytes: &[u8]) -> bool {
    let write = tokio::time::timeout(CONTROL_IO_TIMEOUT, conn.write_all(bytes)).await;
    matches!(write, Ok(Ok(())))
}

/// Where a plain copy writes: a FIFO, pipe or pty polled by the runtime, or
/// a regular file (never "not ready"; epoll cannot poll it) written as is.
pub enum Sink {
    Polled(AsyncFd<File>),
    File(File),
}

impl Sink {
    pub fn new(f: File) -> io::Result<Sink> {
        if f.metadata()?.file_type().is_file() {
            return Ok(Sink::File(f));
        }
        Ok(Sink::Polled(polled(f)?))
    }

    async fn write_all(&self, mut rest: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(f) => (&*f).write_all(rest),
            Sink::Polled(fd) => {
                while !rest.is_empty() {
                    let n = fd
                        .async_io(Interest::WRITABLE, |mut f: &File| f.write(rest))
                        .await?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    rest = &rest[n..];
                }
                Ok(())
            }
        }
    }
}

/// Bytes a plain copy moves at a time.
const COPY_CHUNK: usize = 8 * 1024;

/// Copy `src` into `dst` until `src` ends or `dst` fails.
pub async fn copy(src: AsyncFd<File>, dst: Sink) {
    let mut buf = vec![0u8; COPY_CHUNK];
    loop {
        let read = src.async_io(Interest::READABLE, |mut f: &File| f.read(&mut buf));
        let n = match read.await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if dst.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn log_entries(path: &Path) -> Vec<String> {
        // `<timestamp> <stream> <tag> <content>`: keep what follows the timestamp.
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    }

    async fn wait_for_entry(path: &Path, entry: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !log_entries(path).iter().any(|e| e == entry) {
            assert!(Instant::now() < deadline, "no {entry:?} in {path:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What crid-logger's driver does, on the runtime: entries split at
    /// newlines across reads, `reopen` after a rename, `attach` streaming
    /// frames until the output ends, the control socket removed at the end.
    #[tokio::test]
    async fn pipe_output_reaches_the_log_through_reopen_and_attach() {
        let dir = std::env::temp_dir().join(format!("crid-shim-output-{}", std::process::id()));
        let (log, sock) = (dir.join("0.log"), dir.join("control.sock"));
        let mut driver = LogDriver::open(&log, Some(&sock)).unwrap();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut w = File::from(w);
        driver.follow(File::from(r), Stream::Stdout).unwrap();

        w.write_all(b"hel").unwrap();
        w.write_all(b"lo\n").unwrap();
        wait_for_entry(&log, "stdout F hello").await;

        // kubelet's rotation: rename, then reopen at the same path.
        std::fs::rename(&log, dir.join("0.log.1")).unwrap();
        let s = sock.clone();
        let reopened = tokio::task::spawn_blocking(move || cri_log::request_reopen(&s));
        reopened.await.unwrap().unwrap();
        assert!(log.exists());

        let s = sock.clone();
        let attached = tokio::task::spawn_blocking(move || {
            let mut frames = cri_log::attach(&s).unwrap();
            let mut got = Vec::new();
            while let Some((stream, data)) = cri_log::read_frame(&mut frames).unwrap() {
                assert_eq!(stream, Stream::Stdout);
                got.extend(data);
            }
            got
        });
        // Output written from the moment the attach is registered reaches it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock(&driver.shared.attached).as_ref().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "attach never registered");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.write_all(b"world\nend").unwrap();
        drop(w);
        driver.finish().await;

        assert_eq!(log_entries(&dir.join("0.log.1")), ["stdout F hello"]);
        assert_eq!(log_entries(&log), ["stdout F world", "stdout P end"]);
        assert_eq!(attached.await.unwrap(), b"world\nend");
        assert!(!sock.exists(), "control socket left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
