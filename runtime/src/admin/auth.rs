//! Bearer tokens of the admin server. A token's scope says what it may do: `read` (status,
//! routes, plugins, dead letters, metrics), `ingest` (`POST /ingest/...` only) or `admin`
//! (everything). Secrets come from a file or an environment variable, never the config file,
//! and only their sha256 is kept in memory.
//!
//! A host with no tokens serves reads to anyone on loopback (the config refuses another
//! address without tokens) and refuses changes and ingest.

use anyhow::Context;
use axum::http::{HeaderMap, StatusCode, header};

use super::ApiError;
use crate::config::{AdminConfig, Scope};
use crate::digest::sha256_hex;

/// One loaded token.
struct Token {
    name: String,
    scope: Scope,
    digest: String,
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
}

impl Tokens {
    /// Reads the secrets of `admin`'s tokens.
    pub fn load(admin: Option<&AdminConfig>) -> anyhow::Result<Self> {
        let mut tokens = Vec::new();
        for token in admin.map(|a| a.tokens.as_slice()).unwrap_or_default() {
            let secret = match (&token.secret_file, &token.secret_env) {
                (Some(file), _) => std::fs::read_to_string(file).with_context(|| {
                    format!(
                        "cannot read the secret of admin token `{}` from {}",
                        token.name,
                        file.display()
                    )
                })?,
                (None, Some(var)) => std::env::var(var).with_context(|| {
                    format!(
                        "admin token `{}` reads its secret from ${var}, which is not set",
                        token.name
                    )
                })?,
                (None, None) => anyhow::bail!("admin token `{}` has no secret", token.name),
            };
            let secret = secret.trim();
            if secret.len() < 16 {
                anyhow::bail!(
                    "the secret of admin token `{}` is {} characters: use at least 16 (e.g. `openssl rand -hex 24`)",
                    token.name,
                    secret.len()
                );
            }
            tokens.push(Token {
                name: token.name.clone(),
                scope: token.scope,
                digest: sha256_hex(secret.as_bytes()),
            });
        }
        Ok(Self { tokens })
    }

    /// Lets the request through when its bearer token may do what `needed` covers.
    pub fn check(&self, headers: &HeaderMap, needed: Scope) -> Result<Caller, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(presented) = presented else {
            if self.tokens.is_empty() && needed == Scope::Read {
                return Ok(Caller {
                    name: "anonymous".into(),
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
                name: token.name.clone(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let token = |name: &str, scope, secret: &str| Token {
            name: name.into(),
            scope,
            digest: sha256_hex(secret.as_bytes()),
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
    fn scopes_allow_what_they_name() {
        let t = tokens();
        assert!(
            t.check(&bearer("admin-secret-0123456789"), Scope::Admin)
                .is_ok()
        );
        assert!(
            t.check(&bearer("admin-secret-0123456789"), Scope::Ingest)
                .is_ok()
        );
        assert!(
            t.check(&bearer("read-secret-0123456789"), Scope::Read)
                .is_ok()
        );
        assert_eq!(
            t.check(&bearer("read-secret-0123456789"), Scope::Admin)
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            t.check(&bearer("ingest-secret-0123456789"), Scope::Read)
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            t.check(&bearer("wrong"), Scope::Read).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            t.check(&HeaderMap::new(), Scope::Read).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
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
}
