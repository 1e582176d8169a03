//! Typed host configuration, read from TOML.
//!
//! Unknown keys are rejected, and every error names the file and the key. Paths inside the file
//! (plugins, credentials, certificates, the state directory) are relative to the file's folder.
//!
//! Each section is a file of this folder with its keys tabled, its one `Default` and its own
//! check: `nats.rs` (with TLS), `streams.rs`, `host.rs` (with `[up]`), `routes.rs` (with limits
//! and retries), `governance.rs`, `registry.rs`, `admin.rs`, `telemetry.rs`, `projection.rs` and `approval.rs`;
//! `values.rs` holds the value types they share. Durations are written `500ms`, `2s`, `5m` or
//! `1h`.

mod admin;
mod approval;
mod governance;
mod host;
mod nats;
mod outbound;
mod projection;
mod registry;
mod routes;
mod streams;
mod telemetry;
#[cfg(test)]
mod tests;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use admin::{AdminConfig, AdminToken, Scope};
pub use approval::{ApprovalConfig, EVERY_ROUTE};
pub use governance::{EVENT_KINDS, GovernanceConfig, OwnershipRule};
pub use host::{HostConfig, SeedMessages, UpConfig};
pub use nats::{DEFAULT_PING_INTERVAL, NatsConfig, TlsConfig};
pub use outbound::{
    Credentials, Gate, OutboundRouteConfig, RateLimit, TargetAuth, TargetBreaker, TargetConfig,
    TargetKind, TargetRetry,
};
pub use projection::ProjectionConfig;
pub use registry::{RegistryConfig, RegistryKind, TrustedKey};
pub use routes::{
    CallSettings, Limits, Ordering, PluginLimits, PluginSource, RetryPolicy, RouteConfig,
};
pub use streams::StreamsConfig;
pub use telemetry::TelemetryConfig;
pub use values::{HumanDuration, TokenName, check_subject, is_token, parse_duration};

use values::Invalid;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the key and line.
        message: String,
    },
    /// A value is out of its accepted range.
    #[error("invalid config file {path}: `{key}` {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// Where a configuration was read from: paths written in it are relative to its folder, and
/// messages name it. A component given only its section gets this beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file.
    pub path: PathBuf,
    /// Its folder.
    pub dir: PathBuf,
}

impl ConfigFile {
    /// Resolves a path written in the file against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        resolve_in(&self.dir, path)
    }
}

fn resolve_in(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        dir.join(path)
    }
}

/// The whole host configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// How to reach NATS.
    pub nats: NatsConfig,
    /// The JetStream stream names.
    pub streams: StreamsConfig,
    /// Host-wide settings.
    pub host: HostConfig,
    /// Routes by name.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Outbound routes by name: canonical events posted to targets.
    pub outbound: BTreeMap<String, OutboundRouteConfig>,
    /// The targets outbound routes post to, by name.
    pub targets: BTreeMap<String, TargetConfig>,
    /// Delivery rules across routes: idempotency and system-of-record ownership.
    pub governance: GovernanceConfig,
    /// Where plugin versions and route bindings are kept.
    pub registry: RegistryConfig,
    /// Settings of the local all-in-one `millrace up`.
    pub up: UpConfig,
    /// The admin HTTP server: API, metrics, console and ingest. Off without the section.
    pub admin: Option<AdminConfig>,
    /// Trace export.
    pub telemetry: TelemetryConfig,
    /// The visibility projection of the canonical stream.
    pub projection: ProjectionConfig,
    /// Which route changes need a second identity's approval.
    pub approval: ApprovalConfig,
    /// The folder the file was read from; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file the configuration was read from, for error messages.
    #[serde(skip)]
    pub source: PathBuf,
}

impl Config {
    /// Whether the visibility projection runs beside the host (`up` true for `millrace up`):
    /// as `projection.enabled` says; unset, in `up`, and in `run` when an outbound route has a
    /// posting gate, which reads the projection (without one running, nothing would ever be
    /// held).
    pub fn runs_projection(&self, up: bool) -> bool {
        self.projection.enabled.unwrap_or(up || self.has_gates())
    }

    /// Whether an outbound route has a posting gate.
    pub fn has_gates(&self) -> bool {
        self.outbound.values().any(|route| route.gate.is_some())
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.source = path.to_owned();
        config.base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        config
            .check()
            .map_err(|e| config.invalid(e.key, e.message))?;
        config.read_nats_secrets()?;
        config.read_target_secrets()?;
        Ok(config)
    }

    /// The plugin of the inbound or outbound route `route`, when there is one.
    pub fn plugin_of(&self, route: &str) -> Option<PluginSource> {
        match (self.routes.get(route), self.outbound.get(route)) {
            (Some(inbound), _) => Some(inbound.plugin_source()),
            (None, Some(outbound)) => Some(outbound.plugin_source()),
            (None, None) => None,
        }
    }

    /// Every route's name, inbound and outbound.
    pub fn route_names(&self) -> Vec<String> {
        self.routes
            .keys()
            .chain(self.outbound.keys())
            .cloned()
            .collect()
    }

    /// Resolves a path written in the file against the file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        resolve_in(&self.base_dir, path)
    }

    /// The file the configuration was read from, for a component that takes its own section
    /// and resolves the paths written in it.
    pub fn file(&self) -> ConfigFile {
        ConfigFile {
            path: self.source.clone(),
            dir: self.base_dir.clone(),
        }
    }

    /// Every section's own check, in the order of the file's usual layout.
    fn check(&self) -> Result<(), Invalid> {
        self.host.check()?;
        self.streams.check()?;
        self.registry.check()?;
        self.nats.check()?;
        for (name, route) in &self.routes {
            route.check(name)?;
            self.streams.check_captured(name, &route.subjects)?;
        }
        for (name, target) in &self.targets {
            target.check(name)?;
        }
        for (name, route) in &self.outbound {
            route.check(name, &self.targets)?;
            // Bindings and consumers are named by route: one name, one route.
            if self.routes.contains_key(name) {
                return Err(Invalid::new(
                    format!("outbound.{name}"),
                    "has the name of an inbound route ([routes.<name>]): give it another",
                ));
            }
        }
        self.governance.check()?;
        self.up.check()?;
        self.projection.check()?;
        self.approval.check(
            (self.routes.keys())
                .chain(self.outbound.keys())
                .map(String::as_str),
        )?;
        if let Some(admin) = &self.admin {
            admin.check(&self.base_dir)?;
        }
        self.telemetry.check()
    }

    /// Reads `nats.password_file`/`_env` and `nats.token_file`/`_env` into the password and
    /// token, so the secrets can stay out of the config file.
    fn read_nats_secrets(&mut self) -> Result<(), ConfigError> {
        let password = self.secret(
            "nats.password",
            self.nats.password.is_some(),
            self.nats.password_file.as_deref(),
            self.nats.password_env.as_deref(),
        )?;
        if password.is_some() {
            self.nats.password = password;
        }
        let token = self.secret(
            "nats.token",
            self.nats.token.is_some(),
            self.nats.token_file.as_deref(),
            self.nats.token_env.as_deref(),
        )?;
        if token.is_some() {
            self.nats.token = token;
        }
        Ok(())
    }

    /// Reads every target's bearer token or password from its file or environment variable.
    /// One that cannot be read is kept as the target's `unreadable` reason instead of failing
    /// the load: only what posts to the target needs it (the config's shape was checked).
    fn read_target_secrets(&mut self) -> Result<(), ConfigError> {
        let mut read = Vec::new();
        for (name, target) in &self.targets {
            let auth = &target.auth;
            let credentials = (|| {
                let bearer = self.secret(
                    &format!("targets.{name}.auth.bearer"),
                    false,
                    auth.bearer_file.as_deref(),
                    auth.bearer_env.as_deref(),
                )?;
                let password = self.secret(
                    &format!("targets.{name}.auth.password"),
                    false,
                    auth.password_file.as_deref(),
                    auth.password_env.as_deref(),
                )?;
                Ok::<_, ConfigError>(match (bearer, &auth.username, password) {
                    (Some(token), _, _) => Some(Credentials::Bearer(token)),
                    (None, Some(username), Some(password)) => Some(Credentials::Basic {
                        username: username.clone(),
                        password,
                    }),
                    _ => None,
                })
            })();
            read.push((name.clone(), credentials));
        }
        for (name, credentials) in read {
            if let Some(target) = self.targets.get_mut(&name) {
                match credentials {
                    Ok(credentials) => target.auth.credentials = credentials,
                    Err(e) => target.auth.unreadable = Some(e.to_string()),
                }
            }
        }
        Ok(())
    }

    /// A secret from `<key>_file` or `<key>_env`, at most one of them and not beside `<key>`.
    fn secret(
        &self,
        key: &str,
        inline: bool,
        file: Option<&Path>,
        env: Option<&str>,
    ) -> Result<Option<String>, ConfigError> {
        if [inline, file.is_some(), env.is_some()]
            .iter()
            .filter(|set| **set)
            .count()
            > 1
        {
            return Err(self.invalid(
                key,
                format!(
                    "is given more than once: set one of `{key}`, `{key}_file` and `{key}_env`"
                ),
            ));
        }
        let text = match (file, env) {
            (Some(file), _) => {
                let path = self.resolve(file);
                std::fs::read_to_string(&path).map_err(|e| {
                    self.invalid(
                        format!("{key}_file"),
                        format!("names {}, which cannot be read: {e}", path.display()),
                    )
                })?
            }
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                self.invalid(
                    format!("{key}_env"),
                    format!("names ${var}, which is not set"),
                )
            })?,
            (None, None) => return Ok(None),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(self.invalid(key, "is empty where it is read from"));
        }
        Ok(Some(text.to_owned()))
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.source.clone(),
            key: key.into(),
            message: message.into(),
        }
    }
}
