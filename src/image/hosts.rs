//! Registry hosts configuration in containerd's format: a directory of
//! `<host>/hosts.toml` files (`server`, `[host."http://mirror"]` with
//! `capabilities`, `skip_verify`, `ca`, `[header]`, `override_path`), or
//! Docker-style `*.crt` files when a host's directory has no hosts.toml.
//! Owns parsing and the ordered list of endpoints to try for a registry,
//! each with its API root; no network I/O.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One place to fetch from, in the order to try.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub host: String,
    /// The API root requests go under, as containerd computes it: `/v2`,
    /// `<path>/v2`, or (with `override_path`) the URL's path as written.
    pub path: String,
    pub pull: bool,
    pub resolve: bool,
    pub skip_verify: bool,
    pub ca: Vec<PathBuf>,
    /// `[header]`: extra request headers, name → values.
    pub headers: BTreeMap<String, Vec<String>>,
    /// `client` (TLS client certificates) is set.
    pub client_certs: bool,
}

impl Endpoint {
    pub fn plain_http(&self) -> bool {
        self.scheme == "http"
    }

    /// The PEM contents of the `ca` files.
    pub fn ca_pems(&self) -> Result<Vec<Vec<u8>>> {
        self.ca
            .iter()
            .map(|p| std::fs::read(p).map_err(|e| Error::io(format!("read CA {p:?}"), e)))
            .collect()
    }

    /// How a client that always requests `<registry>/v2/<repository>/…`
    /// (oci-client) reaches this endpoint's API root: the registry to give
    /// it (host, plus any path before `/v2`) and a prefix for repository
    /// names (any path after `/v2`). `Unimplemented` for an API root with
    /// no `/v2` segment (only possible with `override_path`).
    pub fn client_location(&self) -> Result<(String, String)> {
        let p = self.path.as_str();
        if let Some(before) = p.strip_suffix("/v2") {
            return Ok((format!("{}{before}", self.host), String::new()));
        }
        if let Some((before, after)) = p.split_once("/v2/") {
            return Ok((format!("{}{before}", self.host), after.to_string()));
        }
        Err(Error::Unimplemented(format!(
            "API root {}://{}{p} has no /v2 segment: crid's registry client always requests <root>/v2/<name>/…",
            self.scheme, self.host
        )))
    }
}

#[derive(Debug, Default, Deserialize)]
struct HostFields {
    server: Option<String>,
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    ca: Option<StringOrList>,
    header: Option<HashMap<String, StringOrList>>,
    #[serde(default)]
    override_path: bool,
    /// A path, a list of paths or of [cert, key] pairs; not used.
    client: Option<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn to_vec(&self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s.clone()],
            StringOrList::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct HostsFile {
    #[serde(flatten)]
    top: HostFields,
    #[serde(default)]
    host: HashMap<String, HostFields>,
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

/// The directories that may configure `domain`, in containerd's order:
/// `host_port_` (for a domain with a port), `host:port`, `_default`.
fn host_dirs(config_dir: &Path, domain: &str) -> Vec<PathBuf> {
    let mut dirs = vec![];
    if let Some((h, port)) = domain.rsplit_once(':') {
        if !h.is_empty() {
            dirs.push(config_dir.join(format!("{h}_{port}_")));
        }
    }
    dirs.push(config_dir.join(domain));
    dirs.push(config_dir.join("_default"));
    dirs
}

/// Endpoints for `domain` from the first of its directories that exists
/// (as containerd does): the `[host]` entries of its hosts.toml in file
/// order, then the server; without a hosts.toml, the default server
/// trusting the directory's `*.crt` files.
pub fn endpoints(config_dir: &Path, domain: &str) -> Result<Vec<Endpoint>> {
    for dir in host_dirs(config_dir, domain) {
        if !dir.is_dir() {
            continue;
        }
        let file = dir.join("hosts.toml");
        return match std::fs::read_to_string(&file) {
            Ok(text) => {
                parse(&text, domain, &dir).map_err(|e| e.context(&format!("{}", file.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut server = parse("", domain, &dir)?;
                server[0].ca = crt_files(&dir)?;
                Ok(server)
            }
            Err(e) => Err(Error::io(format!("read {}", file.display()), e)),
        };
    }
    parse("", domain, config_dir)
}

/// Docker's certificate layout: `*.crt` files are CAs (sorted by name).
fn crt_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("read {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    out.sort();
    Ok(out)
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
        out.push(endpoint(&url, fields, base)?);
    }
    let server = file
        .top
        .server
        .clone()
        .unwrap_or_else(|| default_server(domain));
    out.push(endpoint(&server, &file.top, base)?);
    Ok(out)
}

fn endpoint(url: &str, f: &HostFields, base: &Path) -> Result<Endpoint> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s @ ("http" | "https"), r)) => (s.to_string(), r),
        Some((s, _)) => return Err(Error::invalid(format!("unsupported scheme {s:?}"))),
        None => ("https".to_string(), url),
    };
    let (host, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], rest[i..].split(['?', '#']).next().unwrap_or("")),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(Error::invalid(format!("host url {url:?} has no host")));
    }
    let caps = match &f.capabilities {
        Some(c) if !c.is_empty() => c.clone(),
        // containerd: every capability when none is listed (a `[host]`
        // without `capabilities` may resolve too).
        _ => vec!["pull".into(), "resolve".into(), "push".into()],
    };
    for c in &caps {
        if !matches!(c.to_ascii_lowercase().as_str(), "pull" | "resolve" | "push") {
            return Err(Error::invalid(format!("unknown capability {c:?}")));
        }
    }
    let has = |name: &str| caps.iter().any(|c| c.eq_ignore_ascii_case(name));
    let ca = f.ca.as_ref().map(StringOrList::to_vec).unwrap_or_default();
    Ok(Endpoint {
        scheme,
        host: host.to_string(),
        path: api_root(path, f.override_path),
        pull: has("pull"),
        resolve: has("resolve"),
        skip_verify: f.skip_verify.unwrap_or(false),
        ca: ca.into_iter().map(|p| base.join(p)).collect(),
        headers: f
            .header
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.to_vec()))
            .collect(),
        client_certs: f.client.is_some(),
    })
}

/// containerd's API root for a host URL path: cleaned, `/v2` appended
/// unless it ends so; with `override_path`, the path as it is.
fn api_root(path: &str, override_path: bool) -> String {
    let mut parts: Vec<&str> = vec![];
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let clean = if parts.is_empty() {
        String::new()
    } else {
        format!("/{}", parts.join("/"))
    };
    if override_path || clean.ends_with("/v2") {
        clean
    } else {
        format!("{clean}/v2")
    }
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
        assert!(e.iter().all(|e| e.path == "/v2" && e.headers.is_empty()));
    }

    #[test]
    fn headers_top_level_for_the_server_and_per_host() {
        let text = r#"
server = "https://registry.example.com"

[header]
  x-custom-1 = "custom header"
  x-custom-2 = ["part a", "part b"]

[host."https://mirror.example.com"]
  capabilities = ["pull", "resolve"]
  [host."https://mirror.example.com".header]
    authorization = "Basic Zm9vOmJhcg=="

[host."https://plain.example.com"]
"#;
        let e = parse(text, "example.com", Path::new("/c")).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0].headers,
            BTreeMap::from([(
                "authorization".to_string(),
                vec!["Basic Zm9vOmJhcg==".to_string()]
            )])
        );
        // The top-level table belongs to the server only, as in containerd.
        assert!(e[1].headers.is_empty());
        assert_eq!(
            e[2].headers,
            BTreeMap::from([
                ("x-custom-1".to_string(), vec!["custom header".to_string()]),
                (
                    "x-custom-2".to_string(),
                    vec!["part a".to_string(), "part b".to_string()]
                ),
            ])
        );
        assert!(parse("[header]\nx = 5\n", "x", Path::new("/c")).is_err());
        let e = parse("client = [[\"c.cert\", \"c.key\"]]\n", "x", Path::new("/c")).unwrap();
        assert!(e[0].client_certs && e[0].headers.is_empty());
    }

    #[test]
    fn api_root_follows_containerd_with_and_without_override_path() {
        let text = r#"
server = "https://registry.example.com/base"

[host."http://127.0.0.1:5000/v2/mirror"]
  override_path = true
[host."https://proxy.example.com/artifactory/api/v2"]
  override_path = true
[host."https://prefix.example.com/some/path/"]
[host."https://odd.example.com/api/docker"]
  override_path = true
[host."https://root.example.com"]
  override_path = true
[host."https://dots.example.com/a/../b/./v2"]
"#;
        let e = parse(text, "example.com", Path::new("/c")).unwrap();
        let roots: Vec<(&str, &str)> = e
            .iter()
            .map(|e| (e.host.as_str(), e.path.as_str()))
            .collect();
        assert_eq!(
            roots,
            vec![
                ("127.0.0.1:5000", "/v2/mirror"),
                ("proxy.example.com", "/artifactory/api/v2"),
                ("prefix.example.com", "/some/path/v2"),
                ("odd.example.com", "/api/docker"),
                ("root.example.com", ""),
                ("dots.example.com", "/b/v2"),
                ("registry.example.com", "/base/v2"),
            ]
        );
        let loc = |i: usize| e[i].client_location();
        assert_eq!(
            loc(0).unwrap(),
            ("127.0.0.1:5000".to_string(), "mirror".to_string())
        );
        assert_eq!(
            loc(1).unwrap(),
            (
                "proxy.example.com/artifactory/api".to_string(),
                String::new()
            )
        );
        assert_eq!(
            loc(2).unwrap(),
            ("prefix.example.com/some/path".to_string(), String::new())
        );
        assert!(matches!(loc(3), Err(Error::Unimplemented(_))));
        assert!(matches!(loc(4), Err(Error::Unimplemented(_))));
        assert_eq!(
            loc(6).unwrap(),
            ("registry.example.com/base".to_string(), String::new())
        );
    }

    #[test]
    fn capabilities_default_to_all_and_unknown_ones_are_rejected() {
        let e = parse(
            "[host.\"https://m.example.com\"]\ncapabilities = []\n",
            "x",
            Path::new("/c"),
        )
        .unwrap();
        assert!(e[0].pull && e[0].resolve);
        assert!(parse(
            "[host.\"https://m.example.com\"]\ncapabilities = [\"pul\"]\n",
            "x",
            Path::new("/c")
        )
        .is_err());
        let e = parse("capabilities = [\"Pull\"]\n", "x", Path::new("/c")).unwrap();
        assert!(e[0].pull && !e[0].resolve);
    }

    #[test]
    fn host_port_directory_first_and_crt_files_without_hosts_toml() {
        let d = tempfile::tempdir().unwrap();
        let write = |dir: &str, name: &str, text: &str| {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
            std::fs::write(d.path().join(dir).join(name), text).unwrap();
        };
        write(
            "_default",
            "hosts.toml",
            "server = \"https://fallback:1\"\n",
        );
        write(
            "reg.local:5000",
            "hosts.toml",
            "server = \"https://colon:1\"\n",
        );
        assert_eq!(
            endpoints(d.path(), "reg.local:5000").unwrap()[0].host,
            "colon:1"
        );
        write(
            "reg.local_5000_",
            "hosts.toml",
            "server = \"https://underscore:1\"\n",
        );
        assert_eq!(
            endpoints(d.path(), "reg.local:5000").unwrap()[0].host,
            "underscore:1"
        );
        // A host directory without hosts.toml: the default server, trusting
        // the directory's *.crt files; `_default` is not consulted.
        write("certs.example.com", "b.crt", "");
        write("certs.example.com", "a.crt", "");
        write("certs.example.com", "client.cert", "");
        let e = endpoints(d.path(), "certs.example.com").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].host, "certs.example.com");
        assert_eq!(
            e[0].ca,
            vec![
                d.path().join("certs.example.com/a.crt"),
                d.path().join("certs.example.com/b.crt")
            ]
        );
        assert_eq!(
            endpoints(d.path(), "other.io").unwrap()[0].host,
            "fallback:1"
        );
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
