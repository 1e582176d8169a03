//! A three-node JetStream cluster on loopback (every stream and bucket R3, `sync_interval:
//! always`) with two millrace hosts connected to different nodes, under faults while traffic
//! flows: the leader of RAW killed and restarted, the leader of CANONICAL likewise, a node
//! stalled (SIGSTOP) for ten seconds, a host killed. After each, every raw message is accounted
//! for exactly once (its event once, or its dead letter once), both hosts serve again on their
//! own, and the visibility projection they kept equals a rebuild from the stream.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use millrace::transport::local_server::{LocalCluster, free_port};

use crate::support::*;

/// Raw messages per fault test.
const TOTAL: usize = 5_000;

/// The route consumer both hosts share.
const CONSUMER: &str = "millrace_steady__raw_test__star__cmd";

/// A three-node cluster in a temporary folder.
struct Cluster {
    nodes: LocalCluster,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut attempts = 0;
        let nodes = loop {
            attempts += 1;
            let ports: Vec<u16> = (0..3).map(|_| free_port().unwrap()).collect();
            let cluster_ports: Vec<u16> = (0..3).map(|_| free_port().unwrap()).collect();
            match LocalCluster::start(dir.path(), &ports, &cluster_ports) {
                Ok(nodes) => break nodes,
                // A free port can be taken by another socket before a node binds it.
                Err(e) if attempts < 5 => eprintln!("the cluster did not start, retrying: {e:#}"),
                Err(e) => panic!("the cluster did not start: {e:#}"),
            }
        };
        Self { nodes, dir }
    }

    /// A JetStream context over every node, once the cluster has a meta leader.
    async fn jetstream(&self) -> jetstream::Context {
        let started = Instant::now();
        loop {
            let servers = millrace::transport::server_addrs(&self.nodes.urls()).unwrap();
            if let Ok(client) = async_nats::connect(servers.as_slice()).await {
                let js = jetstream::new(client);
                if js.query_account().await.is_ok() {
                    return js;
                }
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the cluster never elected a leader"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The config of a host connected to `node`, its streams and buckets R3.
    fn host_config(&self, name: &str, node: usize) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("millrace-state");
        std::fs::write(
            &path,
            format!(
                "[nats]\nurl = \"{}\"\n\n[streams]\nreplicas = 3\n\n[host]\nworkers = 2\npartitions = 8\nstate_dir = \"{}\"\ndrain_timeout = \"2s\"\n\n\
                 [projection]\nenabled = true\n\n\
                 [routes.steady]\nsubjects = [\"raw.test.*.cmd\"]\nplugin = {:?}\nack_wait = \"2s\"\n",
                self.nodes.url(node),
                state.display(),
                plugin("tests/guests/misbehave").display().to_string()
            ),
        )
        .unwrap();
        path
    }

    /// The node that leads `stream` now.
    async fn leader_of(&self, js: &jetstream::Context, stream: &str) -> usize {
        let started = Instant::now();
        loop {
            if let Ok(mut handle) = js.get_stream(stream).await
                && let Ok(info) = handle.info().await
                && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.as_deref())
                && let Some(node) = self.nodes.node_named(leader)
            {
                return node;
            }
            assert!(started.elapsed() < PATIENCE, "{stream} has no leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Starts the cluster, two hosts on nodes 0 and 1, and traffic; runs `fault` once a fifth of
/// the traffic is done; then checks that every message is accounted for exactly once and that
/// both hosts serve again, and prints the figures of the run.
async fn under_fault<F>(name: &str, fault: F)
where
    F: AsyncFnOnce(&mut Cluster, &jetstream::Context, &mut [Host; 2]),
{
    let mut cluster = Cluster::start();
    let js = cluster.jetstream().await;
    let a = cluster.host_config("a", 0);
    let b = cluster.host_config("b", 1);
    let mut hosts = [
        Host::start(&a, &js, &[CONSUMER]).await,
        Host::start(&b, &js, &[CONSUMER]).await,
    ];
    let publisher = spawn_publisher(js.clone(), TOTAL, mixed);
    wait_processed(&js, TOTAL as u64 / 5, &hosts[0]).await;

    let at_fault = processed(&js).await.unwrap_or(0);
    let faulted = Instant::now();
    fault(&mut cluster, &js, &mut hosts).await;
    // Served again: the count moves past where it stood when the fault began.
    let started = Instant::now();
    while processed(&js).await.unwrap_or(0) <= at_fault + 50 {
        assert!(
            started.elapsed() < PATIENCE,
            "nothing processed after the fault:\n{}\n{}",
            hosts[0].log_text(),
            hosts[1].log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served_again = faulted.elapsed();

    publisher.await.unwrap();
    wait_processed(&js, TOTAL as u64, &hosts[0]).await;
    assert_accounted(&js, TOTAL).await;
    for host in &mut hosts {
        assert!(
            host.is_running(),
            "a host gave up instead of serving again:\n{}",
            host.log_text()
        );
    }
    let events = stream_len(&js, "CANONICAL").await;
    let letters = stream_len(&js, "DLQ").await;

    // The projection the hosts kept through the fault is what a rebuild from the stream gives.
    let config = millrace::config::Config::load(&a).unwrap();
    let projection = millrace::projection::Projection::open(&js, &config)
        .await
        .unwrap();
    let started = Instant::now();
    while !projection.caught_up().await.unwrap_or(false) {
        assert!(
            started.elapsed() < PATIENCE,
            "the projection never caught up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let visibility = millrace::projection::query::Visibility::open(&js, &config.projection)
        .await
        .unwrap();
    let kept = projected_state(&visibility).await;
    for host in &mut hosts {
        assert_eq!(host.stop().code(), Some(0), "{}", host.log_text());
    }
    let rebuilt = millrace(&["projection", "rebuild", "-c", a.to_str().unwrap()]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    assert_eq!(
        projected_state(&visibility).await,
        kept,
        "the projection kept through the fault differs from a rebuild"
    );
    println!(
        "{name}: {TOTAL} raw messages, {events} events, {letters} dead letters, 0 duplicates, \
         0 lost; served again {} ms after the fault began",
        served_again.as_millis()
    );
}

/// Kills the node leading `stream` (SIGKILL), and starts it again on its data two seconds later.
async fn kill_the_leader_of(stream: &str) {
    under_fault(
        &format!("{stream} leader kill -9"),
        async |cluster, js, _hosts| {
            let leader = cluster.leader_of(js, stream).await;
            cluster.nodes.kill(leader);
            tokio::time::sleep(Duration::from_secs(2)).await;
            cluster.nodes.restart(leader).unwrap();
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_of_raw_killed_and_restarted_loses_and_duplicates_nothing() {
    kill_the_leader_of("RAW").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_of_canonical_killed_and_restarted_loses_and_duplicates_nothing() {
    kill_the_leader_of("CANONICAL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stalled_for_ten_seconds_loses_and_duplicates_nothing() {
    under_fault("node stalled 10 s", async |cluster, js, _hosts| {
        let leader = cluster.leader_of(js, "RAW").await;
        let pid = cluster.nodes.pid(leader).unwrap().to_string();
        let signal = |sig: &str| {
            assert!(
                std::process::Command::new("kill")
                    .args([sig, &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        };
        signal("-STOP");
        tokio::time::sleep(Duration::from_secs(10)).await;
        signal("-CONT");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_under_traffic_loses_and_duplicates_nothing() {
    under_fault("host kill -9", async |cluster, js, hosts| {
        hosts[0].kill();
        let config = cluster.host_config("a", 0);
        hosts[0] = Host::start(&config, js, &[CONSUMER]).await;
    })
    .await;
}

/// One host on the R3 cluster works through a backlog on four subjects whose messages name the
/// same business keys (message i of each subject completes work order WO-i), so lanes race to
/// write the same keys of the order book. Each subject's events stay in its raw order: a lost
/// race read back from a replica without the winner's write was a host failure, the message
/// went back to JetStream, and its subject's later messages were published before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_racing_for_one_key_keep_each_subjects_order() {
    const PER_SUBJECT: u32 = 150;
    let cluster = Cluster::start();
    let js = cluster.jetstream().await;
    let config = cluster.host_config("a", 0);
    // The first start creates the streams and buckets; the backlog is published while it is away.
    let mut host = Host::start(&config, &js, &[CONSUMER]).await;
    assert_eq!(host.stop().code(), Some(0), "{}", host.log_text());
    let mut subject_of = std::collections::HashMap::new();
    for i in 1..=PER_SUBJECT {
        for site in ["a", "b", "c", "d"] {
            let subject = format!("raw.test.{site}.cmd");
            let ack = js
                .publish(subject.clone(), format!("ok {i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
            subject_of.insert(ack.sequence, subject);
        }
    }
    let total = 4 * PER_SUBJECT as usize;
    let host = Host::start(&config, &js, &[CONSUMER]).await;
    wait_processed(&js, total as u64, &host).await;
    let events = read_stream(
        &js,
        "CANONICAL",
        "canonical.>",
        total,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(events.len(), total, "{}", host.log_text());
    let mut last: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for event in &events {
        let raw = event.json()["rawsequence"].as_u64().unwrap();
        let subject = subject_of[&raw].as_str();
        let before = last.insert(subject, raw).unwrap_or(0);
        assert!(
            raw > before,
            "{subject}: raw message {raw} published after {before}:\n{}",
            host.log_text()
        );
    }
    assert!(
        !host.log_text().contains("will be redelivered"),
        "a lost race was taken for a host failure:\n{}",
        host.log_text()
    );
}

/// A host started while its cluster has no JetStream leader (two of three nodes down, as at a
/// cluster's start or after losing a majority) waits for JetStream instead of exiting, and
/// serves once the nodes are back. It exited with "cannot create or open the JetStream stream
/// RAW: is JetStream enabled…" on the first timed-out request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_started_before_its_cluster_has_a_leader_waits_and_serves() {
    let mut cluster = Cluster::start();
    let js = cluster.jetstream().await;
    cluster.nodes.kill(1);
    cluster.nodes.kill(2);
    let config = cluster.host_config("a", 0);
    let nodes = &mut cluster.nodes;
    let (host, ()) = tokio::join!(Host::start(&config, &js, &[CONSUMER]), async {
        // Long enough for the host's first requests to time out or be refused.
        tokio::time::sleep(Duration::from_secs(12)).await;
        nodes.restart(1).unwrap();
        nodes.restart(2).unwrap();
    });
    let log = host.log_text();
    assert!(
        log.contains("waiting for JetStream to answer"),
        "the host met a cluster without a leader: {log}"
    );
    js.publish("raw.test.lab.cmd", "ok 7".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let events = read_stream(&js, "CANONICAL", "canonical.>", 1, Duration::ZERO).await;
    assert_eq!(events[0].json()["data"]["work_order"], "WO-7", "{log}");
}
