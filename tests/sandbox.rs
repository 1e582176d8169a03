//! A plugin that traps, loops forever or eats memory does not take the host down: the message
//! is retried, then dead-lettered with a reason naming the limit, and later messages flow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::*;

const ROUTE: &str = r#"
[routes.misbehave]
subjects = ["raw.test.*.cmd"]
plugin = "PLUGIN"
config = { site = "LAB" }
limits = { deadline = "300ms", memory_mib = 32 }
retry = { attempts = 2, backoff = "10ms" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_deadlines_and_memory_bombs_are_contained() {
    let nats = Nats::start();
    let dir = plugin("tests/guests/misbehave");
    let config = nats.config(&ROUTE.replace("PLUGIN", &dir.display().to_string()));
    let js = async_nats::jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &["millrace_misbehave__raw_test__star__cmd"]).await;

    for (i, cmd) in ["trap", "ok 1", "loop", "alloc", "ok 2", "reject", "ok 3"]
        .iter()
        .enumerate()
    {
        publish(&js, "raw.test.lab.cmd", cmd.as_bytes(), &format!("m{i}")).await;
    }

    let events = read_stream(&js, "CANONICAL", "canonical.>", 3, Duration::from_secs(1)).await;
    let orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        orders,
        ["WO-1", "WO-2", "WO-3"],
        "later messages keep flowing, in order"
    );

    let letters = read_stream(&js, "DLQ", "dlq.misbehave", 4, Duration::from_secs(1)).await;
    let kinds: Vec<(&str, &str, &str)> = letters
        .iter()
        .map(|l| {
            (
                std::str::from_utf8(&l.payload).unwrap(),
                l.header("Millrace-Error-Kind").unwrap(),
                l.header("Millrace-Attempts").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("trap", "trap", "2"),
            ("loop", "deadline", "2"),
            ("alloc", "memory-limit", "2"),
            ("reject", "rejected-by-rule", "1"),
        ],
        "traps and breached limits are retried, map errors are not"
    );
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l.header("Millrace-Error").unwrap())
        .collect();
    assert!(reasons[0].contains("unreachable"), "{reasons:?}");
    assert!(
        reasons[0].contains("trap on purpose"),
        "the panic message is kept: {reasons:?}"
    );
    assert!(reasons[1].contains("300ms"), "{reasons:?}");
    assert!(reasons[2].contains("32 MiB"), "{reasons:?}");
    assert_eq!(reasons[3], "rejected on purpose");
    assert!(host.is_running(), "the host survived:\n{}", host.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_over_the_limit_is_dead_lettered() {
    let nats = Nats::start();
    let dir = plugin("tests/guests/misbehave");
    let route = ROUTE
        .replace("PLUGIN", &dir.display().to_string())
        .replace("memory_mib = 32", "memory_mib = 128, output_kib = 64");
    let config = nats.config(&route);
    let js = async_nats::jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &["millrace_misbehave__raw_test__star__cmd"]).await;
    publish(&js, "raw.test.lab.cmd", b"big", "big").await;
    publish(&js, "raw.test.lab.cmd", b"ok 9", "ok9").await;
    let letters = read_stream(&js, "DLQ", "dlq.misbehave", 1, Duration::from_millis(500)).await;
    let kind = letters[0].header("Millrace-Error-Kind").unwrap();
    assert!(
        kind == "output-limit" || kind == "memory-limit",
        "huge output breaches a limit, got {kind}: {:?}",
        letters[0].header("Millrace-Error")
    );
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events[0].json()["data"]["work_order"], "WO-9");
    assert!(host.is_running());
}
