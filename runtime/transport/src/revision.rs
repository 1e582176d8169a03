//! Read-modify-write of one key-value entry, safe among hosts: the write is a compare-and-set on
//! the revision read, and a lost race reads again.
//!
//! Every shared record the hosts keep in a bucket (idempotency claims, the order book, the
//! projection's records, acknowledgement counters and claims) is written this way. Not with
//! `kv.create` for a new entry: when its write loses a race it reads the entry back, and on a
//! replicated bucket that read may come from a replica that has not the winner's write yet,
//! which it reports as an error, not as the race it is (a host took that for a failure of its
//! own and redelivered the message behind later ones). A compare-and-set names revision 0 for
//! "no entry", or the revision of a deleted entry's marker.

use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;

/// Tries before giving up: another writer kept winning the race for the key. A key many
/// writers race for at once (a partner's acknowledgement counter drawn by forty messages) has
/// one winner a round, so the last may lose as many races as there are writers.
pub const MAX_RACES: usize = 64;

/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// What a step decides from the entry it read.
pub enum Decided<T> {
    /// Write this value, then answer `T` (once the write won).
    Write(Bytes, T),
    /// Write nothing and answer `T`.
    Keep(T),
}

/// How the first try starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstTry {
    /// Read the entry first.
    Read,
    /// Decide as if there were no entry and write at once (one round trip when that holds, as
    /// for a claim on a new key); a lost race reads it.
    AssumeAbsent,
}

/// Why a read-modify-write failed.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError<E> {
    /// The step refused the value it read.
    #[error(transparent)]
    Decided(E),
    /// The bucket did not answer (or answered with an error other than a lost race).
    #[error("{0}")]
    Store(String),
    /// Another writer won every try.
    #[error("lost {MAX_RACES} races to other writers of the same key")]
    Races,
}

/// Reads `key` of `kv`, lets `decide` choose from the value it holds (`None`: no entry, or a
/// deleted one), and writes the chosen value with a compare-and-set on the revision read. A
/// lost race pauses a little longer each time (none after the first: [`pause`]) so that a
/// replica that answered the read before it had the winner's write catches up, then reads
/// again.
pub async fn read_modify_write<T, E>(
    kv: &kv::Store,
    key: &str,
    first: FirstTry,
    mut decide: impl FnMut(Option<&[u8]>) -> Result<Decided<T>, E>,
) -> Result<T, RevisionError<E>> {
    let mut read = first == FirstTry::Read;
    let mut revision = 0;
    for race in 0..MAX_RACES {
        if race > 1 {
            tokio::time::sleep(pause(race)).await;
        }
        let entry = if read {
            let entry = kv
                .entry(key)
                .await
                .map_err(|e| RevisionError::Store(e.to_string()))?;
            // A deleted entry's marker has a revision the write must name too.
            revision = entry.as_ref().map_or(0, |e| e.revision);
            entry.filter(|e| e.operation == kv::Operation::Put)
        } else {
            None
        };
        read = true;
        let decided = decide(entry.as_ref().map(|e| e.value.as_ref()));
        let (value, answer) = match decided.map_err(RevisionError::Decided)? {
            Decided::Keep(answer) => return Ok(answer),
            Decided::Write(value, answer) => (value, answer),
        };
        match kv.update(key, value, revision).await {
            Ok(_) => return Ok(answer),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
            Err(e) => return Err(RevisionError::Store(e.to_string())),
        }
    }
    Err(RevisionError::Races)
}

/// The pause before the `race`-th try (the second and later after a lost race): 5 ms more
/// each time up to [`MAX_PAUSE`], of which a random half, so writers that lost together do not
/// all come back together.
fn pause(race: usize) -> Duration {
    let full = Duration::from_millis(5)
        .saturating_mul(u32::try_from(race.saturating_sub(1)).unwrap_or(u32::MAX))
        .min(MAX_PAUSE);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    full / 2 + full.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_grows_to_a_bound_and_varies() {
        for race in 2..MAX_RACES {
            let full = Duration::from_millis(5 * (race as u64 - 1)).min(MAX_PAUSE);
            let paused = pause(race);
            assert!(paused >= full / 2 && paused <= full, "{race}: {paused:?}");
        }
    }
}
