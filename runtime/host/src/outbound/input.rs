//! What the outbound driver takes: one canonical event, and a way to keep it from being
//! redelivered while the driver waits on a target or a gate.

use async_nats::jetstream;
use bytes::Bytes;

/// One canonical event as the outbound driver takes it.
#[derive(Debug, Clone)]
pub struct EventInput {
    /// The canonical subject.
    pub subject: String,
    /// The CloudEvent, exactly as stored.
    pub payload: Bytes,
    /// Its CANONICAL stream sequence.
    pub sequence: u64,
}

/// Keeps an event from being redelivered while the driver waits on a target or a gate.
pub trait KeepAlive: Sync {
    /// Tells JetStream the event is still being worked on.
    fn still_working(&self) -> impl std::future::Future<Output = ()> + Send;
}

/// Nothing to keep alive (redrive, tests).
pub struct NoKeepAlive;

impl KeepAlive for NoKeepAlive {
    async fn still_working(&self) {}
}

impl KeepAlive for jetstream::Message {
    async fn still_working(&self) {
        let _ = self.ack_with(jetstream::AckKind::Progress).await;
    }
}
