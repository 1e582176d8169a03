//! The visibility projection against a real nats-server, the real `millrace` binary and real
//! plugins: raw messages of five formats (X12 856 ship notice, X12 944 receipt, MES shift
//! report with consumption, completion and status, X12 830 schedule, quality webhooks placing
//! and releasing a hold) become exact projected state; a late resend and a duplicate event
//! change nothing; a rebuild from the stream gives the same state; a restarted host resumes.

use std::time::Instant;

use crate::support::*;
use async_nats::jetstream;
use millrace::config::Config;
use millrace::projection::Projection;
use millrace::projection::query::Visibility;
use millrace::transport::consumer_name;
use serde_json::{Value, json};

const ASN: &str = "raw.edi.plant1.x12-856";
const WAREHOUSE: &str = "raw.edi.plant1.x12-warehouse";
const SCHEDULES: &str = "raw.edi.plant1.x12-schedules";
const MES: &str = "raw.mes.plant1.shift-report";
const QMS: &str = "raw.qms.plant1.webhook";

/// The ship notice: 40 EA of the casing HSG-4410-A, lot L2026-0211, from SUP-0042.
const SHIP_NOTICE: &str = "ISA|00|          |00|          |ZZ|ACMEPARTS      |ZZ|PLANT1RECV     |260302|0815|^|00501|000004712|0|P|:
GS|SH|ACMEPARTS|PLANT1RECV|20260302|0815|4712|X|005010
ST|856|0001
BSN|00|ASN-26-0302-01|20260302|0805|0001
HL|1||S
N1|SU|GIESSEREI MUSTER GMBH|92|SUP-0042
HL|2|1|O
PRF|4500077001
HL|3|2|I
LIN|10|BP|HSG-4410-A|LT|L2026-0211
SN1|10|40|EA
SE|10|0001
GE|1|4712
IEA|1|000004712
";

/// The warehouse receipt (944): 30 of the 40 arrive at WH1.
const RECEIPT: &str = "ISA|00|          |00|          |ZZ|DEPOSITOR1     |ZZ|3PLWAREHOUSE   |260303|0700|^|00501|000000121|0|P|:
GS|AR|DEPOSITOR1|3PLWAREHOUSE|20260303|0700|121|X|005010
ST|944|1211
W17|F|20260303|WR-5520|ASN-26-0302-01
N1|WH|PLANT 1 RECEIVING|91|WH1
W07|30|EA||VN|HSG-4410-A|||L2026-0211
W14|30
SE|6|1211
GE|1|121
IEA|1|000000121
";

/// The planning schedule (830): 40 firm and 100 forecast of the casing from SUP-0042.
const SCHEDULE: &str = "ISA^00^          ^00^          ^01^PLANT1BUYER    ^01^SUP0042        ^260301^0600^U^00401^000000312^0^P^:'
GS^PS^PLANT1BUYER^SUP0042^20260301^0600^312^X^004010'
ST^830^3121'
BFR^05^REL-2603-01^^DL^A^20260301^20260601^20260301^^^4500077001'
N1^SU^GIESSEREI MUSTER GMBH^92^SUP-0042'
LIN^^BP^HSG-4410-A^VP^HSG-A'
UIT^EA'
FST^40^C^D^20260303'
FST^100^D^W^20260310'
CTT^1^140'
SE^9^3121'
GE^1^312'
IEA^1^000000312'
";

/// The shift: WO-5001 released, started, consumes 10 casings at WH1, completes 8 good and 1
/// scrap of ASM-100 lot LOT-A1 into FG-01, finishes.
const SHIFT: &str = "HDR|SHIFTRPT|02|1000|L01|A|20260303|+01:00|K. Weber
WOS|000201|TX-26030301|WO-5001||REL|ASM-100|000010000|||EA|20260303|060500|
WOS|000202|TX-26030302|WO-5001||STA|ASM-100|||||20260303|061000|
MAT|000203|TX-26030303|WO-5001|0010|HSG-4410-A|L2026-0211|000010000|EA|20260303|063000|WH1
PRD|000204|TX-26030304|WO-5001|0010|ASM-100|LOT-A1|000008000|000001000|EA|20260303|120000|FG-01
WOS|000205|TX-26030305|WO-5001||FIN|ASM-100|000010000|000008000|000001000|EA|20260303|133000|
TRL|000005
";

/// A report sent late: WO-5001 "started" at 07:00, older than its completion at 13:30.
const LATE_SHIFT: &str = "HDR|SHIFTRPT|02|1000|L01|A|20260303|+01:00|K. Weber
WOS|000206|TX-26030306|WO-5001||STA|ASM-100|||||20260303|070000|
TRL|000001
";

fn fixture(relative: &str) -> Vec<u8> {
    std::fs::read(root().join(relative)).unwrap()
}

/// A route for `plugin` on `subject`, configured as the plugin's fixtures are.
fn route(name: &str, plugin_dir: &str, subject: &str, extra: &str) -> String {
    fixture_route(name, &plugin(plugin_dir), subject, extra)
}

/// Waits until the canonical stream holds `events` events and the projection applied them all.
async fn projected(js: &jetstream::Context, projection: &Projection, events: u64, host: &Host) {
    let started = Instant::now();
    loop {
        let dead = try_stream_len(js, "DLQ").await.unwrap_or(0);
        assert_eq!(
            dead,
            0,
            "a raw message was dead-lettered:\n{}",
            host.log_text()
        );
        let stored = try_stream_len(js, "CANONICAL").await.unwrap_or(0);
        assert!(
            stored <= events,
            "more canonical events than expected: {stored}"
        );
        if stored == events && projection.caught_up().await.unwrap() {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{stored} of {events} events stored, projection not caught up:\n{}",
            host.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The inventory position of the casing lot at `location` (none: in transit / unlocated).
fn casing(state: &Value, location: Option<&str>) -> Value {
    state["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["item"] == "HSG-4410-A" && p["location"].as_str() == location)
        .unwrap_or_else(|| panic!("no casing position at {location:?} in {state:#}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_across_formats_projects_exactly_and_rebuilds_the_same() {
    let nats = Nats::start();
    // The quality route skips the resend check so the late resend of the placement reaches
    // the canonical stream (marked late) and the projection has to refuse it itself.
    let routes = [
        route("asn", "plugins/x12-856", ASN, ""),
        route("warehouse", "plugins/x12-warehouse", WAREHOUSE, ""),
        route("schedules", "plugins/x12-schedules", SCHEDULES, ""),
        route("mes", "plugins/mes-shift-report", MES, ""),
        route("qms", "plugins/quality-webhook", QMS, "idempotency = false"),
    ];
    let config_path = nats.config(&format!(
        "{}\n[projection]\nenabled = true\n",
        routes.join("\n")
    ));
    let config = Config::load(&config_path).unwrap();
    let js = jetstream::new(nats.client().await);
    let consumers: Vec<String> = [
        ("asn", ASN),
        ("warehouse", WAREHOUSE),
        ("schedules", SCHEDULES),
        ("mes", MES),
        ("qms", QMS),
    ]
    .iter()
    .map(|(r, s)| consumer_name(r, s))
    .collect();
    let consumer_refs: Vec<&str> = consumers.iter().map(String::as_str).collect();
    let mut host = Host::start(&config_path, &js, &consumer_refs).await;
    let projection = Projection::open(&js, &config).await.unwrap();
    let visibility = Visibility::open(&js, &config.projection).await.unwrap();

    // Ship notice, receipt, schedule, then the shift: 1 + 1 + 1 + 5 events.
    publish(&js, ASN, SHIP_NOTICE.as_bytes(), "asn-1").await;
    publish(&js, WAREHOUSE, RECEIPT.as_bytes(), "944-1").await;
    publish(&js, SCHEDULES, SCHEDULE.as_bytes(), "830-1").await;
    publish(&js, MES, SHIFT.as_bytes(), "shift-1").await;
    projected(&js, &projection, 8, &host).await;
    let s = projected_state(&visibility).await;
    let at_wh1 = casing(&s, Some("WH1"));
    assert_eq!(at_wh1["lot"], "L2026-0211");
    assert_eq!(at_wh1["on_hand"], "20", "30 received, 10 consumed: {s:#}");
    assert_eq!(at_wh1["received"], "30");
    assert_eq!(at_wh1["blocked"], "0");
    assert_eq!(at_wh1["available"], "20");
    assert_eq!(at_wh1["uom"], "EA");
    let in_transit = casing(&s, None);
    assert_eq!(in_transit["in_transit"], "10", "40 shipped, 30 received");
    assert_eq!(in_transit["on_hand"], "0");

    // The hold on the casing lot blocks its stock wherever it sits.
    publish(
        &js,
        QMS,
        &fixture("plugins/quality-webhook/fixtures/hold-placed.webhook"),
        "hold-1",
    )
    .await;
    projected(&js, &projection, 9, &host).await;
    let s = projected_state(&visibility).await;
    let at_wh1 = casing(&s, Some("WH1"));
    assert_eq!(at_wh1["blocked"], "20", "the lot is blocked at WH1: {s:#}");
    assert_eq!(at_wh1["available"], "0");
    assert_eq!(at_wh1["holds"], json!(["NCR-2026-0142"]));
    assert_eq!(casing(&s, None)["holds"], json!(["NCR-2026-0142"]));
    let holds = s["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0]["open"], true);
    assert_eq!(holds[0]["blocked_positions"], 1);

    // Its release unblocks it.
    publish(
        &js,
        QMS,
        &fixture("plugins/quality-webhook/fixtures/hold-released.webhook"),
        "hold-2",
    )
    .await;
    projected(&js, &projection, 10, &host).await;
    let s = projected_state(&visibility).await;
    assert_eq!(casing(&s, Some("WH1"))["blocked"], "0");
    assert_eq!(casing(&s, Some("WH1"))["holds"], json!([]));

    // A late duplicate: the placement resent after the release (a new message id), and a
    // shift report with an older state of WO-5001. Both reach the stream marked late and
    // change nothing.
    publish(
        &js,
        QMS,
        &fixture("plugins/quality-webhook/fixtures/hold-placed.webhook"),
        "hold-1-resent",
    )
    .await;
    publish(&js, MES, LATE_SHIFT.as_bytes(), "shift-1-late").await;
    projected(&js, &projection, 12, &host).await;
    let late = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        12,
        std::time::Duration::ZERO,
    )
    .await;
    let mut late_kinds: Vec<String> = late
        .iter()
        .filter(|e| e.json()["late"] == true)
        .map(|e| e.json()["type"].as_str().unwrap().to_owned())
        .collect();
    // Different raw subjects map in parallel: their events may land in either order.
    late_kinds.sort();
    assert_eq!(
        late_kinds,
        ["millrace.quality-hold.v1", "millrace.work-order-status.v1"],
        "both resends reached the projection marked late"
    );

    // The same event again on the stream (a copy outside the de-duplication window): its id
    // is applied already.
    let completion = late
        .iter()
        .find(|e| e.json()["type"] == "millrace.production-completion.v1")
        .unwrap();
    publish(
        &js,
        "canonical.production-completion.PLANT1",
        &completion.payload,
        "copy-1",
    )
    .await;
    projected(&js, &projection, 13, &host).await;

    let live = projected_state(&visibility).await;
    assert_eq!(
        live["inventory"],
        json!([
            {"site": "PLANT1", "item": "ASM-100", "location": "FG-01", "lot": "LOT-A1", "uom": "EA",
             "on_hand": "8", "blocked": "0", "available": "8", "in_transit": "0", "received": "0",
             "allocated": null, "holds": [], "unit_mismatches": 0, "updated": "2026-03-03T12:00:00+01:00"},
            {"site": "PLANT1", "item": "HSG-4410-A", "location": null, "lot": "L2026-0211", "uom": "EA",
             "on_hand": "0", "blocked": "0", "available": "0", "in_transit": "10", "received": "0",
             "allocated": null, "holds": [], "unit_mismatches": 0, "updated": "2026-03-03T00:00:00Z"},
            {"site": "PLANT1", "item": "HSG-4410-A", "location": "WH1", "lot": "L2026-0211", "uom": "EA",
             "on_hand": "20", "blocked": "0", "available": "20", "in_transit": "0", "received": "30",
             "allocated": null, "holds": [], "unit_mismatches": 0, "updated": "2026-03-03T06:30:00+01:00"}
        ]),
        "{live:#}"
    );
    let orders = live["work_orders"].as_array().unwrap();
    assert_eq!(orders.len(), 1, "{live:#}");
    let order = &orders[0];
    assert_eq!(order["work_order"], "WO-5001");
    assert_eq!(order["item"], "ASM-100");
    assert_eq!(
        order["state"], "completed",
        "the late 'started' did not win"
    );
    assert_eq!(order["state_since"], "2026-03-03T13:30:00+01:00");
    assert_eq!(order["planned"], json!({"amount": "10", "uom": "EA"}));
    assert_eq!(
        order["completed"],
        json!({"amount": "8", "uom": "EA"}),
        "the copy did not add"
    );
    assert_eq!(order["scrapped"], json!({"amount": "1", "uom": "EA"}));
    assert_eq!(
        order["reported_completed"],
        json!({"amount": "8", "uom": "EA"})
    );
    assert_eq!(
        order["consumed"],
        json!({"HSG-4410-A": {"amount": "10", "uom": "EA"}})
    );
    let holds = live["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(
        holds[0]["open"], false,
        "the late placement did not reopen it"
    );
    assert_eq!(holds[0]["action"], "released");
    assert_eq!(holds[0]["released_at"], "2026-03-04T15:02:10+01:00");
    assert_eq!(holds[0]["disposition"], "use-as-is");
    let commitments = live["commitments"].as_array().unwrap();
    assert_eq!(commitments.len(), 1, "{live:#}");
    let c = &commitments[0];
    assert_eq!(c["supplier"], "SUP-0042");
    assert_eq!(c["item"], "HSG-4410-A");
    assert_eq!(c["firm"], json!({"amount": "40", "uom": "EA"}));
    assert_eq!(c["forecast"], json!({"amount": "100", "uom": "EA"}));
    assert_eq!(c["received"], "30");
    assert_eq!(c["in_transit"], "10");
    assert_eq!(c["unit_mismatches"], 0, "every quantity in EA");
    assert_eq!(order["unit_mismatches"], 0, "every quantity in EA");
    let sources: Vec<(String, u64)> = live["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(!s["last_published"].as_str().unwrap().is_empty());
            (
                format!(
                    "{}/{}",
                    s["site"].as_str().unwrap(),
                    s["system"].as_str().unwrap()
                ),
                s["events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("PLANT1/edi".to_owned(), 3),
            ("PLANT1/mes".to_owned(), 7),
            ("PLANT1/qms".to_owned(), 3)
        ]
    );

    // The CLI shows the same and refuses to rebuild under a running projection.
    let config_arg = config_path.to_str().unwrap();
    let shown = millrace(&[
        "projection",
        "show",
        "inventory",
        "--item",
        "HSG-4410-A",
        "--json",
        "-c",
        config_arg,
    ]);
    assert!(shown.status.success(), "{}", text(&shown));
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        shown,
        Value::Array(live["inventory"].as_array().unwrap()[1..].to_vec())
    );
    let table = millrace(&["projection", "show", "work-orders", "-c", config_arg]);
    assert!(text(&table).contains("WO-5001"), "{}", text(&table));
    // A filter matching nothing says so; it asked whether the projection was running.
    let none = millrace(&[
        "projection",
        "show",
        "inventory",
        "--item",
        "NO-SUCH-ITEM",
        "-c",
        config_arg,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&none.stdout),
        "nothing matches --item NO-SUCH-ITEM\n"
    );
    assert_clean_failure(
        &millrace(&["projection", "rebuild", "-c", config_arg]),
        "stop it",
    );

    // Rebuilt from the stream with the host stopped: the same state.
    assert_eq!(host.stop().code(), Some(0));
    let rebuilt = millrace(&["projection", "rebuild", "-c", config_arg]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    assert!(
        text(&rebuilt).contains("13 event(s) read, 10 applied, 3 unchanged, 0 unreadable"),
        "{}",
        text(&rebuilt)
    );
    assert_eq!(
        projected_state(&visibility).await,
        live,
        "the rebuild gives the same state"
    );

    // A restarted host resumes after the last event: nothing is applied twice.
    let host = Host::start(&config_path, &js, &consumer_refs).await;
    projected(&js, &projection, 13, &host).await;
    assert_eq!(projected_state(&visibility).await, live);
}

#[test]
fn every_projection_command_has_help_and_fails_cleanly_without_nats() {
    for args in [
        vec!["projection", "--help"],
        vec!["projection", "rebuild", "--help"],
        vec!["projection", "show", "--help"],
    ] {
        let o = millrace(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("Usage:"), "{args:?}");
    }
    let port = millrace::transport::local_server::free_port().unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    for what in [
        "inventory",
        "work-orders",
        "holds",
        "commitments",
        "sources",
    ] {
        let o = millrace(&["projection", "show", what, "--nats", &url]);
        assert_clean_failure(&o, "cannot connect to NATS");
    }
    assert_clean_failure(
        &millrace(&["projection", "rebuild", "--nats", &url]),
        "cannot connect to NATS",
    );
    assert_clean_failure(
        &millrace(&["projection", "show", "stock"]),
        "invalid value 'stock'",
    );
}

/// A postings answer without the ages, which move with the clock.
fn without_ages(mut view: Value) -> Value {
    for target in view["targets"].as_array_mut().unwrap() {
        target["oldest_pending_seconds"] = Value::Null;
    }
    for posting in view["postings"].as_array_mut().unwrap() {
        posting["pending_seconds"] = Value::Null;
    }
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postings_are_projected_from_both_streams_and_rebuild_the_same() {
    use crate::stand_in_erp::{GateScenario, completion, hold, publish_event, until};
    use millrace::projection::postings::{PostingFilter, PostingState, RouteProgress};
    let scenario = GateScenario::start().await;
    let (js, config) = (scenario.js.clone(), scenario.config.clone());
    let visibility = Visibility::open(&js, &config.projection).await.unwrap();

    // A hold placed (three postings), then completions: of a free lot (posted), of a lot the
    // ERP does not know (rejected), of a work order the plugin cannot render (given up before
    // the ERP answered: rejected, from its dead letter), of the held lot (pending at the gate).
    let (placed, event) = hold(1, "placed", "LOT-H");
    publish_event(&js, "canonical.quality-hold.PLANT1", &placed, &event).await;
    until("the placement fanned out", || {
        scenario.paths_of(&placed).len() >= 3
    })
    .await;
    let started = Instant::now();
    loop {
        let filter = millrace::projection::query::Filter {
            lot: Some("LOT-H".into()),
            ..Default::default()
        };
        if visibility
            .holds(&filter)
            .await
            .unwrap()
            .iter()
            .any(|h| h.open)
        {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "the hold was never projected");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (free, e) = completion(2, "LOT-FREE");
    publish_event(&js, "canonical.production-completion.PLANT1", &free, &e).await;
    let (unknown, e) = completion(3, "LOT-UNKNOWN");
    publish_event(&js, "canonical.production-completion.PLANT1", &unknown, &e).await;
    let (unrendered, mut e) = completion(4, "LOT-4");
    e["data"]["work_order"] = "WO-INCOMPLETE".into();
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &unrendered,
        &e,
    )
    .await;
    let (held, e) = completion(1, "LOT-H");
    publish_event(&js, "canonical.production-completion.PLANT1", &held, &e).await;

    let everything = PostingFilter::default();
    let started = Instant::now();
    let live = loop {
        let progress = RouteProgress::read(&js, &config).await;
        let view = visibility.postings(&everything, &progress).await.unwrap();
        let states: Vec<(&str, PostingState)> = view
            .postings
            .iter()
            .map(|p| (p.event_id.as_str(), p.state))
            .collect();
        if states.contains(&(free.as_str(), PostingState::Posted))
            && states.contains(&(unknown.as_str(), PostingState::Rejected))
            && states.contains(&(unrendered.as_str(), PostingState::Rejected))
            && states.contains(&(held.as_str(), PostingState::Pending))
            && states.len() == 7
        {
            break serde_json::to_value(&view).unwrap();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the postings never showed posted, rejected and pending: {states:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let document = scenario.erp.ledger.lock().unwrap().bookings[&free].clone();
    let of = |id: &str| -> Value {
        live["postings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["event_id"] == id)
            .cloned()
            .unwrap()
    };
    let mut posted = of(&free);
    let (acknowledged_at, delay) = (
        posted["acknowledged_at"].take(),
        posted["delay_seconds"].take(),
    );
    assert!(acknowledged_at.is_string() && delay.as_f64().unwrap() > 0.0);
    assert_eq!(
        posted,
        json!({
            "route": "completions", "event_id": free, "kind": "production-completion",
            "site": "PLANT1", "business_key": "WO-2@PLANT1", "source_time": "2026-11-30T03:00:00Z",
            "target": "erp", "request": 0, "state": "posted", "document": document, "reason": null,
            "status": 201, "acknowledged_at": null, "delay_seconds": null, "pending_seconds": null
        })
    );
    let rejected = of(&unknown);
    assert_eq!(
        (&rejected["state"], &rejected["reason"], &rejected["status"]),
        (
            &json!("rejected"),
            &json!("status 422: lot LOT-UNKNOWN is not known to the ERP"),
            &json!(422)
        )
    );
    // No answer, so no acknowledgement: the dead letter says why, and there is no status.
    let not_posted = of(&unrendered);
    assert_eq!(
        (
            &not_posted["state"],
            &not_posted["target"],
            &not_posted["business_key"],
            &not_posted["status"],
            &not_posted["request"]
        ),
        (
            &json!("rejected"),
            &json!("erp"),
            &json!("WO-4@PLANT1"),
            &Value::Null,
            &Value::Null
        ),
        "{not_posted}"
    );
    let why = not_posted["reason"].as_str().unwrap();
    assert!(
        why.starts_with("not posted: incomplete-event: ") && why.contains("no lot to receive"),
        "{why}"
    );
    let pending = of(&held);
    assert_eq!(
        (&pending["state"], &pending["target"], &pending["document"]),
        (&json!("pending"), &json!("erp"), &Value::Null)
    );
    let erp = live["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "erp")
        .unwrap();
    assert_eq!(
        (&erp["posted"], &erp["rejected"], &erp["pending"]),
        (&json!(2), &json!(2), &json!(1)),
        "{erp}"
    );
    assert_eq!(erp["oldest_pending"], "2026-11-30T03:00:00Z");
    let rejections = json!({
        "status 422: lot LOT-UNKNOWN is not known to the ERP": 1,
        why: 1
    });
    assert_eq!(erp["rejections"], rejections);
    assert_eq!(erp["delay"]["count"], 2);
    assert_eq!(
        live["sites"],
        json!([{"site": "PLANT1", "posted": 4, "rejected": 2, "pending": 1,
                "rejections": rejections}])
    );

    // Which production orders failed to post: the filter, and the CLI.
    let failed = visibility
        .postings(
            &PostingFilter {
                kind: Some("production-completion".into()),
                state: Some(PostingState::Rejected),
                ..Default::default()
            },
            &RouteProgress::read(&js, &config).await,
        )
        .await
        .unwrap();
    let failed: Vec<&str> = failed
        .postings
        .iter()
        .map(|p| p.business_key.as_str())
        .collect();
    assert_eq!(failed, ["WO-3@PLANT1", "WO-4@PLANT1"]);
    let config_arg = scenario.config_path.to_str().unwrap().to_owned();
    let shown = millrace(&[
        "projection",
        "show",
        "postings",
        "--state",
        "rejected",
        "-c",
        &config_arg,
    ]);
    let shown = text(&shown);
    assert!(
        shown
            .lines()
            .any(|l| l.split_whitespace().take(4).eq(["erp", "2", "2", "1"])),
        "the erp target: 2 posted, 2 rejected, 1 pending:\n{shown}"
    );
    assert!(
        shown.lines().any(|l| l.starts_with("rejected")
            && l.contains("WO-3@PLANT1")
            && l.contains("status 422: lot LOT-UNKNOWN is not known to the ERP")),
        "{shown}"
    );

    // `millrace status` shows the figures beside the host's own target state.
    let status = text(&millrace(&["status", "-c", &config_arg]));
    assert!(
        status.lines().any(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            t.len() > 7 && t[..3] == ["erp", "http", "up"] && t[4..7] == ["2", "2", "1"]
        }),
        "the erp target with 2 posted, 2 rejected, 1 pending:\n{status}"
    );

    // Stopped, rebuilt from CANONICAL, then POSTING, then the dead letters: the same postings.
    let _nats = scenario.stop().await;
    let report = Projection::open(&js, &config)
        .await
        .unwrap()
        .rebuild()
        .await
        .unwrap();
    assert_eq!(report.acknowledgements, 5, "{report:?}");
    assert_eq!(
        report.dead_letters, 2,
        "the rejection's and the render error's: {report:?}"
    );
    assert_eq!(report.records[5], 5, "posting records: {report:?}");
    let rebuilt = visibility
        .postings(&everything, &RouteProgress::read(&js, &config).await)
        .await
        .unwrap();
    assert_eq!(
        without_ages(serde_json::to_value(&rebuilt).unwrap()),
        without_ages(live),
        "the rebuild gives the same postings"
    );
}
