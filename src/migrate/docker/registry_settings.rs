//! dockerd's registry settings as containerd's `hosts.toml` files under
//! crid's registry config path: `registry-mirrors` of `daemon.json` become
//! mirrors of docker.io, `insecure-registries` hosts are reached over HTTPS
//! without verification or over plain HTTP, and the certificates of
//! `certs.d/<host>/` (`*.crt` CAs, `*.cert` + `*.key` client pairs) are
//! referenced where they are. Plans the files and their diff; writes only
//! when asked. An existing hosts.toml is merged (the hosts it lacks are
//! appended, what it says is kept), never replaced.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The part of `daemon.json` about registries.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DaemonJson {
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
}

impl DaemonJson {
    pub fn parse(text: &str) -> Result<DaemonJson> {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("daemon.json: {e}")))
    }
}

/// One hosts.toml to create or change.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFile {
    pub path: PathBuf,
    /// The file as it is now; `None` when absent.
    pub old: Option<String>,
    pub new: String,
}

impl PlannedFile {
    pub fn changes(&self) -> bool {
        self.old.as_deref() != Some(self.new.as_str())
    }

    /// A unified diff from the current file to the planned one (empty when equal).
    pub fn diff(&self) -> String {
        if !self.changes() {
            return String::new();
        }
        let old = self.old.as_deref().unwrap_or("");
        let shown = self.path.display().to_string();
        let from = if self.old.is_some() {
            shown.clone()
        } else {
            "/dev/null".to_string()
        };
        similar::TextDiff::from_lines(old, &self.new)
            .unified_diff()
            .header(&from, &shown)
            .to_string()
    }
}

/// The files for a node, and what could not be carried.
#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<PlannedFile>,
    /// Settings that hosts.toml cannot express, or existing settings kept.
    pub notes: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> impl Iterator<Item = &PlannedFile> {
        self.files.iter().filter(|f| f.changes())
    }

    /// Write the changed files atomically; returns how many.
    pub fn write(&self) -> Result<usize> {
        let mut n = 0;
        for f in self.changed() {
            crate::util::persist::replace_file(&f.path, f.new.as_bytes())?;
            n += 1;
        }
        Ok(n)
    }
}

/// A `[host."url"]` entry.
#[derive(Debug, Default, Clone)]
struct Host {
    url: String,
    capabilities: &'static [&'static str],
    skip_verify: bool,
    certs: Certs,
}

/// Certificates of one registry in Docker's `certs.d/<host>/` layout.
#[derive(Debug, Default, Clone)]
struct Certs {
    ca: Vec<PathBuf>,
    client: Vec<(PathBuf, PathBuf)>,
}

/// One registry's hosts.toml: the server (with its certificates) and hosts.
#[derive(Debug, Default)]
struct HostsFile {
    server: String,
    server_certs: Certs,
    hosts: Vec<Host>,
}

const PULL_RESOLVE: &[&str] = &["pull", "resolve"];
const ALL: &[&str] = &["pull", "resolve", "push"];

/// Plan the hosts.toml files under `config_path` for `daemon` and the
/// certificates in `certs_dir` (either may be absent).
pub fn plan(daemon: &DaemonJson, certs_dir: &Path, config_path: &Path) -> Result<Plan> {
    let mut notes = vec![];
    let certs = read_certs_dir(certs_dir, &mut notes)?;
    let mut files: BTreeMap<String, HostsFile> = BTreeMap::new();
    let server_of = |registry: &str| {
        if registry == "docker.io" {
            "https://registry-1.docker.io".to_string()
        } else {
            format!("https://{registry}")
        }
    };

    let mut mirrors = vec![];
    for m in &daemon.registry_mirrors {
        let url = m.trim_end_matches('/');
        match url.split_once("://") {
            Some(("http" | "https", rest)) if !rest.is_empty() => {
                let host = rest.split('/').next().unwrap_or(rest);
                mirrors.push(Host {
                    url: url.to_string(),
                    capabilities: PULL_RESOLVE,
                    certs: certs.get(host).cloned().unwrap_or_default(),
                    ..Default::default()
                })
            }
            _ => notes.push(format!(
                "registry-mirrors {m:?}: not an http(s) URL, not carried"
            )),
        }
    }
    if !mirrors.is_empty() {
        files.insert(
            "docker.io".into(),
            HostsFile {
                server: server_of("docker.io"),
                server_certs: certs.get("docker.io").cloned().unwrap_or_default(),
                hosts: mirrors,
            },
        );
    }

    for entry in &daemon.insecure_registries {
        let registry = entry
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        if is_cidr(registry) {
            notes.push(format!(
                "insecure-registries {entry:?}: a CIDR range cannot be expressed in \
                 hosts.toml (one directory per registry host); add each registry in it by name"
            ));
            continue;
        }
        if registry.is_empty() || registry.contains('/') {
            notes.push(format!(
                "insecure-registries {entry:?}: not a host[:port], not carried"
            ));
            continue;
        }
        let c = certs.get(registry).cloned().unwrap_or_default();
        let file = files.entry(registry.to_string()).or_default();
        file.server = server_of(registry);
        // Docker tries HTTPS without verifying, then plain HTTP.
        file.hosts.push(Host {
            url: format!("https://{registry}"),
            capabilities: ALL,
            skip_verify: true,
            certs: c,
        });
        file.hosts.push(Host {
            url: format!("http://{registry}"),
            capabilities: ALL,
            ..Default::default()
        });
    }

    for (registry, c) in &certs {
        if files.contains_key(registry) {
            continue;
        }
        files.insert(
            registry.clone(),
            HostsFile {
                server: server_of(registry),
                server_certs: c.clone(),
                hosts: vec![],
            },
        );
    }

    let mut planned = vec![];
    for (registry, file) in &files {
        let path = config_path.join(registry).join("hosts.toml");
        let wanted = render(file);
        let old = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
        };
        let new = match &old {
            Some(existing) if *existing != wanted => merge(existing, file, &path, &mut notes)?,
            _ => wanted,
        };
        planned.push(PlannedFile { path, old, new });
    }
    Ok(Plan {
        files: planned,
        notes,
    })
}

fn is_cidr(s: &str) -> bool {
    match s.split_once('/') {
        Some((ip, bits)) => ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok(),
        None => false,
    }
}

/// `certs.d/<host>/`: `*.crt` are CAs, `*.cert` with its `*.key` a client
/// pair; sorted by name, absolute paths.
fn read_certs_dir(dir: &Path, notes: &mut Vec<String>) -> Result<BTreeMap<String, Certs>> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(format!("read {}", dir.display()), e)),
    };
    let mut hosts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    hosts.sort();
    for host_dir in hosts {
        let Some(host) = host_dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&host_dir)
            .map_err(|e| Error::io(format!("read {}", host_dir.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        let has = |p: &Path, ext: &str| p.extension().is_some_and(|x| x == ext);
        let mut c = Certs::default();
        for f in &files {
            if has(f, "crt") {
                c.ca.push(f.clone());
            } else if has(f, "cert") {
                let key = f.with_extension("key");
                if files.contains(&key) {
                    c.client.push((f.clone(), key));
                } else {
                    notes.push(format!(
                        "{}: client certificate without {}, not carried",
                        f.display(),
                        key.display()
                    ));
                }
            }
        }
        if !c.ca.is_empty() || !c.client.is_empty() {
            out.insert(host.to_string(), c);
        }
    }
    Ok(out)
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn quote_path(p: &Path) -> String {
    quote(&p.display().to_string())
}

fn render_certs(c: &Certs, indent: &str) -> String {
    let mut out = String::new();
    if !c.ca.is_empty() {
        let list: Vec<String> = c.ca.iter().map(|p| quote_path(p)).collect();
        out.push_str(&format!("{indent}ca = [{}]\n", list.join(", ")));
    }
    if !c.client.is_empty() {
        let list: Vec<String> = c
            .client
            .iter()
            .map(|(cert, key)| format!("[{}, {}]", quote_path(cert), quote_path(key)))
            .collect();
        out.push_str(&format!("{indent}client = [{}]\n", list.join(", ")));
    }
    out
}

fn render_host(h: &Host) -> String {
    let caps: Vec<String> = h.capabilities.iter().map(|c| quote(c)).collect();
    let mut out = format!(
        "[host.{}]\n  capabilities = [{}]\n",
        quote(&h.url),
        caps.join(", ")
    );
    if h.skip_verify {
        out.push_str("  skip_verify = true\n");
    }
    out.push_str(&render_certs(&h.certs, "  "));
    out
}

const HEADER: &str =
    "# From dockerd's settings (daemon.json, certs.d), by `crid migrate docker`.\n";

fn render(f: &HostsFile) -> String {
    let mut out = format!("{HEADER}server = {}\n", quote(&f.server));
    out.push_str(&render_certs(&f.server_certs, ""));
    for h in &f.hosts {
        out.push('\n');
        out.push_str(&render_host(h));
    }
    out
}

/// `existing` with what it lacks of `f`: the server and its certificates
/// (top-level keys go first), and the `[host]` entries it does not have
/// (appended, so its own hosts stay first). What it already says is kept;
/// a differing value is reported. Merging a merged file changes nothing.
fn merge(existing: &str, f: &HostsFile, path: &Path, notes: &mut Vec<String>) -> Result<String> {
    let table: toml::Table = existing.parse().map_err(|e| {
        Error::invalid(format!(
            "{}: not valid TOML, left alone: {e}",
            path.display()
        ))
    })?;
    let mut top = String::new();
    match table.get("server").and_then(|v| v.as_str()) {
        None => top.push_str(&format!("server = {}\n", quote(&f.server))),
        Some(s) if s != f.server => notes.push(format!(
            "{}: keeps its server {s:?} (dockerd's settings imply {:?})",
            path.display(),
            f.server
        )),
        Some(_) => {}
    }
    let mut server_certs = f.server_certs.clone();
    if table.contains_key("ca") {
        server_certs.ca.clear();
    }
    if table.contains_key("client") {
        server_certs.client.clear();
    }
    top.push_str(&render_certs(&server_certs, ""));
    let present: BTreeSet<&str> = table
        .get("host")
        .and_then(|h| h.as_table())
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut appended = String::new();
    for h in &f.hosts {
        if present.contains(h.url.as_str()) {
            notes.push(format!(
                "{}: keeps its own [host.{}]",
                path.display(),
                quote(&h.url)
            ));
            continue;
        }
        appended.push('\n');
        appended.push_str(&render_host(h));
    }
    if top.is_empty() && appended.is_empty() {
        return Ok(existing.to_string());
    }
    let mut out = String::new();
    if !top.is_empty() {
        out.push_str(HEADER);
        out.push_str(&top);
        out.push('\n');
    }
    out.push_str(existing);
    if !appended.is_empty() {
        if !existing.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&appended);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::registry_endpoints;

    fn certs_fixture(dir: &Path) -> PathBuf {
        let certs = dir.join("certs.d");
        let reg = certs.join("registry.example:5000");
        std::fs::create_dir_all(&reg).unwrap();
        for f in ["ca.crt", "client.cert", "client.key", "README"] {
            std::fs::write(reg.join(f), "x").unwrap();
        }
        let lone = certs.join("lone.example");
        std::fs::create_dir_all(&lone).unwrap();
        std::fs::write(lone.join("ca.crt"), "x").unwrap();
        certs
    }

    fn daemon() -> DaemonJson {
        DaemonJson::parse(
            r#"{"registry-mirrors": ["https://mirror.example/", "http://10.1.2.3:5000"],
                "insecure-registries": ["registry.example:5000", "10.0.0.0/8"],
                "log-driver": "json-file"}"#,
        )
        .unwrap()
    }

    #[test]
    fn crids_registry_code_reads_the_planned_files() {
        let tmp = tempfile::tempdir().unwrap();
        let certs = certs_fixture(tmp.path());
        let config = tmp.path().join("hosts");
        let plan = plan(&daemon(), &certs, &config).unwrap();
        assert_eq!(plan.write().unwrap(), 3);

        let hub = registry_endpoints(&config, "docker.io").unwrap();
        let urls: Vec<_> = hub
            .iter()
            .map(|e| format!("{}://{}", e.scheme, e.host))
            .collect();
        assert_eq!(
            urls,
            [
                "https://mirror.example",
                "http://10.1.2.3:5000",
                "https://registry-1.docker.io"
            ]
        );
        assert!(hub[0].pull && hub[0].resolve);

        let insecure = registry_endpoints(&config, "registry.example:5000").unwrap();
        assert_eq!(insecure[0].scheme, "https");
        assert!(insecure[0].skip_verify);
        let reg = certs.join("registry.example:5000");
        assert_eq!(insecure[0].ca, vec![reg.join("ca.crt")]);
        assert_eq!(insecure[0].client[0].cert, reg.join("client.cert"));
        assert_eq!(insecure[0].client[0].key, Some(reg.join("client.key")));
        assert!(insecure[1].plain_http() && !insecure[1].skip_verify);
        assert_eq!(insecure[2].host, "registry.example:5000");

        let lone = registry_endpoints(&config, "lone.example").unwrap();
        assert_eq!(lone.len(), 1);
        assert_eq!(lone[0].ca, vec![certs.join("lone.example/ca.crt")]);

        assert!(plan.notes.iter().any(|n| n.contains("10.0.0.0/8")));
    }

    #[test]
    fn nothing_changes_on_a_second_plan() {
        let tmp = tempfile::tempdir().unwrap();
        let certs = certs_fixture(tmp.path());
        let config = tmp.path().join("hosts");
        let first = plan(&daemon(), &certs, &config).unwrap();
        assert!(first
            .files
            .iter()
            .all(|f| f.diff().starts_with("--- /dev/null")));
        first.write().unwrap();
        let second = plan(&daemon(), &certs, &config).unwrap();
        assert_eq!(second.changed().count(), 0);
    }

    #[test]
    fn an_existing_file_keeps_its_hosts_and_gains_the_missing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("hosts");
        let existing = "server = \"https://registry-1.docker.io\"\n\n\
                        [host.\"https://mirror.example\"]\n  capabilities = [\"pull\"]\n";
        std::fs::create_dir_all(config.join("docker.io")).unwrap();
        std::fs::write(config.join("docker.io/hosts.toml"), existing).unwrap();
        let p = plan(&daemon(), &tmp.path().join("none"), &config).unwrap();
        let hub = p
            .files
            .iter()
            .find(|f| f.path.ends_with("docker.io/hosts.toml"))
            .unwrap();
        assert!(hub.new.starts_with(existing));
        assert!(hub.new.contains("[host.\"http://10.1.2.3:5000\"]"));
        assert!(hub.diff().contains("+[host.\"http://10.1.2.3:5000\"]"));
        assert!(p.notes.iter().any(|n| n.contains("keeps its own")));
        p.write().unwrap();
        let again = plan(&daemon(), &tmp.path().join("none"), &config).unwrap();
        assert_eq!(again.changed().count(), 0);
        // The mirror the file had stays first.
        let hub = registry_endpoints(&config, "docker.io").unwrap();
        assert!(!hub[0].resolve);
        assert_eq!(hub[1].host, "10.1.2.3:5000");
    }

    #[test]
    fn cidr_and_odd_entries_are_reported() {
        assert!(is_cidr("10.0.0.0/8"));
        assert!(is_cidr("fd00::/8"));
        assert!(!is_cidr("registry:5000"));
        let d = DaemonJson::parse(
            r#"{"registry-mirrors": ["mirror.example"], "insecure-registries": ["a/b"]}"#,
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let p = plan(&d, &tmp.path().join("none"), tmp.path()).unwrap();
        assert!(p.files.is_empty());
        assert_eq!(p.notes.len(), 2);
    }
}
