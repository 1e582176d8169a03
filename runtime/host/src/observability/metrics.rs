//! The Prometheus metrics of a host, served at `/metrics` by the admin server.
//!
//! | metric | labels | what it counts |
//! |---|---|---|
//! | `millrace_messages_total` | route, plugin_version | raw messages taken in |
//! | `millrace_events_total` | route, plugin_version, kind | canonical events published |
//! | `millrace_plugin_failures_total` | route, plugin_version, reason | failed plugin calls (every attempt): `map-error`, `trap`, `deadline`, `memory-limit`, `output-limit`, `invalid-event`, `not-owner`, `instantiate` |
//! | `millrace_retries_total` | route, plugin_version | calls tried again after a trap or breached limit |
//! | `millrace_dead_letters_total` | route, plugin_version, reason | raw messages dead-lettered (the failure reasons, and `undeliverable`) |
//! | `millrace_late_events_total` | route, plugin_version, kind | events published flagged late |
//! | `millrace_duplicates_dropped_total` | route, plugin_version | events not published: their source transaction was already delivered, or CANONICAL already held them (a message redelivered after its events were stored) |
//! | `millrace_shadows_skipped_total` | route, plugin_version (the candidate) | raw messages a shadow candidate was not run on: the route's shadow runs were all in flight |
//! | `millrace_host_failures_total` | route | raw messages left to redelivery after a host failure (their events not stored: a stream full or without a leader, a bucket not answering), each time |
//! | `millrace_plugin_call_seconds` | route, plugin_version | one plugin call, from handing it to the worker pool to its checked result |
//! | `millrace_end_to_end_seconds` | route | from the raw message stored by JetStream to its events stored |
//! | `millrace_consumer_pending_messages` | route, subject | raw messages not yet delivered to the host (consumer lag) |
//! | `millrace_posting_delay_seconds` | kind, site | from the event's source time to its canonical publish |
//! | `millrace_site_failures_total` | site, partner, reason | dead letters by site and trading partner |
//! | `millrace_route_version_info` | route, plugin_version, role | 1 for the version a route serves (`active`, `canary`, `shadow`) |
//!
//! The outbound half's families (`millrace_outbound_*`) are tabled in `outbound.rs`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::family::registered;

/// Route and plugin version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route.
    pub route: String,
    /// `name@version` of the plugin.
    pub plugin_version: String,
}

/// Route, plugin version and event kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EventLabels {
    /// The route.
    pub route: String,
    /// `name@version` of the plugin.
    pub plugin_version: String,
    /// The canonical event kind.
    pub kind: String,
}

/// Route, plugin version and failure reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FailureLabels {
    /// The route.
    pub route: String,
    /// `name@version` of the plugin.
    pub plugin_version: String,
    /// The failure class (see the module table).
    pub reason: String,
}

/// The route alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteOnly {
    /// The route.
    pub route: String,
}

/// A route's consumer of one raw subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ConsumerLabels {
    /// The route.
    pub route: String,
    /// The raw subject (filter) the consumer reads.
    pub subject: String,
}

/// Event kind and site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PostingLabels {
    /// The canonical event kind.
    pub kind: String,
    /// The site code of the event.
    pub site: String,
}

/// Site, trading partner and failure reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SiteFailureLabels {
    /// The site (the route's `site` setting, else the raw subject's site token).
    pub site: String,
    /// The trading partner (the route's `partner` setting, else its source system).
    pub partner: String,
    /// The failure class.
    pub reason: String,
}

/// Which version a route serves, and as what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct VersionLabels {
    /// The route.
    pub route: String,
    /// `name@version` of the plugin.
    pub plugin_version: String,
    /// `active`, `canary` or `shadow`.
    pub role: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Plugin calls: 100 µs to about 6.5 s.
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Message and posting latencies: 1 ms to about 9 hours (source systems post late).
fn delay_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 3.0, 20))
}

/// Every metric family of a host.
pub struct Metrics {
    registry: Registry,
    /// The outbound half's families.
    pub outbound: super::outbound::OutboundMetrics,
    /// Raw messages taken in.
    pub messages: Family<RouteLabels, Counter>,
    /// Canonical events published.
    pub events: Family<EventLabels, Counter>,
    /// Failed plugin calls.
    pub plugin_failures: Family<FailureLabels, Counter>,
    /// Calls tried again.
    pub retries: Family<RouteLabels, Counter>,
    /// Raw messages dead-lettered.
    pub dead_letters: Family<FailureLabels, Counter>,
    /// Late events.
    pub late_events: Family<EventLabels, Counter>,
    /// Events dropped as duplicates of a delivered source transaction.
    pub duplicates_dropped: Family<RouteLabels, Counter>,
    /// Messages not shadowed: the route's shadow runs were all in flight.
    pub shadows_skipped: Family<RouteLabels, Counter>,
    /// Raw messages left to redelivery after a host failure.
    pub host_failures: Family<RouteOnly, Counter>,
    /// Plugin call latency.
    pub plugin_call_seconds: Histograms<RouteLabels>,
    /// Raw stored to events stored.
    pub end_to_end_seconds: Histograms<RouteOnly>,
    /// Consumer lag.
    pub consumer_pending: Family<ConsumerLabels, Gauge>,
    /// Source time to canonical publish.
    pub posting_delay_seconds: Histograms<PostingLabels>,
    /// Dead letters by site and partner.
    pub site_failures: Family<SiteFailureLabels, Counter>,
    /// The versions routes serve.
    pub route_versions: Family<VersionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("millrace");
        Self {
            messages: registered(
                &mut registry,
                "messages",
                "Raw messages taken in",
                Family::default(),
            ),
            events: registered(
                &mut registry,
                "events",
                "Canonical events published",
                Family::default(),
            ),
            plugin_failures: registered(
                &mut registry,
                "plugin_failures",
                "Failed plugin calls, every attempt, by reason",
                Family::default(),
            ),
            retries: registered(
                &mut registry,
                "retries",
                "Plugin calls tried again after a trap or a breached limit",
                Family::default(),
            ),
            dead_letters: registered(
                &mut registry,
                "dead_letters",
                "Raw messages dead-lettered, by reason",
                Family::default(),
            ),
            late_events: registered(
                &mut registry,
                "late_events",
                "Events published flagged late (older than the newest for their key)",
                Family::default(),
            ),
            duplicates_dropped: registered(
                &mut registry,
                "duplicates_dropped",
                "Events not published because their source transaction was already delivered, or CANONICAL already held them",
                Family::default(),
            ),
            shadows_skipped: registered(
                &mut registry,
                "shadows_skipped",
                "Raw messages a shadow candidate was not run on: the route's shadow runs were all in flight",
                Family::default(),
            ),
            host_failures: registered(
                &mut registry,
                "host_failures",
                "Raw messages left to redelivery after a host failure (their events not stored), each time",
                Family::default(),
            ),
            plugin_call_seconds: registered(
                &mut registry,
                "plugin_call_seconds",
                "One plugin call, from the worker pool queue to its checked result",
                Family::new_with_constructor(call_buckets),
            ),
            end_to_end_seconds: registered(
                &mut registry,
                "end_to_end_seconds",
                "From the raw message stored by JetStream to its events (or dead letter) stored",
                Family::new_with_constructor(delay_buckets),
            ),
            consumer_pending: registered(
                &mut registry,
                "consumer_pending_messages",
                "Raw messages not yet delivered to the host, per route consumer",
                Family::default(),
            ),
            posting_delay_seconds: registered(
                &mut registry,
                "posting_delay_seconds",
                "From an event's source time to its canonical publish",
                Family::new_with_constructor(delay_buckets),
            ),
            site_failures: registered(
                &mut registry,
                "site_failures",
                "Dead letters by site and trading partner",
                Family::default(),
            ),
            route_versions: registered(
                &mut registry,
                "route_version_info",
                "1 for each plugin version a route serves, by role",
                Family::default(),
            ),
            // Registered last: the outbound families follow the inbound ones on /metrics.
            outbound: super::outbound::OutboundMetrics::register(&mut registry),
            registry,
        }
    }

    /// The OpenMetrics text exposition, with the ages of pending postings as of now.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        self.outbound.refresh_ages();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A family registered by `registered` is the one the host counts in: its samples reach
    /// `/metrics` under its name and help text, the inbound families before the outbound ones.
    #[test]
    fn counts_reach_the_registered_families() {
        let metrics = Metrics::new();
        let route = RouteLabels {
            route: "mes".into(),
            plugin_version: "mes-shift-report@1.0.0".into(),
        };
        metrics.messages.get_or_create(&route).inc();
        metrics.retries.get_or_create(&route).inc_by(2);
        let target = super::super::outbound::TargetOnly {
            target: "erp".into(),
        };
        metrics.outbound.breaker_open.get_or_create(&target).set(1);
        let text = metrics.encode().unwrap();
        let families: Vec<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            families,
            [
                "millrace_messages counter",
                "millrace_retries counter",
                "millrace_outbound_breaker_open gauge"
            ]
        );
        for line in [
            "# HELP millrace_messages Raw messages taken in.",
            "millrace_messages_total{route=\"mes\",plugin_version=\"mes-shift-report@1.0.0\"} 1",
            "millrace_retries_total{route=\"mes\",plugin_version=\"mes-shift-report@1.0.0\"} 2",
            "# HELP millrace_outbound_breaker_open 1 while a target's breaker pauses the routes posting to it.",
            "millrace_outbound_breaker_open{target=\"erp\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }
}
