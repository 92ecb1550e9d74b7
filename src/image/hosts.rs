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
    /// `client`: TLS client certificates, each with its key (`None`: the
    /// key is in the certificate's file).
    pub client: Vec<ClientCert>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: Option<PathBuf>,
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

    /// The URL of `repository` under this endpoint's API root, as containerd
    /// builds it: `<scheme>://<host><root>/<repository>`.
    pub fn repository_url(&self, repository: &str) -> String {
        format!("{}://{}{}/{repository}", self.scheme, self.host, self.path)
    }

    /// The name the registry knows `repository` by (for token scopes): a
    /// root below `/v2` (an `override_path` mirror) prefixes it.
    pub fn repository_name(&self, repository: &str) -> String {
        match self.path.split_once("/v2/") {
            Some((_, prefix)) if !prefix.is_empty() => format!("{prefix}/{repository}"),
            _ => repository.to_string(),
        }
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
    /// A path, or a list of paths and of [cert, key] pairs.
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
/// order, then the server; without a hosts.toml, the default server with
/// the directory's certificates in Docker's layout.
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
                (server[0].ca, server[0].client) = certs_d(&dir)?;
                Ok(server)
            }
            Err(e) => Err(Error::io(format!("read {}", file.display()), e)),
        };
    }
    parse("", domain, config_dir)
}

/// Docker's certificate layout (`certs.d`), sorted by name: `*.crt` files
/// are CAs; a `*.cert` file is a client certificate, its key in the
/// `*.key` file of the same name or, without one, in the same file.
fn certs_d(dir: &Path) -> Result<(Vec<PathBuf>, Vec<ClientCert>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("read {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let has = |p: &PathBuf, ext: &str| p.extension().is_some_and(|x| x == ext);
    let ca = files.iter().filter(|p| has(p, "crt")).cloned().collect();
    let client = files
        .iter()
        .filter(|p| has(p, "cert"))
        .map(|cert| {
            let key = cert.with_extension("key");
            ClientCert {
                cert: cert.clone(),
                key: files.contains(&key).then_some(key),
            }
        })
        .collect();
    Ok((ca, client))
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
        client: client_certs(f.client.as_ref(), base)?,
    })
}

/// containerd's `client` forms: `"c.pem"` (certificate and key in one
/// file), a list of such paths, or of `["c.cert", "c.key"]` pairs.
fn client_certs(value: Option<&toml::Value>, base: &Path) -> Result<Vec<ClientCert>> {
    use toml::Value;
    let bad = || Error::invalid("client: expected a path, or a list of paths or [cert, key] pairs");
    let one = |v: &Value| -> Result<ClientCert> {
        match v {
            Value::String(c) => Ok(ClientCert {
                cert: base.join(c),
                key: None,
            }),
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(c), Value::String(k)] => Ok(ClientCert {
                    cert: base.join(c),
                    key: Some(base.join(k)),
                }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    };
    match value {
        None => Ok(vec![]),
        Some(v @ Value::String(_)) => Ok(vec![one(v)?]),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(_) => Err(bad()),
    }
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
        let e = parse(
            "client = [[\"c.cert\", \"c.key\"], \"/abs/both.pem\"]\n",
            "x",
            Path::new("/c"),
        )
        .unwrap();
        assert_eq!(
            e[0].client,
            vec![
                ClientCert {
                    cert: "/c/c.cert".into(),
                    key: Some("/c/c.key".into())
                },
                ClientCert {
                    cert: "/abs/both.pem".into(),
                    key: None
                }
            ]
        );
        assert!(e[0].headers.is_empty());
        let e = parse("client = \"one.pem\"\n", "x", Path::new("/c")).unwrap();
        assert_eq!(e[0].client[0].cert, PathBuf::from("/c/one.pem"));
        assert!(parse("client = [[\"only-cert\"]]\n", "x", Path::new("/c")).is_err());
        assert!(parse("client = 5\n", "x", Path::new("/c")).is_err());
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
        // Requests go under the root as written; a root below /v2 names
        // the repository to the registry with its rest as a prefix.
        let url = |i: usize| e[i].repository_url("team/app");
        let name = |i: usize| e[i].repository_name("team/app");
        assert_eq!(url(0), "http://127.0.0.1:5000/v2/mirror/team/app");
        assert_eq!(name(0), "mirror/team/app");
        assert_eq!(
            url(1),
            "https://proxy.example.com/artifactory/api/v2/team/app"
        );
        assert_eq!(name(1), "team/app");
        assert_eq!(url(3), "https://odd.example.com/api/docker/team/app");
        assert_eq!(name(3), "team/app");
        assert_eq!(url(4), "https://root.example.com/team/app");
        assert_eq!(url(6), "https://registry.example.com/base/v2/team/app");
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
        write("certs.example.com", "client.key", "");
        write("certs.example.com", "both.cert", "");
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
        let dir = d.path().join("certs.example.com");
        assert_eq!(
            e[0].client,
            vec![
                ClientCert {
                    cert: dir.join("both.cert"),
                    key: None
                },
                ClientCert {
                    cert: dir.join("client.cert"),
                    key: Some(dir.join("client.key"))
                },
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
