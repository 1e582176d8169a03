//! Stored messages read through the JetStream API (`$JS.API.STREAM.MSG.GET`), one request a
//! message. Its JSON answer carries the header block as bytes the NATS client does not parse:
//! async-nats drops its connection on a header block that is not UTF-8 text or has a line
//! without `:` (a publisher writing a Latin-1 value), so a consumer delivering such a message
//! costs the connection, every time it is delivered. Whatever may read a raw message a
//! publisher wrote (the undeliverable advisories, a letter's redrive, a replay) reads it here.

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A stored message, read through the JetStream API.
#[derive(Debug)]
pub struct Stored {
    /// Its stream sequence.
    pub sequence: u64,
    /// When the stream stored it, when the server said.
    pub stored_at: Option<OffsetDateTime>,
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
    seq: u64,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    hdrs: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: u16,
    #[serde(default)]
    err_code: u32,
    #[serde(default)]
    description: String,
}

/// JetStream's error code for "no message found" (a 404 also answers a stream not found).
const NO_MESSAGE_FOUND: u32 = 10037;

/// The message of `stream` at `sequence`; `None` when the stream no longer holds it.
pub async fn stored_message(
    client: &async_nats::Client,
    stream: &str,
    sequence: u64,
) -> anyhow::Result<Option<Stored>> {
    let request = serde_json::json!({ "seq": sequence });
    get(client, stream, request, &format!("message {sequence}")).await
}

/// The first message of `stream` at `sequence` or after it whose subject matches `filter`
/// (wildcards allowed); `None` when there is none.
pub async fn next_stored_message(
    client: &async_nats::Client,
    stream: &str,
    sequence: u64,
    filter: &str,
) -> anyhow::Result<Option<Stored>> {
    let request = serde_json::json!({ "seq": sequence, "next_by_subj": filter });
    get(
        client,
        stream,
        request,
        &format!("the message at or after {sequence}"),
    )
    .await
}

async fn get(
    client: &async_nats::Client,
    stream: &str,
    request: serde_json::Value,
    what: &str,
) -> anyhow::Result<Option<Stored>> {
    let answer = client
        .request(
            format!("$JS.API.STREAM.MSG.GET.{stream}"),
            request.to_string().into(),
        )
        .await
        .with_context(|| format!("cannot read {what} of stream {stream}"))?;
    let answer: GetAnswer = serde_json::from_slice(&answer.payload)
        .with_context(|| format!("JetStream's answer for {what} of {stream}"))?;
    if let Some(error) = answer.error {
        if error.code == 404 && error.err_code == NO_MESSAGE_FOUND {
            return Ok(None);
        }
        anyhow::bail!(
            "cannot read {what} of stream {stream}: {} ({})",
            error.description,
            error.code
        );
    }
    let message = answer
        .message
        .with_context(|| format!("JetStream answered no {what} of {stream}"))?;
    let sequence = message.seq;
    let decode = |field: Option<String>, part: &str| {
        BASE64
            .decode(field.unwrap_or_default())
            .with_context(|| format!("the {part} of message {sequence} of {stream}"))
    };
    let block = decode(message.hdrs, "headers")?;
    Ok(Some(Stored {
        sequence,
        stored_at: message
            .time
            .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok()),
        subject: message.subject,
        headers: if block.is_empty() {
            Ok(None)
        } else {
            header_block(&block).map(Some)
        },
        payload: decode(message.data, "payload")?.into(),
    }))
}

/// A range of one stream read message by message through the JetStream API, oldest first,
/// up to what the stream held when the range was opened. Slower than a consumer's batches
/// (a request a message), but a message the client cannot read is a [`Stored`] with the
/// reason, not a dropped connection and a consumer that delivers it again.
pub struct StoredRange {
    client: async_nats::Client,
    stream: String,
    first: u64,
    last: u64,
    /// One per subject filter, so that the server skips what none of them matches.
    cursors: Vec<Cursor>,
}

/// Where one subject filter's reading is: the message it found next, not yet returned.
struct Cursor {
    filter: String,
    from: u64,
    found: Option<Stored>,
}

impl StoredRange {
    /// Opens the range of `stream` from `start` (a sequence or a time; anything else reads
    /// from the first message) for the subjects matching any of `filters` (e.g. `raw.>`).
    pub async fn open(
        js: &jetstream::Context,
        stream: &str,
        filters: &[impl AsRef<str>],
        start: consumer::DeliverPolicy,
    ) -> anyhow::Result<Self> {
        let mut handle = js.get_stream(stream).await.with_context(|| {
            format!("cannot open stream {stream}: has a host run against this server?")
        })?;
        let last = handle
            .info()
            .await
            .with_context(|| format!("cannot read stream {stream}"))?
            .state
            .last_sequence;
        let from = match start {
            consumer::DeliverPolicy::ByStartSequence { start_sequence } => start_sequence,
            consumer::DeliverPolicy::ByStartTime { .. } => {
                first_sequence_from(&handle, stream, start).await?
            }
            _ => 1,
        };
        let cursors = filters
            .iter()
            .map(|filter| Cursor {
                filter: filter.as_ref().to_owned(),
                from,
                found: None,
            })
            .collect();
        Ok(Self {
            client: js.client(),
            stream: stream.to_owned(),
            first: from,
            last,
            cursors,
        })
    }

    /// The stream read.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The sequence the range starts at (for a time, the first message stored at it or
    /// after).
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The next message, or `None` at the end of the range.
    pub async fn next(&mut self) -> anyhow::Result<Option<Stored>> {
        for cursor in &mut self.cursors {
            if cursor.found.is_some() || cursor.from > self.last {
                continue;
            }
            let found =
                next_stored_message(&self.client, &self.stream, cursor.from, &cursor.filter)
                    .await?
                    .filter(|stored| stored.sequence <= self.last);
            cursor.from = found
                .as_ref()
                .map_or(u64::MAX, |stored| stored.sequence + 1);
            cursor.found = found;
        }
        let Some(first) = self
            .cursors
            .iter()
            .filter_map(|c| c.found.as_ref().map(|stored| stored.sequence))
            .min()
        else {
            return Ok(None);
        };
        // Filters that overlap found the same message: it is returned once.
        let mut taken = None;
        for cursor in &mut self.cursors {
            if cursor.found.as_ref().is_some_and(|s| s.sequence == first) {
                taken = cursor.found.take();
            }
        }
        Ok(taken)
    }
}

/// The first sequence a consumer starting at `start` would deliver: the server picks it when
/// the consumer is created and reports the one before as delivered. The consumer pulls nothing
/// (so no message of the range crosses the client) and is deleted at once.
async fn first_sequence_from(
    handle: &jetstream::stream::Stream,
    stream: &str,
    start: consumer::DeliverPolicy,
) -> anyhow::Result<u64> {
    let mut probe: consumer::PullConsumer = handle
        .create_consumer(consumer::pull::Config {
            deliver_policy: start,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: std::time::Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot read stream {stream}"))?;
    let delivered = probe
        .info()
        .await
        .with_context(|| format!("cannot read stream {stream}"))?
        .delivered
        .stream_sequence;
    let name = probe.cached_info().name.clone();
    let _ = handle.delete_consumer(&name).await;
    Ok(delivered + 1)
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
            quoted(String::from_utf8_lossy(line).trim())
        )
    })?;
    let mut lines = text.lines().peekable();
    let version = lines.next().unwrap_or_default();
    if version.is_empty() {
        return Err("its header block is empty, without the `NATS/1.0` line".to_owned());
    }
    let Some(suffix) = version.strip_prefix("NATS/1.0").map(str::trim) else {
        return Err(format!(
            "its header block starts with `{}`, not `NATS/1.0`",
            quoted(version)
        ));
    };
    // What follows the version is a status code, then a description: the client parses the
    // code when there is one.
    let status = suffix
        .split_once(' ')
        .map_or(suffix, |(code, _)| code.trim());
    if !status.is_empty() && status.parse::<async_nats::StatusCode>().is_err() {
        return Err(format!(
            "its header block's first line `{}` has `{}` after `NATS/1.0`, not a status code \
             (three digits)",
            quoted(version),
            quoted(status)
        ));
    }
    let mut headers = HeaderMap::new();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("its header line `{}` has no `:`", quoted(line)))?;
        let name: async_nats::header::HeaderName = name
            .parse()
            .map_err(|e| format!("its header name `{}` is not valid: {e}", quoted(name)))?;
        let mut value = value.trim_start().to_owned();
        while let Some(more) = lines.next_if(|l| l.starts_with(char::is_whitespace)) {
            value.push_str(more);
        }
        headers.append(name, value.trim_end());
    }
    Ok(headers)
}

/// Most characters of a publisher's text a reason quotes.
const QUOTED: usize = 80;

/// `text` as a reason quotes it: at most [`QUOTED`] characters, then `…`.
fn quoted(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]).into(),
        None => text.into(),
    }
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
        let status = header_block(b"NATS/1.0 abc\r\nX: 1\r\n\r\n").unwrap_err();
        assert!(status.contains("`abc` after `NATS/1.0`"), "{status}");
        let status = header_block(b"NATS/1.0 42 Short\r\n\r\n").unwrap_err();
        assert!(status.contains("`42` after"), "{status}");
        for readable in [
            &b"NATS/1.0 503\r\nX: 1\r\n\r\n"[..],
            b"NATS/1.0 100 Idle Heartbeat\r\n\r\n",
            b"NATS/1.0   \r\nX: 1\r\n\r\n",
        ] {
            assert!(header_block(readable).is_ok(), "{readable:?}");
        }
    }

    #[test]
    fn a_long_line_is_quoted_in_part() {
        let mut block = b"NATS/1.0\r\nX-Big ".to_vec();
        block.extend(std::iter::repeat_n(b'A', 60_000));
        block.extend(b"\r\n\r\n");
        let why = header_block(&block).unwrap_err();
        assert!(
            why.len() < 200 && why.contains("AAAA…` has no `:`"),
            "{why}"
        );
        block.insert(block.len() - 4, 0xfc);
        let why = header_block(&block).unwrap_err();
        assert!(why.len() < 300 && why.contains("not UTF-8"), "{why}");
    }
}
