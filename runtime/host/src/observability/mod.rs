//! What a host tells about itself: Prometheus metrics, the figures of the console and
//! `millrace status`, and trace spans. The flow reports to one [`Observer`], which keeps the
//! metrics and the figures in step.
//!
//! Sites and partners come from data (subjects of raw messages, events' site codes), so their
//! series are capped: the first [`MAX_SITES`] sites and [`MAX_PARTNERS`] partners seen keep
//! their own series, every later one is counted under [`OTHER`].

mod family;
pub mod figures;
pub mod metrics;
pub mod outbound;
pub mod server_watch;
pub mod trace;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;

use crate::routes::Serving;
use figures::{Figures, FiguresSnapshot};
use metrics::{
    ConsumerLabels, EventLabels, FailureLabels, Metrics, PostingLabels, RouteLabels, RouteOnly,
    SiteFailureLabels, VersionLabels,
};
use millrace_core::canonical::MappedEvent;
use millrace_core::rules::Failure;

/// Where a message is counted: its route and the plugin version that mapped it.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// The route.
    pub route: &'a str,
    /// `name@version` of the plugin.
    pub plugin_version: &'a str,
}

impl At<'_> {
    fn labels(&self) -> RouteLabels {
        RouteLabels {
            route: self.route.to_owned(),
            plugin_version: self.plugin_version.to_owned(),
        }
    }

    fn event(&self, kind: &str) -> EventLabels {
        EventLabels {
            route: self.route.to_owned(),
            plugin_version: self.plugin_version.to_owned(),
            kind: kind.to_owned(),
        }
    }

    fn failure(&self, reason: &str) -> FailureLabels {
        FailureLabels {
            route: self.route.to_owned(),
            plugin_version: self.plugin_version.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Most sites with their own series; later ones count under [`OTHER`].
pub const MAX_SITES: usize = 64;

/// Most trading partners with their own series; later ones count under [`OTHER`].
pub const MAX_PARTNERS: usize = 64;

/// The label of every site or partner past the cap.
pub const OTHER: &str = "other";

/// The site and partner labels given out so far.
#[derive(Default)]
struct Labels {
    sites: BTreeSet<String>,
    partners: BTreeSet<String>,
}

/// `value` when it already has a series or there is room for one, else [`OTHER`].
fn capped(seen: &mut BTreeSet<String>, value: &str, max: usize) -> String {
    if seen.contains(value) {
        return value.to_owned();
    }
    if seen.len() < max {
        seen.insert(value.to_owned());
        return value.to_owned();
    }
    OTHER.to_owned()
}

/// One host's metrics and figures.
pub struct Observer {
    /// The Prometheus families.
    pub metrics: Metrics,
    figures: Mutex<Figures>,
    labels: Mutex<Labels>,
    serving: Mutex<BTreeMap<String, Vec<VersionLabels>>>,
    /// Routes whose last pull failed, with the server's answer: not consuming.
    pull_failures: Mutex<BTreeMap<String, String>>,
    started: Instant,
}

impl Default for Observer {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer {
    /// Nothing counted yet.
    pub fn new() -> Self {
        Self {
            metrics: Metrics::new(),
            figures: Mutex::new(Figures::default()),
            labels: Mutex::default(),
            serving: Mutex::default(),
            pull_failures: Mutex::default(),
            started: Instant::now(),
        }
    }

    /// Notes whether `route`'s last pull of its consumer worked (`None`) or what the server
    /// answered (a stream without quorum, a consumer that is gone): the host is not ready
    /// while any route cannot pull.
    pub fn pulled(&self, route: &str, failure: Option<String>) {
        let mut failures = self
            .pull_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match failure {
            Some(reason) => {
                failures.insert(route.to_owned(), reason);
            }
            None => {
                failures.remove(route);
            }
        }
    }

    /// The routes whose last pull failed, with why: `/readyz` answers 503 while there is one.
    pub fn pull_failures(&self) -> Vec<(String, String)> {
        self.pull_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(route, reason)| (route.clone(), reason.clone()))
            .collect()
    }

    fn figures(&self) -> std::sync::MutexGuard<'_, Figures> {
        // The figures are plain counters: a panic elsewhere leaves them usable.
        self.figures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn labels(&self) -> std::sync::MutexGuard<'_, Labels> {
        self.labels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The label of `site`, capped.
    fn site(&self, site: &str) -> String {
        capped(&mut self.labels().sites, site, MAX_SITES)
    }

    /// The label of `partner`, capped.
    fn partner(&self, partner: &str) -> String {
        capped(&mut self.labels().partners, partner, MAX_PARTNERS)
    }

    /// A raw message was taken in.
    pub fn message_in(&self, at: At<'_>) {
        self.metrics.messages.get_or_create(&at.labels()).inc();
        self.figures().message_in(at.route, unix_seconds());
    }

    /// A plugin call ended, after `took`.
    pub fn plugin_call(&self, at: At<'_>, took: Duration, failure: Option<&Failure>) {
        self.metrics
            .plugin_call_seconds
            .get_or_create(&at.labels())
            .observe(took.as_secs_f64());
        if let Some(failure) = failure {
            self.plugin_failed(at, failure);
        }
    }

    /// A plugin's output failed the host's checks after its call ended (an acknowledger's
    /// document over the server's message size, a partner that changed between its calls).
    pub fn plugin_failed(&self, at: At<'_>, failure: &Failure) {
        self.metrics
            .plugin_failures
            .get_or_create(&at.failure(failure.class()))
            .inc();
        self.figures().route(at.route).plugin_failures += 1;
    }

    /// A failed call is tried again.
    pub fn retry(&self, at: At<'_>) {
        self.metrics.retries.get_or_create(&at.labels()).inc();
        self.figures().route(at.route).retries += 1;
    }

    /// Events were stored on CANONICAL; `late` says which were flagged late.
    pub fn published<'e>(
        &self,
        at: At<'_>,
        events: impl IntoIterator<Item = (&'e MappedEvent, bool)>,
    ) {
        let now = OffsetDateTime::now_utc();
        let events: Vec<_> = events
            .into_iter()
            .map(|(event, late)| (event, late, self.site(&event.site)))
            .collect();
        let mut figures = self.figures();
        for (event, late, site) in events {
            let kind = event.data.kind();
            self.metrics.events.get_or_create(&at.event(kind)).inc();
            figures.route(at.route).events += 1;
            if late {
                self.metrics
                    .late_events
                    .get_or_create(&at.event(kind))
                    .inc();
                figures.route(at.route).late_events += 1;
            }
            let delay = source_delay(&event.occurred_at, now);
            self.metrics
                .posting_delay_seconds
                .get_or_create(&PostingLabels {
                    kind: kind.to_owned(),
                    site: site.clone(),
                })
                .observe(delay);
            figures.posting(&site, delay, late);
        }
    }

    /// Events were dropped as duplicates of an already delivered source transaction.
    pub fn duplicates(&self, at: At<'_>, count: usize) {
        if count == 0 {
            return;
        }
        self.metrics
            .duplicates_dropped
            .get_or_create(&at.labels())
            .inc_by(count as u64);
        self.figures().route(at.route).duplicates_dropped += count as u64;
    }

    /// A raw message was not shadowed (`at` names the candidate): the route's shadow runs
    /// were all in flight.
    pub fn shadow_skipped(&self, at: At<'_>) {
        self.metrics
            .shadows_skipped
            .get_or_create(&at.labels())
            .inc();
    }

    /// A raw message of `route` was left to redelivery after a host failure.
    pub fn host_failure(&self, route: &str) {
        self.metrics
            .host_failures
            .get_or_create(&metrics::RouteOnly {
                route: route.to_owned(),
            })
            .inc();
    }

    /// A raw message was dead-lettered.
    pub fn dead_lettered(&self, at: At<'_>, failure: &Failure, site: &str, partner: &str) {
        let reason = failure.class();
        let (site, partner) = (self.site(site), self.partner(partner));
        let (site, partner) = (site.as_str(), partner.as_str());
        self.metrics
            .dead_letters
            .get_or_create(&at.failure(reason))
            .inc();
        self.metrics
            .site_failures
            .get_or_create(&SiteFailureLabels {
                site: site.to_owned(),
                partner: partner.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
        self.figures()
            .dead_letter(at.route, site, partner, reason, unix_seconds());
    }

    /// A raw message is done (its events or dead letter stored), `stored_at` being when
    /// JetStream stored it.
    pub fn finished(&self, route: &str, stored_at: Option<OffsetDateTime>) {
        if let Some(stored_at) = stored_at {
            let took = (OffsetDateTime::now_utc() - stored_at)
                .as_seconds_f64()
                .max(0.0);
            self.metrics
                .end_to_end_seconds
                .get_or_create(&RouteOnly {
                    route: route.to_owned(),
                })
                .observe(took);
        }
    }

    /// The consumer of `subject` on `route` has `pending` messages waiting.
    pub fn pending(&self, route: &str, subject: &str, pending: u64) {
        self.metrics
            .consumer_pending
            .get_or_create(&ConsumerLabels {
                route: route.to_owned(),
                subject: subject.to_owned(),
            })
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// The route's consumers have `pending` messages waiting in all.
    pub fn route_pending(&self, route: &str, pending: u64) {
        self.figures().route(route).pending = pending;
    }

    /// The versions `route` serves now, with their roles.
    pub fn serving(&self, route: &str, versions: &[Serving]) {
        let mut serving = self
            .serving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let family = &self.metrics.route_versions;
        for old in serving.remove(route).unwrap_or_default() {
            family.remove(&old);
        }
        let now: Vec<VersionLabels> = versions
            .iter()
            .map(|serving| VersionLabels {
                route: route.to_owned(),
                plugin_version: serving.version.clone(),
                role: serving.role.to_owned(),
            })
            .collect();
        for labels in &now {
            family.get_or_create(labels).set(1);
        }
        serving.insert(route.to_owned(), now);
    }

    /// The figures now.
    pub fn snapshot(&self) -> FiguresSnapshot {
        self.figures()
            .snapshot(unix_seconds(), self.started.elapsed().as_secs())
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds from an event's source time to `now`; 0 for a time in the future or one that does
/// not parse (validation has checked it before publish).
fn source_delay(occurred_at: &str, now: OffsetDateTime) -> f64 {
    OffsetDateTime::parse(occurred_at, &time::format_description::well_known::Rfc3339)
        .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sites_past_the_cap_share_one_series() {
        let observer = Observer::new();
        for n in 0..(MAX_SITES + 10) {
            assert_eq!(
                observer.site(&format!("S{n}")),
                if n < MAX_SITES {
                    format!("S{n}")
                } else {
                    OTHER.to_owned()
                }
            );
        }
        assert_eq!(observer.site("S0"), "S0", "a known site keeps its series");
    }
}
