//! Registry hosts configuration in containerd's format: a directory of
//! `<host>/hosts.toml` files (`server`, `[host."http://mirror"]` with
//! `capabilities`, `skip_verify`, `ca`). Owns parsing and the ordered list of
//! endpoints to try for a registry; no network I/O.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One place to fetch from, in the order to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub host: String,
    pub pull: bool,
    pub resolve: bool,
    pub skip_verify: bool,
    pub ca: Vec<PathBuf>,
}

impl Endpoint {
    pub fn plain_http(&self) -> bool {
        self.scheme == "http"
    }
}

#[derive(Debug, Default, Deserialize)]
struct HostFields {
    server: Option<String>,
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    ca: Option<StringOrList>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
struct HostsFile {
    #[serde(flatten)]
    top: HostFields,
    #[serde(default)]
    host: std::collections::HashMap<String, HostFields>,
}

/// True for registries on the loopback (plain HTTP by default, like containerd).
pub fn is_loopback(domain: &str) -> bool {
    let host = match domain.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => domain,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The default server of a registry when no hosts.toml says otherwise.
pub fn default_server(domain: &str) -> String {
    if domain == "docker.io" {
        "https://registry-1.docker.io".into()
    } else if is_loopback(domain) {
        format!("http://{domain}")
    } else {
        format!("https://{domain}")
    }
}

/// Endpoints for `domain`: the `[host]` entries of `<dir>/<domain>/hosts.toml`
/// (or `<dir>/_default/hosts.toml`) in file order, then the server.
pub fn endpoints(config_dir: &Path, domain: &str) -> Result<Vec<Endpoint>> {
    for candidate in [domain, "_default"] {
        let file = config_dir.join(candidate).join("hosts.toml");
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                return parse(&text, domain, file.parent().unwrap_or(config_dir))
                    .map_err(|e| e.context(&format!("{}", file.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("read {}", file.display()), e)),
        }
    }
    parse("", domain, config_dir)
}

/// Parse one hosts.toml for `domain`; relative `ca` paths are under `base`.
pub fn parse(text: &str, domain: &str, base: &Path) -> Result<Vec<Endpoint>> {
    let file: HostsFile =
        toml::from_str(text).map_err(|e| Error::invalid(format!("hosts.toml: {e}")))?;
    let mut hosts: Vec<(usize, String, &HostFields)> = file
        .host
        .iter()
        .map(|(k, v)| {
            // toml tables lose order: keep the order of appearance in the text.
            let pos = text
                .find(&format!("\"{k}\""))
                .or_else(|| text.find(k.as_str()))
                .unwrap_or(usize::MAX);
            (pos, k.clone(), v)
        })
        .collect();
    hosts.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = vec![];
    for (_, url, fields) in hosts {
        out.push(endpoint(&url, fields, false, base)?);
    }
    let server = file
        .top
        .server
        .clone()
        .unwrap_or_else(|| default_server(domain));
    out.push(endpoint(&server, &file.top, true, base)?);
    Ok(out)
}

fn endpoint(url: &str, f: &HostFields, is_server: bool, base: &Path) -> Result<Endpoint> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s @ ("http" | "https"), r)) => (s.to_string(), r),
        Some((s, _)) => return Err(Error::invalid(format!("unsupported scheme {s:?}"))),
        None => ("https".to_string(), url),
    };
    let host = rest.split('/').next().unwrap_or_default().to_string();
    if host.is_empty() {
        return Err(Error::invalid(format!("host url {url:?} has no host")));
    }
    let caps = f.capabilities.clone().unwrap_or_else(|| {
        if is_server {
            vec!["pull".into(), "resolve".into(), "push".into()]
        } else {
            vec!["pull".into(), "resolve".into()]
        }
    });
    let ca = match &f.ca {
        None => vec![],
        Some(StringOrList::One(s)) => vec![s.clone()],
        Some(StringOrList::Many(v)) => v.clone(),
    };
    Ok(Endpoint {
        scheme,
        host,
        pull: caps.iter().any(|c| c == "pull"),
        resolve: caps.iter().any(|c| c == "resolve"),
        skip_verify: f.skip_verify.unwrap_or(false),
        ca: ca.into_iter().map(|p| base.join(p)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let d = tempfile::tempdir().unwrap();
        let e = endpoints(d.path(), "docker.io").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].host, "registry-1.docker.io");
        assert_eq!(e[0].scheme, "https");
        let e = endpoints(d.path(), "127.0.0.1:5000").unwrap();
        assert_eq!(
            (e[0].scheme.as_str(), e[0].host.as_str()),
            ("http", "127.0.0.1:5000")
        );
        assert!(e[0].pull && e[0].resolve);
        assert!(is_loopback("localhost:5000") && is_loopback("[::1]:80"));
        assert!(!is_loopback("registry.k8s.io"));
    }

    #[test]
    fn mirrors_in_file_order_then_server() {
        let text = r#"
server = "https://registry.example.com"
skip_verify = true

[host."http://127.0.0.1:5001"]
  capabilities = ["pull", "resolve"]

[host."https://a-mirror.local/v2"]
  capabilities = ["pull"]
  ca = ["ca.pem"]
"#;
        let e = parse(text, "example.com", Path::new("/certs/example.com")).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].host, "127.0.0.1:5001");
        assert!(e[0].plain_http() && e[0].resolve);
        assert_eq!(e[1].host, "a-mirror.local");
        assert!(e[1].pull && !e[1].resolve);
        assert_eq!(e[1].ca, vec![PathBuf::from("/certs/example.com/ca.pem")]);
        assert_eq!(e[2].host, "registry.example.com");
        assert!(e[2].skip_verify);
    }

    #[test]
    fn reads_host_dir_then_default() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("mirror.test")).unwrap();
        std::fs::write(
            d.path().join("mirror.test/hosts.toml"),
            "server = \"https://mirror.test\"\n[host.\"http://127.0.0.1:9\"]\ncapabilities = [\"pull\",\"resolve\"]\n",
        )
        .unwrap();
        let e = endpoints(d.path(), "mirror.test").unwrap();
        assert_eq!(e[0].host, "127.0.0.1:9");
        std::fs::create_dir_all(d.path().join("_default")).unwrap();
        std::fs::write(
            d.path().join("_default/hosts.toml"),
            "server = \"http://x:1\"",
        )
        .unwrap();
        assert_eq!(endpoints(d.path(), "other.io").unwrap()[0].host, "x:1");
        assert!(parse("server = 5", "x", d.path()).is_err());
    }
}
