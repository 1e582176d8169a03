//! The web console end to end: a real host with traffic, the console loaded in headless
//! Chromium (Debian's `chromium`, installed by `scripts/setup --test`), and what it shows:
//! operations, plant visibility, and postings to a stand-in ERP through a posting gate.
//!
//! (The pictures in docs/ come from the demo's data: scripts/screenshots.)

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::stand_in_erp::{FAN_OUT, GateScenario, completion, publish_event, seen, until};
use crate::support::*;
use async_nats::jetstream;
use millrace::transport::local_server::free_port;

const CONSUMER: &str = "millrace_line__raw_test__star__cmd";
const READ_SECRET: &str = "console-read-secret-0123456789";
const ADMIN_SECRET: &str = "console-admin-secret-0123456789";

/// Chromium's arguments for a headless run as any user, in a throwaway profile.
fn chromium(profile: &Path) -> Command {
    let binary = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .unwrap_or_else(|| {
            panic!("no Chromium found: run `scripts/setup --test` (it installs Debian's chromium)")
        });
    let mut command = Command::new(binary);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        // Timers run in virtual time: several polls of the console happen within the budget,
        // which waits for the API answers.
        "--virtual-time-budget=9000",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Loads `url` and returns the page's DOM once its scripts ran.
fn dom(url: &str, profile: &Path) -> String {
    let out = chromium(profile)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// The text of the element with `id`, tags removed (enough for these flat tables).
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{dom}"));
    let rest = &dom[start..];
    let end = rest
        .find("</section>")
        .or_else(|| rest.find("</pre>"))
        .unwrap_or(rest.len());
    let mut text = String::new();
    let mut in_tag = false;
    for c in rest[..end].chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_live_routes_versions_dead_letters_and_sites() {
    let nats = Nats::start();
    let secret = nats.dir.path().join("read.token");
    std::fs::write(&secret, READ_SECRET).unwrap();
    let admin_secret = nats.dir.path().join("admin.token");
    std::fs::write(&admin_secret, ADMIN_SECRET).unwrap();
    let port = free_port().unwrap();
    let config = nats.config(&format!(
        "[routes.line]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nconfig = {{ site = \"PLANT9\", partner = \"acme\" }}\n\n\
         [routes.other]\nsubjects = [\"raw.other.*.cmd\"]\nplugin = {:?}\nconfig = {{ site = \"PLANT4\" }}\n\n\
         [admin]\nlisten = \"127.0.0.1:{port}\"\n[[admin.tokens]]\nname = \"console\"\nscope = \"read\"\nsecret_file = {:?}\n\
         [[admin.tokens]]\nname = \"ops\"\nscope = \"admin\"\nsecret_file = {:?}\n",
        plugin("tests/guests/misbehave").display().to_string(),
        plugin("tests/guests/misbehave").display().to_string(),
        secret.display().to_string(),
        admin_secret.display().to_string(),
    ));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(
        &config,
        &js,
        &[CONSUMER, "millrace_other__raw_other__star__cmd"],
    )
    .await;
    publish_each(&js, "raw.test.lab.cmd", mixed_traffic(6)).await;
    publish(&js, "raw.other.lab.cmd", b"ok 3", "other3").await;
    let dead_letters = read_stream(&js, "DLQ", "dlq.>", 1, Duration::ZERO).await;

    read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        9,
        Duration::from_millis(300),
    )
    .await;

    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/#token={READ_SECRET}");
    let page = dom(&url, profile.path());
    assert!(
        page.contains("data-loaded=\"true\""),
        "the console never loaded its data:\n{page}"
    );
    assert!(
        !text_of(&page, "error").contains("api/v1"),
        "the console shows an API error:\n{page}"
    );

    // Routes with throughput and error figures: name, serving, msgs/min, dead letters/min,
    // messages, events, dead letters, late, retries, pending.
    let routes = text_of(&page, "routes");
    assert!(
        routes.contains("line active misbehave@1.0.0 9 1 9 8 1 1 0 0"),
        "routes table: {routes}"
    );
    assert!(
        routes.contains("other active misbehave@1.0.0 1 0 1 1 0 0 0 0"),
        "routes table: {routes}"
    );
    assert!(
        page.contains("<polyline points=\""),
        "no throughput line: the console did not poll twice"
    );

    // Versions per route, with the deploy history column.
    let versions = text_of(&page, "versions");
    assert!(
        versions.contains("line misbehave@1.0.0 – configured plugin, never switched"),
        "{versions}"
    );

    // The dead letter with its error and raw payload, opened by default.
    let letters = text_of(&page, "dead-letters");
    assert!(
        letters.contains("line rejected-by-rule rejected on purpose"),
        "{letters}"
    );
    assert!(
        page.contains("<pre id=\"letter-payload\">reject</pre>"),
        "no payload shown:\n{page}"
    );

    // Posting delay and exceptions per site as bars.
    for (chart, site, series) in [
        ("delay-chart", "PLANT9", "mean"),
        ("delay-chart", "PLANT4", "max"),
        ("exception-chart", "PLANT9", "failures"),
        ("exception-chart", "PLANT9", "late"),
    ] {
        let chart_html = &page[page.find(&format!("id=\"{chart}\"")).unwrap()..];
        assert!(
            chart_html.contains(&format!("data-site=\"{site}\" data-series=\"{series}\"")),
            "{chart} has no {series} bar for {site}"
        );
    }
    let exceptions = text_of(&page, "exception-chart");
    assert!(
        exceptions.contains("PLANT9 dead letters 1 late 1"),
        "{exceptions}"
    );
    let partners = text_of(&page, "partners");
    assert!(partners.contains("acme map-error: 1"), "{partners}");

    // It is live: more traffic shows on the next load.
    for n in 10..=13 {
        publish(
            &js,
            "raw.test.lab.cmd",
            format!("ok {n}").as_bytes(),
            &format!("more{n}"),
        )
        .await;
    }
    let started = Instant::now();
    loop {
        let page = dom(&url, profile.path());
        if text_of(&page, "routes").contains("line active misbehave@1.0.0 13 1 13 12") {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "new traffic never showed:\n{}",
            text_of(&page, "routes")
        );
    }

    // A wrong token shows the API's reason instead of figures.
    let refused = dom(
        &format!("http://127.0.0.1:{port}/#token=wrong"),
        tempfile::tempdir().unwrap().path(),
    );
    assert!(
        text_of(&refused, "error").contains("the token is not valid"),
        "{}",
        text_of(&refused, "error")
    );

    // A change over the API, last (its plugin call counts in the figures above): the dead
    // letter redriven; it fails again and stays.
    let redriven = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/api/v1/dead-letters/{}/redrive",
            dead_letters[0].sequence
        ))
        .bearer_auth(ADMIN_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        redriven.status().as_u16(),
        200,
        "{}",
        redriven.text().await.unwrap()
    );

    // The change history per route: the redrive, by the admin token, from the audit trail.
    let page = wait_for(&url, profile.path(), "changes", "redrive");
    let changes = text_of(&page, "changes");
    assert!(
        changes.contains("line") && changes.contains("ops (api) redrive redrives dead letter"),
        "{changes}"
    );
    assert!(
        page.contains("data-route=\"line\" data-action=\"redrive\""),
        "no redrive row for route line"
    );
    assert!(
        text_of(&page, "proposals").contains("no changes waiting for approval"),
        "{}",
        text_of(&page, "proposals")
    );
}

/// Publishes a quality hold on `item` at PLANT9 straight onto CANONICAL, as a QMS route would.
async fn hold(js: &jetstream::Context, action: &str, at: &str) {
    use millrace::canonical::{CloudEvent, Lineage, MappedEvent};
    let event: MappedEvent = serde_json::from_value(serde_json::json!({
        "site": "PLANT9", "occurred_at": at, "kind": "quality-hold",
        "data": {"hold_id": "QH-17", "action": action, "scope": {"item": "ITEM-1"}, "reason": "surface cracks"}
    }))
    .unwrap();
    let raw_id = format!("qms-{action}");
    let lineage = Lineage {
        raw_id: &raw_id,
        system: "qms",
        route: "qms",
        plugin: "quality-webhook",
        plugin_version: "1.0.0",
        raw_sequence: 1,
    };
    let envelope = CloudEvent::new(&event, 0, &lineage);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.id.as_str());
    js.publish_with_headers(
        CloudEvent::nats_subject(&event),
        headers,
        serde_json::to_vec(&envelope).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Loads `url` until its `#id` text contains `needle`.
fn wait_for(url: &str, profile: &Path, id: &str, needle: &str) -> String {
    let started = Instant::now();
    loop {
        let page = dom(url, profile);
        if text_of(&page, id).contains(needle) {
            return page;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "#{id} never showed {needle:?}: {}",
            text_of(&page, id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visibility_page_shows_stock_blocked_by_a_hold_work_orders_and_source_ages() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = nats.config(&format!(
        "[routes.line]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nconfig = {{ site = \"PLANT9\" }}\n\n\
         [projection]\nenabled = true\n\n[admin]\nlisten = \"127.0.0.1:{port}\"\n",
        plugin("tests/guests/misbehave").display().to_string(),
    ));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    for n in 1..=3 {
        publish(
            &js,
            "raw.test.lab.cmd",
            format!("ok {n}").as_bytes(),
            &format!("ok{n}"),
        )
        .await;
    }
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/visibility");

    // Three completions of ITEM-1: 6 EA on hand, three work orders, the MES source fresh.
    let page = wait_for(
        &url,
        profile.path(),
        "inventory",
        "PLANT9 ITEM-1 – – 6 0 6 0 EA –",
    );
    assert!(page.contains("data-loaded=\"true\""));
    let orders = text_of(&page, "work-orders");
    for n in 1..=3 {
        assert!(
            orders.contains(&format!("PLANT9 WO-{n} ITEM-1 – {n} EA / – 0 EA")),
            "{orders}"
        );
    }
    let sources = text_of(&page, "sources");
    assert!(sources.contains("PLANT9 test 3"), "{sources}");

    // A hold on the item blocks its stock; its release unblocks it.
    hold(&js, "placed", "2026-11-27T08:00:00Z").await;
    let page = wait_for(
        &url,
        profile.path(),
        "inventory",
        "PLANT9 ITEM-1 – – 6 6 0 0 EA QH-17",
    );
    assert!(
        page.contains("class=\"blocked\""),
        "the blocked position is not marked"
    );
    assert!(
        text_of(&page, "holds").contains("PLANT9 QH-17 ITEM-1 – open surface cracks 1"),
        "{}",
        text_of(&page, "holds")
    );
    hold(&js, "released", "2026-11-27T09:00:00Z").await;
    let page = wait_for(&url, profile.path(), "holds", "QH-17 ITEM-1 – released");
    assert!(
        text_of(&page, "inventory").contains("PLANT9 ITEM-1 – – 6 0 6 0 EA –"),
        "{}",
        text_of(&page, "inventory")
    );
    assert!(
        text_of(&page, "sources").contains("PLANT9 qms 2"),
        "{}",
        text_of(&page, "sources")
    );
}

/// The gate scenario's ERP target line in the postings page's #targets: target, breaker,
/// posted, rejected, pending.
fn target_line(page: &str, target: &str) -> String {
    let targets = text_of(page, "targets");
    let start = targets
        .find(&format!(" {target} up "))
        .unwrap_or_else(|| panic!("no target {target} in: {targets}"));
    targets[start + 1..]
        .split_whitespace()
        .take(5)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postings_page_shows_a_completion_held_at_the_gate_with_why_and_posted_after_the_release()
 {
    let scenario = GateScenario::start().await;
    let (erp, js, port) = (scenario.erp.clone(), scenario.js.clone(), scenario.port);
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/postings");
    let order = |id: &str| scenario.paths_of(id);

    // The hold placed: the ERP blocks the lot's stock, the WMS its shipments, the plant is
    // told, in that order; the page shows one posting per target.
    let (placed, event) = crate::stand_in_erp::hold(1, "placed", "LOT-H");
    publish_event(&js, "canonical.quality-hold.PLANT1", &placed, &event).await;
    until("the placement fanned out", || order(&placed).len() >= 3).await;
    assert_eq!(order(&placed), FAN_OUT);
    let page = wait_for(&url, profile.path(), "postings", "posted notify holds");
    assert!(
        page.contains("data-loaded=\"true\""),
        "the page never loaded its data:\n{page}"
    );
    // The gate reads the projection: the completion is published once it shows the hold.
    let holds_api = format!("http://127.0.0.1:{port}/api/v1/visibility/holds?lot=LOT-H");
    let started = Instant::now();
    while !reqwest::get(&holds_api)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("\"open\":true")
    {
        assert!(started.elapsed() < PATIENCE, "the hold was never projected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A completion of the held lot waits at the gate, listed with why; one of a lot the ERP
    // does not know is rejected for good and shows as a failed posting.
    let (held, event) = completion(1, "LOT-H");
    publish_event(&js, "canonical.production-completion.PLANT1", &held, &event).await;
    let (unknown, event) = completion(3, "LOT-UNKNOWN");
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &unknown,
        &event,
    )
    .await;
    let page = wait_for(&url, profile.path(), "failed", "LOT-UNKNOWN");
    let page = if text_of(&page, "held").contains(&held) {
        page
    } else {
        wait_for(&url, profile.path(), "held", &held)
    };
    let waiting = text_of(&page, "held");
    assert!(
        waiting.contains(&format!(
            "completions {held} production-completion PLANT1 WO-1@PLANT1"
        )),
        "{waiting}"
    );
    assert!(
        waiting.contains(
            "lot LOT-H of item ITEM-1 is under quality hold H-1 at PLANT1 (contamination suspected): posted when the hold is released"
        ),
        "{waiting}"
    );
    let postings = text_of(&page, "postings");
    assert!(
        postings.contains(
            "pending erp completions production-completion PLANT1 WO-1@PLANT1 2026-11-30T03:00:00Z –"
        ),
        "{postings}"
    );
    let failed = text_of(&page, "failed");
    assert!(
        failed.contains(
            "erp production-completion PLANT1 WO-3@PLANT1 2026-11-30T03:00:00Z status 422: lot LOT-UNKNOWN is not known to the ERP"
        ),
        "{failed}"
    );
    assert_eq!(target_line(&page, "erp"), "erp up 1 1 1");
    assert_eq!(target_line(&page, "wms"), "wms up 1 0 0");
    let sites = text_of(&page, "sites");
    assert!(
        sites.contains("PLANT1 3 1 1 1× status 422: lot LOT-UNKNOWN is not known to the ERP"),
        "{sites}"
    );
    assert!(
        !order(&held).iter().any(|_| true),
        "the completion of the held lot was posted while the hold was open"
    );

    // The hold released: the three targets in order again, then the held completion posts;
    // the page shows it posted with the ERP's document id, and nothing held.
    let (released, event) = crate::stand_in_erp::hold(2, "released", "LOT-H");
    publish_event(&js, "canonical.quality-hold.PLANT1", &released, &event).await;
    until("the held completion posted after the release", || {
        !order(&held).is_empty()
    })
    .await;
    until("the release fanned out", || order(&released).len() >= 3).await;
    assert_eq!(order(&released), FAN_OUT);
    let log = seen(&erp);
    let at = |id: &str| log.iter().position(|(_, key)| key == id).unwrap();
    assert!(at(&placed) < at(&released) && at(&released) < at(&held));
    let document = erp.ledger.lock().unwrap().bookings[&held].clone();
    let page = wait_for(
        &url,
        profile.path(),
        "postings",
        &format!(
            "posted erp completions production-completion PLANT1 WO-1@PLANT1 2026-11-30T03:00:00Z {document}"
        ),
    );
    let page = if text_of(&page, "held").contains("no event held at a gate") {
        page
    } else {
        wait_for(&url, profile.path(), "held", "no event held at a gate")
    };
    assert_eq!(target_line(&page, "erp"), "erp up 3 1 0");
    assert_eq!(target_line(&page, "notify"), "notify up 2 0 0");
    assert!(
        !text_of(&page, "postings").contains("pending"),
        "{}",
        text_of(&page, "postings")
    );
    scenario.stop().await;
}

/// Publishes a production completion of WO-M (ITEM-M) at PLANT8 straight onto CANONICAL.
async fn completion_in(js: &jetstream::Context, n: u64, good: (&str, &str), at: &str) {
    use millrace::canonical::{CloudEvent, Lineage, MappedEvent};
    let event: MappedEvent = serde_json::from_value(serde_json::json!({
        "site": "PLANT8", "occurred_at": at, "kind": "production-completion",
        "data": {"work_order": "WO-M", "item": "ITEM-M",
                 "good_quantity": {"amount": good.0, "uom": good.1},
                 "scrap_quantity": {"amount": "0", "uom": good.1}}
    }))
    .unwrap();
    let raw_id = format!("mes-{n}");
    let lineage = Lineage {
        raw_id: &raw_id,
        system: "mes",
        route: "mes",
        plugin: "mes-shift-report",
        plugin_version: "1.0.0",
        raw_sequence: n,
    };
    let envelope = CloudEvent::new(&event, 0, &lineage);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", envelope.id.as_str());
    js.publish_with_headers(
        CloudEvent::nats_subject(&event),
        headers,
        serde_json::to_vec(&envelope).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visibility_page_never_shows_a_sum_of_mixed_units_as_one_unit() {
    let nats = Nats::start();
    let port = free_port().unwrap();
    let config = nats.config(&format!(
        "[routes.line]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nconfig = {{ site = \"PLANT9\" }}\n\n\
         [projection]\nenabled = true\n\n[admin]\nlisten = \"127.0.0.1:{port}\"\n",
        plugin("tests/guests/misbehave").display().to_string(),
    ));
    let js = jetstream::new(nats.client().await);
    let _host = Host::start(&config, &js, &[CONSUMER]).await;
    // 10 pieces and 2 kilograms of one item: the sums cannot be one unit.
    completion_in(&js, 1, ("10", "PCE"), "2026-03-02T06:15:00Z").await;
    completion_in(&js, 2, ("2", "KGM"), "2026-03-02T06:16:00Z").await;
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/visibility");
    let page = wait_for(
        &url,
        profile.path(),
        "inventory",
        "PLANT8 ITEM-M – – 12 0 12 0 PCE (+1 in other units) –",
    );
    let orders = text_of(&page, "work-orders");
    assert!(
        orders
            .contains("PLANT8 WO-M ITEM-M – 12 PCE (sums mix units) / – 0 PCE 1 (sum mixes units)"),
        "{orders}"
    );
}
