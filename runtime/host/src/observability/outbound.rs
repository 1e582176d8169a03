//! The outbound half's Prometheus families and the pending postings they are read from.
//!
//! | metric | labels | what it measures |
//! |---|---|---|
//! | `millrace_outbound_posting_delay_seconds` | site, kind, target | from an event's source time to the target's acknowledgement (the business KPI: how late an ERP books a movement) |
//! | `millrace_outbound_postings_total` | route, target, outcome | requests that ended `posted` or `rejected` |
//! | `millrace_outbound_rejections_total` | target, reason | rejections and render errors, by reason class |
//! | `millrace_outbound_target_retries_total` | target, why | requests tried again: `unreachable`, `try-again`, `rate-limited` |
//! | `millrace_outbound_backlog` | target | postings this host has in hand and not yet acknowledged |
//! | `millrace_outbound_oldest_pending_seconds` | target | age (from source time) of the oldest of them |
//! | `millrace_outbound_held_events` | route | events waiting at the route's gate |
//! | `millrace_outbound_breaker_open` | target | 1 while the target's breaker pauses its routes |

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::family::registered;
use time::OffsetDateTime;

/// Site, kind and target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DelayLabels {
    /// The site.
    pub site: String,
    /// The event kind.
    pub kind: String,
    /// The target.
    pub target: String,
}

/// Route, target and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The outbound route.
    pub route: String,
    /// The target.
    pub target: String,
    /// `posted` or `rejected`.
    pub outcome: String,
}

/// Target and a reason class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The target.
    pub target: String,
    /// The reason class.
    pub reason: String,
}

/// The target alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TargetOnly {
    /// The target.
    pub target: String,
}

/// The route alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutboundRouteOnly {
    /// The outbound route.
    pub route: String,
}

/// The outbound families.
pub struct OutboundMetrics {
    /// Source time to acknowledgement.
    pub posting_delay_seconds: Family<DelayLabels, Histogram, fn() -> Histogram>,
    /// Requests posted or rejected.
    pub postings: Family<OutcomeLabels, Counter>,
    /// Rejections by reason class.
    pub rejections: Family<ReasonLabels, Counter>,
    /// Requests tried again.
    pub retries: Family<ReasonLabels, Counter>,
    /// Postings in hand.
    pub backlog: Family<TargetOnly, Gauge>,
    /// The oldest posting in hand, seconds since its source time.
    pub oldest_pending_seconds: Family<TargetOnly, Gauge>,
    /// Events held at a gate.
    pub held_events: Family<OutboundRouteOnly, Gauge>,
    /// 1 while a target's breaker is open.
    pub breaker_open: Family<TargetOnly, Gauge>,
    pending: Mutex<BTreeMap<(String, String), OffsetDateTime>>,
}

/// Source time to acknowledgement: 10 ms to about 12 days.
fn delay_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 3.0, 20))
}

impl OutboundMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        Self {
            posting_delay_seconds: registered(
                registry,
                "outbound_posting_delay_seconds",
                "From an event's source time to the target's acknowledgement",
                Family::new_with_constructor(delay_buckets),
            ),
            postings: registered(
                registry,
                "outbound_postings",
                "Outbound requests that ended posted or rejected",
                Family::default(),
            ),
            rejections: registered(
                registry,
                "outbound_rejections",
                "Outbound rejections and render errors, by reason class",
                Family::default(),
            ),
            retries: registered(
                registry,
                "outbound_target_retries",
                "Outbound requests tried again, by why",
                Family::default(),
            ),
            backlog: registered(
                registry,
                "outbound_backlog",
                "Postings a host has in hand and not yet acknowledged, per target",
                Family::default(),
            ),
            oldest_pending_seconds: registered(
                registry,
                "outbound_oldest_pending_seconds",
                "Age since source time of the oldest posting in hand, per target",
                Family::default(),
            ),
            held_events: registered(
                registry,
                "outbound_held_events",
                "Events waiting at an outbound route's gate",
                Family::default(),
            ),
            breaker_open: registered(
                registry,
                "outbound_breaker_open",
                "1 while a target's breaker pauses the routes posting to it",
                Family::default(),
            ),
            pending: Mutex::default(),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), OffsetDateTime>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A posting of event `id` to `target` is in hand, its event from `source_time`.
    pub fn pending_started(&self, target: &str, id: &str, source_time: OffsetDateTime) {
        self.pending()
            .insert((target.to_owned(), id.to_owned()), source_time);
        self.refresh(target);
    }

    /// The posting of event `id` to `target` left the host's hands (acknowledged, rejected, or
    /// left to redelivery).
    pub fn pending_ended(&self, target: &str, id: &str) {
        self.pending().remove(&(target.to_owned(), id.to_owned()));
        self.refresh(target);
    }

    /// Recomputes `target`'s backlog and oldest pending age.
    pub fn refresh(&self, target: &str) {
        let pending = self.pending();
        let of_target = pending.iter().filter(|((t, _), _)| t == target);
        let (count, oldest) = of_target
            .fold((0i64, None::<OffsetDateTime>), |(n, old), (_, at)| {
                (n + 1, Some(old.map_or(*at, |o| o.min(*at))))
            });
        let labels = TargetOnly {
            target: target.to_owned(),
        };
        self.backlog.get_or_create(&labels).set(count);
        let age = oldest.map_or(0, |at| (OffsetDateTime::now_utc() - at).whole_seconds());
        self.oldest_pending_seconds
            .get_or_create(&labels)
            .set(age.max(0));
    }

    /// Recomputes the oldest pending age of every target with postings in hand: it grows while
    /// nothing starts or ends (a target down), so it is recomputed whenever it is read.
    pub fn refresh_ages(&self) {
        for target in self.backlog_by_target().keys() {
            self.refresh(target);
        }
    }

    /// The targets with postings in hand, and how many each.
    pub fn backlog_by_target(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (target, _) in self.pending().keys() {
            *out.entry(target.clone()).or_insert(0) += 1;
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The oldest pending age grows while a target is down and nothing starts or ends: read
    /// at its age of when the posting was taken in hand, an alert on it never fired.
    #[test]
    fn the_oldest_pending_age_is_as_of_when_it_is_read() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = OutboundMetrics::register(&mut registry);
        let now = OffsetDateTime::now_utc();
        metrics.pending_started("erp", "e1", now - time::Duration::seconds(10));
        let erp = TargetOnly {
            target: "erp".into(),
        };
        let age = || metrics.oldest_pending_seconds.get_or_create(&erp).get();
        assert!((10..=11).contains(&age()));
        // An hour passes with the posting still in hand.
        metrics.pending().insert(
            ("erp".into(), "e1".into()),
            now - time::Duration::seconds(3610),
        );
        metrics.refresh_ages();
        assert!((3610..=3611).contains(&age()), "{}", age());
        metrics.pending_ended("erp", "e1");
        assert_eq!(age(), 0);
    }
}
