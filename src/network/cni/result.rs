//! Reading what plugins print: results (CNI 0.2.0 to 1.0.0) reduced to the
//! pod's addresses, and the CNI error object `{code, msg, details}`.

use super::NetworkResult;
use serde_json::Value;

/// The interface crid asks plugins to create in the pod.
pub const IFNAME: &str = "eth0";

/// Pod addresses from a CNI result: addresses on `eth0` (else all but
/// loopback), first IPv4 as `ip`, the rest in order as `additional_ips`.
pub fn network_result(result: &Value) -> Option<NetworkResult> {
    let mut addrs: Vec<String> = Vec::new();
    if let Some(ips) = result.get("ips").and_then(Value::as_array) {
        let interfaces = result.get("interfaces").and_then(Value::as_array);
        let on_ifname = |ip: &Value| -> bool {
            let idx = ip.get("interface").and_then(Value::as_u64);
            match (idx, interfaces) {
                (Some(i), Some(ifs)) => {
                    ifs.get(i as usize)
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                        == Some(IFNAME)
                }
                _ => false,
            }
        };
        let all: Vec<&Value> = ips.iter().collect();
        let chosen: Vec<&Value> = if all.iter().any(|ip| on_ifname(ip)) {
            all.into_iter().filter(|ip| on_ifname(ip)).collect()
        } else {
            all
        };
        addrs = chosen
            .iter()
            .filter_map(|ip| ip.get("address").and_then(Value::as_str))
            .map(strip_prefix)
            .collect();
    } else {
        // CNI 0.2.0: {"ip4": {"ip": "10.0.0.2/24"}, "ip6": {...}}
        for key in ["ip4", "ip6"] {
            if let Some(a) = result
                .pointer(&format!("/{key}/ip"))
                .and_then(Value::as_str)
            {
                addrs.push(strip_prefix(a));
            }
        }
    }
    addrs.retain(|a| {
        a.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| !ip.is_loopback())
    });
    let primary = addrs
        .iter()
        .position(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .unwrap_or(0);
    if addrs.is_empty() {
        return None;
    }
    let ip = addrs.remove(primary);
    Some(NetworkResult {
        ip,
        additional_ips: addrs,
    })
}

fn strip_prefix(a: &str) -> String {
    a.split('/').next().unwrap_or(a).to_string()
}

/// The message of a CNI error object printed by a failing plugin, if any:
/// `msg` (with `details` appended) and the numeric `code`.
pub fn plugin_error(stdout: &[u8]) -> Option<(u64, String)> {
    let v: Value = serde_json::from_slice(stdout).ok()?;
    let msg = v.get("msg").and_then(Value::as_str)?;
    let code = v.get("code").and_then(Value::as_u64).unwrap_or(0);
    let details = v.get("details").and_then(Value::as_str).unwrap_or("");
    let text = if details.is_empty() {
        msg.to_string()
    } else {
        format!("{msg}; {details}")
    };
    Some((code, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_040_result() {
        let r = json!({"cniVersion":"0.4.0",
            "interfaces":[{"name":"cni0"},{"name":"veth1"},{"name":"eth0","sandbox":"/x"}],
            "ips":[{"version":"4","interface":2,"address":"10.22.0.5/16","gateway":"10.22.0.1"}],
            "dns":{}});
        assert_eq!(
            network_result(&r).unwrap(),
            NetworkResult {
                ip: "10.22.0.5".into(),
                additional_ips: vec![]
            }
        );
    }

    #[test]
    fn parses_a_100_dual_stack_result_with_ipv4_first() {
        let r = json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":"eth0","sandbox":"/x"}],
            "ips":[{"interface":0,"address":"fd00::5/64"},{"interface":0,"address":"10.1.0.5/24"}]});
        assert_eq!(
            network_result(&r).unwrap(),
            NetworkResult {
                ip: "10.1.0.5".into(),
                additional_ips: vec!["fd00::5".into()]
            }
        );
    }

    #[test]
    fn ignores_loopback_addresses_and_other_interfaces() {
        let r = json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":"lo"},{"name":"eth0"}],
            "ips":[{"interface":0,"address":"127.0.0.1/8"},{"interface":1,"address":"10.3.0.2/24"}]});
        assert_eq!(network_result(&r).unwrap().ip, "10.3.0.2");
        assert!(network_result(&json!({"ips":[{"address":"127.0.0.1/8"}]})).is_none());
    }

    #[test]
    fn parses_a_020_result() {
        let r = json!({"cniVersion":"0.2.0","ip4":{"ip":"10.4.0.3/24"}});
        assert_eq!(network_result(&r).unwrap().ip, "10.4.0.3");
    }

    #[test]
    fn parses_the_cni_error_object() {
        let out =
            br#"{"cniVersion":"1.0.0","code":7,"msg":"failed to allocate","details":"range full"}"#;
        assert_eq!(
            plugin_error(out).unwrap(),
            (7, "failed to allocate; range full".to_string())
        );
        assert!(plugin_error(b"garbage").is_none());
    }
}
