//! Dead letters: a raw message that could not be mapped, kept whole with its reason.
//!
//! A dead letter is published to `dlq.<route>` with the original payload bytes unchanged and
//! the original headers, plus `Millrace-*` headers that say what failed:
//!
//! | header | value |
//! |---|---|
//! | `Millrace-Route` | the route |
//! | `Millrace-Plugin` | `name@version` of the plugin |
//! | `Millrace-Error-Kind` | `malformed-input`, `unsupported-document`, `rejected-by-rule`, `other`, `invalid-event`, `trap`, `deadline`, `memory-limit`, `output-limit`, `instantiate`, `undeliverable` (a raw message the NATS client cannot read, see `lanes::undeliverable`) |
//! | `Millrace-Error` | the reason, on one line |
//! | `Millrace-Attempts` | how many times the plugin was called |
//! | `Millrace-Raw-Subject` | the raw subject |
//! | `Millrace-Raw-Sequence` | the RAW stream sequence |
//! | `Millrace-Raw-Msg-Id` | the raw message's `Nats-Msg-Id`, when it had one |
//! | `Millrace-Failed-At` | when it was dead-lettered, RFC 3339 UTC |
//! | `Millrace-Original-Header` | `Name: value` in base64, once per original header whose name the letter sets itself (`traceparent`, `Millrace-*`) or JetStream acts on (`Nats-*`: `Nats-Msg-Id`, `Nats-Expected-Stream`, `Nats-Rollup`, `Nats-TTL`...), in the order received |
//! | `Millrace-Raw-Not-Copied` | set only when the raw message and the letter's headers would not fit in one NATS message together: why; the letter then has no payload and no original headers, and readers take both from the RAW stream at `Millrace-Raw-Sequence` ([`headers::RAW_NOT_COPIED`]) |
//!
//! [`original_headers`] gives back exactly the headers the raw message was published with, so a
//! redriven message reaches the plugin as it did live. The kept headers are base64 because
//! nats-server finds `Nats-Msg-Id` by its first occurrence in the header block: the text
//! `Nats-Msg-Id` inside another header's value would hide the letter's own id from
//! de-duplication.

use async_nats::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Failure;
use millrace_transport::header_value;

/// Header names of a dead letter.
pub mod headers {
    /// The route.
    pub const ROUTE: &str = "Millrace-Route";
    /// `name@version` of the plugin.
    pub const PLUGIN: &str = "Millrace-Plugin";
    /// The failure kind.
    pub const ERROR_KIND: &str = "Millrace-Error-Kind";
    /// The reason.
    pub const ERROR: &str = "Millrace-Error";
    /// Calls made.
    pub const ATTEMPTS: &str = "Millrace-Attempts";
    /// The raw subject.
    pub const RAW_SUBJECT: &str = "Millrace-Raw-Subject";
    /// The RAW stream sequence.
    pub const RAW_SEQUENCE: &str = "Millrace-Raw-Sequence";
    /// The raw `Nats-Msg-Id`.
    pub const RAW_MSG_ID: &str = "Millrace-Raw-Msg-Id";
    /// When.
    pub const FAILED_AT: &str = "Millrace-Failed-At";
    /// An original header whose name the letter sets itself, as `Name: value` in base64.
    pub const ORIGINAL_HEADER: &str = "Millrace-Original-Header";
    /// Set when the letter holds no copy of the raw message, saying why (it was too large to
    /// copy into one NATS message beside the letter's headers): the raw message's payload and
    /// headers are the RAW stream's message at [`RAW_SEQUENCE`], where redrive and `dlq show`
    /// read them.
    pub const RAW_NOT_COPIED: &str = "Millrace-Raw-Not-Copied";
}

/// True for header names a letter must not carry as they are, whatever the case: those it sets
/// itself (`traceparent`, `Millrace-*`) and those JetStream acts on when it stores the letter
/// (`Nats-*`). A raw message's `Nats-Expected-Stream: RAW` would make the DLQ stream refuse the
/// letter on every redelivery, `Nats-Rollup` purge the letters before it, `Nats-TTL` expire it.
fn kept_aside(name: &str) -> bool {
    let prefixed = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    };
    name.eq_ignore_ascii_case(crate::observability::trace::TRACEPARENT)
        || prefixed("Millrace-")
        || prefixed("Nats-")
}

/// The headers the raw message was published with, from its dead letter's headers.
pub fn original_headers(letter: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    let mut kept_id = false;
    for (name, values) in letter.iter() {
        let text: &str = name.as_ref();
        if text == headers::ORIGINAL_HEADER {
            for value in values {
                let decoded = BASE64.decode(value.as_str()).ok();
                let text = decoded.as_deref().and_then(|d| std::str::from_utf8(d).ok());
                if let Some((original, value)) = text.and_then(|t| t.split_once(": ")) {
                    kept_id |= original.eq_ignore_ascii_case("Nats-Msg-Id");
                    out.append(original, value);
                }
            }
        } else if !kept_aside(text) {
            for value in values {
                out.append(name.clone(), value.clone());
            }
        }
    }
    // Letters written before `Millrace-Original-Header` kept only the message id.
    if !kept_id && let Some(id) = header_value(Some(letter), headers::RAW_MSG_ID) {
        out.insert("Nats-Msg-Id", id);
    }
    out
}

/// What is known of the raw message that failed.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    /// The route.
    pub route: &'a str,
    /// `name@version`.
    pub plugin: &'a str,
    /// The raw subject.
    pub raw_subject: &'a str,
    /// The RAW stream sequence.
    pub raw_sequence: u64,
    /// The raw message identity (its `Nats-Msg-Id`, or stream and sequence).
    pub raw_id: &'a str,
    /// The original headers, copied into the letter (`None` when the letter copies nothing of
    /// the raw message, see `not_copied`).
    pub raw_headers: Option<&'a HeaderMap>,
    /// Why the letter holds no copy of the raw message, when it holds none.
    pub not_copied: Option<&'a str>,
    /// Calls made.
    pub attempts: u32,
    /// What failed.
    pub failure: &'a Failure,
}

impl DeadLetter<'_> {
    /// The subject the dead letter goes to.
    pub fn subject(&self) -> String {
        millrace_core::subjects::dead_letters(self.route)
    }

    /// The `Nats-Msg-Id` of the dead letter, so a redelivered raw message is dead-lettered once.
    pub fn msg_id(&self) -> String {
        message_id(self.route, self.raw_id)
    }

    /// The headers of the dead letter: the original ones plus what failed.
    pub fn headers(&self) -> HeaderMap {
        let mut out = HeaderMap::new();
        if let Some(original) = self.raw_headers {
            keep_original(&mut out, original);
        }
        let failed_at = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        out.insert(async_nats::header::NATS_MESSAGE_ID, self.msg_id().as_str());
        if let Some(why) = self.not_copied {
            out.insert(headers::RAW_NOT_COPIED, one_line(why).as_str());
        }
        out.insert(headers::ROUTE, self.route);
        out.insert(headers::PLUGIN, self.plugin);
        out.insert(headers::ERROR_KIND, self.failure.kind());
        out.insert(headers::ERROR, one_line(&self.failure.message()).as_str());
        out.insert(headers::ATTEMPTS, self.attempts.to_string().as_str());
        out.insert(headers::RAW_SUBJECT, self.raw_subject);
        out.insert(
            headers::RAW_SEQUENCE,
            self.raw_sequence.to_string().as_str(),
        );
        out.insert(headers::FAILED_AT, failed_at.as_str());
        out
    }
}

/// The `Nats-Msg-Id` of the dead letter of raw message `raw_id` on `route`.
pub fn message_id(route: &str, raw_id: &str) -> String {
    format!("dlq:{route}:{raw_id}")
}

/// Copies a raw message's headers into a letter's `out`, keeping aside those whose names the
/// letter must not carry as they are ([`kept_aside`]), so [`original_headers`] gives them back
/// exactly.
pub fn keep_original(out: &mut HeaderMap, original: &HeaderMap) {
    for (name, values) in original.iter() {
        let name_text: &str = name.as_ref();
        for value in values {
            if kept_aside(name_text) {
                // Kept aside, to be given back by `original_headers`.
                let kept = BASE64.encode(format!("{name_text}: {}", value.as_str()));
                out.append(headers::ORIGINAL_HEADER, kept.as_str());
            } else {
                out.append(name.clone(), value.clone());
            }
        }
    }
    if let Some(id) = millrace_transport::jetstream_header(Some(original), "Nats-Msg-Id") {
        out.insert(headers::RAW_MSG_ID, id);
    }
}

/// Header values hold no line breaks and stay short enough for any NATS server.
pub(crate) fn one_line(text: &str) -> String {
    const MAX: usize = 2048;
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    millrace_core::posting::clip_to(line, MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use millrace_core::sandbox::{CallError, MapError};

    /// The letter of raw message `abc` on route `mes` with `original` headers.
    fn letter_of<'a>(original: &'a HeaderMap, failure: &'a Failure) -> DeadLetter<'a> {
        DeadLetter {
            route: "mes",
            plugin: "p@1.0.0",
            raw_subject: "raw.mes.p1.x",
            raw_sequence: 7,
            raw_id: "abc",
            raw_headers: Some(original),
            not_copied: None,
            attempts: 1,
            failure,
        }
    }

    #[test]
    fn headers_keep_the_original_and_say_what_failed() {
        let mut original = HeaderMap::new();
        original.insert(async_nats::header::NATS_MESSAGE_ID, "abc");
        original.insert("X-Partner", "ACME");
        let failure = Failure::Call(CallError::Map(MapError::malformed("line 3:\nbad qty")));
        let dl = letter_of(&original, &failure);
        let h = dl.headers();
        assert_eq!(dl.subject(), "dlq.mes");
        assert_eq!(header_value(Some(&h), "nats-msg-id"), Some("dlq:mes:abc"));
        assert_eq!(h.get(headers::RAW_MSG_ID).unwrap().as_str(), "abc");
        assert_eq!(h.get("X-Partner").unwrap().as_str(), "ACME");
        assert_eq!(
            h.get(headers::ERROR_KIND).unwrap().as_str(),
            "malformed-input"
        );
        assert_eq!(h.get(headers::ERROR).unwrap().as_str(), "line 3: bad qty");
    }

    #[test]
    fn the_original_headers_come_back_exactly() {
        let mut original = HeaderMap::new();
        original.append("Nats-Msg-Id", "abc");
        original.append(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
        original.append("X-Partner", "ACME");
        original.append("x-partner", "lower");
        original.append("Millrace-Route", "forged");
        original.append("X-Lot", "2");
        original.append("X-Lot", "1");
        let failure = Failure::Call(CallError::Trap("boom".into()));
        let letter = letter_of(&original, &failure);
        let mut stored = letter.headers();
        stored.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",
        );
        assert_eq!(stored.get(headers::ROUTE).unwrap().as_str(), "mes");
        let back = original_headers(&stored);
        assert_eq!(
            crate::pipeline::input::plugin_headers(Some(&back)),
            crate::pipeline::input::plugin_headers(Some(&original))
        );
    }

    /// A raw message's headers that JetStream acts on would act on the letter: with
    /// `Nats-Expected-Stream: RAW` the DLQ stream refused it, and the raw message was
    /// redelivered and refused again, forever. They are kept aside and given back.
    #[test]
    fn headers_jetstream_acts_on_are_kept_aside() {
        let mut original = HeaderMap::new();
        original.append("Nats-Expected-Stream", "RAW");
        original.append("Nats-Expected-Last-Subject-Sequence", "7");
        original.append("nats-rollup", "all");
        original.append("Nats-TTL", "1s");
        original.append("X-Partner", "ACME");
        let failure = Failure::Call(CallError::Map(MapError::malformed("bad")));
        let stored = letter_of(&original, &failure).headers();
        for (name, _) in stored.iter() {
            let name: &str = name.as_ref();
            assert!(
                name == "Nats-Msg-Id" || !name.to_ascii_lowercase().starts_with("nats-"),
                "the letter carries {name} as it is"
            );
        }
        assert_eq!(stored.get("X-Partner").unwrap().as_str(), "ACME");
        let back = original_headers(&stored);
        assert_eq!(
            crate::pipeline::input::plugin_headers(Some(&back)),
            crate::pipeline::input::plugin_headers(Some(&original))
        );
    }

    #[test]
    fn letters_without_kept_headers_get_their_message_id_back() {
        let mut old = HeaderMap::new();
        old.insert(headers::RAW_MSG_ID, "abc");
        old.insert(headers::ROUTE, "mes");
        old.insert("X-Partner", "ACME");
        let back = original_headers(&old);
        assert_eq!(header_value(Some(&back), "Nats-Msg-Id"), Some("abc"));
        assert_eq!(header_value(Some(&back), "X-Partner"), Some("ACME"));
        assert_eq!(header_value(Some(&back), headers::ROUTE), None);
    }
}
