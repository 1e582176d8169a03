//! The command line: bad input of every kind gets a clear message, never a panic.

use std::process::Command;

use crate::support::*;

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["up", "--help"],
        vec!["publish", "--help"],
        vec!["plugin", "--help"],
        vec!["plugin", "run", "--help"],
        vec!["plugin", "test", "--help"],
        vec!["plugin", "deploy", "--help"],
        vec!["plugin", "keygen", "--help"],
        vec!["plugin", "precompile", "--help"],
        vec!["plugin", "list", "--help"],
        vec!["plugin", "show", "--help"],
        vec!["route", "--help"],
        vec!["route", "set-version", "--help"],
        vec!["route", "rollback", "--help"],
        vec!["route", "promote", "--help"],
        vec!["route", "diff", "--help"],
        vec!["route", "show", "--help"],
        vec!["dlq", "--help"],
        vec!["dlq", "list", "--help"],
        vec!["dlq", "show", "--help"],
        vec!["dlq", "redrive", "--help"],
        vec!["replay", "--help"],
    ] {
        let o = millrace(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn bad_config_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[routes.a]\nsubjects = [\"raw.a\"]\nplugin = \"p\"\nretries = 3\n",
    )
    .unwrap();
    let o = millrace(&["run", "--config", path.to_str().unwrap()]);
    assert_clean_failure(&o, "bad.toml");
    assert_clean_failure(&o, "retries");

    let o = millrace(&["run", "--config", "/nonexistent/millrace.toml"]);
    assert_clean_failure(&o, "cannot read config file /nonexistent/millrace.toml");
}

#[test]
fn unreachable_nats_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let port = millrace::transport::local_server::free_port().unwrap();
    std::fs::write(
        &path,
        format!("[nats]\nurl = \"nats://127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let o = millrace(&["run", "--config", path.to_str().unwrap()]);
    assert_clean_failure(
        &o,
        &format!("cannot connect to NATS at nats://127.0.0.1:{port}"),
    );
}

#[test]
fn missing_plugin_is_reported() {
    let nats = Nats::start();
    let config =
        nats.config("[routes.lost]\nsubjects = [\"raw.x.y.z\"]\nplugin = \"no/such/plugin\"\n");
    let o = millrace(&["run", "--config", config.to_str().unwrap()]);
    assert_clean_failure(&o, "route `lost`");
    assert_clean_failure(&o, "no/such/plugin not found");
}

/// A file given as a plugin that is no component is named for what it is, in one line.
/// A file that is no component, a component of another world, or one built against a WIT
/// version this host does not serve: each is refused with what it is (and what it imports),
/// in one line.
#[test]
fn a_file_that_is_not_a_mapping_component_is_named_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "ok 1").unwrap();
    let wasm = dir.path().join("p.wasm");
    let component = |relative: &str| {
        let located = millrace::registry::LocalPlugin::locate(&plugin(relative)).unwrap();
        std::fs::read(located.component).unwrap()
    };
    // The same component with every `@1.0.0` of its millrace:mapping names made `@9.0.0` (the
    // same length, so the binary stays valid): built against a version no host serves yet.
    let mut future = component("tests/guests/misbehave");
    for name in ["host", "types", "canonical"] {
        let old = format!("millrace:mapping/{name}@1.0.0");
        let new = format!("millrace:mapping/{name}@9.0.0");
        let mut replaced = 0;
        while let Some(at) = future.windows(old.len()).position(|w| w == old.as_bytes()) {
            future[at..at + old.len()].copy_from_slice(new.as_bytes());
            replaced += 1;
        }
        assert!(
            replaced > 0,
            "misbehave is built against millrace:mapping@1.0.0"
        );
    }
    let no_world = "does not fit a world this host serves";
    let cases: [(Vec<u8>, &[&str]); 6] = [
        (
            Vec::new(),
            &["is not a valid WebAssembly component: the file is empty"],
        ),
        (
            b"\0asm\x01\0\0\0".to_vec(),
            &["a core WebAssembly module, not a component"],
        ),
        (
            b"PK\x03\x04".to_vec(),
            &["it is not a WebAssembly file: it starts with [50, 4b, 03, 04]"],
        ),
        (
            component("plugins/edi-ack"),
            &[
                no_world,
                "it exports `acknowledge`: it is an acknowledger, which maps no raw messages",
            ],
        ),
        (
            future,
            &[
                no_world,
                "of no served millrace:mapping version: rebuild it against one of those",
                "millrace:mapping/host@9.0.0",
                "millrace:mapping/types@9.0.0",
                "millrace:mapping/canonical@9.0.0",
            ],
        ),
        (
            b"\0asm\x0d\0\x01\0".to_vec(),
            &[
                no_world,
                "it imports no millrace:mapping interface, so it was not built against this host's WIT",
            ],
        ),
    ];
    for (bytes, needles) in cases {
        std::fs::write(&wasm, bytes).unwrap();
        let o = millrace(&[
            "plugin",
            "run",
            wasm.to_str().unwrap(),
            input.to_str().unwrap(),
            "--subject",
            "raw.a.b.c",
        ]);
        for needle in needles {
            assert_clean_failure(&o, needle);
        }
        assert_eq!(text(&o).trim().lines().count(), 1, "{}", text(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reports_where_each_message_went() {
    let nats = Nats::start();
    let client = nats.client().await;
    let js = async_nats::jetstream::new(client);
    millrace::transport::ensure_streams(&js, &Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.txt");
    std::fs::write(&file, "hello").unwrap();
    let file = file.to_str().unwrap();
    let url = nats.url();

    // Raw messages only: a file on a host's subjects (canonical events, dead letters) would be
    // stored there as if a host had written it.
    for subject in [
        "other.subject",
        "canonical.production-completion.PLANT1",
        "dlq.mes",
    ] {
        let o = millrace(&["publish", subject, file, "--nats", &url]);
        assert_clean_failure(&o, &format!("{subject} is not a raw subject"));
        assert_clean_failure(&o, "(streams.raw_subjects: raw.>)");
    }
    assert_eq!(stream_len(&js, "CANONICAL").await, 0);
    let o = millrace(&["publish", "raw.bad..subject", file, "--nats", &url]);
    assert_clean_failure(&o, "invalid subject");
    let big = dir.path().join("big.edi");
    std::fs::write(&big, vec![b'x'; 1024 * 1024]).unwrap();
    let o = millrace(&[
        "publish",
        "raw.wms.plant1.moves",
        big.to_str().unwrap(),
        "--nats",
        &url,
    ]);
    assert_clean_failure(&o, "more than the 1048576 bytes one NATS message may hold");

    // A subject the RAW stream captures but no route consumes: stored, with a warning.
    let config =
        nats.config("[routes.mes]\nsubjects = [\"raw.mes.*.shift-report\"]\nplugin = \"p\"\n");
    let o = millrace(&[
        "publish",
        "raw.wms.plant1.moves",
        file,
        "--config",
        config.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("warning: no route in"), "{t}");
    assert!(t.contains("consumes raw.wms.plant1.moves"), "{t}");
    assert!(
        t.contains("-> raw.wms.plant1.moves: stored (stream RAW seq 1"),
        "{t}"
    );
    let o = millrace(&["publish", "raw.wms.plant1.moves", file, "--nats", &url]);
    assert!(
        text(&o).contains("already stored, not stored again"),
        "{}",
        text(&o)
    );
}

#[test]
fn plugin_run_prints_events_or_the_map_error() {
    let dir = plugin("tests/guests/misbehave");
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), "ok 5").unwrap();
    let o = millrace(&[
        "plugin",
        "run",
        dir.to_str().unwrap(),
        input.path().to_str().unwrap(),
        "--set",
        "site=P9",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["kind"], "production-completion");
    assert_eq!(line["site"], "P9");
    assert_eq!(line["data"]["work_order"], "WO-5");

    for (payload, expected) in [
        ("", "map error (malformed-input)"),
        ("\u{fffd}garbage", "map error (malformed-input)"),
        (
            "reject",
            "map error (rejected-by-rule): rejected on purpose",
        ),
    ] {
        std::fs::write(input.path(), payload).unwrap();
        let o = millrace(&[
            "plugin",
            "run",
            dir.to_str().unwrap(),
            input.path().to_str().unwrap(),
        ]);
        assert_clean_failure(&o, expected);
    }
}

/// An acknowledger and an outbound plugin are not mappers: `plugin run` calls what they export
/// instead of refusing them as components that fit no world.
#[test]
fn plugin_run_acknowledges_an_interchange_or_renders_an_event() {
    let ack = plugin("plugins/edi-ack");
    let asn = root().join("plugins/x12-856/fixtures/856.edi");
    let run_ack = |input: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "plugin",
            "run",
            ack.to_str().unwrap(),
            input.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        millrace(&args)
    };
    // Byte for byte the fixture's acknowledgement, for the same control number and time.
    let o = run_ack(
        &asn,
        &["--control-number", "1002", "--now", "2026-11-30T04:05:00Z"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        o.stdout,
        std::fs::read(root().join("plugins/edi-ack/fixtures/x12-856-accepted.ack")).unwrap()
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("acknowledgement for partner 4405197800"));
    // What became of it inbound is the acknowledgement's verdict.
    let o = run_ack(
        &asn,
        &["--inbound", "failed:malformed-input: SN103 'XX' is no unit"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("AK5*R"),
        "{}",
        text(&o)
    );
    // An acknowledgement is not acknowledged.
    let o = run_ack(
        &root().join("plugins/edi-ack/fixtures/x12-997-not-acknowledged.edi"),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        o.stdout.is_empty() && text(&o).contains("no acknowledgement"),
        "{}",
        text(&o)
    );
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), "hello").unwrap();
    assert_clean_failure(&run_ack(garbage.path(), &[]), "acknowledge error: ");
    assert_clean_failure(
        &run_ack(&asn, &["--inbound", "mapped"]),
        "neither mapped:N nor failed:REASON",
    );

    // An outbound plugin renders the event of a case file (or a bare CloudEvent).
    let poster = plugin("plugins/erp-postings");
    let case = root().join("plugins/erp-postings/fixtures/completion-101-posted.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&case).unwrap()).unwrap();
    let event = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(event.path(), fixture["event"].to_string()).unwrap();
    for input in [case.as_path(), event.path()] {
        let o = millrace(&[
            "plugin",
            "run",
            poster.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let requests: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(requests, fixture["requests"].as_array().unwrap().clone());
    }
    let o = millrace(&[
        "plugin",
        "run",
        poster.to_str().unwrap(),
        asn.to_str().unwrap(),
    ]);
    assert_clean_failure(
        &o,
        "is not JSON: an outbound plugin renders a canonical event",
    );
}

#[test]
fn plugins_are_granted_nothing() {
    let dir = plugin("tests/guests/misbehave");
    let input = tempfile::NamedTempFile::new().unwrap();
    for (cmd, item) in [
        ("env", "env:0"),
        ("file", "file:denied"),
        ("clock", "clock:0"),
    ] {
        std::fs::write(input.path(), cmd).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_millrace"))
            .args([
                "plugin",
                "run",
                dir.to_str().unwrap(),
                input.path().to_str().unwrap(),
            ])
            .env("SECRET_TOKEN", "must-not-leak")
            .output()
            .unwrap();
        assert!(o.status.success(), "{cmd}: {}", text(&o));
        let event: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(event["data"]["item"], item, "{cmd}");
    }
}

#[test]
fn plugin_test_passes_the_golden_fixtures_and_diffs_a_failure() {
    let dir = plugin("plugins/mes-shift-report");
    let o = millrace(&["plugin", "test", dir.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("PASS "), "{t}");
    assert!(t.contains(" 0 failed"), "{t}");

    // A copy of the plugin whose first good fixture expects another quantity fails with a diff.
    let versions = tempfile::tempdir().unwrap();
    let copy = plugin_version("plugins/mes-shift-report", "1.0.0", versions.path());
    let mut tampered = false;
    for input in millrace::registry::fixtures::inputs(&copy).unwrap() {
        let expected_path = millrace::registry::fixtures::expected_path(&input);
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
        let amount = value.pointer_mut("/events/0/data/good_quantity/amount");
        if let (false, Some(amount)) = (tampered, amount) {
            *amount = serde_json::Value::String("99999".into());
            std::fs::write(
                &expected_path,
                serde_json::to_string_pretty(&value).unwrap(),
            )
            .unwrap();
            tampered = true;
        }
    }
    assert!(tampered, "a fixture with a production completion exists");
    let o = millrace(&["plugin", "test", copy.to_str().unwrap()]);
    assert_clean_failure(&o, "FAIL ");
    let t = text(&o);
    assert!(
        t.lines()
            .any(|l| l.trim_start().starts_with('-') && l.contains("\"amount\": \"99999\"")),
        "the diff shows the expected line: {t}"
    );
    assert_clean_failure(&o, " 1 failed");
}

/// An outbound fixture whose expected requests are exactly what the plugin renders still fails
/// when the host would refuse to send one of them (here a header value with a line break and a
/// second header after it): the plugin's author learns it from `plugin test`, and a deploy's
/// admission refuses the version, instead of every such event being dead-lettered live.
#[test]
fn plugin_test_fails_a_poster_fixture_whose_request_the_host_would_refuse() {
    let versions = tempfile::tempdir().unwrap();
    let copy = plugin_version("tests/guests/poster", "1.0.0", versions.path());
    let fixtures = copy.join("fixtures");
    let mut case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("completion.json")).unwrap())
            .unwrap();
    case["event"]["data"]["work_order"] = "WO-HEADER-SPLIT".into();
    let request = &mut case["requests"][0];
    request["body"]["work_order"] = "WO-HEADER-SPLIT".into();
    request["headers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(["X-Note", "ok\r\nX-Injected: yes"]));
    std::fs::write(
        fixtures.join("header-split.json"),
        serde_json::to_string_pretty(&case).unwrap(),
    )
    .unwrap();
    let o = millrace(&["plugin", "test", copy.to_str().unwrap()]);
    assert_clean_failure(&o, " 1 failed");
    let t = text(&o);
    assert!(
        t.contains("request 0 would be refused when posted: the value of header `X-Note` holds the control character '\\r'"),
        "{t}"
    );
    assert!(
        !t.contains("\"requests\""),
        "the requests themselves match: {t}"
    );
}

#[test]
fn up_once_runs_the_example_end_to_end() {
    let state = tempfile::tempdir().unwrap();
    let port = millrace::transport::local_server::free_port()
        .unwrap()
        .to_string();
    let config = root().join("examples/millrace.toml");
    let o = millrace(&[
        "up",
        "--config",
        config.to_str().unwrap(),
        "--once",
        "--port",
        &port,
        "--state-dir",
        state.path().to_str().unwrap(),
        // Any free port: other tests of this binary may serve an admin API at the same time.
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "started nats-server with JetStream at nats://127.0.0.1:{port}"
        )),
        "{t}"
    );
    let events = t
        .lines()
        .filter(|l| l.starts_with("EVENT canonical."))
        .count();
    assert_eq!(
        events, 15,
        "the three good sample reports give 15 events: {t}"
    );
    assert!(
        t.contains("EVENT canonical.production-completion.PLANT1  WO-4711@PLANT1/0010"),
        "{t}"
    );
    assert!(
        t.contains("DEAD LETTER dlq.mes-plant1  raw.mes.plant1.shift-report seq 4: malformed-input: line 4, field detail-count"),
        "{t}"
    );
}
