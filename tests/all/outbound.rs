//! The outbound half against a stand-in ERP started by the test: canonical events posted
//! exactly once through a target that rate-limits, fails, goes down, while the host is killed;
//! posting gates holding a completion of a lot under quality hold; the hold fan-out to three
//! targets in order; admission of outbound plugins by their golden fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::Value;

use crate::stand_in_erp::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_booked_once_through_limits_failures_an_outage_and_two_host_kills() {
    const EVENTS: usize = 150;
    let nats = Nats::start();
    let erp = StandInErp::start(true).await;
    let token = nats.dir.path().join("erp.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let poster = plugin("tests/guests/poster");
    let config = nats.config(&format!(
        "[outbound.erp-postings]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {:?}\ntargets = [\"erp\"]\nack_wait = \"5s\"\n\n{}",
        poster.display().to_string(),
        targets(&erp, &token, true)
    ));
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let mut host = Host::start(&config, &js, &[]).await;
    for n in 0..EVENTS {
        let (id, event) = completion(n, &format!("LOT-{n}"));
        publish_event(&js, "canonical.production-completion.PLANT1", &id, &event).await;
    }

    // Killed twice while posting; the outage in between. A restart waits out the rate window
    // the killed host may have filled: the limit is kept per host process.
    until("a third booked", || erp.booked() >= EVENTS / 3).await;
    host.kill();
    tokio::time::sleep(WINDOW).await;
    host = Host::start(&config, &js, &[]).await;
    until("half booked", || erp.booked() >= EVENTS / 2).await;
    erp.outage(Duration::from_secs(3)).await;
    until("two thirds booked", || erp.booked() >= EVENTS * 2 / 3).await;
    host.kill();
    tokio::time::sleep(WINDOW).await;
    let host = Host::start(&config, &js, &[]).await;
    until("every event booked", || erp.booked() >= EVENTS).await;

    // Every event acknowledged on POSTING, none dead-lettered, the consumer drained.
    let acknowledgements = read_stream(
        &js,
        "POSTING",
        "posting.erp.PLANT1",
        EVENTS,
        Duration::from_millis(500),
    )
    .await;
    let acknowledged: BTreeSet<String> = acknowledgements
        .iter()
        .map(|a| a.json()["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(acknowledged.len(), EVENTS);
    for a in &acknowledgements {
        assert_eq!(a.json()["outcome"], "posted", "{}", a.json());
    }
    let stream = js.get_stream("CANONICAL").await.unwrap();
    let consumer = stream
        .consumer_info(
            millrace::transport::route_consumer_name(
                "erp-postings",
                &["canonical.production-completion.>".to_owned()],
            )
            .as_str(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut consumer = consumer;
    while consumer.num_pending + consumer.num_ack_pending as u64 > 0 {
        assert!(
            started.elapsed() < PATIENCE,
            "the consumer never drained: {consumer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        consumer = stream.consumer_info(consumer.name.as_str()).await.unwrap();
    }
    assert_eq!(
        try_stream_len(&js, "DLQ").await.unwrap_or(0),
        0,
        "nothing is dead-lettered:\n{}",
        host.log_text()
    );

    let ledger = erp.ledger.lock().unwrap();
    assert_eq!(ledger.bookings.len(), EVENTS, "exactly N bookings");
    assert!(
        ledger.booked.values().all(|&times| times == 1),
        "an event booked twice: {:?}",
        ledger
            .booked
            .iter()
            .filter(|(_, t)| **t > 1)
            .collect::<Vec<_>>()
    );
    let expected: BTreeSet<String> = (0..EVENTS).map(|n| completion(n, "").0).collect();
    assert_eq!(
        ledger.bookings.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "the Idempotency-Key is the canonical event id"
    );
    assert_eq!(
        ledger.unauthorized, 0,
        "every request carried the bearer token and a key"
    );
    let busiest = ledger.arrivals.values().max().copied().unwrap_or(0);
    assert!(
        busiest <= RATE + 1,
        "the rate limit ({RATE} per {WINDOW:?}) was exceeded by more than one: {busiest} in one window"
    );
    eprintln!(
        "outbound: {EVENTS} events booked once each; {} requests, {} answered 429, busiest window {busiest}",
        ledger.requests, ledger.limited
    );
}

/// The body of the first request the stand-in saw with Idempotency-Key `key`.
fn body_of(erp: &StandInErp, key: &str) -> Value {
    let ledger = erp.ledger.lock().unwrap();
    ledger
        .log
        .iter()
        .find(|(_, k, _)| k == key)
        .map(|(_, _, body)| body.clone())
        .unwrap_or_else(|| panic!("no request with key {key}"))
}

/// The listing of event `id` among the events held at a gate (`GET /api/v1/outbound` of the
/// admin server on `port`), once it is listed.
async fn held_listing(port: u16, id: &str) -> Value {
    let api = format!("http://127.0.0.1:{port}/api/v1/outbound");
    let started = Instant::now();
    loop {
        let view: Value = reqwest::get(&api).await.unwrap().json().await.unwrap();
        let listed = view["held"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["event_id"] == id)
            .cloned();
        if let Some(listed) = listed {
            return listed;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "event {id} is not listed as held: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gate whose projection has never run fails closed: no holds bucket says nothing of a lot's
/// holds, so a completion of a lot waits, listed with why, until a projection runs (it was
/// posted at once: `millrace run` without the projection let stock on quality hold be booked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_whose_projection_never_ran_holds_what_it_governs() {
    let mut scenario = GateScenario::without_projection().await;
    let (erp, js, port) = (scenario.erp.clone(), scenario.js.clone(), scenario.port);
    let (waiting, event) = completion(1, "LOT-A");
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &waiting,
        &event,
    )
    .await;
    let listed = held_listing(port, &waiting).await;
    assert!(
        listed["why"]
            .as_str()
            .unwrap()
            .contains("no visibility projection has run"),
        "{listed}"
    );
    assert!(
        !seen(&erp).iter().any(|(_, key)| *key == waiting),
        "posted while the lot's holds were unknown"
    );

    // A projection runs (and knows no hold on the lot): the completion posts.
    scenario.start_projection().await;
    until("the completion posted once a projection ran", || {
        seen(&erp).iter().any(|(_, key)| *key == waiting)
    })
    .await;
    scenario.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_drives_three_targets_in_order_and_a_completion_of_the_held_lot_waits_for_the_release()
 {
    let scenario = GateScenario::start().await;
    let (erp, js, port) = (scenario.erp.clone(), scenario.js.clone(), scenario.port);
    let visibility =
        millrace::projection::query::Visibility::open(&js, &scenario.config.projection)
            .await
            .unwrap();
    let hold_open = |open: bool| {
        let visibility = visibility.clone();
        async move {
            let started = Instant::now();
            loop {
                let filter = millrace::projection::query::Filter {
                    lot: Some("LOT-H".into()),
                    ..Default::default()
                };
                let holds = visibility.holds(&filter).await.unwrap();
                if holds.iter().any(|h| h.open == open) {
                    return;
                }
                assert!(
                    started.elapsed() < PATIENCE,
                    "the projection never showed the hold open={open}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // Placed: the ERP blocks the stock, the WMS blocks shipment, the plant is told; in order.
    let (placed, event) = hold(1, "placed", "LOT-H");
    publish_event(&js, "canonical.quality-hold.PLANT1", &placed, &event).await;
    until("the placement fanned out", || seen(&erp).len() >= 3).await;
    hold_open(true).await;

    // A completion of the held lot waits at the gate; one of another lot posts.
    let (held, event) = completion(1, "LOT-H");
    publish_event(&js, "canonical.production-completion.PLANT1", &held, &event).await;
    let (free, event) = completion(2, "LOT-FREE");
    publish_event(&js, "canonical.production-completion.PLANT1", &free, &event).await;
    until("the completion of a free lot posted", || {
        seen(&erp).iter().any(|(_, key)| *key == free)
    })
    .await;
    let listed = held_listing(port, &held).await;
    assert_eq!(listed["route"], "completions");
    assert!(
        listed["why"].as_str().unwrap().contains("quality hold H-1"),
        "{listed}"
    );
    assert!(
        !seen(&erp).iter().any(|(_, key)| *key == held),
        "the completion of the held lot was posted while the hold was open"
    );

    // Released: the three targets in order again, then the held completion posts.
    let (released, event) = hold(2, "released", "LOT-H");
    publish_event(&js, "canonical.quality-hold.PLANT1", &released, &event).await;
    until("the held completion posted after the release", || {
        seen(&erp).iter().any(|(_, key)| *key == held)
    })
    .await;
    until("the release fanned out", || {
        seen(&erp)
            .iter()
            .filter(|(_, key)| *key == released)
            .count()
            >= 3
    })
    .await;
    assert_eq!(scenario.paths_of(&placed), FAN_OUT);
    assert_eq!(scenario.paths_of(&released), FAN_OUT);
    let log = seen(&erp);
    let at = |id: &str| log.iter().position(|(_, key)| key == id).unwrap();
    assert!(
        at(&placed) < at(&released),
        "the placement is posted before the release"
    );
    let release_status = erp
        .ledger
        .lock()
        .unwrap()
        .log
        .iter()
        .find(|(_, key, _)| *key == released)
        .unwrap()
        .2["status"]
        .clone();
    assert_eq!(release_status, "unrestricted");
    let api = format!("http://127.0.0.1:{port}/api/v1/outbound");
    let view: Value = reqwest::get(&api).await.unwrap().json().await.unwrap();
    assert!(view["held"].as_array().unwrap().is_empty(), "{view}");
    scenario.stop().await;
}

fn run_ok(args: &[&str]) -> String {
    let o = millrace(args);
    let t = text(&o);
    assert!(o.status.success(), "millrace {args:?}:\n{t}");
    t
}

/// The acknowledgements on POSTING of `event`, as JSON.
async fn acknowledgements_of(js: &jetstream::Context, event: &str, at_least: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let all = read_stream(js, "POSTING", "posting.>", 0, Duration::from_millis(200)).await;
        let of: Vec<Value> = all
            .iter()
            .map(|m| m.json())
            .filter(|a| a["event_id"] == event)
            .collect();
        if of.len() >= at_least {
            return of;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no acknowledgement of {event}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_versions_are_admitted_by_fixtures_shadowed_without_sending_swapped_and_rolled_back()
 {
    let nats = Nats::start();
    let erp = StandInErp::start(false).await;
    let token = nats.dir.path().join("erp.token");
    std::fs::write(&token, TOKEN).unwrap();
    let versions = tempfile::tempdir().unwrap();
    let v1 = plugin_version("tests/guests/poster", "1.0.0", versions.path());
    // Version 2 renders other requests: every body carries `"format": 2`.
    let v2 = plugin_version("tests/guests/poster-v2", "2.0.0", versions.path());
    // A version whose golden fixture expects another document id: refused at admission.
    let broken = plugin_version("tests/guests/poster", "3.0.0", versions.path());
    let case = broken.join("fixtures/completion.json");
    let other_document = std::fs::read_to_string(&case)
        .unwrap()
        .replace("\"posted\": \"4900000001\"", "\"posted\": \"4900000002\"");
    std::fs::write(&case, other_document).unwrap();
    let config = nats.config(&format!(
        "[outbound.posts]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = \"poster@1.0.0\"\ntargets = [\"erp\"]\n\n\
         [routes.steady]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = \"misbehave@1.0.0\"\n\n{}",
        targets(&erp, &token, false)
    ));
    let cfg = config.to_str().unwrap();
    for dir in [&v1, &v2, &broken, &plugin("tests/guests/misbehave")] {
        let t = run_ok(&["plugin", "deploy", dir.to_str().unwrap(), "--config", cfg]);
        assert!(t.contains("deployed "), "{t}");
    }
    let js = jetstream::new(nats.client().await);
    let mut host = InProcessHost::start(&config).await;

    // Refused: a broken fixture, and a mapping plugin on an outbound route.
    let refused = millrace(&[
        "route",
        "set-version",
        "posts",
        "poster@3.0.0",
        "--config",
        cfg,
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("golden fixtures fail"),
        "{}",
        text(&refused)
    );
    let refused = millrace(&[
        "route",
        "set-version",
        "posts",
        "misbehave@1.0.0",
        "--config",
        cfg,
    ]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("world"), "{}", text(&refused));

    // A shadow renders beside the active version; only the active version's request is sent.
    run_ok(&[
        "route",
        "set-version",
        "posts",
        "poster@2.0.0",
        "--shadow",
        "--config",
        cfg,
    ]);
    host.switched("posts", |serving| {
        serving
            .iter()
            .any(|s| s.role == "shadow" && s.version == "poster@2.0.0")
    })
    .await;
    let (first, event) = completion(1, "LOT-1");
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &first,
        &event,
    )
    .await;
    let acks = acknowledgements_of(&js, &first, 1).await;
    assert_eq!(acks[0]["plugin"], "poster@1.0.0");
    assert_eq!(
        seen(&erp).iter().filter(|(_, key)| *key == first).count(),
        1,
        "the shadow sends nothing"
    );
    assert_eq!(
        body_of(&erp, &first).get("format"),
        None,
        "what was sent is the active version's request, not the shadow's"
    );
    // Its requests differ: reported on the SHADOW stream, field by field.
    let mut diffs = String::new();
    until("a shadow report of the differing request", || {
        diffs = run_ok(&["route", "diff", "posts", "--config", cfg]);
        diffs.contains("poster@1.0.0 -> poster@2.0.0")
    })
    .await;
    assert!(
        diffs.contains("  requests[0].body.format: (absent) -> 2"),
        "{diffs}"
    );
    assert!(diffs.contains("1 message(s) with differences"), "{diffs}");

    // Activated: the next event posts through 2.0.0; rolled back: through 1.0.0 again.
    run_ok(&[
        "route",
        "set-version",
        "posts",
        "poster@2.0.0",
        "--config",
        cfg,
    ]);
    host.switched("posts", active_is("poster@2.0.0")).await;
    let (second, event) = completion(2, "LOT-2");
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &second,
        &event,
    )
    .await;
    assert_eq!(
        acknowledgements_of(&js, &second, 1).await[0]["plugin"],
        "poster@2.0.0"
    );
    assert_eq!(
        body_of(&erp, &second)["format"],
        2,
        "2.0.0's request is sent"
    );
    run_ok(&["route", "rollback", "posts", "--config", cfg]);
    host.switched("posts", active_is("poster@1.0.0")).await;
    let (third, event) = completion(3, "LOT-3");
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &third,
        &event,
    )
    .await;
    let ack = &acknowledgements_of(&js, &third, 1).await[0];
    assert_eq!(ack["plugin"], "poster@1.0.0");
    assert_eq!(ack["outcome"], "posted");
    assert_eq!(ack["document"], erp.ledger.lock().unwrap().bookings[&third]);
    let shown = run_ok(&["route", "show", "posts", "--config", cfg]);
    assert!(shown.contains("poster@1.0.0"), "{shown}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_dead_lettered_with_the_answer_and_redrive_posts_it_through_the_same_driver()
{
    let nats = Nats::start();
    let erp = StandInErp::start(false).await;
    let token = nats.dir.path().join("erp.token");
    // A wrong token: the stand-in answers 401, which the plugin reads as rejected.
    std::fs::write(&token, "wrong").unwrap();
    let poster = plugin("tests/guests/poster");
    let port = millrace::transport::local_server::free_port().unwrap();
    let config = nats.config(&format!(
        "[outbound.posts]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {:?}\ntargets = [\"erp\"]\n\n{}\n[admin]\nlisten = \"127.0.0.1:{port}\"\n",
        poster.display().to_string(),
        targets(&erp, &token, false)
    ));
    let cfg = config.to_str().unwrap();
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    // The admin API shows an outbound route by name, as any route (it was "not served").
    let route: Value = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/routes/posts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(route["name"], "posts", "{route}");
    assert_eq!(route["serving"][0]["version"], "poster@1.0.0", "{route}");
    let (id, event) = completion(7, "LOT-7");
    publish_event(&js, "canonical.production-completion.PLANT1", &id, &event).await;
    let (incomplete, event) = completion(8, "LOT-8");
    let event = {
        let mut event = event;
        event["data"]["work_order"] = "WO-INCOMPLETE".into();
        event
    };
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &incomplete,
        &event,
    )
    .await;
    let letters = read_stream(
        &js,
        "DLQ",
        "dlq.outbound.posts",
        2,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(letters.len(), 2);
    let rejected = letters
        .iter()
        .find(|l| l.json()["event_id"] == id.as_str())
        .unwrap();
    let letter = rejected.json();
    assert_eq!(letter["kind"], "rejected");
    assert_eq!(letter["answer"]["status"], 401);
    assert_eq!(letter["requests"][0]["path"], "/goods-movements");
    assert_eq!(letter["request"], 0);
    assert_eq!(rejected.header("Millrace-Direction"), Some("outbound"));
    let render = letters
        .iter()
        .find(|l| l.json()["event_id"] == incomplete.as_str())
        .unwrap();
    assert_eq!(render.json()["kind"], "incomplete-event");
    let ack = &acknowledgements_of(&js, &id, 1).await[0];
    assert_eq!(ack["outcome"], "rejected");
    let listed = run_ok(&["dlq", "list", "--route", "posts", "--config", cfg]);
    assert!(listed.contains("rejected"), "{listed}");
    // Wrong input says what is wrong: a route typo redrove nothing and succeeded, a sequence
    // that is no letter was said to "stay".
    let typo = millrace(&[
        "dlq", "redrive", "--all", "--route", "postz", "--config", cfg,
    ]);
    assert!(!typo.status.success());
    assert!(
        text(&typo).contains("the config has no route `postz`; its routes: posts"),
        "{}",
        text(&typo)
    );
    let unknown = millrace(&["dlq", "redrive", "999999", "--config", cfg]);
    assert!(!unknown.status.success());
    let unknown = text(&unknown);
    assert!(
        unknown.contains("there is no dead letter with sequence 999999"),
        "{unknown}"
    );
    assert!(!unknown.contains("stays"), "{unknown}");

    // The cause fixed (the right token), the letter is redriven through a deployed version of
    // the route's plugin (it was refused as "no route": an outbound route was built as an
    // inbound one) and posts once.
    host.stop().await;
    std::fs::write(&token, TOKEN).unwrap();
    let v2 = plugin("tests/guests/poster-v2");
    let deployed = run_ok(&["plugin", "deploy", v2.to_str().unwrap(), "--config", cfg]);
    assert!(deployed.contains("deployed "), "{deployed}");
    let sequence = rejected.sequence.to_string();
    // Another redrive of the letter is posting it now (taken a moment ago): this one posts
    // nothing and says so. Two redrives at once both posted to the target.
    let leases = js.get_key_value("millrace-idempotency").await.unwrap();
    let lease = format!("_redrive.letter.DLQ.{sequence}");
    let stamp = |ago: time::Duration| {
        (time::OffsetDateTime::now_utc() - ago)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    leases
        .put(&lease, stamp(time::Duration::seconds(5)).into())
        .await
        .unwrap();
    let busy = millrace(&["dlq", "redrive", &sequence, "--config", cfg]);
    assert!(!busy.status.success());
    assert!(
        text(&busy).contains("is being redriven by another caller"),
        "{}",
        text(&busy)
    );
    assert_eq!(erp.ledger.lock().unwrap().booked.get(&id), None);
    // One left by a redrive that died (older than its patience twice over) is taken over.
    leases
        .put(&lease, stamp(time::Duration::minutes(10)).into())
        .await
        .unwrap();
    let redriven = run_ok(&[
        "dlq",
        "redrive",
        &sequence,
        "--version",
        "poster@2.0.0",
        "--config",
        cfg,
    ]);
    assert!(
        leases.get(&lease).await.unwrap().is_none(),
        "the redrive gave its claim back"
    );
    assert!(!redriven.contains("still failing"), "{redriven}");
    assert!(redriven.contains("through poster@2.0.0"), "{redriven}");
    assert_eq!(erp.ledger.lock().unwrap().booked.get(&id), Some(&1));
    // Its "posted" acknowledgement is stored beside the "rejected" one: with one message id
    // per request, JetStream dropped it as a repeat, and the posting stayed rejected.
    let outcomes: Vec<Value> = acknowledgements_of(&js, &id, 2)
        .await
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["rejected", "posted"]);
    let left = read_stream(
        &js,
        "DLQ",
        "dlq.outbound.posts",
        1,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(left.len(), 1, "only the render error stays");
}

/// One event a healthy target answers 500 every time (an ERP failing on one payload) is retried
/// for as long as it takes, and opens the target's breaker, but it is not every probe: another
/// route's events posting to the same target close the breaker and are booked. Before, the
/// breaker never closed and every route posting to the target stopped.
///
/// While the breaker is open, a request the host refuses before sending (a path out of the
/// target's URL) takes the probe and gives it back. Before, the breaker waited for that
/// probe's outcome until the host restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_a_target_always_fails_or_the_host_refuses_do_not_stop_the_routes_posting_to_it() {
    let nats = Nats::start();
    let erp = StandInErp::start(false).await;
    let token = nats.dir.path().join("erp.token");
    std::fs::write(&token, TOKEN).unwrap();
    let poster = plugin("tests/guests/poster");
    let config = nats.config(&format!(
        "[outbound.plant1]\nsubjects = [\"canonical.production-completion.PLANT1\"]\nplugin = {0:?}\ntargets = [\"erp\"]\n\n\
         [outbound.plant2]\nsubjects = [\"canonical.production-completion.PLANT2\"]\nplugin = {0:?}\ntargets = [\"erp\"]\n\n{1}",
        poster.display().to_string(),
        targets(&erp, &token, false)
    ));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    let (poison, event) = completion(900, "LOT-POISON");
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &poison,
        &event,
    )
    .await;
    until("the poisoned event opened the breaker (3 failures)", || {
        erp.ledger
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|(_, key, _)| key == &poison)
            .count()
            >= 4
    })
    .await;
    let [escape] = publish_completions(
        &js,
        "canonical.production-completion.PLANT2",
        &[(906, Some("WO-PATH-ESCAPE"))],
    )
    .await
    .try_into()
    .unwrap();
    let letters = refusals(&js, "plant2", 1).await;
    assert_eq!(
        letters.get(&escape).map(|(kind, _)| kind.as_str()),
        Some("refused-request"),
        "{letters:?}"
    );
    let mut booked = Vec::new();
    for n in 901..906 {
        let (id, event) = completion(n, &format!("LOT-{n}"));
        publish_event(&js, "canonical.production-completion.PLANT2", &id, &event).await;
        booked.push(id);
    }
    until("the other route's events were booked", || {
        let ledger = erp.ledger.lock().unwrap();
        booked.iter().all(|id| ledger.booked.get(id) == Some(&1))
    })
    .await;
    assert_eq!(
        erp.ledger.lock().unwrap().booked.get(&poison),
        None,
        "the poisoned event is still being retried, never booked"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_target_publishes_each_request_to_its_outbox_subject_with_the_event_id_as_key() {
    let nats = Nats::start();
    let poster = plugin("tests/guests/poster");
    let config = nats.config(&format!(
        "[outbound.to-bus]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {:?}\ntargets = [\"erp\"]\n\n[targets.erp]\nkind = \"nats\"\n",
        poster.display().to_string(),
    ));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (id, event) = completion(n, &format!("LOT-{n}"));
        publish_event(&js, "canonical.production-completion.PLANT1", &id, &event).await;
        ids.push(id);
    }
    let out = read_stream(
        &js,
        "OUTBOX",
        "out.erp.PLANT1",
        3,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(out.len(), 3);
    // Lanes go by business key, so different work orders may arrive in any order.
    let mut published = BTreeMap::new();
    for message in &out {
        let key = message.header("Idempotency-Key").unwrap().to_owned();
        assert_eq!(message.json()["event"], key.as_str());
        assert_eq!(message.header("Content-Type"), Some("application/json"));
        published.insert(key, message.sequence);
    }
    assert_eq!(
        published.keys().cloned().collect::<BTreeSet<_>>(),
        ids.iter().cloned().collect::<BTreeSet<_>>()
    );
    for id in &ids {
        let ack = &acknowledgements_of(&js, id, 1).await[0];
        assert_eq!(ack["outcome"], "posted");
        assert_eq!(ack["target"], "erp");
        assert_eq!(ack["document"], format!("OUTBOX:{}", published[id]));
    }
    host.stop().await;
}

/// Publishes completions `n` on `subject`, in order, each of work order `WO-<n>` or the one
/// given (a work order the poster guest renders a hostile request for); their event ids.
async fn publish_completions(
    js: &jetstream::Context,
    subject: &str,
    completions: &[(usize, Option<&str>)],
) -> Vec<String> {
    let mut ids = Vec::new();
    for &(n, work_order) in completions {
        let (id, mut event) = completion(n, &format!("LOT-{n}"));
        if let Some(work_order) = work_order {
            event["data"]["work_order"] = work_order.into();
        }
        publish_event(js, subject, &id, &event).await;
        ids.push(id);
    }
    ids
}

/// The dead letters of `route`, by event id: (kind, reason).
async fn refusals(
    js: &jetstream::Context,
    route: &str,
    count: usize,
) -> BTreeMap<String, (String, String)> {
    read_stream(
        js,
        "DLQ",
        &format!("dlq.outbound.{route}"),
        count,
        Duration::from_millis(300),
    )
    .await
    .iter()
    .map(|letter| {
        let letter = letter.json();
        (
            letter["event_id"].as_str().unwrap().to_owned(),
            (
                letter["kind"].as_str().unwrap().to_owned(),
                letter["reason"].as_str().unwrap().to_owned(),
            ),
        )
    })
    .collect()
}

/// A host with route `posts` posting completions through the test poster to the stand-in ERP,
/// its targets' settings as `targets` edits them.
async fn posting_to_the_erp(
    targets: impl FnOnce(String) -> String,
) -> (Nats, StandInErp, jetstream::Context, InProcessHost) {
    let nats = Nats::start();
    let erp = StandInErp::start(false).await;
    let token = nats.dir.path().join("erp.token");
    std::fs::write(&token, TOKEN).unwrap();
    let poster = plugin("tests/guests/poster");
    let targets = targets(self::targets(&erp, &token, false));
    let config = nats.config(&format!(
        "[outbound.posts]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {poster:?}\ntargets = [\"erp\"]\n\n{targets}"
    ));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    (nats, erp, js, host)
}

/// A target set to give up (`retry.give_up_after`) dead-letters an event it keeps answering 500
/// once that time has passed, with its last answer, and the event behind it in the same lane
/// (the same work order) is posted. Unset, the event is retried for as long as it takes (the
/// test above), holding its lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_set_to_give_up_dead_letters_the_event_it_keeps_failing_and_frees_its_lane() {
    let (_nats, erp, js, host) = posting_to_the_erp(|targets| {
        targets.replace(
            "max_backoff = \"1s\" }",
            "max_backoff = \"1s\", give_up_after = \"2s\" }",
        )
    })
    .await;
    let subject = "canonical.production-completion.PLANT1";
    let (poison, event) = completion(950, "LOT-POISON");
    publish_event(&js, subject, &poison, &event).await;
    let (behind, mut event) = completion(951, "LOT-951");
    event["subject"] = "WO-950@PLANT1".into();
    publish_event(&js, subject, &behind, &event).await;
    until("the event behind it in its lane is booked", || {
        erp.ledger.lock().unwrap().booked.get(&behind) == Some(&1)
    })
    .await;
    let letters = read_stream(&js, "DLQ", "dlq.outbound.posts", 1, Duration::ZERO).await;
    let letter = letters[0].json();
    assert_eq!(letter["event_id"], poison.as_str());
    assert_eq!(letter["kind"], "gave-up", "{letter}");
    assert_eq!(letter["answer"]["status"], 500);
    let reason = letter["reason"].as_str().unwrap();
    assert!(
        reason.contains("target `erp` still could not take it after")
            && reason.contains("past its retry.give_up_after (2s): status 500"),
        "{reason}"
    );
    let tries = seen(&erp).iter().filter(|(_, key)| key == &poison).count();
    assert!(tries >= 2, "retried before it was given up: {tries}");
    assert_eq!(erp.ledger.lock().unwrap().booked.get(&poison), None);
    host.stop().await;
}

/// The target books a request, and the plugin then fails reading the answer (it traps on every
/// try): the event is dead-lettered with the target's answer in the letter, and its reason says
/// the target may hold a booking. Before, the letter had no answer, and the 201 and its document
/// number were lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_plugin_cannot_read_is_kept_in_the_dead_letter() {
    let (_nats, erp, js, host) = posting_to_the_erp(|targets| targets).await;
    let [trapped] = publish_completions(
        &js,
        "canonical.production-completion.PLANT1",
        &[(1, Some("WO-ANSWER-TRAP"))],
    )
    .await
    .try_into()
    .unwrap();
    let letters = read_stream(
        &js,
        "DLQ",
        "dlq.outbound.posts",
        1,
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].header("Millrace-Attempts"),
        Some("3"),
        "the route's three tries of reading the answer, as the letter says"
    );
    let letter = letters[0].json();
    assert_eq!(letter["event_id"], trapped.as_str());
    assert_eq!(letter["kind"], "trap", "{letter}");
    let reason = letter["reason"].as_str().unwrap();
    assert!(
        reason.contains("target `erp` answered 201, which the plugin failed to read, so the target may hold a booking")
            && reason.contains("cannot read the answer"),
        "{reason}"
    );
    let document = erp.ledger.lock().unwrap().bookings[&trapped].clone();
    assert_eq!(letter["request"], 0);
    assert_eq!(letter["answer"]["status"], 201);
    assert_eq!(
        letter["answer"]["body"]["document"],
        document.as_str(),
        "the document number is kept"
    );
    assert_eq!(erp.ledger.lock().unwrap().booked[&trapped], 1);
    host.stop().await;
}

/// Requests a hostile or careless poster renders are refused before anything is sent: a header
/// value with a line break (a second header smuggled after it), a path that leaves the target's
/// URL for another's (with the target's credentials), and, to a NATS target, a `Nats-` header
/// JetStream would act on (`Nats-Rollup: all` purges the outbox). Each is dead-lettered once as
/// `refused-request` naming why, never retried as an outage (which would open the target's
/// breaker for every route), and the events behind it are posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_unsent_and_the_target_serves_on() {
    let nats = Nats::start();
    let erp = StandInErp::start(false).await;
    let token = nats.dir.path().join("erp.token");
    std::fs::write(&token, TOKEN).unwrap();
    let poster = plugin("tests/guests/poster").display().to_string();
    let js = jetstream::new(nats.client().await);
    let subject = "canonical.production-completion.PLANT1";

    let config = nats.config(&format!(
        "[outbound.posts]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {poster:?}\ntargets = [\"erp\"]\n\n{}",
        targets(&erp, &token, false)
    ));
    let host = InProcessHost::start(&config).await;
    let [split, escape, good, huge] = publish_completions(
        &js,
        subject,
        &[
            (1, Some("WO-HEADER-SPLIT")),
            (2, Some("WO-PATH-ESCAPE")),
            (3, None),
            (4, Some("WO-HUGE-BODY")),
        ],
    )
    .await
    .try_into()
    .unwrap();
    let letters = refusals(&js, "posts", 3).await;
    assert_eq!(letters.len(), 3, "{letters:?}");
    // The route's output limit holds for requests as for events (a 51 MB body was sent).
    let (kind, reason) = &letters[&huge];
    assert_eq!(kind, "output-limit");
    assert!(
        reason.contains("the requests are 2049 KiB, the route allows 1024 KiB"),
        "{reason}"
    );
    let (kind, reason) = &letters[&split];
    assert_eq!(kind, "refused-request");
    assert!(
        reason.contains("`X-Note` holds the control character '\\r'"),
        "{reason}"
    );
    let (kind, reason) = &letters[&escape];
    assert_eq!(kind, "refused-request");
    assert!(
        reason.contains("\"/../wms/goods-movements\" holds the segment `..`"),
        "{reason}"
    );
    until("the good event is booked", || {
        erp.ledger.lock().unwrap().booked.get(&good) == Some(&1)
    })
    .await;
    let sent = seen(&erp);
    assert!(
        sent.iter()
            .all(|(path, key)| key == &good && path.starts_with("/erp/")),
        "only the good event reached the ERP, at the erp target's path: {sent:?}"
    );
    host.stop().await;

    // To a NATS target (a server of its own, so its route sees only these events): a `Nats-`
    // header is refused, and the outbox keeps what was published around it.
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    let config = nats.config(&format!(
        "[outbound.to-bus]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {poster:?}\ntargets = [\"erp\"]\n\n[targets.erp]\nkind = \"nats\"\n",
    ));
    let host = InProcessHost::start(&config).await;
    let [first, rollup, last] = publish_completions(
        &js,
        subject,
        &[(4, None), (5, Some("WO-NATS-HEADER")), (6, None)],
    )
    .await
    .try_into()
    .unwrap();
    let letters = refusals(&js, "to-bus", 1).await;
    let (kind, reason) = &letters[&rollup];
    assert_eq!(kind, "refused-request");
    assert!(
        reason.contains("`Nats-Rollup`: JetStream acts on"),
        "{reason}"
    );
    let out = read_stream(
        &js,
        "OUTBOX",
        "out.erp.PLANT1",
        2,
        Duration::from_millis(500),
    )
    .await;
    let keys: BTreeSet<String> = out
        .iter()
        .map(|m| m.header("Idempotency-Key").unwrap().to_owned())
        .collect();
    assert_eq!(keys, BTreeSet::from([first.clone(), last.clone()]));
    host.stop().await;
}

/// Posts one completion through the test poster to the stand-in ERP's `path` (the target's
/// URL, with `timeout`) and waits for its one dead letter: the ERP, the JetStream context, the
/// host (its server kept alive with it), the event id and the letter.
async fn dead_letter_from(
    path: &str,
    timeout: &str,
) -> (
    StandInErp,
    jetstream::Context,
    (Nats, InProcessHost),
    String,
    Value,
) {
    let nats = Nats::start();
    let erp = StandInErp::start(false).await;
    let token = nats.dir.path().join("erp.token");
    std::fs::write(&token, TOKEN).unwrap();
    let poster = plugin("tests/guests/poster").display().to_string();
    let config = nats.config(&format!(
        "[outbound.posts]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {poster:?}\ntargets = [\"erp\"]\n\n\
         [targets.erp]\nurl = \"{}/{path}\"\ntimeout = \"{timeout}\"\nauth = {{ bearer_file = {:?} }}\n",
        erp.url(),
        token.display().to_string()
    ));
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    let [id] = publish_completions(&js, "canonical.production-completion.PLANT1", &[(1, None)])
        .await
        .try_into()
        .unwrap();
    let letters = read_stream(
        &js,
        "DLQ",
        "dlq.outbound.posts",
        1,
        Duration::from_millis(300),
    )
    .await;
    let letter = letters[0].json();
    (erp, js, (nats, host), id, letter)
}

/// A target that answers a posting with a redirect (here an expired session sent to a sign-in
/// page that answers 200) is not followed: the plugin reads the 302, which the test poster
/// takes for a rejection, so the event is dead-lettered with the answer for redrive, where a
/// followed redirect would have turned the POST into a GET of the sign-in page and its 200
/// into "posted" with nothing booked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_answered_to_the_plugin_never_followed() {
    let (erp, js, host, id, letter) = dead_letter_from("session-expired", "2s").await;
    assert_eq!(letter["event_id"], id.as_str());
    assert_eq!(letter["kind"], "rejected");
    assert_eq!(letter["answer"]["status"], 302);
    let ack = &acknowledgements_of(&js, &id, 1).await[0];
    assert_eq!(ack["outcome"], "rejected");
    let sent = seen(&erp);
    assert_eq!(
        sent,
        vec![("/session-expired/goods-movements".to_owned(), id.clone())],
        "one POST, and no request to the sign-in page"
    );
    assert_eq!(erp.booked(), 0);
    host.1.stop().await;
}

/// A target whose answer never ends (a 5 MiB error page): the host reads the first MiB for the
/// plugin, the plugin's verdict quoting it is clipped to 4 KiB, and the dead letter keeps the
/// first 64 KiB of the body, so the letter and the acknowledgement each fit in one NATS message
/// and the event is dead-lettered once, not redelivered for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_is_read_in_part_and_its_dead_letter_fits_in_a_message() {
    let (erp, js, host, id, letter) = dead_letter_from("huge", "5s").await;
    assert_eq!(letter["event_id"], id.as_str());
    assert_eq!(letter["kind"], "rejected");
    assert_eq!(letter["answer"]["status"], 422);
    let reason = letter["reason"].as_str().unwrap();
    assert!(
        reason.contains("this letter keeps 65536 of the 1048576 bytes of the answer's body"),
        "{reason}"
    );
    // The plugin quoted the whole page in its verdict: clipped to 4 KiB, in the letter and in
    // the acknowledgement alike.
    assert!(reason.len() < 5 * 1024, "{} bytes", reason.len());
    let ack = &acknowledgements_of(&js, &id, 1).await[0];
    assert_eq!(ack["outcome"], "rejected");
    assert!(ack["reason"].as_str().unwrap().ends_with('…'));
    let kept = letter["answer"]["body"]["base64"].as_str().unwrap();
    assert_eq!(kept.len(), 65536 / 3 * 4 + 4, "64 KiB of body, base64");
    // Dead-lettered once: the POST went once, and nothing was redelivered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seen(&erp).len(), 1, "{:?}", seen(&erp).len());
    host.1.stop().await;
}

/// A dead letter whose business key a later event was posted for since is not posted by a
/// redrive: the older event would leave the target with the older state (a hold's placement
/// redriven after its release re-blocked the lot). It stays, said superseded, unless the
/// operator asks for it with `--superseded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_does_not_post_an_event_older_than_one_posted_since() {
    let scenario = GateScenario::start().await;
    let (erp, js) = (scenario.erp.clone(), scenario.js.clone());
    let cfg = scenario.config_path.to_str().unwrap().to_owned();
    // Two completions of work order WO-11: the first of a lot the ERP rejects for good.
    let (older, event) = completion(11, "LOT-UNKNOWN");
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &older,
        &event,
    )
    .await;
    let letter = read_stream(&js, "DLQ", "dlq.outbound.completions", 1, Duration::ZERO)
        .await
        .remove(0);
    let (newer, mut event) = completion(12, "LOT-12");
    event["subject"] = "WO-11@PLANT1".into();
    event["data"]["work_order"] = "WO-11".into();
    publish_event(
        &js,
        "canonical.production-completion.PLANT1",
        &newer,
        &event,
    )
    .await;
    until("the newer completion posted", || {
        seen(&erp).iter().any(|(_, key)| *key == newer)
    })
    .await;
    // The projection has recorded it.
    let visibility =
        millrace::projection::query::Visibility::open(&js, &scenario.config.projection)
            .await
            .unwrap();
    let canonical_sequence = letter.json()["sequence"].as_u64().unwrap();
    let started = Instant::now();
    while visibility
        .posted_after(
            "completions",
            "production-completion",
            "WO-11@PLANT1",
            canonical_sequence,
        )
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            started.elapsed() < PATIENCE,
            "the posting was never projected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let sequence = letter.sequence.to_string();
    let stale = millrace(&["dlq", "redrive", &sequence, "--config", &cfg]);
    let said = text(&stale);
    assert!(!stale.status.success(), "{said}");
    assert!(
        said.contains("superseded: a later production-completion of WO-11@PLANT1")
            && said.contains(&newer)
            && said.contains("the dead letter stays"),
        "{said}"
    );
    let requests = |id: &str| seen(&erp).iter().filter(|(_, key)| key == id).count();
    assert_eq!(requests(&older), 1, "the older completion was posted again");
    assert_eq!(
        read_stream(&js, "DLQ", "dlq.outbound.completions", 1, Duration::ZERO)
            .await
            .len(),
        1
    );

    // Asked for, it is posted (and the ERP rejects this lot again).
    let forced = millrace(&[
        "dlq",
        "redrive",
        &sequence,
        "--superseded",
        "--config",
        &cfg,
    ]);
    assert!(
        text(&forced).contains("LOT-UNKNOWN is not known"),
        "{}",
        text(&forced)
    );
    assert_eq!(requests(&older), 2);
    scenario.stop().await;
}

/// A ship notice of 70,000 serial numbers fits in one NATS message on CANONICAL, but a dead
/// letter quoting it (every quote escaped) would not: the letter keeps no copy of the event
/// and says why, and redrive reads the event from CANONICAL and posts it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_too_large_to_copy_its_event_is_redriven_from_canonical() {
    let nats = Nats::start();
    let erp = StandInErp::start(false).await;
    let token = nats.dir.path().join("erp.token");
    // A wrong token: the stand-in answers 401, which the plugin reads as rejected.
    std::fs::write(&token, "wrong").unwrap();
    let poster = plugin("tests/guests/poster");
    let config = nats.config(&format!(
        "[outbound.asns]\nsubjects = [\"canonical.shipment-notice.>\"]\nplugin = {:?}\ntargets = [\"erp\"]\n\n{}",
        poster.display().to_string(),
        targets(&erp, &token, false)
    ));
    let cfg = config.to_str().unwrap();
    let js = jetstream::new(nats.client().await);
    let host = InProcessHost::start(&config).await;
    let (id, event) = shipment(1, 70_000);
    let size = event.to_string().len();
    assert!((900 * 1024..1000 * 1024).contains(&size), "{size} bytes");
    publish_event(&js, "canonical.shipment-notice.PLANT1", &id, &event).await;
    let letters = read_stream(
        &js,
        "DLQ",
        "dlq.outbound.asns",
        1,
        Duration::from_millis(300),
    )
    .await;
    let letter = letters[0].json();
    assert_eq!(letter["event_id"], id.as_str());
    assert_eq!(letter["kind"], "rejected");
    assert_eq!(letter["answer"]["status"], 401);
    assert_eq!(letter["event"], "", "no copy of the event");
    let why = letter["event_not_copied"].as_str().unwrap();
    assert!(why.contains("the event is CANONICAL's message 1"), "{why}");

    host.stop().await;
    std::fs::write(&token, TOKEN).unwrap();
    let sequence = letters[0].sequence.to_string();
    let redriven = run_ok(&["dlq", "redrive", &sequence, "--config", cfg]);
    assert!(!redriven.contains("still failing"), "{redriven}");
    let ledger = erp.ledger.lock().unwrap();
    assert_eq!(ledger.booked.get(&id), Some(&1));
    let (path, _, body) = ledger.log.last().unwrap();
    assert_eq!(path, "/erp/inbound-deliveries");
    assert_eq!(
        body["serials"], 70_000,
        "the whole event, read from CANONICAL"
    );
    assert_eq!(body["shipment"], "ASN-1");
}

/// A target secret that cannot be read stops what posts, not what reads: `audit` and `route
/// show` run from the shared config without the production secret (they failed on load),
/// and `millrace run` refuses to start, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_secret_stops_the_host_and_not_the_read_commands() {
    let nats = Nats::start();
    let config = nats.config(&format!(
        "[outbound.posts]\nsubjects = [\"canonical.production-completion.>\"]\nplugin = {:?}\ntargets = [\"erp\"]\n\n\
         [targets.erp]\nurl = \"http://127.0.0.1:9/erp\"\nauth = {{ bearer_env = \"MILLRACE_TEST_ERP_TOKEN_UNSET\" }}\n",
        plugin("tests/guests/poster").display().to_string(),
    ));
    let cfg = config.to_str().unwrap();
    run_ok(&["audit", "--config", cfg]);
    run_ok(&["route", "show", "posts", "--config", cfg]);
    let said = host_refused(&config);
    assert!(
        said.contains("target `erp` cannot post") && said.contains("MILLRACE_TEST_ERP_TOKEN_UNSET"),
        "{said}"
    );
}
