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
use futures::future::try_join_all;

use millrace_core::canonical::{MappedEvent, Position, business_key};
use millrace_core::digest::sha256_hex;

/// Tries of a compare-and-set before giving up (another host kept winning the race).
pub(super) const MAX_RACES: usize = 16;

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
    ///
    /// One batch per message: the events are grouped by key, each key is read and written
    /// once (its events compared in order against a running newest, in memory), and the keys
    /// are worked concurrently: two round trips for the message however many events it has,
    /// where one event at a time took two per event. The result is the one the events would
    /// get one by one: per key they are compared in order, and the write is a compare-and-set
    /// on the revision read, so a host that raced on a key makes this one read it again.
    pub async fn check(&self, events: &[&MappedEvent]) -> Result<Vec<bool>, OrderError> {
        let mut keys: Vec<KeyBatch> = Vec::new();
        let mut late = vec![false; events.len()];
        for (index, event) in events.iter().enumerate() {
            // Validation has checked the timestamp; an unparsable one is never "late".
            let Some(position) = Position::of(event) else {
                continue;
            };
            let identity = format!("{}\0{}", event.data.kind(), business_key(event));
            let key = sha256_hex(identity.as_bytes())[..40].to_owned();
            match keys.iter_mut().find(|k| k.key == key) {
                Some(batch) => batch.events.push((index, position)),
                None => keys.push(KeyBatch {
                    key,
                    events: vec![(index, position)],
                }),
            }
        }
        let checked = try_join_all(keys.iter().map(|batch| self.check_key(batch))).await?;
        for (batch, flags) in keys.iter().zip(checked) {
            for ((index, _), is_late) in batch.events.iter().zip(flags) {
                late[*index] = is_late;
            }
        }
        Ok(late)
    }

    /// Whether each event of one key is late, in order; writes the newest position once.
    async fn check_key(&self, batch: &KeyBatch) -> Result<Vec<bool>, OrderError> {
        let key = &batch.key;
        let err = |e: &dyn std::fmt::Display| OrderError(format!("{key}: {e}"));
        for race in 0..MAX_RACES {
            let entry = self.kv.entry(key).await.map_err(|e| err(&e))?;
            // A deleted key's marker has a revision the write must name too.
            let revision = entry.as_ref().map_or(0, |e| e.revision);
            let stored: Option<Position> = match entry.filter(|e| e.operation == kv::Operation::Put)
            {
                Some(entry) => Some(serde_json::from_slice(&entry.value).map_err(|e| err(&e))?),
                None => None,
            };
            let (flags, newest) = compare_in_order(stored.as_ref(), &batch.events);
            let Some(newest) = newest else {
                return Ok(flags);
            };
            let value = serde_json::to_vec(newest).map_err(|e| err(&e))?;
            // A compare-and-set on the revision read (0: no entry). Not `kv.create`: when its
            // write loses a race it reads the entry back, and on a replicated bucket that read
            // may come from a replica that has not the winner's write yet, which it reports as
            // an error, not as the race it is.
            match self.kv.update(key, value.into(), revision).await {
                Ok(_) => return Ok(flags),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    lost_race(race).await;
                }
                Err(e) => return Err(err(&e)),
            }
        }
        Err(OrderError(format!(
            "{key}: lost {MAX_RACES} races to other hosts updating the same key"
        )))
    }
}

/// The pause after losing the `race`-th race for a key: none after the first, then a little
/// longer each time, so that a replica that answered the read before it had the winner's write
/// catches up.
pub(super) async fn lost_race(race: usize) {
    if race > 0 {
        let millis = u64::try_from(race).unwrap_or(u64::MAX).saturating_mul(5);
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}

/// The events of one message that share a kind and business key, in order.
struct KeyBatch {
    key: String,
    /// Index among the message's events, and position.
    events: Vec<(usize, Position)>,
}

/// Compares `events` in order against `stored` and each other: whether each is late, and the
/// newest position to write when one of them moved it.
fn compare_in_order<'a>(
    stored: Option<&'a Position>,
    events: &'a [(usize, Position)],
) -> (Vec<bool>, Option<&'a Position>) {
    let mut newest = stored;
    let mut moved = false;
    let mut late = Vec::with_capacity(events.len());
    for (_, position) in events {
        match newest.map(|n| position.compare(n)) {
            Some(Cmp::Less) => late.push(true),
            Some(Cmp::Equal) => late.push(false),
            None | Some(Cmp::Greater) => {
                newest = Some(position);
                moved = true;
                late.push(false);
            }
        }
    }
    (late, newest.filter(|_| moved))
}
