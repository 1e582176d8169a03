//! Streams, route consumers and key-value buckets against a real nats-server: one consumer per
//! route whatever its subjects, the take-over from the per-subject consumers of older hosts,
//! and several hosts creating the same things at once.

use std::time::Duration;

use crate::support::Nats;
use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::StreamExt;
use millrace::config::StreamsConfig;
use millrace::transport::{self, consumer_name, route_consumer_name};

const ACK_WAIT: Duration = Duration::from_secs(30);

fn subjects(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Publishes `count` messages on each subject in turn.
async fn publish(js: &jetstream::Context, on: &[&str], count: usize) {
    for i in 0..count {
        for subject in on {
            js.publish(subject.to_string(), format!("{i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    }
}

/// Fetches what `consumer` delivers until it has nothing more, acking every message when
/// `ack`, and returns (subject, stream sequence) of each.
async fn take(consumer: &PullConsumer, limit: usize, ack: bool) -> Vec<(String, u64)> {
    let mut taken = Vec::new();
    while taken.len() < limit {
        let mut batch = consumer
            .fetch()
            .max_messages(limit - taken.len())
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message = message.unwrap();
            taken.push((
                message.subject.to_string(),
                message.info().unwrap().stream_sequence,
            ));
            if ack {
                message.double_ack().await.unwrap();
            }
            got += 1;
        }
        if got == 0 {
            break;
        }
    }
    taken
}

async fn consumer_names(js: &jetstream::Context) -> Vec<String> {
    let stream = js.get_stream("RAW").await.unwrap();
    let mut names: Vec<String> = stream.consumer_names().map(|n| n.unwrap()).collect().await;
    names.sort();
    names
}

#[tokio::test]
async fn a_route_with_several_subjects_reads_them_through_one_consumer() {
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    transport::ensure_streams(&js, &StreamsConfig::default())
        .await
        .unwrap();
    publish(&js, &["raw.a.p1.x", "raw.b.p1.x", "raw.c.p1.x"], 5).await;
    let route = subjects(&["raw.a.*.x", "raw.b.*.x"]);
    let consumer = transport::route_consumer(&js, "RAW", "two", &route, ACK_WAIT, None)
        .await
        .unwrap();
    assert_eq!(consumer_names(&js).await, vec!["millrace_two".to_owned()]);
    assert_eq!(route_consumer_name("two", &route), "millrace_two");
    let taken = take(&consumer, 100, true).await;
    assert_eq!(taken.len(), 10, "{taken:?}");
    assert!(taken.iter().all(|(s, _)| s != "raw.c.p1.x"), "{taken:?}");
    // A route with one subject keeps the name hosts gave its consumer before.
    assert_eq!(
        route_consumer_name("one", &subjects(&["raw.a.*.x"])),
        consumer_name("one", "raw.a.*.x")
    );
}

#[tokio::test]
async fn the_route_consumer_takes_over_from_the_per_subject_consumers_of_older_hosts() {
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    transport::ensure_streams(&js, &StreamsConfig::default())
        .await
        .unwrap();
    publish(&js, &["raw.a.p1.x", "raw.b.p1.x"], 10).await;
    // What an older host left: one consumer per subject, `a` half way, `b` done.
    let stream = js.get_stream("RAW").await.unwrap();
    let mut old = Vec::new();
    for subject in ["raw.a.*.x", "raw.b.*.x"] {
        let name = consumer_name("mixed", subject);
        let consumer: PullConsumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: subject.to_owned(),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .unwrap();
        old.push((name, consumer));
    }
    let done_a = take(&old[0].1, 4, true).await;
    assert_eq!(done_a.len(), 4);
    // Delivered but never acked: the older host died with these in flight.
    let in_flight = take(&old[0].1, 2, false).await;
    assert_eq!(in_flight.len(), 2);
    assert_eq!(take(&old[1].1, 100, true).await.len(), 10);

    let route = subjects(&["raw.a.*.x", "raw.b.*.x"]);
    let consumer = transport::route_consumer(&js, "RAW", "mixed", &route, ACK_WAIT, None)
        .await
        .unwrap();
    assert_eq!(
        consumer_names(&js).await,
        vec!["millrace_mixed".to_owned()],
        "the per-subject consumers are replaced"
    );
    let taken = take(&consumer, 100, true).await;
    let a: Vec<u64> = taken
        .iter()
        .filter(|(s, _)| s == "raw.a.p1.x")
        .map(|(_, seq)| *seq)
        .collect();
    // Every `a` message not acked before is delivered (in flight or never delivered): none lost,
    // and none of those acked before comes again.
    let expected_a: Vec<u64> = (0..10u64).map(|i| 2 * i + 1).skip(4).collect();
    assert_eq!(a, expected_a, "{taken:?}");
    // `b` was done: what comes again of it is only what lies after `a`'s floor (redelivery,
    // dropped downstream by the events' ids), never anything before.
    let floor = done_a.last().unwrap().1;
    assert!(
        taken
            .iter()
            .filter(|(s, _)| s == "raw.b.p1.x")
            .all(|(_, seq)| *seq > floor),
        "{taken:?}"
    );

    // Started again (or by a second host): the same consumer, its position kept.
    let again = transport::route_consumer(&js, "RAW", "mixed", &route, ACK_WAIT, None)
        .await
        .unwrap();
    assert!(take(&again, 100, true).await.is_empty());
    publish(&js, &["raw.b.p1.x"], 1).await;
    assert_eq!(take(&again, 100, true).await.len(), 1);
}

#[tokio::test]
async fn a_route_consumer_follows_its_subjects_and_ack_wait_keeping_its_position() {
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    transport::ensure_streams(&js, &StreamsConfig::default())
        .await
        .unwrap();
    publish(&js, &["raw.a.p1.x", "raw.b.p1.x", "raw.c.p1.x"], 3).await;
    let before = subjects(&["raw.a.*.x", "raw.b.*.x"]);
    let consumer = transport::route_consumer(&js, "RAW", "grows", &before, ACK_WAIT, None)
        .await
        .unwrap();
    assert_eq!(take(&consumer, 100, true).await.len(), 6);

    let after = subjects(&["raw.a.*.x", "raw.b.*.x", "raw.c.*.x"]);
    let mut consumer =
        transport::route_consumer(&js, "RAW", "grows", &after, Duration::from_secs(7), None)
            .await
            .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.config.filter_subjects, after);
    assert_eq!(info.config.ack_wait, Duration::from_secs(7));
    assert_eq!(consumer_names(&js).await, vec!["millrace_grows".to_owned()]);
    // Its position is kept: what it acked does not come again; the new subject's messages
    // from here on do.
    assert!(take(&consumer, 100, true).await.is_empty());
    publish(&js, &["raw.c.p1.x"], 2).await;
    assert_eq!(take(&consumer, 100, true).await.len(), 2);
}

#[tokio::test]
async fn hosts_starting_at_once_share_one_consumer_and_one_bucket() {
    let nats = Nats::start();
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    transport::ensure_streams(&js, &StreamsConfig::default())
        .await
        .unwrap();
    let route = subjects(&["raw.a.*.x", "raw.b.*.x"]);
    let mut starts = Vec::new();
    for _ in 0..4 {
        let js = jetstream::new(client.clone());
        let route = route.clone();
        starts.push(tokio::spawn(async move {
            transport::route_consumer(&js, "RAW", "shared", &route, ACK_WAIT, None).await?;
            transport::key_value(&js, "millrace-shared", Duration::ZERO, "shared").await
        }));
    }
    for start in starts {
        start.await.unwrap().unwrap();
    }
    assert_eq!(
        consumer_names(&js).await,
        vec!["millrace_shared".to_owned()]
    );
    let bucket = js.get_key_value("millrace-shared").await.unwrap();
    bucket.put("k", "v".into()).await.unwrap();
    assert_eq!(bucket.get("k").await.unwrap().unwrap(), "v".as_bytes());
}

#[tokio::test]
async fn hosts_creating_the_streams_and_buckets_at_once_all_succeed() {
    let nats = Nats::start();
    let client = nats.client().await;
    let config = millrace::config::Config::parse(
        "[streams]\nreplicas = 1\nplacement_tags = []\n",
        std::path::Path::new("millrace.toml"),
    )
    .unwrap();
    let config = std::sync::Arc::new(config);
    let mut starts = Vec::new();
    for _ in 0..6 {
        let js = jetstream::new(client.clone());
        let config = config.clone();
        starts.push(tokio::spawn(async move {
            transport::ensure_streams(&js, &config.streams).await?;
            transport::ensure_buckets(&js, &config).await
        }));
    }
    for start in starts {
        start.await.unwrap().unwrap();
    }
    let js = jetstream::new(client);
    for name in [
        "RAW",
        "CANONICAL",
        "DLQ",
        "SHADOW",
        "KV_millrace-idempotency",
        "KV_millrace-order",
    ] {
        let mut stream = js.get_stream(name).await.unwrap();
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.num_replicas, 1, "{name}");
    }
    let horizon = config.governance.horizon;
    let idempotency = js.get_key_value("millrace-idempotency").await.unwrap();
    let mut under = js.get_stream(&idempotency.stream_name).await.unwrap();
    assert_eq!(under.info().await.unwrap().config.max_age, horizon);
}

#[tokio::test]
async fn three_replicas_on_a_single_server_are_refused_with_what_to_change() {
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    transport::ensure_streams(&js, &StreamsConfig::default())
        .await
        .unwrap();
    // Existing streams are brought to the configured replicas: here that cannot be.
    let streams = StreamsConfig {
        replicas: Some(3),
        ..Default::default()
    };
    let e = transport::ensure_streams(&js, &streams).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("stream RAW"), "{text}");
    assert!(text.contains("cluster of three or more"), "{text}");
    assert!(text.contains("streams.replicas"), "{text}");
    // And so are new ones.
    let e = transport::replicated_key_value(
        &js,
        "millrace-r3",
        Duration::ZERO,
        "test",
        &transport::Replication::of(&streams),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("cluster of three or more"),
        "{e:#}"
    );
    let mut raw = js.get_stream("RAW").await.unwrap();
    assert_eq!(raw.info().await.unwrap().config.num_replicas, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_maps_a_route_with_two_subjects_through_one_consumer() {
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    let dir = crate::support::plugin("tests/guests/misbehave");
    let config = nats.config(&format!(
        "[routes.pair]\nsubjects = [\"raw.test.a.cmd\", \"raw.test.b.cmd\"]\nplugin = {:?}\n",
        dir.display().to_string()
    ));
    let host = crate::support::Host::start(&config, &js, &["millrace_pair"]).await;
    for n in 1..=6 {
        let subject = if n % 2 == 0 {
            "raw.test.b.cmd"
        } else {
            "raw.test.a.cmd"
        };
        crate::support::publish(&js, subject, format!("ok {n}").as_bytes(), &format!("n{n}")).await;
    }
    let events =
        crate::support::read_stream(&js, "CANONICAL", "canonical.>", 6, Duration::from_secs(1))
            .await;
    let mut orders: Vec<String> = events
        .iter()
        .map(|e| e.json()["data"]["work_order"].as_str().unwrap().to_owned())
        .collect();
    orders.sort();
    assert_eq!(
        orders,
        (1..=6).map(|n| format!("WO-{n}")).collect::<Vec<_>>(),
        "{}",
        host.log_text()
    );
    assert_eq!(consumer_names(&js).await, vec!["millrace_pair".to_owned()]);
}

/// Streams created earlier follow the configuration: a subject added to `streams.raw_subjects`
/// is captured, and a changed `streams.duplicate_window` kept. Both were ignored once the
/// streams existed, without a word, and a route on the new subject idled.
#[tokio::test]
async fn existing_streams_take_a_new_raw_subject_and_duplicate_window() {
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    transport::ensure_streams(&js, &StreamsConfig::default())
        .await
        .unwrap();
    let parse = |text: &str| {
        millrace::config::Config::parse(text, std::path::Path::new("millrace.toml"))
            .unwrap()
            .streams
    };
    let wider =
        parse("[streams]\nraw_subjects = [\"raw.>\", \"edi.>\"]\nduplicate_window = \"30m\"\n");
    transport::ensure_streams(&js, &wider).await.unwrap();
    let config = |name: &'static str| {
        let js = js.clone();
        async move {
            let mut stream = js.get_stream(name).await.unwrap();
            stream.info().await.unwrap().config.clone()
        }
    };
    let raw = config("RAW").await;
    assert_eq!(raw.subjects, subjects(&["raw.>", "edi.>"]));
    assert_eq!(raw.duplicate_window, Duration::from_secs(30 * 60));
    assert_eq!(
        config("CANONICAL").await.duplicate_window,
        Duration::from_secs(30 * 60)
    );
    let stored = js
        .publish("edi.x12.plant1.856", "ISA".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(stored.stream, "RAW");

    // A subject within what RAW captures adds nothing, and none is taken away (another host
    // may still use it); the window follows the configuration back.
    transport::ensure_streams(&js, &parse("[streams]\nraw_subjects = [\"raw.mes.>\"]\n"))
        .await
        .unwrap();
    let raw = config("RAW").await;
    assert_eq!(raw.subjects, subjects(&["raw.>", "edi.>"]));
    assert_eq!(raw.duplicate_window, Duration::from_secs(120));
}

/// The audit trail is append-only: JetStream refuses to delete an entry or purge the stream,
/// and an AUDIT stream an older host created without that is made so.
#[tokio::test]
async fn the_audit_trail_refuses_deletes_and_purges() {
    let nats = Nats::start();
    let js = jetstream::new(nats.client().await);
    let streams = StreamsConfig::default();
    // As an older host created it: no deny flags.
    js.create_stream(jetstream::stream::Config {
        name: streams.audit.clone(),
        subjects: subjects(&["audit.>"]),
        ..Default::default()
    })
    .await
    .unwrap();
    transport::ensure_streams(&js, &streams).await.unwrap();
    let mut audit = js.get_stream(&streams.audit).await.unwrap();
    let config = audit.info().await.unwrap().config.clone();
    assert!(
        config.deny_delete && config.deny_purge,
        "append-only: {config:?}"
    );
    let entry = js
        .publish("audit.route.line.set-version", "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        audit.delete_message(entry.sequence).await.is_err(),
        "an audit entry cannot be deleted"
    );
    assert!(
        audit.purge().await.is_err(),
        "the audit trail cannot be purged"
    );
    assert_eq!(audit.info().await.unwrap().state.messages, 1);
    let mut undone = config.clone();
    (undone.deny_delete, undone.deny_purge) = (false, false);
    assert!(
        js.update_stream(&undone).await.is_err(),
        "JetStream does not turn them off again"
    );
    // The other streams keep deletes: redrive deletes the dead letters it settled.
    let dlq = js.get_stream(&streams.dlq).await.unwrap();
    assert!(!dlq.cached_info().config.deny_delete);
}
