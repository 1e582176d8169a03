//! The newest dead letters, listed without reading the whole DLQ: headers only (payloads stay
//! on the server), from the tail of the stream backwards in windows, within a time limit. The
//! admin API and the console list through here, so a large DLQ or many callers at once cost
//! the server a bounded read each, never a replay of every payload.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use bytes::Bytes;

use super::redrive::{LetterSummary, StoredLetter};
use millrace_core::config::StreamsConfig;
use millrace_transport::reader;

/// Most letters one listing returns.
pub const MAX_LIST: usize = 1000;

/// The newest `limit` dead letters on `filter` (see
/// [`dead_letter_filter`](super::redrive::dead_letter_filter)) of the `[streams]` DLQ, oldest
/// first, read within `within`.
pub async fn recent(
    js: &jetstream::Context,
    streams: &StreamsConfig,
    filter: &str,
    limit: usize,
    within: Duration,
) -> anyhow::Result<Vec<LetterSummary>> {
    let messages = reader::tail(
        js,
        &streams.dlq,
        filter,
        limit.clamp(1, MAX_LIST),
        true,
        within,
    )
    .await
    .context("cannot list the dead letters")?;
    Ok(messages
        .into_iter()
        .map(|message| {
            StoredLetter {
                sequence: message.info().map_or(0, |info| info.stream_sequence),
                subject: message.subject.to_string(),
                headers: message.headers.clone().unwrap_or_default(),
                payload: Bytes::new(),
            }
            .summary()
        })
        .collect())
}
