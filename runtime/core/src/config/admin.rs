//! `[admin]`: the admin HTTP server (API, `/metrics`, the console and HTTP ingest) and its
//! bearer tokens. Without the section the server is not started.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `admin.listen` | address of the admin API, `/metrics`, the console and HTTP ingest | no `[admin]`: not served; with it `127.0.0.1:9470` |
//! | `admin.tokens` | bearer tokens: `name`, `scope` (`read`, `ingest` or `admin`), `secret_file` or `secret_env`, and for `ingest` the raw `subjects` it may publish to | none: read-only without a token, on loopback only |
//! | `admin.ingest_max_kib` | largest body `POST /ingest/...` accepts | 1024 |
//! | `admin.header_timeout` | longest a client may take to send a request's headers | `10s` |
//! | `admin.max_connections` | open connections the admin server keeps; more wait to be accepted | 256 |
//! | `admin.max_requests` | requests handled at once; more are answered 503 | 64 |

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::{HumanDuration, Invalid, TokenName, check_range, check_subjects};

/// The admin HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Bearer tokens and their scopes.
    pub tokens: Vec<AdminToken>,
    /// Largest body HTTP ingest accepts, KiB.
    pub ingest_max_kib: usize,
    /// Longest a client may take to send a request's headers before it is disconnected.
    pub header_timeout: HumanDuration,
    /// Connections kept open at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Requests handled at once; more are answered 503 at once.
    pub max_requests: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9470)),
            tokens: Vec::new(),
            ingest_max_kib: 1024,
            header_timeout: HumanDuration::from_secs(10),
            max_connections: 256,
            max_requests: 64,
        }
    }
}

/// One bearer token of the admin server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who holds it, for the log.
    pub name: TokenName,
    /// What it may do.
    pub scope: Scope,
    /// A file holding the secret (trimmed).
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the secret.
    pub secret_env: Option<String>,
    /// The raw subjects (wildcards allowed) an `ingest` token may publish to; required for
    /// `ingest`, optional for `admin` (default: every subject the raw stream captures).
    #[serde(default)]
    pub subjects: Vec<String>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /ingest/...` only: for the systems that send raw messages.
    Ingest,
    /// Reading: status, routes, plugins, dead letters, metrics.
    Read,
    /// Everything: deploy, activate, roll back, redrive, and reading and ingest.
    Admin,
}

impl AdminConfig {
    /// The first key that is wrong, with what is accepted; secret files are resolved against
    /// `base_dir`, the config file's folder.
    pub(super) fn check(&self, base_dir: &Path) -> Result<(), Invalid> {
        if self.tokens.is_empty() && !self.listen.ip().is_loopback() {
            return Err(Invalid::new(
                "admin.listen",
                format!(
                    "is {}, reachable from other machines, but no [[admin.tokens]] are set: add tokens or listen on 127.0.0.1",
                    self.listen
                ),
            ));
        }
        check_range("admin.ingest_max_kib", self.ingest_max_kib, 1..=64 * 1024)?;
        if self.header_timeout < HumanDuration::from_millis(100)
            || self.header_timeout > HumanDuration::from_secs(300)
        {
            return Err(Invalid::new(
                "admin.header_timeout",
                "must be between 100ms and 5m",
            ));
        }
        check_range("admin.max_connections", self.max_connections, 1..=65_536)?;
        check_range("admin.max_requests", self.max_requests, 1..=65_536)?;
        let mut names = BTreeMap::new();
        let mut sources = BTreeMap::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let key = |k: &str| format!("admin.tokens[{i}].{k}");
            if let Some(first) = names.insert(token.name.as_str(), i) {
                return Err(Invalid::new(
                    key("name"),
                    format!(
                        "is {:?}, the name of admin.tokens[{first}] too: each token needs its own name (the log and ingest headers name the sender by it)",
                        token.name.as_str()
                    ),
                ));
            }
            let source = match (&token.secret_file, &token.secret_env) {
                // Through its components: `a` and `./a` are one file.
                (Some(file), None) => format!(
                    "file {}",
                    base_dir
                        .join(file)
                        .components()
                        .collect::<PathBuf>()
                        .display()
                ),
                (None, Some(var)) => format!("env {var}"),
                _ => {
                    return Err(Invalid::new(
                        key("secret_file"),
                        "set exactly one of `secret_file` and `secret_env`: secrets stay out of the config file",
                    ));
                }
            };
            if let Some(first) = sources.insert(source, i) {
                return Err(Invalid::new(
                    key("secret_file"),
                    format!(
                        "reads the same secret as admin.tokens[{first}]: each token needs its own secret"
                    ),
                ));
            }
            token.check_subjects(&key("subjects"))?;
        }
        Ok(())
    }
}

impl AdminToken {
    /// Checks the token's `subjects` (its dotted key is `key`) against its scope.
    fn check_subjects(&self, key: &str) -> Result<(), Invalid> {
        match self.scope {
            Scope::Ingest if self.subjects.is_empty() => {
                return Err(Invalid::new(
                    key,
                    "is required for an `ingest` token: list the raw subjects it may publish to, e.g. [\"raw.erp.*.*\"]",
                ));
            }
            Scope::Read if !self.subjects.is_empty() => {
                return Err(Invalid::new(
                    key,
                    "is only for `ingest` and `admin` tokens: a `read` token publishes nothing",
                ));
            }
            _ => {}
        }
        check_subjects(key, &self.subjects, true)?;
        if let Some(subject) = self.subjects.iter().find(|s| !s.starts_with("raw.")) {
            return Err(Invalid::new(
                key,
                format!(
                    "has `{subject}`: ingest publishes only raw subjects (`raw.<system>.<site>.<format>`)"
                ),
            ));
        }
        Ok(())
    }
}
