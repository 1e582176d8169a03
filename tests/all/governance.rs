//! Governed change end to end, through a real host, its admin API and the `millrace` binary:
//! a route that needs approval, two admin tokens and several OS users; proposals refused to
//! their proposer, applied on another identity's approval, expired and rejected; a rollback
//! that is immediate; and the audit trail holding every step with its identity.

use std::time::Instant;

use crate::support::*;
use millrace::transport::local_server::free_port;
use serde_json::{Value, json};

const ALICE: &str = "alice-admin-secret-0123456789";
const BOB: &str = "bob-admin-secret-0123456789ab";

/// The host config: route `line` (the misbehave plugin) needs approval, proposals live
/// `expires_after`; tokens `alice` and `bob` are admins.
fn governed_config(nats: &Nats, port: u16, expires_after: &str, file: &str) -> std::path::PathBuf {
    let dir = nats.dir.path();
    let mut tokens = String::new();
    for (name, secret) in [("alice", ALICE), ("bob", BOB)] {
        let path = dir.join(format!("{name}.token"));
        std::fs::write(&path, secret).unwrap();
        tokens.push_str(&format!(
            "[[admin.tokens]]\nname = \"{name}\"\nscope = \"admin\"\nsecret_file = {:?}\n",
            path.display().to_string()
        ));
    }
    let written = nats.config(&format!(
        "[routes.line]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nconfig = {{ site = \"PLANT9\" }}\n\n\
         [approval]\nroutes = [\"line\"]\nexpires_after = \"{expires_after}\"\n\n\
         [admin]\nlisten = \"127.0.0.1:{port}\"\n{tokens}",
        plugin("tests/guests/misbehave").display().to_string(),
    ));
    let path = dir.join(file);
    std::fs::rename(written, &path).unwrap();
    path
}

/// A small client of the admin API.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// The admin API of the host listening on `port`.
    fn on(port: u16) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "GET {path}");
        response.json().await.unwrap()
    }
}

/// Runs `millrace` as the OS user `user`.
fn millrace_as(user: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_millrace"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("USER", user)
        .env("LOGNAME", user)
        .output()
        .unwrap()
}

/// The proposal id in `proposed p-...: ...`.
fn proposal_id(output: &std::process::Output) -> String {
    let text = text(output);
    assert!(output.status.success(), "{text}");
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("p-"))
        .map(|rest| format!("p-{}", rest.trim_end_matches(':')))
        .unwrap_or_else(|| panic!("no proposal id in: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_a_second_identity_rollback_is_immediate_and_every_step_is_audited() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = governed_config(&nats, port, "24h", "governed.toml");
    let cfg = config.to_str().unwrap();
    let mut host = InProcessHost::start(&config).await;
    let api = Api::on(port);
    let versions = tempfile::tempdir().unwrap();
    for version in ["2.0.0", "2.1.0"] {
        let (code, deployed) = api
            .post("/api/v1/plugins", ALICE, upload(version, versions.path()))
            .await;
        assert_eq!(code, 201, "{deployed}");
    }

    // A redrive maps only through what the route serves: through a deployed version no one
    // approved it would post with code a second identity never saw.
    let js = async_nats::jetstream::new(nats.client().await);
    publish(&js, "raw.test.lab.cmd", b"fixme 1", "needs-the-fix").await;
    let letters = read_stream(
        &js,
        "DLQ",
        "dlq.>",
        1,
        std::time::Duration::from_millis(300),
    )
    .await;
    let (code, refused) = api
        .post(
            &format!("/api/v1/dead-letters/{}/redrive", letters[0].sequence),
            ALICE,
            json!({ "version": "misbehave@2.1.0" }),
        )
        .await;
    assert_eq!(code, 422, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("needs approval for the versions it maps with"),
        "{refused}"
    );
    let replay = millrace_as(
        "carol",
        &[
            "replay",
            "line",
            "--from",
            "1",
            "--version",
            "misbehave@2.1.0",
            "--config",
            cfg,
        ],
    );
    assert!(!replay.status.success());
    assert!(
        text(&replay).contains("a replay") && text(&replay).contains("serves misbehave@"),
        "{}",
        text(&replay)
    );

    // Nor through a plugin folder, whose code no one deployed or approved.
    let folder = plugin("tests/guests/misbehave").display().to_string();
    let replay = millrace_as(
        "carol",
        &[
            "replay", "line", "--from", "1", "--plugin", &folder, "--config", cfg,
        ],
    );
    assert!(!replay.status.success());
    assert!(
        text(&replay).contains("a replay cannot map through a plugin folder"),
        "{}",
        text(&replay)
    );

    // Alice proposes; she cannot approve it herself; Bob's approval applies it.
    let (code, proposed) = api
        .post(
            "/api/v1/routes/line/activate",
            ALICE,
            json!({ "version": "misbehave@2.0.0" }),
        )
        .await;
    assert_eq!(code, 202, "{proposed}");
    let first = proposed["proposal"]["id"].as_str().unwrap().to_owned();
    assert_eq!(proposed["proposal"]["proposed_by"], "alice");
    assert_eq!(proposed["proposal"]["state"], "pending");
    let route = api.get("/api/v1/routes/line").await;
    assert!(
        route.get("binding").is_none(),
        "nothing changed yet: {route}"
    );
    let (code, refused) = api
        .post(
            &format!("/api/v1/proposals/{first}/approve"),
            ALICE,
            json!(null),
        )
        .await;
    assert_eq!(code, 403, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("alice proposed"),
        "{refused}"
    );
    let (code, approved) = api
        .post(
            &format!("/api/v1/proposals/{first}/approve"),
            BOB,
            json!(null),
        )
        .await;
    assert_eq!(code, 200, "{approved}");
    assert_eq!(approved["binding"]["active"], "misbehave@2.0.0");
    assert_eq!(approved["proposal"]["decided_by"], "bob");
    host.switched("line", active_is("misbehave@2.0.0")).await;
    let (code, again) = api
        .post(
            &format!("/api/v1/proposals/{first}/approve"),
            BOB,
            json!(null),
        )
        .await;
    assert_eq!(code, 409, "decided once: {again}");

    // On the CLI the identity is the OS user: carol proposes, carol is refused, dave applies.
    let second = proposal_id(&millrace_as(
        "carol",
        &[
            "route",
            "set-version",
            "line",
            "misbehave@2.1.0",
            "--config",
            cfg,
        ],
    ));
    let shown = text(&millrace_as(
        "carol",
        &["route", "show", "line", "--config", cfg],
    ));
    assert!(
        shown.contains(&format!("waiting for approval: {second}")),
        "{shown}"
    );
    assert_clean_failure(
        &millrace_as("carol", &["change", "approve", &second, "--config", cfg]),
        "carol proposed",
    );
    let approved = millrace_as("dave", &["change", "approve", &second, "--config", cfg]);
    assert!(approved.status.success(), "{}", text(&approved));
    host.switched("line", active_is("misbehave@2.1.0")).await;

    // A proposal not approved in time can no longer be applied.
    let short = governed_config(&nats, port, "1s", "short-expiry.toml");
    let late = proposal_id(&millrace_as(
        "carol",
        &[
            "route",
            "set-version",
            "line",
            "misbehave@2.0.0",
            "--canary",
            "10",
            "--config",
            short.to_str().unwrap(),
        ],
    ));
    let started = Instant::now();
    while api.get(&format!("/api/v1/proposals/{late}")).await["state"] != "expired" {
        assert!(started.elapsed() < PATIENCE, "{late} never expired");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (code, expired) = api
        .post(
            &format!("/api/v1/proposals/{late}/approve"),
            BOB,
            json!(null),
        )
        .await;
    assert_eq!(code, 410, "{expired}");
    assert!(
        expired["error"].as_str().unwrap().contains("expired"),
        "{expired}"
    );

    // A rejected proposal stays unapplied.
    let (code, proposed) = api
        .post(
            "/api/v1/routes/line/activate",
            BOB,
            json!({ "version": "misbehave@2.0.0", "shadow": true }),
        )
        .await;
    assert_eq!(code, 202, "{proposed}");
    let promote = proposed["proposal"]["id"].as_str().unwrap().to_owned();
    // A reason too long for the proposal and its audit entry is the caller's error, named as
    // such (it was "approved already by someone else"), and decides nothing.
    let (code, refused) = api
        .post(
            &format!("/api/v1/proposals/{promote}/reject"),
            ALICE,
            json!({ "reason": "x".repeat(5000) }),
        )
        .await;
    assert_eq!(code, 400, "{refused}");
    assert!(
        refused.to_string().contains("the reason is 5000 bytes"),
        "{refused}"
    );
    let (code, rejected) = api
        .post(
            &format!("/api/v1/proposals/{promote}/reject"),
            ALICE,
            json!({ "reason": "not now" }),
        )
        .await;
    assert_eq!(code, 200, "{rejected}");
    assert_eq!(rejected["state"], "rejected");

    // A rollback needs no approval: it applies at once.
    let (code, back) = api
        .post("/api/v1/routes/line/rollback", ALICE, json!(null))
        .await;
    assert_eq!(code, 200, "{back}");
    assert_eq!(back["binding"]["active"], "misbehave@2.0.0");
    assert_eq!(back["before"]["active"], "misbehave@2.1.0");
    host.switched("line", active_is("misbehave@2.0.0")).await;

    // The trail holds every step with its identity, in order.
    let trail = api.get("/api/v1/audit?route=line").await;
    let steps: Vec<(String, String, String)> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["who"].as_str().unwrap().to_owned(),
                e["via"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let step = |a: &str, w: &str, v: &str| (a.to_owned(), w.to_owned(), v.to_owned());
    assert_eq!(
        steps,
        vec![
            step("propose", "alice", "api"),
            step("approve", "bob", "api"),
            step("propose", "carol", "cli"),
            step("approve", "dave", "cli"),
            step("propose", "carol", "cli"),
            step("propose", "bob", "api"),
            step("reject", "alice", "api"),
            step("rollback", "alice", "api"),
        ],
        "{trail:#}"
    );
    let entries = trail.as_array().unwrap();
    assert_eq!(entries[1]["proposal"], first.as_str());
    assert_eq!(entries[1]["after"]["active"], "misbehave@2.0.0");
    // Before its first change the route served its configured plugin: the trail says which
    // (it said `before: null`).
    for entry in &entries[..2] {
        assert_eq!(entry["before"]["active"], "misbehave@1.0.0", "{entry}");
        assert_eq!(entry["before"]["from"], "config", "{entry}");
    }
    assert_eq!(entries[3]["before"]["active"], "misbehave@2.0.0");
    assert_eq!(entries[3]["after"]["active"], "misbehave@2.1.0");
    let rollback = &entries[7];
    assert!(
        rollback["what"]
            .as_str()
            .unwrap()
            .contains("immediate: a rollback needs no approval"),
        "{rollback}"
    );
    assert_eq!(rollback["before"]["active"], "misbehave@2.1.0");
    assert_eq!(rollback["after"]["active"], "misbehave@2.0.0");

    // The deploys are on the trail of what routes share; filters narrow it.
    let deploys = api.get("/api/v1/audit?action=deploy").await;
    assert_eq!(deploys.as_array().unwrap().len(), 2, "{deploys:#}");
    assert_eq!(deploys[0]["area"], "plugins");
    assert_eq!(deploys[0]["who"], "alice");
    let bobs = api.get("/api/v1/audit?who=bob&since=1h").await;
    let actions: Vec<&str> = bobs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["approve", "propose"], "{bobs:#}");

    // `millrace audit` reads the same trail.
    let listed = millrace_as(
        "erin",
        &[
            "audit", "--route", "line", "--action", "approve", "--config", cfg,
        ],
    );
    let listed = text(&listed);
    assert!(
        listed.contains("bob (api)") && listed.contains("dave (cli)"),
        "{listed}"
    );
    assert!(!listed.contains("rollback"), "{listed}");
    let pending = text(&millrace_as(
        "erin",
        &["change", "list", "--all", "--config", cfg],
    ));
    for (id, state) in [
        (&first, "approved"),
        (&second, "approved"),
        (&late, "expired"),
        (&promote, "rejected"),
    ] {
        assert!(
            pending
                .lines()
                .any(|l| l.starts_with(id.as_str()) && l.contains(state)),
            "{id} not {state}: {pending}"
        );
    }
    host.stop().await;
}

/// An approved promotion promotes the candidate its proposer saw. Alice proposed to promote the
/// canary 2.1.0; before Bob approved, another approved change made 2.2.0 the canary: Bob's
/// approval used to make 2.2.0 active at 100 %, a version nobody had reviewed for promotion.
impl Api {
    /// Deploys misbehave `versions` (built under `into`) as alice.
    async fn deploy(&self, versions: &[&str], into: &std::path::Path) {
        for version in versions {
            let (code, deployed) = self
                .post("/api/v1/plugins", ALICE, upload(version, into))
                .await;
            assert_eq!(code, 201, "{deployed}");
        }
    }

    /// Alice proposes `version` as route `line`'s active version, or its canary: the
    /// proposal's id.
    async fn propose(&self, version: &str, canary: Option<u8>) -> String {
        let (code, proposed) = self
            .post(
                "/api/v1/routes/line/activate",
                ALICE,
                json!({ "version": version, "canary": canary }),
            )
            .await;
        assert_eq!(code, 202, "{proposed}");
        proposed["proposal"]["id"].as_str().unwrap().to_owned()
    }

    /// Bob approves the proposal `id`: the status and the answer.
    async fn approve(&self, id: &str) -> (u16, Value) {
        self.post(&format!("/api/v1/proposals/{id}/approve"), BOB, json!(null))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_is_of_the_candidate_its_proposer_saw() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = governed_config(&nats, port, "24h", "governed.toml");
    let host = InProcessHost::start(&config).await;
    let api = Api::on(port);
    let versions = tempfile::tempdir().unwrap();
    api.deploy(&["2.0.0", "2.1.0", "2.2.0"], versions.path())
        .await;
    // Proposed by one, approved by the other: `version` becomes active, or the canary.
    let change = |version: &'static str, canary: Option<u8>| {
        let api = &api;
        async move {
            let id = api.propose(version, canary).await;
            let (code, approved) = api.approve(&id).await;
            assert_eq!(code, 200, "{approved}");
        }
    };
    change("misbehave@2.0.0", None).await;
    change("misbehave@2.1.0", Some(10)).await;
    let (code, proposed) = api
        .post("/api/v1/routes/line/promote", ALICE, json!(null))
        .await;
    assert_eq!(code, 202, "{proposed}");
    let promote = proposed["proposal"]["id"].as_str().unwrap().to_owned();
    change("misbehave@2.2.0", Some(10)).await;

    let (code, refused) = api.approve(&promote).await;
    assert_ne!(code, 200, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("candidate is misbehave@2.2.0 now, not misbehave@2.1.0"),
        "{refused}"
    );
    let route = api.get("/api/v1/routes/line").await;
    assert_eq!(
        route["binding"]["candidate"]["version"], "misbehave@2.2.0",
        "still a canary: {route}"
    );
    assert_eq!(route["binding"]["active"], "misbehave@2.0.0", "{route}");
    // The refused approval is on the audit trail: who decided, and that nothing changed.
    let trail = api.get("/api/v1/audit?route=line&action=approve").await;
    let last = trail.as_array().unwrap().last().unwrap();
    assert_eq!(last["who"], "bob", "{trail}");
    assert_eq!(last["proposal"], promote.as_str(), "{trail}");
    let what = last["what"].as_str().unwrap_or_default();
    assert!(
        what.contains("NOT APPLIED") && what.contains("candidate is misbehave@2.2.0 now"),
        "{last}"
    );
    assert!(last["after"].is_null(), "nothing changed: {last}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_proposed_before_another_change_is_not_applied_over_it() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = governed_config(&nats, port, "24h", "governed.toml");
    let host = InProcessHost::start(&config).await;
    let api = Api::on(port);
    let versions = tempfile::tempdir().unwrap();
    api.deploy(&["2.0.0", "2.1.0"], versions.path()).await;
    // Both proposed against the same binding; the first approved changes it.
    let first = api.propose("misbehave@2.0.0", None).await;
    let second = api.propose("misbehave@2.1.0", None).await;
    let (code, approved) = api.approve(&first).await;
    assert_eq!(code, 200, "{approved}");
    // Approved, the second silently replaced what the first made active.
    let (code, refused) = api.approve(&second).await;
    assert_ne!(code, 200, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("route `line` changed since the proposal")
            && error.contains("serves misbehave@2.0.0 now"),
        "{refused}"
    );
    let route = api.get("/api/v1/routes/line").await;
    assert_eq!(route["binding"]["active"], "misbehave@2.0.0", "{route}");
    host.stop().await;
}

/// Two proposals made against one binding and approved at the same moment on two hosts were
/// both applied: the check "unchanged since the proposal" and the write were apart, so both
/// passed the check before either wrote. The check is now made on the binding the write
/// replaces, in one compare-and-set: one wins, the other fails as changed since the proposal
/// and is marked failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_proposals_approved_at_once_on_two_hosts_apply_exactly_one() {
    let nats = Nats::start();
    let (port_a, port_b) = (free_port().unwrap(), free_port().unwrap());
    let config_a = governed_config(&nats, port_a, "24h", "a.toml");
    let config_b = governed_config(&nats, port_b, "24h", "b.toml");
    let host_a = InProcessHost::start(&config_a).await;
    let host_b = InProcessHost::start(&config_b).await;
    let (a, b) = (Api::on(port_a), Api::on(port_b));
    let versions = tempfile::tempdir().unwrap();
    a.deploy(&["2.0.0", "2.1.0", "2.2.0"], versions.path())
        .await;
    for round in 0..3 {
        // Back to a known binding, then two proposals against it.
        let reset = a.propose("misbehave@2.0.0", None).await;
        let (code, reset) = a.approve(&reset).await;
        assert_eq!(code, 200, "round {round}: {reset}");
        let x = a.propose("misbehave@2.1.0", None).await;
        let y = a.propose("misbehave@2.2.0", None).await;
        let ((code_x, answer_x), (code_y, answer_y)) = tokio::join!(a.approve(&x), b.approve(&y));
        let mut codes = [code_x, code_y];
        codes.sort_unstable();
        assert_eq!(
            codes,
            [200, 422],
            "round {round}: one applied, one refused: {answer_x} / {answer_y}"
        );
        let (winner, loser, refused) = if code_x == 200 {
            ("misbehave@2.1.0", &y, &answer_y)
        } else {
            ("misbehave@2.2.0", &x, &answer_x)
        };
        let error = refused["error"].as_str().unwrap();
        assert!(
            error.contains("route `line` changed since the proposal")
                && error.contains(&format!("serves {winner} now")),
            "round {round}: {refused}"
        );
        assert_eq!(
            a.get(&format!("/api/v1/proposals/{loser}")).await["state"],
            "failed"
        );
        let route = b.get("/api/v1/routes/line").await;
        assert_eq!(route["binding"]["active"], winner, "round {round}: {route}");
        assert_eq!(
            route["binding"]["history"]
                .as_array()
                .unwrap()
                .last()
                .unwrap(),
            "misbehave@2.0.0",
            "the winner replaced the binding both were proposed against: {route}"
        );
    }
    host_a.stop().await;
    host_b.stop().await;
}

/// A promotion proposed while the route had no candidate was approved after a canary was set,
/// promoting a version nobody proposed to promote. Proposing it is refused now, and a promotion
/// stored without a candidate (proposed by an older host) fails on approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_without_a_candidate_is_refused_and_never_promotes_a_later_one() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = governed_config(&nats, port, "24h", "governed.toml");
    let host = InProcessHost::start(&config).await;
    let api = Api::on(port);
    let versions = tempfile::tempdir().unwrap();
    api.deploy(&["2.0.0", "2.1.0"], versions.path()).await;
    let id = api.propose("misbehave@2.0.0", None).await;
    assert_eq!(api.approve(&id).await.0, 200);

    let (code, refused) = api
        .post("/api/v1/routes/line/promote", ALICE, json!(null))
        .await;
    assert_eq!(code, 422, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("route line has no candidate to promote"),
        "{refused}"
    );
    assert_clean_failure(
        &millrace_as(
            "carol",
            &[
                "route",
                "promote",
                "line",
                "--config",
                config.to_str().unwrap(),
            ],
        ),
        "route line has no candidate to promote",
    );

    // A promotion stored while the route had no candidate, as older hosts let it be.
    let loaded = std::sync::Arc::new(millrace::config::Config::load(&config).unwrap());
    let js = async_nats::jetstream::new(nats.client().await);
    let registry = millrace::registry::store::Registry::open(&loaded, Some(&js))
        .await
        .unwrap();
    let then = registry.binding("line").await.unwrap();
    assert!(then.as_ref().unwrap().candidate.is_none());
    let stale = millrace::approval::Proposals::open(&js, &loaded)
        .await
        .unwrap()
        .create(
            "line",
            millrace::approval::RouteChange::Promote,
            "alice",
            millrace::audit::Via::Api,
            then,
        )
        .await
        .unwrap();
    let canary = api.propose("misbehave@2.1.0", Some(10)).await;
    assert_eq!(api.approve(&canary).await.0, 200);
    let (code, refused) = api.approve(&stale.id).await;
    assert_eq!(code, 422, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains(
            "it had no candidate when the promotion was proposed and its candidate is misbehave@2.1.0 now"
        ),
        "{refused}"
    );
    let route = api.get("/api/v1/routes/line").await;
    assert_eq!(route["binding"]["active"], "misbehave@2.0.0", "{route}");
    assert_eq!(
        route["binding"]["candidate"]["version"], "misbehave@2.1.0",
        "{route}"
    );
    assert_eq!(
        api.get(&format!("/api/v1/proposals/{}", stale.id)).await["state"],
        "failed"
    );
    host.stop().await;
}

/// A route's active version was accepted as its own canary or shadow (nothing to compare, no
/// share to take): refused when proposed, and when set at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_version_is_not_its_own_candidate() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = governed_config(&nats, port, "24h", "governed.toml");
    let cfg = config.to_str().unwrap();
    let host = InProcessHost::start(&config).await;
    let api = Api::on(port);
    let versions = tempfile::tempdir().unwrap();
    api.deploy(&["2.0.0"], versions.path()).await;
    let id = api.propose("misbehave@2.0.0", None).await;
    assert_eq!(api.approve(&id).await.0, 200);
    for body in [
        json!({ "version": "misbehave@2.0.0", "canary": 50 }),
        json!({ "version": "misbehave@2.0.0", "shadow": true }),
    ] {
        let (code, refused) = api.post("/api/v1/routes/line/activate", ALICE, body).await;
        assert_eq!(code, 422, "{refused}");
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("misbehave@2.0.0 is route line's active version: it cannot be its"),
            "{refused}"
        );
    }
    // Set at once, on a config where the route needs no approval.
    let open = config.with_file_name("open.toml");
    std::fs::write(
        &open,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("routes = [\"line\"]", "routes = []"),
    )
    .unwrap();
    assert_clean_failure(
        &millrace_as(
            "carol",
            &[
                "route",
                "set-version",
                "line",
                "misbehave@2.0.0",
                "--shadow",
                "--config",
                open.to_str().unwrap(),
            ],
        ),
        "misbehave@2.0.0 is route line's active version: it cannot be its shadow too",
    );
    let shown = text(&millrace_as(
        "carol",
        &["route", "show", "line", "--config", cfg],
    ));
    assert!(shown.contains("line: active misbehave@2.0.0\n"), "{shown}");
    host.stop().await;
}

/// A rollback went back to a version no longer in the registry (set-version refuses one): the
/// running hosts switched from memory, and any host started later failed to load it. It is
/// refused now, as set-version is, and the route keeps what it serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_to_a_version_no_longer_deployed_is_refused() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = governed_config(&nats, port, "24h", "governed.toml");
    let cfg = config.to_str().unwrap();
    let mut host = InProcessHost::start(&config).await;
    let api = Api::on(port);
    let versions = tempfile::tempdir().unwrap();
    api.deploy(&["2.0.0", "2.1.0"], versions.path()).await;
    for version in ["misbehave@2.0.0", "misbehave@2.1.0"] {
        let id = api.propose(version, None).await;
        assert_eq!(api.approve(&id).await.0, 200);
    }
    host.switched("line", active_is("misbehave@2.1.0")).await;
    // 2.0.0 is removed from the registry (a cleanup job).
    let js = async_nats::jetstream::new(nats.client().await);
    let objects = js.get_object_store("millrace-plugins").await.unwrap();
    for object in ["misbehave@2.0.0.json", "misbehave@2.0.0.wasm"] {
        objects.delete(object).await.unwrap();
    }
    let (code, refused) = api
        .post("/api/v1/routes/line/rollback", ALICE, json!(null))
        .await;
    assert_ne!(code, 200, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("route line cannot be rolled back to misbehave@2.0.0")
            && error.contains("misbehave@2.0.0 is not deployed"),
        "{refused}"
    );
    assert_clean_failure(
        &millrace_as("carol", &["route", "rollback", "line", "--config", cfg]),
        "route line cannot be rolled back to misbehave@2.0.0",
    );
    let route = api.get("/api/v1/routes/line").await;
    assert_eq!(route["binding"]["active"], "misbehave@2.1.0", "{route}");
    let trail = api.get("/api/v1/audit?route=line&action=rollback").await;
    assert!(trail.as_array().unwrap().is_empty(), "{trail}");
    host.stop().await;
}
