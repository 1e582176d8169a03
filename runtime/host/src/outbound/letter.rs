//! Outbound dead letters, on `dlq.outbound.<route>`: the event exactly as it was on the
//! canonical stream, the requests rendered, the request that failed and the last answer, and
//! why. Redrive posts the event through the same driver again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::input::EventInput;
use crate::routes::Route;
use millrace_core::posting::{Request, Response};
use millrace_core::sandbox::PluginComponent;

/// The most of one body (a request's, the answer's) a letter keeps. A letter is one NATS
/// message (1 MiB by default) beside the whole event: one too large could not be published, and
/// the event would be redelivered for ever. Redrive posts the event again, so the bodies a
/// letter keeps are for reading, and their start is what a reader needs.
pub const LETTER_BODY_MAX: usize = 64 * 1024;

/// The most a letter's JSON may take before it sheds the copies of the requests and the
/// answer's body (many requests, or headers of any length, can add up past a NATS message
/// even with each body cut): the event, the failure and the reason always stay.
pub const LETTER_MAX: usize = 512 * 1024;

/// Cuts `body` to [`LETTER_BODY_MAX`]: its length before, when it was longer.
fn cut(body: &mut Vec<u8>) -> Option<usize> {
    let len = body.len();
    (len > LETTER_BODY_MAX).then(|| {
        body.truncate(LETTER_BODY_MAX);
        len
    })
}

/// The `id` of a CloudEvent's JSON, when it has one.
pub fn event_id(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
}

/// The header that marks an outbound dead letter.
pub const DIRECTION: &str = "Millrace-Direction";

/// One outbound dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OutboundLetter {
    /// The outbound route.
    pub route: String,
    /// The canonical subject.
    pub subject: String,
    /// The CANONICAL stream sequence.
    pub sequence: u64,
    /// The event id, when the event could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The CloudEvent as it was on the stream (as text; it is JSON); empty when
    /// `event_not_copied` is set.
    pub event: String,
    /// Set, saying why, when the letter holds no copy of the event: with it the letter would
    /// not fit in one NATS message. The event is then the CANONICAL stream's message at
    /// `sequence`, where redrive reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_not_copied: Option<String>,
    /// `name@version` of the outbound plugin, when one was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// The failure kind: `rejected` (by the target), `gave-up` (the target's
    /// `retry.give_up_after` passed while it could not take the request), a render error
    /// (`incomplete-event`, `rejected-by-rule`, `other`), `refused-request`, `not-canonical`,
    /// or a plugin failure (`trap`, `deadline`, ...).
    pub kind: String,
    /// Why.
    pub reason: String,
    /// The requests rendered.
    #[serde(default)]
    pub requests: Vec<Request>,
    /// The request that failed, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<usize>,
    /// The target's last answer to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Response>,
    /// When it was dead-lettered.
    #[schemars(extend("format" = "date-time"))]
    pub failed_at: String,
    /// How many times the plugin was called for the failure (its header `Millrace-Attempts`).
    #[serde(skip)]
    pub attempts: u32,
}

impl OutboundLetter {
    /// A letter for the event `input` of `route`.
    pub fn new(
        route: &Route,
        input: &EventInput,
        plugin: Option<&PluginComponent>,
        kind: &str,
        reason: String,
    ) -> Self {
        let event_id = event_id(&input.payload);
        Self {
            route: route.name.to_string(),
            subject: input.subject.clone(),
            sequence: input.sequence,
            event_id,
            event: String::from_utf8_lossy(&input.payload).into_owned(),
            event_not_copied: None,
            plugin: plugin.map(PluginComponent::id),
            kind: kind.to_owned(),
            reason,
            requests: Vec::new(),
            request: None,
            answer: None,
            failed_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            attempts: 1,
        }
    }

    /// Of a plugin call that failed after `attempts` calls (the route's retries).
    pub fn after(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// With the requests rendered (each body cut to [`LETTER_BODY_MAX`]).
    pub fn with_requests(mut self, requests: &[Request]) -> Self {
        self.requests = requests.to_vec();
        for (n, request) in self.requests.iter_mut().enumerate() {
            if let Some(len) = cut(&mut request.body) {
                self.reason
                    .push_str(&format!(" (this letter keeps {LETTER_BODY_MAX} of the {len} bytes of request {n}'s body)"));
            }
        }
        self
    }

    /// With the request that failed and the target's answer (its body cut to
    /// [`LETTER_BODY_MAX`]).
    pub fn at_request(mut self, index: usize, mut answer: Option<Response>) -> Self {
        self.request = Some(index);
        if let Some(len) = answer.as_mut().and_then(|a| cut(&mut a.body)) {
            self.reason.push_str(&format!(
                " (this letter keeps {LETTER_BODY_MAX} of the {len} bytes of the answer's body)"
            ));
        }
        self.answer = answer;
        self
    }

    /// Its JSON, at most [`LETTER_MAX`] beside an event of that size: when the requests and the
    /// answer make it larger, they are left out and the reason says so. When it is still
    /// larger than `max` (what one NATS message holds beside the letter's headers), the copy
    /// of the event is left out too (see `event_not_copied`).
    pub fn encode(mut self, max: usize) -> serde_json::Result<Vec<u8>> {
        let json = serde_json::to_vec(&self)?;
        if json.len() <= LETTER_MAX.min(max) {
            return Ok(json);
        }
        let requests = std::mem::take(&mut self.requests).len();
        if let Some(answer) = &mut self.answer {
            answer.headers.clear();
            answer.body.clear();
        }
        self.reason.push_str(&format!(
            " (its {requests} requests and the answer's headers and body made this letter \
             {} bytes, past {}: left out)",
            json.len(),
            LETTER_MAX.min(max)
        ));
        let json = serde_json::to_vec(&self)?;
        if json.len() <= max {
            return Ok(json);
        }
        let why = format!(
            "with the event this letter would be {} bytes, more than one NATS message holds \
             beside its headers ({max}); the event is CANONICAL's message {}",
            json.len(),
            self.sequence
        );
        self.event.clear();
        self.event_not_copied = Some(why);
        serde_json::to_vec(&self)
    }

    /// Its `Nats-Msg-Id`: one letter per route and event.
    pub fn message_id(&self) -> String {
        format!(
            "outbound:{}:{}",
            self.route,
            self.event_id
                .clone()
                .unwrap_or_else(|| format!("seq{}", self.sequence))
        )
    }

    /// The headers it is stored with: the ones every dead letter carries (so `millrace dlq`
    /// and the admin API list it beside the inbound ones), the canonical subject and sequence
    /// in the place of the raw ones, and `Millrace-Direction: outbound`.
    pub fn headers(&self) -> async_nats::HeaderMap {
        use crate::delivery::dead_letter::{headers as h, one_line as line};
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            self.message_id().as_str(),
        );
        headers.insert("Content-Type", "application/json");
        headers.insert(DIRECTION, "outbound");
        headers.insert(h::ROUTE, self.route.as_str());
        headers.insert(h::PLUGIN, self.plugin.as_deref().unwrap_or(""));
        headers.insert(h::ERROR_KIND, self.kind.as_str());
        headers.insert(h::ERROR, line(&self.reason).as_str());
        headers.insert(h::ATTEMPTS, self.attempts.max(1).to_string().as_str());
        headers.insert(h::FAILED_AT, self.failed_at.as_str());
        headers.insert(h::RAW_SUBJECT, self.subject.as_str());
        headers.insert(h::RAW_SEQUENCE, self.sequence.to_string().as_str());
        headers
    }

    /// The event to post again.
    pub fn input(&self) -> EventInput {
        EventInput {
            subject: self.subject.clone(),
            payload: bytes::Bytes::from(self.event.clone().into_bytes()),
            sequence: self.sequence,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use millrace_core::posting::Method;

    const MIB: usize = 1024 * 1024;

    fn letter(requests: usize, header: usize) -> OutboundLetter {
        let request = Request {
            target: "erp".into(),
            method: Method::Post,
            path: "/goods".into(),
            headers: vec![("X-Note".into(), "n".repeat(header))],
            body: vec![b'x'; LETTER_BODY_MAX * 2],
        };
        OutboundLetter {
            route: "posts".into(),
            subject: "canonical.production-completion.PLANT1".into(),
            sequence: 7,
            event_id: Some("e-1".into()),
            event: "{\"id\":\"e-1\"}".into(),
            event_not_copied: None,
            plugin: Some("poster@1.0.0".into()),
            kind: "rejected".into(),
            reason: "no".into(),
            requests: Vec::new(),
            request: None,
            answer: None,
            failed_at: "2026-12-01T00:00:00Z".into(),
            attempts: 1,
        }
        .with_requests(&vec![request; requests])
        .at_request(
            0,
            Some(Response {
                target: "erp".into(),
                status: 422,
                headers: Vec::new(),
                body: vec![b'y'; 5 * 1024 * 1024],
            }),
        )
    }

    #[test]
    fn a_letter_keeps_the_start_of_each_body_and_sheds_what_would_not_fit_a_message() {
        let one: OutboundLetter =
            serde_json::from_slice(&letter(1, 10).encode(MIB).unwrap()).unwrap();
        assert_eq!(one.requests[0].body.len(), LETTER_BODY_MAX);
        assert_eq!(one.answer.as_ref().unwrap().body.len(), LETTER_BODY_MAX);
        assert!(
            one.reason
                .contains("keeps 65536 of the 131072 bytes of request 0's body")
        );
        assert!(
            one.reason
                .contains("keeps 65536 of the 5242880 bytes of the answer's body")
        );

        for (requests, header) in [(20, 10), (1, 2 * LETTER_MAX)] {
            let json = letter(requests, header).encode(MIB).unwrap();
            assert!(
                json.len() < 64 * 1024,
                "{requests} requests: {} bytes",
                json.len()
            );
            let shed: OutboundLetter = serde_json::from_slice(&json).unwrap();
            assert!(shed.requests.is_empty());
            assert!(shed.answer.as_ref().unwrap().body.is_empty());
            assert_eq!(shed.answer.unwrap().status, 422);
            assert!(
                shed.reason
                    .contains(&format!("its {requests} requests and the answer's")),
                "{}",
                shed.reason
            );
            assert_eq!(shed.event, "{\"id\":\"e-1\"}");
            assert_eq!(shed.event_not_copied, None);
        }
    }

    #[test]
    fn a_letter_whose_event_would_not_fit_a_message_points_to_the_event() {
        let mut big = letter(1, 10);
        big.event = format!("{{\"data\":\"{}\"}}", "e".repeat(900 * 1024));
        let json = big.clone().encode(MIB).unwrap();
        assert!(json.len() <= MIB, "{}", json.len());
        let kept: OutboundLetter = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            kept.event, big.event,
            "the event fits beside the letter's fields"
        );

        let json = big.encode(512 * 1024).unwrap();
        assert!(json.len() <= 512 * 1024, "{}", json.len());
        let pointed: OutboundLetter = serde_json::from_slice(&json).unwrap();
        assert!(pointed.event.is_empty());
        let why = pointed.event_not_copied.unwrap();
        assert!(why.contains("the event is CANONICAL's message 7"), "{why}");
        assert_eq!(pointed.answer.unwrap().status, 422, "the failure stays");
    }
}
