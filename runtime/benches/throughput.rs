//! Throughput of a well-behaved route, alone and beside a route fed hostile messages (infinite
//! loops that hit the deadline, memory bombs), on a real nats-server and the real `millrace`
//! binary. A measurement, not a test: it prints messages per second and the ratios.
//!
//!   cargo bench -p millrace --bench throughput
//!
//! `BENCH_MESSAGES` (default 2000) sets how many well-behaved messages each case maps.

// A bench binary, not production code: failing loudly is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[allow(unused_imports)]
#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use support::{Host, Nats, plugin, publish};

const WORKERS: usize = 2;
const PARTITIONS: usize = 8;

const ROUTES: &str = r#"
[routes.hostile]
subjects = ["raw.hostile.*.cmd"]
plugin = "PLUGIN"
config = { site = "LAB" }
limits = { deadline = "100ms", memory_mib = 32 }
retry = { attempts = 2, backoff = "10ms" }

[routes.steady]
subjects = ["raw.steady.line1.cmd"]
plugin = "PLUGIN"
config = { site = "STEADY" }
"#;

const STEADY_SUBJECT: &str = "raw.steady.line1.cmd";

/// Hostile subjects: `other_worker` picks only lanes served by another worker than the steady
/// route's; otherwise one subject per lane, so every worker gets hostile work.
fn hostile_subjects(other_worker: bool) -> Vec<String> {
    let steady_worker = millrace::router::lane(STEADY_SUBJECT, PARTITIONS) % WORKERS;
    let mut by_lane: Vec<Option<String>> = vec![None; PARTITIONS];
    for i in 0..1000 {
        let subject = format!("raw.hostile.s{i}.cmd");
        let lane = millrace::router::lane(&subject, PARTITIONS);
        if by_lane[lane].is_none() && (!other_worker || lane % WORKERS != steady_worker) {
            by_lane[lane] = Some(subject);
        }
    }
    by_lane.into_iter().flatten().collect()
}

/// Maps `count` steady messages (after a warm-up) beside `hostile` subjects each kept busy
/// with loops and memory bombs; returns messages per second of the steady route.
async fn run(count: usize, hostile: &[String]) -> f64 {
    let nats = Nats::start();
    let dir = plugin("tests/guests/misbehave");
    let config = nats.config(&ROUTES.replace("PLUGIN", &dir.display().to_string()));
    let client = nats.client().await;
    let js = jetstream::new(client.clone());
    let _host = Host::start(
        &config,
        &js,
        &[
            "millrace_hostile__raw_hostile__star__cmd",
            "millrace_steady__raw_steady_line1_cmd",
        ],
    )
    .await;
    let mut events = client.subscribe("canonical.*.STEADY").await.unwrap();

    let warm_up = 50;
    for n in 0..warm_up {
        publish(
            &js,
            STEADY_SUBJECT,
            format!("ok {}", n + 1).as_bytes(),
            &format!("w{n}"),
        )
        .await;
    }
    for _ in 0..warm_up {
        events.next().await.unwrap();
    }

    // Enough hostile work to outlast the measurement: each costs 2 attempts of ~100 ms.
    for subject in hostile {
        for i in 0..400 {
            let cmd: &[u8] = if i % 2 == 0 { b"loop" } else { b"alloc" };
            js.publish(subject.clone(), cmd.into()).await.unwrap();
        }
    }
    if !hostile.is_empty() {
        // Let the hostile lanes fill up before the measurement starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let started = Instant::now();
    let publisher = {
        let js = js.clone();
        tokio::spawn(async move {
            let mut acks = Vec::with_capacity(count);
            for n in 0..count {
                acks.push(
                    js.publish(STEADY_SUBJECT, format!("ok {}", warm_up + n + 1).into())
                        .await
                        .unwrap(),
                );
            }
            for ack in acks {
                ack.await.unwrap();
            }
        })
    };
    for _ in 0..count {
        tokio::time::timeout(Duration::from_secs(300), events.next())
            .await
            .expect("the steady route stalled")
            .unwrap();
    }
    let elapsed = started.elapsed();
    publisher.await.unwrap();
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let count: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let steady_lane = millrace::router::lane(STEADY_SUBJECT, PARTITIONS);
        println!(
            "{count} messages on the steady route (lane {steady_lane}, worker {}), {WORKERS} workers, {PARTITIONS} lanes, {} CPUs",
            steady_lane % WORKERS,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let alone = run(count, &[]).await;
        println!("alone:                                       {alone:8.0} msg/s");
        let apart = hostile_subjects(true);
        let beside_apart = run(count, &apart).await;
        println!(
            "beside hostile lanes on the other worker ({}): {beside_apart:8.0} msg/s  ratio {:.2}",
            apart.len(),
            beside_apart / alone
        );
        let everywhere = hostile_subjects(false);
        let beside_all = run(count, &everywhere).await;
        println!(
            "beside hostile lanes on every worker ({}):     {beside_all:8.0} msg/s  ratio {:.2}",
            everywhere.len(),
            beside_all / alone
        );
    });
}
