//! A registry of the test's own: serves OCI image layouts over plain HTTP
//! on 127.0.0.1 (the pull side of the distribution API only) and can hold
//! a blob back midway, so a test can act while a pull is at a known point
//! (some layers stored, one half downloaded) without any timing.

use super::http::RequestHead;
use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest a held blob waits to be released (bounds the server threads).
const MAX_HOLD: Duration = Duration::from_secs(300);

#[derive(Default)]
struct State {
    /// Blob digests whose responses stop after half their bytes.
    held: HashSet<String>,
    /// Requests served, in order: request line and headers.
    requests: Vec<RequestHead>,
}

struct Shared {
    /// repository name → OCI layout directory.
    repos: HashMap<String, PathBuf>,
    state: Mutex<State>,
    released: Condvar,
    stopping: AtomicBool,
}

pub struct GatedRegistry {
    pub addr: String,
    shared: Arc<Shared>,
}

impl GatedRegistry {
    /// Serve each `(repository, layout)`: tags from the layout's index.json,
    /// blobs (and manifests by digest) from any layout.
    pub fn serve(repos: &[(&str, &Path)]) -> GatedRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            repos: repos
                .iter()
                .map(|(r, p)| (r.to_string(), p.to_path_buf()))
                .collect(),
            state: Mutex::new(State::default()),
            released: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = handle(&s, conn);
                });
            }
        });
        GatedRegistry { addr, shared }
    }

    /// From now on, responses for blob `digest` send half the bytes, then
    /// wait for `release`.
    pub fn hold(&self, digest: &str) {
        self.shared
            .state
            .lock()
            .unwrap()
            .held
            .insert(digest.to_string());
    }

    /// Let every held blob go (and serve them whole from now on).
    pub fn release(&self) {
        self.shared.state.lock().unwrap().held.clear();
        self.shared.released.notify_all();
    }

    /// Request lines (`GET /v2/...`) served so far.
    pub fn requests(&self) -> Vec<String> {
        let st = self.shared.state.lock().unwrap();
        st.requests.iter().map(|h| h.line.clone()).collect()
    }

    /// Each request served so far, with every value of its header `name`.
    pub fn header_values(&self, name: &str) -> Vec<(String, Vec<String>)> {
        let st = self.shared.state.lock().unwrap();
        st.requests
            .iter()
            .map(|h| (h.line.clone(), h.values(name)))
            .collect()
    }
}

impl Drop for GatedRegistry {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.release();
        // Wake the accept loop so it sees `stopping`.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn handle(s: &Shared, conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let head = RequestHead::read(&mut BufReader::new(conn.try_clone()?))?;
    s.state.lock().unwrap().requests.push(head.clone());
    let method = head.method();
    let path = head.target().split('?').next().unwrap_or("");
    let mut out = conn;
    if path == "/v2/" || path == "/v2" {
        return respond(&mut out, method, "200 OK", "application/json", None, b"{}");
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return not_found(&mut out, method);
    };
    if let Some((repo, reference)) = rest.rsplit_once("/manifests/") {
        let digest = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            s.repos.get(repo).and_then(|l| tag_digest(l, reference))
        };
        let Some((digest, data)) = digest.and_then(|d| blob(s, &d).map(|b| (d, b))) else {
            return not_found(&mut out, method);
        };
        let media_type = serde_json::from_slice::<serde_json::Value>(&data)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
        return respond(
            &mut out,
            method,
            "200 OK",
            &media_type,
            Some(&digest),
            &data,
        );
    }
    if let Some((_, digest)) = rest.rsplit_once("/blobs/") {
        let Some(data) = blob(s, digest) else {
            return not_found(&mut out, method);
        };
        let held = s.state.lock().unwrap().held.contains(digest);
        if !held || method == "HEAD" {
            return respond(
                &mut out,
                method,
                "200 OK",
                "application/octet-stream",
                Some(digest),
                &data,
            );
        }
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nDocker-Content-Digest: {digest}\r\nConnection: close\r\n\r\n",
            data.len()
        )?;
        let half = data.len() / 2;
        out.write_all(&data[..half])?;
        out.flush()?;
        let deadline = Instant::now() + MAX_HOLD;
        let mut st = s.state.lock().unwrap();
        while st.held.contains(digest) && !s.stopping.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            st = s.released.wait_timeout(st, left).unwrap().0;
        }
        drop(st);
        out.write_all(&data[half..])?;
        return out.flush();
    }
    not_found(&mut out, method)
}

/// The manifest digest a layout's index.json tags `tag`.
fn tag_digest(layout: &Path, tag: &str) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).ok()?).ok()?;
    index["manifests"]
        .as_array()?
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str().map(str::to_string))
}

fn blob(s: &Shared, digest: &str) -> Option<Vec<u8>> {
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    s.repos
        .values()
        .find_map(|l| std::fs::read(l.join("blobs/sha256").join(hex)).ok())
}

fn respond(
    out: &mut TcpStream,
    method: &str,
    status: &str,
    content_type: &str,
    digest: Option<&str>,
    body: &[u8],
) -> std::io::Result<()> {
    let digest = digest
        .map(|d| format!("Docker-Content-Digest: {d}\r\n"))
        .unwrap_or_default();
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{digest}Connection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        out.write_all(body)?;
    }
    out.flush()
}

fn not_found(out: &mut TcpStream, method: &str) -> std::io::Result<()> {
    respond(
        out,
        method,
        "404 Not Found",
        "application/json",
        None,
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not found"}]}"#,
    )
}
