//! The CRI container log format and the crid-logger control protocol.
//!
//! Owns: turning raw stdout/stderr bytes into CRI log entries
//! (`<RFC3339Nano> <stdout|stderr> <P|F> <content>\n`, lines split at 16 KiB),
//! the attach frame encoding, and small blocking clients for the logger's
//! control socket. The log driver itself (log file, control socket, attach
//! fan-out) is [`driver`], run by the `crid-logger` binary
//! (crates/crid-logger); crid's shim (crates/crid-shim) runs its own on its
//! tokio thread, from the same parts.
//! Nothing here knows about containerd or tonic.

pub mod driver;
pub mod uri;

use chrono::{DateTime, Timelike, Utc};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Longest content of one log entry; longer lines become `P` chunks.
pub const MAX_ENTRY: usize = 16 * 1024;

/// Which container stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Stream id in attach frames: 1 = stdout, 2 = stderr.
    pub fn frame_id(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    pub fn from_frame_id(id: u8) -> Option<Stream> {
        match id {
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// Go's `time.RFC3339Nano` in UTC: fraction with trailing zeros removed
/// (none at all on a whole second), `Z` suffix.
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Append one CRI log entry to `out`. `partial` selects the `P` tag, else `F`.
/// `content` is written as is (a `\r` before the newline stays content).
pub fn format_entry(
    out: &mut Vec<u8>,
    timestamp: &str,
    stream: Stream,
    partial: bool,
    content: &[u8],
) {
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Splits a byte stream into log entries: every `\n` ends a full (`F`) entry;
/// more than [`MAX_ENTRY`] bytes without a newline give a partial (`P`) entry
/// of exactly `MAX_ENTRY` bytes; whatever is left at EOF is a `P` entry.
/// A line of exactly `MAX_ENTRY` bytes is one `F` entry.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed bytes; `emit(content, partial)` is called for each complete entry.
    /// Only an unterminated rest is copied and kept: a chunk that ends its
    /// lines is split where it lies, and the room a long partial line took
    /// is given back once the line is out.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        if self.pending.is_empty() {
            let used = split_entries(data, &mut emit);
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let used = split_entries(&self.pending, &mut emit);
            self.pending.drain(..used);
        }
        if self.pending.is_empty() && self.pending.capacity() > PENDING_KEPT {
            self.pending = Vec::new();
        }
    }

    /// End of stream: a leftover unterminated line is emitted as partial.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.pending.is_empty() {
            emit(&self.pending, true);
            self.pending.clear();
        }
    }
}

/// Room a [`LineSplitter`] keeps for the next partial line once it is empty.
const PENDING_KEPT: usize = 4 * 1024;

/// Emit the entries `buf` holds, as [`LineSplitter::push`] describes; returns
/// how many bytes they took (the rest is an unterminated line of at most
/// `MAX_ENTRY` bytes).
fn split_entries(buf: &[u8], emit: &mut impl FnMut(&[u8], bool)) -> usize {
    let mut start = 0;
    loop {
        let rest = &buf[start..];
        let window = &rest[..rest.len().min(MAX_ENTRY + 1)];
        match window.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                emit(&rest[..nl], false);
                start += nl + 1;
            }
            // The byte after MAX_ENTRY proves the entry does not end there.
            None if rest.len() > MAX_ENTRY => {
                emit(&rest[..MAX_ENTRY], true);
                start += MAX_ENTRY;
            }
            None => return start,
        }
    }
}

/// Encode one attach frame: stream id, 4-byte big-endian length, payload.
pub fn encode_frame(stream: Stream, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + payload.len());
    f.push(stream.frame_id());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Read one attach frame; `Ok(None)` at a clean end of the connection.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(Stream, Vec<u8>)>> {
    let mut header = [0u8; 5];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let stream = Stream::from_frame_id(header[0]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad stream id {}", header[0]),
        )
    })?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((stream, payload)))
}

/// Send one control command and read the one-line reply.
fn control_request(socket: &Path, command: &str) -> io::Result<(BufReader<UnixStream>, String)> {
    let mut conn = UnixStream::connect(socket)?;
    conn.write_all(command.as_bytes())?;
    conn.write_all(b"\n")?;
    let mut reader = BufReader::new(conn);
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    match reply.trim_end() {
        "ok" => Ok((reader, reply)),
        other => Err(io::Error::other(format!(
            "crid-logger {command}: {}",
            other.strip_prefix("error ").unwrap_or(if other.is_empty() {
                "connection closed"
            } else {
                other
            })
        ))),
    }
}

/// Ask the logger behind `socket` to reopen its log file (after kubelet
/// renamed it). Returns once the new file exists. Blocking.
pub fn request_reopen(socket: &Path) -> io::Result<()> {
    control_request(socket, "reopen").map(|_| ())
}

/// Attach to the logger behind `socket`: the returned reader yields frames
/// (see [`read_frame`]) of the container's output from now on, and ends
/// when the container's output ends. Blocking.
pub fn attach(socket: &Path) -> io::Result<BufReader<UnixStream>> {
    control_request(socket, "attach").map(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn split(chunks: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |b, p| out.push((b.to_vec(), p)));
        }
        s.finish(|b, p| out.push((b.to_vec(), p)));
        out
    }

    #[test]
    fn timestamp_is_go_rfc3339nano_utc() {
        let t = Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).unwrap();
        assert_eq!(rfc3339_nano(t), "2024-03-05T07:08:09Z");
        let t = t + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(rfc3339_nano(t), "2024-03-05T07:08:09.12Z");
        let t = t + chrono::Duration::nanoseconds(3);
        assert_eq!(rfc3339_nano(t), "2024-03-05T07:08:09.120000003Z");
    }

    #[test]
    fn entry_format_has_stream_and_tag() {
        let mut out = Vec::new();
        format_entry(&mut out, "T", Stream::Stdout, false, b"hello");
        format_entry(&mut out, "T", Stream::Stderr, true, b"part");
        assert_eq!(out, b"T stdout F hello\nT stderr P part\n");
    }

    #[test]
    fn lines_across_chunks_are_joined() {
        let out = split(&[b"he", b"llo\nwor", b"ld\n\n"]);
        assert_eq!(
            out,
            vec![
                (b"hello".to_vec(), false),
                (b"world".to_vec(), false),
                (vec![], false)
            ]
        );
    }

    #[test]
    fn forty_kib_line_is_split_p_p_f_exactly() {
        let line: Vec<u8> = (0..40 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let mut input = line.clone();
        input.push(b'\n');
        // Feed in odd-sized chunks to exercise buffering.
        let chunks: Vec<&[u8]> = input.chunks(3000).collect();
        let out = split(&chunks);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], (line[..16384].to_vec(), true));
        assert_eq!(out[1], (line[16384..32768].to_vec(), true));
        assert_eq!(out[2], (line[32768..].to_vec(), false));
    }

    #[test]
    fn line_of_exactly_max_is_one_full_entry() {
        let mut input = vec![b'x'; MAX_ENTRY];
        input.push(b'\n');
        let out = split(&[&input[..100], &input[100..MAX_ENTRY], &input[MAX_ENTRY..]]);
        assert_eq!(out, vec![(vec![b'x'; MAX_ENTRY], false)]);
    }

    #[test]
    fn trailing_partial_line_at_eof_is_p() {
        assert_eq!(
            split(&[b"a\nno newline"]),
            vec![(b"a".to_vec(), false), (b"no newline".to_vec(), true)]
        );
    }

    #[test]
    fn a_splitter_keeps_only_what_a_partial_line_needs() {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        // Whole lines in one chunk: nothing kept.
        s.push(
            &[b"one line\n".repeat(1000), b"rest".to_vec()].concat(),
            |b, p| out.push((b.len(), p)),
        );
        assert_eq!(out.len(), 1000);
        assert_eq!(s.pending, b"rest");
        assert!(s.pending.capacity() < 64, "{}", s.pending.capacity());
        // A long partial line takes room, which goes once the line is out.
        s.push(&vec![b'x'; 20 * 1024], |b, p| out.push((b.len(), p)));
        s.push(b"\n", |b, p| out.push((b.len(), p)));
        assert_eq!(
            &out[1000..],
            &[(MAX_ENTRY, true), (4 + 20 * 1024 - MAX_ENTRY, false)]
        );
        assert_eq!(s.pending.capacity(), 0);
    }

    #[test]
    fn crlf_keeps_carriage_return_as_content() {
        assert_eq!(split(&[b"dos\r\n"]), vec![(b"dos\r".to_vec(), false)]);
    }

    #[test]
    fn frames_round_trip() {
        let mut buf = encode_frame(Stream::Stderr, b"oops");
        buf.extend(encode_frame(Stream::Stdout, b""));
        assert_eq!(&buf[..5], &[2, 0, 0, 0, 4]);
        let mut r = &buf[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some((Stream::Stderr, b"oops".to_vec()))
        );
        assert_eq!(read_frame(&mut r).unwrap(), Some((Stream::Stdout, vec![])));
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }
}
