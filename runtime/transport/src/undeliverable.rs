//! Raw messages JetStream gave up delivering: a route's consumer delivers a message at most
//! `max_deliveries` times without an ack, then publishes an advisory
//! ([`subjects::max_deliveries_advisories`]), which the UNDELIVERABLE stream keeps so that a
//! host reads each one once, even when none was running at the time.
//!
//! Two kinds of message end there. One the NATS client cannot read: async-nats drops its
//! connection on a header block that is not UTF-8 text or has a line without `:` (a publisher
//! writing a Latin-1 value), so the host never sees the message and JetStream redelivers it
//! after every `ack_wait`. And one the host took in and failed on every time (a host failure is
//! redelivered, never dead-lettered, while there are deliveries left). Either way the message
//! is read here through the JetStream API, whose JSON answer carries the header block as bytes
//! the client does not parse, so that a host can dead-letter it.

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Deserialize;

use millrace_core::config::StreamsConfig;
use millrace_core::subjects;

/// The durable consumer of the UNDELIVERABLE stream that hosts share.
pub const CONSUMER: &str = "millrace_undeliverable";

/// JetStream's `io.nats.jetstream.advisory.v1.max_deliver`.
#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    /// The stream of the message.
    pub stream: String,
    /// The consumer that gave up.
    pub consumer: String,
    /// The message's stream sequence.
    pub stream_seq: u64,
    /// How often it was delivered.
    pub deliveries: u64,
}

/// Opens (creating when missing) the consumer of the UNDELIVERABLE stream, filtered by
/// `streams.raw`'s advisories.
pub async fn advisories(
    js: &jetstream::Context,
    streams: &StreamsConfig,
) -> anyhow::Result<consumer::PullConsumer> {
    let stream = js
        .get_stream(&streams.undeliverable)
        .await
        .with_context(|| format!("cannot open the stream {}", streams.undeliverable))?;
    stream
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                filter_subject: subjects::max_deliveries_advisories(&streams.raw),
                ack_policy: consumer::AckPolicy::Explicit,
                // No limit: a host settles or gives up on each advisory itself (a host failure
                // is tried again until it is mended; see the host's `lanes::undeliverable`).
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await
        .map_err(anyhow::Error::new)
        .with_context(|| {
            format!(
                "cannot open the consumer {CONSUMER} of the stream {}",
                streams.undeliverable
            )
        })
}

/// A stored message, read through the JetStream API.
#[derive(Debug)]
pub struct Stored {
    /// Its subject.
    pub subject: String,
    /// Its headers, or why the NATS client cannot read them.
    pub headers: Result<Option<HeaderMap>, String>,
    /// Its payload.
    pub payload: Bytes,
}

/// The answer of `$JS.API.STREAM.MSG.GET`.
#[derive(Debug, Deserialize)]
struct GetAnswer {
    message: Option<GotMessage>,
    error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct GotMessage {
    subject: String,
    #[serde(default)]
    hdrs: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: u16,
    #[serde(default)]
    description: String,
}

/// The message of `stream` at `sequence`, read through the JetStream API (JSON, so headers the
/// client cannot parse do not cost the connection); `None` when the stream no longer holds it.
pub async fn stored_message(
    client: &async_nats::Client,
    stream: &str,
    sequence: u64,
) -> anyhow::Result<Option<Stored>> {
    let request = serde_json::json!({ "seq": sequence }).to_string();
    let answer = client
        .request(format!("$JS.API.STREAM.MSG.GET.{stream}"), request.into())
        .await
        .with_context(|| format!("cannot read message {sequence} of stream {stream}"))?;
    let answer: GetAnswer = serde_json::from_slice(&answer.payload)
        .with_context(|| format!("JetStream's answer for message {sequence} of {stream}"))?;
    if let Some(error) = answer.error {
        if error.code == 404 {
            return Ok(None);
        }
        anyhow::bail!(
            "cannot read message {sequence} of stream {stream}: {} ({})",
            error.description,
            error.code
        );
    }
    let message = answer
        .message
        .with_context(|| format!("JetStream answered no message {sequence} of {stream}"))?;
    let decode = |field: Option<String>, what: &str| {
        BASE64
            .decode(field.unwrap_or_default())
            .with_context(|| format!("the {what} of message {sequence} of {stream}"))
    };
    let block = decode(message.hdrs, "headers")?;
    Ok(Some(Stored {
        subject: message.subject,
        headers: if block.is_empty() {
            Ok(None)
        } else {
            header_block(&block).map(Some)
        },
        payload: decode(message.data, "payload")?.into(),
    }))
}

/// A header block (`NATS/1.0` and `Name: value` lines) read as async-nats reads one off the
/// wire, or why it cannot: the reasons the client would drop its connection over.
pub fn header_block(block: &[u8]) -> Result<HeaderMap, String> {
    let text = std::str::from_utf8(block).map_err(|e| {
        let line = block[..e.valid_up_to()]
            .rsplit(|b| *b == b'\n')
            .next()
            .unwrap_or_default();
        format!(
            "its header block is not UTF-8 text (byte {:#04x} after `{}`): a value written in \
             another encoding, such as Latin-1; NATS headers are UTF-8",
            block[e.valid_up_to()],
            String::from_utf8_lossy(line).trim()
        )
    })?;
    let mut lines = text.lines().peekable();
    let version = lines.next().unwrap_or_default();
    if version.is_empty() {
        return Err("its header block is empty, without the `NATS/1.0` line".to_owned());
    }
    if !version.starts_with("NATS/1.0") {
        return Err(format!(
            "its header block starts with `{version}`, not `NATS/1.0`"
        ));
    }
    let mut headers = HeaderMap::new();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("its header line `{line}` has no `:`"))?;
        let name: async_nats::header::HeaderName = name
            .parse()
            .map_err(|e| format!("its header name `{name}` is not valid: {e}"))?;
        let mut value = value.trim_start().to_owned();
        while let Some(more) = lines.next_if(|l| l.starts_with(char::is_whitespace)) {
            value.push_str(more);
        }
        headers.append(name, value.trim_end());
    }
    Ok(headers)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_header_block_reads_as_the_client_reads_it() {
        let headers =
            header_block(b"NATS/1.0\r\nX-Plant: Berlin\r\nX-Note: two\r\n  lines\r\n\r\n").unwrap();
        assert_eq!(
            crate::header_value(Some(&headers), "X-Plant"),
            Some("Berlin")
        );
        assert_eq!(
            crate::header_value(Some(&headers), "X-Note"),
            Some("two  lines")
        );
    }

    #[test]
    fn what_the_client_cannot_read_is_named() {
        let latin1 = header_block(b"NATS/1.0\r\nX-Plant: M\xfcnchen\r\n\r\n").unwrap_err();
        assert!(
            latin1.contains("not UTF-8") && latin1.contains("X-Plant: M"),
            "{latin1}"
        );
        let no_colon = header_block(b"NATS/1.0\r\nX-Plant Berlin\r\n\r\n").unwrap_err();
        assert!(
            no_colon.contains("`X-Plant Berlin` has no `:`"),
            "{no_colon}"
        );
        let bad_name = header_block(b"NATS/1.0\r\nX Pl\xc3\xa4nt: B\r\n\r\n").unwrap_err();
        assert!(bad_name.contains("header name"), "{bad_name}");
        let version = header_block(b"HTTP/1.1\r\n\r\n").unwrap_err();
        assert!(version.contains("not `NATS/1.0`"), "{version}");
    }
}
