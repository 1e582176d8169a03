//! The admin API and HTTP ingest probed as an attacker with a read or ingest token (or none)
//! would, against a real nats-server, the real `millrace` binary and real compiled plugins
//! (issue 19). Each test reproduces one finding and shows it fixed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use async_nats::jetstream;
use base64::Engine as _;
use millrace::transport::consumer_name;
use millrace::transport::local_server::{LocalServer, free_port};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef";
const READ_SECRET: &str = "read-secret-0123456789abcdef";
const ERP_SECRET: &str = "erp-ingest-secret-0123456789";
const QMS_SECRET: &str = "qms-ingest-secret-0123456789";

/// A token line set: name, scope, secret, ingest subjects.
type TokenSpec<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The usual tokens: admin, read, and two ingest senders bound to `raw.test.*.cmd`.
const TOKENS: &[TokenSpec<'static>] = &[
    ("ops", "admin", ADMIN_SECRET, ""),
    ("viewer", "read", READ_SECRET, ""),
    ("erp", "ingest", ERP_SECRET, "raw.test.*.cmd"),
    ("qms", "ingest", QMS_SECRET, "raw.test.*.cmd"),
];

/// A host serving the misbehave plugin on route `line` (`raw.test.*.cmd`, site PLANT9) and
/// `extra` route sections, with an admin server on a free port.
struct Hardened {
    nats: Nats,
    host: Host,
    base: String,
    port: u16,
    js: jetstream::Context,
    http: reqwest::Client,
}

/// The `[admin]` section and token files (secret files relative to the config file).
fn admin_section(dir: &Path, port: u16, settings: &str, tokens: &[TokenSpec<'_>]) -> String {
    let mut out =
        format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ningest_max_kib = 1024\n{settings}\n");
    for (name, scope, secret, subjects) in tokens {
        std::fs::write(dir.join(format!("{name}.token")), format!("{secret}\n")).unwrap();
        out.push_str(&format!(
            "[[admin.tokens]]\nname = \"{name}\"\nscope = \"{scope}\"\nsecret_file = \"{name}.token\"\n"
        ));
        if !subjects.is_empty() {
            out.push_str(&format!("subjects = [\"{subjects}\"]\n"));
        }
    }
    out
}

fn line_route() -> String {
    format!(
        "[routes.line]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nconfig = {{ site = \"PLANT9\", partner = \"acme\" }}\nretry = {{ attempts = 1, backoff = \"10ms\" }}\n",
        plugin("tests/guests/misbehave").display().to_string()
    )
}

impl Hardened {
    async fn start(
        settings: &str,
        tokens: &[TokenSpec<'_>],
        extra: &str,
        consumers: &[&str],
    ) -> Self {
        let nats = Nats::start();
        let port = free_port().unwrap();
        let config = nats.config(&format!(
            "{}\n{extra}\n{}",
            line_route(),
            admin_section(nats.dir.path(), port, settings, tokens)
        ));
        let js = jetstream::new(nats.client().await);
        let mut wanted = vec![consumer_name("line", "raw.test.*.cmd")];
        wanted.extend(consumers.iter().map(|c| (*c).to_owned()));
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let host = Host::start(&config, &js, &wanted).await;
        let hardened = Self {
            nats,
            host,
            base: format!("http://127.0.0.1:{port}"),
            port,
            js,
            // No idle connections kept: some tests cap connections and time out idle ones.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        };
        hardened.wait_ready().await;
        hardened
    }

    /// Waits until `/readyz` answers 200.
    async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                && r.status().as_u16() == 200
            {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "admin server not ready:\n{}",
                self.host.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
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

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /ingest/<path>` (the path as written, percent-encoding included).
    async fn ingest(&self, path: &str, token: &str, key: &str, body: &[u8]) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/ingest/{path}", self.base))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn assert_ready(&self) {
        let (status, body) = self.get("/readyz", None).await;
        assert_eq!(status, 200, "{body}\n{}", self.host.log_text());
        let (status, body) = self.get("/api/v1/status", Some(READ_SECRET)).await;
        assert_eq!(status, 200, "{body}");
        let status: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["nats_connected"], true, "{status}");
    }

    /// The host still maps: a fresh message becomes its event.
    async fn assert_still_maps(&self, n: u32) {
        let before = stream_len(&self.js, "CANONICAL").await;
        publish(
            &self.js,
            "raw.test.after.cmd",
            format!("ok {n}").as_bytes(),
            &format!("after-{n}"),
        )
        .await;
        let started = Instant::now();
        while stream_len(&self.js, "CANONICAL").await <= before {
            assert!(
                started.elapsed() < PATIENCE,
                "the host stopped mapping:\n{}",
                self.host.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn config_dir(&self) -> &Path {
        self.nats.dir.path()
    }
}

/// Waits until `stream` holds at least `count` messages.
async fn wait_stream_len(js: &jetstream::Context, stream: &str, count: u64) {
    let started = Instant::now();
    loop {
        if try_stream_len(js, stream).await.unwrap_or(0) >= count {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "{stream} never held {count}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A deploy body for a copy of the misbehave plugin as `version`, with its own fixtures or
/// `fixtures` (name, input) expecting no events.
fn upload(version_line: &str, fixtures: Option<Vec<(String, String)>>, into: &Path) -> Value {
    let dir = plugin_version("tests/guests/misbehave", "9.9.9", into);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let fixtures: Vec<Value> = match fixtures {
        Some(list) => list
            .into_iter()
            .map(|(name, input)| {
                json!({ "name": name, "input": b64(input.as_bytes()), "expected": "{\"events\": []}" })
            })
            .collect(),
        None => deploy_fixtures(&dir),
    };
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))
        .unwrap()
        .replacen("version = \"9.9.9\"", version_line, 1);
    json!({
        "manifest": manifest,
        "component": b64(&std::fs::read(dir.join("plugin.wasm")).unwrap()),
        "fixtures": fixtures,
    })
}

/// Sends raw bytes and reads the answer until the server closes: status and whole text.
async fn raw_http(port: u16, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The resident set of a process, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Finding 1: the dead-letter list read the whole DLQ with its payloads on the host's only
/// NATS connection; ten callers made the server cut it as a slow consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letter_list_reads_a_bounded_tail_on_its_own_connection() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let padding = "x".repeat(64 * 1024);
    for n in 0..300 {
        publish(
            &hardened.js,
            "raw.test.dlq.cmd",
            format!("reject {n} {padding}").as_bytes(),
            &format!("reject-{n}"),
        )
        .await;
    }
    wait_stream_len(&hardened.js, "DLQ", 300).await;

    let hardened = Arc::new(hardened);
    let mut calls = tokio::task::JoinSet::new();
    for call in 0..20 {
        let hardened = hardened.clone();
        calls.spawn(async move {
            let path = if call % 2 == 0 {
                "/api/v1/dead-letters?limit=20"
            } else {
                "/api/v1/dead-letters"
            };
            let started = Instant::now();
            let (status, body) = hardened.get(path, Some(READ_SECRET)).await;
            (path, started.elapsed(), status, body)
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(done) = calls.join_next().await {
        let (path, took, status, body) = done.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        let letters: Vec<Value> = serde_json::from_str(&body).unwrap();
        let expected = if path.ends_with("20") { 20 } else { 100 };
        assert_eq!(letters.len(), expected, "{path}");
        let sequences: Vec<u64> = letters
            .iter()
            .map(|l| l["sequence"].as_u64().unwrap())
            .collect();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "oldest first");
        assert_eq!(sequences.last(), Some(&300), "the newest letters");
        assert!(letters[0]["error_kind"].is_string(), "{}", letters[0]);
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_secs(2),
            "{path} took {took:?} with 20 callers"
        );
    }
    eprintln!("slowest of 20 concurrent dead-letter lists: {slowest:?}");
    let (status, body) = hardened
        .get("/api/v1/dead-letters?route=line&limit=5", Some(READ_SECRET))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Vec<Value>>(&body).unwrap().len(), 5);
    let (status, body) = hardened
        .get("/api/v1/dead-letters/300", Some(READ_SECRET))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("reject 299"),
        "one letter in full still shows its payload"
    );

    hardened.assert_ready().await;
    hardened.assert_still_maps(3).await;
    let log = hardened.host.log_text();
    assert!(!log.to_lowercase().contains("slow consumer"), "{log}");
}

/// Finding 2: a 6,000-character ingest subject or a 5,000-character version was sent to
/// NATS, which cut the host's connection (`maximum control line exceeded`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_subjects_and_versions_never_reach_nats() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let long = "x".repeat(6000);
    for path in [
        format!("test/{long}/cmd"),
        long.clone(),
        format!("{long}/a/b"),
    ] {
        let (status, why) = hardened.ingest(&path, ERP_SECRET, "long", b"ok 1").await;
        assert_eq!(status, 400, "{why}");
        assert!(
            why.to_string().len() < 1000,
            "the answer stays short: {why}"
        );
    }
    let versions = tempfile::tempdir().unwrap();
    let long_version = format!("version = \"1.0.0-{}\"", "a".repeat(5000));
    let (status, why) = hardened
        .post(
            "/api/v1/plugins",
            Some(ADMIN_SECRET),
            &upload(&long_version, None, versions.path()),
        )
        .await;
    assert_eq!(status, 400, "{why}");
    assert!(
        why["error"].as_str().unwrap().contains("semantic version"),
        "{why}"
    );
    let (status, why) = hardened
        .post(
            "/api/v1/routes/line/activate",
            Some(ADMIN_SECRET),
            &json!({ "version": format!("misbehave@1.0.0-{}", "a".repeat(5000)) }),
        )
        .await;
    assert_eq!(status, 400, "{why}");

    hardened.assert_ready().await;
    let (status, stored) = hardened
        .ingest("test/web/cmd", ERP_SECRET, "fine", b"ok 2")
        .await;
    assert_eq!(status, 202, "{stored}");
    let (status, body) = hardened.get("/api/v1/plugins", Some(READ_SECRET)).await;
    assert_eq!(status, 200, "{body}");
    hardened.assert_still_maps(4).await;
}

/// Finding 3: bodies were read and parsed before the token check; eight unauthenticated
/// 60 MiB deploys took the host from 48 MiB to 512 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unauthenticated_bodies_are_refused_before_they_are_read() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let pid = hardened.host.id();
    let before = rss(pid);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    const BODY: usize = 60 * 1024 * 1024;
    let mut senders = tokio::task::JoinSet::new();
    for n in 0..8 {
        let port = hardened.port;
        let path = if n % 2 == 0 {
            "/api/v1/plugins"
        } else {
            "/api/v1/routes/line/activate"
        };
        senders.spawn(async move {
            let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {BODY}\r\n\r\n"
            );
            write.write_all(head.as_bytes()).await.unwrap();
            let writer = tokio::spawn(async move {
                let chunk = vec![b'['; 64 * 1024];
                let mut sent = 0;
                while sent < BODY {
                    if write.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                sent
            });
            let mut answer = vec![0u8; 4096];
            let mut got = 0;
            while got < 12 {
                match read.read(&mut answer[got..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            writer.abort();
            String::from_utf8_lossy(&answer[..got]).into_owned()
        });
    }
    while let Some(answer) = senders.join_next().await {
        let answer = answer.unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    eprintln!(
        "RSS growth with 8 unauthenticated 60 MiB bodies: {:.1} MiB",
        growth as f64 / (1024.0 * 1024.0)
    );
    assert!(growth < 32 * 1024 * 1024, "RSS grew {growth} bytes");
    hardened.assert_ready().await;
}

/// Finding 4: an ingest token could publish to any subject `raw.>` captures: another
/// system's, any depth, encoded dots, control and invisible characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_tokens_publish_only_to_their_own_plain_subjects() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let (status, why) = hardened
        .ingest(
            "mes/plant1/shift-report",
            ERP_SECRET,
            "other-system",
            b"ok 1",
        )
        .await;
    assert_eq!(status, 403, "{why}");
    assert!(
        why["error"].as_str().unwrap().contains("raw.test.*.cmd"),
        "{why}"
    );
    for path in [
        "test/a%2Eb/cmd",
        "test/a.b/cmd",
        "test/a/b/cmd",
        "test/site",
        "test/a%00/cmd",
        "test/a%7F/cmd",
        "test/a%E2%80%8B/cmd",
        "test/%2A/cmd",
        "test//cmd",
    ] {
        let (status, why) = hardened.ingest(path, ERP_SECRET, "odd", b"ok 1").await;
        assert_eq!(status, 400, "{path}: {why}");
    }
    let (status, stored) = hardened
        .ingest("test/web/cmd", ERP_SECRET, "own", b"ok 1")
        .await;
    assert_eq!(
        (status, &stored["subject"]),
        (202, &json!("raw.test.web.cmd")),
        "{stored}"
    );
    assert_eq!(
        stream_len(&hardened.js, "RAW").await,
        1,
        "only the allowed message was stored"
    );
}

/// A body the ingest limit allows (1024 KiB here) can still be too large for one NATS message
/// once its headers are added; nats-server closes a connection that publishes one, so ingest
/// measures it first and answers 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_too_large_for_one_nats_message_is_refused_and_ingest_serves_on() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let mut body = b"ok 1 ".to_vec();
    body.resize(1024 * 1024 - 16, b' ');
    let (status, why) = hardened
        .ingest("test/big/cmd", ERP_SECRET, "big", &body)
        .await;
    assert_eq!(status, 413, "{why}");
    let error = why["error"].as_str().unwrap();
    assert!(error.contains("max_payload"), "{error}");
    let (status, stored) = hardened
        .ingest("test/web/cmd", ERP_SECRET, "small", b"ok 2")
        .await;
    assert_eq!(status, 202, "the next ingest is served at once: {stored}");
    assert_eq!(stream_len(&hardened.js, "RAW").await, 1);
    let log = hardened.host.log_text();
    assert!(!log.contains("disconnected"), "{log}");
}

/// Finding 5: the idempotency key became the `Nats-Msg-Id` as is, so another sender's
/// message with the same key was dropped as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_by_sender_and_subject() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let (status, first) = hardened
        .ingest("test/a/cmd", ERP_SECRET, "K-1", b"ok 1")
        .await;
    assert_eq!(
        (status, &first["duplicate"]),
        (202, &json!(false)),
        "{first}"
    );
    let (status, other_sender) = hardened
        .ingest("test/a/cmd", QMS_SECRET, "K-1", b"ok 2")
        .await;
    assert_eq!(
        (status, &other_sender["duplicate"]),
        (202, &json!(false)),
        "{other_sender}"
    );
    let (status, other_subject) = hardened
        .ingest("test/b/cmd", ERP_SECRET, "K-1", b"ok 3")
        .await;
    assert_eq!(
        (status, &other_subject["duplicate"]),
        (202, &json!(false)),
        "{other_subject}"
    );
    let (status, retried) = hardened
        .ingest("test/a/cmd", ERP_SECRET, "K-1", b"ok 1")
        .await;
    assert_eq!(
        (status, &retried["duplicate"], &retried["sequence"]),
        (200, &json!(true), &first["sequence"]),
        "{retried}"
    );
    let raw = read_stream(&hardened.js, "RAW", "raw.>", 3, Duration::from_millis(300)).await;
    assert_eq!(raw.len(), 3, "three messages stored, none lost");
    assert_eq!(raw[0].header("Millrace-Idempotency-Key"), Some("K-1"));
    assert_eq!(raw[1].header("Millrace-Ingest-Sender"), Some("qms"));
}

/// Finding 6: sites and partners came from dead letters' subjects without a cap; 1,000 site
/// tokens grew `/metrics` twelvefold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_and_partner_series_are_capped() {
    let open = format!(
        "[routes.open]\nsubjects = [\"raw.open.*.cmd\"]\nplugin = {:?}\nretry = {{ attempts = 1, backoff = \"10ms\" }}\n",
        plugin("tests/guests/misbehave").display().to_string()
    );
    let consumer = consumer_name("open", "raw.open.*.cmd");
    let hardened = Hardened::start("", TOKENS, &open, &[&consumer]).await;
    let sites = 100;
    for n in 0..sites {
        publish(
            &hardened.js,
            &format!("raw.open.S{n}.cmd"),
            b"reject",
            &format!("site-{n}"),
        )
        .await;
    }
    wait_stream_len(&hardened.js, "DLQ", sites).await;
    // The figures count the last letter once its dead letter is stored: wait for them.
    let started = Instant::now();
    let status = loop {
        let (code, body) = hardened.get("/api/v1/status", Some(READ_SECRET)).await;
        assert_eq!(code, 200, "{body}");
        let status: Value = serde_json::from_str(&body).unwrap();
        let failures: u64 = status["sites"]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["failures"].as_u64().unwrap_or(0))
            .sum();
        if failures >= sites {
            break status;
        }
        assert!(started.elapsed() < PATIENCE, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let listed = status["sites"].as_object().unwrap();
    assert!(listed.len() <= 65, "{} sites listed", listed.len());
    assert!(
        listed["other"]["failures"].as_u64().unwrap() >= 36,
        "{status}"
    );
    let (code, metrics) = hardened.get("/metrics", Some(READ_SECRET)).await;
    assert_eq!(code, 200);
    let site_series: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("millrace_site_failures_total{"))
        .filter_map(|l| l.split("site=\"").nth(1)?.split('"').next())
        .collect();
    assert!(site_series.len() <= 65, "{site_series:?}");
    assert!(site_series.contains("other"), "{site_series:?}");
}

/// Finding 7: ids were not validated where used; a directory registry loaded a record from
/// outside itself, and versions holding HTML or `../` were stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_ids_are_strict_and_stay_inside_the_registry() {
    let outside = tempfile::tempdir().unwrap();
    let registry = outside.path().join("reg");
    std::fs::create_dir_all(outside.path().join("outside")).unwrap();
    std::fs::write(outside.path().join("outside/evil.json"), "{}").unwrap();
    let section = format!(
        "[registry]\nkind = \"directory\"\ndir = {:?}\n",
        registry.display().to_string()
    );
    let hardened = Hardened::start("", TOKENS, &section, &[]).await;
    for version in [
        "../../outside/evil",
        "misbehave@../../outside/evil",
        "../outside/evil",
    ] {
        let (status, why) = hardened
            .post(
                "/api/v1/routes/line/activate",
                Some(ADMIN_SECRET),
                &json!({ "version": version }),
            )
            .await;
        assert_eq!(status, 400, "{version}: {why}");
    }
    let versions = tempfile::tempdir().unwrap();
    for version in [
        "1.0.0-<img/src=x/onerror=alert(1)>",
        "1.0.0-../../x",
        "01.0.0",
    ] {
        let (status, why) = hardened
            .post(
                "/api/v1/plugins",
                Some(ADMIN_SECRET),
                &upload(&format!("version = \"{version}\""), None, versions.path()),
            )
            .await;
        assert_eq!(status, 400, "{version}: {why}");
    }
    let (status, body) = hardened.get("/api/v1/plugins", Some(READ_SECRET)).await;
    assert_eq!((status, body.as_str()), (200, "[]"), "nothing was stored");
    let (status, deployed) = hardened
        .post(
            "/api/v1/plugins",
            Some(ADMIN_SECRET),
            &upload("version = \"2.0.0-rc.1\"", None, versions.path()),
        )
        .await;
    assert_eq!(status, 201, "a strict semver still deploys: {deployed}");
    let (status, why) = hardened
        .get("/api/v1/plugins/..%2F..%2Fx", Some(READ_SECRET))
        .await;
    assert_eq!(status, 400, "{why}");
}

/// Finding 8: a client sending its headers slowly kept its connection forever, and
/// connections were not capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_disconnected_and_connections_capped() {
    let hardened = Hardened::start(
        "header_timeout = \"1s\"\nmax_connections = 4\n",
        TOKENS,
        "",
        &[],
    )
    .await;
    let port = hardened.port;
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // A fifth client waits for a free connection: it is answered only after a slow one is
    // cut by the header timeout.
    let fifth = tokio::spawn(async move {
        let answer = raw_http(
            port,
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        (answer, Instant::now())
    });
    let mut closing = tokio::task::JoinSet::new();
    for mut stream in slow {
        closing.spawn(async move {
            let mut buf = [0u8; 1024];
            // The server answers 408 or just closes; either way the connection ends.
            tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .map(|()| Instant::now())
        });
    }
    let mut first_closed: Option<Instant> = None;
    while let Some(closed) = closing.join_next().await {
        let closed = closed
            .unwrap()
            .expect("a slow-header connection stayed open");
        first_closed = Some(first_closed.map_or(closed, |f| f.min(closed)));
    }
    let ((status, text), answered) = fifth.await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        answered >= first_closed.unwrap() - Duration::from_millis(100),
        "the fifth connection was served while four were open"
    );
    hardened.assert_ready().await;
}

/// Finding 9: a script or random blob was accepted as a version; looping fixtures made
/// admission slow; admissions were not capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_and_admission_are_bounded() {
    let hardened = Arc::new(Hardened::start("", TOKENS, "", &[]).await);
    let versions = tempfile::tempdir().unwrap();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);

    let mut script = upload("version = \"3.0.0\"", None, versions.path());
    script["component"] = json!(b64(b"#!/bin/sh\necho pwned\n"));
    let (status, why) = hardened
        .post("/api/v1/plugins", Some(ADMIN_SECRET), &script)
        .await;
    assert_eq!(status, 400, "{why}");
    assert!(
        why["error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly component"),
        "{why}"
    );

    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let blob: Vec<u8> = (0..47 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut random = upload("version = \"3.0.1\"", None, versions.path());
    random["component"] = json!(b64(&blob));
    drop(blob);
    let (status, why) = hardened
        .post("/api/v1/plugins", Some(ADMIN_SECRET), &random)
        .await;
    assert_eq!(status, 400, "{why}");
    drop(random);

    let many: Vec<(String, String)> = (0..=millrace::registry::MAX_FIXTURES)
        .map(|n| (format!("f{n}.txt"), "ok 1".to_owned()))
        .collect();
    let (status, why) = hardened
        .post(
            "/api/v1/plugins",
            Some(ADMIN_SECRET),
            &upload("version = \"3.0.2\"", Some(many), versions.path()),
        )
        .await;
    assert_eq!(status, 400, "{why}");

    // A version with no golden fixtures could never be admitted, and once stored its number
    // could not be deployed again with them: it is refused, and the number stays free.
    let (status, why) = hardened
        .post(
            "/api/v1/plugins",
            Some(ADMIN_SECRET),
            &upload("version = \"3.0.3\"", Some(Vec::new()), versions.path()),
        )
        .await;
    assert_eq!(status, 422, "{why}");
    assert!(
        why["error"]
            .as_str()
            .unwrap()
            .contains("misbehave@3.0.3 has no golden fixtures"),
        "{why}"
    );
    let (status, deployed) = hardened
        .post(
            "/api/v1/plugins",
            Some(ADMIN_SECRET),
            &upload("version = \"3.0.3\"", None, versions.path()),
        )
        .await;
    assert_eq!(status, 201, "{deployed}");

    let looping: Vec<(String, String)> = (0..5)
        .map(|n| (format!("loop{n}.txt"), "slow 1000000".to_owned()))
        .collect();
    let (status, deployed) = hardened
        .post(
            "/api/v1/plugins",
            Some(ADMIN_SECRET),
            &upload("version = \"3.1.0\"", Some(looping), versions.path()),
        )
        .await;
    assert_eq!(status, 201, "{deployed}");
    let activations: Vec<_> = (0..3)
        .map(|_| {
            let hardened = hardened.clone();
            tokio::spawn(async move {
                hardened
                    .post(
                        "/api/v1/routes/line/activate",
                        Some(ADMIN_SECRET),
                        &json!({ "version": "misbehave@3.1.0" }),
                    )
                    .await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for activation in activations {
        let (status, why) = activation.await.unwrap();
        if status == 422 {
            assert!(
                why["error"]
                    .as_str()
                    .unwrap()
                    .contains("admission stopped after 1 of 5 fixtures"),
                "{why}"
            );
        } else {
            assert_eq!(status, 503, "{why}");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&422), "{statuses:?}");
    assert!(
        statuses.contains(&503),
        "two admissions at once at most: {statuses:?}"
    );
    hardened.assert_ready().await;
}

/// Finding 9, the caller going away, on a real host: two admissions whose callers disconnect
/// stop before their next fixture and give their slots back, instead of running on to their
/// budget with nobody waiting for the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disconnected_caller_stops_its_admission_and_frees_its_slot() {
    let hardened = Arc::new(Hardened::start("", TOKENS, "", &[]).await);
    let versions = tempfile::tempdir().unwrap();
    let deploy = |version: &str, fixtures: Option<Vec<(String, String)>>| {
        let body = upload(
            &format!("version = \"{version}\""),
            fixtures,
            versions.path(),
        );
        let hardened = hardened.clone();
        async move {
            let (status, why) = hardened
                .post("/api/v1/plugins", Some(ADMIN_SECRET), &body)
                .await;
            assert_eq!(status, 201, "{why}");
        }
    };
    // How long one fixture of `slow 100` takes on this machine.
    deploy("5.0.0", Some(vec![("c.txt".into(), "slow 100".into())])).await;
    deploy("5.2.0", None).await;
    let started = Instant::now();
    let (status, why) = hardened
        .post(
            "/api/v1/routes/line/activate",
            Some(ADMIN_SECRET),
            &json!({ "version": "misbehave@5.0.0" }),
        )
        .await;
    assert_eq!(status, 422, "{why}");
    let one = started.elapsed().as_secs_f64().max(0.001);
    // Fixtures of about half a second each: uncancelled, 256 of them run into the 30 s budget.
    let millions = ((100.0 * 0.5 / one) as u64).clamp(1, 100_000);
    let slow: Vec<(String, String)> = (0..millrace::registry::MAX_FIXTURES)
        .map(|n| (format!("s{n}.txt"), format!("slow {millions}")))
        .collect();
    deploy("5.1.0", Some(slow)).await;

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let request = impatient
            .post(format!("{}/api/v1/routes/line/activate", hardened.base))
            .bearer_auth(ADMIN_SECRET)
            .json(&json!({ "version": "misbehave@5.1.0" }));
        callers.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    }
    while let Some(gone) = callers.join_next().await {
        let gone = gone.unwrap();
        assert!(
            gone.as_ref().is_err_and(reqwest::Error::is_timeout),
            "the caller should have given up first (one fixture took {one:.3}s): {gone:?}"
        );
    }
    let left = Instant::now();
    loop {
        let (status, why) = hardened
            .post(
                "/api/v1/routes/line/activate",
                Some(ADMIN_SECRET),
                &json!({ "version": "misbehave@5.2.0" }),
            )
            .await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{why}");
        assert!(left.elapsed() < PATIENCE, "the slots never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let freed = left.elapsed();
    eprintln!("admission slots back {freed:?} after their callers left");
    assert!(
        freed < Duration::from_secs(10),
        "the abandoned admissions ran on for {freed:?} (their budget is 30 s)"
    );
}

/// Finding 9, the caller going away: an admission whose caller is gone stops before its next
/// fixture (in process, with the real sandbox and the real compiled plugin).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_stops_when_its_caller_goes_away() {
    let dir = plugin("tests/guests/misbehave");
    let built = millrace::registry::LocalPlugin::locate(&dir).unwrap();
    let component = std::fs::read(&built.component).unwrap();
    let fixtures = (0..3)
        .map(|n| millrace::registry::store::StoredFixture {
            name: format!("f{n}.txt"),
            input: base64::engine::general_purpose::STANDARD.encode("ok 1"),
            expected: "{\"events\": []}".into(),
        })
        .collect();
    let record = millrace::registry::store::VersionRecord::uploaded(
        std::fs::read_to_string(dir.join("plugin.toml")).unwrap(),
        &component,
        fixtures,
        None,
    )
    .unwrap();
    let sandbox = millrace::sandbox::Sandbox::new(None).unwrap();
    let bounds = millrace::registry::AdmissionBounds::default();
    bounds.cancel.cancel();
    let no_rules = millrace::rules::ownership::OwnershipPolicy::default();
    let Err(refused) =
        millrace::registry::admit_within(&sandbox, &record, &component, &no_rules, &bounds)
    else {
        panic!("a cancelled admission admits nothing");
    };
    assert!(
        refused.to_string().contains("cancelled after 0 of 3"),
        "{refused:#}"
    );
}

/// Finding 10: without tokens the host answered any `Host` name, so a page rebinding its DNS
/// name to 127.0.0.1 could read status, dead letters and metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_only_loopback_names_are_answered() {
    let hardened = Hardened::start("", &[], "", &[]).await;
    for path in ["/api/v1/status", "/api/v1/dead-letters", "/metrics", "/"] {
        let (status, text) = raw_http(
            hardened.port,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: rebound.example:{}\r\nConnection: close\r\n\r\n",
                hardened.port
            ),
        )
        .await;
        assert_eq!(status, 421, "{path}: {text}");
        for host in ["127.0.0.1", "localhost", "[::1]"] {
            let (status, text) = raw_http(
                hardened.port,
                &format!(
                    "GET {path} HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n",
                    hardened.port
                ),
            )
            .await;
            assert_eq!(status, 200, "{path} via {host}: {text}");
        }
    }
}

/// Finding 11: `secret_file` was read from the working directory, the length minimum counted
/// bytes, duplicate names or secrets were accepted (first wins), the NATS password could
/// only be written in the config, and the console sent no security headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_details_are_strict() {
    // Relative secret files are read from the config file's folder (not this test's).
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    assert_eq!(
        hardened.get("/api/v1/status", Some(READ_SECRET)).await.0,
        200
    );
    assert_ne!(
        std::env::current_dir().unwrap(),
        hardened.config_dir(),
        "the test runs elsewhere than the config file"
    );
    let response = hardened
        .http
        .get(format!("{}/", hardened.base))
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );

    let nats = &hardened.nats;
    let dir = nats.dir.path();
    let refused = |name: &str, admin: String, needle: &str| {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            std::fs::read_to_string(dir.join("millrace.toml"))
                .unwrap()
                .split("[admin]")
                .next()
                .unwrap()
                .to_owned()
                + &admin,
        )
        .unwrap();
        let out = millrace(&["run", "--config", config.to_str().unwrap()]);
        assert_clean_failure(&out, needle);
    };
    let port = free_port().unwrap();
    // Nine characters in eighteen bytes.
    refused(
        "short",
        admin_section(dir, port, "", &[("short", "admin", "ééééééééé", "")]),
        "is 9 characters",
    );
    refused(
        "same-name",
        admin_section(
            dir,
            port,
            "",
            &[
                ("ops", "read", READ_SECRET, ""),
                ("ops2", "admin", ADMIN_SECRET, ""),
            ],
        )
        .replace("name = \"ops2\"", "name = \"ops\""),
        "each token needs its own name",
    );
    refused(
        "same-secret",
        admin_section(
            dir,
            port,
            "",
            &[
                ("boss", "admin", READ_SECRET, ""),
                ("viewer2", "read", READ_SECRET, ""),
            ],
        ),
        "have the same secret",
    );
    refused(
        "ingest-anywhere",
        admin_section(dir, port, "", &[("erp", "ingest", ERP_SECRET, "")]),
        "admin.tokens[0].subjects",
    );
}

/// Finding 11, the NATS password: read from a file beside the config (or an environment
/// variable) instead of the config itself, for the host and its admin connection alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_password_can_stay_out_of_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let password = "nats-password-0123456789";
    let mut attempts = 0;
    let server = loop {
        attempts += 1;
        match LocalServer::start_with_args(
            free_port().unwrap(),
            &dir.path().join("js"),
            &["--user", "millrace", "--pass", password],
        ) {
            Ok(server) => break server,
            Err(e) if attempts < 5 => eprintln!("nats-server did not start, retrying: {e:#}"),
            Err(e) => panic!("nats-server did not start: {e:#}"),
        }
    };
    std::fs::write(dir.path().join("nats.password"), format!("{password}\n")).unwrap();
    let port = free_port().unwrap();
    let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("millrace-state");
    let config: PathBuf = dir.path().join("millrace.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"{}\"\nuser = \"millrace\"\npassword_file = \"nats.password\"\n\n[host]\nworkers = 1\npartitions = 2\nstate_dir = {:?}\n\n{}\n{}",
            server.url(),
            state.display().to_string(),
            line_route(),
            admin_section(dir.path(), port, "", TOKENS)
        ),
    )
    .unwrap();
    let client =
        async_nats::ConnectOptions::with_user_and_password("millrace".into(), password.into())
            .connect(server.url())
            .await
            .unwrap();
    let js = jetstream::new(client);
    let host = Host::start(&config, &js, &[&consumer_name("line", "raw.test.*.cmd")]).await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status().as_u16() == 200) {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "{}", host.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !host
            .log_text()
            .contains("shares the host's NATS connection"),
        "the admin server has its own authenticated connection:\n{}",
        host.log_text()
    );
    let both = config.with_file_name("both.toml");
    std::fs::write(
        &both,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("password_file", "password = \"x\"\npassword_file"),
    )
    .unwrap();
    assert_clean_failure(
        &millrace(&["run", "--config", both.to_str().unwrap()]),
        "nats.password",
    );
}

/// Versions are immutable under concurrency too: two deploys of one version with other bytes,
/// sent at once, store one and refuse the other (both were stored, the later bytes winning,
/// and both answered 201); the same deploy sent twice at once is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_version_deployed_twice_at_once_is_stored_once() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let other = plugin_version("tests/guests/misbehave-v2", "9.9.9", two.path());
    let other = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(other.join("plugin.wasm")).unwrap());
    let hardened = &hardened;
    let deploy = |body: Value| async move {
        hardened
            .post("/api/v1/plugins", Some(ADMIN_SECRET), &body)
            .await
    };
    for round in 0..4 {
        let first = upload(&format!("version = \"7.0.{round}\""), None, one.path());
        let mut second = first.clone();
        second["component"] = json!(other);
        let (a, b) = tokio::join!(deploy(first.clone()), deploy(second.clone()));
        let mut codes = [a.0, b.0];
        codes.sort_unstable();
        assert_eq!(codes, [201, 409], "round {round}: {} / {}", a.1, b.1);
        let stored = if a.0 == 201 { first } else { second };
        let (a, b) = tokio::join!(deploy(stored.clone()), deploy(stored));
        assert_eq!(
            [a.0, b.0],
            [200, 200],
            "round {round}: already stored: {} / {}",
            a.1,
            b.1
        );
    }
    let fresh = upload("version = \"8.0.0\"", None, one.path());
    let (a, b) = tokio::join!(deploy(fresh.clone()), deploy(fresh));
    let mut codes = [a.0, b.0];
    codes.sort_unstable();
    assert_eq!(
        codes,
        [200, 201],
        "the same deploy twice at once: {} / {}",
        a.1,
        b.1
    );
}

/// A read creates nothing: the projection's views, read from a host that runs no projection,
/// answer empty and leave no bucket behind. They were created with one replica, so on a
/// replicated cluster a node down then stalled every read of them (and `millrace status`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_views_creates_no_bucket() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    for view in [
        "inventory",
        "work-orders",
        "holds",
        "commitments",
        "sources",
        "postings",
    ] {
        let (status, body) = hardened
            .get(&format!("/api/v1/visibility/{view}"), Some(READ_SECRET))
            .await;
        assert_eq!(status, 200, "{view}: {body}");
        assert!(
            body.starts_with('[') || body.starts_with('{'),
            "{view}: {body}"
        );
    }
    for bucket in [
        "millrace-inventory",
        "millrace-holds",
        "millrace-work-orders",
        "millrace-postings",
    ] {
        assert!(
            hardened.js.get_key_value(bucket).await.is_err(),
            "a read created bucket {bucket}"
        );
    }
    // A projection that creates its buckets later is read from then on (the views opened
    // while they were missing look again).
    let holds = hardened
        .js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "millrace-holds".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    holds
        .put("PLANT1.NCR-1", "not a hold record".into())
        .await
        .unwrap();
    let (status, body) = hardened
        .get("/api/v1/visibility/holds", Some(READ_SECRET))
        .await;
    assert_eq!(status, 503, "the bucket is read once it exists: {body}");
}

/// Every API error is the JSON the OpenAPI document promises, also those axum's extractors
/// answer for a body they cannot read (they were text/plain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_api_cannot_read_is_answered_as_a_json_error() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let url = format!("{}/api/v1/routes/line/activate", hardened.base);
    let json = "application/json";
    let big = "a".repeat(3_000_000);
    for (content_type, body, status, says) in [
        (
            Some(json),
            "{\"version\":",
            400,
            "parse the request body as JSON",
        ),
        (
            None,
            "{\"version\": \"misbehave@1.0.0\"}",
            415,
            "Content-Type",
        ),
        (Some(json), "{}", 422, "missing field `version`"),
        (Some(json), big.as_str(), 413, "length limit exceeded"),
    ] {
        let mut request = hardened
            .http
            .post(&url)
            .bearer_auth(ADMIN_SECRET)
            .body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            json,
            "{status}"
        );
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{status}: {answer}"
        );
    }
}

/// The same across processes: two hosts' admin APIs sent one version with other bytes at the
/// same moment both answered 201, one silently replacing the other (the lock that kept deploys
/// apart was one process's). A version is claimed in a key-value bucket first now: one is
/// stored, the other refused. A claim left by a deploy that stopped before storing (a crash)
/// lets the same bytes finish it and keeps other bytes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_version_deployed_at_once_on_two_hosts_is_stored_once() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let config = hardened.config_dir().join("millrace.toml");
    let port = free_port().unwrap();
    let second = hardened.config_dir().join("second.toml");
    std::fs::write(
        &second,
        std::fs::read_to_string(&config).unwrap().replace(
            &format!("127.0.0.1:{}", hardened.port),
            &format!("127.0.0.1:{port}"),
        ),
    )
    .unwrap();
    let consumer = consumer_name("line", "raw.test.*.cmd");
    let second_host = Host::start(&second, &hardened.js, &[consumer.as_str()]).await;
    let bases = [hardened.base.clone(), format!("http://127.0.0.1:{port}")];
    let started = Instant::now();
    while !matches!(
        hardened.http.get(format!("{}/readyz", bases[1])).send().await,
        Ok(r) if r.status().as_u16() == 200
    ) {
        assert!(started.elapsed() < PATIENCE, "{}", second_host.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deploy = |base: &String, body: &Value| {
        let request = hardened
            .http
            .post(format!("{base}/api/v1/plugins"))
            .bearer_auth(ADMIN_SECRET)
            .json(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let other = plugin_version("tests/guests/misbehave-v2", "9.9.9", two.path());
    let other = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(other.join("plugin.wasm")).unwrap());
    for round in 0..4 {
        let version = format!("7.1.{round}");
        let first = upload(&format!("version = \"{version}\""), None, one.path());
        let mut second = first.clone();
        second["component"] = json!(other);
        let (a, b) = tokio::join!(deploy(&bases[0], &first), deploy(&bases[1], &second));
        let mut codes = [a.0, b.0];
        codes.sort_unstable();
        assert_eq!(codes, [201, 409], "round {round}: {} / {}", a.1, b.1);
        let winner = if a.0 == 201 { &a.1 } else { &b.1 };
        let (status, listed) = hardened
            .get("/api/v1/plugins/misbehave", Some(READ_SECRET))
            .await;
        assert_eq!(status, 200, "{listed}");
        let listed: Value = serde_json::from_str(&listed).unwrap();
        let stored = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["id"] == format!("misbehave@{version}").as_str())
            .unwrap_or_else(|| panic!("{listed}"));
        assert_eq!(stored["digest"], winner["digest"], "round {round}");
    }

    // A deploy that claimed 7.2.0 and stopped before its objects were written.
    let crashed = upload("version = \"7.2.0\"", None, one.path());
    assert_eq!(deploy(&bases[0], &crashed).await.0, 201);
    let claims = hardened
        .js
        .get_key_value("millrace-plugins-claims")
        .await
        .unwrap();
    let claim = claims.get("misbehave/7.2.0").await.unwrap().unwrap();
    let mut claim: Value = serde_json::from_slice(&claim).unwrap();
    claim["stored"] = json!(false);
    claims
        .put(
            "misbehave/7.2.0",
            serde_json::to_vec(&claim).unwrap().into(),
        )
        .await
        .unwrap();
    let objects = hardened
        .js
        .get_object_store("millrace-plugins")
        .await
        .unwrap();
    for object in ["misbehave@7.2.0.json", "misbehave@7.2.0.wasm"] {
        objects.delete(object).await.unwrap();
    }
    let mut impostor = crashed.clone();
    impostor["component"] = json!(other);
    let (status, refused) = deploy(&bases[1], &impostor).await;
    assert_eq!(status, 409, "other bytes stay out: {refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("has not finished storing it"),
        "{refused}"
    );
    let (status, finished) = deploy(&bases[1], &crashed).await;
    assert_eq!(status, 201, "the same bytes finish it: {finished}");
    assert_eq!(deploy(&bases[0], &crashed).await.0, 200);
    assert_eq!(deploy(&bases[0], &impostor).await.0, 409);
}

/// A manifest whose `wit` is not what its component is built against was stored (immutable,
/// and refused by every admission later). Refused at deploy now, over the API and the CLI,
/// naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_naming_another_wit_than_its_component_is_refused_at_deploy() {
    let hardened = Hardened::start("", TOKENS, "", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut lying = upload("version = \"4.0.0\"", None, dir.path());
    lying["manifest"] = json!(
        lying["manifest"]
            .as_str()
            .unwrap()
            .replace("millrace:mapping@1.0.0", "millrace:mapping@1.1.0")
    );
    let (status, refused) = hardened
        .post("/api/v1/plugins", Some(ADMIN_SECRET), &lying)
        .await;
    assert_eq!(status, 422, "{refused}");
    let says = "its manifest says wit = \"millrace:mapping@1.1.0\" but the component is built against millrace:mapping@1.0.0";
    assert!(
        refused["error"].as_str().unwrap().contains(says),
        "{refused}"
    );

    let folder = plugin_version("tests/guests/misbehave", "4.0.1", dir.path());
    let manifest = folder.join("plugin.toml");
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("millrace:mapping@1.0.0", "millrace:mapping@1.1.0"),
    )
    .unwrap();
    let config = hardened.config_dir().join("millrace.toml");
    let cfg = config.to_str().unwrap();
    assert_clean_failure(
        &millrace(&[
            "plugin",
            "deploy",
            folder.to_str().unwrap(),
            "--config",
            cfg,
        ]),
        says,
    );
    let listed = text(&millrace(&["plugin", "list", "--config", cfg]));
    assert!(!listed.contains("@4.0."), "nothing stored: {listed}");
    // Corrected, the version deploys: nothing of it was burnt.
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replace("millrace:mapping@1.1.0", "millrace:mapping@1.0.0"),
    )
    .unwrap();
    let deployed = millrace(&[
        "plugin",
        "deploy",
        folder.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert!(deployed.status.success(), "{}", text(&deployed));
}
