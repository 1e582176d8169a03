//! Ordering: an event older than the last one published for its business key is late.
//!
//! Stock updates applied out of order are one of the problems plants live with. For every
//! event the host compares its source time (and source sequence, when the source has one)
//! with the newest one already published for the same kind and business key, kept in a
//! key-value bucket. An older event is still published, marked `late` (a CloudEvents
//! extension), so consumers never take it for the newest state; a newer one moves the mark.
//! Updates use the bucket's revisions, so hosts sharing a route agree.

use std::cmp::Ordering as Cmp;

use async_nats::jetstream::kv;

use millrace_core::canonical::{MappedEvent, Position, business_key};
use millrace_core::digest::sha256_hex;

/// Tries of a compare-and-set before giving up (another host kept winning the race).
const MAX_RACES: usize = 16;

/// Why the order book could not answer; transient: the message is redelivered.
#[derive(Debug, thiserror::Error)]
#[error("order bucket: {0}")]
pub struct OrderError(String);

/// The newest published position per kind and business key.
#[derive(Clone)]
pub struct OrderBook {
    kv: kv::Store,
}

impl OrderBook {
    /// An order book over an open bucket.
    pub fn new(kv: kv::Store) -> Self {
        Self { kv }
    }

    /// For each event, in order, whether it is late; records the newer ones as the newest.
    pub async fn check(&self, events: &[&MappedEvent]) -> Result<Vec<bool>, OrderError> {
        let mut late = Vec::with_capacity(events.len());
        for event in events {
            late.push(self.check_one(event).await?);
        }
        Ok(late)
    }

    async fn check_one(&self, event: &MappedEvent) -> Result<bool, OrderError> {
        // Validation has checked the timestamp; an unparsable one is never "late".
        let Some(position) = Position::of(event) else {
            return Ok(false);
        };
        let identity = format!("{}\0{}", event.data.kind(), business_key(event));
        let key = sha256_hex(identity.as_bytes())[..40].to_owned();
        let err = |e: &dyn std::fmt::Display| OrderError(format!("{key}: {e}"));
        let value = serde_json::to_vec(&position).map_err(|e| err(&e))?;
        for _ in 0..MAX_RACES {
            let entry = self.kv.entry(&key).await.map_err(|e| err(&e))?;
            match entry.filter(|e| e.operation == kv::Operation::Put) {
                None => match self.kv.create(&key, value.clone().into()).await {
                    Ok(_) => return Ok(false),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                    Err(e) => return Err(err(&e)),
                },
                Some(entry) => {
                    let newest: Position =
                        serde_json::from_slice(&entry.value).map_err(|e| err(&e))?;
                    match position.compare(&newest) {
                        Cmp::Less => return Ok(true),
                        Cmp::Equal => return Ok(false),
                        Cmp::Greater => {}
                    }
                    let updated = self
                        .kv
                        .update(&key, value.clone().into(), entry.revision)
                        .await;
                    match updated {
                        Ok(_) => return Ok(false),
                        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                        Err(e) => return Err(err(&e)),
                    }
                }
            }
        }
        Err(OrderError(format!(
            "{key}: lost {MAX_RACES} races to other hosts updating the same key"
        )))
    }
}
