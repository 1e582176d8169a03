//! Posting acknowledgements: one per request a target answered for good, published by the
//! host's outbound driver on `posting.<target>.<site>` (stream POSTING) and read by the
//! projection, the console and anyone who asks "which production orders failed to post, which
//! movements are late".

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CanonicalEvent, Response, Verdict};

/// How a request ended at its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PostingOutcome {
    /// The target booked it.
    Posted,
    /// The target refused it for good (the event is dead-lettered).
    Rejected,
}

/// One acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Acknowledgement {
    /// The outbound route.
    pub route: String,
    /// The target.
    pub target: String,
    /// The canonical event id.
    pub event_id: String,
    /// The event kind.
    pub kind: String,
    /// The site.
    pub site: String,
    /// The event's business key.
    pub business_key: String,
    /// The index of the request among the event's requests.
    pub request: usize,
    /// The `Idempotency-Key` it was sent with.
    pub idempotency_key: String,
    /// Posted or rejected.
    pub outcome: PostingOutcome,
    /// The target's document id, when posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// Why the target rejected it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The answer's status.
    pub status: u16,
    /// `name@version` of the outbound plugin.
    pub plugin: String,
    /// When the event happened at the source.
    #[schemars(extend("format" = "date-time"))]
    pub source_time: String,
    /// When the target acknowledged it.
    #[schemars(extend("format" = "date-time"))]
    pub acknowledged_at: String,
    /// Source time to acknowledgement, seconds: the posting delay.
    pub delay_seconds: f64,
}

impl Acknowledgement {
    /// The acknowledgement of request `index` of `event` on `route`, rendered by `plugin`
    /// (`name@version`) and answered with `response`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        route: &str,
        plugin: &str,
        event: &CanonicalEvent,
        index: usize,
        key: &str,
        target: &str,
        verdict: &Verdict,
        response: &Response,
        source_time: OffsetDateTime,
    ) -> Self {
        let now = OffsetDateTime::now_utc();
        let (outcome, document, reason) = match verdict {
            Verdict::Posted(document) => (PostingOutcome::Posted, Some(document.clone()), None),
            Verdict::Rejected(reason) | Verdict::TryAgain(reason) => {
                (PostingOutcome::Rejected, None, Some(reason.clone()))
            }
        };
        Self {
            route: route.to_owned(),
            target: target.to_owned(),
            event_id: event.envelope.id.clone(),
            kind: event.envelope.kind.clone(),
            site: event.envelope.site.clone(),
            business_key: event.envelope.business_key.clone(),
            request: index,
            idempotency_key: key.to_owned(),
            outcome,
            document,
            reason,
            status: response.status,
            plugin: plugin.to_owned(),
            source_time: event.envelope.time.clone(),
            acknowledged_at: now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            delay_seconds: (now - source_time).as_seconds_f64(),
        }
    }

    /// Its `Nats-Msg-Id`: one acknowledgement per route, event, request and outcome, however
    /// often the event is redelivered. The outcome is in it because a rejected request may be
    /// posted later (its dead letter redriven once the data is fixed): with one id per request,
    /// JetStream dropped that "posted" as a repeat of the "rejected".
    pub fn message_id(&self) -> String {
        let outcome = match self.outcome {
            PostingOutcome::Posted => "posted",
            PostingOutcome::Rejected => "rejected",
        };
        format!(
            "posting:{}:{}:{}:{outcome}",
            self.route, self.event_id, self.request
        )
    }
}
