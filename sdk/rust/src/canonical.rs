//! The canonical event model, the Rust mirror of `interface canonical` in the newest WIT
//! package the SDK exports, `wit/mapping@1.1.0/canonical.wit` (its docs are copied here).
//!
//! The SDK owns these types instead of generating them, so that a plugin's component carries
//! the bindings of the one WIT version its manifest names, generated in the plugin by
//! [`crate::export_mapper!`], which also lowers these types to that version's. A plugin
//! targeting 1.0.0 builds the same types: what 1.0.0 cannot carry (an expiry date) is left out
//! and logged.
//!
//! The records also deserialize from the JSON the host publishes on the canonical stream (the
//! `data` of a CloudEvent: snake_case fields, kebab-case enum values, absent options left out),
//! which is how an outbound plugin's native tests read their fixtures
//! ([`crate::posting::Event::from_cloudevent`]).
#![allow(missing_docs)] // every item carries the WIT doc; the aliases are plain text

/// An exact decimal number as text: an optional leading `-`, digits, and an optional `.`
/// followed by digits (for example `12`, `0.410`, `-3.5`). No exponent, no thousands separator.
pub type Decimal = String;

/// A point in time as RFC 3339 text with an offset, for example `2026-03-02T06:15:00+01:00`.
/// The host rejects events whose timestamps do not parse.
pub type Timestamp = String;

/// A calendar date as RFC 3339 `full-date` text, for example `2026-03-02`.
pub type Date = String;

/// An amount with its unit of measure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Quantity {
    /// The exact amount.
    pub amount: Decimal,
    /// The unit of measure as a UN/ECE Recommendation 20 code, for example `EA`, `PCE`, `KGM`, `MTR`.
    pub uom: String,
}

/// What kind of stock movement happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MovementType {
    /// Goods received into stock (from a supplier, from production or from another site).
    Receipt,
    /// Goods issued out of stock (to production, to a customer).
    Issue,
    /// Goods moved from one location to another inside the enterprise.
    Transfer,
    /// A correction of the book stock after a count or an error.
    Adjustment,
    /// Goods destroyed or written off.
    Scrap,
}

/// The usability status of stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StockStatus {
    /// Free to use.
    Unrestricted,
    /// Waiting for quality inspection.
    QualityInspection,
    /// Blocked, not usable.
    Blocked,
    /// On its way between locations.
    InTransit,
}

/// A movement of stock: receipt, issue, transfer, adjustment or scrap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct InventoryMovement {
    /// The kind of movement.
    pub movement_type: MovementType,
    /// The item (material, part) number.
    pub item: String,
    /// The quantity moved, positive: the direction is given by the movement type. Only an
    /// adjustment may be negative, when it reduces the book stock.
    pub quantity: Quantity,
    /// The location the stock left, when there is one.
    pub from_location: Option<String>,
    /// The location the stock arrived at, when there is one.
    pub to_location: Option<String>,
    /// The lot or batch number, when the item is lot-controlled.
    pub lot: Option<String>,
    /// Serial numbers of the units moved, when the item is serialised.
    #[serde(default)]
    pub serials: Vec<String>,
    /// The status of the stock after the movement, when the source says.
    pub stock_status: Option<StockStatus>,
    /// The document that caused the movement (order, delivery, transfer order), when known.
    pub reference_document: Option<String>,
    /// The expiry (best-before) date of the lot moved, when the source gives one.
    /// Added in 1.1.0.
    pub expiry_date: Option<Date>,
}

/// The stock on hand of one item at one location (and lot), as reported by a system of record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct InventoryBalance {
    /// The item number.
    pub item: String,
    /// The storage location.
    pub location: String,
    /// The lot or batch, when the balance is per lot.
    pub lot: Option<String>,
    /// Physically on hand.
    pub on_hand: Quantity,
    /// Reserved for orders.
    pub allocated: Quantity,
    /// Blocked (quality, damage).
    pub blocked: Quantity,
}

/// The life-cycle state of a work (production) order or one of its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkOrderState {
    /// Released to the shop floor.
    Released,
    /// Work has started.
    Started,
    /// Work is interrupted.
    Paused,
    /// Work is finished.
    Completed,
    /// The order is closed for any further posting.
    Closed,
    /// The order was cancelled.
    Cancelled,
    /// The order is held (quality, material shortage).
    Held,
}

/// A change of state of a work order or operation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct WorkOrderStatus {
    /// The work order number.
    pub work_order: String,
    /// The operation (routing step), when the status is per operation.
    pub operation: Option<String>,
    /// The new state.
    pub state: WorkOrderState,
    /// The item the order produces, when known.
    pub item: Option<String>,
    /// The planned quantity, when known.
    pub planned_quantity: Option<Quantity>,
    /// The good quantity completed so far, when known.
    pub completed_quantity: Option<Quantity>,
    /// The quantity scrapped so far, when known.
    pub scrapped_quantity: Option<Quantity>,
}

/// Material consumed by a work order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct MaterialConsumption {
    /// The work order that consumed the material.
    pub work_order: String,
    /// The operation that consumed it, when known.
    pub operation: Option<String>,
    /// The consumed item number.
    pub item: String,
    /// The consumed lot, when lot-controlled.
    pub lot: Option<String>,
    /// The quantity consumed; positive.
    pub quantity: Quantity,
    /// The location the material was taken from, when known.
    pub location: Option<String>,
}

/// Output reported by a work order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ProductionCompletion {
    /// The work order.
    pub work_order: String,
    /// The operation that reported the output, when known.
    pub operation: Option<String>,
    /// The item produced.
    pub item: String,
    /// The lot produced, when lot-controlled.
    pub lot: Option<String>,
    /// The good quantity produced.
    pub good_quantity: Quantity,
    /// The quantity scrapped in the same report.
    pub scrap_quantity: Quantity,
    /// The location the output was put to, when known.
    pub location: Option<String>,
}

/// Whether a quality hold is placed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldAction {
    /// The hold is placed: the scoped stock must not be used.
    Placed,
    /// The hold is released.
    Released,
}

/// What a quality hold applies to; at least one field is set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct HoldScope {
    /// The item under hold.
    pub item: Option<String>,
    /// The lot under hold.
    pub lot: Option<String>,
    /// The location under hold.
    pub location: Option<String>,
    /// The supplier whose material is under hold.
    pub supplier: Option<String>,
}

/// A quality hold placed or released.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct QualityHold {
    /// The hold (nonconformance) identifier in the quality system.
    pub hold_id: String,
    /// Placed or released.
    pub action: HoldAction,
    /// What the hold applies to.
    pub scope: HoldScope,
    /// Why the hold was placed or released.
    pub reason: String,
    /// The disposition decided (use as is, rework, scrap, return to supplier), when known.
    pub disposition: Option<String>,
}

/// Whether a scheduled quantity is a firm commitment or a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitmentLevel {
    /// Firm: authorised to ship or produce.
    Firm,
    /// Forecast: for planning only.
    Forecast,
}

/// One bucket of a delivery schedule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ScheduleBucket {
    /// The date the bucket starts (or the delivery date for a daily bucket).
    pub date: Date,
    /// The date the bucket ends, for weekly or monthly buckets.
    pub end_date: Option<Date>,
    /// The scheduled quantity.
    pub quantity: Quantity,
    /// Firm or forecast.
    pub level: CommitmentLevel,
}

/// A supplier's delivery schedule for one item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SupplierCommitment {
    /// The supplier identifier.
    pub supplier: String,
    /// The item number.
    pub item: String,
    /// The purchase order or scheduling agreement, when known.
    pub purchase_order: Option<String>,
    /// The schedule buckets, in date order.
    #[serde(default)]
    pub buckets: Vec<ScheduleBucket>,
    /// The cumulative quantity received so far, when the schedule carries it.
    pub cumulative_received: Option<Quantity>,
}

/// One line of a ship notice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ShipmentLine {
    /// The item number.
    pub item: String,
    /// The quantity shipped.
    pub quantity: Quantity,
    /// The lot shipped, when lot-controlled.
    pub lot: Option<String>,
    /// Serial numbers shipped, when serialised.
    #[serde(default)]
    pub serials: Vec<String>,
    /// The purchase order the line ships against, when known.
    pub purchase_order: Option<String>,
    /// The package (SSCC) the line is packed in, when known.
    pub package_id: Option<String>,
}

/// A ship notice (advance shipping notice) from a supplier.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ShipmentNotice {
    /// The shipment identifier given by the shipper.
    pub shipment_id: String,
    /// The supplier (shipper) identifier.
    pub supplier: String,
    /// When the goods shipped.
    pub ship_date: Timestamp,
    /// When the goods are expected to arrive, when known.
    pub expected_delivery: Option<Timestamp>,
    /// The lines shipped; at least one.
    #[serde(default)]
    pub lines: Vec<ShipmentLine>,
}

/// The payload of a canonical event: one case per event kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// A stock movement.
    InventoryMovement(InventoryMovement),
    /// A stock balance.
    InventoryBalance(InventoryBalance),
    /// A work order state change.
    WorkOrderStatus(WorkOrderStatus),
    /// Material consumed by a work order.
    MaterialConsumption(MaterialConsumption),
    /// Output of a work order.
    ProductionCompletion(ProductionCompletion),
    /// A quality hold placed or released.
    QualityHold(QualityHold),
    /// A supplier delivery schedule.
    SupplierCommitment(SupplierCommitment),
    /// A ship notice.
    ShipmentNotice(ShipmentNotice),
}

/// One canonical event produced by a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalEvent {
    /// The site (plant, warehouse) code the event belongs to, for example `PLANT1`.
    /// It becomes the last token of the canonical subject, so it may hold only letters,
    /// digits, `-` and `_`.
    pub site: String,
    /// When the event happened at the source (not when it was mapped).
    pub occurred_at: Timestamp,
    /// The source system's own sequence number for this record, when it has one; used to
    /// order events of one business key.
    pub source_sequence: Option<u64>,
    /// The source's identity of the business transaction this event came from (for example
    /// an MES transaction id, or an EDI interchange and transaction set control number),
    /// when it has one; used to recognise resends.
    pub source_transaction: Option<String>,
    /// The event itself.
    pub data: EventData,
}
