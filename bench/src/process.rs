//! Figures of real `millrace run` processes: memory with 10 plugins loaded, cold start, and two
//! hosts sharing one route's work.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

use crate::arms::{self, Arm, Server, Setup};
use crate::measure::Probe;
use crate::workload;

/// The process figures.
#[derive(Debug, Default)]
pub struct ProcessFigures {
    /// RSS of a host serving every plugin, compiled from a cold cache, MiB.
    pub rss_ready_mib: f64,
    rss_called_mib: f64,
    plugins: usize,
    cold_start_ms: f64,
    cold_start_first_ms: f64,
    one_host: f64,
    two_hosts: f64,
}

impl ProcessFigures {
    /// Prints them.
    pub fn print(&self) {
        println!(
            "host memory, {} plugins loaded on a cold compile cache: RSS {:.0} MiB when serving, {:.0} MiB after one call to each",
            self.plugins, self.rss_ready_mib, self.rss_called_mib
        );
        println!(
            "cold start to the first event: {:.0} ms with the compile cache warm ({:.0} ms on the first start of this run)",
            self.cold_start_ms, self.cold_start_first_ms
        );
        println!(
            "host processes on one route's work (JetStream, Rust plugins): one {:.0} msg/s, two {:.0} msg/s combined ({:.2}x)",
            self.one_host,
            self.two_hosts,
            self.two_hosts / self.one_host.max(1.0)
        );
    }

    /// As JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "rss_mib_10_plugins_serving": self.rss_ready_mib.round(),
            "rss_mib_10_plugins_called": self.rss_called_mib.round(),
            "cold_start_ms": self.cold_start_ms.round(),
            "one_host_msgs_per_s": self.one_host.round(),
            "two_hosts_msgs_per_s": self.two_hosts.round(),
        })
    }
}

/// Builds the `millrace` binary (a no-op when it is up to date) and returns its path.
///
/// Cargo unifies dependency features over the packages it is asked to build; naming this
/// package too keeps them as `cargo run -p millrace-bench` had them, so the two builds do not
/// rebuild async-nats and millrace for each other on every run. The variables `cargo run` sets
/// for the bench are removed: `ring`'s build script reruns when `CARGO_MANIFEST_DIR` changes.
async fn millrace_binary(root: &Path) -> anyhow::Result<PathBuf> {
    let mut cargo =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&&*name)
        {
            cargo.env_remove(&*name);
        }
    }
    let status = cargo
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "millrace-bench",
            "-p",
            "millrace",
        ])
        .args(["--bin", "millrace"])
        .current_dir(root)
        .status()
        .await
        .context("cannot run cargo to build the millrace binary")?;
    anyhow::ensure!(status.success(), "building the millrace binary failed");
    Ok(root.join("target/release/millrace"))
}

/// A `millrace run` child process.
struct HostProcess {
    child: tokio::process::Child,
}

impl HostProcess {
    /// Starts one; with `wait_routes`, returns once it logged that many routes serving.
    async fn start(binary: &Path, config: &Path, wait_routes: usize) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(binary)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn,millrace=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start millrace")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        if wait_routes > 0 {
            let mut serving = 0;
            tokio::time::timeout(Duration::from_secs(120), async {
                while let Some(line) = lines.next_line().await? {
                    if line.contains("route serving") {
                        serving += 1;
                        if serving == wait_routes {
                            return Ok(());
                        }
                    }
                }
                anyhow::bail!("millrace exited before it served")
            })
            .await
            .context("millrace did not serve within 120 s")??;
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child })
    }

    fn rss_mib(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("millrace has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|l| l.trim().trim_end_matches(" kB").parse().ok())
            .context("no VmRSS")?;
        Ok(kb / 1024.0)
    }

    async fn stop(mut self) {
        self.child.kill().await.ok();
    }
}

fn write_config(dir: &Path, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("millrace.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Measures the process figures.
pub async fn measure(
    setup: &Setup,
    quick: bool,
    window: u64,
    warm_up: Duration,
    measure: Duration,
) -> anyhow::Result<ProcessFigures> {
    let binary = millrace_binary(&setup.root).await?;
    let dir = tempfile::tempdir()?;
    let mut figures = ProcessFigures::default();

    // Memory: ten routes, ten different plugins, one message each (a map error: dead-lettered,
    // but the plugin is instantiated on a worker). The host gets a state folder of its own, so
    // its compile cache is cold: what a fresh host or a fresh deployment holds.
    let plugins = [
        "plugins/mes-shift-report",
        "plugins/x12-856",
        "plugins/x12-schedules",
        "plugins/x12-warehouse",
        "plugins/edifact-desadv",
        "plugins/edifact-recadv",
        "plugins/b2mml",
        "plugins/wms-movements",
        "bench/plugins/bench-js",
        "bench/plugins/bench-py",
    ];
    figures.plugins = plugins.len();
    {
        let server = Server::start()?;
        let url = server.url();
        let cold_state = dir.path().join("cold-state");
        let mut text = format!(
            "[nats]\nurl = \"{url}\"\n[host]\nstate_dir = \"{}\"\n",
            cold_state.display()
        );
        for (n, plugin) in plugins.iter().enumerate() {
            text.push_str(&format!(
                "[routes.r{n}]\nsubjects = [\"raw.mem{n}.plant1.doc\"]\nplugin = \"{}\"\nconfig = {{ site = \"PLANT1\" }}\n",
                setup.root.join(plugin).display()
            ));
        }
        let config = write_config(dir.path(), &text)?;
        let host = HostProcess::start(&binary, &config, plugins.len()).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        figures.rss_ready_mib = host.rss_mib()?;
        let client = async_nats::connect(&url).await?;
        let js = jetstream::new(client.clone());
        for n in 0..plugins.len() {
            js.publish(format!("raw.mem{n}.plant1.doc"), "not a document".into())
                .await?
                .await?;
        }
        // Done when every route acked its message (a dead letter, or no events at all).
        let started = Instant::now();
        let raw = js.get_stream("RAW").await?;
        for (n, plugin) in plugins.iter().enumerate() {
            let name = millrace::transport::consumer_name(
                &format!("r{n}"),
                &format!("raw.mem{n}.plant1.doc"),
            );
            while raw.consumer_info(&name).await?.ack_floor.stream_sequence == 0 {
                if started.elapsed() > Duration::from_secs(60) {
                    anyhow::bail!("route r{n} ({plugin}) did not ack its message within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        figures.rss_called_mib = host.rss_mib()?;
        host.stop().await;
    }

    // Cold start: a message waits on RAW; from spawning the process to its first event. The
    // first start of the run may fill the compile cache; the second finds it warm.
    for attempt in 0..2 {
        let server = Server::start()?;
        let url = server.url();
        let text = setup.host_config(Arm::Rust, &url, setup.workers);
        let config = write_config(dir.path(), &text)?;
        let parsed = arms::parse_config(&text, dir.path())?;
        let probe = Probe::start(&url, false).await?;
        let js = jetstream::new(probe.client().clone());
        millrace::transport::ensure_streams(&js, &parsed.streams).await?;
        js.publish(workload::subject(1), workload::payload(1))
            .await?
            .await?;
        let started = Instant::now();
        let host = HostProcess::start(&binary, &config, 0).await?;
        probe.wait_done(1, Duration::from_secs(120)).await?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        if attempt == 0 {
            figures.cold_start_first_ms = took;
        } else {
            figures.cold_start_ms = took;
        }
        host.stop().await;
    }

    // Scaling out: one host process, then two on the same durable consumers.
    for hosts in [1usize, 2] {
        let server = Server::start()?;
        let url = server.url();
        let config = write_config(
            dir.path(),
            &setup.host_config(Arm::Rust, &url, setup.workers),
        )?;
        let mut running = Vec::new();
        for _ in 0..hosts {
            running.push(HostProcess::start(&binary, &config, 2).await?);
        }
        let mut probe = Probe::start(&url, false).await?;
        let rate = probe
            .throughput(window, warm_up, if quick { measure } else { measure * 2 })
            .await?;
        if hosts == 1 {
            figures.one_host = rate;
        } else {
            figures.two_hosts = rate;
        }
        for host in running {
            host.stop().await;
        }
    }
    Ok(figures)
}
