//! The projected records and how each canonical event kind changes them.
//!
//! Everything here is pure: [`plan`] turns one canonical event into the record changes it
//! makes, and each record's `apply` makes one change, once per event id, respecting source
//! order for state-like fields. The consumer loop (`mod.rs`) only reads and writes the
//! records in their key-value buckets.

use std::cmp::Ordering as Cmp;
use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::amount::Amount;
use crate::canonical::{
    EventData, HoldAction, HoldScope, MovementType, QualityHold, Quantity, ScheduleBucket,
    StockStatus, WorkOrderState,
};
use crate::governance::ordering::Position;

/// Event ids remembered per record: enough for any redelivery of recent events.
const APPLIED_IDS: usize = 64;

/// A canonical event as read back from the canonical stream.
#[derive(Debug, Clone)]
pub struct ProjectedEvent {
    /// The CloudEvents id (deterministic per raw message, plugin version and position).
    pub id: String,
    /// The site code, from `source` (`/<site>/<system>`).
    pub site: String,
    /// The source system, from `source`.
    pub system: String,
    /// When it happened at the source (RFC 3339).
    pub time: String,
    /// Source time and sequence, for ordering state-like fields.
    pub position: Position,
    /// Marked late by the host: older than the newest event of its business key.
    pub late: bool,
    /// The event.
    pub data: EventData,
}

/// The CloudEvents fields the projection reads.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    time: String,
    data: serde_json::Value,
    #[serde(default)]
    sourcesequence: Option<u64>,
    #[serde(default)]
    late: Option<bool>,
}

impl ProjectedEvent {
    /// Reads a canonical CloudEvent; the error says what is wrong with it.
    pub fn read(payload: &[u8]) -> Result<Self, String> {
        let envelope: Envelope = serde_json::from_slice(payload)
            .map_err(|e| format!("not a canonical CloudEvent: {e}"))?;
        let kind = envelope
            .kind
            .strip_prefix("millrace.")
            .and_then(|k| k.strip_suffix(".v1"))
            .ok_or_else(|| format!("unknown event type {:?}", envelope.kind))?;
        let data: EventData =
            serde_json::from_value(serde_json::json!({ "kind": kind, "data": envelope.data }))
                .map_err(|e| format!("{kind} event {}: {e}", envelope.id))?;
        let (site, system) = envelope
            .source
            .strip_prefix('/')
            .and_then(|s| s.split_once('/'))
            .ok_or_else(|| format!("source {:?} is not /<site>/<system>", envelope.source))?;
        let position = Position::at(&envelope.time, envelope.sourcesequence)
            .ok_or_else(|| format!("time {:?} is not RFC 3339", envelope.time))?;
        Ok(Self {
            id: envelope.id,
            site: site.to_owned(),
            system: system.to_owned(),
            time: envelope.time,
            position,
            late: envelope.late.unwrap_or(false),
            data,
        })
    }
}

/// The recent event ids a record has applied, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedIds(Vec<String>);

impl AppliedIds {
    /// True when `id` was applied.
    pub fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|a| a == id)
    }

    fn push(&mut self, id: &str) {
        self.0.push(id.to_owned());
        if self.0.len() > APPLIED_IDS {
            self.0.remove(0);
        }
    }
}

/// A record kept in a key-value bucket.
pub trait Record: Serialize + DeserializeOwned + PartialEq {
    /// The change this record takes.
    type Change;
    /// Applies `change` from `event`; false when it changed nothing (an older state, a
    /// repeat). Callers go through [`apply_once`].
    fn apply(&mut self, change: &Self::Change, event: &ProjectedEvent) -> bool;
    /// The ids this record applied.
    fn applied(&mut self) -> &mut AppliedIds;
}

/// Applies `change` unless the record applied `event` already; true when the record changed.
pub fn apply_once<R: Record>(record: &mut R, change: &R::Change, event: &ProjectedEvent) -> bool {
    if record.applied().contains(&event.id) {
        return false;
    }
    let changed = record.apply(change, event);
    if changed {
        record.applied().push(&event.id);
    }
    changed
}

/// True when `position` is not older than `newest` (equal times: the later event wins).
fn not_older(position: &Position, newest: Option<&Position>) -> bool {
    newest.is_none_or(|n| position.compare(n) != Cmp::Less)
}

/// A key token: plain when it is a safe token, else `=x` and the hex of its bytes (`=` alone
/// for none), so any item, lot or supplier name makes a valid, unambiguous bucket key.
pub fn key_token(value: Option<&str>) -> String {
    match value {
        Some(v)
            if !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            v.to_owned()
        }
        Some(v) => {
            let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
            format!("=x{hex}")
        }
        None => "=".to_owned(),
    }
}

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

impl StockKey {
    /// `<site>.<item>.<location>.<lot>`.
    pub fn bucket_key(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            key_token(Some(&self.site)),
            key_token(Some(&self.item)),
            key_token(self.location.as_deref()),
            key_token(self.lot.as_deref())
        )
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
    },
    /// A ship notice line (or a transfer in transit) on its way to the site.
    Shipped(Quantity),
    /// A receipt of the item and lot at the site: it is no longer in transit.
    Arrived(Quantity),
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

    /// The amount of `q`, noting its unit.
    fn amount(&mut self, q: &Quantity) -> Amount {
        match &self.uom {
            None => self.uom = Some(q.uom.clone()),
            Some(uom) if *uom != q.uom => self.unit_mismatches += 1,
            Some(_) => {}
        }
        Amount::parse(&q.amount).unwrap_or(Amount::ZERO)
    }

    fn touch(&mut self, event: &ProjectedEvent) {
        if not_older(&event.position, self.newest.as_ref()) {
            self.newest = Some(event.position);
            self.updated = Some(event.time.clone());
        }
    }
}

impl Record for StockRecord {
    type Change = StockChange;

    fn apply(&mut self, change: &StockChange, event: &ProjectedEvent) -> bool {
        match change {
            StockChange::OnHand { delta, receipt } => {
                let delta = self.amount(delta);
                self.on_hand = self.on_hand.plus(delta);
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
                self.source_blocked = Some(self.amount(blocked));
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

/// A work order: site and number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkOrderKey {
    /// Site code.
    pub site: String,
    /// Work order number.
    pub work_order: String,
}

impl WorkOrderKey {
    /// `<site>.<work order>`.
    pub fn bucket_key(&self) -> String {
        format!(
            "{}.{}",
            key_token(Some(&self.site)),
            key_token(Some(&self.work_order))
        )
    }
}

/// A change to a work order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkOrderChange {
    /// A state change, with what the source reports as planned, completed and scrapped.
    Status(crate::canonical::WorkOrderStatus),
    /// Output reported: good and scrap quantities add up.
    Completion {
        /// Item produced.
        item: String,
        /// Good quantity.
        good: Quantity,
        /// Scrap quantity.
        scrap: Quantity,
    },
    /// Material consumed: adds up per item.
    Consumption {
        /// Item consumed.
        item: String,
        /// Quantity.
        quantity: Quantity,
    },
}

/// The state of one operation of a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationState {
    /// The newest state.
    pub state: WorkOrderState,
    /// Its source time (RFC 3339).
    pub since: String,
    /// Its position, for ordering.
    pub position: Position,
}

/// A quantity summed from events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Total {
    /// The sum.
    pub amount: Amount,
    /// The unit of the first event.
    pub uom: String,
}

impl Total {
    fn add(slot: &mut Option<Total>, q: &Quantity) {
        let amount = Amount::parse(&q.amount).unwrap_or(Amount::ZERO);
        match slot {
            Some(total) => total.amount = total.amount.plus(amount),
            None => {
                *slot = Some(Total {
                    amount,
                    uom: q.uom.clone(),
                });
            }
        }
    }
}

/// A work order as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOrderRecord {
    /// Which.
    #[serde(flatten)]
    pub key: WorkOrderKey,
    /// Item produced.
    pub item: Option<String>,
    /// The newest state reported for the order or any of its operations.
    pub state: Option<OperationState>,
    /// The newest state per operation.
    pub operations: BTreeMap<String, OperationState>,
    /// Planned quantity, from the newest status that has one.
    pub planned: Option<Quantity>,
    /// Completed quantity the source reported with the newest status that has one.
    pub reported_completed: Option<Quantity>,
    /// Scrapped quantity the source reported with the newest status that has one.
    pub reported_scrapped: Option<Quantity>,
    /// Position of the newest status carrying quantities.
    pub reported_at: Option<Position>,
    /// Good quantity of the production completions, summed.
    pub completed: Option<Total>,
    /// Scrap quantity of the production completions, summed.
    pub scrapped: Option<Total>,
    /// Material consumed per item, summed.
    pub consumed: BTreeMap<String, Total>,
    /// Source time (RFC 3339) of the newest event applied.
    pub updated: Option<String>,
    /// Position of the newest event applied.
    pub newest: Option<Position>,
    /// Recent event ids applied.
    pub applied: AppliedIds,
}

impl WorkOrderRecord {
    /// A new work order with nothing reported.
    pub fn new(key: WorkOrderKey) -> Self {
        Self {
            key,
            item: None,
            state: None,
            operations: BTreeMap::new(),
            planned: None,
            reported_completed: None,
            reported_scrapped: None,
            reported_at: None,
            completed: None,
            scrapped: None,
            consumed: BTreeMap::new(),
            updated: None,
            newest: None,
            applied: AppliedIds::default(),
        }
    }
}

impl Record for WorkOrderRecord {
    type Change = WorkOrderChange;

    fn apply(&mut self, change: &WorkOrderChange, event: &ProjectedEvent) -> bool {
        match change {
            WorkOrderChange::Status(status) => {
                let state = OperationState {
                    state: status.state,
                    since: event.time.clone(),
                    position: event.position,
                };
                let mut changed = false;
                if let Some(op) = &status.operation {
                    let newest = self.operations.get(op).map(|s| &s.position);
                    if not_older(&event.position, newest) {
                        self.operations.insert(op.clone(), state.clone());
                        changed = true;
                    }
                }
                if not_older(&event.position, self.state.as_ref().map(|s| &s.position)) {
                    self.state = Some(state);
                    changed = true;
                }
                let reports = status.planned_quantity.is_some()
                    || status.completed_quantity.is_some()
                    || status.scrapped_quantity.is_some();
                if reports && not_older(&event.position, self.reported_at.as_ref()) {
                    if status.planned_quantity.is_some() {
                        self.planned.clone_from(&status.planned_quantity);
                    }
                    self.reported_completed
                        .clone_from(&status.completed_quantity);
                    self.reported_scrapped.clone_from(&status.scrapped_quantity);
                    self.reported_at = Some(event.position);
                    changed = true;
                }
                if self.item.is_none() && status.item.is_some() {
                    self.item.clone_from(&status.item);
                    changed = true;
                }
                if !changed {
                    return false;
                }
            }
            WorkOrderChange::Completion { item, good, scrap } => {
                Total::add(&mut self.completed, good);
                Total::add(&mut self.scrapped, scrap);
                if self.item.is_none() {
                    self.item = Some(item.clone());
                }
            }
            WorkOrderChange::Consumption { item, quantity } => {
                let mut slot = self.consumed.remove(item);
                Total::add(&mut slot, quantity);
                if let Some(total) = slot {
                    self.consumed.insert(item.clone(), total);
                }
            }
        }
        if not_older(&event.position, self.newest.as_ref()) {
            self.newest = Some(event.position);
            self.updated = Some(event.time.clone());
        }
        true
    }

    fn applied(&mut self) -> &mut AppliedIds {
        &mut self.applied
    }
}

/// A quality hold on one scope: site, hold id, item and lot (a hold on several lots is one
/// record per lot, as the events come).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HoldKey {
    /// Site code.
    pub site: String,
    /// Hold id.
    pub hold_id: String,
    /// Item held.
    pub item: Option<String>,
    /// Lot held.
    pub lot: Option<String>,
}

impl HoldKey {
    /// `<site>.<hold id>.<item>.<lot>`.
    pub fn bucket_key(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            key_token(Some(&self.site)),
            key_token(Some(&self.hold_id)),
            key_token(self.item.as_deref()),
            key_token(self.lot.as_deref())
        )
    }
}

/// A quality hold as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    /// Which.
    #[serde(flatten)]
    pub key: HoldKey,
    /// Placed or released, as the newest event says.
    pub action: HoldAction,
    /// The whole scope (location and supplier too).
    pub scope: HoldScope,
    /// Reason.
    pub reason: String,
    /// Disposition.
    pub disposition: Option<String>,
    /// When it was placed (source time), from the newest placement.
    pub placed_at: Option<String>,
    /// When it was released (source time).
    pub released_at: Option<String>,
    /// Position of the newest event applied.
    pub newest: Option<Position>,
    /// Recent event ids applied.
    pub applied: AppliedIds,
}

impl HoldRecord {
    /// A record for a hold not seen before.
    pub fn new(key: HoldKey, hold: &QualityHold) -> Self {
        Self {
            key,
            action: hold.action,
            scope: hold.scope.clone(),
            reason: hold.reason.clone(),
            disposition: None,
            placed_at: None,
            released_at: None,
            newest: None,
            applied: AppliedIds::default(),
        }
    }

    /// True while the hold is placed.
    pub fn is_open(&self) -> bool {
        self.action == HoldAction::Placed
    }

    /// True when the hold blocks the stock at `position`. A hold naming a lot blocks that
    /// lot (of its item, when it names one) wherever it sits, at any site and location; one
    /// without a lot blocks its item at its own site, at its location when it names one. A
    /// hold naming only a supplier blocks nothing here (stock does not record its supplier).
    pub fn blocks(&self, position: &StockKey) -> bool {
        let scope = &self.scope;
        let same = |want: &Option<String>, have: Option<&String>| {
            want.as_ref().is_none_or(|w| have == Some(w))
        };
        if !self.is_open() || (scope.item.is_none() && scope.lot.is_none()) {
            return false;
        }
        if !same(&scope.item, Some(&position.item)) {
            return false;
        }
        match &scope.lot {
            Some(lot) => position.lot.as_ref() == Some(lot),
            None => {
                self.key.site == position.site && same(&scope.location, position.location.as_ref())
            }
        }
    }
}

impl Record for HoldRecord {
    type Change = QualityHold;

    fn apply(&mut self, hold: &QualityHold, event: &ProjectedEvent) -> bool {
        // A placement or release older than the newest one applied (a late resend of the
        // placement after its release) must not reopen or close the hold.
        if !not_older(&event.position, self.newest.as_ref()) {
            return false;
        }
        self.action = hold.action;
        self.scope = hold.scope.clone();
        self.reason.clone_from(&hold.reason);
        if hold.disposition.is_some() {
            self.disposition.clone_from(&hold.disposition);
        }
        match hold.action {
            HoldAction::Placed => {
                self.placed_at = Some(event.time.clone());
                self.released_at = None;
            }
            HoldAction::Released => self.released_at = Some(event.time.clone()),
        }
        self.newest = Some(event.position);
        true
    }

    fn applied(&mut self) -> &mut AppliedIds {
        &mut self.applied
    }
}

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

impl CommitmentKey {
    /// `<site>.<supplier>.<item>`.
    pub fn bucket_key(&self) -> String {
        format!(
            "{}.{}.{}",
            key_token(Some(&self.site)),
            key_token(Some(&self.supplier)),
            key_token(Some(&self.item))
        )
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
    type Change = crate::canonical::SupplierCommitment;

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
        format!("{}.{}", key_token(Some(site)), key_token(Some(system)))
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

/// One record change an event makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A stock position.
    Stock(StockKey, StockChange),
    /// A work order.
    WorkOrder(WorkOrderKey, WorkOrderChange),
    /// A quality hold.
    Hold(HoldKey, QualityHold),
    /// A supplier commitment.
    Commitment(CommitmentKey, crate::canonical::SupplierCommitment),
}

/// The record changes of one canonical event, in the order they are written.
pub fn plan(event: &ProjectedEvent) -> Vec<Change> {
    let site = &event.site;
    let stock = |item: &str, location: Option<&String>, lot: Option<&String>| StockKey {
        site: site.clone(),
        item: item.to_owned(),
        location: location.cloned(),
        lot: lot.cloned(),
    };
    let on_hand = |delta: Quantity, receipt: bool| StockChange::OnHand { delta, receipt };
    let negated = |q: &Quantity| Quantity {
        amount: Amount::parse(&q.amount)
            .unwrap_or(Amount::ZERO)
            .negated()
            .to_string(),
        uom: q.uom.clone(),
    };
    let work_order = |number: &str| WorkOrderKey {
        site: site.clone(),
        work_order: number.to_owned(),
    };
    match &event.data {
        EventData::InventoryMovement(m) => {
            let (from, to, lot) = (
                m.from_location.as_ref(),
                m.to_location.as_ref(),
                m.lot.as_ref(),
            );
            let q = &m.quantity;
            match m.movement_type {
                MovementType::Receipt => vec![
                    Change::Stock(stock(&m.item, to.or(from), lot), on_hand(q.clone(), true)),
                    Change::Stock(stock(&m.item, None, lot), StockChange::Arrived(q.clone())),
                ],
                MovementType::Issue | MovementType::Scrap => {
                    vec![Change::Stock(
                        stock(&m.item, from.or(to), lot),
                        on_hand(negated(q), false),
                    )]
                }
                MovementType::Adjustment => match (from, to) {
                    (Some(from), None) => {
                        vec![Change::Stock(
                            stock(&m.item, Some(from), lot),
                            on_hand(negated(q), false),
                        )]
                    }
                    _ => vec![Change::Stock(
                        stock(&m.item, to, lot),
                        on_hand(q.clone(), false),
                    )],
                },
                MovementType::Transfer => {
                    let mut changes = Vec::new();
                    if let Some(from) = from {
                        changes.push(Change::Stock(
                            stock(&m.item, Some(from), lot),
                            on_hand(negated(q), false),
                        ));
                    }
                    if m.stock_status == Some(StockStatus::InTransit) {
                        changes.push(Change::Stock(
                            stock(&m.item, None, lot),
                            StockChange::Shipped(q.clone()),
                        ));
                    } else if let Some(to) = to {
                        changes.push(Change::Stock(
                            stock(&m.item, Some(to), lot),
                            on_hand(q.clone(), false),
                        ));
                    }
                    changes
                }
            }
        }
        EventData::InventoryBalance(b) => vec![Change::Stock(
            stock(&b.item, Some(&b.location), b.lot.as_ref()),
            StockChange::Balance {
                on_hand: b.on_hand.clone(),
                allocated: b.allocated.clone(),
                blocked: b.blocked.clone(),
            },
        )],
        EventData::WorkOrderStatus(w) => vec![Change::WorkOrder(
            work_order(&w.work_order),
            WorkOrderChange::Status(w.clone()),
        )],
        EventData::MaterialConsumption(c) => vec![
            Change::Stock(
                stock(&c.item, c.location.as_ref(), c.lot.as_ref()),
                on_hand(negated(&c.quantity), false),
            ),
            Change::WorkOrder(
                work_order(&c.work_order),
                WorkOrderChange::Consumption {
                    item: c.item.clone(),
                    quantity: c.quantity.clone(),
                },
            ),
        ],
        EventData::ProductionCompletion(p) => vec![
            Change::Stock(
                stock(&p.item, p.location.as_ref(), p.lot.as_ref()),
                on_hand(p.good_quantity.clone(), false),
            ),
            Change::WorkOrder(
                work_order(&p.work_order),
                WorkOrderChange::Completion {
                    item: p.item.clone(),
                    good: p.good_quantity.clone(),
                    scrap: p.scrap_quantity.clone(),
                },
            ),
        ],
        EventData::QualityHold(h) => vec![Change::Hold(
            HoldKey {
                site: site.clone(),
                hold_id: h.hold_id.clone(),
                item: h.scope.item.clone(),
                lot: h.scope.lot.clone(),
            },
            h.clone(),
        )],
        EventData::SupplierCommitment(c) => vec![Change::Commitment(
            CommitmentKey {
                site: site.clone(),
                supplier: c.supplier.clone(),
                item: c.item.clone(),
            },
            c.clone(),
        )],
        EventData::ShipmentNotice(n) => n
            .lines
            .iter()
            .map(|line| {
                Change::Stock(
                    stock(&line.item, None, line.lot.as_ref()),
                    StockChange::Shipped(line.quantity.clone()),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canonical::{InventoryMovement, WorkOrderStatus};

    fn q(amount: &str) -> Quantity {
        Quantity {
            amount: amount.into(),
            uom: "EA".into(),
        }
    }

    fn event(id: &str, time: &str, data: EventData) -> ProjectedEvent {
        ProjectedEvent {
            id: id.into(),
            site: "PLANT1".into(),
            system: "mes".into(),
            time: time.into(),
            position: Position::at(time, None).unwrap(),
            late: false,
            data,
        }
    }

    fn receipt(id: &str, time: &str, amount: &str) -> ProjectedEvent {
        event(
            id,
            time,
            EventData::InventoryMovement(InventoryMovement {
                movement_type: MovementType::Receipt,
                item: "RM-1".into(),
                quantity: q(amount),
                from_location: None,
                to_location: Some("WH1".into()),
                lot: Some("L1".into()),
                serials: vec![],
                stock_status: None,
                reference_document: None,
                expiry_date: None,
            }),
        )
    }

    /// Applies every change of `event` to the stock positions in `book`.
    fn apply_stock(book: &mut BTreeMap<StockKey, StockRecord>, event: &ProjectedEvent) {
        for change in plan(event) {
            if let Change::Stock(key, change) = change {
                let record = book
                    .entry(key.clone())
                    .or_insert_with(|| StockRecord::new(key));
                apply_once(record, &change, event);
            }
        }
    }

    fn status(id: &str, time: &str, state: WorkOrderState) -> ProjectedEvent {
        event(
            id,
            time,
            EventData::WorkOrderStatus(WorkOrderStatus {
                work_order: "WO-1".into(),
                operation: None,
                state,
                item: None,
                planned_quantity: None,
                completed_quantity: Some(q(if state == WorkOrderState::Completed {
                    "10"
                } else {
                    "0"
                })),
                scrapped_quantity: None,
            }),
        )
    }

    #[test]
    fn an_event_applies_once_whatever_the_redeliveries() {
        let mut book = BTreeMap::new();
        let first = receipt("e1", "2026-03-02T06:00:00Z", "10");
        apply_stock(&mut book, &first);
        apply_stock(&mut book, &first);
        apply_stock(&mut book, &receipt("e2", "2026-03-02T05:00:00Z", "2.5"));
        let at_wh1 = book
            .values()
            .find(|r| r.key.location.as_deref() == Some("WH1"))
            .unwrap();
        assert_eq!(
            at_wh1.on_hand.to_string(),
            "12.5",
            "the repeat adds nothing"
        );
        assert_eq!(at_wh1.received.to_string(), "12.5");
        assert_eq!(
            at_wh1.updated.as_deref(),
            Some("2026-03-02T06:00:00Z"),
            "an older movement still adds, but is not the newest update"
        );
    }

    #[test]
    fn a_late_state_never_overwrites_a_newer_one() {
        let key = WorkOrderKey {
            site: "PLANT1".into(),
            work_order: "WO-1".into(),
        };
        let mut order = WorkOrderRecord::new(key);
        let done = status("e2", "2026-03-02T12:00:00Z", WorkOrderState::Completed);
        let started = status("e1", "2026-03-02T07:00:00+01:00", WorkOrderState::Started);
        for e in [&done, &started] {
            for change in plan(e) {
                if let Change::WorkOrder(_, change) = change {
                    apply_once(&mut order, &change, e);
                }
            }
        }
        let state = order.state.unwrap();
        assert_eq!(state.state, WorkOrderState::Completed);
        assert_eq!(order.reported_completed, Some(q("10")));
    }

    #[test]
    fn a_ship_notice_is_in_transit_until_received() {
        let mut book = BTreeMap::new();
        let notice = event(
            "asn",
            "2026-03-01T10:00:00Z",
            EventData::ShipmentNotice(crate::canonical::ShipmentNotice {
                shipment_id: "S1".into(),
                supplier: "SUP".into(),
                ship_date: "2026-03-01T10:00:00Z".into(),
                expected_delivery: None,
                lines: vec![crate::canonical::ShipmentLine {
                    item: "RM-1".into(),
                    quantity: q("30"),
                    lot: Some("L1".into()),
                    serials: vec![],
                    purchase_order: None,
                    package_id: None,
                }],
            }),
        );
        apply_stock(&mut book, &notice);
        apply_stock(&mut book, &receipt("gr", "2026-03-02T06:00:00Z", "20"));
        let transit = &book[&StockKey {
            site: "PLANT1".into(),
            item: "RM-1".into(),
            location: None,
            lot: Some("L1".into()),
        }];
        assert_eq!(transit.in_transit().to_string(), "10");
    }

    #[test]
    fn a_hold_on_a_lot_blocks_it_wherever_it_sits_until_released() {
        let placed = QualityHold {
            hold_id: "NCR-1".into(),
            action: HoldAction::Placed,
            scope: HoldScope {
                item: Some("RM-1".into()),
                lot: Some("L1".into()),
                location: Some("QA-CAGE".into()),
                supplier: None,
            },
            reason: "porosity".into(),
            disposition: None,
        };
        let released = QualityHold {
            action: HoldAction::Released,
            ..placed.clone()
        };
        let key = HoldKey {
            site: "PLANT1".into(),
            hold_id: "NCR-1".into(),
            item: Some("RM-1".into()),
            lot: Some("L1".into()),
        };
        let at = |site: &str, location: &str, lot: &str| StockKey {
            site: site.into(),
            item: "RM-1".into(),
            location: Some(location.into()),
            lot: Some(lot.into()),
        };
        let mut hold = HoldRecord::new(key, &placed);
        let data = |h: &QualityHold| EventData::QualityHold(h.clone());
        let place = event("p", "2026-03-02T09:00:00Z", data(&placed));
        let release = event("r", "2026-03-04T15:00:00+01:00", data(&released));
        let resent = event("p2", "2026-03-02T09:00:00Z", data(&placed));
        assert!(apply_once(&mut hold, &placed, &place));
        assert!(hold.blocks(&at("PLANT1", "WH1", "L1")));
        assert!(hold.blocks(&at("PLANT2", "DOCK", "L1")), "wherever it sits");
        assert!(!hold.blocks(&at("PLANT1", "WH1", "L2")));
        assert!(apply_once(&mut hold, &released, &release));
        assert!(!hold.blocks(&at("PLANT1", "WH1", "L1")));
        assert!(
            !apply_once(&mut hold, &placed, &resent),
            "a late resend of the placement does not reopen it"
        );
        assert!(!hold.is_open());
    }

    #[test]
    fn an_older_balance_does_not_replace_newer_movements() {
        let mut book = BTreeMap::new();
        apply_stock(&mut book, &receipt("gr", "2026-03-02T06:00:00Z", "20"));
        let balance = |id: &str, time: &str, amount: &str| {
            event(
                id,
                time,
                EventData::InventoryBalance(crate::canonical::InventoryBalance {
                    item: "RM-1".into(),
                    location: "WH1".into(),
                    lot: Some("L1".into()),
                    on_hand: q(amount),
                    allocated: q("0"),
                    blocked: q("0"),
                }),
            )
        };
        apply_stock(&mut book, &balance("b1", "2026-03-01T00:00:00Z", "5"));
        let at_wh1 = |book: &BTreeMap<StockKey, StockRecord>| {
            book.values()
                .find(|r| r.key.location.as_deref() == Some("WH1"))
                .unwrap()
                .on_hand
                .to_string()
        };
        assert_eq!(at_wh1(&book), "20");
        apply_stock(&mut book, &balance("b2", "2026-03-03T00:00:00Z", "18"));
        assert_eq!(at_wh1(&book), "18");
    }

    #[test]
    fn events_read_back_from_their_cloudevent_form() {
        let json = br#"{"specversion":"1.0","id":"x-1","source":"/PLANT1/qms","type":"millrace.quality-hold.v1",
            "time":"2026-03-02T09:41:27.512Z","subject":"NCR-1@PLANT1","datacontenttype":"application/json",
            "data":{"hold_id":"NCR-1","action":"placed","scope":{"lot":"L1"},"reason":"r"},
            "route":"q","plugin":"p","pluginversion":"1.0.0","rawsequence":3,"late":true}"#;
        let event = ProjectedEvent::read(json).unwrap();
        assert_eq!(
            (event.site.as_str(), event.system.as_str()),
            ("PLANT1", "qms")
        );
        assert!(event.late);
        assert!(matches!(event.data, EventData::QualityHold(_)));
        assert!(ProjectedEvent::read(b"{}").is_err());
    }

    #[test]
    fn keys_are_valid_and_unambiguous() {
        assert_eq!(key_token(Some("WO-4711")), "WO-4711");
        assert_eq!(key_token(None), "=");
        assert_eq!(key_token(Some("1 EDI")), "=x3120454449");
        assert_ne!(key_token(Some("")), key_token(None));
    }
}
