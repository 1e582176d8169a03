//! The whole flow against a real nats-server: raw messages become exact canonical events,
//! bad ones become dead letters with their original bytes, and a host killed mid-stream
//! loses and duplicates nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::*;
use millrace::registry::fixtures;

const SUBJECT: &str = "raw.mes.plant1.shift-report";
const CONSUMER: &str = "millrace_mes__raw_mes__star__shift-report";

/// The route of the MES plugin, configured as its fixtures are.
fn mes_route() -> String {
    fixture_route(
        "mes",
        &plugin("plugins/mes-shift-report"),
        "raw.mes.*.shift-report",
        "",
    )
}

/// The fixtures of the MES plugin with their expectations, split into good and bad.
/// A fixture input that maps, with its expected events.
type Good = (Vec<u8>, Vec<serde_json::Value>);
/// A fixture input that fails, with its expected error.
type Bad = (Vec<u8>, serde_json::Value);

fn mes_fixtures() -> (Vec<Good>, Vec<Bad>) {
    let dir = plugin("plugins/mes-shift-report");
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for input in fixtures::inputs(&dir).unwrap() {
        let payload = std::fs::read(&input).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixtures::expected_path(&input)).unwrap(),
        )
        .unwrap();
        if let Some(events) = expected.get("events") {
            good.push((payload, events.as_array().unwrap().clone()));
        } else {
            bad.push((payload, expected["error"].clone()));
        }
    }
    assert!(
        !good.is_empty() && !bad.is_empty(),
        "the MES plugin has good and bad fixtures"
    );
    (good, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_messages_become_exact_canonical_events() {
    let nats = Nats::start();
    let config = nats.config(&mes_route());
    let js = async_nats::jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;

    let (good, _) = mes_fixtures();
    let mut expected = Vec::new();
    for (i, (payload, events)) in good.iter().enumerate() {
        publish(&js, SUBJECT, payload, &format!("shift-{i}")).await;
        expected.extend(events.iter().cloned());
    }
    let stored = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        expected.len(),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        stored.len(),
        expected.len(),
        "exactly the expected events, no more"
    );

    let mut ids = BTreeSet::new();
    for (got, want) in stored.iter().zip(&expected) {
        let event = got.json();
        let kind = want["kind"].as_str().unwrap();
        let site = want["site"].as_str().unwrap();
        assert_eq!(got.subject, format!("canonical.{kind}.{site}"));
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], format!("millrace.{kind}.v1"));
        assert_eq!(event["source"], format!("/{site}/mes"));
        assert_eq!(event["time"], want["occurred_at"]);
        assert_eq!(
            event["data"], want["data"],
            "event data as the golden fixture says"
        );
        assert_eq!(event["plugin"], "mes-shift-report");
        assert_eq!(event["pluginversion"], "1.0.0");
        assert_eq!(event["route"], "mes");
        assert_eq!(event.get("sourcesequence"), want.get("source_sequence"));
        assert_eq!(
            event.get("sourcetransaction"),
            want.get("source_transaction")
        );
        assert_eq!(
            got.header("Nats-Msg-Id"),
            event["id"].as_str(),
            "deduplicated by event id"
        );
        assert!(
            ids.insert(event["id"].as_str().unwrap().to_owned()),
            "ids are unique"
        );
    }
    assert_eq!(stream_len(&js, "DLQ").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_dead_lettered_with_their_bytes() {
    let nats = Nats::start();
    let config = nats.config(&mes_route());
    let js = async_nats::jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;

    let (_, mut bad) = mes_fixtures();
    // Bytes that are no text at all, and nothing.
    bad.push((
        vec![0xff, 0xfe, 0x00, 0x9c, 0x80, b'\n'],
        serde_json::Value::Null,
    ));
    bad.push((Vec::new(), serde_json::Value::Null));
    for (i, (payload, _)) in bad.iter().enumerate() {
        publish(&js, SUBJECT, payload, &format!("bad-{i}")).await;
    }
    let letters = read_stream(&js, "DLQ", "dlq.mes", bad.len(), Duration::from_secs(1)).await;
    assert_eq!(letters.len(), bad.len());
    for (letter, (payload, error)) in letters.iter().zip(&bad) {
        assert_eq!(&letter.payload, payload, "the original bytes are kept");
        assert_eq!(letter.header("Millrace-Route"), Some("mes"));
        assert_eq!(
            letter.header("Millrace-Plugin"),
            Some("mes-shift-report@1.0.0")
        );
        assert_eq!(letter.header("Millrace-Raw-Subject"), Some(SUBJECT));
        assert_eq!(
            letter.header("Millrace-Attempts"),
            Some("1"),
            "map errors are not retried"
        );
        assert!(
            letter
                .header("Millrace-Raw-Msg-Id")
                .unwrap()
                .starts_with("bad-")
        );
        if error.is_null() {
            assert_eq!(
                letter.header("Millrace-Error-Kind"),
                Some("malformed-input")
            );
            assert!(!letter.header("Millrace-Error").unwrap().is_empty());
        } else {
            assert_eq!(letter.header("Millrace-Error-Kind"), error["kind"].as_str());
            // Header values are one line: the host folds line breaks into spaces.
            let message = error["message"]
                .as_str()
                .unwrap()
                .replace(['\n', '\r'], " ");
            assert_eq!(letter.header("Millrace-Error"), Some(message.as_str()));
        }
    }
    assert_eq!(stream_len(&js, "CANONICAL").await, 0, "no partial mapping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_stream_loses_and_duplicates_nothing() {
    const TOTAL: usize = 2000;
    const SUBJECTS: usize = 4;
    let nats = Nats::start();
    let dir = plugin("tests/guests/misbehave");
    let config = nats.config(&format!(
        "[routes.steady]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nack_wait = \"2s\"\n",
        dir.display().to_string()
    ));
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let consumer = "millrace_steady__raw_test__star__cmd";
    let mut host = Host::start(&config, &js, &[consumer]).await;

    // Publish steadily while the host is killed twice and restarted.
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            for n in 0..TOTAL {
                let subject = format!("raw.test.s{}.cmd", n % SUBJECTS);
                publish(
                    &js,
                    &subject,
                    format!("ok {n}").as_bytes(),
                    &format!("n{n}"),
                )
                .await;
                if n % 50 == 49 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    for kill_at in [TOTAL as u64 / 4, TOTAL as u64 / 2] {
        let started = Instant::now();
        while stream_len(&js, "CANONICAL").await < kill_at {
            assert!(
                started.elapsed() < PATIENCE,
                "no progress:\n{}",
                host.log_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        host.kill();
        assert!(
            stream_len(&js, "CANONICAL").await < TOTAL as u64,
            "the host was killed mid-stream"
        );
        host = Host::start(&config, &js, &[consumer]).await;
    }
    publisher.await.unwrap();

    let stored = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        TOTAL,
        Duration::from_secs(4),
    )
    .await;
    let orders: Vec<String> = stored
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<&String> = orders.iter().collect();
    assert_eq!(unique.len(), TOTAL, "every raw message has its event");
    assert_eq!(orders.len(), TOTAL, "and none twice");
    assert_eq!(stream_len(&js, "CANONICAL").await, TOTAL as u64);
    assert_eq!(stream_len(&js, "DLQ").await, 0);
    assert_eq!(host.stop().code(), Some(0), "a graceful stop exits cleanly");
}

/// A lane maps its next message while the last ones' events await their acks: the events of
/// one subject are still stored in the order of their raw messages, every one once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_lanes_store_a_subjects_events_in_raw_order() {
    const MESSAGES: usize = 300;
    // Some fixtures map to no event (a report with no records): those messages add none.
    let nats = Nats::start();
    // Resends allowed (the same fixtures again and again), so every message publishes events.
    let route = fixture_route(
        "mes",
        &plugin("plugins/mes-shift-report"),
        "raw.mes.*.shift-report",
        "idempotency = false\nordering = \"off\"",
    );
    let config = nats.config(&route);
    let js = async_nats::jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;

    let (good, _) = mes_fixtures();
    let (mut expected, mut mapping) = (0, 0);
    for i in 0..MESSAGES {
        let (payload, events) = &good[i % good.len()];
        publish(&js, SUBJECT, payload, &format!("pipelined-{i}")).await;
        expected += events.len();
        mapping += usize::from(!events.is_empty());
    }
    let stored = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        expected,
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(stored.len(), expected, "every event once");
    let sequences: Vec<u64> = stored
        .iter()
        .map(|e| e.json()["rawsequence"].as_u64().unwrap())
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] <= w[1]),
        "events stored out of their raw messages' order: {sequences:?}"
    );
    let raw: BTreeSet<u64> = sequences.iter().copied().collect();
    assert_eq!(
        raw.len(),
        mapping,
        "every raw message with events delivered"
    );
}
