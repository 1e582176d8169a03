//! Supplier commitments: schedule buckets per supplier, item and purchase order.

use serde::{Deserialize, Serialize};

use super::{AppliedIds, BucketKey, ProjectedEvent, Record, bucket_key, not_older};
use millrace_core::canonical::Position;
use millrace_core::canonical::{Quantity, ScheduleBucket};

/// A supplier commitment: site, supplier and item.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommitmentKey {
    /// Site code.
    pub site: String,
    /// Supplier.
    pub supplier: String,
    /// Item.
    pub item: String,
}

impl BucketKey for CommitmentKey {
    /// `<site>.<supplier>.<item>`.
    fn bucket_key(&self) -> String {
        bucket_key(&[Some(&self.site), Some(&self.supplier), Some(&self.item)])
    }
}

/// A supplier commitment as stored: the newest schedule replaces the older ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRecord {
    /// Which.
    #[serde(flatten)]
    pub key: CommitmentKey,
    /// Purchase order.
    pub purchase_order: Option<String>,
    /// The schedule buckets.
    pub buckets: Vec<ScheduleBucket>,
    /// Cumulative received as the schedule states it.
    pub cumulative_received: Option<Quantity>,
    /// Source time (RFC 3339) of the schedule.
    pub updated: Option<String>,
    /// Its position.
    pub newest: Option<Position>,
    /// Recent event ids applied.
    pub applied: AppliedIds,
}

impl CommitmentRecord {
    /// A commitment not seen before.
    pub fn new(key: CommitmentKey) -> Self {
        Self {
            key,
            purchase_order: None,
            buckets: Vec::new(),
            cumulative_received: None,
            updated: None,
            newest: None,
            applied: AppliedIds::default(),
        }
    }
}

impl Record for CommitmentRecord {
    type Key = CommitmentKey;
    type Change = millrace_core::canonical::SupplierCommitment;

    fn fresh(key: &CommitmentKey, _change: &Self::Change) -> Self {
        Self::new(key.clone())
    }

    fn apply(&mut self, c: &Self::Change, event: &ProjectedEvent) -> bool {
        if !not_older(&event.position, self.newest.as_ref()) {
            return false;
        }
        self.purchase_order.clone_from(&c.purchase_order);
        self.buckets.clone_from(&c.buckets);
        self.cumulative_received.clone_from(&c.cumulative_received);
        self.updated = Some(event.time.clone());
        self.newest = Some(event.position);
        true
    }

    fn applied(&mut self) -> &mut AppliedIds {
        &mut self.applied
    }
}
