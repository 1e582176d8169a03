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
        /// The stock added or taken is in quality inspection or blocked: what arrives so is
        /// restricted, what leaves so is taken from the restricted stock first (the rest, and
        /// everything else that leaves, from free stock first).
        restricted: bool,
    },
    /// A ship notice line (or a transfer in transit) on its way to the site.
    Shipped(Quantity),
    /// A receipt of the item and lot at the site: what of it is in transit here is no longer;
    /// the rest (nothing was in transit, an over-receipt) is kept as an early arrival, which a
    /// ship notice applied later but not dated after the receipt nets against.
    Arrived(Quantity),
    /// The part of a lotted receipt its lot's own in transit did not cover ([`spill_of`]),
    /// netted against the in transit of the item without a lot (a ship notice naming no lot);
    /// what is not in transit here is dropped (the lot position keeps it as an early arrival).
    Spilled(Quantity),
    /// The early arrival of receipt `event` at this lot position was netted against the
    /// item's in transit without a lot (`amount` of it, in that position's unit): it no longer
    /// waits for a ship notice of the lot.
    Netted {
        /// The receipt's event id.
        event: String,
        /// How much of it was netted.
        amount: Quantity,
    },
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

/// Early arrivals kept per position.
pub const EARLY_ARRIVALS: usize = 32;

/// A receipt (or its part) that found nothing in transit when it was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlyArrival {
    /// How much.
    pub amount: Amount,
    /// The receipt's source time and sequence.
    pub at: Position,
    /// The receipt's event id.
    pub event: String,
}

/// What a lotted receipt netted against the in transit of its item without a lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spill {
    /// The receipt's event id.
    pub event: String,
    /// How much it netted here.
    pub amount: Amount,
}

/// The changes that follow a lotted receipt once its lot position at the site (`lot_key`,
/// `lot_record` as written) has taken it: the part its lot's own in transit did not cover is
/// netted against the item's in transit without a lot at the site ([`StockChange::Spilled`]).
/// None for anything else, or when the lot's in transit covered it all.
pub fn spill_of(
    lot_key: &StockKey,
    lot_record: &StockRecord,
    event: &ProjectedEvent,
) -> Option<(StockKey, StockChange)> {
    if lot_key.location.is_some() || lot_key.lot.is_none() {
        return None;
    }
    let rest = lot_record.early_of(&event.id);
    if rest.is_zero() || rest.is_negative() {
        return None;
    }
    let key = StockKey {
        lot: None,
        ..lot_key.clone()
    };
    let quantity = Quantity {
        amount: rest.to_string(),
        uom: lot_record.uom.clone().unwrap_or_default(),
    };
    Some((key, StockChange::Spilled(quantity)))
}

/// What a lot position is told once the item's in transit without a lot (`lotless` as
/// written) took part of receipt `event`'s early arrival: [`StockChange::Netted`], applied
/// under the event id [`netted_id`] gives.
pub fn netted_of(lotless: &StockRecord, event: &ProjectedEvent) -> Option<StockChange> {
    let spill = lotless.spilled.as_ref().filter(|s| s.event == event.id)?;
    if spill.amount.is_zero() {
        return None;
    }
    Some(StockChange::Netted {
        event: event.id.clone(),
        amount: Quantity {
            amount: spill.amount.to_string(),
            uom: lotless.uom.clone().unwrap_or_default(),
        },
    })
}

/// The id a lot position applies [`StockChange::Netted`] of event `id` under: its own, as the
/// position applied the receipt itself under `id`.
pub fn netted_id(id: &str) -> String {
    format!("{id}+netted")
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
    /// Received here (receipts of the item and lot at the site), in all; the part that was in
    /// transit left it.
    pub arrived: Amount,
    /// Still on the way: shipments less the receipts netted against them, never below zero.
    /// Absent in records written before it was kept: shipped − arrived then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit: Option<Amount>,
    /// Receipts (their parts) that found nothing in transit, newest last: a ship notice applied
    /// later that is not dated after one of them is netted against it (the notice reached the
    /// projection after the goods). At most [`EARLY_ARRIVALS`], the oldest dropped first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early: Vec<EarlyArrival>,
    /// What the last lotted receipt that spilled over here netted against this position's in
    /// transit, so a redelivery of it tells its lot position the same amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spilled: Option<Spill>,
    /// Allocated, from the newest balance.
    pub allocated: Option<Amount>,
    /// Blocked as the source system counts it, from the newest balance.
    pub source_blocked: Option<Amount>,
    /// Of on hand, in quality inspection or blocked as the source says: set by a balance's
    /// blocked, raised by stock that arrives restricted, lowered by restricted stock that
    /// leaves (a release where it lies, a scrap of blocked stock), never above on hand (what
    /// leaves without a restricted status is taken from free stock first).
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
            transit: Some(Amount::ZERO),
            early: Vec::new(),
            spilled: None,
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

    /// Still on the way: what was shipped less the receipts netted against it, never below
    /// zero. A receipt nets only against what is in transit when it is applied (or, arriving
    /// before its ship notice, against a notice not dated after it), so an earlier receipt or
    /// the surplus of an over-receipt never cancels a later shipment.
    pub fn in_transit(&self) -> Amount {
        self.transit
            .unwrap_or_else(|| self.shipped.minus(self.arrived).at_least_zero())
    }

    /// What of receipt `event_id` found nothing in transit here (an early arrival): for a lot
    /// position, the part to net against the item's in transit without a lot.
    pub fn early_of(&self, event_id: &str) -> Amount {
        self.early
            .iter()
            .filter(|e| e.event == event_id)
            .fold(Amount::ZERO, |sum, e| sum.plus(e.amount))
    }

    /// Nets `arrived` against what is in transit: returns what was not in transit.
    fn take_from_transit(&mut self, arrived: Amount) -> Amount {
        let transit = self.in_transit();
        let net = arrived.min(transit).at_least_zero();
        self.transit = Some(transit.minus(net));
        arrived.minus(net)
    }

    /// Keeps what of a receipt found nothing in transit, for a ship notice applied later.
    fn keep_early(&mut self, amount: Amount, event: &ProjectedEvent) {
        if amount.is_zero() || amount.is_negative() {
            return;
        }
        self.early.push(EarlyArrival {
            amount,
            at: event.position,
            event: event.id.clone(),
        });
        if self.early.len() > EARLY_ARRIVALS
            && let Some(oldest) =
                (0..self.early.len()).min_by(|a, b| self.early[*a].at.compare(&self.early[*b].at))
        {
            self.early.remove(oldest);
        }
    }

    /// A shipment of `shipped` at `event`: netted first against early arrivals not older than
    /// it (receipts of it the projection saw before its notice), oldest first; the rest is in
    /// transit.
    fn ship(&mut self, shipped: Amount, event: &ProjectedEvent) {
        let mut rest = shipped;
        let mut order: Vec<usize> = (0..self.early.len())
            .filter(|i| self.early[*i].at.compare(&event.position) != std::cmp::Ordering::Less)
            .collect();
        order.sort_by(|a, b| self.early[*a].at.compare(&self.early[*b].at));
        for i in order {
            if rest.is_zero() || rest.is_negative() {
                break;
            }
            let early = &mut self.early[i];
            let net = rest.min(early.amount);
            early.amount = early.amount.minus(net);
            rest = rest.minus(net);
        }
        self.early
            .retain(|e| !e.amount.is_zero() && !e.amount.is_negative());
        let transit = self.in_transit();
        self.transit = Some(transit.plus(rest).at_least_zero());
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
        // A record stored before in transit was kept: shipped − arrived, from now on kept.
        if self.transit.is_none() {
            self.transit = Some(self.in_transit());
        }
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
                    if *restricted {
                        // Restricted stock arrives, or leaves (what of it there is).
                        self.restricted = self.restricted.plus(delta).at_least_zero();
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
                self.ship(q, event);
            }
            StockChange::Arrived(q) => {
                let q = self.amount(q);
                self.arrived = self.arrived.plus(q);
                let early = self.take_from_transit(q);
                self.keep_early(early, event);
            }
            StockChange::Spilled(q) => {
                let q = self.amount(q);
                let rest = self.take_from_transit(q);
                let netted = q.minus(rest);
                self.arrived = self.arrived.plus(netted);
                self.spilled = Some(Spill {
                    event: event.id.clone(),
                    amount: netted,
                });
                if netted.is_zero() {
                    // Nothing in transit without a lot: nothing to write.
                    return false;
                }
            }
            StockChange::Netted { event: id, amount } => {
                let mut rest = self.amount(amount);
                for early in self.early.iter_mut().filter(|e| &e.event == id) {
                    let net = rest.min(early.amount);
                    early.amount = early.amount.minus(net);
                    rest = rest.minus(net);
                }
                self.early
                    .retain(|e| !e.amount.is_zero() && !e.amount.is_negative());
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
