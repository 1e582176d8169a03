//! Every plugin, in every language, passes its golden fixtures through `millrace plugin test`,
//! and all of them run in one host at once, routed by subject.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;
use millrace::registry::{LocalPlugin, Manifest, fixtures};
use millrace::transport::consumer_name;

/// The plugin folders: every plugin (mapping and outbound) and the Rust, Python and JavaScript
/// templates (mapping and poster).
fn plugin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("plugin.toml").is_file())
        .collect();
    dirs.sort();
    dirs.push(root().join("sdk/rust/template"));
    dirs.push(root().join("sdk/python/template"));
    dirs.push(root().join("sdk/js/template"));
    dirs.push(root().join("sdk/python/template-poster"));
    dirs.push(root().join("sdk/js/template-poster"));
    dirs
}

#[test]
fn every_plugin_passes_its_golden_fixtures() {
    let dirs = plugin_dirs();
    assert!(
        dirs.len() >= 18,
        "thirteen plugins and five templates: {dirs:?}"
    );
    for dir in dirs {
        let o = millrace(&["plugin", "test", dir.to_str().unwrap()]);
        let t = text(&o);
        assert!(o.status.success(), "{}:\n{t}", dir.display());
        assert!(t.contains(" 0 failed"), "{}:\n{t}", dir.display());
    }
}

/// The Python and JavaScript kits build against the WIT version a plugin's manifest names: the
/// templates set to millrace:mapping@1.1.0 carry the expiry date that version added (on 1.0.0
/// the templates' own fixtures pass without it).
/// Their second fixture holds a bin as a number, which the plugin passes into the event
/// unchecked: the kit refuses the message as `other`, naming the field (it trapped, and the
/// dead letter said only that the call failed).
#[test]
fn the_kits_build_against_the_wit_version_of_the_manifest() {
    for dir in ["tests/guests/kit-python-v1-1", "tests/guests/kit-js-v1-1"] {
        let o = millrace(&["plugin", "test", root().join(dir).to_str().unwrap()]);
        let t = text(&o);
        assert!(o.status.success(), "{dir}:\n{t}");
        assert!(t.contains("2 passed, 0 failed"), "{dir}:\n{t}");
    }
}

/// Every kit builds outbound plugins for the `poster` world of millrace:outbound@1.0.0: the
/// Rust plugins (`export_poster!`) and the Python and JavaScript templates become components
/// that export `render` and `interpret` and import the posting types and the host interface.
#[test]
fn the_kits_build_poster_components() {
    let engine = wasmtime::Engine::default();
    for dir in [
        "plugins/erp-postings",
        "plugins/hold-orchestration",
        "sdk/python/template-poster",
        "sdk/js/template-poster",
    ] {
        let built = LocalPlugin::locate(&root().join(dir))
            .unwrap_or_else(|e| panic!("building {dir}: {e:#}"));
        let component = wasmtime::component::Component::from_file(&engine, &built.component)
            .unwrap_or_else(|e| panic!("{dir}: {e:#}"));
        let ty = component.component_type();
        let exports: Vec<&str> = ty.exports(&engine).map(|(name, _)| name).collect();
        let imports: Vec<&str> = ty.imports(&engine).map(|(name, _)| name).collect();
        // componentize-py adds its own `exports` instance beside the world's functions.
        for function in ["render", "interpret"] {
            assert!(exports.contains(&function), "{dir} exports {exports:?}");
        }
        assert!(!exports.contains(&"map"), "{dir} exports {exports:?}");
        for interface in [
            "millrace:outbound/posting@1.0.0",
            "millrace:mapping/canonical@1.1.0",
            "millrace:mapping/host@1.1.0",
        ] {
            assert!(imports.contains(&interface), "{dir} imports {imports:?}");
        }
        assert!(
            !imports
                .iter()
                .any(|i| i.starts_with("millrace:mapping/types")),
            "{dir} imports only what the poster world names: {imports:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_plugins_run_in_one_host_routed_by_subject() {
    let nats = Nats::start();
    let mut routes = String::new();
    let mut consumers = Vec::new();
    let mut expected: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut messages = Vec::new();
    for dir in plugin_dirs()
        .into_iter()
        .filter(|d| d.starts_with(root().join("plugins")))
    {
        let manifest = Manifest::load(&dir).unwrap();
        // Outbound plugins take canonical events, not raw messages: the outbound tests run them.
        if manifest.wit.starts_with("millrace:outbound@") {
            continue;
        }
        let subject = manifest.fixtures.subject.clone();
        // Fixtures reuse control numbers and business keys across files; this test is about
        // routing, so resend and order tracking stay out of the way.
        routes.push_str(&fixture_route(
            &manifest.name,
            &dir,
            &subject,
            "ordering = \"off\"\nidempotency = false\n",
        ));
        consumers.push(consumer_name(&manifest.name, &subject));
        for input in fixtures::inputs(&dir).unwrap() {
            let outcome: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(fixtures::expected_path(&input)).unwrap(),
            )
            .unwrap();
            if let Some(events) = outcome["events"].as_array() {
                expected
                    .entry(manifest.name.clone())
                    .or_default()
                    .extend(events.iter().cloned());
                messages.push((subject.clone(), std::fs::read(&input).unwrap()));
            }
        }
    }
    assert_eq!(
        expected.len(),
        11,
        "every plugin has events to map: {:?}",
        expected.keys()
    );
    let config = nats.config(&routes);
    let js = async_nats::jetstream::new(nats.client().await);
    let consumers: Vec<&str> = consumers.iter().map(String::as_str).collect();
    let host = Host::start(&config, &js, &consumers).await;
    for (i, (subject, payload)) in messages.iter().enumerate() {
        publish(&js, subject, payload, &format!("m{i}")).await;
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let stored = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        total,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(
        stored.len(),
        total,
        "every event once:\n{}",
        host.log_text()
    );
    let mut actual: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for event in &stored {
        let json = event.json();
        actual
            .entry(json["plugin"].as_str().unwrap().to_owned())
            .or_default()
            .push(json);
    }
    for (plugin, want) in &expected {
        let got = &actual[plugin];
        assert_eq!(got.len(), want.len(), "{plugin}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(
                g["type"],
                format!("millrace.{}.v1", w["kind"].as_str().unwrap()),
                "{plugin}"
            );
            assert_eq!(g["data"], w["data"], "{plugin}");
            assert_eq!(g["time"], w["occurred_at"], "{plugin}");
        }
    }
    assert_eq!(try_stream_len(&js, "DLQ").await, Some(0));
}

/// `scripts/demo --once` on a fresh state folder routes every plugin kind and prints one lot's
/// journey: in transit, received, blocked by a quality hold; the hold posted to the ERP, the WMS
/// and the notification service (NATS targets), and a consumption of the lot held at the posting
/// gate; then exits 0.
#[test]
fn the_demo_follows_one_lot_from_in_transit_to_blocked() {
    let state = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = std::process::Command::new(root().join("scripts/demo"))
        .args(["--once", "--port", &port.to_string()])
        // Any free port: other tests of this binary may serve an admin API at the same time.
        .args(["--admin-listen", "127.0.0.1:0", "--state-dir"])
        .arg(state.path())
        .current_dir(root())
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let console = t
        .lines()
        .find_map(|l| l.strip_prefix("The console shows the same: http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no console address:\n{t}"));
    assert_ne!(
        console, "9470/",
        "--admin-listen 127.0.0.1:0 takes a free port"
    );
    // The tables, one row per line with single spaces, split at each step's title.
    let rows: Vec<String> = t
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let start = rows
        .iter()
        .position(|r| r.starts_with("== the journey of lot L2026-0211"))
        .expect(&t);
    let step = |n: &str| -> Vec<&String> {
        rows[start..]
            .iter()
            .skip_while(|r| !r.starts_with(n))
            .skip(1)
            .take_while(|r| !r.starts_with("=="))
            .collect()
    };
    let has = |rows: &[&String], row: &str| rows.iter().any(|r| r.starts_with(row));
    let shipped = step("== 1.");
    assert!(
        has(&shipped, "PLANT1 HSG-4410-A - L2026-0211 0 0 0 40 EA"),
        "{shipped:?}"
    );
    let received = step("== 2.");
    assert!(
        has(&received, "PLANT1 HSG-4410-A - L2026-0211 0 0 0 10 EA"),
        "{received:?}"
    );
    assert!(
        has(&received, "PLANT1 HSG-4410-A WH1 L2026-0211 30 0 30 0 EA"),
        "{received:?}"
    );
    let blocked = step("== 3.");
    assert!(
        has(
            &blocked,
            "PLANT1 HSG-4410-A WH1 L2026-0211 30 30 0 0 EA NCR-2026-0142"
        ),
        "{blocked:?}"
    );
    // The outbound half: the hold is sent to the three NATS targets in order, each request
    // acknowledged as posted on posting.<target>.PLANT1.
    let hold_posted = step("== 4.");
    let sent: Vec<&str> = hold_posted
        .iter()
        .filter_map(|r| r.strip_prefix("SENT "))
        .filter_map(|r| r.split(' ').next())
        .collect();
    assert_eq!(
        sent,
        ["out.erp.PLANT1", "out.wms.PLANT1", "out.notify.PLANT1"],
        "{hold_posted:?}"
    );
    for (n, target) in ["erp", "wms", "notify"].iter().enumerate() {
        let acknowledged = format!(
            "POSTING posting.{target}.PLANT1 quality-hold NCR-2026-0142@PLANT1 request {} by \
             hold-orchestration: posted (HTTP 200)",
            n + 1
        );
        assert!(has(&hold_posted, &acknowledged), "{hold_posted:?}");
    }
    assert!(
        hold_posted
            .iter()
            .any(|r| r.starts_with("SENT out.erp.PLANT1")
                && r.contains("\"GoodsMovementType\":\"344\"")),
        "{hold_posted:?}"
    );
    // A consumption of the held lot waits at the posting gate, and says why.
    let held = step("== 5.");
    assert!(
        held.iter().any(|r| r.starts_with("erp-postings ")
            && r.contains("lot L2026-0211 of item HSG-4410-A is under quality hold NCR-2026-0142")),
        "{held:?}"
    );
    // Opening balances come first: no stock position goes negative.
    assert!(
        !rows.iter().any(|r| r.starts_with("PLANT1 ")
            && r.split(' ')
                .nth(4)
                .is_some_and(|on_hand| on_hand.starts_with('-'))),
        "a negative stock position:\n{t}"
    );
}

/// A golden fixture meets the host's rules exactly as live traffic does: under an ownership
/// rule its source system breaks, `plugin test --config` fails it, admission refuses the
/// version, and the same message live is dead-lettered, all with the same reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixture_that_breaks_a_host_rule_fails_as_the_live_message_does() {
    let nats = Nats::start();
    let dir = plugin("tests/guests/misbehave");
    let route = fixture_route("steady", &dir, "raw.test.*.cmd", "");
    let config = nats.config(&format!(
        "{route}\n[[governance.ownership]]\nkind = \"production-completion\"\nsite = \"TEST\"\nowner = \"mes\"\n"
    ));
    let cfg = config.to_str().unwrap();
    let reason = "event 0 (production-completion) at site TEST: production-completion there is owned by mes, not by test";

    // Without the host's rules the fixtures pass; with them, ok-7 fails on ownership.
    let free = millrace(&["plugin", "test", dir.to_str().unwrap()]);
    assert!(free.status.success(), "{}", text(&free));
    let judged = millrace(&["plugin", "test", dir.to_str().unwrap(), "--config", cfg]);
    let t = text(&judged);
    assert!(!judged.status.success(), "{t}");
    assert!(t.contains("FAIL fixtures/ok-7.txt"), "{t}");
    assert!(t.contains("PASS fixtures/reject.txt"), "{t}");
    assert!(t.contains("\"kind\": \"not-owner\""), "{t}");
    assert!(t.contains(reason), "{t}");

    // Admission on this host refuses the version for the same reason.
    let deployed = millrace(&["plugin", "deploy", dir.to_str().unwrap(), "--config", cfg]);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let set_version = ["route", "set-version", "steady", "misbehave@1.0.0"];
    let refused = millrace(&[&set_version[..], &["--config", cfg]].concat());
    assert_clean_failure(
        &refused,
        "misbehave@1.0.0 is refused: 1 of 2 golden fixtures fail",
    );
    let t = text(&refused);
    assert!(
        t.contains("fixture ok-7.txt fails") && t.contains(reason),
        "{t}"
    );

    // Live, the fixture's input on the fixture's subject is dead-lettered with that reason.
    let js = async_nats::jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    let input = std::fs::read(dir.join("fixtures/ok-7.txt")).unwrap();
    let subject = Manifest::load(&dir).unwrap().fixtures.subject;
    publish(&js, &subject, &input, "fixture-ok-7-live").await;
    let letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::from_millis(500)).await;
    assert_eq!(letters[0].header("Millrace-Error-Kind"), Some("not-owner"));
    assert_eq!(letters[0].header("Millrace-Error"), Some(reason));
    host.stop().await;
}
