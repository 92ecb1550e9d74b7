//! Percent-encoding for the URIs crid builds (log driver `binary://` URIs,
//! Docker API query strings in the benchmark).

/// Percent-encode every byte of `s` except ASCII alphanumerics, `-_.~` and
/// the bytes in `keep` (e.g. `b"/"` for paths).
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unreserved_and_requested_bytes() {
        assert_eq!(percent_encode("/var/log/a b&c", b"/"), "/var/log/a%20b%26c");
        assert_eq!(percent_encode("{\"a\":1}", b""), "%7B%22a%22%3A1%7D");
    }
}
