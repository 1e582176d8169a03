//! Constructors with defaults for the canonical events, so a mapping names only what its source
//! gives. Every optional field starts empty and every list empty; set more with the struct
//! update syntax or the `with_*` methods:
//!
//! ```ignore
//! let movement = InventoryMovement {
//!     lot: Some(batch),
//!     to_location: Some(dock),
//!     ..InventoryMovement::new(MovementType::Receipt, item, Quantity::new(amount, "KGM"))
//! };
//! let event = CanonicalEvent::new(site, occurred_at, movement).with_transaction(control);
//! ```

use crate::canonical::{
    CanonicalEvent, CommitmentLevel, EventData, HoldAction, HoldScope, InventoryBalance,
    InventoryMovement, MaterialConsumption, MovementType, ProductionCompletion, QualityHold,
    Quantity, ScheduleBucket, ShipmentLine, ShipmentNotice, SupplierCommitment, WorkOrderState,
    WorkOrderStatus,
};

impl CanonicalEvent {
    /// An event of `site` that happened at `occurred_at` (RFC 3339), without source sequence or
    /// transaction.
    pub fn new(
        site: impl Into<String>,
        occurred_at: impl Into<String>,
        data: impl Into<EventData>,
    ) -> Self {
        Self {
            site: site.into(),
            occurred_at: occurred_at.into(),
            source_sequence: None,
            source_transaction: None,
            data: data.into(),
        }
    }

    /// The same event with the source's identity of the business transaction it came from.
    pub fn with_transaction(mut self, transaction: impl Into<String>) -> Self {
        self.source_transaction = Some(transaction.into());
        self
    }

    /// The same event with the source system's own sequence number.
    pub fn with_sequence(mut self, sequence: u64) -> Self {
        self.source_sequence = Some(sequence);
        self
    }
}

impl Quantity {
    /// `amount` (exact decimal text, see [`crate::canonical::Decimal`]) of the UN/ECE Rec 20 unit `uom`.
    pub fn new(amount: impl Into<String>, uom: impl Into<String>) -> Self {
        Self {
            amount: amount.into(),
            uom: uom.into(),
        }
    }

    /// Zero of the same unit.
    pub fn zero_like(&self) -> Self {
        Self::new("0", self.uom.clone())
    }
}

impl InventoryMovement {
    /// A movement of `quantity` of `item`; locations, lot, serials, status, reference and expiry
    /// empty.
    pub fn new(movement_type: MovementType, item: impl Into<String>, quantity: Quantity) -> Self {
        Self {
            movement_type,
            item: item.into(),
            quantity,
            from_location: None,
            to_location: None,
            lot: None,
            serials: Vec::new(),
            stock_status: None,
            reference_document: None,
            expiry_date: None,
        }
    }
}

impl InventoryBalance {
    /// `on_hand` of `item` at `location`, nothing allocated or blocked, no lot.
    pub fn new(item: impl Into<String>, location: impl Into<String>, on_hand: Quantity) -> Self {
        Self {
            item: item.into(),
            location: location.into(),
            lot: None,
            allocated: on_hand.zero_like(),
            blocked: on_hand.zero_like(),
            on_hand,
        }
    }
}

impl WorkOrderStatus {
    /// `work_order` is now in `state`; no operation, item or quantities.
    pub fn new(work_order: impl Into<String>, state: WorkOrderState) -> Self {
        Self {
            work_order: work_order.into(),
            operation: None,
            state,
            item: None,
            planned_quantity: None,
            completed_quantity: None,
            scrapped_quantity: None,
        }
    }
}

impl MaterialConsumption {
    /// `quantity` of `item` consumed by `work_order`; no operation, lot or location.
    pub fn new(work_order: impl Into<String>, item: impl Into<String>, quantity: Quantity) -> Self {
        Self {
            work_order: work_order.into(),
            operation: None,
            item: item.into(),
            lot: None,
            quantity,
            location: None,
        }
    }
}

impl ProductionCompletion {
    /// `good` of `item` produced by `work_order`, no scrap; no operation, lot or location.
    pub fn new(work_order: impl Into<String>, item: impl Into<String>, good: Quantity) -> Self {
        Self {
            work_order: work_order.into(),
            operation: None,
            item: item.into(),
            lot: None,
            scrap_quantity: good.zero_like(),
            good_quantity: good,
            location: None,
        }
    }
}

impl HoldScope {
    /// A scope naming nothing yet; set at least one field.
    pub fn none() -> Self {
        Self {
            item: None,
            lot: None,
            location: None,
            supplier: None,
        }
    }

    /// A hold on one lot of one item.
    pub fn lot(item: impl Into<String>, lot: impl Into<String>) -> Self {
        Self {
            item: Some(item.into()),
            lot: Some(lot.into()),
            ..Self::none()
        }
    }
}

impl QualityHold {
    /// Hold `hold_id` placed or released on `scope` for `reason`; no disposition.
    pub fn new(
        hold_id: impl Into<String>,
        action: HoldAction,
        scope: HoldScope,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            hold_id: hold_id.into(),
            action,
            scope,
            reason: reason.into(),
            disposition: None,
        }
    }
}

impl ScheduleBucket {
    /// `quantity` due on `date` (RFC 3339 full-date), at `level`; no end date.
    pub fn new(date: impl Into<String>, quantity: Quantity, level: CommitmentLevel) -> Self {
        Self {
            date: date.into(),
            end_date: None,
            quantity,
            level,
        }
    }
}

impl SupplierCommitment {
    /// `supplier`'s schedule of `item`; no purchase order or cumulative receipts.
    pub fn new(
        supplier: impl Into<String>,
        item: impl Into<String>,
        buckets: Vec<ScheduleBucket>,
    ) -> Self {
        Self {
            supplier: supplier.into(),
            item: item.into(),
            purchase_order: None,
            buckets,
            cumulative_received: None,
        }
    }
}

impl ShipmentLine {
    /// `quantity` of `item` shipped; no lot, serials, order or package.
    pub fn new(item: impl Into<String>, quantity: Quantity) -> Self {
        Self {
            item: item.into(),
            quantity,
            lot: None,
            serials: Vec::new(),
            purchase_order: None,
            package_id: None,
        }
    }
}

impl ShipmentNotice {
    /// Shipment `shipment_id` from `supplier` shipped at `ship_date` (RFC 3339) with `lines`; no
    /// expected delivery.
    pub fn new(
        shipment_id: impl Into<String>,
        supplier: impl Into<String>,
        ship_date: impl Into<String>,
        lines: Vec<ShipmentLine>,
    ) -> Self {
        Self {
            shipment_id: shipment_id.into(),
            supplier: supplier.into(),
            ship_date: ship_date.into(),
            expected_delivery: None,
            lines,
        }
    }
}

macro_rules! into_event_data {
    ($($record:ident),+) => {$(
        impl From<$record> for EventData {
            fn from(record: $record) -> Self {
                EventData::$record(record)
            }
        }
    )+};
}

into_event_data!(
    InventoryMovement,
    InventoryBalance,
    WorkOrderStatus,
    MaterialConsumption,
    ProductionCompletion,
    QualityHold,
    SupplierCommitment,
    ShipmentNotice
);

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_event_needs_only_what_the_source_gives() {
        let event = CanonicalEvent::new(
            "PLANT1",
            "2026-03-02T06:00:00Z",
            InventoryMovement {
                lot: Some("L1".into()),
                ..InventoryMovement::new(MovementType::Receipt, "ITEM", Quantity::new("5", "KGM"))
            },
        )
        .with_transaction("ISA:ST");
        assert_eq!(event.source_transaction.as_deref(), Some("ISA:ST"));
        assert_eq!(event.source_sequence, None);
        let EventData::InventoryMovement(movement) = event.data else {
            panic!("not a movement");
        };
        assert_eq!(movement.lot.as_deref(), Some("L1"));
        assert_eq!(movement.expiry_date, None);
        let balance = InventoryBalance::new("ITEM", "WH1", Quantity::new("12.5", "KGM"));
        assert_eq!(balance.blocked, Quantity::new("0", "KGM"));
        assert_eq!(balance.allocated, Quantity::new("0", "KGM"));
    }

    #[test]
    fn business_keys_keep_values_apart_and_read_as_written() {
        let kg = || Quantity::new("1", "KGM");
        let balance = |location: &str, lot: Option<&str>| {
            EventData::from(InventoryBalance {
                lot: lot.map(Into::into),
                ..InventoryBalance::new("ITEM-42", location, kg())
            })
            .business_key("PLANT1")
        };
        // Plain values, and a location with a slash, read as written.
        assert_eq!(balance("WH3", Some("LOT7")), "ITEM-42@PLANT1/WH3#LOT7");
        assert_eq!(balance("WH1/A-01", None), "ITEM-42@PLANT1/WH1/A-01");
        let order = EventData::from(WorkOrderStatus {
            operation: Some("OP20".into()),
            ..WorkOrderStatus::new("WO-1001", WorkOrderState::Released)
        });
        assert_eq!(order.business_key("PLANT1"), "WO-1001@PLANT1/OP20");
        // A separator inside a value cannot stand for one between values.
        assert_ne!(balance("L#X", None), balance("L", Some("X")));
        assert_eq!(balance("L#X", None), "ITEM-42@PLANT1/L%23X");
        assert_ne!(balance("L%23X", None), balance("L#X", None));
        let commitment = |supplier: &str, item: &str| {
            EventData::from(SupplierCommitment::new(supplier, item, Vec::new())).business_key("P")
        };
        assert_ne!(commitment("A/B", "C"), commitment("A", "B/C"));
        assert_eq!(commitment("ACME", "ITEM-1"), "ACME/ITEM-1@P");
        let hold = |id: &str, site: &str| {
            let scope = HoldScope {
                item: Some("ITEM".into()),
                lot: None,
                location: None,
                supplier: None,
            };
            EventData::from(QualityHold::new(id, HoldAction::Placed, scope, "why"))
                .business_key(site)
        };
        assert_ne!(hold("H@P1", "X"), hold("H", "P1@X"));
        assert_ne!(hold("H", "P/1"), hold("H/P", "1"));
    }
}
