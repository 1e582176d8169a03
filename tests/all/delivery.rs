//! Governed delivery against a real nats-server, each fault injected by the test: every raw
//! message ends as its canonical events exactly once or as one dead letter, through host
//! crashes, a server restart, resends, out-of-order sources, redrives and replays.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;
use async_nats::jetstream;
use time::format_description::well_known::Rfc3339;

const CONSUMER: &str = "millrace_steady__raw_test__star__cmd";

fn steady_route(plugin: &Path, extra: &str) -> String {
    format!(
        "[routes.steady]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nack_wait = \"2s\"\n{extra}\n",
        plugin.display().to_string()
    )
}

const SHIFT_REPORT_CONSUMER: &str = "millrace_mes__raw_mes__star__shift-report";

/// The folder of mes-shift-report and a host config serving it on `raw.mes.*.shift-report` with
/// `plugin_config` (the route's `config` table, inline).
fn shift_report_route(
    nats: &Nats,
    plugin_config: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = plugin("plugins/mes-shift-report");
    let config = nats.config(&format!(
        "[routes.mes]\nsubjects = [\"raw.mes.*.shift-report\"]\nplugin = {:?}\nconfig = {{ {plugin_config} }}\n",
        dir.display().to_string()
    ));
    (dir, config)
}

/// A host serving `misbehave` packaged as `version` in `versions` on the steady route, and its
/// config file; version 2.0.0 gets `fixed = "yes"`, so it maps what 1.0.0 rejects (`fixme`).
async fn misbehave_at(
    nats: &Nats,
    js: &jetstream::Context,
    versions: &Path,
    version: &str,
) -> (std::path::PathBuf, Host) {
    let dir = plugin_version("tests/guests/misbehave", version, versions);
    let fixed = if version == "2.0.0" {
        "config = { fixed = \"yes\" }"
    } else {
        ""
    };
    let config = nats.config(&steady_route(&dir, fixed));
    let host = Host::start(&config, js, &[CONSUMER]).await;
    (config, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_messages_through_three_host_kills() {
    const TOTAL: usize = 20_000;
    let nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    let publisher = spawn_publisher(js.clone(), TOTAL, mixed);
    for kill_at in [4_000, 9_000, 14_000] {
        wait_processed(&js, kill_at, &host).await;
        host.kill();
        let at_kill = processed(&js).await.unwrap();
        assert!(
            at_kill < TOTAL as u64,
            "killed mid-stream ({at_kill} of {TOTAL} done)"
        );
        host = Host::start(&config, &js, &[CONSUMER]).await;
    }
    publisher.await.unwrap();
    wait_processed(&js, TOTAL as u64, &host).await;
    assert_accounted(&js, TOTAL).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_rides_through_a_nats_server_restart() {
    const TOTAL: usize = 3_000;
    let mut nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    let publisher = spawn_publisher(js.clone(), TOTAL, mixed);
    wait_processed(&js, 1_000, &host).await;
    nats.restart();
    publisher.await.unwrap();
    wait_processed(&js, TOTAL as u64, &host).await;
    assert_accounted(&js, TOTAL).await;
    assert!(
        host.is_running(),
        "the same host process carried on:\n{}",
        host.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_document_produces_no_second_event() {
    let nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let host = Host::start(&config, &js, &[CONSUMER]).await;
    // The same document (interchange 000123, set 0001) resent with a new message id, then
    // another document.
    publish(&js, "raw.test.lab.cmd", b"txn 000123:0001 5", "first-send").await;
    publish(&js, "raw.test.lab.cmd", b"txn 000123:0001 5", "resend").await;
    publish(&js, "raw.test.lab.cmd", b"txn 000124:0001 6", "next").await;
    let events = read_stream(&js, "CANONICAL", "canonical.>", 2, Duration::from_secs(2)).await;
    let txns: Vec<&str> = events
        .iter()
        .map(|e| e.json()["sourcetransaction"].as_str().unwrap().to_owned())
        .map(|t| Box::leak(t.into_boxed_str()) as &str)
        .collect();
    assert_eq!(
        txns,
        ["000123:0001", "000124:0001"],
        "the resend adds nothing"
    );
    assert_eq!(try_stream_len(&js, "DLQ").await, Some(0));
    assert!(
        host.log_text()
            .contains("another message already delivered"),
        "{}",
        host.log_text()
    );

    // A replay maps the resend again, and it adds nothing again: through the same version
    // (its events have their own ids, so only the ledger knows), and through another.
    let cfg = config.to_str().unwrap();
    let same = millrace(&["replay", "steady", "--from", "1", "--config", cfg]);
    assert!(same.status.success(), "{}", text(&same));
    assert!(
        text(&same).contains(
            "3 raw message(s), 0 event(s) published, 2 already on CANONICAL from this version, \
             1 of a resend skipped"
        ),
        "{}",
        text(&same)
    );
    let versions = tempfile::tempdir().unwrap();
    let v2 = plugin_version("tests/guests/misbehave", "2.0.0", versions.path());
    let other = millrace(&[
        "replay",
        "steady",
        "--from",
        "1",
        "--plugin",
        v2.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert!(other.status.success(), "{}", text(&other));
    assert!(
        text(&other).contains("3 raw message(s), 2 event(s) published, 0 already on CANONICAL from this version, 1 of a resend skipped"),
        "{}",
        text(&other)
    );
    let events = read_stream(&js, "CANONICAL", "canonical.>", 4, Duration::from_secs(1)).await;
    let resent = events
        .iter()
        .filter(|e| e.json()["sourcetransaction"] == "000123:0001")
        .count();
    assert_eq!(
        resent, 2,
        "the document live, and once replayed: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_shift_report_produces_no_second_event() {
    let nats = Nats::start();
    let (dir, config) = shift_report_route(&nats, r#"site = "PLANT1""#);
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[SHIFT_REPORT_CONSUMER]).await;
    let report = std::fs::read(dir.join("fixtures/ok-shift-a-basic.txt")).unwrap();
    publish(
        &js,
        "raw.mes.plant1.shift-report",
        &report,
        "mes-export-0815",
    )
    .await;
    publish(
        &js,
        "raw.mes.plant1.shift-report",
        &report,
        "mes-export-0815-retry",
    )
    .await;
    let events = read_stream(&js, "CANONICAL", "canonical.>", 5, Duration::from_secs(2)).await;
    assert_eq!(events.len(), 5, "one report's five events, once");
}

/// A route of two plants whose MES numbers its transactions per plant: the same transaction ids
/// at both plants are two plants' postings, not a resend; a resend at one plant still adds
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_transaction_ids_at_two_plants_of_one_route_are_both_delivered() {
    let nats = Nats::start();
    let (dir, config) =
        shift_report_route(&nats, r#""site.1000" = "PLANT1", "site.2000" = "PLANT2""#);
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[SHIFT_REPORT_CONSUMER]).await;
    let plant_1000 = std::fs::read_to_string(dir.join("fixtures/ok-shift-a-basic.txt")).unwrap();
    let plant_2000 = plant_1000.replacen("|1000|", "|2000|", 1);
    assert_ne!(plant_1000, plant_2000, "the fixture names plant 1000");
    publish(
        &js,
        "raw.mes.plant1.shift-report",
        plant_1000.as_bytes(),
        "p1000-a",
    )
    .await;
    publish(
        &js,
        "raw.mes.plant2.shift-report",
        plant_2000.as_bytes(),
        "p2000-a",
    )
    .await;
    publish(
        &js,
        "raw.mes.plant1.shift-report",
        plant_1000.as_bytes(),
        "p1000-again",
    )
    .await;
    let events = read_stream(&js, "CANONICAL", "canonical.>", 10, Duration::from_secs(2)).await;
    let at = |site: &str| {
        let tail = format!(".{site}");
        events.iter().filter(|e| e.subject.ends_with(&tail)).count()
    };
    assert_eq!(
        (at("PLANT1"), at("PLANT2"), events.len()),
        (5, 5, 10),
        "each plant's five events once: {:?}",
        events
            .iter()
            .map(|e| e.subject.as_str())
            .collect::<Vec<_>>()
    );
}

/// Claims an older host wrote (keyed by route and transaction, without the site) still hold
/// after an upgrade: a resend of what it delivered adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_of_what_an_older_host_delivered_adds_nothing() {
    let nats = Nats::start();
    let (dir, config) = shift_report_route(&nats, r#"site = "PLANT1""#);
    let js = jetstream::new(nats.client().await);
    let ledger = millrace::transport::key_value(
        &js,
        "millrace-idempotency",
        Duration::from_secs(72 * 3600),
        "millrace: source transactions already delivered, per route",
    )
    .await
    .unwrap();
    let report = std::fs::read_to_string(dir.join("fixtures/ok-shift-a-basic.txt")).unwrap();
    // What the older host claimed: the report's five transactions, for its raw message.
    for n in 1..=5 {
        let txn = format!("TX-2603020{n}");
        assert!(report.contains(&txn), "{txn} is in the fixture");
        let key = format!(
            "mes.{}",
            &millrace::digest::sha256_hex(txn.as_bytes())[..40]
        );
        ledger.put(key, "mes-export-0815\n1".into()).await.unwrap();
    }
    let _host = Host::start(&config, &js, &[SHIFT_REPORT_CONSUMER]).await;
    publish(
        &js,
        "raw.mes.plant1.shift-report",
        report.as_bytes(),
        "mes-export-0815-retry",
    )
    .await;
    // Another report of the same plant, new transactions: delivered, after the resend.
    let next = report.replace("TX-260302", "TX-260303");
    publish(
        &js,
        "raw.mes.plant1.shift-report",
        next.as_bytes(),
        "mes-export-0816",
    )
    .await;
    let events = read_stream(&js, "CANONICAL", "canonical.>", 5, Duration::from_secs(2)).await;
    let transactions: Vec<String> = events
        .iter()
        .map(|e| {
            e.json()["sourcetransaction"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        events.len() == 5 && transactions.iter().all(|t| t.starts_with("TX-260303")),
        "only the new report's events: {transactions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_event_for_a_key_is_marked_late() {
    let nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    for (i, at) in [
        "2026-03-02T10:00:00Z",
        "2026-03-02T09:00:00+00:00",
        "2026-03-02T12:00:00+01:00",
        "2026-03-02T11:30:00Z",
    ]
    .iter()
    .enumerate()
    {
        publish(
            &js,
            "raw.test.lab.cmd",
            format!("at {at} WO-7").as_bytes(),
            &format!("at{i}"),
        )
        .await;
    }
    let events = read_stream(&js, "CANONICAL", "canonical.>", 4, Duration::from_secs(1)).await;
    let late: Vec<bool> = events.iter().map(|e| e.json()["late"] == true).collect();
    // 10:00, then 09:00 (older: late), then 11:00Z (newer), then 11:30Z (newer).
    assert_eq!(late, [false, true, false, false]);
    assert!(
        events[0].json().get("late").is_none(),
        "on time events carry no late flag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_is_redriven_through_the_fixed_version_once() {
    let nats = Nats::start();
    let versions = tempfile::tempdir().unwrap();
    let js = jetstream::new(nats.client().await);
    let (_, mut host) = misbehave_at(&nats, &js, versions.path(), "1.0.0").await;
    publish(&js, "raw.test.lab.cmd", b"fixme 42", "needs-fix").await;
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(
        letters[0].header("Millrace-Error"),
        Some("needs the fixed plugin")
    );
    let sequence = letters[0].sequence.to_string();

    // Deploy the fixed version: the host now runs v2.
    host.stop();
    let (config, _host) = misbehave_at(&nats, &js, versions.path(), "2.0.0").await;
    let cfg = config.to_str().unwrap();

    let listed = millrace(&["dlq", "list", "--config", cfg]);
    assert!(
        text(&listed).contains("needs the fixed plugin"),
        "{}",
        text(&listed)
    );
    let shown = millrace(&["dlq", "show", &sequence, "--config", cfg]);
    assert!(
        text(&shown).contains("fixme 42"),
        "the original payload: {}",
        text(&shown)
    );

    let wrong = millrace(&[
        "dlq",
        "redrive",
        &sequence,
        "--config",
        cfg,
        "--version",
        "misbehave@1.0.0",
    ]);
    assert_clean_failure(
        &wrong,
        "serves misbehave@2.0.0, and misbehave@1.0.0 cannot be loaded",
    );

    let redriven = millrace(&[
        "dlq",
        "redrive",
        &sequence,
        "--config",
        cfg,
        "--version",
        "misbehave@2.0.0",
    ]);
    assert!(redriven.status.success(), "{}", text(&redriven));
    assert!(
        text(&redriven).contains("1 event(s) published"),
        "{}",
        text(&redriven)
    );
    let events = read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::from_secs(1)).await;
    assert_eq!(events.len(), 1, "its events, once");
    assert_eq!(events[0].json()["data"]["work_order"], "WO-42");
    assert_eq!(events[0].json()["pluginversion"], "2.0.0");
    assert_eq!(
        try_stream_len(&js, "DLQ").await,
        Some(0),
        "the dead letter is gone"
    );

    let again = millrace(&["dlq", "redrive", &sequence, "--config", cfg]);
    assert_clean_failure(&again, &format!("no dead letter with sequence {sequence}"));
    assert_eq!(try_stream_len(&js, "CANONICAL").await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_message_too_large_to_copy_into_its_dead_letter_is_redriven_from_raw() {
    let nats = Nats::start();
    let versions = tempfile::tempdir().unwrap();
    let js = jetstream::new(nats.client().await);
    let (_, mut host) = misbehave_at(&nats, &js, versions.path(), "1.0.0").await;
    // Nearly as large as one NATS message may be (the server's max_payload, 1 MiB, headers
    // included): with a letter's headers added it would not fit.
    let mut payload = b"fixme 42 ".to_vec();
    payload.resize(1024 * 1024 - 64, b'x');
    publish(&js, "raw.test.lab.cmd", &payload, "big-fixme").await;
    publish(&js, "raw.test.lab.cmd", b"ok 7", "after").await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(events[0].json()["data"]["work_order"], "WO-7");
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(letters.len(), 1, "one letter");
    let letter = &letters[0];
    assert_eq!(
        letter.header("Millrace-Error"),
        Some("needs the fixed plugin")
    );
    assert_eq!(letter.header("Millrace-Raw-Sequence"), Some("1"));
    assert!(letter.payload.is_empty(), "the letter copies no payload");
    let why = letter.header("Millrace-Raw-Not-Copied").unwrap_or_default();
    assert!(
        why.contains("max_payload") && why.contains("RAW's message 1"),
        "{why}"
    );
    host.assert_ended_once();
    let sequence = letter.sequence.to_string();

    host.stop();
    let (config, _host) = misbehave_at(&nats, &js, versions.path(), "2.0.0").await;
    let cfg = config.to_str().unwrap();
    let shown = millrace(&["dlq", "show", &sequence, "--config", cfg]);
    assert!(
        text(&shown).contains(&format!("payload: {} bytes", payload.len()))
            && text(&shown).contains("fixme 42 xxx"),
        "the payload, read from RAW: {}",
        &text(&shown)[..2000.min(text(&shown).len())]
    );
    let redriven = millrace(&[
        "dlq",
        "redrive",
        &sequence,
        "--config",
        cfg,
        "--version",
        "misbehave@2.0.0",
    ]);
    assert!(
        text(&redriven).contains("1 event(s) published"),
        "{}",
        text(&redriven)
    );
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        2,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].json()["data"]["work_order"], "WO-42");
    assert_eq!(
        try_stream_len(&js, "DLQ").await,
        Some(0),
        "the letter is gone"
    );
}

/// A publisher chooses its headers: a message id, a trace header and a header of its own of
/// 20 KB each fit in a raw message (JetStream stores up to 64 KiB of headers), but copied into
/// every event or into a dead letter they would pass what JetStream stores, and the message
/// would be redelivered for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_headers_near_the_message_size_are_mapped_and_dead_lettered_once() {
    let nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let host = Host::start(&config, &js, &[CONSUMER]).await;
    let big_headers = |id: char| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.to_string().repeat(20_000).as_str());
        headers.insert("X-Note", "n".repeat(20_000).as_str());
        headers.insert("traceparent", "t".repeat(20_000).as_str());
        headers
    };
    for (payload, id) in [("txn T-1 3", 'I'), ("reject", 'J')] {
        js.publish_with_headers("raw.test.lab.cmd", big_headers(id), payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    publish(&js, "raw.test.lab.cmd", b"ok 5", "after").await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        2,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].json()["data"]["work_order"], "WO-3");
    assert_eq!(events[1].json()["data"]["work_order"], "WO-5");
    assert_eq!(
        events[0].header("traceparent"),
        None,
        "what is no traceparent is not passed on"
    );
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.header("Millrace-Error"), Some("rejected on purpose"));
    assert!(letter.header("Millrace-Raw-Not-Copied").is_some());
    let id = letter.header("Nats-Msg-Id").unwrap_or_default();
    assert!(
        id.starts_with("dlq:steady:sha256:") && id.len() < 100,
        "{id:.200}"
    );
    host.assert_ended_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_republishes_nothing_the_same_version_published() {
    let nats = Nats::start();
    let versions = tempfile::tempdir().unwrap();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    for n in 1..=3 {
        publish(
            &js,
            "raw.test.lab.cmd",
            format!("ok {n}").as_bytes(),
            &format!("r{n}"),
        )
        .await;
    }
    read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        3,
        Duration::from_millis(200),
    )
    .await;
    let cfg = config.to_str().unwrap();

    let same = millrace(&["replay", "steady", "--from", "1", "--config", cfg]);
    assert!(same.status.success(), "{}", text(&same));
    assert!(
        text(&same).contains("3 raw message(s), 0 event(s) published, 3 already on CANONICAL"),
        "{}",
        text(&same)
    );

    let v2 = plugin_version("tests/guests/misbehave", "2.0.0", versions.path());
    let other = millrace(&[
        "replay",
        "steady",
        "--from",
        "2",
        "--plugin",
        v2.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert!(other.status.success(), "{}", text(&other));
    assert!(
        text(&other).contains("2 raw message(s), 2 event(s) published"),
        "{}",
        text(&other)
    );
    let events = read_stream(&js, "CANONICAL", "canonical.>", 5, Duration::from_secs(1)).await;
    assert_eq!(events.len(), 5);
    let replayed: Vec<_> = events
        .iter()
        .filter(|e| e.json().get("replayid").is_some())
        .collect();
    assert_eq!(replayed.len(), 2);
    assert!(
        replayed
            .iter()
            .all(|e| e.json()["pluginversion"] == "2.0.0")
    );
}

/// A replay leaves to the live route what its consumer has not settled yet. Raw messages that
/// arrived while the host was away were replayed first, their only events marked as replayed,
/// and the host's live copies dropped as duplicates when it came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_stops_where_the_live_route_has_not_settled() {
    let nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    let publish_ok = |range: std::ops::RangeInclusive<u32>| {
        let js = js.clone();
        async move {
            for n in range {
                let payload = format!("ok {n}");
                publish(
                    &js,
                    "raw.test.lab.cmd",
                    payload.as_bytes(),
                    &format!("r{n}"),
                )
                .await;
            }
        }
    };
    publish_ok(1..=3).await;
    read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        3,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(host.stop().code(), Some(0), "{}", host.log_text());
    publish_ok(4..=6).await;

    let cfg = config.to_str().unwrap();
    let replayed = millrace(&["replay", "steady", "--from", "1", "--config", cfg]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    assert!(
        text(&replayed).contains("3 raw message(s), 0 event(s) published")
            && text(&replayed).contains("stopped before RAW 4"),
        "{}",
        text(&replayed)
    );
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    let events = read_stream(&js, "CANONICAL", "canonical.>", 6, Duration::from_secs(1)).await;
    assert_eq!(events.len(), 6);
    assert!(
        events.iter().all(|e| e.json().get("replayid").is_none()),
        "the live route's events are its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_a_system_that_does_not_own_them_are_dead_lettered() {
    let nats = Nats::start();
    let route = steady_route(
        &plugin("tests/guests/misbehave"),
        "config = { site = \"PLANT1\" }",
    );
    let config = nats.config(&format!(
        "{route}\n[[governance.ownership]]\nkind = \"production-completion\"\nsite = \"PLANT1\"\nowner = \"mes\"\n"
    ));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    publish(&js, "raw.test.plant1.cmd", b"ok 1", "from-test-system").await;
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(letters[0].header("Millrace-Error-Kind"), Some("not-owner"));
    assert!(
        letters[0]
            .header("Millrace-Error")
            .unwrap()
            .contains("owned by mes, not by test")
    );
    assert_eq!(try_stream_len(&js, "CANONICAL").await, Some(0));
}

/// The digest the misbehave guest's `echo` command reports for the raw message it was given.
fn echo_digest(subject: &str, headers: &[(String, String)], payload: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes.iter().chain(&[0u8]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(subject.as_bytes());
    for (name, value) in headers {
        feed(name.as_bytes());
        feed(value.as_bytes());
    }
    feed(payload);
    format!("echo:{hash:016x}")
}

/// Runs `millrace args`, which must succeed saying `says`, and returns the one canonical event
/// it published.
async fn the_event_of(js: &jetstream::Context, args: &[&str], says: &str) -> Stored {
    let out = millrace(args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(says), "{}", text(&out));
    let mut events = read_stream(
        js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 1, "one event");
    events.remove(0)
}

/// Deletes the CANONICAL stream and creates it empty, so an event id can be stored again.
async fn fresh_canonical(js: &jetstream::Context) {
    js.delete_stream("CANONICAL").await.unwrap();
    js.create_stream(jetstream::stream::Config {
        name: "CANONICAL".into(),
        subjects: vec!["canonical.>".into()],
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_sees_the_same_message_live_on_replay_and_on_redrive() {
    let nats = Nats::start();
    let guest = plugin("tests/guests/misbehave");
    // Two routes take the same message: `echo` maps it, `letters` rejects it into a dead letter.
    let routes = |letters_config: &str| {
        format!(
            "[routes.echo]\nsubjects = [\"raw.test.lab.echo\"]\nplugin = {p:?}\n\n\
             [routes.letters]\nsubjects = [\"raw.test.lab.echo\"]\nplugin = {p:?}\n{letters_config}\n",
            p = guest.display().to_string()
        )
    };
    let config = nats.config(&routes("config = { reject = \"yes\" }"));
    let cfg = config.to_str().unwrap().to_owned();
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(
        &config,
        &js,
        &[
            "millrace_echo__raw_test_lab_echo",
            "millrace_letters__raw_test_lab_echo",
        ],
    )
    .await;

    // Repeated names, names differing only in case, and an order that is not alphabetical.
    let mut headers = async_nats::HeaderMap::new();
    headers.append("X-Zeta", "last");
    headers.append("Nats-Msg-Id", "echo-1");
    headers.append("x-alpha", "zulu, sent first");
    headers.append("X-Alpha", "upper");
    headers.append("x-alpha", "alpha, sent second");
    headers.append(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    );
    headers.append("Millrace-Note", "a publisher's own header");
    let (subject, payload) = ("raw.test.lab.echo", b"echo from the line".to_vec());
    let raw_sequence = js
        .publish_with_headers(subject, headers.clone(), payload.clone().into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let given: Vec<(String, String)> = [
        ("Millrace-Note", "a publisher's own header"),
        ("Nats-Msg-Id", "echo-1"),
        ("X-Alpha", "upper"),
        ("X-Zeta", "last"),
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("x-alpha", "zulu, sent first"),
        ("x-alpha", "alpha, sent second"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(millrace::pipeline::plugin_headers(Some(&headers)), given);
    let seen = echo_digest(subject, &given, &payload);

    let live = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(500),
    )
    .await;
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(live.len(), 1, "{}", host.log_text());
    assert_eq!(live[0].json()["data"]["item"], seen.as_str(), "live");
    assert_eq!(letters[0].header("Millrace-Error"), Some(seen.as_str()));
    host.stop();

    fresh_canonical(&js).await;
    let at = raw_sequence.to_string();
    let replayed = the_event_of(
        &js,
        &[
            "replay", "echo", "--from", &at, "--to", &at, "--config", &cfg,
        ],
        "1 raw message(s), 1 event(s) published",
    )
    .await;
    assert_eq!(replayed.json()["data"], live[0].json()["data"], "replay");

    fresh_canonical(&js).await;
    let config = nats.config(&routes(""));
    let letter = letters[0].sequence.to_string();
    let redriven = the_event_of(
        &js,
        &[
            "dlq",
            "redrive",
            &letter,
            "--config",
            config.to_str().unwrap(),
        ],
        "1 event(s) published",
    )
    .await;
    assert_eq!(redriven.json()["data"], live[0].json()["data"], "redrive");
    // The id is the one the `letters` route gives that raw message and version live: an event
    // id derives from the route, so it is not the `echo` route's.
    let version = live[0].json()["pluginversion"].as_str().unwrap().to_owned();
    let lineage = |route| millrace::canonical::Lineage {
        raw_id: "echo-1",
        system: "test",
        route,
        plugin: "misbehave",
        plugin_version: &version,
        raw_sequence,
    };
    assert_eq!(
        live[0].json()["id"].as_str().unwrap(),
        millrace::canonical::event_id(&lineage("echo"), 0)
    );
    assert_eq!(
        redriven.json()["id"].as_str().unwrap(),
        millrace::canonical::event_id(&lineage("letters"), 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_failure_leaves_the_message_to_redelivery_and_never_dead_letters_it() {
    use millrace::delivery::{Delivered, Delivery, Mode};
    use millrace::pipeline::{Pipeline, RawInput};
    use millrace::workers::WorkerPool;

    let mut nats = Nats::start();
    let Staged {
        js,
        loader,
        delivery,
        ..
    } = Staged::on(&nats, &steady_route(&plugin("tests/guests/misbehave"), "")).await;
    let route = millrace::routes::Route::load(&loader, "steady", None)
        .await
        .unwrap();
    let pipeline = |delivery: &Delivery| {
        Pipeline::new(WorkerPool::start(1).unwrap(), delivery.clone(), js.clone())
    };
    let input = |payload: &str, sequence| {
        RawInput::new(
            "raw.test.lab.cmd".into(),
            None,
            payload.as_bytes().to_vec().into(),
            "RAW",
            sequence,
        )
    };

    // The workers are stopping: no call can be made, whatever the message would have done.
    let stopping = pipeline(&delivery);
    stopping.close();
    for (n, payload) in ["ok 1", "reject", "trap"].into_iter().enumerate() {
        let processed = stopping
            .process(&route, &input(payload, n as u64 + 1), &Mode::LIVE)
            .await;
        assert!(
            processed.outcome.is_err(),
            "{payload}: a stopping pool is a host failure: {:?}",
            processed.outcome
        );
    }

    // NATS is gone: the events cannot be stored.
    let serving = pipeline(&delivery);
    nats.server.stop();
    let processed = serving
        .process(&route, &input("ok 4", 4), &Mode::LIVE)
        .await;
    assert!(
        processed.outcome.is_err(),
        "NATS unavailable is a host failure: {:?}",
        processed.outcome
    );
    nats.restart();
    let started = Instant::now();
    while try_stream_len(&js, "DLQ").await.is_none() {
        assert!(started.elapsed() < PATIENCE, "NATS did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(try_stream_len(&js, "DLQ").await, Some(0), "no dead letter");

    // Redelivered once the host can work again, the same messages end by their own outcome.
    let redelivered = serving
        .process(&route, &input("reject", 5), &Mode::LIVE)
        .await;
    assert!(
        matches!(redelivered.outcome, Ok(Delivered::Failed(_))),
        "{:?}",
        redelivered.outcome
    );
    let redelivered = serving
        .process(&route, &input("ok 4", 4), &Mode::LIVE)
        .await;
    assert!(
        matches!(
            redelivered.outcome,
            Ok(Delivered::Events { published: 1, .. })
        ),
        "{:?}",
        redelivered.outcome
    );
    assert_eq!(try_stream_len(&js, "DLQ").await, Some(1));
    // A publish the client still sent after the failure is dropped as a duplicate: one event.
    assert_eq!(try_stream_len(&js, "CANONICAL").await, Some(1));
    serving.shutdown().await;
    stopping.shutdown().await;
}

/// A message whose events could not be stored after the order book took its marks (a host
/// failure: here CANONICAL refuses more messages) gets the same flags when it is tried again:
/// none of its events is late behind a later event of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_tried_again_is_not_late_behind_its_own_events() {
    use async_nats::jetstream::stream::DiscardPolicy;
    use millrace::delivery::{Delivered, Mode};
    use millrace::pipeline::{Pipeline, RawInput};
    use millrace::workers::WorkerPool;

    let nats = Nats::start();
    let Staged {
        js,
        loader,
        delivery,
        ..
    } = Staged::on(&nats, &steady_route(&plugin("tests/guests/misbehave"), "")).await;
    let route = millrace::routes::Route::load(&loader, "steady", None)
        .await
        .unwrap();
    let pipeline = Pipeline::new(WorkerPool::start(1).unwrap(), delivery, js.clone());
    // Two events of one work order, in the order they happened.
    let message = RawInput::new(
        "raw.test.lab.cmd".into(),
        None,
        b"at 2026-03-02T09:00:00Z WO-9 2026-03-02T10:00:00Z"
            .to_vec()
            .into(),
        "RAW",
        1,
    );

    let mut canonical = js
        .get_stream("CANONICAL")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    let limits = (canonical.max_messages, canonical.discard);
    (canonical.max_messages, canonical.discard) = (1, DiscardPolicy::New);
    js.update_stream(&canonical).await.unwrap();
    js.publish("canonical.filler.X", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let refused = pipeline.process(&route, &message, &Mode::LIVE).await;
    assert!(
        refused.outcome.is_err(),
        "a full stream is a host failure: {:?}",
        refused.outcome
    );
    // The first try stops at its first refused event; its second may still wait in the stream's
    // queue, and be stored once the limits are back (it was, once in CI: the retry then found it
    // stored). A publish after it on the same connection is answered after it: refused too, it
    // says the first try is over.
    let barrier = js
        .publish("canonical.filler.Y", "{}".into())
        .await
        .unwrap()
        .await;
    assert!(barrier.is_err(), "the stream is still full: {barrier:?}");

    (canonical.max_messages, canonical.discard) = limits;
    js.update_stream(&canonical).await.unwrap();
    let again = pipeline.process(&route, &message, &Mode::LIVE).await;
    assert!(
        matches!(
            again.outcome,
            Ok(Delivered::Events {
                published: 2,
                late: 0,
                ..
            })
        ),
        "{:?}",
        again.outcome
    );
    let stored = read_stream(
        &js,
        "CANONICAL",
        "canonical.production-completion.>",
        2,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(stored.len(), 2);
    for event in &stored {
        assert_eq!(event.json().get("late"), None, "{}", event.json());
    }
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stopped_while_nats_is_gone_exits_and_loses_nothing() {
    const TOTAL: usize = 2_000;
    let mut nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[host]\n", "[host]\ndrain_timeout = \"2s\"\n"),
    )
    .unwrap();
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    spawn_publisher(js.clone(), TOTAL, mixed).await.unwrap();
    wait_processed(&js, 1, &host).await;

    nats.server.stop();
    host.terminate();
    let asked = Instant::now();
    while host.is_running() {
        // It used to wait for NATS for ever; now it gives up after host.drain_timeout (2 s).
        assert!(
            asked.elapsed() < Duration::from_secs(60),
            "the host did not stop without NATS:\n{}",
            host.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        host.log_text().contains("host stopped"),
        "{}",
        host.log_text()
    );

    // What it had not acknowledged is redelivered to the next host: nothing lost, nothing twice.
    nats.restart();
    let host = Host::start(&config, &js, &[CONSUMER]).await;
    wait_processed(&js, TOTAL as u64, &host).await;
    assert_accounted(&js, TOTAL).await;
}

/// A route on `subject` serving the misbehave plugin with `config`.
fn misbehave_route(name: &str, subject: &str, config: &str) -> String {
    format!(
        "[routes.{name}]\nsubjects = [{subject:?}]\nplugin = {:?}\nconfig = {{ {config} }}\n\n",
        plugin("tests/guests/misbehave").display().to_string()
    )
}

/// Publishes `payload` to `subject` with exactly `headers` (names as written).
async fn publish_headers(
    js: &jetstream::Context,
    subject: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) {
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, *value);
    }
    js.publish_with_headers(subject.to_owned(), map, payload.to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

/// One route per plant on a shared subject, with the same plugin version: each route's events
/// are published. Their ids used to be the same (the route was not part of them), so JetStream
/// dropped one plant's events as copies of the other's while both routes counted them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_on_one_subject_with_one_plugin_version_both_publish() {
    let nats = Nats::start();
    let config = nats.config(&format!(
        "{}{}",
        misbehave_route("planta", "raw.test.shared.cmd", "site = \"SITEA\""),
        misbehave_route("plantb", "raw.test.shared.cmd", "site = \"SITEB\""),
    ));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    for n in 1..=3 {
        publish(
            &js,
            "raw.test.shared.cmd",
            format!("ok {n}").as_bytes(),
            &format!("shared-{n}"),
        )
        .await;
    }
    let events = read_stream(&js, "CANONICAL", "canonical.>", 6, Duration::from_secs(1)).await;
    let mut seen: Vec<String> = events
        .iter()
        .map(|e| {
            let json = e.json();
            format!(
                "{} {}",
                json["source"].as_str().unwrap(),
                json["data"]["work_order"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "/SITEA/test WO-1",
            "/SITEA/test WO-2",
            "/SITEA/test WO-3",
            "/SITEB/test WO-1",
            "/SITEB/test WO-2",
            "/SITEB/test WO-3",
        ]
    );
    host.stop().await;
}

/// JetStream de-duplicates on `Nats-Msg-Id` by its exact name. Two different messages that
/// carry the same `nats-msg-id` (a header JetStream ignores) are two messages: both are mapped.
/// The host used to read the name in any case and gave both one identity, so the second's
/// events were dropped as copies of the first's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_jetstream_ignores_gives_no_identity() {
    let nats = Nats::start();
    let config = nats.config(&misbehave_route("lab", "raw.test.lab.cmd", ""));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    for payload in [&b"ok 101"[..], b"ok 202"] {
        publish_headers(
            &js,
            "raw.test.lab.cmd",
            &[("nats-msg-id", "order-1")],
            payload,
        )
        .await;
    }
    let events = read_stream(&js, "CANONICAL", "canonical.>", 2, Duration::from_secs(1)).await;
    let orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(orders, ["WO-101", "WO-202"]);
    host.stop().await;
}

/// A raw message whose publisher asked JetStream to check the stream (`Nats-Expected-Stream:
/// RAW`, as clients do) is dead-lettered once. The header used to be copied into the letter as it
/// was, so the DLQ stream refused the letter and the message was redelivered, forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_jetstream_acts_on_do_not_stop_a_dead_letter() {
    let nats = Nats::start();
    let config = nats.config(&misbehave_route("lab", "raw.test.lab.cmd", ""));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    publish_headers(
        &js,
        "raw.test.lab.cmd",
        &[
            ("Nats-Msg-Id", "expects-raw"),
            ("Nats-Expected-Stream", "RAW"),
            ("X-Partner", "ACME"),
        ],
        b"reject",
    )
    .await;
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_secs(1)).await;
    assert_eq!(letters.len(), 1, "one dead letter");
    assert_eq!(
        letters[0].header("Millrace-Error-Kind"),
        Some("rejected-by-rule")
    );
    assert_eq!(
        letters[0].header("Nats-Expected-Stream"),
        None,
        "kept aside"
    );
    assert_eq!(letters[0].header("X-Partner"), Some("ACME"));
    // Answered once: acked, never redelivered.
    let raw = js.get_stream("RAW").await.unwrap();
    let started = Instant::now();
    let info = loop {
        let info = raw
            .consumer_info("millrace_lab__raw_test_lab_cmd")
            .await
            .unwrap()
            .clone();
        if info.num_ack_pending == 0 || started.elapsed() > Duration::from_secs(10) {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        info.num_ack_pending, 0,
        "the raw message is acked: {info:?}"
    );
    assert_eq!(
        info.delivered.consumer_sequence, 1,
        "delivered once: {info:?}"
    );
    assert_eq!(try_stream_len(&js, "DLQ").await, Some(1));
    host.stop().await;
}

/// The same document sent again with the same `Nats-Msg-Id` after RAW's duplicate window is a
/// second raw message: its source transaction was delivered by the first, so it adds nothing.
/// The ledger named a claim's holder by identity alone, took the second message for a crash
/// redelivery of the first, and published its events again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_id_after_the_duplicate_window_is_a_resend() {
    let nats = Nats::start();
    let config = nats.config(&format!(
        "[streams]\nduplicate_window = \"1s\"\n\n{}",
        misbehave_route("lab", "raw.test.lab.cmd", "")
    ));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    publish(&js, "raw.test.lab.cmd", b"txn 000777:0001 5", "asn-777").await;
    assert_eq!(
        read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::ZERO)
            .await
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    publish(&js, "raw.test.lab.cmd", b"txn 000777:0001 5", "asn-777").await;
    assert_eq!(stream_len(&js, "RAW").await, 2, "RAW stored it again");
    publish(&js, "raw.test.lab.cmd", b"ok 9", "after").await;
    let events = read_stream(&js, "CANONICAL", "canonical.>", 2, Duration::from_secs(1)).await;
    let orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(orders, ["WO-5", "WO-9"], "the resend adds nothing");
    host.stop().await;
}

/// Publishes `payload` on core NATS with a header block written byte for byte, as a client
/// other than async-nats may (async-nats will not write what it cannot read back).
async fn publish_header_block(url: &str, subject: &str, block: &[u8], payload: &[u8]) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let address = url.trim_start_matches("nats://");
    let (read, mut write) = tokio::net::TcpStream::connect(address)
        .await
        .unwrap()
        .into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    read.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("INFO"), "{line}");
    let mut frame = format!(
        "CONNECT {{\"headers\":true,\"verbose\":false,\"pedantic\":false}}\r\nHPUB {subject} {} {}\r\n",
        block.len(),
        block.len() + payload.len()
    )
    .into_bytes();
    frame.extend_from_slice(block);
    frame.extend_from_slice(payload);
    frame.extend_from_slice(b"\r\nPING\r\n");
    write.write_all(&frame).await.unwrap();
    loop {
        line.clear();
        read.read_line(&mut line).await.unwrap();
        assert!(!line.starts_with("-ERR"), "the server refused it: {line}");
        if line.starts_with("PONG") {
            break;
        }
    }
}

/// A raw message whose header async-nats cannot read (a Latin-1 value) dropped the host's
/// connection on every delivery and never left RAW. Now JetStream gives up on it after the
/// route's `max_deliveries`, and the host dead-letters it from the advisory; the messages
/// around it map, and the letter's payload can be redriven.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_message_the_client_cannot_read_is_dead_lettered() {
    let nats = Nats::start();
    let route = steady_route(&plugin("tests/guests/misbehave"), "max_deliveries = 2");
    let config = nats.config(&route);
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    let consumer = js
        .get_stream("RAW")
        .await
        .unwrap()
        .consumer_info(CONSUMER)
        .await
        .unwrap();
    assert_eq!(consumer.config.max_deliver, 2);

    let block = b"NATS/1.0\r\nX-Plant: M\xfcnchen\r\n\r\n";
    publish_header_block(&nats.url(), "raw.test.lab.cmd", block, b"ok 1").await;
    publish(&js, "raw.test.lab.cmd", b"ok 2", "ok-2").await;

    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(letters.len(), 1, "one letter");
    let letter = &letters[0];
    assert_eq!(letter.header("Millrace-Error-Kind"), Some("undeliverable"));
    assert_eq!(letter.header("Millrace-Raw-Sequence"), Some("1"));
    assert_eq!(
        letter.header("Millrace-Raw-Subject"),
        Some("raw.test.lab.cmd")
    );
    let error = letter.header("Millrace-Error").unwrap();
    assert!(
        error.contains("not UTF-8 text")
            && error.contains("X-Plant: M")
            && error.contains("2 times"),
        "{error}"
    );
    assert_eq!(letter.payload, b"ok 1");
    assert_eq!(
        letter.header("X-Plant"),
        None,
        "the unreadable header is not copied"
    );
    let events = read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::ZERO).await;
    assert_eq!(
        events[0].json()["data"]["work_order"],
        "WO-2",
        "the next message mapped"
    );

    let redriven = millrace(&[
        "dlq",
        "redrive",
        &letter.sequence.to_string(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(redriven.status.success(), "{}", text(&redriven));
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        2,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].json()["data"]["work_order"], "WO-1");

    // One too large for its letter to copy: `dlq show` and redrive read it from RAW, through
    // the JetStream API (a consumer's delivery of it would drop their connection and hang).
    let max_payload = js.client().server_info().max_payload;
    let mut big = b"ok 3 ".to_vec();
    big.resize(max_payload - block.len() - 16, b'.');
    publish_header_block(&nats.url(), "raw.test.lab.cmd", block, &big).await;
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::ZERO).await;
    let letter = &letters[0];
    assert!(
        letter.header("Millrace-Raw-Not-Copied").is_some(),
        "{letter:?}"
    );
    let sequence = letter.sequence.to_string();
    let cfg = config.to_str().unwrap();
    let shown = millrace_within(&["dlq", "show", &sequence, "--config", cfg]).await;
    assert!(shown.status.success(), "{}", text(&shown));
    assert!(text(&shown).contains("undeliverable"), "{}", text(&shown));
    let redriven = millrace_within(&["dlq", "redrive", &sequence, "--config", cfg]).await;
    assert!(redriven.status.success(), "{}", text(&redriven));
    let events = read_stream(&js, "CANONICAL", "canonical.>", 3, Duration::ZERO).await;
    assert_eq!(events[2].json()["data"]["work_order"], "WO-3");

    // A replay over them finishes: it names each unreadable message and goes on (it read RAW
    // with a consumer, which dropped its connection on the first and read it again, forever).
    let replayed = millrace_within(&["replay", "steady", "--from", "1", "--config", cfg]).await;
    let said = text(&replayed);
    assert!(!replayed.status.success(), "two messages failed: {said}");
    for sequence in [1, 3] {
        assert!(
            said.contains(&format!(
                "RAW {sequence} (raw.test.lab.cmd): undeliverable:"
            )) && said.contains("X-Plant: M"),
            "{said}"
        );
    }
    assert!(
        said.contains("3 raw message(s), 0 event(s) published, 1 already on CANONICAL")
            && said.contains("2 failed"),
        "{said}"
    );
    // From the time the second was stored: the server picks the first sequence, and the
    // range holds the second and the third.
    let second = js
        .get_stream("RAW")
        .await
        .unwrap()
        .get_raw_message(2)
        .await
        .unwrap();
    let from = second.time.format(&Rfc3339).unwrap();
    let replayed = millrace_within(&["replay", "steady", "--from", &from, "--config", cfg]).await;
    let said = text(&replayed);
    assert!(
        !said.contains("RAW 1 ") && said.contains("RAW 3 (raw.test.lab.cmd): undeliverable:"),
        "{said}"
    );
    assert!(
        said.contains("2 raw message(s), 0 event(s) published, 1 already on CANONICAL")
            && said.contains("1 failed"),
        "{said}"
    );
}

/// A replay of a route with two subject patterns reads each pattern's messages (the server
/// skips the rest), a message both match once, and nothing of another route's subjects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_reads_each_pattern_of_its_route_once() {
    let nats = Nats::start();
    let config = nats.config(&format!(
        "[routes.two]\nsubjects = [\"raw.a.*.cmd\", \"raw.*.x.cmd\"]\nplugin = {:?}\n",
        plugin("tests/guests/misbehave").display().to_string()
    ));
    let cfg = config.to_str().unwrap();
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    for (n, subject) in [
        "raw.a.p.cmd",
        "raw.other.q.cmd",
        "raw.b.x.cmd",
        "raw.a.x.cmd",
    ]
    .into_iter()
    .enumerate()
    {
        let payload = format!("ok {n}");
        publish(&js, subject, payload.as_bytes(), &format!("m-{n}")).await;
    }
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        3,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(events.len(), 3, "{events:?}");
    host.stop().await;
    let replayed = millrace_within(&["replay", "two", "--from", "1", "--config", cfg]).await;
    let said = text(&replayed);
    assert!(replayed.status.success(), "{said}");
    assert!(
        said.contains("3 raw message(s), 0 event(s) published, 3 already on CANONICAL"),
        "{said}"
    );
    let replayed = millrace_within(&["replay", "two", "--from", "3", "--config", cfg]).await;
    let said = text(&replayed);
    assert!(said.contains("2 raw message(s)"), "{said}");
    // A time that starts after the sequence given as the end: refused, not an empty success.
    let third = js
        .get_stream("RAW")
        .await
        .unwrap()
        .get_raw_message(3)
        .await
        .unwrap();
    let from = third.time.format(&Rfc3339).unwrap();
    let replayed = millrace_within(&[
        "replay", "two", "--from", &from, "--to", "2", "--config", cfg,
    ])
    .await;
    assert_clean_failure(&replayed, "--to 2 is before RAW sequence 3");
}

/// Runs the `millrace` binary to completion, failing the test should it take longer than
/// `PATIENCE` (a hang is the defect looked for).
async fn millrace_within(args: &[&str]) -> std::process::Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("millrace {args:?} did not finish"))
        .unwrap()
}

/// `dlq redrive --all` takes every letter it can through its route: a letter whose route was
/// removed (or renamed) is reported and stays, and the letters after it are redriven.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_of_a_removed_route_does_not_stop_the_others_redrive() {
    let nats = Nats::start();
    let versions = tempfile::tempdir().unwrap();
    let js = jetstream::new(nats.client().await);
    let (_, mut host) = misbehave_at(&nats, &js, versions.path(), "1.0.0").await;
    // A letter written when the route was called `gone`, before a letter of `steady`.
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in [
        ("Millrace-Route", "gone"),
        ("Millrace-Plugin", "misbehave@1.0.0"),
        ("Millrace-Error-Kind", "map-error"),
        ("Millrace-Error", "needs the fixed plugin"),
        ("Millrace-Attempts", "1"),
        ("Millrace-Raw-Subject", "raw.test.lab.cmd"),
        ("Millrace-Raw-Sequence", "999"),
    ] {
        headers.insert(name, value);
    }
    js.publish_with_headers("dlq.gone", headers, "fixme 7".into())
        .await
        .unwrap()
        .await
        .unwrap();
    publish(&js, "raw.test.lab.cmd", b"fixme 42", "needs-fix").await;
    read_stream(&js, "DLQ", "dlq.steady", 1, Duration::ZERO).await;
    host.stop();

    let (config, _host) = misbehave_at(&nats, &js, versions.path(), "2.0.0").await;
    let out = millrace(&[
        "dlq",
        "redrive",
        "--all",
        "--config",
        config.to_str().unwrap(),
    ]);
    let shown = text(&out);
    assert!(!out.status.success(), "a letter stayed: {shown}");
    assert!(!shown.contains("panicked"), "{shown}");
    assert!(
        shown.contains("cannot redrive 1: ")
            && shown.contains("gone")
            && shown.contains("the dead letter stays"),
        "{shown}"
    );
    assert!(shown.contains("redriven 2 (raw.test.lab.cmd)"), "{shown}");
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].json()["data"]["work_order"], "WO-42");
    assert_eq!(
        stream_len(&js, "DLQ").await,
        1,
        "the removed route's letter stays"
    );
}

/// A raw message the NATS client cannot read, waiting in the backlog of the first route, drops
/// the connection as soon as that route pulls: the host still starts (every consumer exists
/// before any pull), and ends the message as one dead letter and every other as its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_starts_with_an_unreadable_message_in_a_backlog() {
    let nats = Nats::start();
    let misbehave = plugin("tests/guests/misbehave");
    let routes: String = ["first", "second"]
        .iter()
        .map(|name| {
            format!(
                "[routes.{name}]\nsubjects = [\"raw.{name}.*.cmd\"]\nplugin = {:?}\nack_wait = \"2s\"\nmax_deliveries = 2\n\n",
                misbehave.display().to_string()
            )
        })
        .collect();
    let config = nats.config(&routes);
    let js = jetstream::new(nats.client().await);
    millrace::transport::ensure_streams(&js, &Default::default())
        .await
        .unwrap();
    let block = b"NATS/1.0\r\nX-Line: ok\r\nno colon here\r\n\r\n";
    publish_header_block(&nats.url(), "raw.first.lab.cmd", block, b"ok 1").await;
    publish(&js, "raw.first.lab.cmd", b"ok 2", "first-2").await;
    publish(&js, "raw.second.lab.cmd", b"ok 3", "second-3").await;

    let consumers: Vec<String> = ["first", "second"]
        .iter()
        .map(|name| millrace::transport::route_consumer_name(name, &[format!("raw.{name}.*.cmd")]))
        .collect();
    let consumers: Vec<&str> = consumers.iter().map(String::as_str).collect();
    let _host = Host::start(&config, &js, &consumers).await;
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].header("Millrace-Route"), Some("first"));
    let error = letters[0].header("Millrace-Error").unwrap();
    assert!(error.contains("`no colon here` has no `:`"), "{error}");
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        2,
        Duration::from_millis(500),
    )
    .await;
    let mut orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    orders.sort();
    assert_eq!(orders, ["WO-2", "WO-3"]);
}

/// A replay leaves a raw message that has a dead letter to the letter: it published the
/// message's events and left the letter, and a redrive of the letter later published them
/// again (once the duplicate window had passed, a second time on CANONICAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_leaves_a_dead_lettered_message_to_its_redrive() {
    let nats = Nats::start();
    let config = nats.config(&steady_route(&plugin("tests/guests/misbehave"), ""));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    publish(&js, "raw.test.lab.cmd", b"fixme 4", "needs-fix").await;
    publish(&js, "raw.test.lab.cmd", b"ok 5", "fine").await;
    read_stream(&js, "DLQ", "dlq.>", 1, Duration::ZERO).await;
    read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::ZERO).await;

    // The plugin's fix, as the route's config of the replay and the redrive.
    let fixed = nats.config(&steady_route(
        &plugin("tests/guests/misbehave"),
        "config = { fixed = \"yes\" }",
    ));
    let fixed = fixed.to_str().unwrap();
    let replayed = millrace(&["replay", "steady", "--from", "1", "--config", fixed]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    assert!(
        text(&replayed).contains("1 raw message(s), 0 event(s) published, 1 already on CANONICAL")
            && text(&replayed).contains("1 raw message(s) with a dead letter left to it"),
        "{}",
        text(&replayed)
    );
    let redriven = millrace(&["dlq", "redrive", "--all", "--config", fixed]);
    assert!(redriven.status.success(), "{}", text(&redriven));
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        2,
        Duration::from_millis(500),
    )
    .await;
    let orders: Vec<_> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].clone())
        .collect();
    assert_eq!(orders, ["WO-5", "WO-4"], "each event once");
    assert_eq!(try_stream_len(&js, "DLQ").await, Some(0));
}
