//! A raw message as the pipeline takes it, whichever driver brings it: a JetStream delivery
//! (live lanes, replay) or a dead letter (redrive). One header policy turns it into the
//! plugin's `RawMessage`, so a plugin sees the same input on every path.

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use time::OffsetDateTime;

use millrace_core::sandbox::RawMessage;
use millrace_transport::raw_identity;
use millrace_transport::stored::Stored;

/// One raw message and what is known of it.
#[derive(Debug, Clone)]
pub struct RawInput {
    /// The raw subject.
    pub subject: String,
    /// The headers it was published with, exactly (nothing millrace added).
    pub headers: Option<HeaderMap>,
    /// The payload bytes.
    pub payload: Bytes,
    /// Its RAW stream sequence.
    pub sequence: u64,
    /// Its identity: the `Nats-Msg-Id` it was published with, else stream and sequence.
    pub identity: String,
    /// When JetStream stored it, when known.
    pub stored_at: Option<OffsetDateTime>,
}

impl RawInput {
    /// A raw message of the stream `raw_stream` at `sequence`.
    pub fn new(
        subject: String,
        headers: Option<HeaderMap>,
        payload: Bytes,
        raw_stream: &str,
        sequence: u64,
    ) -> Self {
        let identity = raw_identity(headers.as_ref(), raw_stream, sequence);
        Self {
            subject,
            headers,
            payload,
            sequence,
            identity,
            stored_at: None,
        }
    }

    /// A message delivered from the RAW stream `raw_stream`.
    pub fn delivered(message: &jetstream::Message, raw_stream: &str) -> Self {
        let (sequence, stored_at) = message.info().map_or((0, None), |info| {
            (info.stream_sequence, Some(info.published))
        });
        Self {
            stored_at,
            ..Self::new(
                message.subject.to_string(),
                message.headers.clone(),
                message.payload.clone(),
                raw_stream,
                sequence,
            )
        }
    }

    /// A message of the RAW stream `raw_stream` read through the JetStream API
    /// ([`millrace_transport::stored`]), or what is known of it when the NATS client cannot read
    /// its headers.
    pub fn read(stored: Stored, raw_stream: &str) -> Result<Self, Unreadable> {
        match stored.headers {
            Ok(headers) => Ok(Self {
                stored_at: stored.stored_at,
                ..Self::new(
                    stored.subject,
                    headers,
                    stored.payload,
                    raw_stream,
                    stored.sequence,
                )
            }),
            Err(why) => Err(Unreadable {
                subject: stored.subject,
                payload: stored.payload,
                why,
            }),
        }
    }

    /// What the plugin is given.
    pub fn message(&self) -> RawMessage {
        RawMessage {
            subject: self.subject.clone(),
            headers: plugin_headers(self.headers.as_ref()),
            payload: self.payload.to_vec(),
        }
    }
}

/// A stored raw message whose headers the NATS client cannot read.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// The raw subject.
    pub subject: String,
    /// The payload bytes.
    pub payload: Bytes,
    /// Why its headers cannot be read.
    pub why: String,
}

/// The header policy: every header the message was published with, each value as often as it
/// was sent, names exactly as written (case kept). NATS clients hand headers over as a map
/// keyed by name, so the order between different names is known to no host: millrace gives
/// them sorted by name (byte order), and the values of one name in the order received. Live
/// mapping, replay and redrive all give this, so a plugin sees the same list on each.
pub fn plugin_headers(headers: Option<&HeaderMap>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = headers
        .into_iter()
        .flat_map(|h| h.iter())
        .flat_map(|(name, values)| {
            values
                .iter()
                .map(move |value| (name.to_string(), value.as_str().to_owned()))
        })
        .collect();
    // Stable: the values of one name keep the order they arrived in.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_sorted_by_name_and_keep_the_order_of_repeated_values() {
        let mut headers = HeaderMap::new();
        headers.append("X-Zulu", "1");
        headers.append("x-alpha", "second-name-first-value");
        headers.append("X-Alpha", "upper");
        headers.append("x-alpha", "b-later");
        headers.append("x-alpha", "a-last");
        let pairs = plugin_headers(Some(&headers));
        let expected: Vec<(String, String)> = [
            ("X-Alpha", "upper"),
            ("X-Zulu", "1"),
            ("x-alpha", "second-name-first-value"),
            ("x-alpha", "b-later"),
            ("x-alpha", "a-last"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(pairs, expected);
        assert!(plugin_headers(None).is_empty());
    }

    #[test]
    fn the_identity_is_the_message_id_else_stream_and_sequence() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", "order-7");
        let with_id = RawInput::new("raw.a.b.c".into(), Some(headers), Bytes::new(), "RAW", 9);
        assert_eq!(with_id.identity, "order-7");
        let without = RawInput::new("raw.a.b.c".into(), None, Bytes::new(), "RAW", 9);
        assert_eq!(without.identity, "RAW:9");
    }
}
