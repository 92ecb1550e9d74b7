//! A minimal Docker Engine API client over its unix socket (one HTTP/1.1
//! connection per request, like a fresh `docker` CLI call but without the
//! process start). Used by the benchmark's docker path and by
//! `crid migrate docker` (image list, `docker save` stream).

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;

/// Docker 20.10 speaks API 1.41.
const API: &str = "1.41";

#[derive(Clone)]
pub struct Docker {
    sock: PathBuf,
    /// The API version requests are made at (`1.41` unless negotiated lower).
    api: String,
}

impl Docker {
    pub fn new(sock: impl Into<PathBuf>) -> Self {
        Docker {
            sock: sock.into(),
            api: API.into(),
        }
    }

    /// The same client at the API version dockerd speaks when it is older
    /// than 1.41 (an unversioned `GET /version`, as the docker CLI negotiates).
    pub async fn negotiated(mut self) -> Result<Self> {
        self.api = String::new();
        let v = self.call(Method::GET, "/version", None).await?;
        let server = v["ApiVersion"].as_str().unwrap_or(API);
        self.api = lower_version(server, API).to_string();
        Ok(self)
    }

    /// One request; the whole body (read to EOF for hijacked streams).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, body, content_type).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// A GET whose body is read as it arrives (`docker save`); a status
    /// other than success is an error carrying the body's message.
    pub async fn get_stream(&self, path: &str) -> Result<Incoming> {
        let resp = self
            .send(Method::GET, path, None, "application/json")
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(anyhow!(
                "docker GET {path}: {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        Ok(resp.into_body())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
    ) -> Result<hyper::Response<Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.sock)
            .await
            .with_context(|| format!("connect {}", self.sock.display()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(if self.api.is_empty() {
                path.to_string()
            } else {
                format!("/v{}{path}", self.api)
            })
            .header("host", "docker")
            .header("content-type", content_type)
            .body(Full::new(body.unwrap_or_default()))?;
        Ok(sender.send_request(req).await?)
    }

    /// A JSON request that must succeed; the parsed response (Null if empty).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let m = method.clone();
        let (status, bytes) = self
            .request(
                method,
                path,
                body.map(|b| Bytes::from(b.to_string())),
                "application/json",
            )
            .await?;
        if !status.is_success() {
            return Err(anyhow!(
                "docker {m} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes).trim()
            ));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn create(&self, name: &str, config: Value) -> Result<String> {
        let v = self
            .call(
                Method::POST,
                &format!("/containers/create?name={name}"),
                Some(config),
            )
            .await?;
        v["Id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("create {name}: no Id"))
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        self.call(Method::POST, &format!("/containers/{id}/start"), None)
            .await
            .map(drop)
    }

    pub async fn inspect(&self, id: &str) -> Result<Value> {
        self.call(Method::GET, &format!("/containers/{id}/json"), None)
            .await
    }

    pub async fn stop(&self, id: &str, timeout: u32) -> Result<()> {
        let (status, body) = self
            .request(
                Method::POST,
                &format!("/containers/{id}/stop?t={timeout}"),
                None,
                "application/json",
            )
            .await?;
        // 304: already stopped.
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            Ok(())
        } else {
            Err(anyhow!(
                "stop {id}: {status}: {}",
                String::from_utf8_lossy(&body)
            ))
        }
    }

    pub async fn remove(&self, id: &str) -> Result<()> {
        self.call(
            Method::DELETE,
            &format!("/containers/{id}?v=1&force=1"),
            None,
        )
        .await
        .map(drop)
    }

    /// `docker ps -a --filter label=KEY=VALUE`.
    pub async fn list(&self, label: &str) -> Result<Value> {
        let filters = serde_json::json!({ "label": [label] }).to_string();
        self.call(
            Method::GET,
            &format!(
                "/containers/json?all=1&filters={}",
                crate::util::uri::percent_encode(&filters)
            ),
            None,
        )
        .await
    }

    /// Exec `cmd` attached (the response is the raw output stream, read to
    /// EOF), then its exit code.
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> Result<i64> {
        let v = self
            .call(
                Method::POST,
                &format!("/containers/{id}/exec"),
                Some(serde_json::json!({ "Cmd": cmd, "AttachStdout": true, "AttachStderr": true })),
            )
            .await?;
        let exec_id = v["Id"]
            .as_str()
            .ok_or_else(|| anyhow!("exec: no Id"))?
            .to_string();
        self.call(
            Method::POST,
            &format!("/exec/{exec_id}/start"),
            Some(serde_json::json!({ "Detach": false, "Tty": false })),
        )
        .await?;
        let v = self
            .call(Method::GET, &format!("/exec/{exec_id}/json"), None)
            .await?;
        Ok(v["ExitCode"].as_i64().unwrap_or(-1))
    }

    /// `docker pull`: the progress stream read to its end; the number of
    /// layers dockerd reported as "Already exists" (not downloaded).
    pub async fn pull(&self, image: &str) -> Result<usize> {
        let (name, tag) = split_tag(image);
        let (status, body) = self
            .request(
                Method::POST,
                &format!(
                    "/images/create?fromImage={}&tag={tag}",
                    crate::util::uri::percent_encode(name)
                ),
                None,
                "application/json",
            )
            .await?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() || text.contains("\"error\"") {
            return Err(anyhow!(
                "pull {image}: {status}: {}",
                text.lines().last().unwrap_or("")
            ));
        }
        Ok(layers_already_present(&text))
    }

    /// `docker image inspect` succeeds.
    pub async fn image_exists(&self, image: &str) -> Result<bool> {
        let (status, body) = self
            .request(
                Method::GET,
                &format!("/images/{image}/json"),
                None,
                "application/json",
            )
            .await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(anyhow!(
                "inspect image {image}: {s}: {}",
                String::from_utf8_lossy(&body)
            )),
        }
    }

    pub async fn remove_image(&self, image: &str) -> Result<()> {
        let (status, body) = self
            .request(
                Method::DELETE,
                &format!("/images/{image}?force=1"),
                None,
                "application/json",
            )
            .await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(anyhow!(
                "remove image {image}: {status}: {}",
                String::from_utf8_lossy(&body)
            ))
        }
    }

    pub async fn version(&self) -> Result<Value> {
        self.call(Method::GET, "/version", None).await
    }

    /// `docker images`: the top-level images, untagged ones included.
    pub async fn images(&self) -> Result<Vec<ImageSummary>> {
        let v = self.call(Method::GET, "/images/json", None).await?;
        serde_json::from_value(v).context("GET /images/json")
    }
}

/// One entry of `GET /images/json`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    /// `sha256:<config digest>`.
    pub id: String,
    /// `name:tag`; dockerd sends null (or `<none>:<none>`) for none.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repo_digests: Vec<String>,
    #[serde(default)]
    pub size: i64,
}

impl ImageSummary {
    /// The real tags (dockerd lists `<none>:<none>` for an untagged image).
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.repo_tags
            .iter()
            .map(String::as_str)
            .filter(|t| *t != "<none>:<none>")
    }

    pub fn digests(&self) -> impl Iterator<Item = &str> {
        self.repo_digests
            .iter()
            .map(String::as_str)
            .filter(|t| *t != "<none>@<none>")
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Layers a pull's progress stream (one JSON object per line) reports as
/// "Already exists".
fn layers_already_present(stream: &str) -> usize {
    stream
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["status"] == "Already exists")
        .count()
}

/// The lower of two `major.minor` API versions.
fn lower_version<'a>(a: &'a str, b: &'a str) -> &'a str {
    let parse = |v: &str| -> (u32, u32) {
        let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
        (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
    };
    if parse(a) < parse(b) {
        a
    } else {
        b
    }
}

fn split_tag(image: &str) -> (&str, &str) {
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], &image[i + 1..]),
        _ => (image, "latest"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_and_encoding() {
        assert_eq!(
            super::split_tag("127.0.0.1:5000/big:v1"),
            ("127.0.0.1:5000/big", "v1")
        );
        assert_eq!(
            super::split_tag("127.0.0.1:5000/big"),
            ("127.0.0.1:5000/big", "latest")
        );
    }

    #[test]
    fn api_version_is_the_lower_of_client_and_server() {
        assert_eq!(super::lower_version("1.40", "1.41"), "1.40");
        assert_eq!(super::lower_version("1.43", "1.41"), "1.41");
        assert_eq!(super::lower_version("1.9", "1.41"), "1.9");
    }

    #[test]
    fn image_list_reads_null_tags_and_digests() {
        let list: Vec<super::ImageSummary> = serde_json::from_str(
            r#"[{"Id":"sha256:ab","RepoTags":null,"RepoDigests":null,"Size":3},
                {"Id":"sha256:cd","RepoTags":["<none>:<none>"],"RepoDigests":["busybox@sha256:ef"]},
                {"Id":"sha256:01","RepoTags":["a:1","b:2"]}]"#,
        )
        .unwrap();
        assert_eq!(list[0].tags().count(), 0);
        assert_eq!(list[1].tags().count(), 0);
        assert_eq!(list[1].digests().collect::<Vec<_>>(), ["busybox@sha256:ef"]);
        assert_eq!(list[2].tags().collect::<Vec<_>>(), ["a:1", "b:2"]);
    }

    #[test]
    fn pull_progress_counts_present_layers() {
        let stream = concat!(
            r#"{"status":"Pulling from bench/big","id":"v1"}"#,
            "\n",
            r#"{"status":"Already exists","progressDetail":{},"id":"0123456789ab"}"#,
            "\n",
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"bbbbbbbbbbbb"}"#,
            "\r\n",
            r#"{"status":"Pull complete","progressDetail":{},"id":"bbbbbbbbbbbb"}"#,
            "\n",
            r#"{"status":"Status: Downloaded newer image for 127.0.0.1:5000/bench/big:v1"}"#,
        );
        assert_eq!(super::layers_already_present(stream), 1);
        assert_eq!(super::layers_already_present(""), 0);
    }
}
