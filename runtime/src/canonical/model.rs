//! The canonical event model as Rust types with their JSON form.
//!
//! These mirror `interface canonical` of the WIT one for one. JSON field names are the WIT
//! names in snake_case, enum values the WIT names in kebab-case, an absent option is left out
//! and a list is always written.

use serde::{Deserialize, Serialize};

use crate::sandbox::canonical_wit as wit;

/// An amount with its UN/ECE Rec 20 unit of measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quantity {
    /// Exact decimal text.
    pub amount: String,
    /// Unit of measure code.
    pub uom: String,
}

/// What kind of stock movement happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MovementType {
    /// Goods received.
    Receipt,
    /// Goods issued.
    Issue,
    /// Goods moved between locations.
    Transfer,
    /// Book stock corrected.
    Adjustment,
    /// Goods written off.
    Scrap,
}

/// The usability status of stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StockStatus {
    /// Free to use.
    Unrestricted,
    /// Waiting for inspection.
    QualityInspection,
    /// Not usable.
    Blocked,
    /// Between locations.
    InTransit,
}

/// A stock movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryMovement {
    /// The kind of movement.
    pub movement_type: MovementType,
    /// Item number.
    pub item: String,
    /// Quantity moved.
    pub quantity: Quantity,
    /// Location left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_location: Option<String>,
    /// Location reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_location: Option<String>,
    /// Lot or batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Serial numbers.
    pub serials: Vec<String>,
    /// Stock status after the movement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_status: Option<StockStatus>,
    /// Causing document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_document: Option<String>,
}

/// A stock balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryBalance {
    /// Item number.
    pub item: String,
    /// Storage location.
    pub location: String,
    /// Lot or batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// On hand.
    pub on_hand: Quantity,
    /// Reserved.
    pub allocated: Quantity,
    /// Blocked.
    pub blocked: Quantity,
}

/// Work order life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkOrderState {
    /// Released.
    Released,
    /// Started.
    Started,
    /// Paused.
    Paused,
    /// Completed.
    Completed,
    /// Closed.
    Closed,
    /// Cancelled.
    Cancelled,
    /// Held.
    Held,
}

/// A work order state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkOrderStatus {
    /// Work order number.
    pub work_order: String,
    /// Operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// New state.
    pub state: WorkOrderState,
    /// Item produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Planned quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_quantity: Option<Quantity>,
    /// Completed quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_quantity: Option<Quantity>,
    /// Scrapped quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrapped_quantity: Option<Quantity>,
}

/// Material consumed by a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialConsumption {
    /// Work order.
    pub work_order: String,
    /// Operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Consumed item.
    pub item: String,
    /// Consumed lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Quantity consumed.
    pub quantity: Quantity,
    /// Location taken from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Output of a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductionCompletion {
    /// Work order.
    pub work_order: String,
    /// Operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Item produced.
    pub item: String,
    /// Lot produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Good quantity.
    pub good_quantity: Quantity,
    /// Scrap quantity.
    pub scrap_quantity: Quantity,
    /// Location put to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Hold placed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldAction {
    /// Placed.
    Placed,
    /// Released.
    Released,
}

/// What a hold applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldScope {
    /// Item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Supplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
}

/// A quality hold placed or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityHold {
    /// Hold id.
    pub hold_id: String,
    /// Placed or released.
    pub action: HoldAction,
    /// Scope.
    pub scope: HoldScope,
    /// Reason.
    pub reason: String,
    /// Disposition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
}

/// Firm or forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitmentLevel {
    /// Firm.
    Firm,
    /// Forecast.
    Forecast,
}

/// One schedule bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleBucket {
    /// Start or delivery date.
    pub date: String,
    /// End date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Quantity.
    pub quantity: Quantity,
    /// Firm or forecast.
    pub level: CommitmentLevel,
}

/// A supplier delivery schedule for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplierCommitment {
    /// Supplier.
    pub supplier: String,
    /// Item.
    pub item: String,
    /// Purchase order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_order: Option<String>,
    /// Buckets.
    pub buckets: Vec<ScheduleBucket>,
    /// Cumulative received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative_received: Option<Quantity>,
}

/// One ship notice line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentLine {
    /// Item.
    pub item: String,
    /// Quantity.
    pub quantity: Quantity,
    /// Lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Serials.
    pub serials: Vec<String>,
    /// Purchase order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_order: Option<String>,
    /// Package (SSCC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
}

/// A ship notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentNotice {
    /// Shipment id.
    pub shipment_id: String,
    /// Supplier.
    pub supplier: String,
    /// Ship date.
    pub ship_date: String,
    /// Expected delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_delivery: Option<String>,
    /// Lines.
    pub lines: Vec<ShipmentLine>,
}

/// The payload of an event, tagged by kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "kebab-case")]
pub enum EventData {
    /// A stock movement.
    InventoryMovement(InventoryMovement),
    /// A stock balance.
    InventoryBalance(InventoryBalance),
    /// A work order state change.
    WorkOrderStatus(WorkOrderStatus),
    /// Material consumed.
    MaterialConsumption(MaterialConsumption),
    /// Output of a work order.
    ProductionCompletion(ProductionCompletion),
    /// A quality hold.
    QualityHold(QualityHold),
    /// A supplier schedule.
    SupplierCommitment(SupplierCommitment),
    /// A ship notice.
    ShipmentNotice(ShipmentNotice),
}

impl EventData {
    /// The event kind, as in the canonical subject and the CloudEvents type.
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::InventoryMovement(_) => "inventory-movement",
            EventData::InventoryBalance(_) => "inventory-balance",
            EventData::WorkOrderStatus(_) => "work-order-status",
            EventData::MaterialConsumption(_) => "material-consumption",
            EventData::ProductionCompletion(_) => "production-completion",
            EventData::QualityHold(_) => "quality-hold",
            EventData::SupplierCommitment(_) => "supplier-commitment",
            EventData::ShipmentNotice(_) => "shipment-notice",
        }
    }
}

/// One event as a plugin returned it: the form `millrace plugin run` prints and golden
/// fixtures hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedEvent {
    /// Site code.
    pub site: String,
    /// When it happened at the source.
    pub occurred_at: String,
    /// The source's own sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sequence: Option<u64>,
    /// The source's transaction identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_transaction: Option<String>,
    /// Kind and payload.
    #[serde(flatten)]
    pub data: EventData,
}

impl From<wit::Quantity> for Quantity {
    fn from(q: wit::Quantity) -> Self {
        Self {
            amount: q.amount,
            uom: q.uom,
        }
    }
}

impl From<wit::MovementType> for MovementType {
    fn from(v: wit::MovementType) -> Self {
        match v {
            wit::MovementType::Receipt => Self::Receipt,
            wit::MovementType::Issue => Self::Issue,
            wit::MovementType::Transfer => Self::Transfer,
            wit::MovementType::Adjustment => Self::Adjustment,
            wit::MovementType::Scrap => Self::Scrap,
        }
    }
}

impl From<wit::StockStatus> for StockStatus {
    fn from(v: wit::StockStatus) -> Self {
        match v {
            wit::StockStatus::Unrestricted => Self::Unrestricted,
            wit::StockStatus::QualityInspection => Self::QualityInspection,
            wit::StockStatus::Blocked => Self::Blocked,
            wit::StockStatus::InTransit => Self::InTransit,
        }
    }
}

impl From<wit::WorkOrderState> for WorkOrderState {
    fn from(v: wit::WorkOrderState) -> Self {
        match v {
            wit::WorkOrderState::Released => Self::Released,
            wit::WorkOrderState::Started => Self::Started,
            wit::WorkOrderState::Paused => Self::Paused,
            wit::WorkOrderState::Completed => Self::Completed,
            wit::WorkOrderState::Closed => Self::Closed,
            wit::WorkOrderState::Cancelled => Self::Cancelled,
            wit::WorkOrderState::Held => Self::Held,
        }
    }
}

impl From<wit::HoldAction> for HoldAction {
    fn from(v: wit::HoldAction) -> Self {
        match v {
            wit::HoldAction::Placed => Self::Placed,
            wit::HoldAction::Released => Self::Released,
        }
    }
}

impl From<wit::CommitmentLevel> for CommitmentLevel {
    fn from(v: wit::CommitmentLevel) -> Self {
        match v {
            wit::CommitmentLevel::Firm => Self::Firm,
            wit::CommitmentLevel::Forecast => Self::Forecast,
        }
    }
}

fn quantity(q: Option<wit::Quantity>) -> Option<Quantity> {
    q.map(Quantity::from)
}

impl From<wit::EventData> for EventData {
    fn from(data: wit::EventData) -> Self {
        match data {
            wit::EventData::InventoryMovement(m) => Self::InventoryMovement(InventoryMovement {
                movement_type: m.movement_type.into(),
                item: m.item,
                quantity: m.quantity.into(),
                from_location: m.from_location,
                to_location: m.to_location,
                lot: m.lot,
                serials: m.serials,
                stock_status: m.stock_status.map(StockStatus::from),
                reference_document: m.reference_document,
            }),
            wit::EventData::InventoryBalance(b) => Self::InventoryBalance(InventoryBalance {
                item: b.item,
                location: b.location,
                lot: b.lot,
                on_hand: b.on_hand.into(),
                allocated: b.allocated.into(),
                blocked: b.blocked.into(),
            }),
            wit::EventData::WorkOrderStatus(w) => Self::WorkOrderStatus(WorkOrderStatus {
                work_order: w.work_order,
                operation: w.operation,
                state: w.state.into(),
                item: w.item,
                planned_quantity: quantity(w.planned_quantity),
                completed_quantity: quantity(w.completed_quantity),
                scrapped_quantity: quantity(w.scrapped_quantity),
            }),
            wit::EventData::MaterialConsumption(c) => {
                Self::MaterialConsumption(MaterialConsumption {
                    work_order: c.work_order,
                    operation: c.operation,
                    item: c.item,
                    lot: c.lot,
                    quantity: c.quantity.into(),
                    location: c.location,
                })
            }
            wit::EventData::ProductionCompletion(p) => {
                Self::ProductionCompletion(ProductionCompletion {
                    work_order: p.work_order,
                    operation: p.operation,
                    item: p.item,
                    lot: p.lot,
                    good_quantity: p.good_quantity.into(),
                    scrap_quantity: p.scrap_quantity.into(),
                    location: p.location,
                })
            }
            wit::EventData::QualityHold(h) => Self::QualityHold(QualityHold {
                hold_id: h.hold_id,
                action: h.action.into(),
                scope: HoldScope {
                    item: h.scope.item,
                    lot: h.scope.lot,
                    location: h.scope.location,
                    supplier: h.scope.supplier,
                },
                reason: h.reason,
                disposition: h.disposition,
            }),
            wit::EventData::SupplierCommitment(s) => Self::SupplierCommitment(SupplierCommitment {
                supplier: s.supplier,
                item: s.item,
                purchase_order: s.purchase_order,
                buckets: s
                    .buckets
                    .into_iter()
                    .map(|b| ScheduleBucket {
                        date: b.date,
                        end_date: b.end_date,
                        quantity: b.quantity.into(),
                        level: b.level.into(),
                    })
                    .collect(),
                cumulative_received: quantity(s.cumulative_received),
            }),
            wit::EventData::ShipmentNotice(n) => Self::ShipmentNotice(ShipmentNotice {
                shipment_id: n.shipment_id,
                supplier: n.supplier,
                ship_date: n.ship_date,
                expected_delivery: n.expected_delivery,
                lines: n
                    .lines
                    .into_iter()
                    .map(|l| ShipmentLine {
                        item: l.item,
                        quantity: l.quantity.into(),
                        lot: l.lot,
                        serials: l.serials,
                        purchase_order: l.purchase_order,
                        package_id: l.package_id,
                    })
                    .collect(),
            }),
        }
    }
}

impl From<wit::CanonicalEvent> for MappedEvent {
    fn from(e: wit::CanonicalEvent) -> Self {
        Self {
            site: e.site,
            occurred_at: e.occurred_at,
            source_sequence: e.source_sequence,
            source_transaction: e.source_transaction,
            data: e.data.into(),
        }
    }
}
