//! Governed delivery of one raw message's outcome: system-of-record ownership, idempotency on
//! business identity, ordering, then the canonical events (or the dead letter) published and
//! stored by JetStream. It is the last stage of the [`crate::pipeline`], so live mapping,
//! `dlq redrive` and `replay` all deliver by the same rules.

pub mod dead_letter;
pub mod idempotency;
pub mod ordering;
pub mod undeliverable;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::{self, context::PublishAckFuture};
use async_nats::{HeaderMap, header};

use crate::delivery::dead_letter::DeadLetter;
use crate::delivery::idempotency::{SiteTransaction, TransactionLedger};
use crate::delivery::ordering::OrderBook;
use crate::observability::trace::TRACEPARENT;
use crate::observability::{At, Observer};
use crate::pipeline::input::RawInput;
use crate::routes::Route;
use millrace_core::canonical::{CloudEvent, Lineage, MappedEvent};
use millrace_core::config::{GovernanceConfig, Ordering};
use millrace_core::rules::Failure;
use millrace_core::rules::ownership::OwnershipPolicy;
use millrace_core::sandbox::{CallError, PluginComponent};
use millrace_transport as transport;

/// How a delivery differs from the live flow.
#[derive(Debug, Clone, Copy)]
pub struct Mode<'a> {
    /// Set by `replay`: tagged on every event. Business idempotency still holds: a replay
    /// maps each raw message again on purpose, but a resend (another raw message of a source
    /// transaction one already delivered) adds nothing, as it added nothing live.
    pub replay_id: Option<&'a str>,
    /// Event ids already on the CANONICAL stream: not published again.
    pub existing_ids: Option<&'a HashSet<String>>,
    /// Whether a failure becomes a dead letter (live, redrive) or is only reported (replay).
    pub dead_letter: bool,
    /// Whether the route's acknowledger answers the raw message for its trading partner (live
    /// only: a redrive or replay reprocesses what the partner was already answered for).
    pub acknowledge: bool,
}

impl Mode<'_> {
    /// The live flow of the host.
    pub const LIVE: Mode<'static> = Mode {
        replay_id: None,
        existing_ids: None,
        dead_letter: true,
        acknowledge: true,
    };

    /// A dead letter sent through its route again: the live rules, but a failure leaves the
    /// letter where it is instead of writing a second one.
    pub const REDRIVE: Mode<'static> = Mode {
        replay_id: None,
        existing_ids: None,
        dead_letter: false,
        acknowledge: false,
    };
}

/// What became of a raw message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Its events were published.
    Events {
        /// Events stored on CANONICAL.
        published: usize,
        /// Events skipped because their source transaction was delivered by another message.
        duplicates: usize,
        /// Events published marked late.
        late: usize,
        /// Events skipped because CANONICAL already holds them.
        existing: usize,
        /// The ids of the events published.
        event_ids: Vec<String>,
    },
    /// It was dead-lettered (or, in a replay, failed) with this failure.
    Failed(Failure),
}

/// The delivery stage: shared by every lane of a host.
#[derive(Clone)]
pub struct Delivery {
    js: jetstream::Context,
    ledger: TransactionLedger,
    order: OrderBook,
    ownership: OwnershipPolicy,
    observer: Arc<Observer>,
    /// The server's `max_payload`: no event or dead letter larger is sent.
    max_payload: usize,
}

impl Delivery {
    /// Opens (creating when needed) the idempotency and order buckets.
    pub async fn open(
        js: &jetstream::Context,
        governance: &GovernanceConfig,
    ) -> anyhow::Result<Self> {
        let ledger = transport::key_value(
            js,
            &governance.idempotency_bucket,
            governance.horizon.get(),
            "millrace: source transactions already delivered, per route",
        )
        .await?;
        let order = transport::key_value(
            js,
            &governance.order_bucket,
            governance.horizon.get(),
            "millrace: newest source time per event kind and business key",
        )
        .await?;
        Ok(Self {
            js: js.clone(),
            ledger: TransactionLedger::new(ledger),
            order: OrderBook::new(order),
            ownership: OwnershipPolicy::new(governance.ownership.clone()),
            observer: Arc::new(Observer::new()),
            max_payload: transport::max_payload(&js.client()),
        })
    }

    /// Counts what is delivered in `observer` (the host's), instead of a private one.
    #[must_use]
    pub fn observed(mut self, observer: Arc<Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Where what is delivered is counted.
    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    /// Delivers the outcome of mapping `raw` with `plugin` on `route`, carrying `traceparent`
    /// onto the events or the dead letter, up to the publish: the idempotency claims and order
    /// marks are written and the events sent, in order; their acks from JetStream are awaited
    /// by [`Delivering::stored`]. A lane can map its next message meanwhile: what it publishes
    /// next leaves after these events on the same connection, so per-subject order holds. An
    /// `Err` from either means nothing final happened (a transient NATS error): the raw message
    /// must be redelivered.
    #[allow(clippy::too_many_arguments)]
    pub async fn begin(
        &self,
        route: &Route,
        plugin: &PluginComponent,
        raw: &RawInput,
        traceparent: Option<&str>,
        outcome: Result<Vec<MappedEvent>, Failure>,
        attempts: u32,
        mode: &Mode<'_>,
    ) -> anyhow::Result<Delivering> {
        let system = route.source_system(&raw.subject);
        let outcome = crate::pipeline::mapping::owned(&self.ownership, system, outcome);
        let lineage = Lineage {
            raw_id: &raw.identity,
            system,
            route: &route.name,
            plugin: &plugin.name,
            plugin_version: &plugin.version,
            raw_sequence: raw.sequence,
        };
        let events = match outcome {
            Ok(events) => events,
            Err(failure) => {
                return self
                    .failed(route, plugin, raw, traceparent, attempts, failure, mode)
                    .await;
            }
        };
        // Every envelope is made before anything is claimed, so an event too large for one
        // NATS message fails the message as the plugin's output does, with nothing written.
        let outgoing = match self.envelopes(&events, &lineage, traceparent, mode)? {
            Ok(outgoing) => outgoing,
            Err(failure) => {
                return self
                    .failed(route, plugin, raw, traceparent, attempts, failure, mode)
                    .await;
            }
        };
        let resent: BTreeSet<SiteTransaction> = if route.idempotency {
            self.ledger
                .claim(&route.name, &raw.identity, raw.sequence, &events)
                .await?
        } else {
            BTreeSet::new()
        };
        let (mut duplicates, mut existing) = (0, 0);
        let mut outgoing: Vec<Outgoing> = outgoing
            .into_iter()
            .filter(|out| {
                let event = &events[out.index];
                let resend = event.source_transaction.as_ref().is_some_and(|txn| {
                    resent
                        .iter()
                        .any(|(site, resent)| *site == event.site && resent == txn)
                });
                let stored = mode
                    .existing_ids
                    .is_some_and(|ids| ids.contains(&out.envelope.id));
                duplicates += usize::from(resend);
                existing += usize::from(stored && !resend);
                !resend && !stored
            })
            .collect();
        let mut late = 0;
        if route.ordering == Ordering::Flag && !outgoing.is_empty() {
            let checked: Vec<&MappedEvent> = outgoing.iter().map(|o| &events[o.index]).collect();
            let flags = self.order.check(&raw.identity, &checked).await?;
            for (out, is_late) in outgoing.iter_mut().zip(flags) {
                if is_late {
                    out.envelope.late = Some(true);
                    out.body = out.envelope.to_json().context("cannot encode an event")?;
                    late += 1;
                }
            }
        }
        if duplicates > 0 {
            tracing::info!(
                route = &*route.name,
                raw_id = raw.identity.as_str(),
                duplicates,
                "skipped events of source transactions another message already delivered (a resend)"
            );
        }
        if late > 0 {
            tracing::info!(
                route = &*route.name,
                raw_id = raw.identity.as_str(),
                late,
                "published events marked late"
            );
        }
        let published: Vec<(usize, bool)> = outgoing
            .iter()
            .map(|o| (o.index, o.envelope.late == Some(true)))
            .collect();
        let acks = self.publish(&events, &mut outgoing).await?;
        let event_ids: Vec<String> = outgoing.into_iter().map(|o| o.envelope.id).collect();
        let delivered = Delivered::Events {
            published: published.len(),
            duplicates,
            late,
            existing,
            event_ids,
        };
        // Replays reprocess history on purpose: their delays are not postings.
        let counted = mode.replay_id.is_none().then(|| Counted {
            observer: self.observer.clone(),
            route: route.name.clone(),
            plugin_version: plugin.id(),
            events,
            duplicates,
        });
        Ok(Delivering {
            delivered,
            acks,
            published,
            counted,
        })
    }

    /// The envelope of every event, with its headers and JSON, ready to publish; the inner
    /// `Err` is an `output-limit` failure when one would not fit in a NATS message.
    fn envelopes<'a>(
        &self,
        events: &'a [MappedEvent],
        lineage: &Lineage<'a>,
        traceparent: Option<&str>,
        mode: &Mode<'a>,
    ) -> anyhow::Result<Result<Vec<Outgoing<'a>>, Failure>> {
        let mut outgoing = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let mut envelope = CloudEvent::new(event, index, lineage);
            envelope.replayid = mode.replay_id;
            let body = envelope.to_json().context("cannot encode an event")?;
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MESSAGE_ID, envelope.id.as_str());
            headers.insert("Content-Type", "application/cloudevents+json");
            if let Some(traceparent) = traceparent {
                headers.insert(TRACEPARENT, traceparent);
            }
            // Room for the `late` mark the order check may add.
            let room = r#","late":true"#.len();
            if let Err(too_large) =
                transport::fits(Some(&headers), body.len() + room, self.max_payload)
            {
                return Ok(Err(Failure::Call(CallError::Output(format!(
                    "event {index} ({}) as a CloudEvent is {too_large}",
                    event.data.event_type()
                )))));
            }
            outgoing.push(Outgoing {
                index,
                envelope,
                headers,
                body,
            });
        }
        Ok(Ok(outgoing))
    }

    /// Sends the events in order without waiting (their headers and bodies go with them): the
    /// acks JetStream will answer with.
    async fn publish(
        &self,
        events: &[MappedEvent],
        outgoing: &mut [Outgoing<'_>],
    ) -> anyhow::Result<Vec<PublishAckFuture>> {
        let mut acks = Vec::with_capacity(outgoing.len());
        for out in outgoing {
            let ack = self
                .js
                .publish_with_headers(
                    CloudEvent::nats_subject(&events[out.index]),
                    std::mem::take(&mut out.headers),
                    std::mem::take(&mut out.body).into(),
                )
                .await
                .context("cannot publish a canonical event")?;
            acks.push(ack);
        }
        Ok(acks)
    }

    /// A message that failed: dead-lettered and counted (live, redrive), or only reported.
    #[allow(clippy::too_many_arguments)]
    async fn failed(
        &self,
        route: &Route,
        plugin: &PluginComponent,
        raw: &RawInput,
        traceparent: Option<&str>,
        attempts: u32,
        failure: Failure,
        mode: &Mode<'_>,
    ) -> anyhow::Result<Delivering> {
        if mode.dead_letter {
            self.dead_lettered(route, &plugin.id(), raw, traceparent, attempts, &failure)
                .await?;
        }
        Ok(Delivering::done(Delivered::Failed(failure)))
    }

    /// Stores the dead letter of `raw`, which `plugin` failed on after `attempts` calls, then
    /// logs and counts it.
    async fn dead_lettered(
        &self,
        route: &Route,
        plugin: &str,
        raw: &RawInput,
        traceparent: Option<&str>,
        attempts: u32,
        failure: &Failure,
    ) -> anyhow::Result<()> {
        tracing::warn!(
            route = &*route.name,
            plugin,
            raw_sequence = raw.sequence,
            subject = raw.subject.as_str(),
            error_kind = failure.kind(),
            attempts,
            "dead-lettered: {failure}"
        );
        let letter = DeadLetter {
            route: &route.name,
            plugin,
            raw_subject: &raw.subject,
            raw_sequence: raw.sequence,
            raw_id: &raw.identity,
            raw_headers: raw.headers.as_ref(),
            not_copied: None,
            attempts,
            failure,
        };
        self.dead_letter(letter, &raw.payload, traceparent).await?;
        let at = At {
            route: &route.name,
            plugin_version: plugin,
        };
        self.observer.dead_lettered(
            at,
            failure,
            route.site(&raw.subject),
            route.partner(&raw.subject),
        );
        Ok(())
    }

    /// Publishes `letter` with the raw message's `payload`, or, when the two would not fit in
    /// one NATS message, without a copy of the raw message (which RAW holds whole).
    async fn dead_letter(
        &self,
        mut letter: DeadLetter<'_>,
        payload: &bytes::Bytes,
        traceparent: Option<&str>,
    ) -> anyhow::Result<()> {
        let with_traceparent = |mut headers: HeaderMap| {
            if let Some(traceparent) = traceparent {
                headers.insert(TRACEPARENT, traceparent);
            }
            headers
        };
        let mut headers = with_traceparent(letter.headers());
        let mut payload = payload.clone();
        let not_copied = transport::fits(Some(&headers), payload.len(), self.max_payload)
            .err()
            .map(|too_large| {
                format!(
                    "the raw message and this letter's headers are {too_large}; the raw message is RAW's message {}",
                    letter.raw_sequence
                )
            });
        if let Some(why) = &not_copied {
            tracing::warn!(
                route = letter.route,
                raw_sequence = letter.raw_sequence,
                "the dead letter holds no copy of the raw message: {why}"
            );
            letter.raw_headers = None;
            letter.not_copied = Some(why);
            headers = with_traceparent(letter.headers());
            payload = bytes::Bytes::new();
            transport::fits(Some(&headers), 0, self.max_payload)
                .context("a dead letter's own headers do not fit in a NATS message")?;
        }
        self.js
            .publish_with_headers(letter.subject(), headers, payload)
            .await
            .context("cannot publish a dead letter")?
            .await
            .context("JetStream did not store a dead letter")?;
        Ok(())
    }
}

/// One event on its way: its index in the message's events, its envelope, and the envelope's
/// headers and JSON as published.
struct Outgoing<'a> {
    index: usize,
    envelope: CloudEvent<'a>,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A delivery whose events are sent and await JetStream's acks (see [`Delivery::begin`]).
#[must_use = "a delivery is final only once JetStream stored its events"]
pub struct Delivering {
    delivered: Delivered,
    acks: Vec<PublishAckFuture>,
    /// Index in the message's events and whether it was published late, for each ack.
    published: Vec<(usize, bool)>,
    counted: Option<Counted>,
}

/// What a delivery counts once its events are stored.
struct Counted {
    observer: Arc<Observer>,
    route: Arc<str>,
    plugin_version: String,
    events: Vec<MappedEvent>,
    duplicates: usize,
}

impl Delivering {
    /// A delivery with nothing left to wait for (a dead letter already stored, a failure).
    fn done(delivered: Delivered) -> Self {
        Self {
            delivered,
            acks: Vec::new(),
            published: Vec::new(),
            counted: None,
        }
    }

    /// Waits until JetStream stored every event; `Err` when one was not (the raw message must
    /// be redelivered; the events that were stored are deduplicated by their ids).
    ///
    /// An event JetStream answers as a duplicate (CANONICAL already held its id: a message
    /// redelivered after its events were stored) counts as `existing`, not as published: the
    /// figures and metrics count each event stored once.
    pub async fn stored(self) -> anyhow::Result<Delivered> {
        let mut held = Vec::with_capacity(self.acks.len());
        for ack in self.acks {
            let ack = ack
                .await
                .context("JetStream did not store a canonical event")?;
            held.push(ack.duplicate);
        }
        let mut delivered = self.delivered;
        let already = held.iter().filter(|duplicate| **duplicate).count();
        let already_late = (self.published.iter().zip(&held))
            .filter(|((_, late), duplicate)| *late && **duplicate)
            .count();
        if let Delivered::Events {
            published,
            existing,
            late,
            ..
        } = &mut delivered
        {
            *published -= already;
            *existing += already;
            *late -= already_late;
        }
        if let Some(counted) = self.counted {
            let at = At {
                route: &counted.route,
                plugin_version: &counted.plugin_version,
            };
            let events = &counted.events;
            counted.observer.published(
                at,
                self.published
                    .iter()
                    .zip(&held)
                    .filter(|(_, duplicate)| !**duplicate)
                    .map(|((index, late), _)| (&events[*index], *late)),
            );
            counted
                .observer
                .duplicates(at, counted.duplicates + already);
        }
        Ok(delivered)
    }
}
