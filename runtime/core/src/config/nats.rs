//! `[nats]`: how to reach the NATS server.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `nats.url` | NATS server URL | none: `run` needs one, `up` starts a local server |
//! | `nats.credentials` | NATS credentials file (JWT + nkey) | none |
//! | `nats.user`, `nats.password` | user/password authentication | none |
//! | `nats.password_file`, `nats.password_env` | the password read from a file (trimmed) or an environment variable instead | none |
//! | `nats.token` | token authentication | none |
//! | `nats.token_file`, `nats.token_env` | the token read from a file (trimmed) or an environment variable instead | none |
//! | `nats.tls.ca`, `nats.tls.cert`, `nats.tls.key`, `nats.tls.required` | TLS to the server | off |
//! | `nats.ping_interval` | how often the client pings its server, and a host checks that its server answers: one from which nothing came for two intervals (stalled, partitioned) is left for the next server of `nats.url` | `10s` |

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{HumanDuration, Invalid};

/// The ping interval when the file gives none: a host leaves a stalled or partitioned server
/// within about three intervals (the host's own check: async-nats pings only after an interval
/// in which the client sent nothing, which a busy host never has).
pub const DEFAULT_PING_INTERVAL: HumanDuration = HumanDuration::from_secs(10);

/// How to reach NATS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: Option<String>,
    /// Credentials file (user JWT and nkey seed).
    pub credentials: Option<PathBuf>,
    /// User name for user/password authentication.
    pub user: Option<String>,
    /// Password for user/password authentication.
    pub password: Option<String>,
    /// A file holding the password (trimmed), resolved against the config file's folder.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// Token for token authentication.
    pub token: Option<String>,
    /// A file holding the token (trimmed), resolved against the config file's folder.
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    pub token_env: Option<String>,
    /// TLS settings.
    pub tls: TlsConfig,
    /// How often the client pings the server ([`DEFAULT_PING_INTERVAL`] when not given).
    pub ping_interval: Option<HumanDuration>,
}

/// TLS to the NATS server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate authorities to trust.
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS.
    pub cert: Option<PathBuf>,
    /// PEM client key, for mutual TLS.
    pub key: Option<PathBuf>,
    /// Refuse to connect without TLS.
    pub required: bool,
}

impl NatsConfig {
    /// The first key that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        let password =
            self.password.is_some() || self.password_file.is_some() || self.password_env.is_some();
        if self.user.is_some() != password {
            return Err(Invalid::new(
                "nats.user",
                "and `nats.password` (or `nats.password_file`/`nats.password_env`) must be given together",
            ));
        }
        if self.ping_interval.is_some_and(|d| d.get().is_zero()) {
            return Err(Invalid::new("nats.ping_interval", "must be more than 0s"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(Invalid::new(
                "nats.tls.cert",
                "and `nats.tls.key` must be given together",
            ));
        }
        Ok(())
    }
}
