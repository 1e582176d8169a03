//! The figures the console and `millrace status` show: totals and the last minute per route,
//! posting delay and exceptions per site. Prometheus keeps the full series; these are the
//! few numbers a person reads, kept beside them by the same calls.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One second's counts, for the last-minute rates.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    second: u64,
    messages: u64,
    dead_letters: u64,
}

/// The last 60 seconds of a route, one slot per second.
#[derive(Debug, Clone, Default)]
struct Window {
    slots: Vec<Slot>,
}

impl Window {
    const SECONDS: u64 = 60;

    fn slot(&mut self, now: u64) -> &mut Slot {
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); Self::SECONDS as usize];
        }
        let slot = &mut self.slots[(now % Self::SECONDS) as usize];
        if slot.second != now {
            *slot = Slot {
                second: now,
                ..Slot::default()
            };
        }
        slot
    }

    fn last_minute(&self, now: u64) -> (u64, u64) {
        self.slots
            .iter()
            .filter(|s| s.second + Self::SECONDS > now && s.second <= now)
            .fold((0, 0), |(m, d), s| (m + s.messages, d + s.dead_letters))
    }
}

/// A route's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteFigures {
    /// Raw messages taken in.
    pub messages: u64,
    /// Canonical events published.
    pub events: u64,
    /// Raw messages dead-lettered.
    pub dead_letters: u64,
    /// Failed plugin calls (every attempt).
    pub plugin_failures: u64,
    /// Calls tried again.
    pub retries: u64,
    /// Events published flagged late.
    pub late_events: u64,
    /// Events dropped as duplicates of a delivered source transaction.
    pub duplicates_dropped: u64,
    /// Raw messages taken in during the last minute.
    pub messages_last_minute: u64,
    /// Dead letters in the last minute.
    pub dead_letters_last_minute: u64,
    /// Raw messages not yet delivered to the host, over the route's consumers.
    pub pending: u64,
}

/// A site's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SiteFigures {
    /// Events published for the site.
    pub postings: u64,
    /// Mean posting delay (source time to publish), seconds.
    pub posting_delay_mean_seconds: f64,
    /// Longest posting delay seen, seconds.
    pub posting_delay_max_seconds: f64,
    /// Events published flagged late.
    pub late_events: u64,
    /// Dead letters attributed to the site.
    pub failures: u64,
}

/// Dead letters by trading partner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerFigures {
    /// Dead letters, by failure class.
    pub failures: BTreeMap<String, u64>,
}

/// Everything, as served by `/api/v1/figures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FiguresSnapshot {
    /// Seconds since the host started.
    pub uptime_seconds: u64,
    /// Per route.
    pub routes: BTreeMap<String, RouteFigures>,
    /// Per site.
    pub sites: BTreeMap<String, SiteFigures>,
    /// Per trading partner.
    pub partners: BTreeMap<String, PartnerFigures>,
}

/// The live figures.
#[derive(Debug, Default)]
pub(super) struct Figures {
    routes: BTreeMap<String, (RouteFigures, Window)>,
    sites: BTreeMap<String, (SiteFigures, f64)>,
    partners: BTreeMap<String, PartnerFigures>,
}

impl Figures {
    pub(super) fn route(&mut self, route: &str) -> &mut RouteFigures {
        &mut self.routes.entry(route.to_owned()).or_default().0
    }

    pub(super) fn message_in(&mut self, route: &str, now: u64) {
        let (figures, window) = self.routes.entry(route.to_owned()).or_default();
        figures.messages += 1;
        window.slot(now).messages += 1;
    }

    pub(super) fn dead_letter(
        &mut self,
        route: &str,
        site: &str,
        partner: &str,
        reason: &str,
        now: u64,
    ) {
        let (figures, window) = self.routes.entry(route.to_owned()).or_default();
        figures.dead_letters += 1;
        window.slot(now).dead_letters += 1;
        self.sites.entry(site.to_owned()).or_default().0.failures += 1;
        *self
            .partners
            .entry(partner.to_owned())
            .or_default()
            .failures
            .entry(reason.to_owned())
            .or_default() += 1;
    }

    pub(super) fn posting(&mut self, site: &str, delay_seconds: f64, late: bool) {
        let (figures, total) = self.sites.entry(site.to_owned()).or_default();
        figures.postings += 1;
        *total += delay_seconds;
        figures.posting_delay_mean_seconds = *total / figures.postings as f64;
        figures.posting_delay_max_seconds = figures.posting_delay_max_seconds.max(delay_seconds);
        if late {
            figures.late_events += 1;
        }
    }

    pub(super) fn snapshot(&self, now: u64, uptime_seconds: u64) -> FiguresSnapshot {
        FiguresSnapshot {
            uptime_seconds,
            routes: self
                .routes
                .iter()
                .map(|(name, (figures, window))| {
                    let (messages, dead_letters) = window.last_minute(now);
                    let figures = RouteFigures {
                        messages_last_minute: messages,
                        dead_letters_last_minute: dead_letters,
                        ..figures.clone()
                    };
                    (name.clone(), figures)
                })
                .collect(),
            sites: self
                .sites
                .iter()
                .map(|(name, (figures, _))| (name.clone(), figures.clone()))
                .collect(),
            partners: self.partners.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_minute_forgets_older_seconds() {
        let mut figures = Figures::default();
        figures.message_in("r", 100);
        figures.message_in("r", 130);
        figures.dead_letter("r", "S1", "acme", "trap", 130);
        let at = |now| figures.snapshot(now, 0).routes["r"].clone();
        assert_eq!(
            (
                at(130).messages_last_minute,
                at(130).dead_letters_last_minute
            ),
            (2, 1)
        );
        assert_eq!(
            (
                at(165).messages_last_minute,
                at(165).dead_letters_last_minute
            ),
            (1, 1)
        );
        assert_eq!(at(200).messages_last_minute, 0);
        assert_eq!(at(200).messages, 2);
    }

    #[test]
    fn sites_keep_mean_and_max_delay() {
        let mut figures = Figures::default();
        figures.posting("PLANT1", 2.0, false);
        figures.posting("PLANT1", 4.0, true);
        let site = &figures.snapshot(0, 0).sites["PLANT1"];
        assert_eq!(site.postings, 2);
        assert!((site.posting_delay_mean_seconds - 3.0).abs() < 1e-9);
        assert!((site.posting_delay_max_seconds - 4.0).abs() < 1e-9);
        assert_eq!(site.late_events, 1);
    }
}
