//! The plugin lifecycle on running hosts against a real nats-server: deploy to the registry,
//! contract-gated activation, hot swap and rollback on two hosts, canary, shadow with a
//! field-by-field diff, WIT 1.0 and 1.1 plugins side by side, and the directory registry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use async_nats::jetstream;
use futures::StreamExt;

const CONSUMER: &str = "millrace_steady__raw_test__star__cmd";

fn route(plugin: &str, extra: &str) -> String {
    format!(
        "[routes.steady]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {plugin:?}\nack_wait = \"2s\"\n{extra}\n"
    )
}

fn run_ok(args: &[&str]) -> String {
    let o = millrace(args);
    let t = text(&o);
    assert!(o.status.success(), "millrace {args:?}:\n{t}");
    t
}

/// Deploys misbehave 1.0.0 and 2.0.0.
fn deploy_both(config: &Path) {
    let cfg = config.to_str().unwrap();
    for dir in ["tests/guests/misbehave", "tests/guests/misbehave-v2"] {
        let dir = plugin(dir);
        let t = run_ok(&["plugin", "deploy", dir.to_str().unwrap(), "--config", cfg]);
        assert!(t.contains("deployed misbehave@"), "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_and_a_rollback_swap_on_two_running_hosts_exactly_once() {
    const TOTAL: usize = 6000;
    let nats = Nats::start();
    let config = nats.config(&route("misbehave@1.0.0", ""));
    let cfg = config.to_str().unwrap().to_owned();
    deploy_both(&config);
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let mut host_a = InProcessHost::start(&config).await;
    let mut host_b = InProcessHost::start(&config).await;
    let mut arrivals = client.subscribe("canonical.>").await.unwrap();

    // `published` counts the publishes JetStream acknowledged (to pace the switches), `started`
    // the publishes begun: one may be in flight beyond `published`, stored (and mapped) before a
    // switch the test then observes, so "published after the switch" is told by `started`.
    let published = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (js, published, started) = (js.clone(), published.clone(), started.clone());
        tokio::spawn(async move {
            for n in 0..TOTAL {
                let subject = format!("raw.test.s{}.cmd", n % 4);
                started.store(n + 1, Ordering::SeqCst);
                publish(
                    &js,
                    &subject,
                    format!("ok {n}").as_bytes(),
                    &format!("n{n}"),
                )
                .await;
                published.store(n + 1, Ordering::SeqCst);
                if n % 50 == 49 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    // Record when each event arrives, and from which version.
    let recorder = tokio::spawn(async move {
        let mut seen: Vec<(Instant, String)> = Vec::new();
        while let Some(m) = arrivals.next().await {
            let json: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            seen.push((
                Instant::now(),
                json["pluginversion"].as_str().unwrap().to_owned(),
            ));
            if seen.len() >= TOTAL {
                break;
            }
        }
        seen
    });

    while published.load(Ordering::SeqCst) < TOTAL / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let switch_started = Instant::now();
    run_ok(&[
        "route",
        "set-version",
        "steady",
        "misbehave@2.0.0",
        "--config",
        &cfg,
    ]);
    host_a
        .switched("steady", active_is("misbehave@2.0.0"))
        .await;
    host_b
        .switched("steady", active_is("misbehave@2.0.0"))
        .await;
    let v2_from = started.load(Ordering::SeqCst);

    while published.load(Ordering::SeqCst) < 2 * TOTAL / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Events stored before the rollback was asked for were mapped before it.
    let stored_before_rollback = stream_len(&js, "CANONICAL").await;
    let t = run_ok(&["route", "rollback", "steady", "--config", &cfg]);
    assert!(t.contains("steady: active misbehave@1.0.0"), "{t}");
    host_a
        .switched("steady", active_is("misbehave@1.0.0"))
        .await;
    host_b
        .switched("steady", active_is("misbehave@1.0.0"))
        .await;
    let v1_again_from = started.load(Ordering::SeqCst);
    publisher.await.unwrap();

    let stored = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        TOTAL,
        Duration::from_secs(3),
    )
    .await;
    let mut version_of: BTreeMap<usize, String> = BTreeMap::new();
    for e in &stored {
        let json = e.json();
        let n: usize = json["data"]["work_order"].as_str().unwrap()[3..]
            .parse()
            .unwrap();
        let version = json["pluginversion"].as_str().unwrap().to_owned();
        // Published after both hosts switched, stored before the rollback was asked for:
        // mapped start to end while both served 2.0.0.
        if n >= v2_from && e.sequence <= stored_before_rollback {
            assert_eq!(
                version, "2.0.0",
                "message {n} was mapped while both hosts served 2.0.0"
            );
        }
        if n >= v1_again_from {
            assert_eq!(
                version, "1.0.0",
                "message {n} came after both hosts rolled back"
            );
        }
        assert!(
            version_of.insert(n, version).is_none(),
            "message {n} has events twice"
        );
    }
    assert_eq!(
        version_of.len(),
        TOTAL,
        "every message has its events, once"
    );
    let versions: BTreeSet<&String> = version_of.values().collect();
    assert_eq!(versions.len(), 2);

    // Figures for the record (printed, not asserted): switch latency and throughput around it.
    let seen = recorder.await.unwrap();
    if let Some((first_v2, _)) = seen.iter().find(|(_, v)| v == "2.0.0") {
        println!(
            "set-version to first 2.0.0 event: {} ms",
            first_v2.duration_since(switch_started).as_millis()
        );
        let per_window = |from: Instant, to: Instant| {
            seen.iter().filter(|(t, _)| *t >= from && *t < to).count() as f64
                / to.duration_since(from).as_secs_f64()
        };
        let window = Duration::from_millis(500);
        println!(
            "events/s: 500 ms before the switch {:.0}, the 500 ms after it {:.0}, the next 500 ms {:.0}",
            per_window(switch_started - window, switch_started),
            per_window(switch_started, switch_started + window),
            per_window(switch_started + window, switch_started + 2 * window)
        );
    }
    // Both hosts stop cleanly (shutdown returns their outcome: an error would fail here).
    host_a.stop().await;
    host_b.stop().await;
}

/// Messages that wait in a busy lane longer than the route's `ack_wait` are kept from
/// redelivery (the host sends in-progress acks), so JetStream delivers each once and each has
/// its event once, even when the route swaps versions while they wait: a redelivery mapped by
/// the new version would have events with other ids, which JetStream's deduplication keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_held_in_a_busy_lane_past_ack_wait_are_delivered_once_across_a_swap() {
    const HELD: usize = 24;
    // One subject, so one lane: each call takes about 30% of ack_wait, the last message waits
    // about seven times ack_wait behind the others (longer on a busier machine).
    let millions = slow_millions_for(Duration::from_millis(300));
    let nats = Nats::start();
    let config = nats.config(&route("misbehave@1.0.0", "").replace("\"2s\"", "\"1s\""));
    let cfg = config.to_str().unwrap().to_owned();
    let versions = tempfile::tempdir().unwrap();
    let next = plugin_version("tests/guests/misbehave", "1.1.0", versions.path());
    for dir in [plugin("tests/guests/misbehave"), next] {
        let t = run_ok(&["plugin", "deploy", dir.to_str().unwrap(), "--config", &cfg]);
        assert!(t.contains("deployed misbehave@"), "{t}");
    }
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    // The answers to the route's deliveries: acks, and in-progress acks (`+WPI`).
    let mut answers = client.subscribe("$JS.ACK.RAW.>").await.unwrap();
    let mut host = InProcessHost::start(&config).await;
    for n in 0..HELD {
        let payload = format!("slow {millions}");
        publish(
            &js,
            "raw.test.lab.cmd",
            payload.as_bytes(),
            &format!("h{n}"),
        )
        .await;
    }
    // The first event is out: the others wait in the lane while the route swaps versions.
    read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::ZERO).await;
    run_ok(&[
        "route",
        "set-version",
        "steady",
        "misbehave@1.1.0",
        "--config",
        &cfg,
    ]);
    host.switched("steady", active_is("misbehave@1.1.0")).await;

    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        HELD,
        Duration::from_secs(3),
    )
    .await;
    let mut events_of: BTreeMap<u64, usize> = BTreeMap::new();
    for e in &events {
        *events_of
            .entry(e.json()["rawsequence"].as_u64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        events_of,
        (1..=HELD as u64).map(|sequence| (sequence, 1)).collect(),
        "each raw message has its event once"
    );
    let raw = js.get_stream("RAW").await.unwrap();
    let info = raw.consumer_info(CONSUMER).await.unwrap().clone();
    assert_eq!(
        info.delivered.consumer_sequence, HELD as u64,
        "each message was delivered once (none redelivered): {info:?}"
    );
    assert_eq!(info.num_ack_pending, 0, "every message is acked: {info:?}");
    host.stop().await;
    // The host told JetStream it was still working on the messages that waited.
    let mut kept_alive = 0;
    while let Ok(Some(answer)) =
        tokio::time::timeout(Duration::from_millis(200), answers.next()).await
    {
        kept_alive += usize::from(answer.payload.as_ref() == b"+WPI");
    }
    assert!(kept_alive > 0, "no in-progress ack was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_fixtures_fail_is_refused_and_the_active_one_keeps_serving() {
    let nats = Nats::start();
    let config = nats.config(&route("misbehave@1.0.0", ""));
    let cfg = config.to_str().unwrap();
    deploy_both(&config);
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;

    // 3.0.0 is the 1.0.0 component, but its fixture now expects another quantity.
    let versions = tempfile::tempdir().unwrap();
    let broken = plugin_version("tests/guests/misbehave", "3.0.0", versions.path());
    let expected = broken.join("fixtures/ok-7.expected.json");
    let text_of = std::fs::read_to_string(&expected)
        .unwrap()
        .replace("\"7\"", "\"8\"");
    std::fs::write(&expected, text_of).unwrap();
    run_ok(&[
        "plugin",
        "deploy",
        broken.to_str().unwrap(),
        "--config",
        cfg,
    ]);

    let refused = millrace(&[
        "route",
        "set-version",
        "steady",
        "misbehave@3.0.0",
        "--config",
        cfg,
    ]);
    let t = text(&refused);
    assert!(!refused.status.success(), "{t}");
    assert!(
        t.contains("misbehave@3.0.0 is refused: 1 of 2 golden fixtures fail"),
        "{t}"
    );
    assert!(t.contains("fixture ok-7.txt fails"), "{t}");

    // Its fixture fixed, the same version is not deployed again over the stored one: it was
    // reported "already deployed, same bytes", and the stored fixture kept failing.
    let fixed = std::fs::read_to_string(&expected)
        .unwrap()
        .replace("\"8\"", "\"7\"");
    std::fs::write(&expected, fixed).unwrap();
    assert_clean_failure(
        &millrace(&[
            "plugin",
            "deploy",
            broken.to_str().unwrap(),
            "--config",
            cfg,
        ]),
        "misbehave@3.0.0 is already deployed with this component but other golden fixtures",
    );

    // The same version with other bytes is refused too.
    let impostor = plugin_version("tests/guests/misbehave-v2", "1.0.0", versions.path());
    let again = millrace(&[
        "plugin",
        "deploy",
        impostor.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert_clean_failure(
        &again,
        "misbehave@1.0.0 is already deployed with other bytes",
    );

    publish(&js, "raw.test.lab.cmd", b"ok 11", "after-refusal").await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(
        events[0].json()["pluginversion"],
        "1.0.0",
        "the active version keeps serving"
    );
    let shown = run_ok(&["route", "show", "steady", "--config", cfg]);
    assert!(shown.contains("never switched"), "{shown}");
}

/// Makes `version` the steady route's shadow candidate and waits until `host` serves it.
async fn set_shadow(host: &mut InProcessHost, cfg: &str, version: &str) {
    run_ok(&[
        "route",
        "set-version",
        "steady",
        version,
        "--shadow",
        "--config",
        cfg,
    ]);
    host.switched("steady", |serving| {
        serving
            .iter()
            .any(|s| s.role == "shadow" && s.version == version)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_candidate_reports_exactly_the_field_it_changes() {
    let nats = Nats::start();
    let config = nats.config(&route("misbehave@1.0.0", ""));
    let cfg = config.to_str().unwrap();
    deploy_both(&config);
    let js = jetstream::new(nats.client().await);
    let mut host = InProcessHost::start(&config).await;

    set_shadow(&mut host, cfg, "misbehave@2.0.0").await;
    publish(&js, "raw.test.lab.cmd", b"ok 5", "shadowed").await;
    let events = read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::from_secs(1)).await;
    assert_eq!(events.len(), 1, "the candidate publishes nothing");
    assert_eq!(events[0].json()["pluginversion"], "1.0.0");
    let reports = read_stream(
        &js,
        "SHADOW",
        "shadow.steady",
        1,
        Duration::from_millis(300),
    )
    .await;
    let report = reports[0].json();
    assert_eq!(
        report["differences"],
        serde_json::json!([{"path": "events[0].data.location", "candidate": "FG-02"}]),
        "exactly the one changed field"
    );
    let diff = run_ok(&["route", "diff", "steady", "--config", cfg]);
    assert!(
        diff.contains("misbehave@1.0.0 -> misbehave@2.0.0"),
        "{diff}"
    );
    assert!(
        diff.contains("events[0].data.location: (absent) -> \"FG-02\""),
        "{diff}"
    );
    assert!(diff.contains("1 message(s) with differences"), "{diff}");

    run_ok(&["route", "promote", "steady", "--config", cfg]);
    host.switched("steady", active_is("misbehave@2.0.0")).await;
    // The config still names 1.0.0: `route show` says it is not what the route serves.
    let shown = run_ok(&["route", "show", "steady", "--config", cfg]);
    assert!(shown.contains("steady: active misbehave@2.0.0"), "{shown}");
    assert!(
        shown.contains(
            "the config's plugin misbehave@1.0.0 is not used while the route has a binding"
        ),
        "{shown}"
    );
    publish(&js, "raw.test.lab.cmd", b"ok 6", "promoted").await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        2,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(events[1].json()["pluginversion"], "2.0.0");
    assert_eq!(events[1].json()["data"]["location"], "FG-02");

    // The config's 1.0.0 tried again in shadow: it is used, as the candidate.
    run_ok(&[
        "route",
        "set-version",
        "steady",
        "misbehave@1.0.0",
        "--shadow",
        "--config",
        cfg,
    ]);
    let shown = run_ok(&["route", "show", "steady", "--config", cfg]);
    assert!(
        shown.contains(
            "the config's plugin misbehave@1.0.0 is the route's candidate, not its active version"
        ) && !shown.contains("is not used"),
        "{shown}"
    );
}

/// A shadow candidate runs beside the live flow: a slow one never delays the message's
/// delivery. Here the active version dead-letters `slow 300` at once, and the shadow spins
/// before it maps it; the letter is published before the shadow's report (it waited for the
/// shadow before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_shadow_never_delays_the_live_delivery() {
    let nats = Nats::start();
    let config = nats.config(&route(
        "misbehave@2.0.0",
        "\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    ));
    let cfg = config.to_str().unwrap();
    deploy_both(&config);
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let mut host = InProcessHost::start(&config).await;
    set_shadow(&mut host, cfg, "misbehave@1.0.0").await;
    // One subscription keeps the order in which the host published.
    let mut published = client.subscribe(">").await.unwrap();
    publish(&js, "raw.test.lab.cmd", b"slow 300", "slow").await;
    let mut order = Vec::new();
    while order.len() < 2 {
        let message = tokio::time::timeout(PATIENCE, published.next())
            .await
            .expect("the letter and the report")
            .unwrap();
        let subject = message.subject.as_str();
        if subject.starts_with("dlq.") || subject.starts_with("shadow.") {
            order.push(subject.to_owned());
        }
    }
    assert_eq!(order, ["dlq.steady", "shadow.steady"]);
    let reports = read_stream(&js, "SHADOW", "shadow.steady", 1, Duration::ZERO).await;
    assert_eq!(reports[0].json()["candidate"], "misbehave@1.0.0");

    // A burst of slow messages: the live flow does not wait for the candidate (it took the
    // workers' queue in turn with the live calls, so the route went at the candidate's pace),
    // so more shadow runs are due than a route keeps in flight, and those beyond are counted,
    // not run: every message gets a report or a count.
    let burst = millrace::routes::SHADOW_RUNS + 8;
    let slow = format!("slow {}", slow_millions_for(Duration::from_millis(100)));
    for n in 0..burst {
        publish(
            &js,
            "raw.test.lab.cmd",
            slow.as_bytes(),
            &format!("burst-{n}"),
        )
        .await;
    }
    let admin = host
        .admin_addr()
        .expect("the config has an [admin] section");
    let skipped_line =
        r#"millrace_shadows_skipped_total{route="steady",plugin_version="misbehave@1.0.0"} "#;
    let started = Instant::now();
    loop {
        let metrics = metrics_text(admin).await;
        let skipped: usize = metrics
            .lines()
            .find_map(|l| l.strip_prefix(skipped_line))
            .map_or(0, |n| n.parse().unwrap());
        let reported = stream_len(&js, "SHADOW").await as usize - 1;
        if skipped + reported == burst {
            assert!(skipped > 0, "every one of {burst} was shadowed");
            break;
        }
        assert!(
            started.elapsed() < PATIENCE && skipped + reported < burst,
            "{skipped} skipped and {reported} reported of {burst}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_takes_its_share_of_messages_by_key() {
    let nats = Nats::start();
    let config = nats.config(&route("misbehave@1.0.0", ""));
    let cfg = config.to_str().unwrap();
    deploy_both(&config);
    let js = jetstream::new(nats.client().await);
    let mut host = InProcessHost::start(&config).await;
    run_ok(&[
        "route",
        "set-version",
        "steady",
        "misbehave@2.0.0",
        "--canary",
        "30",
        "--config",
        cfg,
    ]);
    let serving = host
        .switched("steady", |serving| {
            serving.iter().any(|s| s.role == "canary")
        })
        .await;
    assert!(
        serving
            .iter()
            .any(|s| s.version == "misbehave@2.0.0" && s.percent == Some(30)),
        "{serving:?}"
    );
    for n in 0..200 {
        publish(
            &js,
            "raw.test.lab.cmd",
            format!("ok {n}").as_bytes(),
            &format!("key-{n}"),
        )
        .await;
    }
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        200,
        Duration::from_millis(500),
    )
    .await;
    let mut canaried = 0;
    for e in &events {
        let json = e.json();
        let n = &json["data"]["work_order"].as_str().unwrap()[3..];
        let expected = if millrace::routes::canary_share(&format!("key-{n}")) < 30 {
            canaried += 1;
            "2.0.0"
        } else {
            "1.0.0"
        };
        assert_eq!(json["pluginversion"], expected, "message key-{n}");
    }
    assert!(
        (30..=90).contains(&canaried),
        "about 30% canaried: {canaried}"
    );

    // A rollback drops the canary and keeps the active version (it went back a version too).
    let t = run_ok(&["route", "rollback", "steady", "--config", cfg]);
    assert!(t.contains("steady: active misbehave@1.0.0"), "{t}");
    let serving = host
        .switched("steady", |serving| {
            serving.iter().all(|s| s.role == "active")
        })
        .await;
    assert_eq!(serving.len(), 1, "{serving:?}");
    assert_eq!(serving[0].version, "misbehave@1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_built_against_wit_1_0_and_1_1_serve_side_by_side() {
    let nats = Nats::start();
    let v1_0 = plugin("tests/guests/misbehave");
    let v1_1 = plugin("tests/guests/expiry-v1-1");
    let config = nats.config(&format!(
        "{}\n[routes.receipts]\nsubjects = [\"raw.test.*.receipt\"]\nplugin = {:?}\nconfig = {{ site = \"LAB\" }}\n",
        route(v1_0.to_str().unwrap(), ""),
        v1_1.display().to_string()
    ));
    let cfg = config.to_str().unwrap();
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(
        &config,
        &js,
        &[CONSUMER, "millrace_receipts__raw_test__star__receipt"],
    )
    .await;
    publish(
        &js,
        "raw.test.lab.receipt",
        b"STEEL-1 L-77 250.5 2027-06-30",
        "r1",
    )
    .await;
    publish(&js, "raw.test.lab.cmd", b"ok 3", "c1").await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        2,
        Duration::from_millis(500),
    )
    .await;
    let by_plugin: BTreeMap<String, serde_json::Value> = events
        .iter()
        .map(|e| (e.json()["plugin"].as_str().unwrap().to_owned(), e.json()))
        .collect();
    assert_eq!(
        by_plugin["expiry-v1-1"]["data"]["expiry_date"],
        "2027-06-30"
    );
    assert_eq!(by_plugin["misbehave"]["data"]["work_order"], "WO-3");

    for dir in [&v1_0, &v1_1] {
        run_ok(&["plugin", "deploy", dir.to_str().unwrap(), "--config", cfg]);
    }
    let listed = run_ok(&["plugin", "list", "--config", cfg]);
    assert!(
        listed.contains("expiry-v1-1@1.1.0\tmillrace:mapping@1.1.0"),
        "{listed}"
    );
    assert!(
        listed.contains("misbehave@1.0.0\tmillrace:mapping@1.0.0"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_registry_swaps_versions_without_jetstream_storage() {
    let nats = Nats::start();
    let registry: PathBuf = nats.dir.path().join("registry");
    let config = nats.config(&format!(
        "{}\n[registry]\nkind = \"directory\"\ndir = {:?}\n",
        route("misbehave@1.0.0", ""),
        registry.display().to_string()
    ));
    let cfg = config.to_str().unwrap();
    deploy_both(&config);
    assert!(registry.join("versions/misbehave@2.0.0.wasm").is_file());
    let js = jetstream::new(nats.client().await);
    let mut host = InProcessHost::start(&config).await;
    run_ok(&[
        "route",
        "set-version",
        "steady",
        "misbehave@2.0.0",
        "--config",
        cfg,
    ]);
    host.switched("steady", active_is("misbehave@2.0.0")).await;
    publish(&js, "raw.test.lab.cmd", b"ok 4", "dir").await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(events[0].json()["pluginversion"], "2.0.0");
    assert!(
        js.get_object_store("millrace-plugins").await.is_err(),
        "nothing stored in JetStream"
    );
}

/// Creates a signing key with `millrace plugin keygen`; returns the secret file and public key.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let secret = dir.join(name);
    let out = run_ok(&["plugin", "keygen", secret.to_str().unwrap()]);
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key, for registry.trusted_keys: "))
        .unwrap()
        .to_owned();
    (secret, public)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_versions_signed_by_a_trusted_key_serve_when_signatures_are_required() {
    let nats = Nats::start();
    let keys = tempfile::tempdir().unwrap();
    let (trusted_secret, trusted) = keygen(keys.path(), "trusted.key");
    let (other_secret, other) = keygen(keys.path(), "other.key");
    let config = nats.config(&route("misbehave@1.0.0", ""));
    let cfg = config.to_str().unwrap().to_owned();
    let v1 = plugin("tests/guests/misbehave");
    let t = run_ok(&[
        "plugin",
        "deploy",
        v1.to_str().unwrap(),
        "--sign-key",
        trusted_secret.to_str().unwrap(),
        "--config",
        &cfg,
    ]);
    assert!(t.contains(&format!("signed by {trusted}")), "{t}");
    let v2 = plugin("tests/guests/misbehave-v2");
    run_ok(&["plugin", "deploy", v2.to_str().unwrap(), "--config", &cfg]);
    let versions = tempfile::tempdir().unwrap();
    let v3 = plugin_version("tests/guests/misbehave-v2", "3.0.0", versions.path());
    run_ok(&[
        "plugin",
        "deploy",
        v3.to_str().unwrap(),
        "--sign-key",
        other_secret.to_str().unwrap(),
        "--config",
        &cfg,
    ]);

    // From now on only the trusted key counts.
    let config = nats.config(&format!(
        "{}\n[registry]\ntrusted_keys = [{trusted:?}]\nrequire_signatures = true\n",
        route("misbehave@1.0.0", "")
    ));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    let unsigned = millrace(&[
        "route",
        "set-version",
        "steady",
        "misbehave@2.0.0",
        "--config",
        &cfg,
    ]);
    assert_clean_failure(&unsigned, "misbehave@2.0.0 is refused: it is not signed");
    let untrusted = millrace(&[
        "route",
        "set-version",
        "steady",
        "misbehave@3.0.0",
        "--config",
        &cfg,
    ]);
    assert_clean_failure(
        &untrusted,
        &format!(
            "misbehave@3.0.0 is refused: it is signed by {other}, which is not in registry.trusted_keys"
        ),
    );
    publish(&js, "raw.test.lab.cmd", b"ok 1", "signed").await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(
        events[0].json()["pluginversion"],
        "1.0.0",
        "the signed version serves"
    );

    // A plugin straight from disk cannot be signed, so it is refused too.
    let from_disk = nats.config(&format!(
        "{}\n[registry]\ntrusted_keys = [{trusted:?}]\nrequire_signatures = true\n",
        route(v1.to_str().unwrap(), "")
    ));
    let o = millrace(&["run", "--config", from_disk.to_str().unwrap()]);
    assert_clean_failure(&o, "but registry.require_signatures is on");
}

/// A replay through a deployed version works when the version the route serves is gone from
/// the registry: it loaded the route's own version first and failed naming it, so neither
/// replay nor `dlq redrive --version` could take the way out an operator reaches for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_through_a_deployed_version_needs_not_what_the_route_serves() {
    use base64::Engine as _;
    let nats = Nats::start();
    let config = nats.config(&route("misbehave@2.0.0", ""));
    let cfg = config.to_str().unwrap();
    deploy_both(&config);
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    publish(&js, "raw.test.a.cmd", b"ok 1", "m-1").await;
    read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        1,
        Duration::from_millis(200),
    )
    .await;
    host.stop().await;
    // misbehave@2.0.0 vanishes from the registry's object store.
    let objects = js.get_stream("OBJ_millrace-plugins").await.unwrap();
    for name in ["misbehave@2.0.0.wasm", "misbehave@2.0.0.json"] {
        let encoded = base64::engine::general_purpose::URL_SAFE.encode(name);
        objects
            .purge()
            .filter(format!("$O.millrace-plugins.M.{encoded}"))
            .await
            .unwrap();
    }
    let replayed = run_ok(&[
        "replay",
        "steady",
        "--from",
        "1",
        "--version",
        "misbehave@1.0.0",
        "--config",
        cfg,
    ]);
    assert!(
        replayed.contains("through misbehave@1.0.0: 1 raw message(s), 1 event(s) published"),
        "{replayed}"
    );
}

/// A route the config serves from a folder, then bound to deployed versions: each refusal says
/// what to do, and a host whose binding names a version gone from the registry says which
/// route and binding keep it from starting, and the way back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_that_cannot_be_served_is_named_with_the_way_back() {
    let nats = Nats::start();
    let registry: PathBuf = nats.dir.path().join("registry");
    let folder = plugin("tests/guests/misbehave");
    let config = nats.config(&format!(
        "{}\n[registry]\nkind = \"directory\"\ndir = {:?}\n",
        route(folder.to_str().unwrap(), ""),
        registry.display().to_string()
    ));
    let cfg = config.to_str().unwrap();
    deploy_both(&config);
    let canary = millrace(&[
        "route",
        "set-version",
        "steady",
        "misbehave@2.0.0",
        "--canary",
        "10",
        "--config",
        cfg,
    ]);
    assert_clean_failure(&canary, "route steady serves its configured plugin");
    assert_clean_failure(&canary, "route set-version steady <name@version>");
    run_ok(&[
        "route",
        "set-version",
        "steady",
        "misbehave@2.0.0",
        "--config",
        cfg,
    ]);
    let rollback = millrace(&["route", "rollback", "steady", "--config", cfg]);
    assert_clean_failure(
        &rollback,
        "route steady has no deployed version before misbehave@2.0.0",
    );

    for entry in std::fs::read_dir(registry.join("versions")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("misbehave@2.0.0")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let run = millrace(&["run", "--config", cfg]);
    assert_clean_failure(
        &run,
        "route `steady` is bound to misbehave@2.0.0 as its active version",
    );
    assert_clean_failure(&run, "route set-version steady <name@version>");
}
