//! A token service for the Docker registry token protocol, as Docker Hub
//! and most private registries run it: the registry answers 401 with
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, the client asks the
//! realm for a token with its credentials (HTTP basic), and the registry
//! checks the token's signature against its `rootcertbundle`.
//!
//! The token is a JWT signed (RS256) with a key made by `openssl`; its `x5c`
//! header carries the self-signed certificate the registry trusts. One token
//! is issued for every request with the right credentials: pull and push on
//! one repository. It is also issued, as an OAuth2 access token, for a POST
//! with `grant_type=refresh_token` and the server's identity (refresh) token.

use super::http::RequestHead;
use super::tls::openssl;
use base64::Engine;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `service` in the registry's config and the token's audience.
pub const SERVICE: &str = "crid-test-registry";
/// `issuer` in the registry's config and the token's `iss`.
pub const ISSUER: &str = "crid-test-token-service";

struct Shared {
    basic: String,
    refresh_token: String,
    token: String,
    stopping: AtomicBool,
    /// Query strings (form bodies for POST) of the requests that got a token.
    granted: Mutex<Vec<String>>,
    /// Requests refused for missing or wrong credentials.
    refused: Mutex<usize>,
}

pub struct TokenServer {
    pub dir: tempfile::TempDir,
    addr: String,
    shared: Arc<Shared>,
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl TokenServer {
    /// Serve tokens for `user`:`password` granting pull and push on
    /// `repository`, on 127.0.0.1.
    pub fn start(user: &str, password: &str, repository: &str) -> TokenServer {
        let dir = super::short_tempdir("tok");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=crid test token service",
            "-days",
            "2",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        let der = openssl(&["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"]);
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)],
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + 3600,
            "nbf": now - 60,
            "iat": now - 60,
            "jti": format!("crid-test-{now}"),
            "access": [{"type": "repository", "name": repository, "actions": ["pull", "push"]}],
        });
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let input_file = dir.path().join("signing-input");
        std::fs::write(&input_file, &signing_input).unwrap();
        let signature = openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            key.to_str().unwrap(),
            input_file.to_str().unwrap(),
        ]);
        let token = format!("{signing_input}.{}", b64url(&signature));

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            basic: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
            refresh_token: format!("identity-of-{user}-{now}"),
            token,
            stopping: AtomicBool::new(false),
            granted: Mutex::new(vec![]),
            refused: Mutex::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let _ = serve(&s, conn);
                }
            }
        });
        TokenServer { dir, addr, shared }
    }

    /// The URL the registry sends clients to.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The identity token (OAuth2 refresh token) this service honours.
    pub fn refresh_token(&self) -> &str {
        &self.shared.refresh_token
    }

    /// The certificate the registry verifies tokens with.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// Query strings (service, scope…) of the token requests granted so far.
    pub fn granted(&self) -> Vec<String> {
        self.shared.granted.lock().unwrap().clone()
    }

    /// How many token requests were refused.
    pub fn refused(&self) -> usize {
        *self.shared.refused.lock().unwrap()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stopping`.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// One request per connection (`Connection: close`).
fn serve(s: &Shared, conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let head = RequestHead::read(&mut reader)?;
    let authorization = head.header("authorization");
    let content_length: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut form = vec![0; content_length.min(64 << 10)];
    std::io::Read::read_exact(&mut reader, &mut form)?;
    let form = String::from_utf8_lossy(&form).into_owned();
    let method = head.method();
    let target = head.target();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let refresh = format!("refresh_token={}", s.refresh_token);
    let mut out = conn;
    let (status, body) = if path != "/token" {
        ("404 Not Found", String::from("{}"))
    } else if method == "POST" && form.split('&').any(|kv| kv == refresh) {
        s.granted.lock().unwrap().push(form.clone());
        (
            "200 OK",
            serde_json::json!({"access_token": s.token, "expires_in": 3600}).to_string(),
        )
    } else if method == "GET" && authorization == Some(s.basic.as_str()) {
        s.granted.lock().unwrap().push(query.to_string());
        (
            "200 OK",
            serde_json::json!({"token": s.token, "access_token": s.token, "expires_in": 3600})
                .to_string(),
        )
    } else {
        *s.refused.lock().unwrap() += 1;
        (
            "401 Unauthorized",
            String::from(r#"{"details":"bad credentials"}"#),
        )
    };
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
