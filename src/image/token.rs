//! Answering a registry's `401` challenge with a pull's credentials, as
//! containerd's resolver does:
//! - `Basic`: the username and password;
//! - `Bearer realm=…,service=…,scope=…`: a pull token from that token
//!   service, asked for with HTTP basic credentials or anonymously (GET, the
//!   Docker token protocol), or with an identity token (what `docker login`
//!   stores for registries with OAuth2) as an OAuth2 refresh token (POST,
//!   `grant_type=refresh_token`).
//!
//! A registry token (CRI `registry_token`) needs no challenge: it is sent
//! with the first request.

use crate::error::{Error, Result};
use crate::util::uri::percent_encode;
use reqwest::header::{HeaderMap, HeaderValue};

/// `client_id` in OAuth2 token requests (containerd sends its own name).
const CLIENT_ID: &str = "crid";

/// The credentials of one pull.
#[derive(Clone, PartialEq)]
pub enum Credentials {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A bearer token for the registry itself.
    RegistryToken(String),
    /// An OAuth2 refresh token for the registry's token service.
    IdentityToken(String),
}

// Secrets stay out of logs and error messages.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username:?}, …)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(…)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(…)"),
        }
    }
}

impl Credentials {
    /// The `Authorization` to send before any challenge.
    pub fn preemptive(&self) -> Result<Option<HeaderValue>> {
        match self {
            Credentials::RegistryToken(t) => bearer(t).map(Some),
            _ => Ok(None),
        }
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// The challenges a 401 response offers, in order.
pub fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    let mut out = vec![];
    for value in headers.get_all(reqwest::header::WWW_AUTHENTICATE) {
        let Ok(text) = value.to_str() else { continue };
        for c in http_auth::parser::ChallengeParser::new(text).flatten() {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            if c.scheme.eq_ignore_ascii_case("basic") {
                out.push(Challenge::Basic);
            } else if c.scheme.eq_ignore_ascii_case("bearer") {
                if let Some(realm) = param("realm") {
                    out.push(Challenge::Bearer {
                        realm,
                        service: param("service"),
                        scope: param("scope"),
                    });
                }
            }
        }
    }
    out
}

/// What answers the challenges, for pulling `repository` from `host`:
/// the `Authorization` value to retry with. `headers` are the endpoint's
/// own (hosts.toml `[header]`); the token service gets them too.
pub async fn answer(
    http: &reqwest::Client,
    headers: &HeaderMap,
    host: &str,
    repository: &str,
    offered: &[Challenge],
    credentials: &Credentials,
) -> Result<HeaderValue> {
    if let Credentials::RegistryToken(_) = credentials {
        return Err(Error::Unauthenticated(format!(
            "{host} refused the registry token"
        )));
    }
    // A token service first: it can take every kind of credentials.
    let bearer_challenge = offered.iter().find_map(|c| match c {
        Challenge::Bearer {
            realm,
            service,
            scope,
        } => Some((realm, service, scope)),
        Challenge::Basic => None,
    });
    if let Some((realm, service, scope)) = bearer_challenge {
        let mut scopes = vec![format!("repository:{repository}:pull")];
        // The registry may name the scope it wants; ask for that too.
        if let Some(s) = scope.as_ref().filter(|s| !s.is_empty() && **s != scopes[0]) {
            scopes.push(s.clone());
        }
        let token = match credentials {
            Credentials::IdentityToken(refresh) => {
                oauth2_token(http, headers, realm, service.as_deref(), &scopes, refresh).await?
            }
            other => get_token(http, headers, realm, service.as_deref(), &scopes, other).await?,
        };
        return bearer(&token);
    }
    if offered.contains(&Challenge::Basic) {
        return match credentials {
            Credentials::Basic { username, password } => basic(username, password),
            _ => Err(Error::Unauthenticated(format!(
                "{host} asks for a username and password"
            ))),
        };
    }
    Err(Error::Unauthenticated(format!(
        "{host} answered 401 with no challenge crid knows (Basic or Bearer)"
    )))
}

fn bearer(token: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::invalid("the token is not a valid header value"))
}

fn basic(username: &str, password: &str) -> Result<HeaderValue> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    HeaderValue::from_str(&format!("Basic {b64}"))
        .map_err(|_| Error::invalid("the credentials are not a valid header value"))
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The Docker token protocol: GET the realm with the service and scopes,
/// with HTTP basic credentials if the pull has them.
async fn get_token(
    http: &reqwest::Client,
    headers: &HeaderMap,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credentials: &Credentials,
) -> Result<String> {
    let mut pairs: Vec<(&str, &str)> = vec![];
    if let Some(s) = service {
        pairs.push(("service", s));
    }
    pairs.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    let sep = if realm.contains('?') { '&' } else { '?' };
    let mut req = http
        .get(format!("{realm}{sep}{}", form(&pairs)))
        .headers(headers.clone());
    if let Credentials::Basic { username, password } = credentials {
        req = req.header(reqwest::header::AUTHORIZATION, basic(username, password)?);
    }
    token_from(realm, req, "the credentials").await
}

/// OAuth2: POST `grant_type=refresh_token` with the identity token.
async fn oauth2_token(
    http: &reqwest::Client,
    headers: &HeaderMap,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    refresh_token: &str,
) -> Result<String> {
    let scope = scopes.join(" ");
    let mut pairs = vec![
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("scope", scope.as_str()),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = service {
        pairs.push(("service", s));
    }
    let req = http
        .post(realm)
        .headers(headers.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form(&pairs));
    token_from(realm, req, "the identity token").await
}

async fn token_from(realm: &str, req: reqwest::RequestBuilder, what: &str) -> Result<String> {
    let resp = req
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("token service {realm}: {e}")))?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::Unauthenticated(format!(
            "token service {realm} refused {what} (HTTP {status})"
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
    token_of(&body).ok_or_else(|| {
        Error::Unavailable(format!("token service {realm} answered without a token"))
    })
}

/// `access_token` of an OAuth2 token response, or `token` (the Docker
/// token protocol; services often send both).
fn token_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["access_token", "token"]
        .iter()
        .find_map(|k| v.get(k)?.as_str().filter(|s| !s.is_empty()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(values: &[&str]) -> Vec<Challenge> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                reqwest::header::WWW_AUTHENTICATE,
                HeaderValue::from_str(v).unwrap(),
            );
        }
        challenges(&h)
    }

    #[test]
    fn challenges_give_scheme_realm_service_and_scope() {
        assert_eq!(
            offered(&[
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#
            ]),
            vec![Challenge::Bearer {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
                scope: Some("repository:a/b:pull".into()),
            }]
        );
        assert_eq!(
            offered(&[
                r#"Basic realm="registry""#,
                r#"Bearer realm="http://127.0.0.1:5001/token""#
            ]),
            vec![
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "http://127.0.0.1:5001/token".into(),
                    service: None,
                    scope: None
                }
            ]
        );
        assert_eq!(
            offered(&["Bearer service=\"no realm\"", "Negotiate"]),
            vec![]
        );
    }

    #[tokio::test]
    async fn basic_challenge_takes_only_a_password() {
        let http = crate::image::registry::client_builder().build().unwrap();
        let h = HeaderMap::new();
        let basic_creds = Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let v = answer(&http, &h, "r", "a", &[Challenge::Basic], &basic_creds)
            .await
            .unwrap();
        assert_eq!(v, "Basic YWxpY2U6czNjcmV0");
        for creds in [
            Credentials::Anonymous,
            Credentials::IdentityToken("t".into()),
            Credentials::RegistryToken("t".into()),
        ] {
            let e = answer(&http, &h, "r", "a", &[Challenge::Basic], &creds)
                .await
                .unwrap_err();
            assert!(matches!(e, Error::Unauthenticated(_)), "{creds:?}: {e:?}");
        }
        let e = answer(&http, &h, "r", "a", &[], &basic_creds)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Unauthenticated(_)));
    }

    #[test]
    fn registry_token_goes_first_and_secrets_stay_out_of_debug() {
        let t = Credentials::RegistryToken("tok".into());
        assert_eq!(t.preemptive().unwrap().unwrap(), "Bearer tok");
        assert_eq!(Credentials::Anonymous.preemptive().unwrap(), None);
        let b = Credentials::Basic {
            username: "u".into(),
            password: "pw-secret".into(),
        };
        assert!(!format!("{b:?}{t:?}").contains("secret") && !format!("{t:?}").contains("tok"));
    }

    #[test]
    fn token_prefers_access_token_and_accepts_token() {
        assert_eq!(
            token_of(br#"{"access_token":"a","token":"t"}"#).as_deref(),
            Some("a")
        );
        assert_eq!(token_of(br#"{"token":"t"}"#).as_deref(), Some("t"));
        assert_eq!(token_of(br#"{"access_token":""}"#), None);
        assert_eq!(token_of(b"not json"), None);
    }
}
