//! Bearer tokens of the admin server. A token's scope says what it may do: `read` (status,
//! routes, plugins, dead letters, metrics), `ingest` (`POST /ingest/...` only) or `admin`
//! (everything). Secrets come from a file or an environment variable, never the config file,
//! and only their sha256 is kept in memory.
//!
//! A host with no tokens serves reads to anyone on loopback (the config refuses another
//! address without tokens, and [`loopback_only`] refuses other `Host` names, so a web page
//! cannot reach it by DNS rebinding) and refuses changes and ingest.
//!
//! The check runs as a route layer ([`require`]), before any extractor reads the body: a
//! caller without a valid token never makes the host buffer or parse what it sends.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use millrace_core::config::{AdminConfig, ConfigFile, Scope};
use millrace_core::digest::sha256_hex;
use millrace_core::subjects::subject_matches;

/// Fewest characters a token secret may have.
pub const MIN_SECRET_CHARS: usize = 16;

/// One loaded token.
struct Token {
    name: String,
    scope: Scope,
    digest: String,
    subjects: Arc<[String]>,
}

/// The tokens of a host.
pub struct Tokens {
    tokens: Vec<Token>,
}

/// Who a request is.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name; `anonymous` without one.
    pub name: String,
    /// The raw subjects it may ingest to; empty means every subject the raw stream captures
    /// (admin tokens without `subjects`).
    pub subjects: Arc<[String]>,
    /// What its token may do.
    pub scope: Scope,
}

/// The extractor every guarded handler takes: the caller [`require`] let through. A handler
/// outside a guarded router gets a 401 rather than an unchecked caller.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this route checks no token: it cannot say who is calling",
            )
        })
    }
}

impl Caller {
    /// True when this caller may publish to `subject`.
    pub fn may_ingest(&self, subject: &str) -> bool {
        match self.scope {
            Scope::Admin if self.subjects.is_empty() => true,
            Scope::Admin | Scope::Ingest => {
                self.subjects.iter().any(|p| subject_matches(p, subject))
            }
            Scope::Read => false,
        }
    }
}

impl Tokens {
    /// Reads the secrets of the `[admin]` section's tokens (none without the section);
    /// `secret_file` is relative to the folder of `file`. Two tokens with one secret are
    /// refused: the first would always win.
    pub fn load(admin: Option<&AdminConfig>, file: &ConfigFile) -> anyhow::Result<Self> {
        let mut tokens: Vec<Token> = Vec::new();
        for token in admin.map(|a| a.tokens.as_slice()).unwrap_or_default() {
            let secret = match (&token.secret_file, &token.secret_env) {
                (Some(secret_file), _) => {
                    let secret_file = file.resolve(secret_file);
                    std::fs::read_to_string(&secret_file).with_context(|| {
                        format!(
                            "cannot read the secret of admin token `{}` from {} (admin.tokens secret_file in {}, relative to its folder)",
                            token.name,
                            secret_file.display(),
                            file.path.display()
                        )
                    })?
                }
                (None, Some(var)) => std::env::var(var).with_context(|| {
                    format!(
                        "admin token `{}` reads its secret from ${var}, which is not set",
                        token.name
                    )
                })?,
                (None, None) => anyhow::bail!("admin token `{}` has no secret", token.name),
            };
            let secret = secret.trim();
            let chars = secret.chars().count();
            if chars < MIN_SECRET_CHARS {
                anyhow::bail!(
                    "the secret of admin token `{}` is {chars} characters: use at least {MIN_SECRET_CHARS} (e.g. `openssl rand -hex 24`)",
                    token.name,
                );
            }
            let digest = sha256_hex(secret.as_bytes());
            if let Some(other) = tokens.iter().find(|t| same(&t.digest, &digest)) {
                anyhow::bail!(
                    "admin tokens `{}` and `{}` in {} have the same secret: give each token its own, or a holder of one gets the other's scope",
                    other.name,
                    token.name,
                    file.path.display()
                );
            }
            tokens.push(Token {
                name: token.name.to_string(),
                scope: token.scope,
                digest,
                subjects: token.subjects.clone().into(),
            });
        }
        Ok(Self { tokens })
    }

    /// Lets the request through when its bearer token may do what `needed` covers.
    pub fn check(&self, headers: &HeaderMap, needed: Scope) -> Result<Caller, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials)
            .map(str::trim);
        let Some(presented) = presented else {
            if self.tokens.is_empty() && needed == Scope::Read {
                return Ok(Caller {
                    name: "anonymous".into(),
                    subjects: Arc::new([]),
                    scope: Scope::Read,
                });
            }
            let hint = if self.tokens.is_empty() {
                "this host has no admin tokens: add [[admin.tokens]] to its config to allow this"
            } else {
                "send `Authorization: Bearer <token>`"
            };
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, hint));
        };
        let digest = sha256_hex(presented.as_bytes());
        let token = self
            .tokens
            .iter()
            .find(|t| same(&t.digest, &digest))
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "the token is not valid"))?;
        if allows(token.scope, needed) {
            Ok(Caller {
                name: token.name.to_string(),
                subjects: token.subjects.clone(),
                scope: token.scope,
            })
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "token `{}` has the {:?} scope; this needs {:?}",
                    token.name, token.scope, needed
                )
                .to_lowercase(),
            ))
        }
    }

    /// True when the host has no tokens (and so serves reads to loopback only).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// What a route layer needs: the tokens and the scope of the routes it guards.
#[derive(Clone)]
pub struct Gate {
    /// The host's tokens.
    pub tokens: Arc<Tokens>,
    /// The scope the guarded routes need.
    pub scope: Scope,
}

/// The route layer: checks the bearer token before the handler (and so before any body is
/// read) and hands the [`Caller`] on to the handler, which takes it as an extractor.
pub async fn require(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    match gate.tokens.check(request.headers(), gate.scope) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refused) => refused.into_response(),
    }
}

/// Without tokens the server answers only requests addressed to a loopback name
/// (`localhost`, `127.0.0.1`, `[::1]`): a page on another site that rebinds its DNS name to
/// 127.0.0.1 sends its own name as `Host` and is refused.
pub async fn loopback_only(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    if !tokens.is_empty() || is_loopback_host(request.headers()) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "this host has no admin tokens and answers only to localhost, 127.0.0.1 or [::1]: add [[admin.tokens]] to reach it by another name",
    )
    .into_response()
}

/// True when the `Host` header names a loopback address (any port).
fn is_loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `admin` may do everything; `read` and `ingest` only their own.
fn allows(scope: Scope, needed: Scope) -> bool {
    scope == Scope::Admin || scope == needed
}

/// Compares two digests in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The credentials of an `Authorization` value of the `Bearer` scheme, whose name is
/// case-insensitive (RFC 9110, 11.1): `bearer <token>` is as good as `Bearer <token>`.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credentials)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let token = |name: &str, scope, secret: &str| Token {
            name: name.into(),
            scope,
            digest: sha256_hex(secret.as_bytes()),
            subjects: Arc::new(["raw.erp.*.*".to_owned()]),
        };
        Tokens {
            tokens: vec![
                token("ops", Scope::Admin, "admin-secret-0123456789"),
                token("viewer", Scope::Read, "read-secret-0123456789"),
                token("erp", Scope::Ingest, "ingest-secret-0123456789"),
            ],
        }
    }

    fn bearer(secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {secret}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn the_bearer_scheme_is_named_in_any_case() {
        let t = tokens();
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                format!("{scheme} read-secret-0123456789").parse().unwrap(),
            );
            assert!(t.check(&headers, Scope::Read).is_ok(), "{scheme}");
        }
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            "Basic read-secret-0123456789".parse().unwrap(),
        );
        assert!(t.check(&basic, Scope::Read).is_err(), "another scheme");
    }

    #[test]
    fn scopes_allow_what_they_name() {
        let t = tokens();
        let (admin, ingest, read) = (
            bearer("admin-secret-0123456789"),
            bearer("ingest-secret-0123456789"),
            bearer("read-secret-0123456789"),
        );
        for (headers, scope) in [
            (&admin, Scope::Admin),
            (&admin, Scope::Ingest),
            (&read, Scope::Read),
        ] {
            assert!(t.check(headers, scope).is_ok());
        }
        for (headers, scope, status) in [
            (&read, Scope::Admin, StatusCode::FORBIDDEN),
            (&ingest, Scope::Read, StatusCode::FORBIDDEN),
            (&bearer("wrong"), Scope::Read, StatusCode::UNAUTHORIZED),
            (&HeaderMap::new(), Scope::Read, StatusCode::UNAUTHORIZED),
        ] {
            assert_eq!(t.check(headers, scope).unwrap_err().0, status);
        }
    }

    #[test]
    fn without_tokens_only_reads_are_open() {
        let t = Tokens { tokens: vec![] };
        assert!(t.check(&HeaderMap::new(), Scope::Read).is_ok());
        assert_eq!(
            t.check(&HeaderMap::new(), Scope::Admin).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            t.check(&HeaderMap::new(), Scope::Ingest).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        let host = |h: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, h.parse().unwrap());
            is_loopback_host(&headers)
        };
        for ok in [
            "localhost",
            "localhost:9470",
            "127.0.0.1:9470",
            "[::1]:9470",
            "LOCALHOST",
        ] {
            assert!(host(ok), "{ok}");
        }
        for refused in [
            "evil.example:9470",
            "127.0.0.1.evil.example",
            "localhost.evil",
            "10.0.0.1",
        ] {
            assert!(!host(refused), "{refused}");
        }
        assert!(!is_loopback_host(&HeaderMap::new()));
    }

    #[test]
    fn ingest_callers_publish_only_to_their_subjects() {
        let t = tokens();
        let erp = t
            .check(&bearer("ingest-secret-0123456789"), Scope::Ingest)
            .unwrap();
        assert!(erp.may_ingest("raw.erp.PLANT1.json"));
        assert!(!erp.may_ingest("raw.mes.plant1.shift-report"));
    }
}
