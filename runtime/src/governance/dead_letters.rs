//! The newest dead letters, listed without reading the whole DLQ: headers only (payloads stay
//! on the server), from the tail of the stream backwards in windows, within a time limit. The
//! admin API and the console list through here, so a large DLQ or many callers at once cost
//! the server a bounded read each, never a replay of every payload.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::StreamExt;

use super::redrive::{LetterSummary, StoredLetter};
use crate::config::Config;

/// Most letters one listing returns.
pub const MAX_LIST: usize = 1000;

/// Most stream sequences one listing looks at, newest first, to find its letters.
pub const MAX_SCAN: u64 = 100_000;

/// The newest `limit` dead letters (of `route`, when given), oldest first, read within
/// `within`.
pub async fn recent(
    js: &jetstream::Context,
    config: &Config,
    route: Option<&str>,
    limit: usize,
    within: Duration,
) -> anyhow::Result<Vec<LetterSummary>> {
    let limit = limit.clamp(1, MAX_LIST);
    let filter = route.map_or_else(|| "dlq.>".to_owned(), |r| format!("dlq.{r}"));
    let deadline = Instant::now() + within;
    tokio::time::timeout(within, async {
        let mut stream = js.get_stream(&config.streams.dlq).await.with_context(|| {
            format!("cannot open the dead-letter stream {}", config.streams.dlq)
        })?;
        let state = stream
            .info()
            .await
            .with_context(|| format!("cannot read the dead-letter stream {}", config.streams.dlq))?
            .state
            .clone();
        let mut found: Vec<LetterSummary> = Vec::new();
        if state.messages == 0 {
            return Ok(found);
        }
        let first = state.first_sequence.max(1);
        let mut end = state.last_sequence;
        let mut window = (limit as u64).max(64);
        let mut scanned = 0;
        while found.len() < limit && end >= first && scanned < MAX_SCAN {
            let start = end.saturating_sub(window - 1).max(first);
            let mut batch = window_headers(&stream, &filter, start, end, deadline).await?;
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
            "listing the dead letters took longer than {within:?}: the server is busy, try again"
        )
    })?
}

/// The letters with stream sequences `start..=end` matching `filter`, headers only.
async fn window_headers(
    stream: &jetstream::stream::Stream,
    filter: &str,
    start: u64,
    end: u64,
    deadline: Instant,
) -> anyhow::Result<Vec<LetterSummary>> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: filter.to_owned(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            headers_only: true,
            ..Default::default()
        })
        .await
        .context("cannot read the dead-letter stream")?;
    let mut consumer = consumer;
    if consumer
        .info()
        .await
        .context("cannot read the dead-letter stream")?
        .num_pending
        == 0
    {
        return Ok(Vec::new());
    }
    let mut messages = consumer
        .messages()
        .await
        .context("cannot read the dead-letter stream")?;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, messages.next()).await else {
            bail!("reading the dead-letter stream timed out");
        };
        let Some(message) = next else { break };
        let message = message.context("reading the dead-letter stream failed")?;
        let Ok(info) = message.info() else { break };
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if sequence > end {
            break;
        }
        let letter = StoredLetter {
            sequence,
            subject: message.subject.to_string(),
            headers: message.headers.clone().unwrap_or_default(),
            payload: Bytes::new(),
        };
        out.push(letter.summary());
        if sequence >= end || pending == 0 {
            break;
        }
    }
    Ok(out)
}
