//! Placeholder until the spec generator lands.
use crate::cri::DnsConfig;
pub fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}
pub fn resolv_conf(_dns: Option<&DnsConfig>, host: &str) -> String {
    host.to_string()
}
