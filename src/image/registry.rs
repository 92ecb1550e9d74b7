//! The pull side of the OCI distribution API, against one registry
//! endpoint (the registry itself or a hosts.toml mirror): manifests and
//! blobs of one repository. The endpoint's settings all apply: its API root
//! as written, its TLS settings (`ca`, `skip_verify`, `client`
//! certificates) and its `[header]`s. Requests go out without credentials
//! (or with a registry token); a 401 names how to authenticate, and the
//! answer (`token`) is kept for the rest of the pull, as containerd's
//! resolver does.

use super::hosts::{ClientCert, Endpoint};
use super::token::{self, Credentials};
use crate::error::{Error, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use std::time::Duration;

/// The largest manifest or index crid reads (containerd's limit too).
const MAX_MANIFEST: usize = 4 << 20;
/// How much of an error response is read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// One repository on one endpoint, for one pull.
pub struct RegistryClient {
    http: reqwest::Client,
    /// `[header]`, sent with every request (the token service's too).
    headers: HeaderMap,
    host: String,
    /// `<scheme>://<host><API root>/<repository>`.
    url: String,
    /// The repository as the registry names it, for token scopes.
    name: String,
    credentials: Credentials,
    /// What the last challenge was answered with; shared by the pull's
    /// concurrent downloads.
    authorization: std::sync::Mutex<Option<HeaderValue>>,
    /// One challenge is answered at a time: the others wait and take it.
    answering: tokio::sync::Mutex<()>,
}

/// A blob response: its body starts at byte `offset` of the blob (0 when
/// the registry ignored the range and sent it whole).
pub struct Blob {
    pub response: reqwest::Response,
    pub offset: u64,
}

impl RegistryClient {
    pub fn new(ep: &Endpoint, repository: &str, credentials: Credentials) -> Result<Self> {
        Ok(RegistryClient {
            http: http_client(ep)?,
            headers: header_map(ep)?,
            host: ep.host.clone(),
            url: ep.repository_url(repository),
            name: ep.repository_name(repository),
            authorization: std::sync::Mutex::new(credentials.preemptive()?),
            credentials,
            answering: tokio::sync::Mutex::new(()),
        })
    }

    /// The manifest or index `reference` (a tag or a digest) names, in one
    /// of the `accept`ed media types, and the digest the registry gives it.
    pub async fn manifest(
        &self,
        reference: &str,
        accept: &[&str],
    ) -> Result<(Vec<u8>, Option<String>)> {
        let url = format!("{}/manifests/{reference}", self.url);
        let resp = self
            .get(&url, |r| {
                r.header(reqwest::header::ACCEPT, accept.join(", "))
            })
            .await?;
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_limited(resp, MAX_MANIFEST, &url).await?;
        Ok((body, digest))
    }

    /// The blob `digest` from byte `from` on.
    pub async fn blob(&self, digest: &str, from: u64) -> Result<Blob> {
        let url = format!("{}/blobs/{digest}", self.url);
        let response = self
            .get(&url, |r| {
                if from > 0 {
                    r.header(reqwest::header::RANGE, format!("bytes={from}-"))
                } else {
                    r
                }
            })
            .await?;
        let offset = if response.status() == StatusCode::PARTIAL_CONTENT {
            from
        } else {
            0
        };
        Ok(Blob { response, offset })
    }

    /// A small blob (an image config), whole, at most `limit` bytes.
    pub async fn blob_bytes(&self, digest: &str, limit: usize) -> Result<Vec<u8>> {
        let resp = self.blob(digest, 0).await?.response;
        read_limited(resp, limit, &format!("blob {digest}")).await
    }

    /// GET `url`; a 401 is answered once and the request sent again. Any
    /// status but 200 and 206 is an error.
    async fn get(
        &self,
        url: &str,
        with: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let mut answered = false;
        loop {
            let sent = self.authorization.lock().expect("not poisoned").clone();
            let mut req = with(self.http.get(url).headers(self.headers.clone()));
            if let Some(a) = &sent {
                req = req.header(reqwest::header::AUTHORIZATION, a.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| Error::Unavailable(format!("{url}: {}", error_chain(e))))?;
            if resp.status() == StatusCode::UNAUTHORIZED && !answered {
                answered = true;
                self.answer(&resp, sent).await?;
                continue;
            }
            if matches!(resp.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
                return Ok(resp);
            }
            return Err(status_error(url, resp).await);
        }
    }

    /// Answer the challenge of a 401 to a request sent with `sent`, unless
    /// a concurrent request answered it meanwhile.
    async fn answer(&self, resp: &reqwest::Response, sent: Option<HeaderValue>) -> Result<()> {
        let _one = self.answering.lock().await;
        if *self.authorization.lock().expect("not poisoned") != sent {
            return Ok(());
        }
        let offered = token::challenges(resp.headers());
        let value = token::answer(
            &self.http,
            &self.headers,
            &self.host,
            &self.name,
            &offered,
            &self.credentials,
        )
        .await?;
        tracing::debug!(host = %self.host, repository = %self.name, ?offered, "registry challenge answered");
        *self.authorization.lock().expect("not poisoned") = Some(value);
        Ok(())
    }
}

/// A response's whole body, refused past `limit` bytes.
async fn read_limited(mut resp: reqwest::Response, limit: usize, what: &str) -> Result<Vec<u8>> {
    let too_big = || Error::invalid(format!("{what}: more than the {limit} bytes expected"));
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let mut out = vec![];
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Error::Unavailable(format!("{what}: {}", error_chain(e))))?
    {
        out.extend_from_slice(&chunk);
        if out.len() > limit {
            return Err(too_big());
        }
    }
    Ok(out)
}

/// Every reqwest client of crid starts here: reqwest builds its TLS on the
/// process's default rustls provider, which must be set first (ring; an
/// error means it is set already).
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The endpoint's TLS settings and time limits. Each chunk of a download is
/// bounded by the pull's no-progress timeout instead of a whole-request one.
fn http_client(ep: &Endpoint) -> Result<reqwest::Client> {
    let mut b = client_builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("crid/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(ep.skip_verify);
    for (pem, path) in ep.ca_pems()?.iter().zip(&ep.ca) {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::invalid(format!("CA {}: {e}", path.display())))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    if let Some(first) = ep.client.first() {
        if ep.client.len() > 1 {
            tracing::warn!(host = %ep.host, pairs = ep.client.len(), cert = %first.cert.display(), "several client certificates: crid presents the first");
        }
        b = b.identity(identity(first)?);
    }
    b.build()
        .map_err(|e| Error::internal(format!("registry HTTP client: {e}")))
}

/// A client certificate and its key, as one PEM (key first).
fn identity(c: &ClientCert) -> Result<reqwest::Identity> {
    let read = |p: &std::path::Path| {
        std::fs::read(p)
            .map_err(|e| Error::io(format!("read client certificate {}", p.display()), e))
    };
    let mut pem = match &c.key {
        Some(k) => read(k)?,
        None => vec![],
    };
    pem.push(b'\n');
    pem.extend(read(&c.cert)?);
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        Error::invalid(format!(
            "client certificate {} (key {}): {e}",
            c.cert.display(),
            c.key.as_ref().unwrap_or(&c.cert).display()
        ))
    })
}

fn header_map(ep: &Endpoint) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, values) in &ep.headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::invalid(format!(
                "[header] {name:?} of {} is no header name",
                ep.host
            ))
        })?;
        for v in values {
            let v = HeaderValue::from_str(v).map_err(|_| {
                Error::invalid(format!(
                    "[header] {name} of {}: {v:?} is no header value",
                    ep.host
                ))
            })?;
            map.append(n.clone(), v);
        }
    }
    Ok(map)
}

/// A registry's error answer as crid's error: 401/403 are
/// `Unauthenticated`, 404 `NotFound`, the rest `Unavailable`; the message
/// carries the registry's own error codes.
async fn status_error(url: &str, resp: reqwest::Response) -> Error {
    let status = resp.status();
    let mut body = vec![];
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    let detail = registry_errors(&body);
    let msg = if detail.is_empty() {
        format!("{url}: HTTP {status}")
    } else {
        format!("{url}: HTTP {status}: {detail}")
    };
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthenticated(msg),
        StatusCode::NOT_FOUND => Error::NotFound(msg),
        _ => Error::Unavailable(msg),
    }
}

/// `CODE: message` for each entry of a distribution error body.
fn registry_errors(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    v.get("errors")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(|x| x.as_str()).unwrap_or("");
            format!("{}: {}", field("code"), field("message"))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A reqwest error with its causes (the TLS or connection reason); the
/// URL is the caller's to name.
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_name_codes_and_messages() {
        assert_eq!(
            registry_errors(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}},{"code":"DENIED","message":"no"}]}"#
            ),
            "MANIFEST_UNKNOWN: manifest unknown; DENIED: no"
        );
        assert_eq!(registry_errors(b"<html>"), "");
    }

    #[tokio::test]
    async fn bodies_past_their_limit_are_refused() {
        let resp =
            |body: &'static str| reqwest::Response::from(tonic::codegen::http::Response::new(body));
        assert_eq!(read_limited(resp("abcd"), 4, "x").await.unwrap(), b"abcd");
        let e = read_limited(resp("abcde"), 4, "x").await.unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    }

    #[test]
    fn headers_keep_every_value_and_refuse_bad_names() {
        let mut ep = super::super::hosts::parse(
            "[header]\nx-one = \"a\"\nx-many = [\"b\", \"c\"]\n",
            "r",
            std::path::Path::new("/"),
        )
        .unwrap()
        .remove(0);
        let map = header_map(&ep).unwrap();
        assert_eq!(map.get_all("x-many").iter().count(), 2);
        assert_eq!(map["x-one"], "a");
        ep.headers.insert("bad name".into(), vec!["v".into()]);
        assert!(matches!(header_map(&ep), Err(Error::InvalidArgument(_))));
    }
}
