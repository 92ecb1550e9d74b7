//! A process's stdio, as containerd hands it to the shim.
//!
//! - `binary:///…/crid-logger?log=<path>&control=<sock>` (crid's log URI):
//!   the shim does crid-logger's job itself, on its own runtime
//!   ([`crate::output`]): output goes through pipes into the CRI log file,
//!   and the control socket serves `reopen` and `attach`;
//! - an output path (a FIFO crid made, or a file): the process gets it
//!   directly; the stdin FIFO is copied into a pipe (so the process sees
//!   EOF only when crid closes it, or at CloseIO);
//! - empty: /dev/null.
//!
//! With a terminal, runc hands the pty's master over the console socket;
//! its output goes where stdout would have gone, and the stdin FIFO feeds it
//! (both copies are tasks of the shim's runtime, the master non-blocking).

use crate::output::{self, LogDriver};
use cri_log::uri::LogUri;
use cri_log::Stream;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How long the end of a process's output may lag its exit (a daemonized
/// child may hold the pipes open: the exit is reported anyway).
const OUTPUT_DRAIN_LIMIT: Duration = Duration::from_secs(2);

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    Ok((File::from(r), File::from(w)))
}

/// Open an output path for the process: a FIFO read-write, so the open does
/// not wait for a reader (the reader sees EOF once the process is gone); a
/// file for append.
fn open_output(path: &str) -> io::Result<File> {
    let is_fifo = std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo());
    let mut o = OpenOptions::new();
    if is_fifo {
        o.read(true).write(true);
    } else {
        o.append(true).create(true);
    }
    o.open(path)
}

/// The shim's end of a process's stdin: what the stdin FIFO delivers is
/// copied into the process's pipe until EOF or CloseIO.
type StdinWriter = std::sync::Arc<Mutex<Option<File>>>;

/// The stdin FIFO at `path`, opened for the feeder to read and for the
/// shim to hold as a writer (containerd's runc shim holds one too): while
/// the shim holds it, a client that closes its end (crid between two
/// attaches) is no EOF for the process. CloseIO drops the shim's writer;
/// the process reads EOF once every client has closed and the FIFO is
/// drained, so nothing written before CloseIO is lost. A stdin that is not
/// a FIFO is only read.
fn open_stdin(path: &str) -> io::Result<(File, Option<File>)> {
    if !std::fs::metadata(path)?.file_type().is_fifo() {
        return Ok((File::open(path)?, None));
    }
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking opens: a reader first (so the writer's open succeeds
    // without waiting for a client), then the held writer.
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let hold = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    // The feeder's reads block.
    let fd = reader.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor owned by `reader`.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((reader, Some(hold)))
}

/// Copy what the stdin FIFO delivers into the process's stdin pipe, in a
/// thread, until the FIFO's EOF (every writer closed: the clients and the
/// shim's own, see [`open_stdin`]); then close the pipe.
fn feed_stdin(mut fifo: File, writer: StdinWriter) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match io::Read::read(&mut fifo, &mut buf) {
                Ok(0) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
                Ok(n) => n,
            };
            let w = writer.lock().unwrap();
            let written = w
                .as_ref()
                .is_some_and(|mut pipe: &File| io::Write::write_all(&mut pipe, &buf[..n]).is_ok());
            if !written {
                break;
            }
        }
        writer.lock().unwrap().take();
    });
}

/// The process's ends of its stdio, handed to the runtime at create/exec and
/// closed in the shim right after.
#[derive(Debug, Default)]
struct ProcessEnds {
    stdin: Option<File>,
    stdout: Option<File>,
    stderr: Option<File>,
}

/// One process's stdio: what the process gets, and the shim's side (the log
/// driver, the terminal copy).
pub struct ProcessIo {
    ends: Mutex<ProcessEnds>,
    log: Mutex<Option<LogDriver>>,
    /// Output paths for a terminal's copy when there is no log driver.
    stdout_path: String,
    stdin_path: String,
    pub terminal: bool,
    /// The pty master, once runc has sent it.
    console: Mutex<Option<File>>,
    /// The write end of the process's stdin pipe (no terminal).
    stdin_writer: StdinWriter,
    /// The shim's own writer on the stdin FIFO, until CloseIO.
    stdin_hold: Mutex<Option<File>>,
}

impl std::fmt::Debug for ProcessIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessIo")
            .field("terminal", &self.terminal)
            .finish()
    }
}

impl ProcessIo {
    pub fn open(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> io::Result<ProcessIo> {
        let mut ends = ProcessEnds::default();
        let mut log = None;
        if let Some(uri) = LogUri::parse(stdout) {
            let mut driver = LogDriver::open(&uri.log, uri.control.as_deref())?;
            if !terminal {
                let (out_r, out_w) = pipe()?;
                driver.follow(out_r, Stream::Stdout)?;
                ends.stdout = Some(out_w);
                if LogUri::parse(stderr).is_some() {
                    let (err_r, err_w) = pipe()?;
                    driver.follow(err_r, Stream::Stderr)?;
                    ends.stderr = Some(err_w);
                }
            }
            log = Some(driver);
        } else if stdout.contains("://") {
            return Err(io::Error::other(format!(
                "unsupported stdout {stdout:?}: crid's shim takes crid's log URI or a path"
            )));
        } else if !terminal {
            if !stdout.is_empty() {
                ends.stdout = Some(open_output(stdout)?);
            }
            if !stderr.is_empty() && !stderr.contains("://") {
                ends.stderr = Some(open_output(stderr)?);
            }
        }
        let stdin_writer = StdinWriter::default();
        let mut stdin_hold = None;
        if !stdin.is_empty() && !terminal {
            let (fifo, hold) = open_stdin(stdin)?;
            let (r, w) = pipe()?;
            ends.stdin = Some(r);
            *stdin_writer.lock().unwrap() = Some(w);
            feed_stdin(fifo, stdin_writer.clone());
            stdin_hold = hold;
        }
        Ok(ProcessIo {
            ends: Mutex::new(ends),
            log: Mutex::new(log),
            stdout_path: if LogUri::parse(stdout).is_some() {
                String::new()
            } else {
                stdout.to_string()
            },
            stdin_path: stdin.to_string(),
            terminal,
            console: Mutex::new(None),
            stdin_writer,
            stdin_hold: Mutex::new(stdin_hold),
        })
    }

    /// Give the process's ends to `(uid, gid)`, the root of its user
    /// namespace (the runc options' `io_uid`/`io_gid`), as containerd's runc
    /// shim does with its pipes: the process can then open its own stdio
    /// again (`/dev/stdout`). Pipes and FIFOs only; a terminal is the
    /// container's own already, and a regular file stays the host's.
    pub fn give_to(&self, (uid, gid): (u32, u32)) -> io::Result<()> {
        use std::os::unix::fs::fchown;
        let ends = self.ends.lock().unwrap();
        for end in [&ends.stdin, &ends.stdout, &ends.stderr]
            .into_iter()
            .flatten()
        {
            if end.metadata()?.file_type().is_fifo() {
                fchown(end, Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }

    /// Close the process's ends in the shim (after the runtime started it).
    pub fn close_process_ends(&self) {
        *self.ends.lock().unwrap() = ProcessEnds::default();
    }

    /// Close the process's stdin (CloseIO): the process reads EOF once what
    /// was written before has reached it.
    pub fn close_stdin(&self) {
        // A FIFO: drop the shim's writer; the feeder drains what clients
        // wrote and closes the pipe at the FIFO's EOF.
        if self.stdin_hold.lock().unwrap().take().is_some() {
            return;
        }
        match self.stdin_writer.try_lock() {
            Ok(mut w) => drop(w.take()),
            // The feeder is blocked writing into a full pipe: close once it
            // is done, off the async thread.
            Err(_) => {
                let w = self.stdin_writer.clone();
                std::thread::spawn(move || drop(w.lock().unwrap().take()));
            }
        }
        if let Some(master) = self.console.lock().unwrap().as_ref() {
            // A terminal's EOF is the EOF character at a line's start.
            let _ = io::Write::write_all(&mut &*master, &[4]);
        }
    }

    /// The pty master arrived: copy its output to the log (or the stdout
    /// path) and the stdin FIFO into it. The master becomes non-blocking.
    pub fn attach_console(&self, master: File) -> io::Result<()> {
        let out = master.try_clone()?;
        if let Some(driver) = self.log.lock().unwrap().as_mut() {
            driver.follow(out, Stream::Stdout)?;
        } else if !self.stdout_path.is_empty() {
            let dst = output::Sink::new(open_output(&self.stdout_path)?)?;
            tokio::spawn(output::copy(output::polled(out)?, dst));
        }
        if !self.stdin_path.is_empty() {
            use std::os::unix::fs::OpenOptionsExt;
            // Opened without waiting for crid's writer; the copy starts with
            // its first bytes and ends at the FIFO's EOF.
            let src = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.stdin_path)?;
            let dst = output::Sink::new(master.try_clone()?)?;
            tokio::spawn(output::copy(output::polled(src)?, dst));
        }
        *self.console.lock().unwrap() = Some(master);
        Ok(())
    }

    /// Resize the terminal, if there is one.
    pub fn resize(&self, width: u32, height: u32) -> io::Result<()> {
        let guard = self.console.lock().unwrap();
        let Some(master) = guard.as_ref() else {
            return Ok(());
        };
        let ws = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize on an open pty master.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// After the process exited: let its output reach the log (bounded),
    /// then end the log driver (flush, end attach streams, remove the control
    /// socket). The terminal's master is closed.
    pub async fn finish_output(&self) {
        self.console.lock().unwrap().take();
        // The process is gone: its stdin feeder ends with the last client.
        self.stdin_hold.lock().unwrap().take();
        let Some(driver) = self.log.lock().unwrap().take() else {
            return;
        };
        // Past the limit the driver still finishes, in its own task.
        let finished = tokio::spawn(driver.finish());
        if tokio::time::timeout(OUTPUT_DRAIN_LIMIT, finished)
            .await
            .is_err()
        {
            log::warn!("output still open {OUTPUT_DRAIN_LIMIT:?} after the exit; reported anyway");
        }
    }
}

fn dup(f: &File) -> io::Result<std::process::Stdio> {
    Ok(std::process::Stdio::from(OwnedFd::from(f.try_clone()?)))
}

#[async_trait::async_trait]
impl runc::Io for ProcessIo {
    async fn set(&self, cmd: &mut runc::Command) -> io::Result<()> {
        let ends = self.ends.lock().unwrap();
        cmd.stdin(match &ends.stdin {
            Some(f) => dup(f)?,
            None => std::process::Stdio::null(),
        });
        // A terminal's process gets the pty; runc's own output is not the
        // container's then.
        cmd.stdout(match &ends.stdout {
            Some(f) => dup(f)?,
            None => std::process::Stdio::null(),
        });
        cmd.stderr(match &ends.stderr {
            Some(f) => dup(f)?,
            None => std::process::Stdio::null(),
        });
        Ok(())
    }

    async fn close_after_start(&self) {}
}

/// A console socket for runc's `--console-socket`: receives the pty master.
pub struct ConsoleSocket {
    dir: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

/// Longest wait for runc to send the pty master.
const CONSOLE_WAIT: Duration = Duration::from_secs(10);

impl ConsoleSocket {
    pub fn new() -> io::Result<ConsoleSocket> {
        let dir = std::env::temp_dir().join(format!(
            "crid-shim-pty-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir(&dir)?;
        let listener = std::os::unix::net::UnixListener::bind(dir.join("pty.sock"))?;
        Ok(ConsoleSocket { dir, listener })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("pty.sock")
    }

    /// Receive the master runc sent (it connected during create/exec).
    pub async fn receive(self) -> io::Result<File> {
        let listener = self.listener.try_clone()?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        let received = async {
            let (conn, _) = listener.accept().await?;
            loop {
                conn.readable().await?;
                match conn.try_io(tokio::io::Interest::READABLE, || recv_fd(&conn)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                }
            }
        };
        match tokio::time::timeout(CONSOLE_WAIT, received).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("runc sent no terminal")),
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn recv_fd(conn: &impl AsRawFd) -> io::Result<File> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the fd was just received and is owned by nobody else.
                return Ok(unsafe { File::from_raw_fd(fd) });
            }
        }
    }
    Err(io::Error::other("no fd on the console socket"))
}
