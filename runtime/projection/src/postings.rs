//! The read side of postings: per (event, target) whether it is posted (with the target's
//! document id), rejected (with the reason) or pending, and the figures an operator watches:
//! backlog, oldest pending and posting delay per target, rejections by reason per target and
//! per site. Answers "which production orders failed to post, which inventory movements are
//! delayed, which plants generate exception spikes".
//!
//! Pending is decided at query time: an event an outbound route took (read from CANONICAL) is
//! pending at each of the route's targets that has not acknowledged a request of it, until the
//! route's consumer has finished it (its ack floor passed the event: the plugin sent it
//! nowhere else, or it was dead-lettered) or a target rejected it.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ProjectionError;
use super::query::Visibility;
use super::state::PostingRecord;
use super::state::matches;
use millrace_core::config::Config;
use millrace_core::posting::acknowledgement::PostingOutcome;

/// Postings listed when the filter says no `limit`.
const DEFAULT_LIMIT: usize = 200;

/// Where a posting stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PostingState {
    /// Not yet acknowledged by the target: in a host's hands (retrying, waiting on the
    /// breaker or a gate) or still on the stream.
    Pending,
    /// The target refused it for good, or the host gave it up before the target answered
    /// (the plugin could not render it, the host refused its request: the reason starts
    /// `not posted:`); the event is dead-lettered.
    Rejected,
    /// The target booked it.
    Posted,
}

/// Which postings to show; every field left out matches all. `state` and `limit` narrow the
/// list only; the figures count every posting the other fields match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostingFilter {
    /// Site code.
    pub site: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// Event kind, e.g. `production-completion`.
    pub kind: Option<String>,
    /// Outbound route.
    pub route: Option<String>,
    /// Only postings in this state.
    pub state: Option<PostingState>,
    /// At most this many postings listed (default 200): pending first (oldest first), then
    /// rejected, then posted (newest first).
    pub limit: Option<usize>,
}

/// One request of one event at one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostingView {
    /// The outbound route.
    pub route: String,
    /// The canonical event id.
    pub event_id: String,
    /// The event kind.
    pub kind: String,
    /// The site.
    pub site: String,
    /// The business key, e.g. `WO-1@PLANT1`.
    pub business_key: String,
    /// When the event happened at the source (RFC 3339).
    pub source_time: String,
    /// The target.
    pub target: String,
    /// The request's index among the event's requests (none while pending, and for an event
    /// given up before its requests were rendered).
    pub request: Option<usize>,
    /// Posted, rejected or pending.
    pub state: PostingState,
    /// The target's document id, when posted.
    pub document: Option<String>,
    /// Why the target rejected it.
    pub reason: Option<String>,
    /// The answer's status.
    pub status: Option<u16>,
    /// When the target acknowledged it (RFC 3339).
    pub acknowledged_at: Option<String>,
    /// Source time to acknowledgement, seconds: the posting delay.
    pub delay_seconds: Option<f64>,
    /// While pending: seconds since the source time.
    pub pending_seconds: Option<i64>,
}

/// Posting delays (source time to acknowledgement) of posted requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Delay {
    /// Requests posted.
    pub count: u64,
    /// Mean delay, seconds.
    pub mean_seconds: Option<f64>,
    /// Longest delay, seconds.
    pub max_seconds: Option<f64>,
}

impl Delay {
    fn add(&mut self, seconds: f64) {
        let sum = self.mean_seconds.unwrap_or(0.0) * self.count as f64 + seconds;
        self.count += 1;
        self.mean_seconds = Some(sum / self.count as f64);
        self.max_seconds = Some(self.max_seconds.map_or(seconds, |m| m.max(seconds)));
    }
}

/// Counts by state and rejections by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PostingCounts {
    /// Requests posted.
    pub posted: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Postings pending: the backlog.
    pub pending: u64,
    /// Rejections by reason.
    pub rejections: BTreeMap<String, u64>,
}

impl PostingCounts {
    fn count(&mut self, posting: &PostingView) {
        match posting.state {
            PostingState::Posted => self.posted += 1,
            PostingState::Pending => self.pending += 1,
            PostingState::Rejected => {
                self.rejected += 1;
                let reason = posting.reason.clone().unwrap_or_default();
                *self.rejections.entry(reason).or_default() += 1;
            }
        }
    }
}

/// One target's postings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetPostings {
    /// The target.
    pub target: String,
    /// Counts and rejections by reason.
    #[serde(flatten)]
    pub counts: PostingCounts,
    /// Source time of the oldest pending posting (RFC 3339).
    pub oldest_pending: Option<String>,
    /// Its age, seconds.
    pub oldest_pending_seconds: Option<i64>,
    /// Posting delay of the posted requests.
    pub delay: Delay,
}

/// One site's postings: where exceptions come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SitePostings {
    /// The site.
    pub site: String,
    /// Counts and rejections by reason.
    #[serde(flatten)]
    pub counts: PostingCounts,
}

/// Postings and their figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PostingsView {
    /// Per target, sorted by name.
    pub targets: Vec<TargetPostings>,
    /// Per site, sorted by code.
    pub sites: Vec<SitePostings>,
    /// The postings themselves (see [`PostingFilter::limit`]).
    pub postings: Vec<PostingView>,
}

/// How far each outbound route's consumer on CANONICAL has finished events: its ack floor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteProgress(BTreeMap<String, u64>);

impl RouteProgress {
    /// Reads the ack floor of every outbound route of `config`; a route whose consumer cannot
    /// be read has none (its events stay pending until acknowledged).
    pub async fn read(js: &jetstream::Context, config: &Config) -> Self {
        let mut floors = BTreeMap::new();
        let Ok(stream) = js.get_stream(&config.streams.canonical).await else {
            return Self(floors);
        };
        for (route, outbound) in &config.outbound {
            let name = millrace_transport::route_consumer_name(route, &outbound.subjects);
            if let Ok(info) = stream.consumer_info(&name).await {
                floors.insert(route.clone(), info.ack_floor.stream_sequence);
            }
        }
        Self(floors)
    }

    /// True when `route`'s consumer finished the event at `sequence`.
    fn finished(&self, route: &str, sequence: u64) -> bool {
        self.0.get(route).is_some_and(|floor| sequence <= *floor)
    }
}

/// Orders postings: pending and rejected oldest first, posted newest first.
fn sort(postings: &mut [PostingView]) {
    // Pending and rejected oldest first, posted newest first, by the instant (plants write
    // their own UTC offsets), then by what names the posting, so the order is the same on
    // every read.
    postings.sort_by_cached_key(|p| {
        let (known, nanos) = match instant(&p.source_time) {
            Some(t) if p.state == PostingState::Posted => (true, -t.unix_timestamp_nanos()),
            Some(t) => (true, t.unix_timestamp_nanos()),
            None => (false, 0),
        };
        (
            p.state,
            !known,
            nanos,
            p.source_time.clone(),
            p.event_id.clone(),
            p.request,
            p.target.clone(),
            p.route.clone(),
        )
    });
}

/// The instant an RFC 3339 time names.
fn instant(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Two source times (RFC 3339) in the order of the instants they name, whatever their UTC
/// offsets (`08:00+02:00` is before `07:00Z`); one that does not parse comes after every one
/// that does, and the text orders what names one instant (or does not parse), so the order is
/// the same on every read.
pub(crate) fn by_instant(a: &str, b: &str) -> Ordering {
    match (instant(a), instant(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.cmp(b))
}

/// The postings of one record, per request acknowledged and per target still pending.
fn postings_of(
    record: PostingRecord,
    progress: &RouteProgress,
    now: OffsetDateTime,
) -> Vec<PostingView> {
    let view = |target: &str, state| PostingView {
        route: record.key.route.clone(),
        event_id: record.key.event_id.clone(),
        kind: record.event.kind.clone(),
        site: record.event.site.clone(),
        business_key: record.event.business_key.clone(),
        source_time: record.event.source_time.clone(),
        target: target.to_owned(),
        request: None,
        state,
        document: None,
        reason: None,
        status: None,
        acknowledged_at: None,
        delay_seconds: None,
        pending_seconds: None,
    };
    let mut out: Vec<PostingView> = record
        .requests
        .iter()
        .map(|(index, r)| {
            let state = match r.outcome {
                PostingOutcome::Posted => PostingState::Posted,
                PostingOutcome::Rejected => PostingState::Rejected,
            };
            PostingView {
                request: Some(*index),
                document: r.document.clone(),
                reason: r.reason.clone(),
                status: Some(r.status),
                acknowledged_at: Some(r.acknowledged_at.clone()),
                delay_seconds: Some(r.delay_seconds),
                ..view(&r.target, state)
            }
        })
        .collect();
    if let Some(undelivered) = record.undelivered_now() {
        // Given up before a target answered, or with an answer the plugin failed to read: the
        // request that failed, and each target still without an answer, is told why, as a
        // target's own rejection is.
        let reason = |read: &str| format!("{read}: {}: {}", undelivered.kind, undelivered.reason);
        let mut targets: Vec<(&str, Option<usize>)> = record
            .unacknowledged_targets()
            .into_iter()
            .map(|t| (t, None))
            .collect();
        if let (Some(target), Some(index)) = (&undelivered.target, undelivered.request)
            && !record.requests.contains_key(&index)
        {
            match targets.iter_mut().find(|(t, _)| *t == target) {
                Some(known) => known.1 = Some(index),
                None => targets.push((target, Some(index))),
            }
        }
        for (target, request) in targets {
            // The request that failed has the target's last answer, if it had one: read as
            // "try again" until the host gave up, or one the plugin failed to read (the target
            // may hold a booking). The others were not sent.
            let status = undelivered
                .status
                .filter(|_| request.is_some() && request == undelivered.request);
            let unread = status.is_some() && undelivered.kind != "gave-up";
            out.push(PostingView {
                request,
                reason: Some(reason(if unread {
                    "answer not read"
                } else {
                    "not posted"
                })),
                status,
                ..view(target, PostingState::Rejected)
            });
        }
        return out;
    }
    let finished = record.rejected()
        || record
            .due
            .as_ref()
            .is_none_or(|due| progress.finished(&record.key.route, due.sequence));
    if !finished {
        let age = OffsetDateTime::parse(&record.event.source_time, &Rfc3339)
            .map_or(0, |t| (now - t).whole_seconds().max(0));
        for target in record.unacknowledged_targets() {
            out.push(PostingView {
                pending_seconds: Some(age),
                ..view(target, PostingState::Pending)
            });
        }
    }
    out
}

impl Visibility {
    /// A later event of one business key that `route` posted: of the route's events of `kind`
    /// and `business_key` after CANONICAL sequence `after` with a request posted, the first, as
    /// its id and sequence. An older event of the key posted after it (a dead letter redriven)
    /// would leave the targets with the older state. `None` too when no projection recorded
    /// the route's postings.
    pub async fn posted_after(
        &self,
        route: &str,
        kind: &str,
        business_key: &str,
        after: u64,
    ) -> Result<Option<(String, u64)>, ProjectionError> {
        let prefix = super::state::bucket_key(&[Some(route)]);
        let records: Vec<PostingRecord> = self
            .buckets
            .read_under(&self.buckets.postings, Some(&prefix))
            .await?;
        Ok(records
            .into_iter()
            .filter(|r| {
                r.key.route == route
                    && r.event.kind == kind
                    && r.event.business_key == business_key
                    && r.requests
                        .values()
                        .any(|q| q.outcome == PostingOutcome::Posted)
            })
            .filter_map(|r| {
                let sequence = r.due.as_ref()?.sequence;
                (sequence > after).then_some((r.key.event_id, sequence))
            })
            .min_by_key(|(_, sequence)| *sequence))
    }

    /// The postings matching `filter` with their figures, pending decided with `progress`.
    pub async fn postings(
        &self,
        filter: &PostingFilter,
        progress: &RouteProgress,
    ) -> Result<PostingsView, ProjectionError> {
        // Keys are `<route>.<event id>`: a route reads its own.
        let prefix = filter
            .route
            .as_deref()
            .map(|route| super::state::bucket_key(&[Some(route)]));
        let records: Vec<PostingRecord> = self
            .buckets
            .read_under(&self.buckets.postings, prefix.as_deref())
            .await?;
        let now = OffsetDateTime::now_utc();
        let mut postings: Vec<PostingView> = records
            .into_iter()
            .flat_map(|r| postings_of(r, progress, now))
            .filter(|p| {
                matches(&filter.site, Some(&p.site))
                    && matches(&filter.target, Some(&p.target))
                    && matches(&filter.kind, Some(&p.kind))
                    && matches(&filter.route, Some(&p.route))
            })
            .collect();
        let mut targets: BTreeMap<String, TargetPostings> = BTreeMap::new();
        let mut sites: BTreeMap<String, SitePostings> = BTreeMap::new();
        for p in &postings {
            let target = targets
                .entry(p.target.clone())
                .or_insert_with(|| TargetPostings {
                    target: p.target.clone(),
                    ..TargetPostings::default()
                });
            target.counts.count(p);
            if let Some(seconds) = p.delay_seconds.filter(|_| p.state == PostingState::Posted) {
                target.delay.add(seconds);
            }
            // The oldest by the instant, not the text: plants write their own UTC offsets.
            if p.state == PostingState::Pending
                && target
                    .oldest_pending
                    .as_ref()
                    .is_none_or(|oldest| by_instant(&p.source_time, oldest) == Ordering::Less)
            {
                target.oldest_pending = Some(p.source_time.clone());
                target.oldest_pending_seconds = p.pending_seconds;
            }
            sites
                .entry(p.site.clone())
                .or_insert_with(|| SitePostings {
                    site: p.site.clone(),
                    ..SitePostings::default()
                })
                .counts
                .count(p);
        }
        postings.retain(|p| filter.state.is_none_or(|s| p.state == s));
        sort(&mut postings);
        postings.truncate(filter.limit.unwrap_or(DEFAULT_LIMIT));
        Ok(PostingsView {
            targets: targets.into_values().collect(),
            sites: sites.into_values().collect(),
            postings,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn posting(event_id: &str, state: PostingState, source_time: &str) -> PostingView {
        PostingView {
            route: "r".into(),
            event_id: event_id.into(),
            kind: "production-completion".into(),
            site: "PLANT1".into(),
            business_key: "WO-1@PLANT1".into(),
            source_time: source_time.into(),
            target: "erp".into(),
            request: None,
            state,
            document: None,
            reason: None,
            status: None,
            acknowledged_at: None,
            delay_seconds: None,
            pending_seconds: None,
        }
    }

    fn ids(postings: &[PostingView]) -> Vec<&str> {
        postings.iter().map(|p| p.event_id.as_str()).collect()
    }

    #[test]
    fn postings_are_ordered_by_the_instant_whatever_the_offset() {
        use PostingState::{Pending, Posted};
        // 06:30Z, 07:00Z (as 08:00+01:00), 07:30Z (as 02:30-05:00), 07:45Z: the text orders
        // them 02:30, 06:30, 07:45, 08:00.
        let mut postings = vec![
            posting("p-0730", Pending, "2026-03-02T02:30:00-05:00"),
            posting("p-0745", Pending, "2026-03-02T07:45:00Z"),
            posting("p-0700", Pending, "2026-03-02T08:00:00+01:00"),
            posting("p-0630", Pending, "2026-03-02T06:30:00Z"),
            posting("d-0700", Posted, "2026-03-02T08:00:00+01:00"),
            posting("d-0730", Posted, "2026-03-02T02:30:00-05:00"),
            posting("d-0630", Posted, "2026-03-02T06:30:00Z"),
        ];
        sort(&mut postings);
        assert_eq!(
            ids(&postings),
            [
                "p-0630", "p-0700", "p-0730", "p-0745", "d-0730", "d-0700", "d-0630"
            ],
            "pending oldest first, posted newest first"
        );
        // One instant written two ways, and sub-seconds: still one order on every read.
        let mut postings = vec![
            posting("b", Pending, "2026-03-02T07:00:00+00:00"),
            posting("a", Pending, "2026-03-02T07:00:00Z"),
            posting("c", Pending, "2026-03-02T07:00:00.5Z"),
            posting("e", Pending, "2026-03-02T06:59:59.999+00:00"),
        ];
        sort(&mut postings);
        assert_eq!(ids(&postings), ["e", "b", "a", "c"]);
        assert_eq!(
            by_instant("2026-03-02T08:00:00+01:00", "2026-03-02T07:30:00Z"),
            Ordering::Less
        );
    }

    #[test]
    fn a_request_given_up_after_one_posted_to_its_target_is_listed_with_why() {
        use crate::state::{
            Due, PostedEvent, PostingChange, PostingKey, PostingRecord, dead_lettered,
        };
        use PostingState::{Posted, Rejected};
        use millrace_core::posting::acknowledgement::Acknowledgement;
        // A hold sends two requests to the WMS; the first is booked, the host refuses the
        // second (say, a header it may not send).
        let letter = serde_json::json!({
            "route": "holds", "event_id": "e1", "event": "", "kind": "refused-request",
            "reason": "header `Host` may not be set", "failed_at": "2026-12-01T10:00:02Z",
            "requests": [{"target": "wms"}, {"target": "wms"}], "request": 1
        });
        let (key, failed) = dead_lettered(letter.to_string().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            key,
            PostingKey {
                route: "holds".into(),
                event_id: "e1".into()
            }
        );
        let due = PostingChange::Due(
            PostedEvent {
                kind: "quality-hold".into(),
                site: "PLANT1".into(),
                business_key: "NCR-1@PLANT1".into(),
                source_time: "2026-12-01T09:00:00Z".into(),
            },
            Due {
                sequence: 4,
                targets: vec!["wms".into(), "notify".into()],
            },
        );
        let booked = PostingChange::Acknowledged(Acknowledgement {
            route: "holds".into(),
            target: "wms".into(),
            event_id: "e1".into(),
            kind: "quality-hold".into(),
            site: "PLANT1".into(),
            business_key: "NCR-1@PLANT1".into(),
            request: 0,
            idempotency_key: "e1".into(),
            outcome: millrace_core::posting::acknowledgement::PostingOutcome::Posted,
            document: Some("B-1".into()),
            reason: None,
            status: 201,
            plugin: "holds@1.0.0".into(),
            source_time: "2026-12-01T09:00:00Z".into(),
            acknowledged_at: "2026-12-01T10:00:01Z".into(),
            delay_seconds: 3601.0,
        });
        let now = instant("2026-12-01T11:00:00Z").unwrap();
        let rows = |failed: &PostingChange| {
            let mut record = PostingRecord::new(key.clone(), &due);
            for change in [&due, &booked, failed] {
                assert!(record.apply(change));
            }
            postings_of(record, &RouteProgress::default(), now)
                .into_iter()
                .map(|p| (p.target, p.request, p.state, p.status, p.reason))
                .collect::<Vec<_>>()
        };
        let why = Some("not posted: refused-request: header `Host` may not be set".to_owned());
        assert_eq!(
            rows(&failed),
            [
                ("wms".to_owned(), Some(0), Posted, Some(201), None),
                ("notify".to_owned(), None, Rejected, None, why.clone()),
                ("wms".to_owned(), Some(1), Rejected, None, why),
            ]
        );

        // The WMS answered the second request, and the plugin failed to read the answer: the
        // request is listed with the status, since the WMS may hold a booking.
        let mut letter = letter;
        letter["kind"] = "trap".into();
        letter["reason"] = "target `wms` answered 201, which the plugin failed to read".into();
        letter["answer"] = serde_json::json!({"target": "wms", "status": 201, "body": {}});
        let (_, unread) = dead_lettered(letter.to_string().as_bytes())
            .unwrap()
            .unwrap();
        let why = |read: &str| {
            Some(format!(
                "{read}: trap: target `wms` answered 201, which the plugin failed to read"
            ))
        };
        assert_eq!(
            rows(&unread),
            [
                ("wms".to_owned(), Some(0), Posted, Some(201), None),
                ("notify".to_owned(), None, Rejected, None, why("not posted")),
                (
                    "wms".to_owned(),
                    Some(1),
                    Rejected,
                    Some(201),
                    why("answer not read")
                ),
            ]
        );

        // The WMS kept answering 503 until the host gave the request up: not posted, with the
        // last answer's status.
        letter["kind"] = "gave-up".into();
        letter["reason"] = "target `wms` still could not take it".into();
        letter["answer"]["status"] = 503.into();
        let (_, gave_up) = dead_lettered(letter.to_string().as_bytes())
            .unwrap()
            .unwrap();
        let why = Some("not posted: gave-up: target `wms` still could not take it".to_owned());
        assert_eq!(
            rows(&gave_up)[2],
            ("wms".to_owned(), Some(1), Rejected, Some(503), why)
        );
    }
}
