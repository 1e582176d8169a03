//! The audit trail: every change to what a host serves — a plugin deployed, a route's version
//! set, tried as canary or shadow, promoted or rolled back, dead letters redriven, raw history
//! replayed, the projection rebuilt, a change proposed, approved or rejected — appended to the
//! JetStream stream AUDIT (`streams.audit`) with who made it, when, and the state before and
//! after.
//!
//! Who is the admin token's name over the API, and the local OS user on the CLI. Subjects are
//! `audit.route.<route>.<action>` for a route's changes and `audit.host.<area>.<action>` for
//! what routes share (`plugins`, `projection`), so a reader filters by route or action on the
//! server (see [`millrace_core::subjects::audit_filter`]). The admin API (`/api/v1/audit`), `millrace
//! audit` and the console read through [`AuditTrail::list`]; every writer records through
//! [`AuditTrail::record`]. docs/GOVERNANCE.md is the operator's view.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use millrace_core::config::{Config, StreamsConfig};
use millrace_core::subjects;
use millrace_transport::{self as transport, reader};

/// Most entries one listing returns.
pub const MAX_LIST: usize = 1000;

/// Most entries a listing filtered by who or since looks at, newest first.
const MAX_FILTER_SCAN: usize = 10_000;

/// How a change was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Over the admin API, with a token.
    Api,
    /// With the `millrace` command on a machine that reaches NATS.
    Cli,
}

impl Via {
    /// The channel as written, `api` or `cli`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Cli => "cli",
        }
    }
}

/// Who makes a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The admin token's name, or the OS user.
    pub who: String,
    /// How.
    pub via: Via,
}

impl Actor {
    /// The holder of the admin token named `name`.
    pub fn token(name: &str) -> Self {
        Self {
            who: name.to_owned(),
            via: Via::Api,
        }
    }

    /// The local OS user running the CLI (`$USER`, else `$LOGNAME`, else `$USERNAME`).
    pub fn os_user() -> Self {
        let who = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| "unknown-user".to_owned());
        Self { who, via: Via::Cli }
    }
}

/// What kind of change an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A plugin version stored in the registry.
    Deploy,
    /// A version made a route's active one.
    SetVersion,
    /// A version made a route's canary.
    Canary,
    /// A version made a route's shadow candidate.
    Shadow,
    /// A route's candidate made its active version.
    Promote,
    /// A route back on the version before its active one (never waits for approval).
    Rollback,
    /// A dead letter sent back through its route.
    Redrive,
    /// Raw history mapped again through a route.
    Replay,
    /// The visibility projection rebuilt from the canonical stream.
    Rebuild,
    /// A change proposed, waiting for another identity's approval.
    Propose,
    /// A proposal approved and applied.
    Approve,
    /// A proposal rejected.
    Reject,
}

impl Action {
    /// Every action, in the order of the variants.
    pub const ALL: [Action; 12] = [
        Action::Deploy,
        Action::SetVersion,
        Action::Canary,
        Action::Shadow,
        Action::Promote,
        Action::Rollback,
        Action::Redrive,
        Action::Replay,
        Action::Rebuild,
        Action::Propose,
        Action::Approve,
        Action::Reject,
    ];

    /// The action as written in subjects and entries, e.g. `set-version`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::SetVersion => "set-version",
            Action::Canary => "canary",
            Action::Shadow => "shadow",
            Action::Promote => "promote",
            Action::Rollback => "rollback",
            Action::Redrive => "redrive",
            Action::Replay => "replay",
            Action::Rebuild => "rebuild",
            Action::Propose => "propose",
            Action::Approve => "approve",
            Action::Reject => "reject",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == text)
            .ok_or_else(|| {
                let accepted: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "`{text}` is no audited action; accepted: {}",
                    accepted.join(", ")
                )
            })
    }
}

/// What a change is to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One route.
    Route(String),
    /// The plugin versions of the registry, which every route may use.
    Plugins,
    /// The visibility projection.
    Projection,
}

impl Target {
    /// The scope and name tokens of its subjects.
    fn tokens(&self) -> (&'static str, &str) {
        match self {
            Target::Route(route) => (subjects::AUDIT_ROUTE, route),
            Target::Plugins => (subjects::AUDIT_HOST, "plugins"),
            Target::Projection => (subjects::AUDIT_HOST, "projection"),
        }
    }
}

/// A change to record: what, to what, and the state before and after.
#[derive(Debug, Clone)]
pub struct Change {
    action: Action,
    target: Target,
    what: String,
    before: Option<Value>,
    after: Option<Value>,
    proposal: Option<String>,
}

impl Change {
    /// `action` on `target`, said in a sentence (`what`).
    pub fn new(action: Action, target: Target, what: impl Into<String>) -> Self {
        Self {
            action,
            target,
            what: what.into(),
            before: None,
            after: None,
            proposal: None,
        }
    }

    /// The state before the change.
    pub fn before(mut self, state: &impl Serialize) -> Self {
        self.before = serde_json::to_value(state).ok().filter(|v| !v.is_null());
        self
    }

    /// The state after the change.
    pub fn after(mut self, state: &impl Serialize) -> Self {
        self.after = serde_json::to_value(state).ok().filter(|v| !v.is_null());
        self
    }

    /// The proposal the change belongs to.
    pub fn proposal(mut self, id: &str) -> Self {
        self.proposal = Some(id.to_owned());
        self
    }

    /// A plugin version stored in the registry (over the API or with `plugin deploy`).
    pub fn deploy(record: &crate::registry::store::VersionRecord) -> Self {
        Self::new(
            Action::Deploy,
            Target::Plugins,
            format!("deploys {} (sha256 {})", record.id(), record.digest),
        )
        .after(&serde_json::json!({
            "id": record.id(),
            "digest": record.digest,
            "wit": record.wit,
            "signed_by": record.signature.as_ref().map(|s| &s.key),
        }))
    }

    /// A dead letter redriven (over the API or with `dlq redrive`), what it was and what
    /// became of it.
    pub fn redrive(
        letter: Option<&crate::operations::redrive::LetterSummary>,
        redriven: &crate::operations::redrive::Redriven,
    ) -> Self {
        let change = Self::new(
            Action::Redrive,
            Target::Route(redriven.route.clone()),
            redriven.describe(),
        )
        .after(redriven);
        match letter {
            Some(letter) => change.before(letter),
            None => change,
        }
    }
}

/// One entry of the audit trail, as stored on `audit.<scope>.<name>.<action>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    /// When the change was made, RFC 3339 UTC.
    pub at: String,
    /// Who made it: the admin token's name, or the OS user of the CLI.
    pub who: String,
    /// How it was asked for.
    pub via: Via,
    /// What kind of change.
    pub action: Action,
    /// The route it changed; absent for changes to what routes share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// What routes share that it changed (`plugins`, `projection`); absent for a route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// What was done, in a sentence.
    pub what: String,
    /// The state before (a route's binding, a proposal...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The state after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The proposal the change belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
    /// Its sequence in the AUDIT stream, when read from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// Which entries a listing returns.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this route's changes.
    pub route: Option<String>,
    /// Only this kind of change.
    pub action: Option<Action>,
    /// Only changes by this identity.
    pub who: Option<String>,
    /// Only changes made at or after this time.
    pub since: Option<OffsetDateTime>,
    /// The newest this many (at most [`MAX_LIST`]).
    pub limit: usize,
}

/// Reads `since` as an RFC 3339 time (`2026-11-30T06:00:00Z`) or as a time ago (`2h`, `7d`,
/// `30m`), relative to `now`.
pub fn parse_since(text: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let ago = match text.strip_suffix('d') {
        Some(days) => days
            .parse::<u64>()
            .map_err(|e| e.to_string())
            .and_then(|d| {
                d.checked_mul(24 * 3600)
                    .map(Duration::from_secs)
                    .ok_or_else(|| "too many days".to_owned())
            }),
        None => millrace_core::config::parse_duration(text),
    }
    .map_err(|_| {
        format!(
            "`{text}` is neither an RFC 3339 time (e.g. 2026-11-30T06:00:00Z) nor a time ago (e.g. 30m, 2h, 7d)"
        )
    })?;
    // A time ago before the earliest date there is (a read token's `since=99999999d`) is an
    // error, never a panic.
    time::Duration::try_from(ago)
        .ok()
        .and_then(|ago| now.checked_sub(ago))
        .ok_or_else(|| format!("`{text}` reaches back before the earliest time there is"))
}

/// The audit trail of the NATS system a host or the CLI is connected to.
#[derive(Clone)]
pub struct AuditTrail {
    js: jetstream::Context,
    streams: StreamsConfig,
    /// Set once the AUDIT stream is known to exist.
    ensured: Arc<tokio::sync::OnceCell<()>>,
}

impl AuditTrail {
    /// The trail in the AUDIT stream of `config`, reached through `js`. The stream is created
    /// (with `streams.replicas`) at the first append or read.
    pub fn new(js: jetstream::Context, config: &Config) -> Self {
        Self {
            js,
            streams: config.streams.clone(),
            ensured: Arc::default(),
        }
    }

    async fn ensure(&self) -> anyhow::Result<()> {
        self.ensured
            .get_or_try_init(|| async {
                transport::ensure_stream(
                    &self.js,
                    &self.streams.audit,
                    vec![subjects::ALL_AUDIT.to_owned()],
                    &self.streams,
                )
                .await
            })
            .await
            .map(|_| ())
    }

    /// Appends `change` made by `actor`, and returns the entry once JetStream stored it.
    pub async fn record(&self, actor: &Actor, change: Change) -> anyhow::Result<AuditEntry> {
        let (scope, name) = change.target.tokens();
        let subject = subjects::audit(scope, name, change.action.as_str());
        let (route, area) = match &change.target {
            Target::Route(route) => (Some(route.clone()), None),
            other => (None, Some(other.tokens().1.to_owned())),
        };
        let mut entry = AuditEntry {
            at: OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
            who: actor.who.clone(),
            via: actor.via,
            action: change.action,
            route,
            area,
            what: change.what,
            before: change.before,
            after: change.after,
            proposal: change.proposal,
            sequence: None,
        };
        let cannot = || {
            format!(
                "the audit trail (stream {}) cannot record: {}",
                self.streams.audit, entry.what
            )
        };
        self.ensure().await.with_context(cannot)?;
        let payload = serde_json::to_vec(&entry).with_context(cannot)?;
        let max = millrace_transport::max_payload(&self.js.client());
        millrace_transport::fits(None, payload.len(), max)
            .map_err(|too_large| anyhow::anyhow!("the entry is {too_large}"))
            .with_context(cannot)?;
        let ack = self
            .js
            .publish(subject, payload.into())
            .await
            .map_err(anyhow::Error::new)
            .with_context(cannot)?
            .await
            .map_err(anyhow::Error::new)
            .with_context(cannot)?;
        tracing::info!(
            who = entry.who,
            action = entry.action.as_str(),
            route = entry.route,
            "audited: {}",
            entry.what
        );
        entry.sequence = Some(ack.sequence);
        Ok(entry)
    }

    /// The newest entries that `query` selects, oldest first, read within `within`.
    pub async fn list(
        &self,
        query: &AuditQuery,
        within: Duration,
    ) -> anyhow::Result<Vec<AuditEntry>> {
        self.ensure().await.context("cannot open the audit trail")?;
        let limit = query.limit.clamp(1, MAX_LIST);
        let filtered = query.who.is_some() || query.since.is_some();
        let filter =
            subjects::audit_filter(query.route.as_deref(), query.action.map(Action::as_str));
        let messages = reader::tail(
            &self.js,
            &self.streams.audit,
            &filter,
            if filtered { MAX_FILTER_SCAN } else { limit },
            false,
            within,
        )
        .await
        .context("cannot read the audit trail")?;
        let mut entries = Vec::new();
        for message in messages {
            let mut entry: AuditEntry = serde_json::from_slice(&message.payload)
                .with_context(|| format!("an entry on {} does not parse", message.subject))?;
            entry.sequence = message.info().ok().map(|i| i.stream_sequence);
            if query.who.as_ref().is_some_and(|who| *who != entry.who) {
                continue;
            }
            if let Some(since) = query.since {
                let at = OffsetDateTime::parse(&entry.at, &Rfc3339).ok();
                if at.is_none_or(|at| at < since) {
                    continue;
                }
            }
            entries.push(entry);
        }
        let skip = entries.len().saturating_sub(limit);
        Ok(entries.split_off(skip))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_back_as_written() {
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
            assert_eq!(
                serde_json::to_value(action).unwrap(),
                Value::String(action.as_str().into())
            );
        }
        let refused = "delete".parse::<Action>().unwrap_err();
        assert!(
            refused.contains("accepted: deploy, set-version"),
            "{refused}"
        );
    }

    #[test]
    fn since_is_a_time_or_a_time_ago() {
        let now = OffsetDateTime::parse("2026-11-30T12:00:00Z", &Rfc3339).unwrap();
        let at = |t: &str| OffsetDateTime::parse(t, &Rfc3339).unwrap();
        assert_eq!(parse_since("2h", now).unwrap(), at("2026-11-30T10:00:00Z"));
        assert_eq!(parse_since("7d", now).unwrap(), at("2026-11-23T12:00:00Z"));
        assert_eq!(
            parse_since("2026-11-29T00:00:00Z", now).unwrap(),
            at("2026-11-29T00:00:00Z")
        );
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("RFC 3339")
        );
        // Further back than a time can be: an error naming it, never a panic.
        for far in ["99999999d", "18446744073709551615s", "213503982334601d"] {
            let error = parse_since(far, now).unwrap_err();
            assert!(error.contains(far), "{far}: {error}");
        }
    }
}
