//! Postings: what became of each canonical event an outbound route posts, per request and
//! target. Two streams feed one record per route and event: CANONICAL says the event is due on
//! the route (its CANONICAL sequence, the route subject that took it, the route's targets),
//! POSTING says how each request ended at its target (posted with the target's document id,
//! or rejected with the reason). Both changes are idempotent and commute, so the record is
//! the same whichever stream is read first: a rebuild gives what the live projection has.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{BucketKey, bucket_key};
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

/// What the event is, from either stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A change to a posting record.
#[derive(Debug, Clone, PartialEq)]
pub enum PostingChange {
    /// The event is on CANONICAL, taken by the route.
    Due(PostedEvent, Due),
    /// A target acknowledged one of its requests.
    Acknowledged(Acknowledgement),
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
        };
        Self {
            key,
            event,
            due: None,
            requests: BTreeMap::new(),
        }
    }

    /// Applies `change`; false when it changed nothing (a repeat).
    pub fn apply(&mut self, change: &PostingChange) -> bool {
        match change {
            PostingChange::Due(_, due) => {
                if self.due.as_ref() == Some(due) {
                    return false;
                }
                self.due = Some(due.clone());
                true
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
