//! Reading a range of a stream, for the dead-letter tools and replays: an ordered consumer
//! from a start point up to what the stream held when reading began.

use anyhow::Context;
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
