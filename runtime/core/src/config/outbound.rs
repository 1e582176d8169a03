//! `[outbound.<name>]` and `[targets.<name>]`: which canonical events an outbound route posts,
//! through which plugin, to which targets; and how each target is reached.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `outbound.<name>.subjects` | canonical subjects the route consumes (`canonical.<kind>.<site>`, wildcards allowed) | required |
//! | `outbound.<name>.plugin` | outbound plugin folder, `.wasm` component or deployed `name@version` | required |
//! | `outbound.<name>.targets` | the targets its requests may go to | required |
//! | `outbound.<name>.config` | string key/values the plugin reads | empty |
//! | `outbound.<name>.limits`, `.retry` | sandbox limits and retries of each plugin call, as for `routes` | as for `routes` |
//! | `outbound.<name>.ack_wait` | how long JetStream waits before redelivering an event the host stopped answering for | `30s` |
//! | `outbound.<name>.gate` | hold events back until the projection allows them: `lot-not-on-hold` | none |
//! | `targets.<name>.kind` | `http`, or `nats` (publish to `out.<name>.<site>`) | `http` |
//! | `targets.<name>.url` | the base URL requests' paths are appended to (`http` only) | required for `http` |
//! | `targets.<name>.auth.bearer_file` / `_env` | a bearer token, read from a file or an environment variable | none |
//! | `targets.<name>.auth.username`, `.password_file` / `_env` | basic authentication | none |
//! | `targets.<name>.timeout` | longest one request may take | `10s` |
//! | `targets.<name>.rate.requests`, `.rate.per` | a token bucket: at most `requests` per `per`; a 429's `Retry-After` also pauses it | unlimited |
//! | `targets.<name>.retry.backoff`, `.max_backoff` | wait before retrying a request the target could not take (doubled each time, with jitter, up to the cap); retried until it posts or is rejected | `500ms`, `30s` |
//! | `targets.<name>.retry.give_up_after` | a request still unanswered or answered "try again" this long after its first try is given up at its next failure: its event is dead-lettered as `gave-up`, freeing its lane | unset: retried for as long as it takes |
//! | `targets.<name>.breaker.failures`, `.breaker.pause` | consecutive failures (no answer, 5xx) that open the breaker, and how long it pauses the target's routes before one probe | 5, `5s` |

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::routes::{CallSettings, PluginSource, check_route_name_and_subjects, plugin_source};
use super::values::{HumanDuration, Invalid, check_range, is_token};

/// One outbound route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundRouteConfig {
    /// The canonical subjects it consumes; NATS wildcards allowed.
    pub subjects: Vec<String>,
    /// The outbound plugin folder, component, or deployed `name@version`.
    pub plugin: PathBuf,
    /// The targets its requests may go to.
    pub targets: Vec<String>,
    /// Key/values the plugin reads through the `host` interface.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Sandbox limits, retries and redelivery delay of its calls, as for inbound routes.
    #[serde(flatten)]
    pub calls: CallSettings,
    /// The rule that holds events back until the projection allows them.
    #[serde(default)]
    pub gate: Option<Gate>,
}

/// A posting gate: a rule over the projection an event must pass before it is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    /// A production completion, material consumption or inventory movement of a lot under an
    /// open quality hold waits until the hold is released.
    LotNotOnHold,
}

impl OutboundRouteConfig {
    /// The route's plugin: `name@version` names a deployed version, anything else is a path.
    pub fn plugin_source(&self) -> PluginSource {
        plugin_source(&self.plugin)
    }

    /// The first key of outbound route `name` that is wrong, with what is accepted.
    pub(super) fn check(
        &self,
        name: &str,
        targets: &BTreeMap<String, TargetConfig>,
    ) -> Result<(), Invalid> {
        let key = |k: &str| format!("outbound.{name}.{k}");
        check_route_name_and_subjects(
            "outbound",
            name,
            &self.subjects,
            "needs at least one canonical subject, e.g. `canonical.production-completion.>`",
        )?;
        if let Some(subject) = self
            .subjects
            .iter()
            .find(|s| !s.starts_with("canonical.") && s.as_str() != ">")
        {
            return Err(Invalid::new(
                key("subjects"),
                format!("`{subject}` is not a canonical subject: write `canonical.<kind>.<site>`"),
            ));
        }
        if self.targets.is_empty() {
            return Err(Invalid::new(key("targets"), "needs at least one target"));
        }
        if let Some(unknown) = self.targets.iter().find(|t| !targets.contains_key(*t)) {
            return Err(Invalid::new(
                key("targets"),
                format!(
                    "names `{unknown}`, which is not a [targets.<name>] section; the targets are: {}",
                    targets.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        self.calls.check(&format!("outbound.{name}"))
    }
}

/// How a target is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// HTTP(S) requests to `url` + the request's path.
    #[default]
    Http,
    /// A JetStream publish to `out.<target>.<site>` (stream OUTBOX).
    Nats,
}

/// One target. Every key has a default, but an `http` target's check asks for its `url`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetConfig {
    /// HTTP or NATS.
    pub kind: TargetKind,
    /// The base URL (HTTP).
    pub url: Option<String>,
    /// Credentials (HTTP).
    pub auth: TargetAuth,
    /// Longest one request may take.
    pub timeout: HumanDuration,
    /// The most requests per window, when limited.
    pub rate: Option<RateLimit>,
    /// Backoff of requests the target could not take.
    pub retry: TargetRetry,
    /// When the target counts as down.
    pub breaker: TargetBreaker,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            kind: TargetKind::default(),
            url: None,
            auth: TargetAuth::default(),
            timeout: HumanDuration::from_secs(10),
            rate: None,
            retry: TargetRetry::default(),
            breaker: TargetBreaker::default(),
        }
    }
}

/// A target's credentials; the secrets are read from a file or the environment at load.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetAuth {
    /// A file holding the bearer token.
    pub bearer_file: Option<PathBuf>,
    /// An environment variable holding the bearer token.
    pub bearer_env: Option<String>,
    /// The user of basic authentication.
    pub username: Option<String>,
    /// A file holding the basic-authentication password.
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the basic-authentication password.
    pub password_env: Option<String>,
    /// The credentials read, filled in at load.
    #[serde(skip)]
    pub credentials: Option<Credentials>,
    /// Why the credentials could not be read at load (a file missing, a variable not set):
    /// a host refuses to start with it (its targets are built at start) and `dlq redrive` of
    /// an outbound letter says it, but commands that post nothing (`status`, `dlq list`,
    /// `audit`...) run without the production secret.
    #[serde(skip)]
    pub unreadable: Option<String>,
}

/// Credentials as read.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic ...`.
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ..)"),
        }
    }
}

/// A token bucket: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per window.
    pub requests: u32,
    /// The window.
    pub per: HumanDuration,
}

/// Backoff of requests a target could not take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetRetry {
    /// The first wait; doubled each time.
    pub backoff: HumanDuration,
    /// The longest wait.
    pub max_backoff: HumanDuration,
    /// How long after its first try a request that keeps failing (no answer, or an answer read
    /// as "try again") is given up at its next failure, its event dead-lettered; `None`: never.
    pub give_up_after: Option<HumanDuration>,
}

impl Default for TargetRetry {
    fn default() -> Self {
        Self {
            backoff: HumanDuration::from_millis(500),
            max_backoff: HumanDuration::from_secs(30),
            give_up_after: None,
        }
    }
}

/// When a target counts as down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetBreaker {
    /// Consecutive failures (no answer, 5xx) that open the breaker.
    pub failures: u32,
    /// How long an open breaker pauses the target before one probe request.
    pub pause: HumanDuration,
}

impl Default for TargetBreaker {
    fn default() -> Self {
        Self {
            failures: 5,
            pause: HumanDuration::from_secs(5),
        }
    }
}

impl TargetConfig {
    /// The first key of target `name` that is wrong, with what is accepted.
    pub(super) fn check(&self, name: &str) -> Result<(), Invalid> {
        let key = |k: &str| format!("targets.{name}.{k}");
        if !is_token(name) {
            return Err(Invalid::new(
                format!("targets.{name}"),
                "target names may hold only letters, digits, `-` and `_`",
            ));
        }
        match (self.kind, &self.url) {
            (TargetKind::Http, None) => {
                return Err(Invalid::new(
                    key("url"),
                    "is required for an http target, e.g. `https://erp.example.com/api`",
                ));
            }
            (TargetKind::Http, Some(url)) => {
                let host = url
                    .strip_prefix("http://")
                    .or_else(|| url.strip_prefix("https://"));
                if host.is_none_or(|h| h.is_empty() || h.starts_with('/') || h.contains(' ')) {
                    return Err(Invalid::new(
                        key("url"),
                        format!("`{url}` is not an http:// or https:// URL"),
                    ));
                }
            }
            (TargetKind::Nats, Some(_)) => {
                return Err(Invalid::new(
                    key("url"),
                    "is for http targets; a nats target publishes to out.<target>.<site>",
                ));
            }
            (TargetKind::Nats, None) => {}
        }
        let auth = &self.auth;
        if auth.bearer_file.is_some() && auth.bearer_env.is_some() {
            return Err(Invalid::new(
                key("auth"),
                "set one of `bearer_file` and `bearer_env`",
            ));
        }
        if auth.password_file.is_some() && auth.password_env.is_some() {
            return Err(Invalid::new(
                key("auth"),
                "set one of `password_file` and `password_env`",
            ));
        }
        let bearer = auth.bearer_file.is_some() || auth.bearer_env.is_some();
        let password = auth.password_file.is_some() || auth.password_env.is_some();
        if bearer && (auth.username.is_some() || password) {
            return Err(Invalid::new(
                key("auth"),
                "is either a bearer token or basic authentication (username and password), not both",
            ));
        }
        if auth.username.is_some() != password {
            return Err(Invalid::new(
                key("auth"),
                "basic authentication needs `username` and one of `password_file`, `password_env`",
            ));
        }
        if self.timeout < HumanDuration::from_millis(1) {
            return Err(Invalid::new(key("timeout"), "must be at least 1ms"));
        }
        if let Some(rate) = &self.rate {
            check_range(key("rate.requests"), rate.requests, 1..=1_000_000)?;
            if rate.per < HumanDuration::from_millis(1) {
                return Err(Invalid::new(key("rate.per"), "must be at least 1ms"));
            }
        }
        if self.retry.backoff < HumanDuration::from_millis(1)
            || self.retry.max_backoff < self.retry.backoff
        {
            return Err(Invalid::new(
                key("retry"),
                "`backoff` must be at least 1ms and `max_backoff` at least `backoff`",
            ));
        }
        if self
            .retry
            .give_up_after
            .is_some_and(|after| after < HumanDuration::from_secs(1))
        {
            return Err(Invalid::new(
                key("retry.give_up_after"),
                "must be at least 1s; leave it out to retry for as long as it takes",
            ));
        }
        check_range(key("breaker.failures"), self.breaker.failures, 1..=1000)?;
        if self.breaker.pause < HumanDuration::from_millis(1) {
            return Err(Invalid::new(key("breaker.pause"), "must be at least 1ms"));
        }
        Ok(())
    }
}
