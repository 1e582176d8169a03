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

/// Applies every change of `event` to the stock positions in `book`, as the consumer loop
/// does (`Projection::apply_stock`: a lotted receipt's spill to the item without a lot).
fn apply_stock(book: &mut BTreeMap<StockKey, StockRecord>, event: &ProjectedEvent) {
    for change in plan(event) {
        if let Change::Stock(key, change) = change {
            let record = book
                .entry(key.clone())
                .or_insert_with(|| StockRecord::new(key.clone()));
            apply_once(record, &change, event);
            let Some((lotless_key, spill)) = spill_of(&key, &book[&key], event) else {
                continue;
            };
            let mut lotless = book
                .get(&lotless_key)
                .cloned()
                .unwrap_or_else(|| StockRecord::new(lotless_key.clone()));
            if apply_once(&mut lotless, &spill, event) {
                book.insert(lotless_key, lotless.clone());
            }
            if let Some(netted) = netted_of(&lotless, event) {
                let under = ProjectedEvent {
                    id: netted_id(&event.id),
                    ..event.clone()
                };
                if let Some(record) = book.get_mut(&key) {
                    apply_once(record, &netted, &under);
                }
            }
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

#[test]
fn an_event_given_up_before_an_answer_is_read_from_its_dead_letter_in_any_order() {
    let letter = |kind: &str, failed_at: &str| {
        serde_json::json!({
            "route": "erp-postings", "subject": "canonical.production-completion.PLANT1",
            "sequence": 9, "event_id": "e1", "event": "{not an event}", "kind": kind,
            "reason": format!("{kind} at {failed_at}"), "requests": [{"target": "erp",
            "method": "post", "path": "/goods", "headers": [], "body": []}], "request": 0,
            "failed_at": failed_at
        })
        .to_string()
    };
    let read = |kind: &str, failed_at: &str| dead_lettered(letter(kind, failed_at).as_bytes());
    // A target's rejection is its acknowledgement's to tell; a letter without an event id
    // (no canonical event) has nothing to key it by.
    assert_eq!(read("rejected", "2026-12-01T10:00:00Z"), Ok(None));
    let no_id = letter("not-canonical", "2026-12-01T10:00:00Z").replace("\"event_id\":\"e1\",", "");
    assert_eq!(dead_lettered(no_id.as_bytes()), Ok(None));
    assert!(
        dead_lettered(b"[]")
            .unwrap_err()
            .contains("no outbound dead letter")
    );

    let (key, first) = read("refused-request", "2026-12-01T10:00:00Z")
        .unwrap()
        .unwrap();
    assert_eq!(key.bucket_key(), "erp-postings.e1");
    // Whole seconds against nanoseconds: the instant decides, not the text.
    let (_, second) = read("trap", "2026-12-01T10:00:00.5Z").unwrap().unwrap();
    let mut one = PostingRecord::new(key.clone(), &first);
    assert!(one.apply(&first));
    assert!(!one.apply(&first), "a redelivered letter changes nothing");
    assert!(one.apply(&second));
    let mut other = PostingRecord::new(key, &second);
    assert!(other.apply(&second));
    assert!(
        !other.apply(&first),
        "an older letter read later changes nothing"
    );
    assert_eq!(one, other, "the latest letter wins in either order");
    let undelivered = one.undelivered_now().unwrap();
    assert_eq!(undelivered.kind, "trap");
    assert_eq!(undelivered.target.as_deref(), Some("erp"));
    assert_eq!(
        one.event,
        PostedEvent::default(),
        "the letter held no readable event"
    );

    // The event read on CANONICAL fills in what it is; a booking after the letter (its
    // redrive) ends it, one before it does not.
    let event = PostedEvent {
        kind: "production-completion".into(),
        site: "PLANT1".into(),
        business_key: "WO-1@PLANT1".into(),
        source_time: "2026-12-01T09:00:00Z".into(),
    };
    let due = Due {
        sequence: 9,
        targets: vec!["erp".into()],
    };
    assert!(one.apply(&PostingChange::Due(event.clone(), due)));
    assert_eq!(one.event, event);
    let booked = |at: &str| {
        PostingChange::Acknowledged(Acknowledgement {
            route: "erp-postings".into(),
            target: "erp".into(),
            event_id: "e1".into(),
            kind: event.kind.clone(),
            site: event.site.clone(),
            business_key: event.business_key.clone(),
            request: 0,
            idempotency_key: "e1".into(),
            outcome: PostingOutcome::Posted,
            document: Some("4900000002".into()),
            reason: None,
            status: 201,
            plugin: "erp-postings@1.0.0".into(),
            source_time: event.source_time.clone(),
            acknowledged_at: at.into(),
            delay_seconds: 1.0,
        })
    };
    let mut before = one.clone();
    assert!(before.apply(&booked("2026-12-01T09:59:59Z")));
    assert!(before.undelivered_now().is_some());
    assert!(one.apply(&booked("2026-12-01T10:05:00+01:00")), "09:05 UTC");
    assert!(
        one.undelivered_now().is_some(),
        "before the letter, whatever its offset"
    );
    let mut after = other.clone();
    assert!(after.apply(&booked("2026-12-01T10:00:01Z")));
    assert_eq!(after.undelivered_now(), None);
}

/// A movement of `amount` of RM-1 `lot` at PLANT1, with a stock status.
fn movement_of(
    id: &str,
    time: &str,
    movement_type: MovementType,
    amount: &str,
    lot: Option<&str>,
    (from, to): (Option<&str>, Option<&str>),
    stock_status: Option<StockStatus>,
) -> ProjectedEvent {
    let mut e = movement(id, time, movement_type, amount, from, to);
    if let EventData::InventoryMovement(m) = &mut e.data {
        m.lot = lot.map(Into::into);
        m.stock_status = stock_status;
    }
    e
}

/// Ship notice `id` at `time` of RM-1 `lot` (none: the notice names no lot).
fn notice_of(id: &str, time: &str, amount: &str, lot: Option<&str>) -> ProjectedEvent {
    let mut e = ship_notice(&[amount]);
    e.id = id.into();
    e.time = time.into();
    e.position = Position::at(time, None).unwrap();
    if let EventData::ShipmentNotice(n) = &mut e.data {
        for line in &mut n.lines {
            line.lot = lot.map(Into::into);
        }
    }
    e
}

fn transit_of(book: &BTreeMap<StockKey, StockRecord>, lot: Option<&str>) -> String {
    let key = StockKey {
        site: "PLANT1".into(),
        item: "RM-1".into(),
        location: None,
        lot: lot.map(Into::into),
    };
    book.get(&key)
        .map_or_else(|| "absent".to_owned(), |r| r.in_transit().to_string())
}

#[test]
fn an_earlier_receipt_or_an_over_receipt_never_cancels_a_later_shipment() {
    // A: the lot was received (no notice), then 40 of it left in transit within the plant.
    let mut book = BTreeMap::new();
    let received = movement_of(
        "a1",
        "2026-11-30T08:00:00Z",
        MovementType::Receipt,
        "100",
        Some("L1"),
        (None, Some("WH1")),
        None,
    );
    let moved = movement_of(
        "a2",
        "2026-11-30T09:00:00Z",
        MovementType::Transfer,
        "40",
        Some("L1"),
        (Some("WH1"), Some("WH3")),
        Some(StockStatus::InTransit),
    );
    apply_stock(&mut book, &received);
    apply_stock(&mut book, &moved);
    assert_eq!(transit_of(&book, Some("L1")), "40");
    assert_eq!(on_hand_at(&book, Some("WH1")), "60");

    // B: notice of 40, receipts of 30 and 15 (an over-receipt), then a second notice of 20.
    let mut book = BTreeMap::new();
    let receipt_of = |id: &str, time: &str, amount: &str| {
        movement_of(
            id,
            time,
            MovementType::Receipt,
            amount,
            Some("L1"),
            (None, Some("WH1")),
            None,
        )
    };
    apply_stock(
        &mut book,
        &notice_of("b1", "2026-11-30T08:00:00Z", "40", Some("L1")),
    );
    apply_stock(&mut book, &receipt_of("b2", "2026-11-30T09:00:00Z", "30"));
    assert_eq!(transit_of(&book, Some("L1")), "10");
    apply_stock(&mut book, &receipt_of("b3", "2026-11-30T10:00:00Z", "15"));
    assert_eq!(transit_of(&book, Some("L1")), "0", "never below zero");
    apply_stock(
        &mut book,
        &notice_of("b4", "2026-11-30T11:00:00Z", "20", Some("L1")),
    );
    assert_eq!(
        transit_of(&book, Some("L1")),
        "20",
        "the surplus of the over-receipt does not cancel the second truck"
    );
}

#[test]
fn a_receipt_seen_before_its_notice_nets_only_against_a_notice_not_dated_after_it() {
    let mut book = BTreeMap::new();
    // The goods arrived (10:00) before the projection saw their notice (dated 08:00).
    apply_stock(&mut book, &receipt("gr", "2026-11-30T10:00:00Z", "30"));
    apply_stock(
        &mut book,
        &notice_of("asn", "2026-11-30T08:00:00Z", "30", Some("L1")),
    );
    assert_eq!(transit_of(&book, Some("L1")), "0");
    // A notice dated after every receipt is a later shipment: in transit.
    apply_stock(
        &mut book,
        &notice_of("asn2", "2026-11-30T12:00:00Z", "25", Some("L1")),
    );
    assert_eq!(transit_of(&book, Some("L1")), "25");
}

#[test]
fn a_lotted_receipt_clears_the_in_transit_of_a_notice_without_a_lot() {
    let mut book = BTreeMap::new();
    apply_stock(
        &mut book,
        &notice_of("asn", "2026-03-02T08:05:00Z", "40", None),
    );
    assert_eq!(transit_of(&book, None), "40");
    apply_stock(&mut book, &receipt("gr", "2026-03-02T13:00:00Z", "30"));
    assert_eq!(transit_of(&book, None), "10");
    // A redelivery changes nothing more.
    apply_stock(&mut book, &receipt("gr", "2026-03-02T13:00:00Z", "30"));
    assert_eq!(transit_of(&book, None), "10");
    apply_stock(&mut book, &receipt("gr2", "2026-03-02T13:30:00Z", "10"));
    assert_eq!(transit_of(&book, None), "0");
    assert_eq!(transit_of(&book, Some("L1")), "0");
    // Netted against the notice without a lot, the receipts no longer wait for a notice of
    // the lot: a later one of the lot is in transit in full.
    apply_stock(
        &mut book,
        &notice_of("asn3", "2026-03-02T09:00:00Z", "5", Some("L1")),
    );
    assert_eq!(transit_of(&book, Some("L1")), "5");
    // The lot's own in transit comes first.
    apply_stock(
        &mut book,
        &notice_of("asn4", "2026-03-02T14:00:00Z", "8", None),
    );
    apply_stock(&mut book, &receipt("gr3", "2026-03-02T15:00:00Z", "7"));
    assert_eq!(transit_of(&book, Some("L1")), "0");
    assert_eq!(transit_of(&book, None), "6");
}

#[test]
fn a_stock_record_stored_before_in_transit_was_kept_reads_as_shipped_less_arrived() {
    let mut old = serde_json::to_value(StockRecord::new(StockKey {
        site: "PLANT1".into(),
        item: "RM-1".into(),
        location: None,
        lot: Some("L1".into()),
    }))
    .unwrap();
    let fields = old.as_object_mut().unwrap();
    fields.remove("transit");
    fields.insert("shipped".into(), "30".into());
    fields.insert("arrived".into(), "20".into());
    let mut record: StockRecord = serde_json::from_value(old).unwrap();
    assert_eq!(record.in_transit().to_string(), "10");
    let more = notice_of("asn", "2026-03-03T08:00:00Z", "5", Some("L1"));
    let Some(Change::Stock(_, change)) = plan(&more).into_iter().next() else {
        unreachable!("a notice changes stock")
    };
    assert!(apply_once(&mut record, &change, &more));
    assert_eq!(record.in_transit().to_string(), "15");
}

fn hold_of(action: HoldAction, item: Option<&str>, lot: Option<&str>) -> QualityHold {
    QualityHold {
        hold_id: "NCR-9".into(),
        action,
        scope: HoldScope {
            item: item.map(Into::into),
            lot: lot.map(Into::into),
            location: None,
            supplier: None,
        },
        reason: "porosity".into(),
        disposition: None,
    }
}

/// Applies a hold event to `holds` as the consumer loop does ([`hold_targets`]).
fn apply_hold(holds: &mut BTreeMap<HoldKey, HoldRecord>, e: &ProjectedEvent) {
    let siblings: Vec<HoldRecord> = holds.values().cloned().collect();
    for change in plan(e) {
        if let Change::Hold(key, hold) = change {
            for (key, seed) in hold_targets(&key, &hold, e, &siblings) {
                let mut record = holds.get(&key).cloned().unwrap_or(seed);
                if apply_once(&mut record, &hold, e) {
                    holds.insert(key, record);
                }
            }
        }
    }
}

fn stock_at(item: &str, location: &str, lot: &str) -> StockKey {
    StockKey {
        site: "PLANT1".into(),
        item: item.into(),
        location: Some(location.into()),
        lot: Some(lot.into()),
    }
}

#[test]
fn a_release_naming_less_than_the_placement_closes_every_record_it_covers() {
    let mut holds = BTreeMap::new();
    let at = |id: &str, time: &str, h: QualityHold| event(id, time, EventData::QualityHold(h));
    for lot in ["LQA", "LQB"] {
        let placed = hold_of(HoldAction::Placed, Some("HSG-9"), Some(lot));
        apply_hold(
            &mut holds,
            &at(&format!("p-{lot}"), "2026-11-30T09:00:00Z", placed),
        );
    }
    let (a, b) = (
        stock_at("HSG-9", "WH1", "LQA"),
        stock_at("HSG-9", "WH2", "LQB"),
    );
    assert!(holds.values().any(|h| h.blocks(&a)));
    assert!(holds.values().any(|h| h.blocks(&b)));
    for lot in ["LQA", "LQB"] {
        let released = hold_of(HoldAction::Released, None, Some(lot));
        apply_hold(
            &mut holds,
            &at(&format!("r-{lot}"), "2026-11-30T12:00:00Z", released),
        );
    }
    assert_eq!(holds.len(), 2, "no new records: {holds:?}");
    assert!(!holds.values().any(|h| h.blocks(&a)), "{holds:?}");
    assert!(!holds.values().any(|h| h.blocks(&b)));
    assert!(
        holds
            .values()
            .all(|h| h.scope.item.as_deref() == Some("HSG-9")),
        "the records keep the scope that was placed"
    );

    // A release naming no lot releases every lot of the hold.
    let mut holds = BTreeMap::new();
    for lot in ["LQA", "LQB"] {
        let placed = hold_of(HoldAction::Placed, Some("HSG-9"), Some(lot));
        apply_hold(
            &mut holds,
            &at(&format!("p-{lot}"), "2026-11-30T09:00:00Z", placed),
        );
    }
    let all = hold_of(HoldAction::Released, Some("HSG-9"), None);
    apply_hold(&mut holds, &at("r", "2026-11-30T12:00:00Z", all));
    assert!(holds.values().all(|h| !h.is_open()), "{holds:?}");
}

#[test]
fn a_placement_older_than_a_release_that_came_first_does_not_open_the_hold() {
    let mut holds = BTreeMap::new();
    let at = |id: &str, time: &str, h: QualityHold| event(id, time, EventData::QualityHold(h));
    let released = hold_of(HoldAction::Released, None, Some("LQA"));
    apply_hold(&mut holds, &at("r", "2026-11-30T12:00:00Z", released));
    let placed = hold_of(HoldAction::Placed, Some("HSG-9"), Some("LQA"));
    apply_hold(&mut holds, &at("p", "2026-11-30T09:00:00Z", placed.clone()));
    assert!(
        !holds
            .values()
            .any(|h| h.blocks(&stock_at("HSG-9", "WH1", "LQA")))
    );
    // A placement newer than the release opens it again.
    apply_hold(&mut holds, &at("p2", "2026-11-30T15:00:00Z", placed));
    assert!(
        holds
            .values()
            .any(|h| h.blocks(&stock_at("HSG-9", "WH1", "LQA")))
    );
}

#[test]
fn holds_are_found_by_what_they_cover() {
    let record = |site: &str, id: &str, item: Option<&str>, lot: Option<&str>| {
        let mut hold = hold_of(HoldAction::Placed, item, lot);
        hold.hold_id = id.into();
        let key = HoldKey {
            site: site.into(),
            hold_id: id.into(),
            item: item.map(Into::into),
            lot: lot.map(Into::into),
        };
        HoldRecord::new(key, &hold)
    };
    let some = |s: &str| Some(s.to_owned());
    let s7 = stock_at("S7", "WH1", "L7");
    let s8 = stock_at("S8", "WH1", "L8");
    let s9 = StockKey {
        site: "PLANT2".into(),
        ..stock_at("S9", "WX", "L9")
    };
    let stock = [&s7, &s8, &s9];
    let item_wide = record("PLANT1", "H7", Some("S7"), None);
    let lot_only = record("PLANT1", "H8", None, Some("L8"));
    let lot_hold = record("PLANT1", "H9", Some("S9"), Some("L9"));
    assert!(item_wide.concerns(&None, &None, &some("L7"), &stock));
    assert!(!item_wide.concerns(&None, &None, &some("L8"), &stock));
    assert!(lot_only.concerns(&None, &some("S8"), &None, &stock));
    assert!(!lot_only.concerns(&None, &some("S7"), &None, &stock));
    assert!(lot_hold.concerns(&some("PLANT2"), &None, &None, &stock));
    assert!(!item_wide.concerns(&some("PLANT2"), &None, &None, &stock));
    assert!(
        lot_hold.concerns(&some("PLANT1"), &some("S9"), &some("L9"), &[]),
        "its own fields"
    );
}

#[test]
fn each_reported_quantity_is_from_the_newest_status_carrying_it_in_any_order() {
    let released = {
        let mut e = status("b1", "2026-11-30T06:00:00Z", WorkOrderState::Released);
        if let EventData::WorkOrderStatus(s) = &mut e.data {
            s.completed_quantity = None;
            s.planned_quantity = Some(q("100"));
        }
        e
    };
    let done = {
        let mut e = status("b2", "2026-11-30T10:00:00Z", WorkOrderState::Completed);
        if let EventData::WorkOrderStatus(s) = &mut e.data {
            s.completed_quantity = Some(q("95"));
        }
        e
    };
    for order in [[&released, &done], [&done, &released]] {
        let mut record = WorkOrderRecord::new(WorkOrderKey {
            site: "PLANT1".into(),
            work_order: "WO-1".into(),
        });
        for e in order {
            for change in plan(e) {
                if let Change::WorkOrder(_, change) = change {
                    apply_once(&mut record, &change, e);
                }
            }
        }
        assert_eq!(record.planned, Some(q("100")));
        assert_eq!(record.reported_completed, Some(q("95")));
        assert_eq!(
            record.state.map(|s| s.state),
            Some(WorkOrderState::Completed)
        );
    }
}

/// On hand and restricted (in quality inspection or blocked) at `location`.
fn restricted_at(book: &BTreeMap<StockKey, StockRecord>, location: &str) -> (String, String) {
    book.values()
        .find(|r| r.key.location.as_deref() == Some(location))
        .map(|r| (r.on_hand.to_string(), r.restricted.to_string()))
        .unwrap()
}

#[test]
fn restricted_stock_that_leaves_lowers_blocked_beside_free_stock() {
    let mut book = BTreeMap::new();
    let lot = Some("L1");
    let at = (Some("BIN-A"), Some("BIN-A"));
    let from = (Some("BIN-A"), None);
    use MovementType::{Adjustment, Issue, Receipt, Scrap, Transfer};
    use StockStatus::{Blocked, QualityInspection as Qi, Unrestricted};
    let free = movement_of(
        "gr1",
        "2026-03-02T06:00:00Z",
        Receipt,
        "50",
        lot,
        (None, Some("BIN-A")),
        Some(Unrestricted),
    );
    let inspect = movement_of(
        "gr2",
        "2026-03-02T06:10:00Z",
        Receipt,
        "100",
        lot,
        (None, Some("BIN-A")),
        Some(Qi),
    );
    apply_stock(&mut book, &free);
    apply_stock(&mut book, &inspect);
    assert_eq!(restricted_at(&book, "BIN-A"), ("150".into(), "100".into()));
    // Released where it lies: the stock left quality inspection.
    let release = movement_of(
        "t1",
        "2026-03-02T07:00:00Z",
        Transfer,
        "40",
        lot,
        at,
        Some(Unrestricted),
    );
    apply_stock(&mut book, &release);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("150".into(), "60".into()),
        "released in place"
    );
    // Scrapped out of blocked stock.
    let scrap = movement_of(
        "s1",
        "2026-03-02T08:00:00Z",
        Scrap,
        "30",
        lot,
        from,
        Some(Blocked),
    );
    apply_stock(&mut book, &scrap);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("120".into(), "30".into()),
        "scrapped blocked"
    );
    // Issued from quality inspection, counted down in it: each takes restricted stock.
    let issue = movement_of(
        "i1",
        "2026-03-02T09:00:00Z",
        Issue,
        "5",
        lot,
        from,
        Some(Qi),
    );
    apply_stock(&mut book, &issue);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("115".into(), "25".into()),
        "issued from QI"
    );
    let count = movement_of(
        "a1",
        "2026-03-02T09:30:00Z",
        Adjustment,
        "-5",
        lot,
        from,
        Some(Blocked),
    );
    apply_stock(&mut book, &count);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("110".into(), "20".into()),
        "counted down"
    );
    // Moved to another bin as it is: the restricted stock goes with it.
    let moved = movement_of(
        "t2",
        "2026-03-02T10:00:00Z",
        Transfer,
        "15",
        lot,
        (Some("BIN-A"), Some("BIN-B")),
        Some(Qi),
    );
    apply_stock(&mut book, &moved);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("95".into(), "5".into()),
        "moved out in QI"
    );
    assert_eq!(
        restricted_at(&book, "BIN-B"),
        ("15".into(), "15".into()),
        "moved in in QI"
    );
    // Free stock that leaves takes free stock; blocked where it lies takes free stock too.
    let issue = movement_of(
        "i2",
        "2026-03-02T11:00:00Z",
        Issue,
        "10",
        lot,
        from,
        Some(Unrestricted),
    );
    apply_stock(&mut book, &issue);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("85".into(), "5".into()),
        "free issued"
    );
    let block = movement_of(
        "t3",
        "2026-03-02T12:00:00Z",
        Transfer,
        "10",
        lot,
        at,
        Some(Blocked),
    );
    apply_stock(&mut book, &block);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("85".into(), "15".into()),
        "blocked in place"
    );
    // More restricted stock leaving than there is takes the rest from free stock.
    let scrap = movement_of(
        "s2",
        "2026-03-02T13:00:00Z",
        Scrap,
        "20",
        lot,
        from,
        Some(Blocked),
    );
    apply_stock(&mut book, &scrap);
    assert_eq!(
        restricted_at(&book, "BIN-A"),
        ("65".into(), "0".into()),
        "never below zero"
    );
}

/// Completion `id` of WO-1: `good` and `scrap` as (amount, unit).
fn completion(id: &str, time: &str, good: (&str, &str), scrap: (&str, &str)) -> ProjectedEvent {
    let of = |(amount, uom): (&str, &str)| Quantity {
        amount: amount.into(),
        uom: uom.into(),
    };
    event(
        id,
        time,
        EventData::ProductionCompletion(millrace_core::canonical::ProductionCompletion {
            work_order: "WO-1".into(),
            operation: None,
            item: "FG-1".into(),
            lot: None,
            good_quantity: of(good),
            scrap_quantity: of(scrap),
            location: None,
        }),
    )
}

fn work_order_after(events: &[ProjectedEvent]) -> WorkOrderRecord {
    let mut order = None;
    for e in events {
        for change in plan(e) {
            if let Change::WorkOrder(key, change) = change {
                let order = order.get_or_insert_with(|| WorkOrderRecord::fresh(&key, &change));
                apply_once(order, &change, e);
            }
        }
    }
    order.unwrap()
}

#[test]
fn a_zero_in_another_unit_mixes_nothing() {
    let order = work_order_after(&[
        completion("c1", "2026-03-02T06:15:00Z", ("10", "PCE"), ("1", "PCE")),
        completion("c2", "2026-03-02T06:16:00Z", ("2", "KGM"), ("0", "KGM")),
    ]);
    let completed = order.completed.unwrap();
    let scrapped = order.scrapped.unwrap();
    assert_eq!(
        (completed.amount.to_string(), completed.unit_mismatches),
        ("12".into(), 1)
    );
    assert_eq!(
        (
            scrapped.amount.to_string(),
            scrapped.uom.as_str(),
            scrapped.unit_mismatches
        ),
        ("1".into(), "PCE", 0),
        "no scrap in kilograms is no scrap"
    );
    // The first scrap a zero in another unit: the first scrap that is not zero gives the unit.
    let order = work_order_after(&[
        completion("c1", "2026-03-02T06:15:00Z", ("2", "KGM"), ("0", "KGM")),
        completion("c2", "2026-03-02T06:16:00Z", ("10", "PCE"), ("1", "PCE")),
        completion("c3", "2026-03-02T06:17:00Z", ("10", "PCE"), ("0", "KGM")),
    ]);
    let scrapped = order.scrapped.unwrap();
    assert_eq!(
        (
            scrapped.amount.to_string(),
            scrapped.uom.as_str(),
            scrapped.unit_mismatches
        ),
        ("1".into(), "PCE", 0)
    );
    assert_eq!(order.completed.unwrap().unit_mismatches, 2);
    // Stock: a zero in another unit (a balance's allocated) mixes nothing either.
    let mut mismatches = 0;
    let zero = Quantity {
        amount: "0".into(),
        uom: "EA".into(),
    };
    assert!(Amount::of(&zero, "KGM", &mut mismatches).is_zero());
    assert_eq!(mismatches, 0);
}
