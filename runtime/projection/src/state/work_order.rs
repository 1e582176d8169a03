//! Work orders: state, operations and quantity totals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::amount::Amount;
use super::{AppliedIds, BucketKey, ProjectedEvent, Record, bucket_key, not_older};
use millrace_core::canonical::Position;
use millrace_core::canonical::{Quantity, WorkOrderState};

/// A work order: site and number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkOrderKey {
    /// Site code.
    pub site: String,
    /// Work order number.
    pub work_order: String,
}

impl BucketKey for WorkOrderKey {
    /// `<site>.<work order>`.
    fn bucket_key(&self) -> String {
        bucket_key(&[Some(&self.site), Some(&self.work_order)])
    }
}

/// A change to a work order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkOrderChange {
    /// A state change, with what the source reports as planned, completed and scrapped.
    Status(millrace_core::canonical::WorkOrderStatus),
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
    /// Quantities whose unit cannot be converted to `uom` (added as they are).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unit_mismatches: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl Total {
    /// Adds `q` in the total's unit (converted when it measures the same, as stock is); a
    /// quantity in a unit that cannot be converted is added as it is and counted in
    /// `unit_mismatches`.
    pub(crate) fn add(slot: &mut Option<Total>, q: &Quantity) {
        match slot {
            // Nothing but zeros so far (no scrap): the sum has no unit to keep yet, so the
            // first quantity that is not zero gives it, whatever unit the zeros came in.
            Some(total)
                if total.amount.is_zero()
                    && total.unit_mismatches == 0
                    && Amount::parse(&q.amount).is_some_and(|a| !a.is_zero()) =>
            {
                let mut none = 0;
                total.amount = Amount::of(q, &total.uom, &mut none);
                if none > 0 {
                    total.uom.clone_from(&q.uom);
                }
            }
            Some(total) => {
                let amount = Amount::of(q, &total.uom, &mut total.unit_mismatches);
                total.amount = total.amount.plus(amount);
            }
            None => {
                *slot = Some(Total {
                    amount: Amount::parse(&q.amount).unwrap_or(Amount::ZERO),
                    uom: q.uom.clone(),
                    unit_mismatches: 0,
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
    /// Position of the newest status carrying quantities (kept for records written before
    /// each quantity had its own position, which fall back to it).
    pub reported_at: Option<Position>,
    /// Position of the status `planned` is from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_at: Option<Position>,
    /// Position of the status `reported_completed` is from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Position>,
    /// Position of the status `reported_scrapped` is from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrapped_at: Option<Position>,
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
            planned_at: None,
            completed_at: None,
            scrapped_at: None,
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
    type Key = WorkOrderKey;
    type Change = WorkOrderChange;

    fn fresh(key: &WorkOrderKey, _change: &Self::Change) -> Self {
        Self::new(key.clone())
    }

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
                // Each quantity from the newest status that carries it, whatever order they
                // come in: a status that leaves a quantity out (a closing status with only the
                // completed quantity, a release with only the planned one) keeps the one
                // reported before, also when it arrives after a newer status.
                let legacy = self.reported_at;
                let mut reported = false;
                for (quantity, slot, at) in [
                    (
                        &status.planned_quantity,
                        &mut self.planned,
                        &mut self.planned_at,
                    ),
                    (
                        &status.completed_quantity,
                        &mut self.reported_completed,
                        &mut self.completed_at,
                    ),
                    (
                        &status.scrapped_quantity,
                        &mut self.reported_scrapped,
                        &mut self.scrapped_at,
                    ),
                ] {
                    let newest = at.or(if slot.is_some() { legacy } else { None });
                    if quantity.is_some() && not_older(&event.position, newest.as_ref()) {
                        slot.clone_from(quantity);
                        *at = Some(event.position);
                        reported = true;
                    }
                }
                if reported {
                    if not_older(&event.position, self.reported_at.as_ref()) {
                        self.reported_at = Some(event.position);
                    }
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
