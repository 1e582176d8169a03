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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a puller waits before opening a new pull stream after an error.
const PULL_PAUSE: Duration = Duration::from_millis(500);

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
    senders: Vec<mpsc::Sender<T>>,
}

impl<T> Clone for Lanes<T> {
    fn clone(&self) -> Self {
        Self {
            senders: self.senders.clone(),
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
        let mut senders = Vec::with_capacity(count.max(1));
        for _ in 0..count.max(1) {
            let (tx, rx) = mpsc::channel::<T>(queue.max(1));
            senders.push(tx);
            if depth == 0 {
                let (work, stop) = (work.clone(), shutdown.clone());
                tasks.spawn(async move {
                    lane(rx, &stop, |item| async {
                        let begun = work.begin(item).await;
                        work.finish(begun).await;
                        true
                    })
                    .await;
                    Ok(())
                });
                continue;
            }
            let (begun_tx, mut begun_rx) = mpsc::channel::<W::Begun>(depth);
            let (lane_work, stop) = (work.clone(), shutdown.clone());
            tasks.spawn(async move {
                lane(rx, &stop, |item| async {
                    let begun = lane_work.begin(item).await;
                    begun_tx.send(begun).await.is_ok()
                })
                .await;
                Ok(())
            });
            let work = work.clone();
            tasks.spawn(async move {
                // Ends once its lane has ended and every begun item is finished.
                while let Some(begun) = begun_rx.recv().await {
                    work.finish(begun).await;
                }
                Ok(())
            });
        }
        Self { senders }
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
        match self.senders.get(lane % self.senders.len().max(1)) {
            Some(sender) => sender.send(item).await.is_ok(),
            None => false,
        }
    }
}

/// A lane's loop: takes its items in order until shutdown or until `each` says stop.
async fn lane<T, F, Fut>(mut rx: mpsc::Receiver<T>, stop: &CancellationToken, each: F)
where
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
        if !each(item).await {
            break;
        }
    }
}

/// Pulls `consumer`'s messages into `lanes` through `dispatch` until shutdown, in batches of
/// at most `batch` when given. Losing the server only pauses it: it opens a new pull stream once
/// the connection is back. `route` names the route in the log.
pub async fn pull_into<D: Dispatch>(
    consumer: jetstream::consumer::PullConsumer,
    batch: Option<usize>,
    route: &str,
    dispatch: D,
    lanes: Lanes<D::Item>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let opened = async {
            match batch {
                Some(batch) => {
                    consumer
                        .stream()
                        .max_messages_per_batch(batch.max(1))
                        .messages()
                        .await
                }
                None => consumer.messages().await,
            }
        };
        let mut messages = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            opened = opened => match opened {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(route, "cannot pull messages, retrying: {e}");
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
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        () = dispatch.ready(&message) => {}
                    }
                    let (lane, item) = dispatch.dispatch(message, lanes.len());
                    let sent = tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        sent = lanes.send(lane, item) => sent,
                    };
                    if !sent {
                        return Ok(());
                    }
                }
                Some(Err(e)) => {
                    // Missed heartbeats and the like while the server restarts: the stream
                    // carries on once the connection is back.
                    tracing::warn!(route, "pulling messages: {e}");
                    tokio::time::sleep(PULL_PAUSE).await;
                }
                None => break,
            }
        }
        tokio::time::sleep(PULL_PAUSE).await;
    }
}
