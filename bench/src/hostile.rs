//! A well-behaved route beside hostile ones (the test guest `misbehave`: infinite loops that
//! hit the deadline, memory bombs), in the millrace host on JetStream: how much of its
//! throughput the steady route keeps. Formerly `cargo bench -p millrace --bench throughput`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::arms::{Server, Setup, parse_config};

const PARTITIONS: usize = 8;
const STEADY_SUBJECT: &str = "raw.steady.line1.cmd";

/// The steady route's throughput alone and beside hostile lanes.
#[derive(Debug, Default)]
pub struct HostileFigures {
    /// Alone, messages per second.
    pub alone: f64,
    /// Beside hostile lanes on every worker.
    pub beside: f64,
    /// Hostile subjects.
    pub hostile_subjects: usize,
}

/// One hostile subject per lane, so every worker gets hostile work.
fn hostile_subjects() -> Vec<String> {
    let mut by_lane: Vec<Option<String>> = vec![None; PARTITIONS];
    for i in 0..1000 {
        let subject = format!("raw.hostile.s{i}.cmd");
        let lane = millrace::subjects::lane(&subject, PARTITIONS);
        if by_lane[lane].is_none() {
            by_lane[lane] = Some(subject);
        }
    }
    by_lane.into_iter().flatten().collect()
}

/// Measures both cases for `measure` each.
pub async fn measure(setup: &Setup, measure: Duration) -> anyhow::Result<HostileFigures> {
    let alone = run(setup, false, measure).await?;
    let subjects = hostile_subjects();
    let beside = run(setup, true, measure).await?;
    Ok(HostileFigures {
        alone,
        beside,
        hostile_subjects: subjects.len(),
    })
}

async fn run(setup: &Setup, hostile: bool, measure: Duration) -> anyhow::Result<f64> {
    let server = Server::start()?;
    let url = server.url();
    let plugin = setup.root.join("tests/guests/misbehave");
    let text = format!(
        r#"[nats]
url = "{url}"
[host]
workers = {workers}
partitions = {PARTITIONS}
state_dir = "{state}"
[routes.hostile]
subjects = ["raw.hostile.*.cmd"]
plugin = "{plugin}"
config = {{ site = "LAB" }}
limits = {{ deadline = "100ms", memory_mib = 32 }}
retry = {{ attempts = 2, backoff = "10ms" }}
[routes.steady]
subjects = ["{STEADY_SUBJECT}"]
plugin = "{plugin}"
config = {{ site = "STEADY" }}
"#,
        workers = setup.workers,
        state = setup.state_dir.display(),
        plugin = plugin.display(),
    );
    let config = Arc::new(parse_config(&text, &setup.state_dir)?);
    let client = async_nats::connect(&url).await?;
    let js = jetstream::new(client.clone());
    let stop = CancellationToken::new();
    let mut serving =
        millrace::host::HostBuilder::new(config, client.clone(), setup.sandbox.clone()).start();
    serving
        .ready()
        .await
        .context("the host stopped before it served")?;
    let host = {
        let stop = stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            serving.shutdown().await
        })
    };

    let done = Arc::new(AtomicU64::new(0));
    let mut events = client.subscribe("canonical.*.STEADY").await?;
    let counting = done.clone();
    let collector = tokio::spawn(async move {
        while events.next().await.is_some() {
            counting.fetch_add(1, Ordering::Relaxed);
        }
    });
    client.flush().await?;
    if hostile {
        // Enough hostile work to outlast the measurement: each costs 2 attempts of ~100 ms.
        for subject in hostile_subjects() {
            for i in 0..400 {
                let cmd: &'static [u8] = if i % 2 == 0 { b"loop" } else { b"alloc" };
                js.publish(subject.clone(), cmd.into()).await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Closed loop, 64 steady messages in flight.
    let (mut sent, window) = (0u64, 64u64);
    let started = Instant::now();
    let warm_up = Duration::from_millis(500);
    let mut mark = None;
    let rate = loop {
        let now = Instant::now();
        if mark.is_none() && now >= started + warm_up {
            mark = Some((now, done.load(Ordering::Relaxed)));
        }
        if let Some((at, count)) = mark
            && now >= at + measure
        {
            break (done.load(Ordering::Relaxed) - count) as f64
                / now.duration_since(at).as_secs_f64();
        }
        if sent - done.load(Ordering::Relaxed) < window {
            sent += 1;
            client
                .publish(STEADY_SUBJECT, format!("ok {sent}").into())
                .await?;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    stop.cancel();
    collector.abort();
    let _ = tokio::time::timeout(Duration::from_secs(10), host).await;
    Ok(rate)
}
