//! The `poster` world of `millrace:outbound@1.0.0`: lowering a canonical event, a request and a
//! response into its WIT types, and lifting the requests, verdicts and render errors back.
//!
//! The event's data is lowered into `millrace:mapping@1.1.0`'s canonical types (the newest
//! model): an event mapped under 1.0.0 has the fields 1.1.0 added empty.

use super::bindings::poster_v1_0::millrace::outbound::posting as wit;
use super::bindings::v1_1::millrace::mapping::canonical as model;
use crate::canonical::*;
use crate::posting::{self, CanonicalEvent, Method, RenderError, Request, Verdict};

fn quantity(q: &Quantity) -> model::Quantity {
    model::Quantity {
        amount: q.amount.clone(),
        uom: q.uom.clone(),
    }
}

fn movement_type(v: MovementType) -> model::MovementType {
    match v {
        MovementType::Receipt => model::MovementType::Receipt,
        MovementType::Issue => model::MovementType::Issue,
        MovementType::Transfer => model::MovementType::Transfer,
        MovementType::Adjustment => model::MovementType::Adjustment,
        MovementType::Scrap => model::MovementType::Scrap,
    }
}

fn stock_status(v: StockStatus) -> model::StockStatus {
    match v {
        StockStatus::Unrestricted => model::StockStatus::Unrestricted,
        StockStatus::QualityInspection => model::StockStatus::QualityInspection,
        StockStatus::Blocked => model::StockStatus::Blocked,
        StockStatus::InTransit => model::StockStatus::InTransit,
    }
}

fn work_order_state(v: WorkOrderState) -> model::WorkOrderState {
    match v {
        WorkOrderState::Released => model::WorkOrderState::Released,
        WorkOrderState::Started => model::WorkOrderState::Started,
        WorkOrderState::Paused => model::WorkOrderState::Paused,
        WorkOrderState::Completed => model::WorkOrderState::Completed,
        WorkOrderState::Closed => model::WorkOrderState::Closed,
        WorkOrderState::Cancelled => model::WorkOrderState::Cancelled,
        WorkOrderState::Held => model::WorkOrderState::Held,
    }
}

fn data(data: &EventData) -> model::EventData {
    match data {
        EventData::InventoryMovement(m) => {
            model::EventData::InventoryMovement(model::InventoryMovement {
                movement_type: movement_type(m.movement_type),
                item: m.item.clone(),
                quantity: quantity(&m.quantity),
                from_location: m.from_location.clone(),
                to_location: m.to_location.clone(),
                lot: m.lot.clone(),
                serials: m.serials.clone(),
                stock_status: m.stock_status.map(stock_status),
                reference_document: m.reference_document.clone(),
                expiry_date: m.expiry_date.clone(),
            })
        }
        EventData::InventoryBalance(b) => {
            model::EventData::InventoryBalance(model::InventoryBalance {
                item: b.item.clone(),
                location: b.location.clone(),
                lot: b.lot.clone(),
                on_hand: quantity(&b.on_hand),
                allocated: quantity(&b.allocated),
                blocked: quantity(&b.blocked),
            })
        }
        EventData::WorkOrderStatus(w) => {
            model::EventData::WorkOrderStatus(model::WorkOrderStatus {
                work_order: w.work_order.clone(),
                operation: w.operation.clone(),
                state: work_order_state(w.state),
                item: w.item.clone(),
                planned_quantity: w.planned_quantity.as_ref().map(quantity),
                completed_quantity: w.completed_quantity.as_ref().map(quantity),
                scrapped_quantity: w.scrapped_quantity.as_ref().map(quantity),
            })
        }
        EventData::MaterialConsumption(c) => {
            model::EventData::MaterialConsumption(model::MaterialConsumption {
                work_order: c.work_order.clone(),
                operation: c.operation.clone(),
                item: c.item.clone(),
                lot: c.lot.clone(),
                quantity: quantity(&c.quantity),
                location: c.location.clone(),
            })
        }
        EventData::ProductionCompletion(p) => {
            model::EventData::ProductionCompletion(model::ProductionCompletion {
                work_order: p.work_order.clone(),
                operation: p.operation.clone(),
                item: p.item.clone(),
                lot: p.lot.clone(),
                good_quantity: quantity(&p.good_quantity),
                scrap_quantity: quantity(&p.scrap_quantity),
                location: p.location.clone(),
            })
        }
        EventData::QualityHold(h) => model::EventData::QualityHold(model::QualityHold {
            hold_id: h.hold_id.clone(),
            action: match h.action {
                HoldAction::Placed => model::HoldAction::Placed,
                HoldAction::Released => model::HoldAction::Released,
            },
            scope: model::HoldScope {
                item: h.scope.item.clone(),
                lot: h.scope.lot.clone(),
                location: h.scope.location.clone(),
                supplier: h.scope.supplier.clone(),
            },
            reason: h.reason.clone(),
            disposition: h.disposition.clone(),
        }),
        EventData::SupplierCommitment(s) => {
            model::EventData::SupplierCommitment(model::SupplierCommitment {
                supplier: s.supplier.clone(),
                item: s.item.clone(),
                purchase_order: s.purchase_order.clone(),
                buckets: s
                    .buckets
                    .iter()
                    .map(|b| model::ScheduleBucket {
                        date: b.date.clone(),
                        end_date: b.end_date.clone(),
                        quantity: quantity(&b.quantity),
                        level: match b.level {
                            CommitmentLevel::Firm => model::CommitmentLevel::Firm,
                            CommitmentLevel::Forecast => model::CommitmentLevel::Forecast,
                        },
                    })
                    .collect(),
                cumulative_received: s.cumulative_received.as_ref().map(quantity),
            })
        }
        EventData::ShipmentNotice(n) => model::EventData::ShipmentNotice(model::ShipmentNotice {
            shipment_id: n.shipment_id.clone(),
            supplier: n.supplier.clone(),
            ship_date: n.ship_date.clone(),
            expected_delivery: n.expected_delivery.clone(),
            lines: n
                .lines
                .iter()
                .map(|l| model::ShipmentLine {
                    item: l.item.clone(),
                    quantity: quantity(&l.quantity),
                    lot: l.lot.clone(),
                    serials: l.serials.clone(),
                    purchase_order: l.purchase_order.clone(),
                    package_id: l.package_id.clone(),
                })
                .collect(),
        }),
    }
}

/// The WIT `event` of a canonical event.
pub(super) fn event(event: &CanonicalEvent) -> wit::Event {
    let e = &event.envelope;
    wit::Event {
        envelope: wit::Envelope {
            id: e.id.clone(),
            kind: e.kind.clone(),
            site: e.site.clone(),
            subject: e.subject.clone(),
            time: e.time.clone(),
            lineage: wit::Lineage {
                raw_id: e.lineage.raw_id.clone(),
                route: e.lineage.route.clone(),
                plugin: e.lineage.plugin.clone(),
                source_transaction: e.lineage.source_transaction.clone(),
                source_sequence: e.lineage.source_sequence,
            },
        },
        data: data(&event.data),
    }
}

fn method(m: Method) -> wit::Method {
    match m {
        Method::Get => wit::Method::Get,
        Method::Post => wit::Method::Post,
        Method::Put => wit::Method::Put,
        Method::Patch => wit::Method::Patch,
        Method::Delete => wit::Method::Delete,
    }
}

/// The WIT `request` of a request.
pub(super) fn request(r: &Request) -> wit::Request {
    wit::Request {
        target: r.target.clone(),
        method: method(r.method),
        path: r.path.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    }
}

/// The WIT `response` of a response.
pub(super) fn response(r: &posting::Response) -> wit::Response {
    wit::Response {
        target: r.target.clone(),
        status: r.status,
        headers: r.headers.clone(),
        body: r.body.clone(),
    }
}

/// A request the plugin rendered.
pub(super) fn lift_request(r: wit::Request) -> Request {
    Request {
        target: r.target,
        method: match r.method {
            wit::Method::Get => Method::Get,
            wit::Method::Post => Method::Post,
            wit::Method::Put => Method::Put,
            wit::Method::Patch => Method::Patch,
            wit::Method::Delete => Method::Delete,
        },
        path: r.path,
        headers: r.headers,
        body: r.body,
    }
}

/// A verdict the plugin gave, its text clipped ([`posting::clip`]).
pub(super) fn lift_verdict(v: wit::Verdict) -> Verdict {
    match v {
        wit::Verdict::Posted(id) => Verdict::Posted(posting::clip(id)),
        wit::Verdict::Rejected(why) => Verdict::Rejected(posting::clip(why)),
        wit::Verdict::TryAgain(why) => Verdict::TryAgain(posting::clip(why)),
    }
}

/// A render error the plugin returned, its text clipped ([`posting::clip`]).
pub(super) fn lift_render_error(e: wit::RenderError) -> RenderError {
    match e {
        wit::RenderError::IncompleteEvent(m) => RenderError::IncompleteEvent(posting::clip(m)),
        wit::RenderError::RejectedByRule(m) => RenderError::RejectedByRule(posting::clip(m)),
        wit::RenderError::Other(m) => RenderError::Other(posting::clip(m)),
    }
}
