//! crid's log driver URI, the stdout/stderr crid gives a task:
//! `binary://<crid-logger>?log=<CRI log file>&control=<control socket>`.
//! containerd's runc shim starts the named crid-logger with the query as
//! arguments; crid's own shim recognises the URI and runs the driver
//! in-process. Also the percent-encoding crid uses for URIs.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::path::{Path, PathBuf};

/// The file name that marks crid's log driver in a `binary://` URI.
pub const LOGGER_NAME: &str = "crid-logger";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogUri {
    /// The crid-logger program.
    pub binary: PathBuf,
    /// The CRI log file.
    pub log: PathBuf,
    /// The control socket (`reopen`, `attach`).
    pub control: Option<PathBuf>,
}

impl LogUri {
    pub fn to_uri(&self) -> String {
        let path = |p: &Path| utf8_percent_encode(&p.to_string_lossy(), PATH).to_string();
        let mut uri = format!("binary://{}?log={}", self.binary.display(), path(&self.log));
        if let Some(control) = &self.control {
            uri.push_str("&control=");
            uri.push_str(&path(control));
        }
        uri
    }

    /// Parse crid's log URI; any other URI (or path): `None`.
    pub fn parse(uri: &str) -> Option<LogUri> {
        let rest = uri.strip_prefix("binary://")?;
        let (binary, query) = rest.split_once('?').unwrap_or((rest, ""));
        if Path::new(binary).file_name()? != LOGGER_NAME {
            return None;
        }
        let mut log = None;
        let mut control = None;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = PathBuf::from(percent_decode(v));
            match k {
                "log" => log = Some(v),
                "control" => control = Some(v),
                _ => {}
            }
        }
        Some(LogUri {
            binary: binary.into(),
            log: log?,
            control,
        })
    }
}

/// What [`percent_encode`] escapes: every byte but ASCII alphanumerics and
/// `-_.~` (RFC 3986's unreserved characters), so the result fits in any part
/// of a URI (a query value, a path segment).
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// [`COMPONENT`] that keeps `/`: a file path in the log URI's query.
const PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// Percent-encode every byte of `s` in [`COMPONENT`].
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Undo [`percent_encode`] (a `%` without two hex digits stays as is).
pub fn percent_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unreserved_and_requested_bytes() {
        assert_eq!(percent_encode("{\"a\":1}"), "%7B%22a%22%3A1%7D");
        assert_eq!(percent_encode("a/b c-_.~é"), "a%2Fb%20c-_.~%C3%A9");
        assert_eq!(
            utf8_percent_encode("/var/log/a b&c", PATH).to_string(),
            "/var/log/a%20b%26c"
        );
        assert_eq!(percent_decode("/var/log/a%20b%26c%zz"), "/var/log/a b&c%zz");
    }

    #[test]
    fn log_uri_round_trips_and_only_names_crid_logger() {
        let uri = LogUri {
            binary: "/usr/bin/crid-logger".into(),
            log: "/var/log/pods/a b/c/0.log".into(),
            control: Some("/run/x/logger.sock".into()),
        };
        let text = uri.to_uri();
        assert_eq!(
            text,
            "binary:///usr/bin/crid-logger?log=/var/log/pods/a%20b/c/0.log&control=/run/x/logger.sock"
        );
        assert_eq!(LogUri::parse(&text), Some(uri));
        assert_eq!(LogUri::parse("binary:///usr/bin/other?log=/x"), None);
        assert_eq!(LogUri::parse("/run/fifo"), None);
        assert_eq!(
            LogUri::parse("binary:///usr/bin/crid-logger?control=/x"),
            None
        );
    }
}
