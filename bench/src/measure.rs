//! The load generator and the collector, the same for every arm.
//!
//! The loader publishes raw messages on core NATS (the RAW stream captures them when the arm
//! runs on JetStream); the collector subscribes to `canonical.>` and counts a raw message done
//! when all its events arrived. Throughput is measured closed-loop (at most `window` messages
//! in flight), latency open-loop at a fixed rate: from publishing a raw message to receiving
//! its last event.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use futures::StreamExt;
use tokio::sync::{Mutex, Notify};

use crate::workload;

/// Connects, reporting slow consumers (the client dropped messages) and server errors.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<async_nats::Client> {
    let who = name.to_owned();
    Ok(async_nats::ConnectOptions::new()
        .name(name)
        .event_callback(move |event| {
            let who = who.clone();
            async move {
                // Disconnects are expected when an arm's server stops; drops are not.
                if matches!(
                    event,
                    async_nats::Event::SlowConsumer(_) | async_nats::Event::ServerError(_)
                ) {
                    eprintln!("{who}: {event}");
                }
            }
        })
        .connect(url)
        .await?)
}

/// Send times are kept in a ring this long, indexed by message index.
const RING: usize = 1 << 20;

/// What the collector shares with the loader.
struct Shared {
    completed: AtomicU64,
    progress: Notify,
    epoch: Instant,
    sent_at: Vec<AtomicU64>,
    recording: AtomicBool,
    latencies: Mutex<Vec<u64>>,
}

/// A loader and a collector on one connection to one server.
pub struct Probe {
    client: async_nats::Client,
    shared: Arc<Shared>,
    next: u64,
    collector: tokio::task::JoinHandle<()>,
    servers: Vec<u32>,
    /// The arm's own process, when it runs outside the bench (the Node.js service).
    service: Option<u32>,
    cpu: Option<CpuPerMessage>,
}

/// CPU time spent per raw message done during the last throughput measurement, in µs: the
/// bench's own process (the load generator, the collector and, for the in-process arms, the
/// service or host), the arm's own process when it runs outside the bench (the Node.js
/// service), and the nats-server process(es). Read from `/proc/<pid>/stat`, so per message and
/// independent of what else the machine runs, unlike the throughput.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuPerMessage {
    /// The bench process.
    pub bench_us: f64,
    /// The arm's own process, for an arm that runs outside the bench.
    pub service_us: Option<f64>,
    /// The nats-server process(es).
    pub server_us: f64,
}

/// User and system CPU seconds a process has used so far (`/proc/<pid>/stat`), 0 when unknown.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; the kernel
    // counts them in USER_HZ, 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds used so far: the bench, the arm's own process (if outside), the servers.
type CpuSeconds = (f64, Option<f64>, f64);

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// The rate offered, messages per second.
    pub rate: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Messages whose events did not all arrive.
    pub lost: u64,
}

impl Probe {
    /// Subscribes the collector. `passthrough`: every raw message comes back as one message.
    pub async fn start(url: &str, passthrough: bool) -> anyhow::Result<Self> {
        let client = connect(url, "bench-probe").await?;
        let shared = Arc::new(Shared {
            completed: AtomicU64::new(0),
            progress: Notify::new(),
            epoch: Instant::now(),
            sent_at: (0..RING).map(|_| AtomicU64::new(0)).collect(),
            recording: AtomicBool::new(false),
            latencies: Mutex::new(Vec::new()),
        });
        let mut events = client.subscribe("canonical.>").await?;
        client.flush().await?;
        let collecting = shared.clone();
        let collector = tokio::spawn(async move {
            let mut partial: HashMap<u64, u8> = HashMap::new();
            while let Some(m) = events.next().await {
                let Some(index) = workload::index_of(&m.payload, m.headers.as_ref()) else {
                    continue;
                };
                let need = if passthrough {
                    1
                } else {
                    workload::events_of(index)
                };
                let seen = partial.entry(index).or_insert(0);
                *seen += 1;
                if *seen < need {
                    continue;
                }
                partial.remove(&index);
                if collecting.recording.load(Ordering::Relaxed) {
                    let now = collecting.epoch.elapsed().as_nanos() as u64;
                    let sent = collecting.sent_at[index as usize % RING].load(Ordering::Relaxed);
                    collecting
                        .latencies
                        .lock()
                        .await
                        .push(now.saturating_sub(sent));
                }
                collecting.completed.fetch_add(1, Ordering::Relaxed);
                collecting.progress.notify_one();
            }
        });
        Ok(Self {
            client,
            shared,
            next: 0,
            collector,
            servers: Vec::new(),
            service: None,
            cpu: None,
        })
    }

    fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Relaxed)
    }

    async fn send(&mut self) -> anyhow::Result<()> {
        let index = self.next;
        self.next += 1;
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("bench-{index}").as_str());
        headers.insert(workload::INDEX_HEADER, index.to_string().as_str());
        self.shared.sent_at[index as usize % RING].store(
            self.shared.epoch.elapsed().as_nanos() as u64,
            Ordering::Relaxed,
        );
        self.client
            .publish_with_headers(workload::subject(index), headers, workload::payload(index))
            .await?;
        Ok(())
    }

    /// Waits until every message sent so far is done, or `limit` passes without progress.
    /// Returns how many are missing.
    pub async fn drain(&self, limit: Duration) -> u64 {
        let mut last = (Instant::now(), self.completed());
        loop {
            let done = self.completed();
            if done >= self.next {
                return 0;
            }
            if done != last.1 {
                last = (Instant::now(), done);
            } else if last.0.elapsed() >= limit {
                return self.next - done;
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(20), self.shared.progress.notified())
                    .await;
        }
    }

    /// Also counts the CPU time of these nats-server processes in [`Probe::cpu`].
    pub fn watch_servers(&mut self, pids: Vec<u32>) {
        self.servers = pids;
    }

    /// Also counts the CPU time of the arm's own process (one outside the bench) in
    /// [`Probe::cpu`].
    pub fn watch_service(&mut self, pid: Option<u32>) {
        self.service = pid;
    }

    /// CPU time per message of the last [`throughput`](Self::throughput) measurement.
    pub fn cpu(&self) -> Option<CpuPerMessage> {
        self.cpu
    }

    fn cpu_now(&self) -> CpuSeconds {
        let servers = self
            .servers
            .iter()
            .map(|pid| cpu_seconds(&pid.to_string()))
            .sum();
        let service = self.service.map(|pid| cpu_seconds(&pid.to_string()));
        (cpu_seconds("self"), service, servers)
    }

    /// Closed-loop throughput: at most `window` messages in flight, `warm_up` then `measure`;
    /// raw messages per second done in the measured part.
    pub async fn throughput(
        &mut self,
        window: u64,
        warm_up: Duration,
        measure: Duration,
    ) -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut mark: Option<(Instant, u64, CpuSeconds)> = None;
        loop {
            let now = Instant::now();
            if mark.is_none() && now >= started + warm_up {
                mark = Some((now, self.completed(), self.cpu_now()));
            }
            if let Some((at, done, (bench, service, server))) = mark
                && now >= at + measure
            {
                let count = self.completed() - done;
                let rate = count as f64 / now.duration_since(at).as_secs_f64();
                let (bench_now, service_now, server_now) = self.cpu_now();
                let per = |seconds: f64| seconds * 1e6 / count.max(1) as f64;
                self.cpu = Some(CpuPerMessage {
                    bench_us: per(bench_now - bench),
                    service_us: service.zip(service_now).map(|(then, now)| per(now - then)),
                    server_us: per(server_now - server),
                });
                self.drain(Duration::from_secs(5)).await;
                return Ok(rate);
            }
            if self.next - self.completed() < window {
                self.send().await?;
            } else {
                let _ = tokio::time::timeout(
                    Duration::from_millis(50),
                    self.shared.progress.notified(),
                )
                .await;
            }
        }
    }

    /// Open-loop latency at `rate` messages per second for `measure`.
    pub async fn latency(&mut self, rate: f64, measure: Duration) -> anyhow::Result<Latency> {
        anyhow::ensure!(
            rate.is_finite() && rate > 0.0,
            "no messages got through the arm, so there is no rate to measure latency at"
        );
        self.drain(Duration::from_secs(5)).await;
        self.shared.latencies.lock().await.clear();
        self.shared.recording.store(true, Ordering::Relaxed);
        let count = (rate * measure.as_secs_f64()).max(1.0) as u64;
        let started = tokio::time::Instant::now();
        for n in 0..count {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            if due > tokio::time::Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            self.send().await?;
        }
        let lost = self.drain(Duration::from_secs(5)).await;
        self.shared.recording.store(false, Ordering::Relaxed);
        let mut latencies = std::mem::take(&mut *self.shared.latencies.lock().await);
        latencies.sort_unstable();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(f64::NAN, |ns| *ns as f64 / 1e6)
        };
        Ok(Latency {
            rate,
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            lost,
        })
    }

    /// Waits for `count` more messages to be done; returns how long it took.
    pub async fn wait_done(&self, count: u64, limit: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let target = self.completed() + count;
        while self.completed() < target {
            if started.elapsed() > limit {
                anyhow::bail!(
                    "only {} of {count} messages done within {limit:?}",
                    count - (target - self.completed())
                );
            }
            let _ =
                tokio::time::timeout(Duration::from_millis(50), self.shared.progress.notified())
                    .await;
        }
        Ok(started.elapsed())
    }

    /// The connection, to set up streams and consumers.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.collector.abort();
    }
}
