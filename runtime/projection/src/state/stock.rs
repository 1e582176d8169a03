//! Stock positions: on hand, in transit, blocked, allocated, per site, item, location and lot.

use serde::{Deserialize, Serialize};

use super::super::amount::Amount;
use super::{AppliedIds, BucketKey, ProjectedEvent, Record, bucket_key, not_older};
use millrace_core::canonical::Position;
use millrace_core::canonical::Quantity;

/// Where a stock position is: site, item, location (none: at the site, location not stated,
/// which is also where stock in transit to the site is counted) and lot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StockKey {
    /// Site code.
    pub site: String,
    /// Item number.
    pub item: String,
    /// Storage location, when the source names one.
    pub location: Option<String>,
    /// Lot or batch.
    pub lot: Option<String>,
}

impl BucketKey for StockKey {
    /// `<site>.<item>.<location>.<lot>`.
    fn bucket_key(&self) -> String {
        bucket_key(&[
            Some(&self.site),
            Some(&self.item),
            self.location.as_deref(),
            self.lot.as_deref(),
        ])
    }
}

/// A change to a stock position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockChange {
    /// On hand changes by `delta` (movements, consumption, completion); `receipt` also counts
    /// it as received.
    OnHand {
        /// Signed change.
        delta: Quantity,
        /// A goods receipt.
        receipt: bool,
        /// Stock added in quality inspection or blocked (the movement's status after it).
        restricted: bool,
    },
    /// A ship notice line (or a transfer in transit) on its way to the site.
    Shipped(Quantity),
    /// A receipt of the item and lot at the site: it is no longer in transit.
    Arrived(Quantity),
    /// Several changes of one event to this position, in order (see `plan`).
    Together(Vec<StockChange>),
    /// An inventory balance: on hand, allocated and blocked as of the event time.
    Balance {
        /// On hand.
        on_hand: Quantity,
        /// Allocated.
        allocated: Quantity,
        /// Blocked, as the source system counts it.
        blocked: Quantity,
    },
}

/// A stock position as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRecord {
    /// Where.
    #[serde(flatten)]
    pub key: StockKey,
    /// Unit of measure of the amounts (the first one seen).
    pub uom: Option<String>,
    /// On hand.
    pub on_hand: Amount,
    /// Received by goods receipts, in all.
    pub received: Amount,
    /// Shipped towards the site (ship notices, transfers in transit), in all.
    pub shipped: Amount,
    /// Of what was shipped, arrived (receipts of the item and lot), in all.
    pub arrived: Amount,
    /// Allocated, from the newest balance.
    pub allocated: Option<Amount>,
    /// Blocked as the source system counts it, from the newest balance.
    pub source_blocked: Option<Amount>,
    /// Of on hand, in quality inspection or blocked as the source says: set by a balance's
    /// blocked, raised by stock that arrives restricted, lowered by a release where it lies,
    /// never above on hand (what leaves the position is taken from free stock first).
    #[serde(default)]
    pub restricted: Amount,
    /// Source time of the newest balance applied.
    pub balance_at: Option<Position>,
    /// Source time and sequence of the newest movement or balance applied.
    pub newest: Option<Position>,
    /// Source time (RFC 3339) of the newest event applied.
    pub updated: Option<String>,
    /// Events whose unit differed from `uom` (amounts are not converted).
    pub unit_mismatches: u64,
    /// Recent event ids applied.
    pub applied: AppliedIds,
}

impl StockRecord {
    /// A new, empty position.
    pub fn new(key: StockKey) -> Self {
        Self {
            key,
            uom: None,
            on_hand: Amount::ZERO,
            received: Amount::ZERO,
            shipped: Amount::ZERO,
            arrived: Amount::ZERO,
            allocated: None,
            source_blocked: None,
            restricted: Amount::ZERO,
            balance_at: None,
            newest: None,
            updated: None,
            unit_mismatches: 0,
            applied: AppliedIds::default(),
        }
    }

    /// Still on the way: shipped less arrived, never below zero (receipts without a notice).
    pub fn in_transit(&self) -> Amount {
        self.shipped.minus(self.arrived).at_least_zero()
    }

    /// The amount of `q` in the position's unit (the first one seen): converted when its unit
    /// measures the same (grams into kilograms), else as it is, counted in `unit_mismatches`.
    fn amount(&mut self, q: &Quantity) -> Amount {
        let uom = self.uom.get_or_insert_with(|| q.uom.clone());
        Amount::of(q, uom, &mut self.unit_mismatches)
    }

    fn touch(&mut self, event: &ProjectedEvent) {
        if not_older(&event.position, self.newest.as_ref()) {
            self.newest = Some(event.position);
            self.updated = Some(event.time.clone());
        }
    }
}

impl Record for StockRecord {
    type Key = StockKey;
    type Change = StockChange;

    fn fresh(key: &StockKey, _change: &Self::Change) -> Self {
        Self::new(key.clone())
    }

    fn apply(&mut self, change: &StockChange, event: &ProjectedEvent) -> bool {
        match change {
            StockChange::OnHand {
                delta,
                receipt,
                restricted,
            } => {
                let delta = self.amount(delta);
                // A balance is the whole state at its time: it counts every movement before
                // it already, also one that reaches the projection after it.
                if not_older(&event.position, self.balance_at.as_ref()) {
                    self.on_hand = self.on_hand.plus(delta);
                    if *restricted && !delta.is_negative() {
                        self.restricted = self.restricted.plus(delta);
                    }
                    self.restricted = self.restricted.min(self.on_hand.at_least_zero());
                }
                if *receipt {
                    self.received = self.received.plus(delta);
                }
            }
            StockChange::Shipped(q) => {
                let q = self.amount(q);
                self.shipped = self.shipped.plus(q);
            }
            StockChange::Arrived(q) => {
                let q = self.amount(q);
                self.arrived = self.arrived.plus(q);
            }
            StockChange::Together(changes) => {
                let mut changed = false;
                for change in changes {
                    changed |= self.apply(change, event);
                }
                return changed;
            }
            StockChange::Balance {
                on_hand,
                allocated,
                blocked,
            } => {
                // A balance is the whole state at its time: only one newer than everything
                // applied to the position replaces on hand, as no one can tell which of the
                // newer movements an older balance already counts.
                if !not_older(&event.position, self.newest.as_ref()) {
                    return false;
                }
                self.on_hand = self.amount(on_hand);
                self.allocated = Some(self.amount(allocated));
                let blocked = self.amount(blocked);
                self.source_blocked = Some(blocked);
                self.restricted = blocked.min(self.on_hand.at_least_zero());
                self.balance_at = Some(event.position);
            }
        }
        self.touch(event);
        true
    }

    fn applied(&mut self) -> &mut AppliedIds {
        &mut self.applied
    }
}
