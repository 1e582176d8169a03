//! The projected records and how each canonical event kind changes them.
//!
//! Everything here is pure: [`plan`] turns one canonical event into the record changes it
//! makes, and each record's `apply` makes one change, once per event id, respecting source
//! order for state-like fields. The consumer loop (`mod.rs`) only reads and writes the
//! records in their key-value buckets.

use std::cmp::Ordering as Cmp;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::amount::Amount;
use millrace_core::canonical::Position;
use millrace_core::canonical::{EventData, MovementType, QualityHold, Quantity, StockStatus};
use millrace_core::posting::{CanonicalEvent, Envelope};

mod commitment;
mod hold;
mod posting;
mod source;
mod stock;
mod work_order;

pub use self::commitment::*;
pub use self::hold::*;
pub use self::posting::*;
pub use self::source::*;
pub use self::stock::*;
pub use self::work_order::*;

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
    /// The business key (CloudEvents `subject`), e.g. `WO-1@PLANT1`.
    pub business_key: String,
    /// The event.
    pub data: EventData,
}

impl ProjectedEvent {
    /// Reads a canonical CloudEvent with the model's one reader of the canonical stream's
    /// wire form ([`CanonicalEvent::from_cloudevent`], the outbound driver's too), adding what
    /// only the projection keeps: the source system and the host's `late` mark. The error says
    /// what is wrong with it.
    pub fn read(payload: &[u8]) -> Result<Self, String> {
        let cloudevent: serde_json::Value = serde_json::from_slice(payload)
            .map_err(|e| format!("not a canonical CloudEvent: {e}"))?;
        let event = CanonicalEvent::from_cloudevent(&cloudevent).map_err(|e| e.to_string())?;
        let source = cloudevent["source"].as_str().unwrap_or_default();
        let system = source
            .strip_prefix('/')
            .and_then(|s| s.split_once('/'))
            .map(|(_, system)| system)
            .filter(|system| !system.is_empty())
            .ok_or_else(|| format!("source {source:?} is not /<site>/<system>"))?;
        let late = match cloudevent.get("late") {
            None | Some(serde_json::Value::Null) => false,
            Some(late) => late
                .as_bool()
                .ok_or_else(|| format!("late is {late}, not true or false"))?,
        };
        let Envelope {
            id,
            site,
            time,
            business_key,
            lineage,
            ..
        } = event.envelope;
        let position = Position::at(&time, lineage.source_sequence)
            .ok_or_else(|| format!("time {time:?} is not RFC 3339"))?;
        Ok(Self {
            id,
            site,
            system: system.to_owned(),
            time,
            position,
            late,
            business_key,
            data: event.data,
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

/// The key naming one record in its bucket.
pub trait BucketKey: Clone {
    /// The key in the bucket: its fields as [`key_token`]s joined by `.`.
    fn bucket_key(&self) -> String;
}

/// A record kept in a key-value bucket.
pub trait Record: Serialize + DeserializeOwned + PartialEq {
    /// The key naming it.
    type Key: BucketKey;
    /// The change this record takes.
    type Change;
    /// A record for `key` not seen before, about to take `change`.
    fn fresh(key: &Self::Key, change: &Self::Change) -> Self;
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

/// A bucket key: the [`key_token`]s of `parts` joined by `.`, so each part is one token of
/// the key whatever its text.
pub fn bucket_key(parts: &[Option<&str>]) -> String {
    let tokens: Vec<String> = parts.iter().map(|part| key_token(*part)).collect();
    tokens.join(".")
}

/// True when `have` is what `want` asks for; a filter field left out (`want` none) matches
/// anything, also a value that is absent.
pub(crate) fn matches(want: &Option<String>, have: Option<&String>) -> bool {
    want.as_ref().is_none_or(|w| have == Some(w))
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
    Commitment(CommitmentKey, millrace_core::canonical::SupplierCommitment),
}

/// The record changes of one canonical event, in the order they are written: one change per
/// record, since a record takes an event once ([`apply_once`]).
pub fn plan(event: &ProjectedEvent) -> Vec<Change> {
    one_per_position(changes(event))
}

/// Changes of one event to one stock position made one change: a transfer within one location
/// (out and back in, as when stock is released from quality inspection where it lies) or a
/// receipt at the site level (on hand and arrived) would otherwise lose its second change.
fn one_per_position(changes: Vec<Change>) -> Vec<Change> {
    let mut merged: Vec<Change> = Vec::with_capacity(changes.len());
    // Where each position's change stands in `merged`: a ship notice has a line per item.
    let mut at: std::collections::BTreeMap<StockKey, usize> = std::collections::BTreeMap::new();
    for change in changes {
        if let Change::Stock(key, next) = &change {
            if let Some(Change::Stock(_, first)) = at.get(key).and_then(|i| merged.get_mut(*i)) {
                *first = match std::mem::replace(first, StockChange::Together(Vec::new())) {
                    StockChange::Together(mut all) => {
                        all.push(next.clone());
                        StockChange::Together(all)
                    }
                    one => StockChange::Together(vec![one, next.clone()]),
                };
                continue;
            }
            at.insert(key.clone(), merged.len());
        }
        merged.push(change);
    }
    merged
}

/// True for stock in quality inspection or blocked: not available.
fn is_restricted(status: Option<StockStatus>) -> bool {
    matches!(
        status,
        Some(StockStatus::QualityInspection | StockStatus::Blocked)
    )
}

/// The status of the stock a transfer takes at its `from` location, from the status it gives
/// (the model's `stock_status`: the status after the movement). A transfer to another location
/// moves the stock as it is, so it took stock of that status; a transfer within one location
/// is a change of status (a release from quality inspection where the stock lies, a block), so
/// it took stock of the other one: a release to `unrestricted` takes quality-inspection or
/// blocked stock, a block takes free stock. In transit, or no status: not said (free stock
/// first).
fn taken_status(after: Option<StockStatus>, in_place: bool) -> Option<StockStatus> {
    match after {
        Some(StockStatus::InTransit) | None => None,
        Some(StockStatus::Unrestricted) if in_place => Some(StockStatus::QualityInspection),
        Some(_) if in_place => Some(StockStatus::Unrestricted),
        after => after,
    }
}

fn changes(event: &ProjectedEvent) -> Vec<Change> {
    let site = &event.site;
    let stock = |item: &str, location: Option<&String>, lot: Option<&String>| StockKey {
        site: site.clone(),
        item: item.to_owned(),
        location: location.cloned(),
        lot: lot.cloned(),
    };
    let on_hand = |delta: Quantity, receipt: bool| StockChange::OnHand {
        delta,
        receipt,
        restricted: false,
    };
    // Stock the change adds or takes that is in quality inspection or blocked. A movement's
    // status is the stock's status after it: stock that arrives has it, stock that leaves a
    // position (an issue, a scrap, a negative adjustment, a transfer to another location) has
    // it too, as the movement does not change it; only a transfer within one location changes
    // it, so its stock left the other status (see `taken_status`).
    let restricted =
        |delta: Quantity, receipt: bool, status: Option<StockStatus>| StockChange::OnHand {
            delta,
            receipt,
            restricted: is_restricted(status),
        };
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
                    Change::Stock(
                        stock(&m.item, to.or(from), lot),
                        restricted(q.clone(), true, m.stock_status),
                    ),
                    Change::Stock(stock(&m.item, None, lot), StockChange::Arrived(q.clone())),
                ],
                // The stock status of what left: scrap of blocked stock takes blocked stock.
                MovementType::Issue | MovementType::Scrap => {
                    vec![Change::Stock(
                        stock(&m.item, from.or(to), lot),
                        restricted(negated(q), false, m.stock_status),
                    )]
                }
                // The quantity is signed (the model: negative when it reduces the book stock),
                // at the location it names.
                MovementType::Adjustment => vec![Change::Stock(
                    stock(&m.item, to.or(from), lot),
                    restricted(q.clone(), false, m.stock_status),
                )],
                MovementType::Transfer => {
                    let mut changes = Vec::new();
                    if let Some(from) = from {
                        let taken = taken_status(m.stock_status, to == Some(from));
                        changes.push(Change::Stock(
                            stock(&m.item, Some(from), lot),
                            restricted(negated(q), false, taken),
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
                            restricted(q.clone(), false, m.stock_status),
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
mod tests;
