//! The canonical event model as Rust types with their JSON form.
//!
//! These mirror `interface canonical` of the WIT one for one. JSON field names are the WIT
//! names in snake_case, enum values the WIT names in kebab-case, an absent option is left out
//! and a list is always written.
//!
//! The JSON Schemas consumers validate against are derived from these types (`contracts`): a
//! field a later WIT version added carries `x-millrace-since`, so the schema of an older
//! version leaves it out.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An amount with its UN/ECE Rec 20 unit of measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Quantity {
    /// Exact decimal text.
    // The same rule as `rules::validate::is_decimal`, which the host enforces before publishing
    // (a contract test checks that the two agree).
    #[schemars(regex(pattern = r"^-?[0-9]+(\.[0-9]+)?$"), length(max = 40))]
    pub amount: String,
    /// Unit of measure code.
    pub uom: String,
}

impl Quantity {
    /// `amount` (exact decimal text) of the unit `uom`.
    pub fn new(amount: impl Into<String>, uom: impl Into<String>) -> Self {
        Self {
            amount: amount.into(),
            uom: uom.into(),
        }
    }
}

/// What kind of stock movement happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// Expiry date of the lot (WIT 1.1.0 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-millrace-since" = "1.1.0"))]
    pub expiry_date: Option<String>,
}

/// A stock balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HoldAction {
    /// Placed.
    Placed,
    /// Released.
    Released,
}

/// What a hold applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CommitmentLevel {
    /// Firm.
    Firm,
    /// Forecast.
    Forecast,
}

/// One schedule bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
