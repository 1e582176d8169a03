//! Ordering: an event older than the last one published for its business key is late.
//!
//! Stock updates applied out of order are one of the problems plants live with. For every
//! event the host compares its source time (and source sequence, when the source has one)
//! with the newest one already published for the same kind and business key, kept in a
//! key-value bucket. An older event is still published, marked `late` (a CloudEvents
//! extension), so consumers never take it for the newest state; a newer one moves the mark.
//! Updates use the bucket's revisions, so hosts sharing a route agree.
//!
//! A mark remembers the raw message that wrote it and the position it replaced, so a message
//! delivered again (its publish failed after the mark was written, or its ack was lost) is
//! compared against the book as it stood before its first try: it gets the same flags, and
//! an event of it is never late behind a later event of its own.

use std::cmp::Ordering as Cmp;

use async_nats::jetstream::kv;
use futures::future::try_join_all;

use millrace_core::canonical::{MappedEvent, Position, business_key};
use millrace_core::digest::sha256_hex;
use millrace_transport::revision::{Decided, FirstTry, RevisionError, read_modify_write};
use serde::{Deserialize, Serialize};

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
    ///
    /// `raw_id` is the raw message's identity: a key whose mark this message wrote on an
    /// earlier try is compared against the position that mark replaced.
    pub async fn check(
        &self,
        raw_id: &str,
        events: &[&MappedEvent],
    ) -> Result<Vec<bool>, OrderError> {
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
        let checked = try_join_all(keys.iter().map(|batch| self.check_key(raw_id, batch))).await?;
        for (batch, flags) in keys.iter().zip(checked) {
            for ((index, _), is_late) in batch.events.iter().zip(flags) {
                late[*index] = is_late;
            }
        }
        Ok(late)
    }

    /// Whether each event of one key is late, in order; writes the newest position once.
    async fn check_key(&self, raw_id: &str, batch: &KeyBatch) -> Result<Vec<bool>, OrderError> {
        let key = &batch.key;
        read_modify_write(&self.kv, key, FirstTry::Read, |stored| {
            let stored = stored.map(Mark::read).transpose()?;
            // The book as it stood before this message's first try.
            let before = match stored {
                Some(mark) if mark.by.as_deref() == Some(raw_id) => mark.before,
                Some(mark) => Some(mark.newest),
                None => None,
            };
            let (flags, newest) = compare_in_order(before.as_ref(), &batch.events);
            let Some(newest) = newest else {
                return Ok(Decided::Keep(flags));
            };
            let mark = Mark {
                newest: *newest,
                by: Some(raw_id.to_owned()),
                before,
            };
            Ok(Decided::Write(serde_json::to_vec(&mark)?.into(), flags))
        })
        .await
        .map_err(|e: RevisionError<serde_json::Error>| OrderError(format!("{key}: {e}")))
    }
}

/// A key's entry in the book: the newest position, the raw message that wrote it and the
/// position it replaced.
#[derive(Debug, Serialize, Deserialize)]
struct Mark {
    newest: Position,
    by: Option<String>,
    before: Option<Position>,
}

impl Mark {
    /// A mark as stored; an entry written before marks named their writer is a bare position.
    fn read(value: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(value).or_else(|e| {
            let newest = serde_json::from_slice(value).map_err(|_| e)?;
            Ok(Self {
                newest,
                by: None,
                before: None,
            })
        })
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_reads_a_bare_position_and_keeps_its_writer() {
        let at = |time| Position::at(time, Some(7)).unwrap();
        let bare = serde_json::to_vec(&at("2026-01-01T00:00:00Z")).unwrap();
        let old = Mark::read(&bare).unwrap();
        assert_eq!(
            (old.newest, old.by, old.before),
            (at("2026-01-01T00:00:00Z"), None, None)
        );

        let mark = Mark {
            newest: at("2026-01-02T00:00:00Z"),
            by: Some("RAW:9".into()),
            before: Some(at("2026-01-01T00:00:00Z")),
        };
        let read = Mark::read(&serde_json::to_vec(&mark).unwrap()).unwrap();
        assert_eq!(
            (read.newest, read.by.as_deref(), read.before),
            (mark.newest, Some("RAW:9"), mark.before)
        );
    }
}
