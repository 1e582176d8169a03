//! Source ages: when each site and system was last heard of.

use serde::{Deserialize, Serialize};

use super::{ProjectedEvent, bucket_key, not_older};
use millrace_core::canonical::Position;

/// The last update from one source system at one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Site code.
    pub site: String,
    /// Source system.
    pub system: String,
    /// Events applied.
    pub events: u64,
    /// The newest source time among them (RFC 3339).
    pub newest_event_time: Option<String>,
    /// Its position.
    pub newest: Option<Position>,
    /// When the canonical stream stored the last one (RFC 3339).
    pub last_published: String,
    /// Its canonical stream sequence: events at or below it were counted.
    pub last_sequence: u64,
}

impl SourceRecord {
    /// `<site>.<system>`.
    pub fn bucket_key(site: &str, system: &str) -> String {
        bucket_key(&[Some(site), Some(system)])
    }

    /// Counts the event stored at `sequence` and `published`; false for one counted already
    /// (the stream is consumed in order, so the sequence is the high-water mark).
    pub fn see(&mut self, event: &ProjectedEvent, sequence: u64, published: &str) -> bool {
        if sequence <= self.last_sequence {
            return false;
        }
        self.events += 1;
        self.last_sequence = sequence;
        self.last_published = published.to_owned();
        if not_older(&event.position, self.newest.as_ref()) {
            self.newest = Some(event.position);
            self.newest_event_time = Some(event.time.clone());
        }
        true
    }

    /// A source not seen before.
    pub fn new(site: &str, system: &str) -> Self {
        Self {
            site: site.to_owned(),
            system: system.to_owned(),
            events: 0,
            newest_event_time: None,
            newest: None,
            last_published: String::new(),
            last_sequence: 0,
        }
    }
}
