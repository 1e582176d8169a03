//! Observability and operations against a real nats-server and the real `millrace` binary:
//! traffic with failures and late events drives the Prometheus metrics, the figures of the
//! admin API and `millrace status`; deploy, activate and rollback over HTTP; HTTP ingest; the
//! trace context carried from the raw message to its events and exported over OTLP.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use async_nats::HeaderMap;
use async_nats::jetstream;
use base64::Engine as _;
use millrace::transport::local_server::free_port;
use serde_json::{Value, json};

const CONSUMER: &str = "millrace_line__raw_test__star__cmd";
const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef";
const READ_SECRET: &str = "read-secret-0123456789abcdef";
const INGEST_SECRET: &str = "ingest-secret-0123456789abcdef";

/// A host config with the misbehave plugin on route `line`, an admin server with three
/// tokens on a free port, and `extra` sections.
fn observed_config(nats: &Nats, extra: &str) -> (PathBuf, String) {
    let dir = nats.dir.path();
    for (name, secret) in [
        ("admin", ADMIN_SECRET),
        ("read", READ_SECRET),
        ("ingest", INGEST_SECRET),
    ] {
        std::fs::write(dir.join(format!("{name}.token")), format!("{secret}\n")).unwrap();
    }
    let port = free_port().unwrap();
    let token = |name: &str, scope: &str| {
        let subjects = if scope == "ingest" {
            "subjects = [\"raw.test.*.*\"]\n"
        } else {
            ""
        };
        format!(
            "[[admin.tokens]]\nname = \"{name}\"\nscope = \"{scope}\"\nsecret_file = {:?}\n{subjects}",
            dir.join(format!("{name}.token")).display().to_string()
        )
    };
    let routes = format!(
        "[routes.line]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nconfig = {{ site = \"PLANT9\", partner = \"acme\" }}\nretry = {{ attempts = 2, backoff = \"10ms\" }}\n\n\
         [admin]\nlisten = \"127.0.0.1:{port}\"\ningest_max_kib = 1\n{}{}{}\n{extra}",
        plugin("tests/guests/misbehave").display().to_string(),
        token("admin", "admin"),
        token("read", "read"),
        token("ingest", "ingest"),
    );
    (nats.config(&routes), format!("http://127.0.0.1:{port}"))
}

/// A small HTTP client of the admin API.
struct Admin {
    base: String,
    http: reqwest::Client,
}

impl Admin {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            // No idle connections kept: the admin server closes a connection that sends no
            // request within `admin.header_timeout`, and a POST on a connection it is closing
            // fails (IncompleteMessage) instead of being retried.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path, Some(READ_SECRET)).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn ingest(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/ingest/{path}", self.base))
            .header("Content-Type", "text/plain")
            .body(body.to_vec());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The metric samples, by their line name with labels.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let (status, text) = self.get("/metrics", Some(READ_SECRET)).await;
        assert_eq!(status, 200, "{text}");
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').unwrap();
                (name.to_owned(), value.parse().unwrap())
            })
            .collect()
    }
}

fn metric(metrics: &BTreeMap<String, f64>, name: &str) -> f64 {
    *metrics.get(name).unwrap_or_else(|| {
        panic!(
            "no metric {name} in:\n{}",
            metrics.keys().cloned().collect::<Vec<_>>().join("\n")
        )
    })
}

/// Waits until the route's figures show `messages` messages done, where each message gives
/// one event or one dead letter. `messages` counts a message when it is taken in, before its
/// plugin call, so it alone does not say the message is done.
async fn wait_messages(admin: &Admin, messages: u64) -> Value {
    let started = Instant::now();
    loop {
        let status = admin.json("/api/v1/status").await;
        let figures = &status["routes"][0]["figures"];
        let count = |name: &str| figures[name].as_u64().unwrap_or_default();
        if count("messages") == messages
            && count("events") + count("dead_letters") == messages
            && figures["pending"] == 0
        {
            return status;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "not {messages} messages: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_the_api_tell_what_traffic_did() {
    let nats = Nats::start();
    let (config, base) = observed_config(&nats, "");
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    let admin = Admin::new(&base);

    // Five good messages, a late one, a map error and a trap (tried twice).
    publish_each(&js, "raw.test.lab.cmd", mixed_traffic(5)).await;
    publish(&js, "raw.test.lab.cmd", b"trap", "trap").await;
    let status = wait_messages(&admin, 9).await;
    read_stream(&js, "DLQ", "dlq.>", 2, Duration::ZERO).await;

    let route = &status["routes"][0];
    assert_eq!(route["name"], "line");
    assert_eq!(route["serving"][0]["role"], "active");
    assert_eq!(route["serving"][0]["version"], "misbehave@1.0.0");
    let f = &route["figures"];
    assert_eq!(
        (
            &f["events"],
            &f["dead_letters"],
            &f["late_events"],
            &f["retries"],
            &f["plugin_failures"]
        ),
        (&json!(7), &json!(2), &json!(1), &json!(1), &json!(3)),
        "{f:#}"
    );
    assert_eq!(status["sites"]["PLANT9"]["postings"], 7);
    assert_eq!(status["sites"]["PLANT9"]["late_events"], 1);
    assert_eq!(status["sites"]["PLANT9"]["failures"], 2);
    assert!(
        status["sites"]["PLANT9"]["posting_delay_max_seconds"]
            .as_f64()
            .unwrap()
            > 3600.0
    );
    assert_eq!(
        status["partners"]["acme"]["failures"],
        json!({"map-error": 1, "trap": 1})
    );

    let m = admin.metrics().await;
    let at = r#"route="line",plugin_version="misbehave@1.0.0""#;
    assert_eq!(metric(&m, &format!("millrace_messages_total{{{at}}}")), 9.0);
    assert_eq!(
        metric(
            &m,
            &format!("millrace_events_total{{{at},kind=\"production-completion\"}}")
        ),
        7.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("millrace_late_events_total{{{at},kind=\"production-completion\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("millrace_dead_letters_total{{{at},reason=\"map-error\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("millrace_dead_letters_total{{{at},reason=\"trap\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            &format!("millrace_plugin_failures_total{{{at},reason=\"trap\"}}")
        ),
        2.0
    );
    assert_eq!(metric(&m, &format!("millrace_retries_total{{{at}}}")), 1.0);
    assert_eq!(
        metric(&m, &format!("millrace_plugin_call_seconds_count{{{at}}}")),
        10.0
    );
    assert_eq!(
        metric(&m, "millrace_end_to_end_seconds_count{route=\"line\"}"),
        9.0
    );
    assert_eq!(
        metric(
            &m,
            "millrace_posting_delay_seconds_count{kind=\"production-completion\",site=\"PLANT9\"}"
        ),
        7.0
    );
    assert_eq!(
        metric(
            &m,
            "millrace_site_failures_total{site=\"PLANT9\",partner=\"acme\",reason=\"trap\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "millrace_route_version_info{route=\"line\",plugin_version=\"misbehave@1.0.0\",role=\"active\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "millrace_consumer_pending_messages{route=\"line\",subject=\"raw.test.*.cmd\"}"
        ),
        0.0
    );

    // Dead letters: listed, shown with their payload, redriven (and failing again).
    let letters = admin.json("/api/v1/dead-letters?route=line").await;
    let kinds: Vec<&str> = letters
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["error_kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rejected-by-rule", "trap"]);
    assert_eq!(letters[1]["attempts"], 2);
    let sequence = letters[0]["sequence"].as_u64().unwrap();
    let letter = admin
        .json(&format!("/api/v1/dead-letters/{sequence}"))
        .await;
    assert_eq!(letter["payload_text"], "reject");
    assert_eq!(letter["raw_subject"], "raw.test.lab.cmd");
    let (code, again) = admin
        .post(
            &format!("/api/v1/dead-letters/{sequence}/redrive"),
            Some(ADMIN_SECRET),
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        again["still_failing"],
        "rejected-by-rule: rejected on purpose"
    );
    let m = admin.metrics().await;
    assert_eq!(
        metric(&m, &format!("millrace_plugin_call_seconds_count{{{at}}}")),
        11.0,
        "the redrive's plugin call is counted like any other"
    );
    assert_eq!(
        metric(
            &m,
            &format!("millrace_dead_letters_total{{{at},reason=\"map-error\"}}")
        ),
        1.0,
        "failing again on redrive writes no second letter"
    );
    let (code, _) = admin
        .post(
            &format!("/api/v1/dead-letters/{sequence}/redrive"),
            Some(READ_SECRET),
            json!({}),
        )
        .await;
    assert_eq!(code, 403, "a read token may not redrive");
    assert_eq!(
        admin
            .get("/api/v1/dead-letters/9999", Some(READ_SECRET))
            .await
            .0,
        404
    );
    // Sequences start at 1: none at 0 (it was a 503 with JetStream's words).
    assert_eq!(
        admin
            .get("/api/v1/dead-letters/0", Some(READ_SECRET))
            .await
            .0,
        404
    );
    // A limit of 0 lists nothing: the caller's mistake, said (it listed one).
    let (code, body) = admin
        .get("/api/v1/dead-letters?limit=0", Some(READ_SECRET))
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("`limit` is 0"), "{body}");
    // A time ago further back than a time can be is the caller's error, not a panic.
    let (code, body) = admin
        .get("/api/v1/audit?since=99999999d", Some(READ_SECRET))
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("99999999d"), "{body}");

    // `millrace status` shows the same figures.
    let token_file = nats.dir.path().join("read.token");
    let out = millrace(&[
        "status",
        "--admin",
        &base,
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("NATS connected, ready"), "{shown}");
    let line = shown
        .lines()
        .find(|l| l.starts_with("line "))
        .unwrap_or_else(|| panic!("{shown}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // The redrive above took the letter through the route's pipeline again: a tenth message.
    assert_eq!(
        cells[1..],
        [
            "misbehave@1.0.0",
            "(active)",
            "10",
            "2",
            "10",
            "7",
            "2",
            "1",
            "1",
            "0"
        ],
        "{line}"
    );
    assert!(shown.contains("acme"), "{shown}");
    let denied = millrace(&["status", "--admin", &base, "--token", "not-a-token-at-all"]);
    assert_clean_failure(&denied, "401 Unauthorized: the token is not valid");

    // HTTP ingest: stored once per key, mapped like any raw message, refused with reasons.
    let (code, stored) = admin
        .ingest(
            "test/web/cmd",
            Some(INGEST_SECRET),
            Some("hook-1"),
            b"ok 42",
        )
        .await;
    assert_eq!(code, 202, "{stored}");
    assert_eq!(
        (&stored["subject"], &stored["duplicate"], &stored["routed"]),
        (&json!("raw.test.web.cmd"), &json!(false), &json!(true))
    );
    let (code, again) = admin
        .ingest(
            "test/web/cmd",
            Some(INGEST_SECRET),
            Some("hook-1"),
            b"ok 42",
        )
        .await;
    assert_eq!(
        (code, &again["duplicate"], &again["sequence"]),
        (200, &json!(true), &stored["sequence"])
    );
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.production-completion.PLANT9",
        8,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), 8, "the ingested message maps once");
    assert_eq!(
        admin
            .ingest("test/web/cmd", None, Some("hook-2"), b"ok 1")
            .await
            .0,
        401
    );
    assert_eq!(
        admin
            .ingest("test/web/cmd", Some(READ_SECRET), Some("hook-2"), b"ok 1")
            .await
            .0,
        403
    );
    let (code, why) = admin
        .ingest("test/web/cmd", Some(INGEST_SECRET), None, b"ok 1")
        .await;
    assert_eq!(code, 400);
    assert!(
        why["error"].as_str().unwrap().contains("Idempotency-Key"),
        "{why}"
    );
    assert_eq!(
        admin
            .ingest(
                "test/web/cmd",
                Some(INGEST_SECRET),
                Some("big"),
                &[b'x'; 2048]
            )
            .await
            .0,
        413
    );
    let (code, unrouted) = admin
        .ingest("nowhere/site/cmd", Some(ADMIN_SECRET), Some("n"), b"ok 1")
        .await;
    assert_eq!(
        (code, &unrouted["routed"]),
        (202, &json!(false)),
        "stored, though no route consumes it"
    );
    let (code, why) = admin
        .ingest("bad%20site/cmd", Some(INGEST_SECRET), Some("b"), b"ok 1")
        .await;
    assert_eq!(code, 400, "{why}");
    assert!(
        why["error"].as_str().unwrap().contains("raw.bad site.cmd"),
        "{why}"
    );

    // Deploy two versions over HTTP, activate both in turn, roll back to the first.
    let versions = tempfile::tempdir().unwrap();
    for version in ["2.0.0", "2.1.0"] {
        let (code, deployed) = admin
            .post(
                "/api/v1/plugins",
                Some(ADMIN_SECRET),
                upload(version, versions.path()),
            )
            .await;
        assert_eq!(code, 201, "{deployed}");
        assert_eq!(deployed["id"], format!("misbehave@{version}"));
    }
    // A read token may not deploy. The gate answers before it reads a body (an unauthorised
    // client must not make the host read megabytes), so the probe sends a small one: with a
    // whole component the client can still be writing when the host has answered and closed,
    // and sees a broken pipe instead of the 403.
    let (code, _) = admin
        .post(
            "/api/v1/plugins",
            Some(READ_SECRET),
            json!({"name": "misbehave", "version": "2.2.0"}),
        )
        .await;
    assert_eq!(code, 403);
    // The same version with other bytes (a custom section appended): versions are immutable.
    let mut other = upload("2.0.0", versions.path());
    let mut component = base64::engine::general_purpose::STANDARD
        .decode(other["component"].as_str().unwrap())
        .unwrap();
    component.extend([0, 5, 4, b'n', b'o', b't', b'e']);
    other["component"] = json!(base64::engine::general_purpose::STANDARD.encode(component));
    let (code, conflict) = admin
        .post("/api/v1/plugins", Some(ADMIN_SECRET), other)
        .await;
    assert_eq!(code, 409, "{conflict}");
    assert!(
        conflict["error"]
            .as_str()
            .unwrap()
            .contains("already deployed with other bytes"),
        "{conflict}"
    );
    for version in ["misbehave@2.0.0", "misbehave@2.1.0"] {
        let (code, changed) = admin
            .post(
                "/api/v1/routes/line/activate",
                Some(ADMIN_SECRET),
                json!({ "version": version }),
            )
            .await;
        assert_eq!(code, 200, "{changed}");
        assert_eq!(changed["binding"]["active"], version);
    }
    let (code, refused) = admin
        .post(
            "/api/v1/routes/line/activate",
            Some(ADMIN_SECRET),
            json!({ "version": "misbehave@9.9.9" }),
        )
        .await;
    // The registry says what is wrong by its kind: the version is not deployed.
    assert_eq!(code, 404, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("is not deployed"),
        "{refused}"
    );
    let (code, back) = admin
        .post(
            "/api/v1/routes/line/rollback",
            Some(ADMIN_SECRET),
            json!(null),
        )
        .await;
    assert_eq!(code, 200, "{back}");
    assert_eq!(back["binding"]["active"], "misbehave@2.0.0");
    let started = Instant::now();
    loop {
        let route = admin.json("/api/v1/routes/line").await;
        if route["serving"][0]["version"] == "misbehave@2.0.0" {
            assert_eq!(
                route["binding"]["history"],
                json!([]),
                "rolled back past 2.1.0: {route:#}"
            );
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the host did not switch: {route:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = admin.metrics().await;
    assert_eq!(
        metric(
            &m,
            "millrace_route_version_info{route=\"line\",plugin_version=\"misbehave@2.0.0\",role=\"active\"}"
        ),
        1.0
    );
    assert!(!m.contains_key("millrace_route_version_info{route=\"line\",plugin_version=\"misbehave@1.0.0\",role=\"active\"}"));
    let plugins = admin.json("/api/v1/plugins/misbehave").await;
    let used: Vec<String> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{} {}", p["id"].as_str().unwrap(), p["routes"]))
        .collect();
    assert_eq!(
        used,
        ["misbehave@2.0.0 [\"line (active)\"]", "misbehave@2.1.0 []"]
    );

    // Probes, the document, unknown paths.
    assert_eq!(admin.get("/healthz", None).await, (200, "ok\n".to_owned()));
    assert_eq!(
        admin.get("/readyz", None).await,
        (200, "ready\n".to_owned())
    );
    assert_eq!(
        admin.get("/api/v1/status", None).await.0,
        401,
        "reads need a token when tokens are set"
    );
    assert_eq!(admin.get("/api/v1/nothing", Some(READ_SECRET)).await.0, 404);
    let (code, doc) = admin.get("/api/v1/openapi.json", None).await;
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&doc).unwrap()["openapi"],
        "3.1.0"
    );
    assert!(host.stop().success());
}

/// An event CANONICAL already holds (a raw message redelivered after its events were stored:
/// JetStream answers the publish as a duplicate of its id) is not counted as published: the
/// figures and `millrace_events_total` count each event stored once, and the copy counts as a
/// duplicate dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_canonical_already_holds_are_not_counted_as_published() {
    let nats = Nats::start();
    let (config, base) = observed_config(&nats, "");
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    let admin = Admin::new(&base);

    // What a first delivery of raw message `again-1` stored before its ack was lost.
    let lineage = millrace::canonical::Lineage {
        raw_id: "again-1",
        system: "test",
        route: "line",
        plugin: "misbehave",
        plugin_version: "1.0.0",
        raw_sequence: 1,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Msg-Id",
        millrace::canonical::event_id(&lineage, 0).as_str(),
    );
    js.publish_with_headers(
        "canonical.production-completion.PLANT9",
        headers,
        "{}".into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    publish(&js, "raw.test.lab.cmd", b"ok 1", "again-1").await;
    publish(&js, "raw.test.lab.cmd", b"ok 2", "fresh-2").await;

    // One lane: the second message's event stored means the first is done.
    let stored = read_stream(&js, "CANONICAL", "canonical.>", 2, Duration::from_secs(1)).await;
    assert_eq!(stored.len(), 2, "the copy was not stored again: {stored:?}");
    // The figures are counted once the acks are in, just after the events are stored.
    let started = Instant::now();
    let status = loop {
        let status = admin.json("/api/v1/status").await;
        let f = &status["routes"][0]["figures"];
        let count = |name: &str| f[name].as_u64().unwrap_or_default();
        if count("events") + count("duplicates_dropped") >= 2 || started.elapsed() > PATIENCE {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let f = &status["routes"][0]["figures"];
    assert_eq!(
        (&f["messages"], &f["events"], &f["duplicates_dropped"]),
        (&json!(2), &json!(1), &json!(1)),
        "{f:#}"
    );
    assert_eq!(status["sites"]["PLANT9"]["postings"], 1);
    let m = admin.metrics().await;
    let at = r#"route="line",plugin_version="misbehave@1.0.0""#;
    assert_eq!(
        metric(
            &m,
            &format!("millrace_events_total{{{at},kind=\"production-completion\"}}")
        ),
        1.0
    );
    assert_eq!(
        metric(&m, &format!("millrace_duplicates_dropped_total{{{at}}}")),
        1.0
    );
    assert!(host.stop().success());
}

/// A host that cannot store what it maps (CANONICAL full: an operator's `max_msgs`, discard
/// new) leaves its messages to redelivery, and says so in `millrace_host_failures_total`; once
/// the stream takes writes again every event is stored. Before, no metric showed the stall (a
/// cluster probe: 20 s of refused writes, every host signal green).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_left_to_redelivery_are_counted() {
    let nats = Nats::start();
    let (config, base) = observed_config(&nats, "");
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    let admin = Admin::new(&base);
    let mut canonical = js
        .get_stream("CANONICAL")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    canonical.max_messages = 1;
    canonical.discard = jetstream::stream::DiscardPolicy::New;
    js.update_stream(&canonical).await.unwrap();
    for n in 1..=3 {
        let payload = format!("ok {n}");
        publish(
            &js,
            "raw.test.lab.cmd",
            payload.as_bytes(),
            &format!("full-{n}"),
        )
        .await;
    }
    let counted = r#"millrace_host_failures_total{route="line"}"#;
    let started = Instant::now();
    while admin.metrics().await.get(counted).copied().unwrap_or(0.0) < 1.0 {
        assert!(
            started.elapsed() < PATIENCE,
            "no {counted}:\n{}",
            host.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    canonical.max_messages = -1;
    js.update_stream(&canonical).await.unwrap();
    let stored = read_stream(&js, "CANONICAL", "canonical.>", 3, Duration::from_secs(1)).await;
    assert_eq!(stored.len(), 3, "{}", host.log_text());
    assert!(host.stop().success());
}

/// Ready means every route consumes: a route whose pulls fail (here its consumer is deleted
/// under the host; a stream without quorum answers alike) makes `/readyz` a 503 naming the
/// route and the server's reason, and the status says not ready, while NATS stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_cannot_pull_is_not_ready() {
    let nats = Nats::start();
    let (config, base) = observed_config(&nats, "");
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    let admin = Admin::new(&base);
    assert_eq!(
        admin.get("/readyz", None).await,
        (200, "ready\n".to_owned())
    );

    js.delete_consumer_from_stream(CONSUMER, "RAW")
        .await
        .unwrap();
    let started = Instant::now();
    let (code, body) = loop {
        let (code, body) = admin.get("/readyz", None).await;
        if code != 200 {
            break (code, body);
        }
        assert!(
            started.elapsed() < PATIENCE,
            "still ready after the consumer went"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(code, 503, "{body}");
    assert!(
        body.starts_with("not ready: route line cannot pull its messages ("),
        "{body}"
    );
    let status = admin.json("/api/v1/status").await;
    assert_eq!(status["nats_connected"], true, "{status:#}");
    assert_eq!(status["ready"], false, "as /readyz says: {status:#}");
}

/// While NATS is down the status is wanted most: the API and `millrace status` answer it from
/// what the host holds (its figures, what it serves, the bindings last read), saying NATS is
/// disconnected, instead of waiting for the registry to time out and failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_answers_while_nats_is_down() {
    let mut nats = Nats::start();
    let (config, base) = observed_config(&nats, "");
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    let admin = Admin::new(&base);
    publish(&js, "raw.test.lab.cmd", b"ok 1", "ok1").await;
    wait_messages(&admin, 1).await;

    nats.server.stop();
    let started = Instant::now();
    let status = loop {
        let status = admin.json("/api/v1/status").await;
        if status["nats_connected"] == false {
            break status;
        }
        assert!(started.elapsed() < PATIENCE, "still connected: {status:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["ready"], false, "as /readyz says: {status:#}");
    let route = &status["routes"][0];
    assert_eq!(
        route["serving"][0]["version"], "misbehave@1.0.0",
        "{status:#}"
    );
    assert_eq!(route["figures"]["events"], 1, "{status:#}");
    // The projection's reads say why they cannot answer, at once.
    let (code, body) = admin
        .get("/api/v1/visibility/postings?limit=0", Some(READ_SECRET))
        .await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("NATS is not connected"), "{body}");

    let token_file = nats.dir.path().join("read.token");
    let out = tokio::task::spawn_blocking(move || {
        millrace(&[
            "status",
            "--admin",
            &base,
            "--token-file",
            token_file.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("NATS DISCONNECTED, NOT READY"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("line ") && l.contains("misbehave@1.0.0")),
        "{shown}"
    );
}

/// A stand-in OpenTelemetry collector: keeps the bodies POSTed to /v1/traces.
async fn collector() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body.to_vec());
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_runs_from_the_raw_message_to_its_events_and_the_collector() {
    let (endpoint, bodies) = collector().await;
    let nats = Nats::start();
    let (config, _) = observed_config(
        &nats,
        &format!("[telemetry]\notlp_endpoint = {endpoint:?}\n"),
    );
    let js = jetstream::new(nats.client().await);
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent = "b7ad6b7169203331";
    for (n, body) in ["ok 1", "reject"].iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("traced{n}").as_str());
        headers.insert("traceparent", format!("00-{trace_id}-{parent}-01").as_str());
        js.publish_with_headers("raw.test.lab.cmd", headers, body.as_bytes().to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let event = &read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::ZERO).await[0];
    let letter = &read_stream(&js, "DLQ", "dlq.>", 1, Duration::ZERO).await[0];
    for (what, traceparent) in [
        ("event", event.header("traceparent")),
        ("dead letter", letter.header("traceparent")),
    ] {
        let traceparent =
            traceparent.unwrap_or_else(|| panic!("the {what} carries no traceparent"));
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(
            parts[1], trace_id,
            "the {what} stays in the publisher's trace"
        );
        assert_ne!(
            parts[2], parent,
            "the {what} names millrace's span as its parent"
        );
    }

    // Spans are flushed when the host stops.
    assert!(host.stop().success());
    let bodies = bodies.lock().unwrap();
    let all: Vec<u8> = bodies.concat();
    let raw_trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    assert!(
        !bodies.is_empty(),
        "no spans reached the collector:\n{}",
        host.log_text()
    );
    assert!(
        all.windows(16).any(|w| w == raw_trace_id),
        "the exported spans are not in the publisher's trace"
    );
    for needle in ["message", "misbehave@1.0.0", "map-error", "millrace"] {
        assert!(
            all.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "no {needle:?} in the exported spans"
        );
    }
}
