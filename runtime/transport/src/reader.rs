//! Reading a range of a stream millrace writes (dead letters, canonical events), for the
//! dead-letter tools, a replay's look at CANONICAL and the projection's rebuild: an ordered
//! consumer from a start point up to what the stream held when reading began. RAW, which holds
//! what publishers wrote, is read through [`crate::stored`] instead.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;

/// Reads the messages of one stream that match a filter, oldest first, and stops at the end
/// of what the stream held when it was opened.
pub struct StreamReader {
    messages: Option<consumer::pull::Ordered>,
}

impl StreamReader {
    /// Opens a reader of `stream` for `filter` (e.g. `dlq.>`; `None` for every subject) from
    /// `start`.
    pub async fn open(
        js: &jetstream::Context,
        stream: &str,
        filter: Option<&str>,
        start: consumer::DeliverPolicy,
        headers_only: bool,
    ) -> anyhow::Result<Self> {
        let stream_handle = js.get_stream(stream).await.with_context(|| {
            format!("cannot open stream {stream}: has a host run against this server?")
        })?;
        let mut consumer = stream_handle
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter.unwrap_or_default().to_owned(),
                deliver_policy: start,
                headers_only,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot read stream {stream}"))?;
        let pending = consumer
            .info()
            .await
            .with_context(|| format!("cannot read stream {stream}"))?
            .num_pending;
        let messages = if pending == 0 {
            None
        } else {
            Some(
                consumer
                    .messages()
                    .await
                    .with_context(|| format!("cannot read stream {stream}"))?,
            )
        };
        Ok(Self { messages })
    }

    /// The next message, or `None` at the end of the range.
    pub async fn next(&mut self) -> anyhow::Result<Option<jetstream::Message>> {
        let Some(messages) = self.messages.as_mut() else {
            return Ok(None);
        };
        let Some(message) = messages.next().await else {
            return Ok(None);
        };
        let message = message.context("reading the stream failed")?;
        if message.info().map_or(true, |info| info.pending == 0) {
            self.messages = None;
        }
        Ok(Some(message))
    }
}

/// The message at `sequence` of `stream` with its headers exactly as stored, or `None` when
/// there is none. (async-nats' direct message get keeps one value per header name, so a
/// repeated header would be lost; a one-message consumer keeps them all.)
pub async fn message_at(
    js: &jetstream::Context,
    stream: &str,
    sequence: u64,
) -> anyhow::Result<Option<jetstream::Message>> {
    let handle = js
        .get_stream(stream)
        .await
        .with_context(|| format!("cannot open stream {stream}"))?;
    let consumer: consumer::PullConsumer = handle
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: sequence,
            },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: std::time::Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot read stream {stream}"))?;
    let fetched = async {
        let mut batch = consumer.fetch().max_messages(1).messages().await?;
        batch.next().await.transpose()
    }
    .await;
    let name = consumer.cached_info().name.clone();
    // Ephemeral, so it would go by itself; deleting it at once keeps the server tidy.
    let _ = handle.delete_consumer(&name).await;
    let message = fetched.map_err(|e| anyhow::anyhow!("cannot read stream {stream}: {e}"))?;
    Ok(message.filter(|m| m.info().is_ok_and(|info| info.stream_sequence == sequence)))
}

/// Most stream sequences one [`tail`] looks at, newest first, to find its messages.
pub const MAX_TAIL_SCAN: u64 = 100_000;

/// The newest `limit` messages of `stream` matching `filter`, oldest first, read within
/// `within`: from the end of the stream backwards in growing windows, so a large stream or many
/// callers at once cost the server a bounded read each, never a replay of the whole stream.
/// With `headers_only` the payloads stay on the server.
pub async fn tail(
    js: &jetstream::Context,
    stream: &str,
    filter: &str,
    limit: usize,
    headers_only: bool,
    within: Duration,
) -> anyhow::Result<Vec<jetstream::Message>> {
    let limit = limit.max(1);
    let deadline = Instant::now() + within;
    tokio::time::timeout(within, async {
        let mut handle = js
            .get_stream(stream)
            .await
            .with_context(|| format!("cannot open stream {stream}"))?;
        let state = handle
            .info()
            .await
            .with_context(|| format!("cannot read stream {stream}"))?
            .state
            .clone();
        let mut found = Vec::new();
        if state.messages == 0 {
            return Ok(found);
        }
        let first = state.first_sequence.max(1);
        let mut end = state.last_sequence;
        let mut window = (limit as u64).max(64);
        let mut scanned = 0;
        while found.len() < limit && end >= first && scanned < MAX_TAIL_SCAN {
            let start = end.saturating_sub(window - 1).max(first);
            let mut batch = window_of(&handle, filter, start, end, headers_only, deadline).await?;
            batch.append(&mut found);
            found = batch;
            scanned += end - start + 1;
            if start == first {
                break;
            }
            end = start - 1;
            window = window.saturating_mul(2);
        }
        let skip = found.len().saturating_sub(limit);
        Ok(found.split_off(skip))
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "reading {stream} took longer than {within:?}: the server is busy, try again"
        )
    })?
}

/// The messages with stream sequences `start..=end` matching `filter`.
async fn window_of(
    stream: &jetstream::stream::Stream,
    filter: &str,
    start: u64,
    end: u64,
    headers_only: bool,
    deadline: Instant,
) -> anyhow::Result<Vec<jetstream::Message>> {
    let name = &stream.cached_info().config.name;
    let mut consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.to_owned(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            headers_only,
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot read stream {name}"))?;
    if consumer
        .info()
        .await
        .with_context(|| format!("cannot read stream {name}"))?
        .num_pending
        == 0
    {
        return Ok(Vec::new());
    }
    let mut messages = consumer
        .messages()
        .await
        .with_context(|| format!("cannot read stream {name}"))?;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, messages.next()).await else {
            bail!("reading stream {name} timed out");
        };
        let Some(message) = next else { break };
        let message = message.with_context(|| format!("reading stream {name} failed"))?;
        let Ok(info) = message.info() else { break };
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if sequence > end {
            break;
        }
        out.push(message);
        if sequence >= end || pending == 0 {
            break;
        }
    }
    Ok(out)
}
