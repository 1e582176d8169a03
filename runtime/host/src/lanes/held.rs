//! The messages a consumer has pulled and not yet finished, and the one keep-alive that keeps
//! them from being redelivered while they wait (in the puller, a lane's queue, a plugin call, a
//! target, a gate, or for their events' acks).
//!
//! JetStream redelivers a message its consumer has not answered within `ack_wait`. A message
//! held longer than that by a busy host would be mapped twice: by this host when its turn
//! comes, and by whichever host takes the redelivery (with another plugin version after a swap,
//! whose events have other ids, so JetStream's deduplication does not drop them). So every
//! pulled message is registered here until its lane has acked or naked it, and one task per
//! consumer sends an in-progress ack (`AckKind::Progress`) for every message held longer than a
//! quarter of `ack_wait` since it was pulled or last kept alive. Nothing is sent for a message
//! finished within that time, which under normal load is every message.
//!
//! The registry is keyed by stream sequence: a redelivery of a message still held here (the
//! keep-alive came too late, the machine stalled) is recognised and left to the delivery in
//! hand, whose ack JetStream takes for the message whichever delivery it answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use tokio::time::Instant;

/// The keep-alive signals a held message once it is held longer than `ack_wait` divided by
/// this, and looks that often.
const KEEP_ALIVE_FRACTION: u32 = 4;

/// The `ack_wait` assumed when the consumer does not say (the server's default).
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);

/// The messages one consumer has pulled and not finished, by stream sequence.
pub struct HeldMessages {
    /// The connection the messages came on (the consumer does not give it out), set by the
    /// first message held.
    client: OnceLock<async_nats::Client>,
    route: Arc<str>,
    every: Duration,
    held: Mutex<HashMap<u64, Entry>>,
}

/// One held message: where to answer it, and when it was last pulled or kept alive.
struct Entry {
    reply: Subject,
    signalled: Instant,
}

/// A message's place in [`HeldMessages`]: the message is held until this is dropped (after its
/// lane acked or naked it, or when a stopping host drops it unanswered, to be redelivered).
pub struct Held {
    sequence: u64,
    messages: Arc<HeldMessages>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.messages.entries().remove(&self.sequence);
    }
}

impl HeldMessages {
    /// The held messages of `consumer` (route `route`, for the log), with their keep-alive
    /// running until the last of them is finished and the registry dropped.
    pub fn start(consumer: &jetstream::consumer::PullConsumer, route: &str) -> Arc<Self> {
        let ack_wait = match consumer.cached_info().config.ack_wait {
            wait if wait.is_zero() => DEFAULT_ACK_WAIT,
            wait => wait,
        };
        let messages = Arc::new(Self {
            client: OnceLock::new(),
            route: route.into(),
            every: ack_wait / KEEP_ALIVE_FRACTION,
            held: Mutex::new(HashMap::new()),
        });
        tokio::spawn(keep_alive(Arc::downgrade(&messages)));
        messages
    }

    /// Registers `message` as held; `None` when it is a redelivery of a message held already
    /// (to be dropped: the delivery in hand answers for both), or not a JetStream message.
    pub fn hold(self: &Arc<Self>, message: &jetstream::Message) -> Option<Held> {
        let info = message.info().ok()?;
        let sequence = info.stream_sequence;
        let reply = message.reply.clone()?;
        self.client.get_or_init(|| message.context.client());
        let mut entries = self.entries();
        if entries.contains_key(&sequence) {
            tracing::info!(
                route = &*self.route,
                raw_sequence = sequence,
                delivered = info.delivered,
                "a redelivery of a message still in hand: left to the delivery in hand"
            );
            return None;
        }
        entries.insert(
            sequence,
            Entry {
                reply,
                signalled: Instant::now(),
            },
        );
        Some(Held {
            sequence,
            messages: self.clone(),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // The map stays consistent whatever panicked while it was locked.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The replies of the messages held longer than the keep-alive interval since their last
    /// signal, marked signalled now.
    fn due(&self) -> Vec<Subject> {
        let now = Instant::now();
        self.entries()
            .values_mut()
            .filter(|entry| now.duration_since(entry.signalled) >= self.every)
            .map(|entry| {
                entry.signalled = now;
                entry.reply.clone()
            })
            .collect()
    }
}

/// Sends an in-progress ack for every message held too long, until the registry is gone.
async fn keep_alive(messages: Weak<HeldMessages>) {
    let Some(every) = messages.upgrade().map(|m| m.every) else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(messages) = messages.upgrade() else {
            return;
        };
        let due = messages.due();
        if due.is_empty() {
            continue;
        }
        tracing::debug!(
            route = &*messages.route,
            messages = due.len(),
            "keeping held messages from redelivery"
        );
        let Some(client) = messages.client.get() else {
            continue;
        };
        for reply in due {
            // A lost signal is sent again at the next tick, well within ack_wait.
            let _ = client.publish(reply, Bytes::from(AckKind::Progress)).await;
        }
    }
}
