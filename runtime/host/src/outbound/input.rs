//! What the outbound driver takes: one canonical event. (While the driver waits on a target
//! or a gate, the lanes that hold a live event keep it from redelivery: [`crate::lanes`].)

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
