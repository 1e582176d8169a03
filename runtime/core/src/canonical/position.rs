//! Where an event stands in its business key's history: source time, then source sequence.
//! The order book flags late events by it and the projection orders its records by it.

use std::cmp::Ordering as Cmp;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::MappedEvent;

/// Where an event stands in its key's history (the projection orders its records by it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Source time, nanoseconds since the Unix epoch.
    nanos: i128,
    /// Source sequence, when the source has one.
    seq: Option<u64>,
}

impl Position {
    /// The position of an event's source time and sequence.
    pub fn of(event: &MappedEvent) -> Option<Self> {
        Self::at(&event.occurred_at, event.source_sequence)
    }

    /// The position of an RFC 3339 source time and an optional source sequence.
    pub fn at(time: &str, seq: Option<u64>) -> Option<Self> {
        let time = OffsetDateTime::parse(time, &Rfc3339).ok()?;
        Some(Self {
            nanos: time.unix_timestamp_nanos(),
            seq,
        })
    }

    /// Time first; the sequence breaks ties when both sides have one.
    pub fn compare(&self, other: &Self) -> Cmp {
        match self.nanos.cmp(&other.nanos) {
            Cmp::Equal => match (self.seq, other.seq) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => Cmp::Equal,
            },
            unequal => unequal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_then_sequence() {
        let p = |nanos, seq| Position { nanos, seq };
        assert_eq!(p(1, None).compare(&p(2, None)), Cmp::Less);
        assert_eq!(p(2, Some(1)).compare(&p(2, Some(3))), Cmp::Less);
        assert_eq!(p(2, Some(3)).compare(&p(2, None)), Cmp::Equal);
        assert_eq!(p(3, Some(1)).compare(&p(2, Some(9))), Cmp::Greater);
    }
}
