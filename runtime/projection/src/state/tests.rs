#![allow(clippy::unwrap_used)]

use super::*;
use std::collections::BTreeMap;

use millrace_core::posting::acknowledgement::{Acknowledgement, PostingOutcome};

use millrace_core::canonical::{
    HoldAction, HoldScope, InventoryMovement, WorkOrderState, WorkOrderStatus,
};

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
        business_key: "WO-1@PLANT1".into(),
        data,
    }
}

fn receipt(id: &str, time: &str, amount: &str) -> ProjectedEvent {
    movement(id, time, MovementType::Receipt, amount, None, Some("WH1"))
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

/// Ship notice `S1` of supplier `SUP` on 1 March: a line of lot `L1` of `RM-1` per amount.
fn ship_notice(amounts: &[&str]) -> ProjectedEvent {
    let line = |amount: &&str| millrace_core::canonical::ShipmentLine {
        item: "RM-1".into(),
        quantity: q(amount),
        lot: Some("L1".into()),
        serials: vec![],
        purchase_order: None,
        package_id: None,
    };
    event(
        "asn",
        "2026-03-01T10:00:00Z",
        EventData::ShipmentNotice(millrace_core::canonical::ShipmentNotice {
            shipment_id: "S1".into(),
            supplier: "SUP".into(),
            ship_date: "2026-03-01T10:00:00Z".into(),
            expected_delivery: None,
            lines: amounts.iter().map(line).collect(),
        }),
    )
}

#[test]
fn a_ship_notice_is_in_transit_until_received() {
    let mut book = BTreeMap::new();
    let notice = ship_notice(&["30"]);
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
            EventData::InventoryBalance(millrace_core::canonical::InventoryBalance {
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

/// The projection reads the canonical stream with the model's reader, the outbound driver's:
/// what one refuses the other refuses, with the same words; the projection asks for its own two
/// fields on top.
#[test]
fn the_projection_reads_events_as_the_outbound_driver_does() {
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut event = serde_json::json!({"specversion":"1.0","id":"x-1","source":"/PLANT1/qms",
            "type":"millrace.quality-hold.v1","time":"2026-03-02T09:41:27.512Z",
            "subject":"NCR-1@PLANT1","datacontenttype":"application/json",
            "data":{"hold_id":"NCR-1","action":"placed","scope":{"lot":"L1"},"reason":"r"},
            "route":"q","plugin":"p","pluginversion":"1.0.0","rawsequence":3});
        change(&mut event);
        serde_json::to_vec(&event).unwrap()
    };
    let both = |payload: &[u8]| {
        (
            ProjectedEvent::read(payload).map(|e| e.id),
            CanonicalEvent::from_payload(payload)
                .map(|e| e.envelope.id)
                .map_err(|e| e.to_string()),
        )
    };
    // Accepted by both, the same event.
    let (projected, outbound) = both(&with(&|_| {}));
    assert_eq!(projected.as_deref(), Ok("x-1"));
    assert_eq!(projected, outbound);
    assert!(!ProjectedEvent::read(&with(&|_| {})).unwrap().late);
    // Refused by both, for the same reason.
    for (field, broken) in [
        ("subject", serde_json::Value::Null),
        ("route", serde_json::Value::Null),
        ("rawsequence", serde_json::json!("three")),
        ("type", serde_json::json!("quality-hold")),
        ("source", serde_json::json!("PLANT1")),
        ("data", serde_json::json!({"hold_id": 7})),
    ] {
        let (projected, outbound) = both(&with(&|e| e[field] = broken.clone()));
        let reason = outbound.unwrap_err();
        assert_eq!(projected, Err(reason.clone()), "{field}");
        assert!(reason.starts_with("not a canonical CloudEvent"), "{reason}");
    }
    // What only the projection asks for: the source system and a boolean late mark.
    let no_system = with(&|e| e["source"] = serde_json::json!("/PLANT1"));
    assert!(CanonicalEvent::from_payload(&no_system).is_ok());
    assert_eq!(
        ProjectedEvent::read(&no_system).map(|e| e.id),
        Err("source \"/PLANT1\" is not /<site>/<system>".to_owned())
    );
    let late = with(&|e| e["late"] = serde_json::json!("yes"));
    assert_eq!(
        ProjectedEvent::read(&late).map(|e| e.id),
        Err("late is \"yes\", not true or false".to_owned())
    );
}

#[test]
fn keys_are_valid_and_unambiguous() {
    assert_eq!(key_token(Some("WO-4711")), "WO-4711");
    assert_eq!(key_token(None), "=");
    assert_eq!(key_token(Some("1 EDI")), "=x3120454449");
    assert_ne!(key_token(Some("")), key_token(None));
}

/// A movement of `amount` of RM-1 lot L1.
fn movement(
    id: &str,
    time: &str,
    movement_type: MovementType,
    amount: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> ProjectedEvent {
    event(
        id,
        time,
        EventData::InventoryMovement(InventoryMovement {
            movement_type,
            item: "RM-1".into(),
            quantity: q(amount),
            from_location: from.map(Into::into),
            to_location: to.map(Into::into),
            lot: Some("L1".into()),
            serials: vec![],
            stock_status: None,
            reference_document: None,
            expiry_date: None,
        }),
    )
}

fn on_hand_at(book: &BTreeMap<StockKey, StockRecord>, location: Option<&str>) -> String {
    book.values()
        .find(|r| r.key.location.as_deref() == location)
        .map(|r| r.on_hand.to_string())
        .unwrap_or_default()
}

#[test]
fn an_adjustment_is_signed_at_the_location_it_names() {
    let mut book = BTreeMap::new();
    apply_stock(&mut book, &receipt("gr", "2026-03-02T06:00:00Z", "20"));
    // wms-movements' `ADJ -0.75` from a bin: the negative amount reduces the stock there.
    let minus = movement(
        "a1",
        "2026-03-02T07:00:00Z",
        MovementType::Adjustment,
        "-0.75",
        Some("WH1"),
        None,
    );
    apply_stock(&mut book, &minus);
    assert_eq!(on_hand_at(&book, Some("WH1")), "19.25");
    let plus = movement(
        "a2",
        "2026-03-02T08:00:00Z",
        MovementType::Adjustment,
        "2",
        None,
        Some("WH1"),
    );
    apply_stock(&mut book, &plus);
    assert_eq!(on_hand_at(&book, Some("WH1")), "21.25");
}

#[test]
fn a_transfer_within_one_location_keeps_the_stock() {
    let mut book = BTreeMap::new();
    apply_stock(&mut book, &receipt("gr", "2026-03-02T06:00:00Z", "100"));
    // A release from quality inspection where the stock lies: out of WH1 and back in.
    let release = movement(
        "t1",
        "2026-03-02T07:00:00Z",
        MovementType::Transfer,
        "100",
        Some("WH1"),
        Some("WH1"),
    );
    assert_eq!(plan(&release).len(), 1, "one change per position");
    apply_stock(&mut book, &release);
    apply_stock(&mut book, &release);
    assert_eq!(on_hand_at(&book, Some("WH1")), "100");
}

#[test]
fn a_movement_older_than_a_balance_is_counted_in_it() {
    let mut book = BTreeMap::new();
    let balance = event(
        "b1",
        "2026-03-02T10:00:00Z",
        EventData::InventoryBalance(millrace_core::canonical::InventoryBalance {
            item: "RM-1".into(),
            location: "WH1".into(),
            lot: Some("L1".into()),
            on_hand: q("100"),
            allocated: q("0"),
            blocked: q("0"),
        }),
    );
    apply_stock(&mut book, &balance);
    // An MES upload of 09:00 that reaches the projection after the 10:00 snapshot.
    apply_stock(
        &mut book,
        &movement(
            "i1",
            "2026-03-02T09:00:00Z",
            MovementType::Issue,
            "10",
            Some("WH1"),
            None,
        ),
    );
    assert_eq!(on_hand_at(&book, Some("WH1")), "100");
    apply_stock(
        &mut book,
        &movement(
            "i2",
            "2026-03-02T11:00:00Z",
            MovementType::Issue,
            "10",
            Some("WH1"),
            None,
        ),
    );
    assert_eq!(on_hand_at(&book, Some("WH1")), "90");
}

#[test]
fn a_hold_on_a_location_blocks_what_lies_there() {
    let placed = QualityHold {
        hold_id: "NCR-9".into(),
        action: HoldAction::Placed,
        scope: HoldScope {
            item: None,
            lot: None,
            location: Some("COLD-ROOM-2".into()),
            supplier: None,
        },
        reason: "temperature excursion".into(),
        disposition: None,
    };
    let key = HoldKey {
        site: "PLANT1".into(),
        hold_id: "NCR-9".into(),
        item: None,
        lot: None,
    };
    let hold = HoldRecord::new(key, &placed);
    let at = |site: &str, location: &str| StockKey {
        site: site.into(),
        item: "RM-1".into(),
        location: Some(location.into()),
        lot: Some("L1".into()),
    };
    assert!(hold.blocks(&at("PLANT1", "COLD-ROOM-2")));
    assert!(!hold.blocks(&at("PLANT1", "WH1")));
    assert!(
        !hold.blocks(&at("PLANT2", "COLD-ROOM-2")),
        "its own site only"
    );
    let supplier_only = HoldRecord::new(
        HoldKey {
            site: "PLANT1".into(),
            hold_id: "NCR-10".into(),
            item: None,
            lot: None,
        },
        &QualityHold {
            scope: HoldScope {
                location: None,
                supplier: Some("SUP-1".into()),
                ..placed.scope.clone()
            },
            ..placed.clone()
        },
    );
    assert!(!supplier_only.blocks(&at("PLANT1", "COLD-ROOM-2")));
}

#[test]
fn a_status_without_quantities_keeps_those_reported_before() {
    let key = WorkOrderKey {
        site: "PLANT1".into(),
        work_order: "WO-1".into(),
    };
    let mut order = WorkOrderRecord::new(key);
    let done = status("e1", "2026-03-02T12:00:00Z", WorkOrderState::Completed);
    let mut closed = status("e2", "2026-03-02T13:00:00Z", WorkOrderState::Closed);
    if let EventData::WorkOrderStatus(s) = &mut closed.data {
        s.completed_quantity = None;
        s.planned_quantity = Some(q("100"));
    }
    for e in [&done, &closed] {
        for change in plan(e) {
            if let Change::WorkOrder(_, change) = change {
                apply_once(&mut order, &change, e);
            }
        }
    }
    assert_eq!(order.reported_completed, Some(q("10")));
    assert_eq!(order.planned, Some(q("100")));
}

#[test]
fn quantities_in_units_of_one_measure_are_converted_and_others_counted() {
    let mut book = BTreeMap::new();
    let in_unit = |mut e: ProjectedEvent, uom: &str| {
        if let EventData::InventoryMovement(m) = &mut e.data {
            m.quantity.uom = uom.into();
        }
        e
    };
    apply_stock(
        &mut book,
        &in_unit(receipt("gr", "2026-03-02T06:00:00Z", "10"), "KGM"),
    );
    let issue = movement(
        "i1",
        "2026-03-02T07:00:00Z",
        MovementType::Issue,
        "500",
        Some("WH1"),
        None,
    );
    apply_stock(&mut book, &in_unit(issue, "GRM"));
    let wh1 = |book: &BTreeMap<StockKey, StockRecord>| {
        book.values()
            .find(|r| r.key.location.as_deref() == Some("WH1"))
            .map(|r| (r.on_hand.to_string(), r.unit_mismatches))
            .unwrap()
    };
    assert_eq!(wh1(&book), ("9.5".to_owned(), 0), "500 g is 0.5 kg");
    let pieces = movement(
        "i2",
        "2026-03-02T08:00:00Z",
        MovementType::Issue,
        "1",
        Some("WH1"),
        None,
    );
    apply_stock(&mut book, &in_unit(pieces, "EA"));
    assert_eq!(
        wh1(&book),
        ("8.5".to_owned(), 1),
        "each cannot be kilograms: counted"
    );
}

#[test]
fn stock_received_in_quality_inspection_is_restricted_until_released_where_it_lies() {
    let mut book = BTreeMap::new();
    let with_status = |mut e: ProjectedEvent, status: StockStatus| {
        if let EventData::InventoryMovement(m) = &mut e.data {
            m.stock_status = Some(status);
        }
        e
    };
    let restricted = |book: &BTreeMap<StockKey, StockRecord>| {
        book.values()
            .find(|r| r.key.location.as_deref() == Some("WH1"))
            .map(|r| (r.on_hand.to_string(), r.restricted.to_string()))
            .unwrap()
    };
    let gr = receipt("gr", "2026-03-02T06:00:00Z", "100");
    apply_stock(&mut book, &with_status(gr, StockStatus::QualityInspection));
    assert_eq!(restricted(&book), ("100".to_owned(), "100".to_owned()));
    let issue = movement(
        "i1",
        "2026-03-02T07:00:00Z",
        MovementType::Issue,
        "10",
        Some("WH1"),
        None,
    );
    apply_stock(&mut book, &issue);
    assert_eq!(
        restricted(&book),
        ("90".to_owned(), "90".to_owned()),
        "never above on hand"
    );
    let release = movement(
        "t1",
        "2026-03-02T08:00:00Z",
        MovementType::Transfer,
        "90",
        Some("WH1"),
        Some("WH1"),
    );
    apply_stock(&mut book, &with_status(release, StockStatus::Unrestricted));
    assert_eq!(
        restricted(&book),
        ("90".to_owned(), "0".to_owned()),
        "released in place"
    );
    let block = movement(
        "t2",
        "2026-03-02T09:00:00Z",
        MovementType::Transfer,
        "30",
        Some("WH1"),
        Some("WH1"),
    );
    apply_stock(&mut book, &with_status(block, StockStatus::Blocked));
    assert_eq!(
        restricted(&book),
        ("90".to_owned(), "30".to_owned()),
        "blocked in place"
    );
}

#[test]
fn an_empty_filter_value_filters_nothing() {
    let filter: crate::query::InventoryFilter =
        serde_json::from_value(serde_json::json!({"item": "", "site": "PLANT1"})).unwrap();
    assert_eq!(filter.item, None, "?item= is no filter");
    assert_eq!(filter.site.as_deref(), Some("PLANT1"));
}

#[test]
fn every_pack_of_one_item_and_lot_is_in_transit() {
    // A ship notice line per pack (x12-856 S/O/I/P): two cartons of one lot are 30 + 20 in
    // transit; the second line's change to the same position was skipped as a repeat before.
    let notice = ship_notice(&["30", "20"]);
    assert_eq!(plan(&notice).len(), 1, "one change per position");
    let mut book = BTreeMap::new();
    apply_stock(&mut book, &notice);
    apply_stock(&mut book, &notice);
    let transit = book.values().next().map(|r| r.in_transit().to_string());
    assert_eq!(transit.as_deref(), Some("50"));
}

#[test]
fn a_rejected_request_posted_after_its_redrive_shows_as_posted() {
    let ack = |outcome: PostingOutcome, document: Option<&str>, reason: Option<&str>| {
        PostingChange::Acknowledged(Acknowledgement {
            route: "erp-postings".into(),
            target: "erp".into(),
            event_id: "e1".into(),
            kind: "material-consumption".into(),
            site: "PLANT1".into(),
            business_key: "WO-1@PLANT1".into(),
            request: 0,
            idempotency_key: "e1".into(),
            outcome,
            document: document.map(Into::into),
            reason: reason.map(Into::into),
            status: if outcome == PostingOutcome::Posted {
                201
            } else {
                400
            },
            plugin: "erp-postings@1.0.0".into(),
            source_time: "2026-12-01T10:00:00Z".into(),
            acknowledged_at: "2026-12-01T10:00:01Z".into(),
            delay_seconds: 1.0,
        })
    };
    let key = PostingKey {
        route: "erp-postings".into(),
        event_id: "e1".into(),
    };
    let rejected = ack(PostingOutcome::Rejected, None, Some("no such batch"));
    let posted = ack(PostingOutcome::Posted, Some("4900000002"), None);
    let mut record = PostingRecord::new(key, &rejected);
    assert!(record.apply(&rejected));
    assert!(
        !record.apply(&rejected),
        "a redelivered repeat changes nothing"
    );
    assert!(record.rejected());
    // The dead letter redriven once the data was fixed: the ERP booked it.
    assert!(record.apply(&posted));
    assert!(!record.rejected());
    assert_eq!(record.requests[&0].document.as_deref(), Some("4900000002"));
    // Posted stays posted.
    assert!(!record.apply(&rejected));
    assert!(!record.apply(&posted));
    assert_eq!(record.requests[&0].outcome, PostingOutcome::Posted);
}
