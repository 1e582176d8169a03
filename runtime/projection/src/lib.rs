//! The visibility projection: one trusted picture of stock, work orders, quality holds,
//! supplier commitments and source freshness across plants, built from the canonical stream.
//!
//! A durable consumer reads the canonical stream in order (one event in flight) and applies
//! each event to records in key-value buckets ([`state`] says how each kind applies), with
//! compare-and-set writes, and acks it only after the writes. A restart resumes at the first
//! unacknowledged event; a redelivered event finds its id in the records it changed and
//! changes nothing again; an event older than a record's newest state never overwrites it.
//! [`Projection::rebuild`] drops the state and applies the whole stream again. The read side
//! is [`query::Visibility`]. `docs/PROJECTION.md` has the key layout and the rules.
#![deny(missing_docs)]

pub mod amount;
pub mod buckets;
pub mod query;
pub mod state;

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use self::buckets::Buckets;
use self::state::{
    Change, CommitmentRecord, HoldRecord, ProjectedEvent, SourceRecord, StockRecord,
    WorkOrderRecord, apply_once, plan,
};
use millrace_core::config::Config;

/// How long an event whose writes failed waits before it is redelivered.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the projection waits before it opens its consumer again after losing it.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// How long JetStream waits for the ack of an event before redelivering it.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Why the projection could not read or write its state; transient unless the message says
/// otherwise.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// A key-value bucket could not be read or written.
    #[error("projection bucket {bucket}: {message}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// What failed.
        message: String,
    },
    /// The canonical stream or the projection's consumer could not be used.
    #[error(
        "projection consumer on stream {stream}: {message} (has a host created the stream? is JetStream enabled?)"
    )]
    Stream {
        /// The stream.
        stream: String,
        /// What failed.
        message: String,
    },
}

impl ProjectionError {
    fn bucket(bucket: &str, message: impl std::fmt::Display) -> Self {
        Self::Bucket {
            bucket: bucket.to_owned(),
            message: message.to_string(),
        }
    }
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It changed this many records.
    Changed(usize),
    /// It changed nothing: applied before, or older than the state it would replace.
    Unchanged,
    /// It is no canonical event the projection can read (logged, then skipped).
    Unreadable,
}

/// Counts of a rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// Events read from the canonical stream.
    pub events: u64,
    /// Of those, events that changed state.
    pub applied: u64,
    /// Events that changed nothing (repeats, older states).
    pub unchanged: u64,
    /// Messages that were no readable canonical event.
    pub unreadable: u64,
    /// Records per bucket afterwards: inventory, work orders, holds, commitments, sources.
    pub records: [u64; 5],
}

/// The projection: the canonical stream applied to the buckets.
#[derive(Clone)]
pub struct Projection {
    js: jetstream::Context,
    buckets: Buckets,
    stream: String,
    consumer: String,
}

impl Projection {
    /// Opens the projection's buckets (creating missing ones) for the configuration's
    /// canonical stream.
    pub async fn open(js: &jetstream::Context, config: &Config) -> Result<Self, ProjectionError> {
        Ok(Self {
            js: js.clone(),
            buckets: Buckets::open(js, &config.projection).await?,
            stream: config.streams.canonical.clone(),
            consumer: config.projection.consumer.clone(),
        })
    }

    fn stream_error(&self, message: impl std::fmt::Display) -> ProjectionError {
        ProjectionError::Stream {
            stream: self.stream.clone(),
            message: message.to_string(),
        }
    }

    /// Applies events as they arrive until `shutdown`; a lost consumer or connection is
    /// opened again, so only the shutdown ends it.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            stream = &*self.stream,
            consumer = &*self.consumer,
            "projection running"
        );
        while !shutdown.is_cancelled() {
            if let Err(e) = self.consume(&shutdown).await {
                tracing::warn!("{e}; opening the consumer again in {REOPEN_AFTER:?}");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(REOPEN_AFTER) => {}
                }
            }
        }
    }

    /// The durable consumer: every event of the stream, in order, one at a time, so the
    /// per-source high-water marks stay exact and a late redelivery cannot overtake.
    async fn consumer(&self) -> Result<consumer::PullConsumer, ProjectionError> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| self.stream_error(e))?;
        stream
            .get_or_create_consumer(
                &self.consumer,
                consumer::pull::Config {
                    durable_name: Some(self.consumer.clone()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ack_wait: ACK_WAIT,
                    max_ack_pending: 1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.stream_error(e))
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<(), ProjectionError> {
        let consumer = self.consumer().await?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| self.stream_error(e))?;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            let message = next
                .ok_or_else(|| self.stream_error("the consumer ended"))?
                .map_err(|e| self.stream_error(e))?;
            self.settle(&message).await?;
        }
    }

    /// Applies one message and acks it; on a failed write, asks for a redelivery.
    async fn settle(&self, message: &jetstream::Message) -> Result<Applied, ProjectionError> {
        match self.apply(message).await {
            Ok(applied) => {
                message
                    .double_ack()
                    .await
                    .map_err(|e| self.stream_error(e))?;
                Ok(applied)
            }
            Err(e) => {
                tracing::warn!("{e}; the event is retried in {RETRY_AFTER:?}");
                let _ = message.ack_with(AckKind::Nak(Some(RETRY_AFTER))).await;
                Err(e)
            }
        }
    }

    /// Applies one message of the canonical stream to the buckets.
    pub async fn apply(&self, message: &jetstream::Message) -> Result<Applied, ProjectionError> {
        let info = message.info().map_err(|e| self.stream_error(e))?;
        let (sequence, published) = (info.stream_sequence, info.published);
        let event = match ProjectedEvent::read(&message.payload) {
            Ok(event) => event,
            Err(reason) => {
                tracing::warn!(sequence, "projection skips {}: {reason}", message.subject);
                return Ok(Applied::Unreadable);
            }
        };
        let mut changed = 0;
        for change in plan(&event) {
            let b = &self.buckets;
            let done = match change {
                Change::Stock(key, change) => {
                    b.inventory
                        .update(
                            &key.bucket_key(),
                            || StockRecord::new(key.clone()),
                            |r| apply_once(r, &change, &event),
                        )
                        .await?
                }
                Change::WorkOrder(key, change) => {
                    b.work_orders
                        .update(
                            &key.bucket_key(),
                            || WorkOrderRecord::new(key.clone()),
                            |r| apply_once(r, &change, &event),
                        )
                        .await?
                }
                Change::Hold(key, hold) => {
                    b.holds
                        .update(
                            &key.bucket_key(),
                            || HoldRecord::new(key.clone(), &hold),
                            |r| apply_once(r, &hold, &event),
                        )
                        .await?
                }
                Change::Commitment(key, commitment) => {
                    b.commitments
                        .update(
                            &key.bucket_key(),
                            || CommitmentRecord::new(key.clone()),
                            |r| apply_once(r, &commitment, &event),
                        )
                        .await?
                }
            };
            changed += usize::from(done);
        }
        let published = published.format(&Rfc3339).unwrap_or_default();
        self.buckets
            .sources
            .update(
                &SourceRecord::bucket_key(&event.site, &event.system),
                || SourceRecord::new(&event.site, &event.system),
                |r| r.see(&event, sequence, &published),
            )
            .await?;
        tracing::debug!(
            sequence,
            id = &*event.id,
            kind = event.data.kind(),
            changed,
            late = event.late,
            "projected"
        );
        Ok(if changed == 0 {
            Applied::Unchanged
        } else {
            Applied::Changed(changed)
        })
    }

    /// Drops the projected state and applies the whole canonical stream again from its first
    /// event, through a fresh durable consumer (which a running projection then continues).
    pub async fn rebuild(&self) -> Result<RebuildReport, ProjectionError> {
        let mut stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| self.stream_error(e))?;
        // A running projection would recreate the consumer from the first event and race
        // this rebuild; its waiting pull request gives it away.
        if let Ok(info) = stream.consumer_info(&self.consumer).await
            && info.num_waiting > 0
        {
            return Err(self.stream_error(format!(
                "a projection is consuming `{}`: stop it (or set `projection.enabled = false` on its host) and rebuild again",
                self.consumer
            )));
        }
        // Gone already is fine: the point is that it starts over.
        let _ = stream.delete_consumer(&self.consumer).await;
        self.buckets.purge().await?;
        let last = stream
            .info()
            .await
            .map_err(|e| self.stream_error(e))?
            .state
            .last_sequence;
        let consumer = self.consumer().await?;
        let mut report = RebuildReport::default();
        if last > 0 {
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| self.stream_error(e))?;
            loop {
                let next = tokio::time::timeout(REOPEN_AFTER * 2, messages.next()).await;
                let message = match next {
                    Ok(Some(message)) => message.map_err(|e| self.stream_error(e))?,
                    Ok(None) => return Err(self.stream_error("the consumer ended")),
                    // Nothing came: done when nothing is left for this consumer (another
                    // projection sharing it may have applied the rest).
                    Err(_) => {
                        if self.drained(&consumer, last).await? {
                            break;
                        }
                        continue;
                    }
                };
                let sequence = message.info().map_or(0, |i| i.stream_sequence);
                match self.settle(&message).await {
                    Ok(Applied::Changed(_)) => report.applied += 1,
                    Ok(Applied::Unchanged) => report.unchanged += 1,
                    Ok(Applied::Unreadable) => report.unreadable += 1,
                    // The event stays unacked; a second rebuild starts over.
                    Err(e) => return Err(e),
                }
                report.events += 1;
                if sequence >= last {
                    break;
                }
            }
        }
        let b = &self.buckets;
        for (slot, bucket) in report.records.iter_mut().zip([
            &b.inventory,
            &b.work_orders,
            &b.holds,
            &b.commitments,
            &b.sources,
        ]) {
            *slot = b.count(bucket).await?;
        }
        Ok(report)
    }

    /// True when `consumer` has nothing left up to `last`.
    async fn drained(
        &self,
        consumer: &consumer::PullConsumer,
        last: u64,
    ) -> Result<bool, ProjectionError> {
        let mut consumer = consumer.clone();
        let info = consumer.info().await.map_err(|e| self.stream_error(e))?;
        Ok(info.num_pending == 0
            && info.num_ack_pending == 0
            && info.ack_floor.stream_sequence >= last)
    }

    /// True when the projection has applied every event the stream holds.
    pub async fn caught_up(&self) -> Result<bool, ProjectionError> {
        let stream = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| self.stream_error(e))?;
        let Ok(info) = stream.consumer_info(&self.consumer).await else {
            return Ok(false);
        };
        Ok(info.num_pending == 0 && info.num_ack_pending == 0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use millrace_core::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("conf/millrace.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_projection_section_has_defaults_and_checked_names() {
        let config = parse("").unwrap();
        assert!(config.projection.runs(true), "on in `up`");
        assert!(!config.projection.runs(false), "off in `run`");
        assert_eq!(config.projection.inventory_bucket, "millrace-inventory");
        let on = parse("[projection]\nenabled = true\n").unwrap();
        assert!(on.projection.runs(false));
        let err = parse("[projection]\nhold_bucket = \"a.b\"\n").unwrap_err();
        assert!(err.contains("projection.hold_bucket"), "{err}");
        let err = parse("[projection]\nhold_bucket = \"millrace-inventory\"\n").unwrap_err();
        assert!(err.contains("its own"), "{err}");
        let err = parse("[projection]\ncolour = \"red\"\n").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }
}
