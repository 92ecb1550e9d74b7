//! crid-logger as the shim runs it: stdout on fd 3, stderr on fd 4, a ready
//! pipe on fd 5, `key value` argument pairs from the log URI.

mod support;

use crid::logger::{attach, read_frame, request_reopen, Stream};
use std::io::{PipeWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

struct Logger {
    child: Child,
    stdout: Option<PipeWriter>,
    stderr: Option<PipeWriter>,
    log: PathBuf,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Logger {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pods/ns_pod_uid/ctr/0.log");
    let control = dir.path().join("ctl.sock");
    let (out_r, out_w) = std::io::pipe().unwrap();
    let (err_r, err_w) = std::io::pipe().unwrap();
    let (mut ready_r, ready_w) = std::io::pipe().unwrap();
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(support::built_next_to_crid("crid-logger"));
    // Arbitrary order, as Go's map iteration gives them.
    cmd.args([
        "control",
        control.to_str().unwrap(),
        "log",
        log.to_str().unwrap(),
    ])
    .env("CONTAINER_ID", "c1")
    .env("CONTAINER_NAMESPACE", "k8s.io");
    unsafe {
        cmd.pre_exec(move || {
            // Move the sources above 10 first: they may already sit on 3..=5.
            let mut high = [0; 3];
            for (i, fd) in fds.iter().enumerate() {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if high[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in high.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop((out_r, err_r, ready_w));
    // Ready: fd 5 closed by the logger (EOF on our end).
    let mut buf = Vec::new();
    ready_r.read_to_end(&mut buf).unwrap();
    assert!(log.exists(), "log file created before ready");
    assert!(control.exists(), "control socket bound before ready");
    Logger {
        child,
        stdout: Some(out_w),
        stderr: Some(err_w),
        log,
        control,
        _dir: dir,
    }
}

impl Logger {
    fn out(&mut self, data: &[u8]) {
        self.stdout.as_mut().unwrap().write_all(data).unwrap();
    }
    fn err(&mut self, data: &[u8]) {
        self.stderr.as_mut().unwrap().write_all(data).unwrap();
    }
    /// Close both streams and wait for a clean exit.
    fn finish(&mut self) {
        self.stdout.take();
        self.stderr.take();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "logger exited with {status}");
    }
}

/// (stream, tag, content) of every entry; checks the timestamp's shape.
fn entries(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    // Not `lines()`: a `\r` before the newline is content.
    text.split_terminator('\n')
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let ts = it.next().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
                "bad timestamp {ts:?}"
            );
            (
                it.next().unwrap().to_string(),
                it.next().unwrap().to_string(),
                it.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn e(stream: &str, tag: &str, content: &str) -> (String, String, String) {
    (stream.into(), tag.into(), content.into())
}

#[test]
fn writes_cri_entries_and_exits_at_eof_removing_socket() {
    let mut l = start();
    l.out(b"hello\nwor");
    l.out(b"ld\r\n");
    l.err(b"oops\n");
    l.out(b"tail without newline");
    l.finish();
    let mut got = entries(&l.log);
    // stdout and stderr interleave freely; order within a stream is kept.
    let err: Vec<_> = got.iter().filter(|x| x.0 == "stderr").cloned().collect();
    got.retain(|x| x.0 == "stdout");
    assert_eq!(err, vec![e("stderr", "F", "oops")]);
    assert_eq!(
        got,
        vec![
            e("stdout", "F", "hello"),
            e("stdout", "F", "world\r"),
            e("stdout", "P", "tail without newline"),
        ]
    );
    assert!(!l.control.exists(), "control socket removed at exit");
}

#[test]
fn long_line_is_split_into_p_p_f_with_exact_content() {
    let mut l = start();
    let line: String = (0..40 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    l.out(line.as_bytes());
    l.out(b"\n");
    l.finish();
    assert_eq!(
        entries(&l.log),
        vec![
            e("stdout", "P", &line[..16384]),
            e("stdout", "P", &line[16384..32768]),
            e("stdout", "F", &line[32768..]),
        ]
    );
}

#[test]
fn reopen_after_rename_loses_no_line() {
    let mut l = start();
    let rotated = l.log.with_extension("log.1");
    // Each line is confirmed in the file before the rename, as kubelet's
    // rotation sees a quiet container; the logger may still hold the old fd.
    for i in 0..3 {
        l.out(format!("before {i}\n").as_bytes());
    }
    wait_for_lines(&l.log, 3);
    std::fs::rename(&l.log, &rotated).unwrap();
    l.out(b"still old fd\n");
    wait_for_lines(&rotated, 4);
    request_reopen(&l.control).unwrap();
    assert!(l.log.exists(), "fresh file exists when reopen returns");
    l.out(b"after\n");
    l.err(b"after err\n");
    l.finish();
    let old: Vec<_> = entries(&rotated).into_iter().map(|x| x.2).collect();
    assert_eq!(old, ["before 0", "before 1", "before 2", "still old fd"]);
    let mut new: Vec<_> = entries(&l.log).into_iter().map(|x| x.2).collect();
    new.sort();
    assert_eq!(new, ["after", "after err"]);
}

#[test]
fn attach_receives_frames_until_output_ends() {
    let mut l = start();
    l.out(b"not seen by attach\n");
    wait_for_lines(&l.log, 1);
    let mut conn = attach(&l.control).unwrap();
    l.out(b"to stdout\n");
    l.err(b"to stderr\n");
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(read_frame(&mut conn).unwrap().expect("frame"));
    }
    got.sort_by_key(|(s, _)| s.frame_id());
    assert_eq!(
        got,
        vec![
            (Stream::Stdout, b"to stdout\n".to_vec()),
            (Stream::Stderr, b"to stderr\n".to_vec())
        ]
    );
    l.finish();
    assert_eq!(
        read_frame(&mut conn).unwrap(),
        None,
        "closed at end of output"
    );
}

#[test]
fn unknown_command_is_an_error() {
    let mut l = start();
    let mut c = std::os::unix::net::UnixStream::connect(&l.control).unwrap();
    c.write_all(b"dance\n").unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("error "), "{reply}");
    l.finish();
}

/// Wait (without a deadline: the test harness times out) until `path` holds
/// `n` lines; the logger writes asynchronously to our pipe writes.
fn wait_for_lines(path: &Path, n: usize) {
    loop {
        let count = std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if count >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
