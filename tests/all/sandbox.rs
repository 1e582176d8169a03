//! Hostile plugins are contained. Whatever the `misbehave` plugin does on one route (trap, loop,
//! eat memory, recurse, abort, return huge or invalid output, reach for the environment, files,
//! clock, randomness or network, flood stdout), the message is retried or dead-lettered with a
//! reason naming the limit or rule, the host keeps serving, and a well-behaved route beside it
//! (`steady`) maps every one of its messages, in the same test.

use std::time::Duration;

use crate::support::*;
use async_nats::jetstream;

/// The hostile route (LIMITS replaced per test) and the well-behaved one beside it.
const ROUTES: &str = r#"
[routes.misbehave]
subjects = ["raw.test.*.cmd"]
plugin = "PLUGIN"
config = { site = "LAB" }
limits = { LIMITS }
retry = { attempts = 2, backoff = "10ms" }

[routes.steady]
subjects = ["raw.steady.*.cmd"]
plugin = "PLUGIN"
config = { site = "STEADY" }
"#;

const CONSUMERS: [&str; 2] = [
    "millrace_misbehave__raw_test__star__cmd",
    "millrace_steady__raw_steady__star__cmd",
];

/// A server and a host serving the two routes, the hostile one with `limits`.
async fn start(limits: &str) -> (Nats, jetstream::Context, Host) {
    let nats = Nats::start();
    let dir = plugin("tests/guests/misbehave");
    let config = nats.config(
        &ROUTES
            .replace("PLUGIN", &dir.display().to_string())
            .replace("LIMITS", limits),
    );
    let js = async_nats::jetstream::new(nats.client().await);
    let host = Host::start(&config, &js, &CONSUMERS).await;
    (nats, js, host)
}

/// Publishes each hostile command, each followed by a message of the steady route, so the
/// steady route's messages are in flight while the plugin misbehaves.
async fn publish_beside_steady(js: &jetstream::Context, commands: &[&str]) {
    for (i, cmd) in commands.iter().enumerate() {
        publish(js, "raw.test.lab.cmd", cmd.as_bytes(), &format!("m{i}")).await;
        let n = i + 1;
        publish(
            js,
            "raw.steady.line1.cmd",
            format!("ok {n}").as_bytes(),
            &format!("s{n}"),
        )
        .await;
    }
}

/// Every steady message became its event, in order, and the host is still up.
async fn assert_steady_served(js: &jetstream::Context, count: usize, host: &mut Host) {
    let events = read_stream(
        js,
        "CANONICAL",
        "canonical.*.STEADY",
        count,
        Duration::from_millis(500),
    )
    .await;
    let orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (1..=count).map(|n| format!("WO-{n}")).collect();
    assert_eq!(orders, expected, "the steady route served every message");
    assert!(host.is_running(), "the host survived:\n{}", host.log_text());
}

/// The hostile route's dead letters as (payload, kind, attempts, reason).
async fn dead_letters(
    js: &jetstream::Context,
    count: usize,
) -> Vec<(String, String, String, String)> {
    read_stream(
        js,
        "DLQ",
        "dlq.misbehave",
        count,
        Duration::from_millis(500),
    )
    .await
    .iter()
    .map(|l| {
        (
            String::from_utf8(l.payload.clone()).unwrap(),
            l.header("Millrace-Error-Kind").unwrap().to_owned(),
            l.header("Millrace-Attempts").unwrap().to_owned(),
            l.header("Millrace-Error").unwrap().to_owned(),
        )
    })
    .collect()
}

/// The hostile route's events, by item.
async fn lab_items(js: &jetstream::Context, count: usize) -> Vec<String> {
    read_stream(
        js,
        "CANONICAL",
        "canonical.*.LAB",
        count,
        Duration::from_millis(500),
    )
    .await
    .iter()
    .map(|e| e.json()["data"]["item"].as_str().unwrap().to_owned())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traps_deadlines_memory_bombs_recursion_and_aborts_are_contained() {
    let (_nats, js, mut host) = start("deadline = \"300ms\", memory_mib = 32").await;
    let commands = [
        "trap", "ok 1", "loop", "alloc", "ok 2", "reject", "recurse", "abort", "ok 3",
    ];
    publish_beside_steady(&js, &commands).await;

    let orders: Vec<String> = read_stream(
        &js,
        "CANONICAL",
        "canonical.*.LAB",
        3,
        Duration::from_secs(1),
    )
    .await
    .iter()
    .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(
        orders,
        ["WO-1", "WO-2", "WO-3"],
        "later messages keep flowing, in order"
    );

    let letters = dead_letters(&js, 6).await;
    let kinds: Vec<(&str, &str, &str)> = letters
        .iter()
        .map(|(payload, kind, attempts, _)| (payload.as_str(), kind.as_str(), attempts.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("trap", "trap", "2"),
            ("loop", "deadline", "2"),
            ("alloc", "memory-limit", "2"),
            ("reject", "rejected-by-rule", "1"),
            ("recurse", "trap", "2"),
            ("abort", "trap", "2"),
        ],
        "traps and breached limits are retried, map errors are not"
    );
    let reasons: Vec<&str> = letters.iter().map(|l| l.3.as_str()).collect();
    assert!(reasons[0].contains("unreachable"), "{reasons:?}");
    assert!(
        reasons[0].contains("trap on purpose"),
        "the panic message is kept: {reasons:?}"
    );
    assert!(
        reasons[1].contains("deadline exceeded") && reasons[1].contains("300ms"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("memory limit exceeded") && reasons[2].contains("32 MiB"),
        "{reasons:?}"
    );
    assert_eq!(reasons[3], "rejected on purpose");
    assert!(
        reasons[4].contains("call stack exhausted"),
        "stack overflow named: {reasons:?}"
    );
    assert!(
        reasons[5].contains("unreachable"),
        "abort named: {reasons:?}"
    );
    assert_steady_served(&js, commands.len(), &mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_over_the_limit_is_dead_lettered() {
    let (_nats, js, mut host) = start("memory_mib = 128, output_kib = 64").await;
    // Many events of 1 MiB each, then one event holding a single 2 MB string.
    let commands = ["big", "longkey 2000000", "ok 9"];
    publish_beside_steady(&js, &commands).await;
    let letters = dead_letters(&js, 2).await;
    for (payload, kind, attempts, reason) in &letters {
        assert!(
            kind == "output-limit" || kind == "memory-limit",
            "{payload}: huge output breaches a limit, got {kind}: {reason}"
        );
        if kind == "output-limit" {
            assert_eq!(
                attempts, "1",
                "an output breach is deterministic: {payload}"
            );
            assert!(reason.contains("output limit exceeded"), "{reason}");
        }
    }
    assert_eq!(
        letters[1].1, "output-limit",
        "one huge string is measured: {letters:?}"
    );
    assert!(
        letters[1].3.contains("the route allows 64 KiB"),
        "{letters:?}"
    );
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.*.LAB",
        1,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events[0].json()["data"]["work_order"], "WO-9");
    assert_steady_served(&js, commands.len(), &mut host).await;
}

/// The host copies no more out of a plugin than the route's output limit makes sense of: 160
/// events of 1 MiB (a route allowing the plugin 512 MiB of memory) are refused while being
/// copied, as an output breach, once. They were a trap, retried, after wasmtime had copied
/// up to its default 128 MiB of them each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_far_over_the_limit_is_refused_before_the_host_copies_it() {
    let (_nats, js, mut host) = start("memory_mib = 512, output_kib = 64").await;
    let commands = ["big 160 1048576", "ok 9"];
    publish_beside_steady(&js, &commands).await;
    let letters = dead_letters(&js, 1).await;
    let (payload, kind, attempts, reason) = &letters[0];
    assert_eq!(payload, "big 160 1048576");
    assert_eq!(kind, "output-limit", "{reason}");
    assert_eq!(attempts, "1", "an output breach is deterministic");
    assert!(reason.contains("allowing 64 KiB"), "{reason}");
    assert_steady_served(&js, commands.len(), &mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_canonical_values_are_dead_lettered_with_the_rule() {
    let (_nats, js, mut host) = start("deadline = \"2s\"").await;
    let commands = [
        "negative",
        "badtime",
        "badunit",
        "emptykey",
        "longkey 1000",
        "ok 7",
    ];
    publish_beside_steady(&js, &commands).await;
    let letters = dead_letters(&js, 5).await;
    let rules = [
        "data.good_quantity.amount \"-5\" is negative",
        "occurred_at \"yesterday\" is not an RFC 3339 timestamp",
        "data.good_quantity.uom \"kilos\" is not a UN/ECE Recommendation 20 unit code",
        "data.work_order is empty",
        "data.item is 1000 bytes long, the limit is 256",
    ];
    for ((payload, kind, attempts, reason), rule) in letters.iter().zip(rules) {
        assert_eq!(kind, "invalid-event", "{payload}: {reason}");
        assert_eq!(attempts, "1", "an invalid event is not retried: {payload}");
        assert!(
            reason.starts_with("event 0 (production-completion): ") && reason.contains(rule),
            "{payload}: the reason names the rule `{rule}`, got {reason}"
        );
    }
    assert_eq!(
        lab_items(&js, 1).await,
        ["ITEM-1"],
        "nothing of the bad messages was published"
    );
    assert_steady_served(&js, commands.len(), &mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_files_clock_randomness_sockets_and_stdout_are_denied_or_capped() {
    let (nats, js, mut host) = start("deadline = \"20s\"").await;
    // The nats-server's own port: a socket there would connect if the network were granted.
    let socket = format!("socket 127.0.0.1:{}", nats.server.port());
    let flood = 4_000_000;
    let commands = [
        "env",
        "file",
        "clock",
        "random",
        socket.as_str(),
        "flood 4000000",
        // A day's sleep: WASI waited on the host's clock inside a host call, where the deadline
        // could not stop it, holding the worker for as long as the plugin asked.
        "sleep 86400",
    ];
    publish_beside_steady(&js, &commands).await;
    let items = lab_items(&js, commands.len()).await;
    assert_eq!(items[0], "env:0", "no environment variables");
    assert_eq!(items[1], "file:denied", "no files");
    assert_eq!(items[2], "clock:0", "the clock reads the Unix epoch");
    assert_eq!(
        items[3], "random:2a2a2a2a2a2a2a2a:0707070707070707",
        "randomness is the host's fixed sequence, not entropy"
    );
    assert!(
        items[4].starts_with("socket:denied:"),
        "no network: {}",
        items[4]
    );
    assert_eq!(
        items[5], "ITEM-1",
        "a flood of stdout does not fail the call"
    );
    assert_eq!(
        items[6], "slept",
        "the clock never moves: a sleep returns at once"
    );

    let log = host.log_text();
    assert!(
        log.contains("guest output over 16384 bytes in one call"),
        "the cap is logged:\n{}",
        &log[..log.len().min(4000)]
    );
    assert!(
        log.len() < flood / 8,
        "the host log holds {} bytes after a {flood}-byte flood",
        log.len()
    );
    assert_steady_served(&js, commands.len(), &mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_logging_in_a_loop_leaves_at_most_the_cap_in_the_host_log_per_call() {
    use millrace::sandbox::LOG_RECORDS_BUDGET;
    let (_nats, js, mut host) = start("deadline = \"20s\"").await;
    // 20 000 records of about 120 bytes each: 2.4 MB of log per call without the cap.
    let commands = ["logloop 20000", "logloop 20000 reject"];
    publish_beside_steady(&js, &commands).await;

    // Each message ends by its own outcome, the cap notwithstanding.
    assert_eq!(lab_items(&js, 1).await, ["ITEM-1"], "the first is mapped");
    let dead = dead_letters(&js, 1).await;
    assert_eq!(dead[0].0, "logloop 20000 reject");
    assert_eq!(
        dead[0].1, "rejected-by-rule",
        "the second is dead-lettered: {dead:?}"
    );
    assert_eq!(dead[0].2, "1", "a rejection is not retried: {dead:?}");

    let log = host.log_text();
    let records = log.matches("logloop record ").count();
    assert!(
        (1..=2 * LOG_RECORDS_BUDGET).contains(&records),
        "{records} guest log records reached the host log for two calls; the cap is {LOG_RECORDS_BUDGET} a call"
    );
    assert!(
        log.contains(&format!("guest log over {LOG_RECORDS_BUDGET} records")),
        "the log says the cap cut the records:\n{}",
        &log[..log.len().min(4000)]
    );
    assert!(
        log.len() < 1_000_000,
        "the host log holds {} bytes",
        log.len()
    );
    assert_steady_served(&js, commands.len(), &mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_under_the_deadline_succeed_one_after_another() {
    // Each call takes about 40% of the deadline, three in a row take 120% of it: each call
    // gets its own deadline, and a slow but finishing call is not cut short. The margin (2.5x)
    // absorbs a machine busier than at calibration.
    let deadline = Duration::from_secs(2);
    let millions = slow_millions_for(deadline.mul_f64(0.4));
    let (_nats, js, mut host) = start("deadline = \"2s\"").await;
    let slow = format!("slow {millions}");
    let commands = [slow.as_str(), slow.as_str(), slow.as_str(), "loop"];
    publish_beside_steady(&js, &commands).await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.*.LAB",
        3,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 3, "every slow call finished");
    for e in &events {
        assert_eq!(
            e.json()["sourcesequence"],
            millions,
            "the loop ran to its end"
        );
    }
    let letters = dead_letters(&js, 1).await;
    assert_eq!(
        (letters[0].0.as_str(), letters[0].1.as_str()),
        ("loop", "deadline"),
        "the same deadline still stops a loop"
    );
    assert_steady_served(&js, commands.len(), &mut host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_runs_under_the_tighter_of_its_own_and_its_route_limits() {
    let nats = Nats::start();
    let versions = tempfile::tempdir().unwrap();
    let tight = plugin_version("tests/guests/misbehave", "1.0.1", versions.path());
    let manifest = tight.join("plugin.toml");
    let text_of = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{text_of}\n[limits]\ndeadline = \"50ms\"\n"),
    )
    .unwrap();
    let config = nats.config(&format!(
        "[routes.tight]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nlimits = {{ deadline = \"2s\" }}\nretry = {{ attempts = 1 }}\n",
        tight.display().to_string()
    ));
    let js = async_nats::jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &["millrace_tight__raw_test__star__cmd"]).await;
    publish(&js, "raw.test.lab.cmd", b"loop", "loop").await;
    let letters = read_stream(&js, "DLQ", "dlq.tight", 1, Duration::from_millis(200)).await;
    assert_eq!(letters[0].header("Millrace-Error-Kind"), Some("deadline"));
    assert!(
        letters[0]
            .header("Millrace-Error")
            .unwrap()
            .contains("50ms"),
        "the plugin's own 50ms, not the route's 2s: {:?}",
        letters[0].header("Millrace-Error")
    );
}

/// A version is admitted onto a route under that route's limits, as it will serve there: under
/// the defaults, a version was made active on a route whose limits then dead-lettered every
/// message it mapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_is_admitted_under_the_limits_of_its_route() {
    let nats = Nats::start();
    let versions = tempfile::tempdir().unwrap();
    let misbehave = plugin_version("tests/guests/misbehave", "1.0.2", versions.path());
    // A fixture of one 3 KB event (200 serial numbers): within the default 1024 KiB of output,
    // over this route's 1.
    let fixtures = misbehave.join("fixtures");
    std::fs::write(fixtures.join("long.txt"), "serials 200").unwrap();
    let mapped = millrace(&[
        "plugin",
        "run",
        misbehave.to_str().unwrap(),
        fixtures.join("long.txt").to_str().unwrap(),
    ]);
    assert!(mapped.status.success(), "{}", text(&mapped));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&mapped.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::write(
        fixtures.join("long.expected.json"),
        serde_json::json!({ "events": events }).to_string(),
    )
    .unwrap();
    let config = nats.config(&format!(
        "[routes.tight]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nlimits = {{ output_kib = 1 }}\n",
        misbehave.display().to_string()
    ));
    let cfg = config.to_str().unwrap();
    let deployed = millrace(&[
        "plugin",
        "deploy",
        misbehave.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let refused = millrace(&[
        "route",
        "set-version",
        "tight",
        "misbehave@1.0.2",
        "--config",
        cfg,
    ]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("golden fixtures fail")
            && text(&refused).contains("the route allows 1 KiB"),
        "{}",
        text(&refused)
    );
}

/// The memory cap holds for all of a plugin's memories together: a component of 16 memories,
/// each grown to just under the cap (64 MiB by default), held a gigabyte per session.
#[test]
fn the_memory_cap_counts_every_memory_of_a_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("x.cmd");
    std::fs::write(&payload, "x").unwrap();
    let plugin = root().join("tests/guests/hostile-multimemory");
    let o = millrace(&[
        "plugin",
        "run",
        plugin.to_str().unwrap(),
        payload.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("map error (memory-limit)"),
        "{}",
        text(&o)
    );
}

/// With a profiler chosen (`MILLRACE_PROFILE_PLUGINS=perfmap`), `perf` finds a plugin's own
/// functions by name: the perf map wasmtime writes for this process names them once the
/// plugin is compiled.
#[test]
fn a_profiled_sandbox_names_the_plugins_functions_for_perf() {
    use millrace::registry::LocalPlugin;
    use millrace::sandbox::{Profiler, Sandbox};
    let sandbox = Sandbox::with_profiler(None, Profiler::PerfMap).unwrap();
    let _plugin = LocalPlugin::locate(&plugin("plugins/mes-shift-report"))
        .unwrap()
        .load(&sandbox)
        .unwrap();
    let map = format!("/tmp/perf-{}.map", std::process::id());
    let names = std::fs::read_to_string(&map).unwrap_or_else(|e| panic!("{map}: {e}"));
    assert!(
        names
            .lines()
            .any(|line| line.contains("mes_shift_report::report::map_report")),
        "{map} does not name the plugin's mapping function; it has {} lines",
        names.lines().count()
    );
    // Only this test profiles: the map is this test's to remove.
    let _ = std::fs::remove_file(&map);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_too_large_for_one_nats_message_is_dead_lettered_never_sent() {
    // The route allows 4 MiB of output, so only the size of one NATS message (the server's
    // max_payload, 1 MiB) stops a ship notice of 100,000 serial numbers (about 1.4 MB).
    let (_nats, js, mut host) = start("output_kib = 4096, memory_mib = 128").await;
    let commands = ["serials 100000", "serials 10", "ok 5"];
    publish_beside_steady(&js, &commands).await;
    let letters = dead_letters(&js, 1).await;
    let (payload, kind, attempts, reason) = &letters[0];
    assert_eq!(payload, "serials 100000");
    assert_eq!(kind, "output-limit", "{reason}");
    assert_eq!(attempts, "1", "the size of an event is deterministic");
    assert!(
        reason.contains("event 0 (millrace.shipment-notice.v1) as a CloudEvent is")
            && reason.contains("max_payload"),
        "{reason}"
    );
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.*.LAB",
        2,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 2, "nothing of the big notice was published");
    assert_eq!(events[0].json()["data"]["shipment_id"], "ASN-10");
    assert_eq!(events[1].json()["data"]["work_order"], "WO-5");
    assert_steady_served(&js, commands.len(), &mut host).await;
    host.assert_ended_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_error_quoting_a_whole_document_is_clipped_where_the_host_takes_it() {
    let (_nats, js, mut host) = start("memory_mib = 64").await;
    let commands = ["longerror 3000000", "ok 4"];
    publish_beside_steady(&js, &commands).await;
    let letters = dead_letters(&js, 1).await;
    let (_, kind, _, reason) = &letters[0];
    assert_eq!(kind, "malformed-input");
    assert!(
        reason.starts_with("EEEE") && reason.ends_with('…'),
        "{reason:.100}"
    );
    assert_eq!(lab_items(&js, 1).await, ["ITEM-1"]);
    assert_steady_served(&js, commands.len(), &mut host).await;
    // The 3 MB message reached neither the log nor anything else whole: it was cut to 4 KiB
    // when the host took it from the plugin.
    let log = host.log_text();
    assert!(log.len() < 64 * 1024, "the log holds {} bytes", log.len());
}

/// A source whose clock is set wrong (or a two-digit year read as the wrong century) dates an
/// event decades ahead: published, it would make every later event of its work order look
/// late and freeze the order's state in the projection. Past the route's `limits.max_ahead`
/// it is an invalid event, dead-lettered with the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_dated_past_the_routes_max_ahead_is_dead_lettered() {
    use time::format_description::well_known::Rfc3339;
    let (_nats, js, mut host) = start("max_ahead = \"2h\"").await;
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&Rfc3339)
        .unwrap();
    let commands = [
        "at 2099-01-01T00:00:00Z WO-FUTURE".to_owned(),
        format!("at {soon} WO-SOON"),
        "ok 3".to_owned(),
    ];
    let commands: Vec<&str> = commands.iter().map(String::as_str).collect();
    publish_beside_steady(&js, &commands).await;
    let letters = dead_letters(&js, 1).await;
    let (payload, kind, attempts, reason) = &letters[0];
    assert!(payload.contains("WO-FUTURE"), "{payload}");
    assert_eq!(kind, "invalid-event");
    assert_eq!(attempts, "1");
    assert!(
        reason.contains("occurred_at \"2099-01-01T00:00:00Z\" is")
            && reason.contains("days after this host's clock")
            && reason.contains("limits.max_ahead (2h)"),
        "{reason}"
    );
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.*.LAB",
        2,
        Duration::from_millis(500),
    )
    .await;
    let orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(orders, ["WO-SOON", "WO-3"], "an hour ahead is inside 2h");
    assert_steady_served(&js, commands.len(), &mut host).await;
}

/// Two routes that breach their deadline, each within its own admission (all workers but one),
/// cannot together hold every worker: once they have breached, they share the workers but one,
/// and a well-behaved route's call runs while both of theirs are in flight (it waited for one of
/// them to hit its deadline: a good route's p99 went from 0.4 s to 4.2 s beside two of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_that_breach_limits_together_leave_a_worker_to_the_others() {
    use millrace::pipeline::{Pipeline, RawInput};
    use millrace::workers::WorkerPool;

    let nats = Nats::start();
    let plugin = plugin("tests/guests/misbehave");
    let route = |name: &str| {
        format!(
            "[routes.{name}]\nsubjects = [\"raw.{name}.*.cmd\"]\nplugin = {:?}\nlimits = {{ deadline = \"1500ms\" }}\nretry = {{ attempts = 1 }}\n\n",
            plugin.display().to_string()
        )
    };
    // The test config has two workers.
    let Staged {
        config,
        js,
        loader,
        delivery,
    } = Staged::on(
        &nats,
        &format!("{}{}{}", route("hosta"), route("hostb"), route("good")),
    )
    .await;
    let table = millrace::routes::RouteTable::load(&config, &loader, &Default::default())
        .await
        .unwrap();
    let route = |name: &str| {
        table
            .routes()
            .iter()
            .find(|r| &*r.name == name)
            .unwrap()
            .clone()
    };
    let pipeline = std::sync::Arc::new(Pipeline::new(
        WorkerPool::start(2).unwrap(),
        delivery,
        js.clone(),
    ));
    let input = |name: &str, payload: &str| {
        RawInput::new(
            format!("raw.{name}.lab.cmd"),
            None,
            payload.as_bytes().to_vec().into(),
            "RAW",
            1,
        )
    };
    let hostile = |name: &'static str| {
        let (pipeline, route) = (pipeline.clone(), route(name));
        tokio::spawn(async move {
            let mapped = pipeline.map(&route, &input(name, "loop")).await.unwrap();
            assert!(mapped.outcome.is_err(), "{name}: a loop hits the deadline");
        })
    };

    // Each hostile route breaches once, then waits out its cool-down.
    hostile("hosta").await.unwrap();
    hostile("hostb").await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;

    let (a, b) = (hostile("hosta"), hostile("hostb"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let good = pipeline
        .map(&route("good"), &input("good", "ok 1"))
        .await
        .unwrap();
    assert!(good.outcome.is_ok(), "{:?}", good.outcome);
    assert!(
        !a.is_finished() && !b.is_finished(),
        "the good route's call waited for a hostile one to hit its deadline"
    );
    a.await.unwrap();
    b.await.unwrap();
}
