//! What `start` reads on its stdin and how it replies: the two start
//! protocols of containerd's runtime v2.
//!
//! - containerd 2.3+ writes `BootstrapParams` (protobuf,
//!   `containerd.runtime.bootstrap.v1`) on stdin and prefers a
//!   `BootstrapResult` reply: version 3 (task API `containerd.task.v3.Task`),
//!   the `unix://` address, protocol `ttrpc`.
//! - containerd 1.6 (and 1.7, 2.0–2.2) gives `/dev/null`, or the runtime
//!   options as a protobuf `Any`, and reads the reply as a plain ttrpc
//!   address, task API `containerd.task.v2.Task`. 2.x still accepts that
//!   form (its fallback), 1.6 accepts nothing else.
//!
//! The two encodings overlap on the wire: an `Any` (type URL in field 1,
//! value in field 2) decodes as `BootstrapParams` with the type URL as
//! instance id. So params count only when they name this very shim (the
//! `-id` and `-namespace` containerd also passes as flags); anything else
//! gets the plain reply, which every containerd reads.
//!
//! Of the params, `start` honours the socket directory and containerd's
//! ttrpc address (see `socket_dir`); the rest it already has the 1.6 way:
//! id, namespace, containerd's address and binary, and `-debug` come as
//! flags too, and the runtime options come again with each task's Create
//! (the only start-time use, `shim_cgroup`, is one crid never sets).
//!
//! This module owns the choice and the bytes; `shim::start` owns spawning.

use containerd_shim::bootstrap::{BootstrapParams, BootstrapResult};
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::TASK_API_VERSION;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::IsTerminal;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// The only transport this shim serves its task API on.
const TTRPC: &str = "ttrpc";

/// At most this much of stdin is read: params are a few hundred bytes
/// (containerd's own shims stop at 10 MiB).
const MAX_START_INPUT: usize = 1 << 20;

/// How long `start` waits for its stdin to end. containerd writes it from
/// memory and closes it at once; a stdin that never ends (a shell's, an
/// inherited pipe) costs at most this, and then gets the plain reply.
const START_INPUT_WAIT: Duration = Duration::from_secs(2);

/// How the containerd that runs `start` wants its reply.
#[derive(Debug, PartialEq)]
pub enum StartProtocol {
    /// containerd 2.3+: it sent these params for this shim.
    Bootstrap(Box<BootstrapParams>),
    /// containerd 1.6 to 2.2: a plain address, task API v2.
    PlainAddress,
}

impl StartProtocol {
    /// The protocol of a `start` whose stdin held `input`, for the shim
    /// `-id id -namespace namespace`.
    pub fn of(input: &[u8], id: &str, namespace: &str) -> StartProtocol {
        match BootstrapParams::parse_from_bytes(input) {
            Ok(p) if !input.is_empty() && p.instance_id == id && p.namespace == namespace => {
                StartProtocol::Bootstrap(Box::new(p))
            }
            _ => StartProtocol::PlainAddress,
        }
    }

    /// What `start` prints for a shim serving on `address` (`unix://…`):
    /// the versioned result, or the address byte for byte.
    pub fn reply(
        &self,
        address: &str,
    ) -> Result<Vec<u8>, containerd_shim::protos::protobuf::Error> {
        match self {
            StartProtocol::Bootstrap(_) => BootstrapResult {
                version: TASK_API_VERSION,
                address: address.to_string(),
                protocol: TTRPC.to_string(),
                ..Default::default()
            }
            .write_to_bytes(),
            StartProtocol::PlainAddress => Ok(address.as_bytes().to_vec()),
        }
    }

    /// The directory containerd 2.x wants shim sockets in (its shim
    /// manager's `socket_dir`, `/run/containerd/s` by default); `None`
    /// means the crate's `/run/containerd/s`.
    ///
    /// Honoured because only that containerd sends it, and it sends it on
    /// every `start`: every container of a pod computes the same address,
    /// so grouping and the reuse check hold. A pod whose shim was spawned
    /// under another directory (containerd 1.6 before an upgrade, a
    /// changed `socket_dir`) gets a second shim for its new containers;
    /// nothing is moved. `delete` reads the socket from the bundle's
    /// `address` file, so it needs no directory.
    pub fn socket_dir(&self) -> Option<String> {
        match self {
            StartProtocol::Bootstrap(p) => p.socket_dir.clone().filter(|d| !d.is_empty()),
            StartProtocol::PlainAddress => None,
        }
    }

    /// containerd's ttrpc address (where the shim publishes events), when
    /// the params carry it; containerd 2.x also sets `TTRPC_ADDRESS`.
    pub fn ttrpc_address(&self) -> Option<String> {
        match self {
            StartProtocol::Bootstrap(p) if !p.containerd_ttrpc_address.is_empty() => {
                Some(p.containerd_ttrpc_address.clone())
            }
            _ => None,
        }
    }
}

/// What containerd wrote on `start`'s stdin: nothing for a terminal, else
/// up to `MAX_START_INPUT` bytes read until end of file or
/// `START_INPUT_WAIT`, whichever comes first.
pub fn read_start_input() -> Vec<u8> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Vec::new();
    }
    read_until_eof(stdin.as_fd(), MAX_START_INPUT, START_INPUT_WAIT)
}

/// Read `fd` until end of file, `max` bytes, an error or `wait`, and return
/// what came. Never blocks past `wait`: each read follows a poll saying
/// data (or end of file) is there.
fn read_until_eof(fd: BorrowedFd, max: usize, wait: Duration) -> Vec<u8> {
    let deadline = Instant::now() + wait;
    let mut input = Vec::new();
    let mut buf = [0u8; 4096];
    while input.len() < max {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            Err(_) => break,
        }
        let ready = fds[0].revents().unwrap_or(PollFlags::empty());
        if ready.contains(PollFlags::POLLNVAL) {
            break;
        }
        let room = (max - input.len()).min(buf.len());
        match nix::unistd::read(fd, &mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            Err(_) => break,
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::bootstrap::Extension;
    use containerd_shim::protos::protobuf::well_known_types::any::Any;
    use std::io::Write;

    const ID: &str = "pod1";
    const NS: &str = "k8s.io";
    const ADDRESS: &str = "unix:///run/containerd/s/0123abcd";

    /// What containerd 2.3.4 writes: pkg/shim/util.go `Command`.
    fn params_of_containerd_2() -> BootstrapParams {
        let mut p = BootstrapParams {
            instance_id: ID.into(),
            namespace: NS.into(),
            containerd_version: "v2.3.4".into(),
            containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
            containerd_grpc_address: "/run/containerd/containerd.sock".into(),
            containerd_binary: "/usr/bin/containerd".into(),
            socket_dir: Some("/tmp/ctd/s".into()),
            ..Default::default()
        };
        p.extensions.push(Extension {
            value: Some(runc_options_any(b"\x32\x04crun")).into(),
            ..Default::default()
        });
        p
    }

    /// The runtime options as containerd 1.6 writes them (typeurl's bare
    /// type name).
    fn runc_options_any(value: &[u8]) -> Any {
        Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: value.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn containerd_2_params_get_the_versioned_ttrpc_result() {
        let input = params_of_containerd_2().write_to_bytes().unwrap();
        let protocol = StartProtocol::of(&input, ID, NS);
        assert!(matches!(protocol, StartProtocol::Bootstrap(_)));
        let result = BootstrapResult::parse_from_bytes(&protocol.reply(ADDRESS).unwrap()).unwrap();
        assert_eq!(
            (
                result.version,
                result.address.as_str(),
                result.protocol.as_str()
            ),
            (3, ADDRESS, "ttrpc")
        );
        assert_eq!(protocol.socket_dir().as_deref(), Some("/tmp/ctd/s"));
        assert_eq!(
            protocol.ttrpc_address().as_deref(),
            Some("/run/containerd/containerd.sock.ttrpc")
        );
    }

    #[test]
    fn containerd_1_6_stdin_gets_the_plain_address_byte_for_byte() {
        let options = runc_options_any(b"\x32\x04crun").write_to_bytes().unwrap();
        // Default options: an Any holding only its type URL.
        let empty_options = runc_options_any(b"").write_to_bytes().unwrap();
        for input in [&[][..], &options, &empty_options, b"\xff\xfe\x01"] {
            let protocol = StartProtocol::of(input, ID, NS);
            assert_eq!(protocol, StartProtocol::PlainAddress, "{input:?}");
            assert_eq!(protocol.reply(ADDRESS).unwrap(), ADDRESS.as_bytes());
            assert_eq!(protocol.socket_dir(), None);
            assert_eq!(protocol.ttrpc_address(), None);
        }
    }

    #[test]
    fn params_for_another_shim_get_the_plain_address() {
        let mut p = params_of_containerd_2();
        p.instance_id = "other".into();
        let input = p.write_to_bytes().unwrap();
        assert_eq!(
            StartProtocol::of(&input, ID, NS),
            StartProtocol::PlainAddress
        );
    }

    #[test]
    fn an_empty_socket_dir_means_the_default_one() {
        let mut p = params_of_containerd_2();
        p.socket_dir = Some(String::new());
        let input = p.write_to_bytes().unwrap();
        assert_eq!(StartProtocol::of(&input, ID, NS).socket_dir(), None);
    }

    #[test]
    fn stdin_is_read_to_its_end_and_no_further() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut w = std::fs::File::from(w);
        w.write_all(b"params").unwrap();
        drop(w);
        assert_eq!(
            read_until_eof(r.as_fd(), 1 << 20, START_INPUT_WAIT),
            b"params"
        );
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        assert!(read_until_eof(dev_null.as_fd(), 1 << 20, START_INPUT_WAIT).is_empty());
    }

    #[test]
    fn a_stdin_that_never_ends_gives_what_came() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut w = std::fs::File::from(w);
        w.write_all(b"partial").unwrap();
        // The writer stays open: the read ends at the (short) wait.
        let got = read_until_eof(r.as_fd(), 1 << 20, Duration::from_millis(50));
        assert_eq!(got, b"partial");
        // And at `max` bytes.
        w.write_all(b"more").unwrap();
        assert_eq!(read_until_eof(r.as_fd(), 3, START_INPUT_WAIT), b"mor");
    }
}
