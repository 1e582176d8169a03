//! Lifting what a plugin returned into the canonical model, for every WIT version served.
//!
//! The versions' generated types are distinct Rust types with the same shape, so one macro
//! writes the conversions for each; what a later version added is read through a small trait
//! that earlier versions answer with "none".

use super::bindings::{v1_0, v1_1};

/// The lot expiry of a movement: added in 1.1.0.
trait Expiry {
    fn expiry(&self) -> Option<String>;
}

impl Expiry for v1_0::millrace::mapping::canonical::InventoryMovement {
    fn expiry(&self) -> Option<String> {
        None
    }
}

impl Expiry for v1_1::millrace::mapping::canonical::InventoryMovement {
    fn expiry(&self) -> Option<String> {
        self.expiry_date.clone()
    }
}

macro_rules! lift_canonical {
    ($name:ident, $wit:path) => {
        mod $name {
            use super::Expiry;
            use crate::canonical::*;
            use $wit as wit;

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
                        wit::EventData::InventoryMovement(m) => {
                            let expiry_date = Expiry::expiry(&m);
                            Self::InventoryMovement(InventoryMovement {
                                movement_type: m.movement_type.into(),
                                item: m.item,
                                quantity: m.quantity.into(),
                                from_location: m.from_location,
                                to_location: m.to_location,
                                lot: m.lot,
                                serials: m.serials,
                                stock_status: m.stock_status.map(StockStatus::from),
                                expiry_date,
                                reference_document: m.reference_document,
                            })
                        }
                        wit::EventData::InventoryBalance(b) => {
                            Self::InventoryBalance(InventoryBalance {
                                item: b.item,
                                location: b.location,
                                lot: b.lot,
                                on_hand: b.on_hand.into(),
                                allocated: b.allocated.into(),
                                blocked: b.blocked.into(),
                            })
                        }
                        wit::EventData::WorkOrderStatus(w) => {
                            Self::WorkOrderStatus(WorkOrderStatus {
                                work_order: w.work_order,
                                operation: w.operation,
                                state: w.state.into(),
                                item: w.item,
                                planned_quantity: quantity(w.planned_quantity),
                                completed_quantity: quantity(w.completed_quantity),
                                scrapped_quantity: quantity(w.scrapped_quantity),
                            })
                        }
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
                        wit::EventData::SupplierCommitment(s) => {
                            Self::SupplierCommitment(SupplierCommitment {
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
                            })
                        }
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
        }
    };
}

lift_canonical!(
    from_v1_0,
    crate::sandbox::bindings::v1_0::millrace::mapping::canonical
);
lift_canonical!(
    from_v1_1,
    crate::sandbox::bindings::v1_1::millrace::mapping::canonical
);
