//! Postings: what became of each canonical event an outbound route posts, per request and
//! target. Three streams feed one record per route and event: CANONICAL says the event is due
//! on the route (its CANONICAL sequence, the route subject that took it, the route's targets),
//! POSTING says how each request ended at its target (posted with the target's document id,
//! or rejected with the reason), and the route's dead letters (`dlq.outbound.<route>` on DLQ)
//! say when the host gave the event up before a target answered (the plugin could not render
//! it, the host refused its request). The changes are idempotent and commute, so the record is
//! the same whichever stream is read first: a rebuild gives what the live projection has.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{BucketKey, bucket_key};
use millrace_core::posting::CanonicalEvent;
use millrace_core::posting::acknowledgement::{Acknowledgement, PostingOutcome};

/// One event on one outbound route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PostingKey {
    /// The outbound route.
    pub route: String,
    /// The canonical event id.
    pub event_id: String,
}

impl BucketKey for PostingKey {
    /// `<route>.<event id>`.
    fn bucket_key(&self) -> String {
        bucket_key(&[Some(&self.route), Some(&self.event_id)])
    }
}

/// The canonical event as its route took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    /// Its CANONICAL stream sequence.
    pub sequence: u64,
    /// The targets the route posts to.
    pub targets: Vec<String>,
}

/// What the event is, from any of the streams (all blank when only a dead letter that holds no
/// copy of the event has been read yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedEvent {
    /// The event kind, e.g. `production-completion`.
    pub kind: String,
    /// The site code.
    pub site: String,
    /// The business key (CloudEvents `subject`), e.g. `WO-1@PLANT1`.
    pub business_key: String,
    /// When it happened at the source (RFC 3339).
    pub source_time: String,
}

/// How one request ended at its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestOutcome {
    /// The target.
    pub target: String,
    /// Posted or rejected.
    pub outcome: PostingOutcome,
    /// The target's document id, when posted.
    pub document: Option<String>,
    /// Why the target rejected it.
    pub reason: Option<String>,
    /// The answer's status.
    pub status: u16,
    /// When the target acknowledged it (RFC 3339).
    pub acknowledged_at: String,
    /// Source time to acknowledgement, seconds.
    pub delay_seconds: f64,
}

/// Why the host gave an event up before a target answered it, from the event's dead letter:
/// the plugin could not render it (`incomplete-event`, `rejected-by-rule`, `other`, a trap),
/// or a request failed on its way (`refused-request`, the plugin failing on the answer). No
/// acknowledgement says so, since no target answered: without this the posting vanished from
/// the list once the route's consumer passed the event, as if the plugin had sent it nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undelivered {
    /// The dead letter's failure kind.
    pub kind: String,
    /// Why.
    pub reason: String,
    /// The target of the request that failed, when one did.
    pub target: Option<String>,
    /// The index of the request that failed among the event's requests, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<usize>,
    /// The status the target answered that request with, when it answered and the plugin
    /// failed to read the answer: the target may hold a booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// When the host dead-lettered it (RFC 3339).
    pub failed_at: String,
}

impl Undelivered {
    fn failed_at(&self) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(&self.failed_at, &Rfc3339).ok()
    }
}

/// A change to a posting record.
#[derive(Debug, Clone, PartialEq)]
pub enum PostingChange {
    /// The event is on CANONICAL, taken by the route.
    Due(PostedEvent, Due),
    /// A target acknowledged one of its requests.
    Acknowledged(Acknowledgement),
    /// The host dead-lettered the event before a target answered (with what the letter says
    /// of the event, when it holds a copy).
    DeadLettered(Option<PostedEvent>, Undelivered),
}

/// One event on one outbound route, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostingRecord {
    /// Which.
    #[serde(flatten)]
    pub key: PostingKey,
    /// What the event is.
    pub event: PostedEvent,
    /// Where it is on CANONICAL, once the projection read it there.
    pub due: Option<Due>,
    /// The acknowledged requests by index. Once posted, a request stays posted (a redelivered
    /// event's repeat was booked once); a rejected one takes a later acknowledgement, as when
    /// its dead letter is redriven and the target books it.
    pub requests: BTreeMap<usize, RequestOutcome>,
    /// The latest time the host gave the event up before a target answered, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undelivered: Option<Undelivered>,
}

impl PostingRecord {
    /// A record of `key` with nothing known yet but what the change says of the event.
    pub fn new(key: PostingKey, change: &PostingChange) -> Self {
        let event = match change {
            PostingChange::Due(event, _) => event.clone(),
            PostingChange::Acknowledged(a) => PostedEvent {
                kind: a.kind.clone(),
                site: a.site.clone(),
                business_key: a.business_key.clone(),
                source_time: a.source_time.clone(),
            },
            PostingChange::DeadLettered(event, _) => event.clone().unwrap_or_default(),
        };
        Self {
            key,
            event,
            due: None,
            requests: BTreeMap::new(),
            undelivered: None,
        }
    }

    /// Applies `change`; false when it changed nothing (a repeat).
    pub fn apply(&mut self, change: &PostingChange) -> bool {
        match change {
            PostingChange::Due(event, due) => {
                let blank = self.event.kind.is_empty();
                if blank {
                    self.event = event.clone();
                }
                if self.due.as_ref() == Some(due) {
                    return blank;
                }
                self.due = Some(due.clone());
                true
            }
            PostingChange::DeadLettered(event, undelivered) => {
                let blank = self.event.kind.is_empty() && event.is_some();
                if let Some(event) = event.as_ref().filter(|_| blank) {
                    self.event = event.clone();
                }
                // The latest letter says why: a letter redriven and failing again is written
                // anew, and letters may be read in any order (a rebuild).
                let newer = self.undelivered.as_ref().is_none_or(|known| {
                    known != undelivered
                        && (known.failed_at(), &known.failed_at)
                            < (undelivered.failed_at(), &undelivered.failed_at)
                });
                if newer {
                    self.undelivered = Some(undelivered.clone());
                }
                blank || newer
            }
            PostingChange::Acknowledged(a) => {
                if let Some(known) = self.requests.get(&a.request)
                    && (known.outcome == PostingOutcome::Posted
                        || (known.outcome == a.outcome
                            && known.reason == a.reason
                            && known.document == a.document))
                {
                    return false;
                }
                self.requests.insert(
                    a.request,
                    RequestOutcome {
                        target: a.target.clone(),
                        outcome: a.outcome,
                        document: a.document.clone(),
                        reason: a.reason.clone(),
                        status: a.status,
                        acknowledged_at: a.acknowledged_at.clone(),
                        delay_seconds: a.delay_seconds,
                    },
                );
                true
            }
        }
    }

    /// True when a target rejected one of its requests: the event is dead-lettered, its later
    /// requests are never sent.
    pub fn rejected(&self) -> bool {
        self.requests
            .values()
            .any(|r| r.outcome == PostingOutcome::Rejected)
    }

    /// Why the host gave the event up, unless a target booked one of its requests since (its
    /// dead letter redriven): the requests a redrive has not reached yet are then pending
    /// again, or finished.
    pub fn undelivered_now(&self) -> Option<&Undelivered> {
        let undelivered = self.undelivered.as_ref()?;
        let failed_at = undelivered.failed_at();
        let posted_since = self.requests.values().any(|r| {
            r.outcome == PostingOutcome::Posted
                && OffsetDateTime::parse(&r.acknowledged_at, &Rfc3339).ok() > failed_at
        });
        (!posted_since).then_some(undelivered)
    }

    /// The route's targets no request of the event was acknowledged by yet.
    pub fn unacknowledged_targets(&self) -> Vec<&str> {
        self.due.as_ref().map_or_else(Vec::new, |due| {
            due.targets
                .iter()
                .filter(|t| !self.requests.values().any(|r| &r.target == *t))
                .map(String::as_str)
                .collect()
        })
    }
}

/// What the projection reads of an outbound dead letter (the host's `OutboundLetter`, on
/// `dlq.outbound.<route>`): which event of which route, and why the host gave it up.
#[derive(Deserialize)]
struct Letter {
    route: String,
    event_id: Option<String>,
    #[serde(default)]
    event: String,
    kind: String,
    reason: String,
    #[serde(default)]
    requests: Vec<LetterRequest>,
    request: Option<usize>,
    answer: Option<LetterAnswer>,
    failed_at: String,
}

#[derive(Deserialize)]
struct LetterRequest {
    target: String,
}

#[derive(Deserialize)]
struct LetterAnswer {
    status: u16,
}

/// The posting change an outbound dead letter makes, keyed: none for a target's rejection (its
/// acknowledgement says so already) or for a letter whose event has no id to key it by (it was
/// no canonical event). The error says what the payload is not.
pub fn dead_lettered(payload: &[u8]) -> Result<Option<(PostingKey, PostingChange)>, String> {
    let letter: Letter =
        serde_json::from_slice(payload).map_err(|e| format!("no outbound dead letter: {e}"))?;
    let Some(event_id) = letter.event_id.filter(|_| letter.kind != "rejected") else {
        return Ok(None);
    };
    let event = CanonicalEvent::from_payload(letter.event.as_bytes())
        .ok()
        .map(|e| PostedEvent {
            kind: e.envelope.kind,
            site: e.envelope.site,
            business_key: e.envelope.business_key,
            source_time: e.envelope.time,
        });
    let request = letter.request;
    let target = request
        .and_then(|n| letter.requests.into_iter().nth(n))
        .map(|r| r.target);
    let key = PostingKey {
        route: letter.route,
        event_id,
    };
    let undelivered = Undelivered {
        kind: letter.kind,
        reason: letter.reason,
        target,
        request,
        status: letter.answer.map(|a| a.status),
        failed_at: letter.failed_at,
    };
    Ok(Some((key, PostingChange::DeadLettered(event, undelivered))))
}

/// The posting changes of a canonical event on `subject` at stream `sequence`: one per
/// outbound route whose subjects take it (`routes`: name, subjects, targets).
pub fn due_on<'r>(
    routes: &'r [(String, Vec<String>, Vec<String>)],
    subject: &str,
    sequence: u64,
    event: &PostedEvent,
) -> Vec<(&'r str, PostingChange)> {
    routes
        .iter()
        .filter_map(|(route, subjects, targets)| {
            subjects
                .iter()
                .find(|s| millrace_core::subjects::subject_matches(s, subject))?;
            Some((
                route.as_str(),
                PostingChange::Due(
                    event.clone(),
                    Due {
                        sequence,
                        targets: targets.clone(),
                    },
                ),
            ))
        })
        .collect()
}
