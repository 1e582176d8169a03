//! The canonical event model: the Rust mirror of `interface canonical` in the newest WIT
//! package, `wit/mapping@1.1.0/canonical.wit` (its docs are copied here), written once for the
//! host and for plugin authors.
//!
//! JSON field names are the WIT names in snake_case, enum values the WIT names in kebab-case,
//! an absent option is left out and a list is always written: the `data` of the CloudEvents the
//! host publishes on the canonical stream, which these types also read back.
//!
//! With the `schemars` feature the JSON Schemas consumers validate against are derived from
//! these types (the host's `contracts`): a field a later WIT version added carries
//! `x-millrace-since`, so the schema of an older version leaves it out.

use serde::{Deserialize, Serialize};

/// An exact decimal number as text: an optional leading `-`, digits, and an optional `.`
/// followed by digits (for example `12`, `0.410`, `-3.5`). No exponent, no thousands separator.
pub type Decimal = String;

/// A point in time as RFC 3339 text with an offset, for example `2026-03-02T06:15:00+01:00`.
/// The host rejects events whose timestamps do not parse.
pub type Timestamp = String;

/// A calendar date as RFC 3339 `full-date` text, for example `2026-03-02`.
pub type Date = String;

/// An amount with its unit of measure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Quantity {
    /// The exact amount.
    // The same rule as the host's `rules::validate::is_decimal`, which it enforces before
    // publishing (a contract test checks that the two agree).
    #[cfg_attr(
        feature = "schemars",
        schemars(regex(pattern = r"^-?[0-9]+(\.[0-9]+)?$"), length(max = 40))
    )]
    pub amount: Decimal,
    /// The unit of measure as a UN/ECE Recommendation 20 code, for example `EA`, `PCE`, `KGM`, `MTR`.
    pub uom: String,
}

/// What kind of stock movement happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct InventoryMovement {
    /// The kind of movement.
    pub movement_type: MovementType,
    /// The item (material, part) number.
    pub item: String,
    /// The quantity moved, positive: the direction is given by the movement type. Only an
    /// adjustment may be negative, when it reduces the book stock.
    pub quantity: Quantity,
    /// The location the stock left, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_location: Option<String>,
    /// The location the stock arrived at, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_location: Option<String>,
    /// The lot or batch number, when the item is lot-controlled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Serial numbers of the units moved, when the item is serialised.
    pub serials: Vec<String>,
    /// The status of the stock after the movement, when the source says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_status: Option<StockStatus>,
    /// The document that caused the movement (order, delivery, transfer order), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_document: Option<String>,
    /// The expiry (best-before) date of the lot moved, when the source gives one.
    /// Added in 1.1.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schemars", schemars(extend("x-millrace-since" = "1.1.0")))]
    pub expiry_date: Option<Date>,
}

/// The stock on hand of one item at one location (and lot), as reported by a system of record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct InventoryBalance {
    /// The item number.
    pub item: String,
    /// The storage location.
    pub location: String,
    /// The lot or batch, when the balance is per lot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Physically on hand.
    pub on_hand: Quantity,
    /// Reserved for orders.
    pub allocated: Quantity,
    /// Blocked (quality, damage).
    pub blocked: Quantity,
}

/// The life-cycle state of a work (production) order or one of its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct WorkOrderStatus {
    /// The work order number.
    pub work_order: String,
    /// The operation (routing step), when the status is per operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The new state.
    pub state: WorkOrderState,
    /// The item the order produces, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The planned quantity, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_quantity: Option<Quantity>,
    /// The good quantity completed so far, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_quantity: Option<Quantity>,
    /// The quantity scrapped so far, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrapped_quantity: Option<Quantity>,
}

/// Material consumed by a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct MaterialConsumption {
    /// The work order that consumed the material.
    pub work_order: String,
    /// The operation that consumed it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The consumed item number.
    pub item: String,
    /// The consumed lot, when lot-controlled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// The quantity consumed; positive.
    pub quantity: Quantity,
    /// The location the material was taken from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Output reported by a work order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ProductionCompletion {
    /// The work order.
    pub work_order: String,
    /// The operation that reported the output, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The item produced.
    pub item: String,
    /// The lot produced, when lot-controlled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// The good quantity produced.
    pub good_quantity: Quantity,
    /// The quantity scrapped in the same report.
    pub scrap_quantity: Quantity,
    /// The location the output was put to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Whether a quality hold is placed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum HoldAction {
    /// The hold is placed: the scoped stock must not be used.
    Placed,
    /// The hold is released.
    Released,
}

/// What a quality hold applies to; at least one field is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct HoldScope {
    /// The item under hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The lot under hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// The location under hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The supplier whose material is under hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
}

/// A quality hold placed or released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
}

/// Whether a scheduled quantity is a firm commitment or a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum CommitmentLevel {
    /// Firm: authorised to ship or produce.
    Firm,
    /// Forecast: for planning only.
    Forecast,
}

/// One bucket of a delivery schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ScheduleBucket {
    /// The date the bucket starts (or the delivery date for a daily bucket).
    pub date: Date,
    /// The date the bucket ends, for weekly or monthly buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<Date>,
    /// The scheduled quantity.
    pub quantity: Quantity,
    /// Firm or forecast.
    pub level: CommitmentLevel,
}

/// A supplier's delivery schedule for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SupplierCommitment {
    /// The supplier identifier.
    pub supplier: String,
    /// The item number.
    pub item: String,
    /// The purchase order or scheduling agreement, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_order: Option<String>,
    /// The schedule buckets, in date order.
    pub buckets: Vec<ScheduleBucket>,
    /// The cumulative quantity received so far, when the schedule carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cumulative_received: Option<Quantity>,
}

/// One line of a ship notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ShipmentLine {
    /// The item number.
    pub item: String,
    /// The quantity shipped.
    pub quantity: Quantity,
    /// The lot shipped, when lot-controlled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    /// Serial numbers shipped, when serialised.
    pub serials: Vec<String>,
    /// The purchase order the line ships against, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_order: Option<String>,
    /// The package (SSCC) the line is packed in, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
}

/// A ship notice (advance shipping notice) from a supplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ShipmentNotice {
    /// The shipment identifier given by the shipper.
    pub shipment_id: String,
    /// The supplier (shipper) identifier.
    pub supplier: String,
    /// When the goods shipped.
    pub ship_date: Timestamp,
    /// When the goods are expected to arrive, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_delivery: Option<Timestamp>,
    /// The lines shipped; at least one.
    pub lines: Vec<ShipmentLine>,
}

/// The payload of a canonical event: one case per event kind, tagged by kind in JSON
/// (`{"kind": "inventory-movement", "data": {...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", content = "data", rename_all = "kebab-case")]
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

/// One canonical event produced by a mapping: what a plugin returns, the form
/// `millrace plugin run` prints and golden fixtures hold (the kind and data flattened in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct CanonicalEvent {
    /// The site (plant, warehouse) code the event belongs to, for example `PLANT1`.
    /// It becomes the last token of the canonical subject, so it may hold only letters,
    /// digits, `-` and `_`.
    pub site: String,
    /// When the event happened at the source (not when it was mapped).
    pub occurred_at: Timestamp,
    /// The source system's own sequence number for this record, when it has one; used to
    /// order events of one business key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sequence: Option<u64>,
    /// The source's identity of the business transaction this event came from (for example
    /// an MES transaction id, or an EDI interchange and transaction set control number),
    /// when it has one; used to recognise resends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_transaction: Option<String>,
    /// The event itself.
    #[serde(flatten)]
    pub data: EventData,
}

/// One table of the kinds' names gives both [`EventData::kind`] and
/// [`EventData::event_type`], so the CloudEvents type cannot drift from the kind.
macro_rules! kind_names {
    ($($variant:ident => $kind:literal),+ $(,)?) => {
        /// The event kind, as in the canonical subject and the CloudEvents type.
        pub fn kind(&self) -> &'static str {
            match self {
                $(EventData::$variant(_) => $kind,)+
            }
        }

        /// The CloudEvents `type` of the event: `millrace.<kind>.v1`.
        pub fn event_type(&self) -> &'static str {
            match self {
                $(EventData::$variant(_) => concat!("millrace.", $kind, ".v1"),)+
            }
        }
    };
}

impl EventData {
    kind_names! {
        InventoryMovement => "inventory-movement",
        InventoryBalance => "inventory-balance",
        WorkOrderStatus => "work-order-status",
        MaterialConsumption => "material-consumption",
        ProductionCompletion => "production-completion",
        QualityHold => "quality-hold",
        SupplierCommitment => "supplier-commitment",
        ShipmentNotice => "shipment-notice",
    }

    /// The business key of this event at `site`, the CloudEvents `subject`: what state it
    /// updates, e.g. `ITEM-42@PLANT1/WH3#LOT7` for stock or `WO-1001@PLANT1/OP20` for a work
    /// order. Events of one key are ordered, and posted, one after the other.
    ///
    /// The form is `<id>@<site>[/<place>][#<lot>]`. A separator inside a value that would let
    /// it read as another key is written `%XX` (and `%` itself): `@`, `/` and `#` in an id, `/`
    /// and `#` in a site, `#` in a place. So a location `L#X` without a lot and a location `L`
    /// with lot `X` have two keys, while a location `WH1/A-01` reads as written.
    pub fn business_key(&self, site: &str) -> String {
        let at = |id: &str, place: Option<&str>, lot: Option<&str>| {
            let mut key = format!("{id}@{}", escaped(site, &['/', '#']));
            if let Some(place) = place {
                key.push('/');
                key.push_str(&escaped(place, &['#']));
            }
            if let Some(lot) = lot {
                key.push('#');
                key.push_str(&escaped(lot, &[]));
            }
            key
        };
        let id = |part: &str| escaped(part, &['@', '/', '#']).into_owned();
        match self {
            EventData::InventoryMovement(m) => at(
                &id(&m.item),
                m.to_location.as_deref().or(m.from_location.as_deref()),
                m.lot.as_deref(),
            ),
            EventData::InventoryBalance(b) => at(&id(&b.item), Some(&b.location), b.lot.as_deref()),
            EventData::WorkOrderStatus(w) => at(&id(&w.work_order), w.operation.as_deref(), None),
            EventData::MaterialConsumption(c) => {
                at(&id(&c.work_order), c.operation.as_deref(), None)
            }
            EventData::ProductionCompletion(p) => {
                at(&id(&p.work_order), p.operation.as_deref(), None)
            }
            EventData::QualityHold(h) => at(&id(&h.hold_id), None, None),
            EventData::SupplierCommitment(s) => {
                at(&format!("{}/{}", id(&s.supplier), id(&s.item)), None, None)
            }
            EventData::ShipmentNotice(n) => at(
                &format!("{}/{}", id(&n.supplier), id(&n.shipment_id)),
                None,
                None,
            ),
        }
    }
}

/// `part` with `%` and each of `separators` written as `%XX` (the character's code in hex), so
/// that a separator inside a value cannot stand for one between values.
fn escaped<'a>(part: &'a str, separators: &[char]) -> std::borrow::Cow<'a, str> {
    let special = |c: char| c == '%' || separators.contains(&c);
    if !part.contains(special) {
        return std::borrow::Cow::Borrowed(part);
    }
    let mut out = String::with_capacity(part.len() + 6);
    for c in part.chars() {
        if special(c) {
            out.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The business key of `event`, see [`EventData::business_key`].
pub fn business_key(event: &CanonicalEvent) -> String {
    event.data.business_key(&event.site)
}
