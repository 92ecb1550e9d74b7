//! Identity tokens (CRI `AuthConfig.identity_token`, what `docker login`
//! stores for registries with OAuth2): a refresh token for the registry's
//! token service. As containerd's resolver does, crid reads the realm and
//! service from the registry's `Bearer` challenge and POSTs
//! `grant_type=refresh_token` there for an access token, scoped to pulling
//! one repository. oci-client knows only the GET token flow, so it is then
//! given the access token as a bearer token.

use super::hosts::Endpoint;
use crate::error::{Error, Result};
use crate::uri::percent_encode;
use std::time::Duration;

/// `client_id` in the token request (containerd sends its own name).
const CLIENT_ID: &str = "crid";

/// The access token for pulling `repository` from the endpoint, or `None`
/// when the registry asks for no authentication. The caller bounds it with
/// the pull's no-progress timeout.
pub async fn access_token(
    ep: &Endpoint,
    registry: &str,
    repository: &str,
    refresh_token: &str,
) -> Result<Option<String>> {
    let client = http_client(ep)?;
    let base = format!("{}://{registry}/v2/", ep.scheme);
    let probe = client
        .get(&base)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("{base}: {e}")))?;
    if probe.status().is_success() {
        return Ok(None);
    }
    if probe.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Err(Error::Unavailable(format!(
            "{base}: HTTP {}",
            probe.status()
        )));
    }
    let challenges: Vec<String> = probe
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let (realm, service) = challenges
        .iter()
        .find_map(|c| bearer_challenge(c))
        .ok_or_else(|| {
            Error::Unauthenticated(format!(
                "{} offers no token service (challenge {challenges:?}); an identity token needs one",
                ep.host
            ))
        })?;
    let mut form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("client_id", CLIENT_ID.to_string()),
        ("scope", format!("repository:{repository}:pull")),
        ("refresh_token", refresh_token.to_string()),
    ];
    if let Some(s) = service {
        form.push(("service", s));
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v, b"")))
        .collect::<Vec<_>>()
        .join("&");
    let resp = client
        .post(&realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("token service {realm}: {e}")))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Unauthenticated(format!(
            "token service {realm} refused the identity token (HTTP {status})"
        )));
    }
    if !status.is_success() {
        return Err(Error::Unavailable(format!(
            "token service {realm}: HTTP {status}"
        )));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Unavailable(format!("token service {realm}: {e}")))?;
    access_token_of(&body).map(Some).ok_or_else(|| {
        Error::Unavailable(format!(
            "token service {realm} answered without an access token"
        ))
    })
}

/// The endpoint's TLS settings (`ca`, `skip_verify`), as for pulls.
fn http_client(ep: &Endpoint) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .danger_accept_invalid_certs(ep.skip_verify);
    for (pem, path) in ep.ca_pems()?.iter().zip(&ep.ca) {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| Error::invalid(format!("CA {path:?}: {e}")))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| Error::internal(format!("registry HTTP client: {e}")))
}

/// `realm` and `service` of a `Bearer` challenge.
fn bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    for challenge in http_auth::parser::ChallengeParser::new(header).flatten() {
        if !challenge.scheme.eq_ignore_ascii_case("bearer") {
            continue;
        }
        let param = |name: &str| {
            challenge
                .params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if let Some(realm) = param("realm") {
            return Some((realm, param("service")));
        }
    }
    None
}

/// `access_token` of an OAuth2 token response (`token` from older services).
fn access_token_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["access_token", "token"]
        .iter()
        .find_map(|k| v.get(k)?.as_str().filter(|s| !s.is_empty()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_gives_realm_and_service() {
        let h = r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#;
        assert_eq!(
            bearer_challenge(h),
            Some((
                "https://auth.example.com/token".into(),
                Some("registry.example.com".into())
            ))
        );
        assert_eq!(
            bearer_challenge(r#"Basic realm="registry""#),
            None,
            "basic is no token service"
        );
        assert_eq!(
            bearer_challenge(r#"Bearer realm="http://127.0.0.1:5001/token""#),
            Some(("http://127.0.0.1:5001/token".into(), None))
        );
    }

    #[test]
    fn access_token_prefers_access_token_and_accepts_token() {
        assert_eq!(
            access_token_of(br#"{"access_token":"a","token":"t"}"#).as_deref(),
            Some("a")
        );
        assert_eq!(access_token_of(br#"{"token":"t"}"#).as_deref(), Some("t"));
        assert_eq!(access_token_of(br#"{"access_token":""}"#), None);
        assert_eq!(access_token_of(b"not json"), None);
    }
}
