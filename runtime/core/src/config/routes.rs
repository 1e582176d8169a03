//! `[routes.<name>]`: which raw subjects a route consumes, the plugin that maps them, and the
//! sandbox limits, retries and ordering of its calls.
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `routes.<name>.subjects` | raw subjects the route consumes (wildcards allowed), each within `streams.raw_subjects` | required |
//! | `routes.<name>.plugin` | plugin folder, `.wasm` component or deployed `name@version` | required |
//! | `routes.<name>.config` | string key/values the plugin reads (site, partner...) | empty |
//! | `routes.<name>.limits.deadline` | longest a single plugin call may run | `2s` |
//! | `routes.<name>.limits.memory_mib` | largest linear memory of the plugin | 64 |
//! | `routes.<name>.limits.output_kib` | largest total output of one call | 1024 |
//! | `routes.<name>.limits.max_events` | most events one call may return | 1000 |
//! | `routes.<name>.limits.max_ahead` | how far after the host's clock an event's `occurred_at` may be (clock skew, time zones, documents dated ahead); an event dated later is invalid | `24h` |
//! | `routes.<name>.limits.instances`, `.tables`, `.table_elements` | component instances, tables and table size a plugin may create | 64, 64, 100000 |
//! | `routes.<name>.retry.attempts` | tries for a trap, deadline or memory breach before dead-lettering | 3 |
//! | `routes.<name>.retry.backoff` | wait before the first retry, doubled each time | `200ms` |
//! | `routes.<name>.ack_wait` | how long JetStream waits for an ack before redelivering | `30s` |
//! | `routes.<name>.max_deliveries` | deliveries of one raw message without an outcome after which JetStream gives up on it and a host dead-letters it (`undeliverable`): a message the NATS client cannot read (its headers), or one the host failed on every time (host failures are redelivered after 1 s, doubling to at most 60 s: 20 deliveries are about 14 minutes of them) | 20 |
//! | `routes.<name>.ordering` | `flag`: mark an event older than the last one of its key late; `off` | `flag` |
//! | `routes.<name>.idempotency` | skip events whose source transaction another raw message already delivered | `true` |
//! | `routes.<name>.acknowledger` | acknowledger plugin (folder, `.wasm` or deployed `name@version`) that answers each raw interchange with an X12 997 or EDIFACT CONTRL on `ack.<route>.<partner>` | none |

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{
    HumanDuration, Invalid, check_range, check_subjects, is_token, plain_duration,
    plain_duration_opt,
};

/// One route: raw subjects, the plugin that maps them, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The raw subjects this route consumes; NATS wildcards allowed.
    pub subjects: Vec<String>,
    /// The plugin folder (built on demand) or a `.wasm` component file.
    pub plugin: PathBuf,
    /// Key/values the plugin reads through the `host` interface.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Sandbox limits, retries and redelivery delay of its calls (`limits`, `retry`,
    /// `ack_wait`, written at the route's level).
    #[serde(flatten)]
    pub calls: CallSettings,
    /// How events older than the last one of their business key are treated.
    #[serde(default)]
    pub ordering: Ordering,
    /// Whether events of a source transaction already delivered by another raw message are
    /// skipped (the resend of the same document with a new message id).
    #[serde(default = "default_idempotency")]
    pub idempotency: bool,
    /// The acknowledger plugin that answers each raw interchange for the trading partner
    /// (docs/OUTBOUND.md, "EDI functional acknowledgements"); none: no acknowledgements.
    #[serde(default)]
    pub acknowledger: Option<PathBuf>,
    /// Deliveries of one raw message without an outcome (no ack) after which JetStream gives
    /// up on it, and a host dead-letters it as `undeliverable`.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
}

fn default_max_deliveries() -> u32 {
    20
}

// A route has required keys, so it has no `Default`: its plain setting names its own here.
fn default_idempotency() -> bool {
    true
}

/// How a route's plugin calls run, inbound (`[routes.<name>]`) and outbound
/// (`[outbound.<name>]`) alike: the sandbox limits of each call, the retries of traps and
/// breached limits, and how long JetStream waits for an ack before it redelivers. Both route
/// sections flatten it, so its keys sit at the route's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CallSettings {
    /// Sandbox limits of each call.
    pub limits: Limits,
    /// What to do when a call traps or breaches a limit.
    pub retry: RetryPolicy,
    /// How long JetStream waits for an ack before it redelivers.
    pub ack_wait: HumanDuration,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            ack_wait: HumanDuration::from_secs(30),
        }
    }
}

impl CallSettings {
    /// The first key under `route` (e.g. `routes.mes`) that is wrong, with what is accepted.
    pub(super) fn check(&self, route: &str) -> Result<(), Invalid> {
        let key = |k: &str| format!("{route}.{k}");
        self.limits
            .check()
            .map_err(|e| Invalid::new(key(&e.key), e.message))?;
        check_range(key("retry.attempts"), self.retry.attempts, 1..=100)?;
        if self.ack_wait < HumanDuration::from_secs(1) {
            return Err(Invalid::new(key("ack_wait"), "must be at least 1s"));
        }
        Ok(())
    }
}

impl RouteConfig {
    /// The route's plugin: `name@version` names a deployed version, anything else is a path.
    pub fn plugin_source(&self) -> PluginSource {
        plugin_source(&self.plugin)
    }

    /// The route's acknowledger, when it names one: a deployed version or a path.
    pub fn acknowledger_source(&self) -> Option<PluginSource> {
        self.acknowledger.as_deref().map(plugin_source)
    }

    /// The first key of route `name` that is wrong, with what is accepted.
    pub(super) fn check(&self, name: &str) -> Result<(), Invalid> {
        check_route_name_and_subjects(
            "routes",
            name,
            &self.subjects,
            "needs at least one raw subject",
        )?;
        check_range(
            format!("routes.{name}.max_deliveries"),
            self.max_deliveries,
            2..=10_000,
        )?;
        self.calls.check(&format!("routes.{name}"))
    }
}

/// The checks a route of `section` (`routes` or `outbound`) starts with: its name is a token
/// and it lists at least one subject (`missing` says which kind), each a valid subject.
pub(super) fn check_route_name_and_subjects(
    section: &str,
    name: &str,
    subjects: &[String],
    missing: &str,
) -> Result<(), Invalid> {
    if !is_token(name) {
        return Err(Invalid::new(
            format!("{section}.{name}"),
            "route names may hold only letters, digits, `-` and `_`",
        ));
    }
    let key = format!("{section}.{name}.subjects");
    if subjects.is_empty() {
        return Err(Invalid::new(key, missing));
    }
    check_subjects(&key, subjects, true)?;
    // The route's one consumer filters on all of them, and nats-server refuses filters one of
    // which covers another (at start, with a message that points elsewhere).
    for (i, a) in subjects.iter().enumerate() {
        if let Some(b) = subjects[i + 1..]
            .iter()
            .find(|b| crate::subjects::covers(a, b) || crate::subjects::covers(b, a))
        {
            let message = if a == b {
                format!("lists {a:?} twice")
            } else {
                format!(
                    "has {a:?} and {b:?}, one of which covers the other (every subject of the \
                     narrower matches the wider): list the wider one alone"
                )
            };
            return Err(Invalid::new(key, message));
        }
    }
    Ok(())
}

/// Where the plugin written `plugin` comes from: `name@version` names a deployed version,
/// anything else is a path.
pub(super) fn plugin_source(plugin: &std::path::Path) -> PluginSource {
    let text = plugin.to_string_lossy();
    match text.split_once('@') {
        Some((name, version))
            if !text.contains('/')
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && version.split('.').count() >= 3 =>
        {
            PluginSource::Registry(text.into_owned())
        }
        _ => PluginSource::Path(plugin.to_owned()),
    }
}

/// Where a route's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A deployed version in the registry, `name@version`.
    Registry(String),
    /// A plugin folder or `.wasm` component on disk.
    Path(PathBuf),
}

/// How a route treats an event older than the last one published for its business key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ordering {
    /// Publish it marked `late` (a CloudEvents extension), and count it.
    #[default]
    Flag,
    /// Do not track order.
    Off,
}

/// Sandbox limits of one plugin call.
///
/// The deadline is a plain [`Duration`]: the sandbox and tools build limits in code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest a single call may run before it is interrupted.
    #[serde(deserialize_with = "plain_duration")]
    pub deadline: Duration,
    /// Largest linear memory, in MiB.
    pub memory_mib: u64,
    /// Largest total size of the events one call returns, in KiB.
    pub output_kib: u64,
    /// Most events one call may return.
    pub max_events: usize,
    /// How far after the host's clock an event's `occurred_at` may be: one dated later (a
    /// source clock set wrong, a two-digit year read as the wrong century) would make every
    /// later event of its key look late and freeze its record in the projection.
    #[serde(deserialize_with = "plain_duration")]
    pub max_ahead: Duration,
    /// Most component instances the plugin may create.
    pub instances: usize,
    /// Most tables the plugin may create.
    pub tables: usize,
    /// Most elements one table may grow to.
    pub table_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(2),
            memory_mib: 64,
            output_kib: 1024,
            max_events: 1000,
            max_ahead: Duration::from_secs(24 * 3600),
            instances: 64,
            tables: 64,
            table_elements: 100_000,
        }
    }
}

impl Limits {
    /// These limits tightened by a plugin's own (each the smaller of the two).
    pub fn tightened(&self, plugin: &PluginLimits) -> Limits {
        fn min<T: Ord + Copy>(route: T, plugin: Option<T>) -> T {
            plugin.map_or(route, |p| route.min(p))
        }
        Limits {
            deadline: min(self.deadline, plugin.deadline),
            memory_mib: min(self.memory_mib, plugin.memory_mib),
            output_kib: min(self.output_kib, plugin.output_kib),
            max_events: min(self.max_events, plugin.max_events),
            max_ahead: self.max_ahead,
            instances: min(self.instances, plugin.instances),
            tables: min(self.tables, plugin.tables),
            table_elements: min(self.table_elements, plugin.table_elements),
        }
    }

    /// The first key under `limits.` that is wrong, with what is accepted.
    pub(super) fn check(&self) -> Result<(), Invalid> {
        if self.deadline < Duration::from_millis(1) || self.deadline > Duration::from_secs(60) {
            return Err(Invalid::new(
                "limits.deadline",
                "must be between 1ms and 60s",
            ));
        }
        check_range("limits.memory_mib", self.memory_mib, 1..=4096)?;
        check_range("limits.output_kib", self.output_kib, 1..=1024 * 1024)?;
        check_range("limits.max_events", self.max_events, 1..=1_000_000)?;
        if self.max_ahead < Duration::from_secs(1)
            || self.max_ahead > Duration::from_secs(8784 * 3600)
        {
            return Err(Invalid::new(
                "limits.max_ahead",
                "must be between 1s and 8784h (a year)",
            ));
        }
        check_range("limits.instances", self.instances, 1..=1_000)?;
        check_range("limits.tables", self.tables, 1..=1_000)?;
        check_range("limits.table_elements", self.table_elements, 1..=10_000_000)
    }
}

/// The limits a plugin's manifest asks for (`[limits]` in plugin.toml): a route never gives a
/// plugin more than it asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// See [`Limits::deadline`].
    #[serde(deserialize_with = "plain_duration_opt")]
    pub deadline: Option<Duration>,
    /// See [`Limits::memory_mib`].
    pub memory_mib: Option<u64>,
    /// See [`Limits::output_kib`].
    pub output_kib: Option<u64>,
    /// See [`Limits::max_events`].
    pub max_events: Option<usize>,
    /// See [`Limits::instances`].
    pub instances: Option<usize>,
    /// See [`Limits::tables`].
    pub tables: Option<usize>,
    /// See [`Limits::table_elements`].
    pub table_elements: Option<usize>,
}

/// Retries of calls that trapped, ran past the deadline or breached the memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: HumanDuration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: HumanDuration::from_millis(200),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_never_gets_more_than_it_asks_for() {
        let route = Limits::default();
        let plugin = PluginLimits {
            deadline: Some(Duration::from_millis(50)),
            memory_mib: Some(512),
            ..PluginLimits::default()
        };
        let effective = route.tightened(&plugin);
        assert_eq!(effective.deadline, Duration::from_millis(50));
        assert_eq!(
            effective.memory_mib, route.memory_mib,
            "the route's cap still holds"
        );
        assert_eq!(effective.max_events, route.max_events);
    }
}
