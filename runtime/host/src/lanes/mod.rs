//! Ordered lanes fed from JetStream pull consumers: the one loop that pulls messages and the one
//! way they are worked, shared by the inbound routes ([`crate::host`]) and the outbound ones
//! ([`crate::outbound`]).
//!
//! ```text
//! pull consumer ─► pull_into ─(lane by key)─► lane n: begin(m1) begin(m2) …
//!                                                  └─► finisher n: finish(m1) finish(m2) …
//! ```
//!
//! A lane takes its messages one at a time and in order, so what shares a key (a raw subject,
//! a business key) is worked in order while other keys run in parallel. Its work has two
//! steps: [`LaneWork::begin`] (for a raw message: map it and send its events) and
//! [`LaneWork::finish`] (await JetStream's acks, then ack the message). With a pipeline depth
//! above zero the lane's finisher runs the second step, in the order the messages began, while
//! the lane begins the next ones: a lane maps message n+1 while message n's events await their
//! acks. With depth zero (outbound: a request to a system of record is not to be overtaken)
//! both steps run in the lane, one message start to end. Every channel is bounded, so a busy
//! host stops pulling rather than queueing without bound.
//!
//! What is pulled is what the lanes can take at once: each pull asks for the free places left
//! in the lanes' queues, once a quarter of them is free; never a fixed batch regardless of
//! how busy the lanes are. And every
//! pulled message is held (module `held`) until its lane acked or naked it: one task per
//! consumer sends an in-progress ack for each message held longer than a quarter of the
//! consumer's `ack_wait`, so a message that waits in a busy lane, a slow plugin call, a target
//! or a gate is not redelivered meanwhile (and a redelivery of a held message is dropped).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

mod held;
pub mod undeliverable;

pub use held::Held;
use held::HeldMessages;

use crate::observability::Observer;

/// How long a puller waits before pulling again after an error.
const PULL_PAUSE: Duration = Duration::from_millis(500);

/// How long one pull waits on the server for messages before the puller asks again (and, if
/// the server was lost meanwhile, how soon after this plus five seconds it notices).
const PULL_EXPIRES: Duration = Duration::from_secs(3);

/// What lanes do with their messages, in two steps (see the module's text).
pub trait LaneWork: Send + Sync + 'static {
    /// What a lane is handed.
    type Item: Send + 'static;
    /// What the first step leaves to the second.
    type Begun: Send + 'static;
    /// The first step, run in the lane in arrival order.
    fn begin(&self, item: Self::Item) -> impl Future<Output = Self::Begun> + Send;
    /// The second step, run in the order the items began.
    fn finish(&self, begun: Self::Begun) -> impl Future<Output = ()> + Send;
    /// [`LaneWork::begin`] of an item with its place among the consumer's held messages (kept
    /// from redelivery until the place is dropped, after `finish`). Work that takes an item out
    /// of its lane to finish it elsewhere (an outbound event parked at a gate) keeps the place
    /// and returns `None`; by default the lane keeps it.
    fn begin_held(
        &self,
        item: Self::Item,
        held: Option<Held>,
    ) -> impl Future<Output = (Self::Begun, Option<Held>)> + Send {
        async move { (self.begin(item).await, held) }
    }
}

/// How a puller hands a consumer's messages to lanes.
pub trait Dispatch: Send + Sync + 'static {
    /// What a lane is handed.
    type Item: Send + 'static;
    /// The lane of `message` (of `lanes`) and what it is handed.
    fn dispatch(&self, message: jetstream::Message, lanes: usize) -> (usize, Self::Item);
    /// Waits until `message` may be handed on (an outbound route pauses while its target is
    /// down); at once by default.
    fn ready(&self, message: &jetstream::Message) -> impl Future<Output = ()> + Send {
        let _ = message;
        async {}
    }
}

/// The senders into a set of lanes.
pub struct Lanes<T> {
    senders: Vec<mpsc::Sender<Queued<T>>>,
    /// Woken each time a lane takes an item, so a puller waiting for room can pull again.
    taken: Arc<Notify>,
    queue: usize,
}

/// An item waiting in a lane, and (when it came from a consumer) its place among the held
/// messages, kept until the item is finished.
type Queued<T> = (T, Option<Held>);

impl<T> Clone for Lanes<T> {
    fn clone(&self) -> Self {
        Self {
            senders: self.senders.clone(),
            taken: self.taken.clone(),
            queue: self.queue,
        }
    }
}

impl<T: Send + 'static> Lanes<T> {
    /// Starts `count` lanes (at least one) of `work` in `tasks`, each holding up to `queue`
    /// items waiting and `depth` begun items awaiting their second step. A stopping host
    /// (`shutdown`) finishes what its lanes began; what is queued is left to redelivery.
    pub fn start<W: LaneWork<Item = T>>(
        work: Arc<W>,
        count: usize,
        queue: usize,
        depth: usize,
        shutdown: &CancellationToken,
        tasks: &mut JoinSet<anyhow::Result<()>>,
    ) -> Self {
        let queue = queue.max(1);
        let taken = Arc::new(Notify::new());
        let mut senders = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            let (tx, rx) = mpsc::channel::<Queued<T>>(queue);
            senders.push(tx);
            let lane_taken = taken.clone();
            if depth == 0 {
                let (work, stop) = (work.clone(), shutdown.clone());
                tasks.spawn(async move {
                    lane(rx, &stop, &lane_taken, |(item, held)| async {
                        let (begun, held) = work.begin_held(item, held).await;
                        work.finish(begun).await;
                        drop(held);
                        true
                    })
                    .await;
                    Ok(())
                });
                continue;
            }
            let (begun_tx, mut begun_rx) = mpsc::channel::<(W::Begun, Option<Held>)>(depth);
            let (lane_work, stop) = (work.clone(), shutdown.clone());
            tasks.spawn(async move {
                lane(rx, &stop, &lane_taken, |(item, held)| async {
                    let (begun, held) = lane_work.begin_held(item, held).await;
                    begun_tx.send((begun, held)).await.is_ok()
                })
                .await;
                Ok(())
            });
            let work = work.clone();
            tasks.spawn(async move {
                // Ends once its lane has ended and every begun item is finished.
                while let Some((begun, held)) = begun_rx.recv().await {
                    work.finish(begun).await;
                    drop(held);
                }
                Ok(())
            });
        }
        Self {
            senders,
            taken,
            queue,
        }
    }

    /// How many lanes there are.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// Hands `item` to lane `lane` (modulo the count), waiting while it is full; `false` once
    /// the lanes have stopped.
    pub async fn send(&self, lane: usize, item: T) -> bool {
        self.send_queued(lane, (item, None)).await
    }

    async fn send_queued(&self, lane: usize, queued: Queued<T>) -> bool {
        match self.senders.get(lane % self.senders.len().max(1)) {
            Some(sender) => sender.send(queued).await.is_ok(),
            None => false,
        }
    }

    /// How many items the lanes can take now: the free places in their queues. (Not the
    /// fullest lane's: one busy lane, say a route whose plugin loops, must not stop the other
    /// routes sharing the lanes from pulling.)
    pub fn room(&self) -> usize {
        self.senders.iter().map(mpsc::Sender::capacity).sum()
    }

    /// Waits until the lanes have room for a quarter of what their queues hold (at least one
    /// item), and returns the [`room`](Self::room) there is.
    async fn wait_for_room(&self) -> usize {
        let wanted = (self.queue * self.senders.len() / 4).max(1);
        loop {
            let taken = self.taken.notified();
            tokio::pin!(taken);
            taken.as_mut().enable();
            let room = self.room();
            if room >= wanted {
                return room;
            }
            taken.await;
        }
    }
}

/// A lane's loop: takes its items in order until shutdown or until `each` says stop.
async fn lane<T, F, Fut>(
    mut rx: mpsc::Receiver<T>,
    stop: &CancellationToken,
    taken: &Notify,
    each: F,
) where
    F: Fn(T) -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        let item = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            item = rx.recv() => item,
        };
        let Some(item) = item else { break };
        taken.notify_waiters();
        if !each(item).await {
            break;
        }
    }
}

/// Pulls `consumer`'s messages into `lanes` through `dispatch` until shutdown. Each pull asks
/// for what the lanes can take at once ([`Lanes::room`], at most `batch` when given), once a
/// quarter of the lanes' queues is free, so what is pulled goes to the lanes instead of
/// waiting in a large batch. Every message is held (module
/// `held`) until its lane has answered it: kept from redelivery while it waits, and a
/// redelivery of it meanwhile is dropped. Losing the server only pauses the puller: it pulls
/// again once the connection is back. `route` names the route in the log; `observer` hears
/// whether each pull works (the host's readiness).
pub async fn pull_into<D: Dispatch>(
    consumer: jetstream::consumer::PullConsumer,
    batch: Option<usize>,
    route: &str,
    observer: Arc<Observer>,
    dispatch: D,
    lanes: Lanes<D::Item>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let held = HeldMessages::start(&consumer, route);
    // Whether the last pull failed: the observer hears of a change only, not of every message.
    let mut failing = false;
    let mut pulled = |failure: Option<String>| {
        if failure.is_some() || failing {
            failing = failure.is_some();
            observer.pulled(route, failure);
        }
    };
    loop {
        let room = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            room = lanes.wait_for_room() => room,
        };
        let wanted = batch.map_or(room, |most| room.min(most.max(1)));
        let opened = consumer
            .batch()
            .max_messages(wanted)
            .expires(PULL_EXPIRES)
            .messages();
        let mut messages = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            opened = opened => match opened {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(route, "cannot pull messages, retrying: {e}");
                    pulled(Some(e.to_string()));
                    tokio::time::sleep(PULL_PAUSE).await;
                    continue;
                }
            },
        };
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    pulled(None);
                    let Some(place) = held.hold(&message) else {
                        continue;
                    };
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = dispatch.ready(&message) => {}
                    }
                    let (lane, item) = dispatch.dispatch(message, lanes.len());
                    let sent = tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        sent = lanes.send_queued(lane, (item, Some(place))) => sent,
                    };
                    if !sent {
                        return Ok(());
                    }
                }
                Some(Err(e)) => {
                    // A status the server answers a pull with (the consumer's leader moved,
                    // the server restarts): the pull is over; pull again after a pause.
                    tracing::warn!(route, "pulling messages: {e}");
                    pulled(Some(e.to_string()));
                    tokio::time::sleep(PULL_PAUSE).await;
                    break;
                }
                // The pull expired or was served in full: the consumer answers.
                None => {
                    pulled(None);
                    break;
                }
            }
        }
    }
}
