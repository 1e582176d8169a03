//! The visibility projection: one trusted picture of stock, work orders, quality holds,
//! supplier commitments and source freshness across plants, built from the canonical stream,
//! and of what became of every event the outbound routes post (from the posting
//! acknowledgements, read by a second consumer: [`postings`]).
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
pub mod postings;
pub mod query;
pub mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use self::buckets::Buckets;
use self::state::{
    BucketKey, Change, CommitmentRecord, HoldRecord, PostedEvent, PostingChange, PostingKey,
    PostingRecord, ProjectedEvent, SourceRecord, StockChange, StockKey, StockRecord,
    WorkOrderRecord, bucket_key, dead_lettered, due_on, hold_targets, netted_id, netted_of, plan,
    spill_of,
};
use millrace_core::config::Config;
use millrace_core::posting::acknowledgement::Acknowledgement;

/// How long an event whose writes failed waits before it is redelivered.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the projection waits before it opens its consumer again after losing it.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// How long JetStream waits for the ack of an event before redelivering it. The consumer lets
/// one event out at a time, so an event held by a host that died (kill -9, a lost connection)
/// stalls the whole projection this long: holds placed meanwhile block nothing. An apply that
/// takes longer keeps its event with progress acks ([`PROGRESS_EVERY`]).
const ACK_WAIT: Duration = Duration::from_secs(5);

/// How often an apply still running tells JetStream it is working on its event.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// How long a rebuild waits, without a message, on a consumer that does not answer yet (no
/// responders while a new consumer of a clustered stream elects its leader, a missed
/// heartbeat) before it gives up.
const REBUILD_PATIENCE: Duration = Duration::from_secs(60);

/// The idle heartbeat the projection asks of its consumers: two missed ones say the pull
/// request was lost (sent while a consumer's leader was still being elected, or to a server
/// that restarted), and the projection pulls again at once instead of waiting for the request
/// to expire.
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

/// How long each of the projection's pull requests stays open on the server.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

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
    /// Posting acknowledgements read from the posting stream.
    pub acknowledgements: u64,
    /// Outbound dead letters read from the dead-letter stream.
    pub dead_letters: u64,
    /// Records per bucket afterwards: inventory, work orders, holds, commitments, sources,
    /// postings.
    pub records: [u64; 6],
}

/// The streams the projection reads, each through its own durable consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// The canonical events (stream CANONICAL).
    Canonical,
    /// The posting acknowledgements (stream POSTING).
    Postings,
    /// The outbound routes' dead letters (`dlq.outbound.>` on stream DLQ): events the host
    /// gave up before a target answered.
    DeadLetters,
}

impl Feed {
    const ALL: [Feed; 3] = [Feed::Canonical, Feed::Postings, Feed::DeadLetters];

    /// The consumer reads only part of its stream (the outbound letters among all dead
    /// letters): the stream's last sequence may be one it never delivers.
    fn filtered(self) -> bool {
        self == Feed::DeadLetters
    }
}

/// An outbound route as the projection sees it: name, subjects, targets.
type OutboundRoute = (String, Vec<String>, Vec<String>);

/// The projection: the canonical stream and the posting acknowledgements applied to the
/// buckets.
#[derive(Clone)]
pub struct Projection {
    js: jetstream::Context,
    buckets: Buckets,
    stream: String,
    consumer: String,
    posting_stream: String,
    posting_consumer: String,
    dead_letter_stream: String,
    dead_letter_consumer: String,
    routes: Arc<Vec<OutboundRoute>>,
}

impl Projection {
    /// Opens the projection's buckets (creating missing ones) for the configuration's
    /// canonical and posting streams and outbound routes.
    pub async fn open(js: &jetstream::Context, config: &Config) -> Result<Self, ProjectionError> {
        let routes = config
            .outbound
            .iter()
            .map(|(name, route)| (name.clone(), route.subjects.clone(), route.targets.clone()))
            .collect();
        Ok(Self {
            js: js.clone(),
            buckets: Buckets::open(js, &config.projection).await?,
            stream: config.streams.canonical.clone(),
            consumer: config.projection.consumer.clone(),
            posting_stream: config.streams.posting.clone(),
            posting_consumer: config.projection.posting_consumer(),
            dead_letter_stream: config.streams.dlq.clone(),
            dead_letter_consumer: config.projection.dead_letter_consumer(),
            routes: Arc::new(routes),
        })
    }

    /// The stream and durable consumer of `feed`.
    fn names(&self, feed: Feed) -> (&str, &str) {
        match feed {
            Feed::Canonical => (&self.stream, &self.consumer),
            Feed::Postings => (&self.posting_stream, &self.posting_consumer),
            Feed::DeadLetters => (&self.dead_letter_stream, &self.dead_letter_consumer),
        }
    }

    fn feed_error(&self, feed: Feed, message: impl std::fmt::Display) -> ProjectionError {
        ProjectionError::Stream {
            stream: self.names(feed).0.to_owned(),
            message: message.to_string(),
        }
    }

    fn stream_error(&self, message: impl std::fmt::Display) -> ProjectionError {
        self.feed_error(Feed::Canonical, message)
    }

    /// Applies events and acknowledgements as they arrive until `shutdown`; a lost consumer
    /// or connection is opened again, so only the shutdown ends it.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            stream = &*self.stream,
            consumer = &*self.consumer,
            postings = &*self.posting_stream,
            dead_letters = &*self.dead_letter_stream,
            "projection running"
        );
        tokio::join!(
            self.follow(Feed::Canonical, &shutdown),
            self.follow(Feed::Postings, &shutdown),
            self.follow(Feed::DeadLetters, &shutdown)
        );
    }

    /// Consumes `feed` until `shutdown`, opening the consumer again after each failure (a
    /// failure is logged when it differs from the previous one: a host without outbound
    /// routes has no posting stream, and says so once).
    async fn follow(&self, feed: Feed, shutdown: &CancellationToken) {
        let mut last_failure = String::new();
        while !shutdown.is_cancelled() {
            if let Err(e) = self.consume(feed, shutdown).await {
                let failure = e.to_string();
                if failure == last_failure {
                    tracing::debug!("{failure}; opening the consumer again in {REOPEN_AFTER:?}");
                } else {
                    tracing::warn!("{failure}; opening the consumer again in {REOPEN_AFTER:?}");
                }
                last_failure = failure;
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(REOPEN_AFTER) => {}
                }
            }
        }
    }

    /// The durable consumer of `feed`: every message of the stream, in order, one at a time,
    /// so the per-source high-water marks stay exact and a late redelivery cannot overtake.
    /// One made by an older host with another `ack_wait` is brought to [`ACK_WAIT`], keeping
    /// its position.
    async fn consumer(&self, feed: Feed) -> Result<consumer::PullConsumer, ProjectionError> {
        let (stream, name) = self.names(feed);
        let stream = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| self.feed_error(feed, e))?;
        let config = consumer::pull::Config {
            durable_name: Some(name.to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: ACK_WAIT,
            max_ack_pending: 1,
            filter_subject: match feed {
                Feed::DeadLetters => millrace_core::subjects::outbound_dead_letters(">"),
                Feed::Canonical | Feed::Postings => String::new(),
            },
            ..Default::default()
        };
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(name, config.clone())
            .await
            .map_err(|e| self.feed_error(feed, e))?;
        let current = &consumer.cached_info().config;
        if current.ack_wait == ACK_WAIT {
            return Ok(consumer);
        }
        tracing::info!(
            consumer = name,
            was = ?current.ack_wait,
            ack_wait = ?ACK_WAIT,
            "bringing the projection's consumer to this host's ack_wait"
        );
        stream
            .update_consumer(config)
            .await
            .map_err(|e| self.feed_error(feed, e))
    }

    /// Pulls from `consumer` of `feed`, with the heartbeat that tells a lost pull request.
    async fn pull(
        &self,
        feed: Feed,
        consumer: &consumer::PullConsumer,
    ) -> Result<consumer::pull::Stream, ProjectionError> {
        consumer
            .stream()
            .heartbeat(PULL_HEARTBEAT)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(|e| self.feed_error(feed, e))
    }

    async fn consume(
        &self,
        feed: Feed,
        shutdown: &CancellationToken,
    ) -> Result<(), ProjectionError> {
        let consumer = self.consumer(feed).await?;
        let mut messages = self.pull(feed, &consumer).await?;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => {
                    hand_back(&mut messages).await;
                    return Ok(());
                }
                next = messages.next() => next,
            };
            let message = next
                .ok_or_else(|| self.feed_error(feed, "the consumer ended"))?
                .map_err(|e| self.feed_error(feed, e))?;
            self.settle(feed, &message).await?;
        }
    }

    /// Applies one message and acks it; on a failed write, asks for a redelivery.
    async fn settle(
        &self,
        feed: Feed,
        message: &jetstream::Message,
    ) -> Result<Applied, ProjectionError> {
        let applying = async {
            match feed {
                Feed::Canonical => self.apply(message).await,
                Feed::Postings => self.apply_acknowledgement(message).await,
                Feed::DeadLetters => self.apply_dead_letter(message).await,
            }
        };
        let applied = working_on(message, applying).await;
        match applied {
            Ok(applied) => {
                message
                    .double_ack()
                    .await
                    .map_err(|e| self.feed_error(feed, e))?;
                Ok(applied)
            }
            Err(e) => {
                tracing::warn!("{e}; the message is retried in {RETRY_AFTER:?}");
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
                Change::Stock(key, change) => self.apply_stock(&key, &change, &event).await?,
                Change::WorkOrder(key, change) => {
                    b.work_orders
                        .apply::<WorkOrderRecord>(&key, &change, &event)
                        .await?
                }
                Change::Hold(key, change) => {
                    let hold = bucket_key(&[Some(&key.site), Some(&key.hold_id)]);
                    let siblings: Vec<HoldRecord> = b.read_under(&b.holds, Some(&hold)).await?;
                    let mut done = false;
                    for (key, seed) in hold_targets(&key, &change, &event, &siblings) {
                        done |= b.holds.apply_seeded(&key, &change, &event, &seed).await?;
                    }
                    done
                }
                Change::Commitment(key, change) => {
                    b.commitments
                        .apply::<CommitmentRecord>(&key, &change, &event)
                        .await?
                }
            };
            changed += usize::from(done);
        }
        let posted = PostedEvent {
            kind: event.data.kind().to_owned(),
            site: event.site.clone(),
            business_key: event.business_key.clone(),
            source_time: event.time.clone(),
        };
        for (route, change) in due_on(&self.routes, message.subject.as_str(), sequence, &posted) {
            let key = PostingKey {
                route: route.to_owned(),
                event_id: event.id.clone(),
            };
            changed += usize::from(self.post(&key, &change).await?);
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

    /// Applies one change to a stock position; the part of a lotted receipt its lot's own in
    /// transit did not cover is then netted against the item's in transit without a lot
    /// ([`spill_of`]), and the lot position told how much ([`netted_of`]). Each step is applied
    /// once per event, and each reads what the one before wrote, so a redelivery after a crash
    /// between them finishes the same way.
    async fn apply_stock(
        &self,
        key: &StockKey,
        change: &StockChange,
        event: &ProjectedEvent,
    ) -> Result<bool, ProjectionError> {
        let inventory = &self.buckets.inventory;
        let (mut changed, lot) = inventory
            .apply_read::<StockRecord>(key, change, event)
            .await?;
        if let Some((lotless_key, spill)) = spill_of(key, &lot, event) {
            let (done, lotless) = inventory
                .apply_read::<StockRecord>(&lotless_key, &spill, event)
                .await?;
            changed |= done;
            if let Some(netted) = netted_of(&lotless, event) {
                let under = ProjectedEvent {
                    id: netted_id(&event.id),
                    ..event.clone()
                };
                changed |= inventory.apply::<StockRecord>(key, &netted, &under).await?;
            }
        }
        Ok(changed)
    }

    /// Applies one posting acknowledgement (stream POSTING) to the postings bucket.
    pub async fn apply_acknowledgement(
        &self,
        message: &jetstream::Message,
    ) -> Result<Applied, ProjectionError> {
        let acknowledgement: Acknowledgement = match serde_json::from_slice(&message.payload) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(
                    "projection skips {}: no acknowledgement: {e}",
                    message.subject
                );
                return Ok(Applied::Unreadable);
            }
        };
        let key = PostingKey {
            route: acknowledgement.route.clone(),
            event_id: acknowledgement.event_id.clone(),
        };
        let changed = self
            .post(&key, &PostingChange::Acknowledged(acknowledgement))
            .await?;
        Ok(if changed {
            Applied::Changed(1)
        } else {
            Applied::Unchanged
        })
    }

    /// Applies one outbound dead letter (stream DLQ) to the postings bucket.
    pub async fn apply_dead_letter(
        &self,
        message: &jetstream::Message,
    ) -> Result<Applied, ProjectionError> {
        let (key, change) = match dead_lettered(&message.payload) {
            Ok(Some(keyed)) => keyed,
            Ok(None) => return Ok(Applied::Unchanged),
            Err(e) => {
                tracing::warn!("projection skips {}: {e}", message.subject);
                return Ok(Applied::Unreadable);
            }
        };
        Ok(if self.post(&key, &change).await? {
            Applied::Changed(1)
        } else {
            Applied::Unchanged
        })
    }

    /// Applies one change to the posting record of `key`.
    async fn post(
        &self,
        key: &PostingKey,
        change: &PostingChange,
    ) -> Result<bool, ProjectionError> {
        self.buckets
            .postings
            .update(
                &key.bucket_key(),
                || PostingRecord::new(key.clone(), change),
                |r| r.apply(change),
            )
            .await
    }

    /// The last sequence `stream` (of `feed`) holds now, read from the server.
    async fn last_sequence(
        &self,
        feed: Feed,
        stream: &mut jetstream::stream::Stream,
    ) -> Result<u64, ProjectionError> {
        Ok(stream
            .info()
            .await
            .map_err(|e| self.feed_error(feed, e))?
            .state
            .last_sequence)
    }

    /// The stream of `feed`; none for a posting or dead-letter stream that does not exist (no
    /// host with outbound routes ever ran: nothing to read).
    async fn stream_of(
        &self,
        feed: Feed,
    ) -> Result<Option<jetstream::stream::Stream>, ProjectionError> {
        match self.js.get_stream(self.names(feed).0).await {
            Ok(stream) => Ok(Some(stream)),
            Err(_) if feed != Feed::Canonical => Ok(None),
            Err(e) => Err(self.feed_error(feed, e)),
        }
    }

    /// Drops the projected state and applies the whole canonical stream, then every posting
    /// acknowledgement and outbound dead letter, again from the first, through fresh durable
    /// consumers (which a running projection then continues).
    pub async fn rebuild(&self) -> Result<RebuildReport, ProjectionError> {
        let mut streams = Vec::new();
        for feed in Feed::ALL {
            let consumer = self.names(feed).1;
            let Some(stream) = self.stream_of(feed).await? else {
                continue;
            };
            // A running projection would recreate the consumer from the first message and
            // race this rebuild; its waiting pull request gives it away.
            if let Ok(info) = stream.consumer_info(consumer).await
                && info.num_waiting > 0
            {
                return Err(self.feed_error(feed, format!(
                    "a projection is consuming `{consumer}`: stop it (or set `projection.enabled = false` on its host) and rebuild again"
                )));
            }
            streams.push((feed, stream));
        }
        for (feed, stream) in &streams {
            // Gone already is fine: the point is that it starts over.
            let _ = stream.delete_consumer(self.names(*feed).1).await;
        }
        self.buckets.purge().await?;
        let mut report = RebuildReport::default();
        for (feed, mut stream) in streams {
            let last = self.last_sequence(feed, &mut stream).await?;
            self.replay(feed, last, &mut report).await?;
        }
        let b = &self.buckets;
        for (slot, bucket) in report.records.iter_mut().zip(b.all()) {
            *slot = b.count(bucket).await?;
        }
        Ok(report)
    }

    /// Applies `feed` from its first message up to `last` through a fresh consumer.
    async fn replay(
        &self,
        feed: Feed,
        last: u64,
        report: &mut RebuildReport,
    ) -> Result<(), ProjectionError> {
        let consumer = self.consumer(feed).await?;
        if last == 0 {
            return Ok(());
        }
        let mut messages = self.pull(feed, &consumer).await?;
        let mut progress = Instant::now();
        loop {
            let next = tokio::time::timeout(REOPEN_AFTER * 2, messages.next()).await;
            let message = match next {
                Ok(Some(Ok(message))) => {
                    progress = Instant::now();
                    message
                }
                // A consumer just created on a clustered stream answers pulls once its
                // leader is elected, and a pull request sent before then (or to a server
                // that restarted since) is lost: wait, and pull again on a fresh request.
                Ok(Some(Err(e)))
                    if matches!(
                        e.kind(),
                        consumer::pull::MessagesErrorKind::NoResponders
                            | consumer::pull::MessagesErrorKind::MissingHeartbeat
                    ) && progress.elapsed() < REBUILD_PATIENCE =>
                {
                    tracing::debug!(feed = ?feed, "the rebuild's consumer does not answer yet: {e}; pulling again");
                    tokio::time::sleep(REOPEN_AFTER / 4).await;
                    messages = self.pull(feed, &consumer).await?;
                    continue;
                }
                Ok(Some(Err(e))) => return Err(self.feed_error(feed, e)),
                Ok(None) => return Err(self.feed_error(feed, "the consumer ended")),
                // Nothing came: done when nothing is left for this consumer (another
                // projection sharing it may have applied the rest).
                Err(_) => {
                    if self.drained(feed, &consumer, last).await? {
                        return Ok(());
                    }
                    continue;
                }
            };
            let sequence = message.info().map_or(0, |i| i.stream_sequence);
            // An error leaves the message unacked; a second rebuild starts over.
            let applied = self.settle(feed, &message).await?;
            match feed {
                Feed::Postings => report.acknowledgements += 1,
                Feed::DeadLetters => report.dead_letters += 1,
                Feed::Canonical => {
                    match applied {
                        Applied::Changed(_) => report.applied += 1,
                        Applied::Unchanged => report.unchanged += 1,
                        Applied::Unreadable => report.unreadable += 1,
                    }
                    report.events += 1;
                }
            }
            if sequence >= last {
                return Ok(());
            }
        }
    }

    /// True when `consumer` of `feed` has nothing left up to `last`.
    async fn drained(
        &self,
        feed: Feed,
        consumer: &consumer::PullConsumer,
        last: u64,
    ) -> Result<bool, ProjectionError> {
        let mut consumer = consumer.clone();
        let info = consumer
            .info()
            .await
            .map_err(|e| self.feed_error(feed, e))?;
        Ok(info.num_pending == 0
            && info.num_ack_pending == 0
            && (feed.filtered() || info.ack_floor.stream_sequence >= last))
    }

    /// True when the projection has applied every event, posting acknowledgement and outbound
    /// dead letter the streams hold.
    ///
    /// "Hold" is what the stream held when asked: its last sequence is read first, and the
    /// consumer must have delivered up to it with nothing left unacknowledged. The consumer's
    /// pending count alone is not enough: the server may count a message stored a moment ago
    /// only a moment later.
    pub async fn caught_up(&self) -> Result<bool, ProjectionError> {
        for feed in Feed::ALL {
            let consumer = self.names(feed).1;
            let Some(mut stream) = self.stream_of(feed).await? else {
                continue;
            };
            let last = self.last_sequence(feed, &mut stream).await?;
            let Ok(info) = stream.consumer_info(consumer).await else {
                return Ok(false);
            };
            if info.num_pending > 0
                || info.num_ack_pending > 0
                || (!feed.filtered() && info.delivered.stream_sequence < last)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Runs `apply` on `message`, telling JetStream every [`PROGRESS_EVERY`] that the event is
/// being worked on, so a slow apply (a cluster electing a bucket's leader) keeps its event
/// instead of having it redelivered after [`ACK_WAIT`].
async fn working_on<T>(message: &jetstream::Message, apply: impl Future<Output = T>) -> T {
    let mut apply = std::pin::pin!(apply);
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    progress.tick().await;
    loop {
        tokio::select! {
            done = &mut apply => return done,
            _ = progress.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// At shutdown, hands back an event JetStream has already let out to this host but the
/// projection has not taken yet: the consumer lets out one at a time, and a host that kept it
/// stalled every other one (a restarted host, or another running the projection) for
/// [`ACK_WAIT`].
async fn hand_back(messages: &mut consumer::pull::Stream) {
    if let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(50), messages.next()).await
    {
        let _ = message.ack_with(AckKind::Nak(None)).await;
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
        assert!(config.runs_projection(true), "on in `up`");
        assert!(!config.runs_projection(false), "off in `run`");
        assert_eq!(config.projection.inventory_bucket, "millrace-inventory");
        let on = parse("[projection]\nenabled = true\n").unwrap();
        assert!(on.runs_projection(false));
        // A posting gate reads the projection: `run` runs it unless told not to.
        let gated = "[targets.erp]\nurl = \"http://127.0.0.1:9\"\n\n[outbound.c]\n\
                     subjects = [\"canonical.production-completion.>\"]\nplugin = \"p.wasm\"\n\
                     targets = [\"erp\"]\ngate = \"lot-not-on-hold\"\n";
        assert!(parse(gated).unwrap().runs_projection(false));
        let off = parse(&format!("{gated}\n[projection]\nenabled = false\n")).unwrap();
        assert!(!off.runs_projection(false));
        let err = parse("[projection]\nhold_bucket = \"a.b\"\n").unwrap_err();
        assert!(err.contains("projection.hold_bucket"), "{err}");
        let err = parse("[projection]\nhold_bucket = \"millrace-inventory\"\n").unwrap_err();
        assert!(err.contains("its own"), "{err}");
        let err = parse("[projection]\ncolour = \"red\"\n").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }
}
