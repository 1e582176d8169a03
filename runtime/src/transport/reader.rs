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
