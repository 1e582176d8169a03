//! The arms: what serves the workload, started on a fresh nats-server for each arm and mode.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use millrace::config::Config;
use millrace::delivery::Delivery;
use millrace::pipeline::Pipeline;
use millrace::registry::LocalPlugin;
use millrace::registry::loader::PluginLoader;
use millrace::routes::RouteTable;
use millrace::sandbox::{PluginComponent, Sandbox};
use millrace::transport::{
    self,
    local_server::{LocalCluster, LocalServer},
};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use crate::service::{self, Mapping, Source};
use crate::workload;

/// An arm of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// (a) raw passthrough.
    Raw,
    /// (b) the mapping compiled natively.
    Native,
    /// (c) millrace with the Rust plugins.
    Rust,
    /// (d) millrace with the Python plugin.
    Python,
    /// (d) millrace with the JavaScript plugin.
    JavaScript,
    /// (e) a Node.js service with the same JavaScript mapping.
    Node,
}

impl Arm {
    /// Every arm, in report order.
    pub const ALL: [Arm; 6] = [
        Arm::Raw,
        Arm::Native,
        Arm::Rust,
        Arm::Python,
        Arm::JavaScript,
        Arm::Node,
    ];

    /// The short name used by `--arms` and in the JSON summary.
    pub fn key(self) -> &'static str {
        match self {
            Arm::Raw => "a_raw",
            Arm::Native => "b_native",
            Arm::Rust => "c_millrace_rust",
            Arm::Python => "d_millrace_python",
            Arm::JavaScript => "d_millrace_js",
            Arm::Node => "e_node",
        }
    }

    /// What the arm is, for the table.
    pub fn title(self) -> &'static str {
        match self {
            Arm::Raw => "(a) raw passthrough",
            Arm::Native => "(b) native mapping, no sandbox",
            Arm::Rust => "(c) millrace, Rust plugins",
            Arm::Python => "(d) millrace, Python plugin",
            Arm::JavaScript => "(d) millrace, JavaScript plugin",
            Arm::Node => "(e) Node.js service, nats npm",
        }
    }
}

/// Core NATS (at-most-once) or JetStream with acknowledgements (at-least-once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Core NATS.
    Core,
    /// JetStream.
    JetStream,
}

/// Paths and compiled plugins shared by the arms.
pub struct Setup {
    /// The workspace root.
    pub root: PathBuf,
    /// Kept across runs: the compile cache, npm install.
    pub state_dir: PathBuf,
    /// The sandbox (engine with the on-disk compile cache).
    pub sandbox: Sandbox,
    /// Threads running mappings: the host's `host.workers`, and (b)'s native pool.
    pub workers: usize,
}

impl Setup {
    /// The plugin folders of an arm: (shift report, 856).
    pub fn plugin_dirs(&self, arm: Arm) -> (PathBuf, PathBuf) {
        let at = |p: &str| self.root.join(p);
        match arm {
            Arm::Python => (at("bench/plugins/bench-py"), at("bench/plugins/bench-py")),
            Arm::JavaScript => (at("bench/plugins/bench-js"), at("bench/plugins/bench-js")),
            _ => (at("plugins/mes-shift-report"), at("plugins/x12-856")),
        }
    }

    /// Builds (when needed) and compiles a plugin folder.
    pub async fn load(&self, dir: &Path) -> anyhow::Result<Arc<PluginComponent>> {
        let (dir, sandbox) = (dir.to_owned(), self.sandbox.clone());
        let plugin = tokio::task::spawn_blocking(move || {
            LocalPlugin::locate(&dir)
                .and_then(|p| p.load(&sandbox))
                .with_context(|| format!("cannot load plugin {}", dir.display()))
        })
        .await??;
        Ok(Arc::new(plugin))
    }

    /// The host configuration of an arm: two routes, governance that needs key-value round
    /// trips (ordering flags, business idempotency) off, as the other arms do without it, and
    /// every worker open to either route (by default a route of several gets all workers but
    /// one, a guard against hostile routes that would leave the 856 route one worker of two).
    ///
    /// With `MILLRACE_BENCH_GOVERNED=1` in the environment the routes keep the governance on
    /// (`ordering = "flag"`, `idempotency = true`): the figure of (c) with its key-value round
    /// trips (docs/PERFORMANCE.md, batched state).
    pub fn host_config(&self, arm: Arm, url: &str, workers: usize) -> String {
        let (shift, asn) = self.plugin_dirs(arm);
        let governed = std::env::var("MILLRACE_BENCH_GOVERNED").is_ok_and(|v| v == "1");
        let (ordering, idempotency) = if governed {
            ("flag", true)
        } else {
            ("off", false)
        };
        format!(
            r#"[nats]
url = "{url}"

[host]
workers = {workers}
max_workers_per_route = {workers}
partitions = {lanes}
state_dir = "{state}"

[routes.shift]
subjects = ["{shift_subjects}"]
plugin = "{shift}"
config = {{ site = "{site}" }}
ordering = "{ordering}"
idempotency = {idempotency}

[routes.asn]
subjects = ["{asn_subjects}"]
plugin = "{asn}"
config = {{ site = "{site}" }}
ordering = "{ordering}"
idempotency = {idempotency}
"#,
            lanes = service::LANES,
            state = self.state_dir.display(),
            shift_subjects = workload::SHIFT_SUBJECTS,
            asn_subjects = workload::ASN_SUBJECTS,
            shift = shift.display(),
            asn = asn.display(),
            site = crate::SITE,
        )
    }
}

/// How durable the JetStream figures' server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// One server with its default (lazy) fsync, streams R1: the main table, comparable with
    /// the runs recorded before the durable arms existed.
    Default,
    /// One server that fsyncs before every acknowledgement (`sync_interval: always`), streams
    /// R1: what `millrace up` runs.
    SyncAlways,
    /// Three servers on loopback, each `sync_interval: always`, streams and buckets R3: what a
    /// plant that must survive a node should run (docs/DURABILITY.md).
    ClusterR3,
}

impl Durability {
    /// The key in the JSON summary.
    pub fn key(self) -> &'static str {
        match self {
            Durability::Default => "default",
            Durability::SyncAlways => "sync_always_r1",
            Durability::ClusterR3 => "cluster_r3_sync_always",
        }
    }

    /// What it is, for the table.
    pub fn title(self) -> &'static str {
        match self {
            Durability::Default => "1 node, default fsync, R1",
            Durability::SyncAlways => "1 node, sync_interval always, R1",
            Durability::ClusterR3 => "3 nodes, sync_interval always, R3",
        }
    }

    fn replicas(self) -> usize {
        match self {
            Durability::ClusterR3 => 3,
            _ => 1,
        }
    }
}

/// The nats-server (or three) an arm runs against, on free ports, in a temporary folder.
pub struct Server {
    nodes: Nodes,
    durability: Durability,
    _dir: tempfile::TempDir,
}

enum Nodes {
    One(LocalServer),
    Three(LocalCluster),
}

impl Server {
    /// Starts one server with the default fsync.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(Durability::Default)
    }

    /// Starts the server(s) `durability` names. A cluster is ready once it has a meta leader
    /// ([`Server::ready`]).
    pub fn start_with(durability: Durability) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let free = || transport::local_server::free_port();
        let nodes = match durability {
            // No config file: the server's default durability, as in every earlier run.
            // MILLRACE_BENCH_MONITOR=<port>: the server also serves its monitoring endpoints
            // (`/connz`, `/jsz`) there, to count the NATS traffic of an arm.
            Durability::Default => {
                let monitor = std::env::var("MILLRACE_BENCH_MONITOR").ok();
                let args: Vec<&str> = monitor
                    .iter()
                    .flat_map(|port| ["-m", port.as_str()])
                    .collect();
                Nodes::One(LocalServer::start_with_args(
                    free()?,
                    &dir.path().join("nats"),
                    &args,
                )?)
            }
            Durability::SyncAlways => {
                Nodes::One(LocalServer::start(free()?, &dir.path().join("nats"))?)
            }
            Durability::ClusterR3 => {
                let ports = [free()?, free()?, free()?];
                let cluster_ports = [free()?, free()?, free()?];
                Nodes::Three(LocalCluster::start(dir.path(), &ports, &cluster_ports)?)
            }
        };
        Ok(Self {
            nodes,
            durability,
            _dir: dir,
        })
    }

    /// The URL clients of the bench connect to (the first node of a cluster).
    pub fn url(&self) -> String {
        match &self.nodes {
            Nodes::One(server) => server.url(),
            Nodes::Three(cluster) => cluster.url(0),
        }
    }

    /// The process ids of the server(s), to count their CPU time.
    pub fn pids(&self) -> Vec<u32> {
        match &self.nodes {
            Nodes::One(server) => vec![server.pid()],
            Nodes::Three(cluster) => (0..3).filter_map(|node| cluster.pid(node)).collect(),
        }
    }

    /// The host's `[nats] url`: every node, so the host fails over as in production.
    fn urls(&self) -> String {
        match &self.nodes {
            Nodes::One(server) => server.url(),
            Nodes::Three(cluster) => cluster.urls(),
        }
    }

    /// Waits until JetStream answers (a cluster has elected its meta leader).
    pub async fn ready(&self) -> anyhow::Result<()> {
        let client = crate::measure::connect(&self.url(), "bench-ready").await?;
        let js = jetstream::new(client);
        let started = std::time::Instant::now();
        while js.query_account().await.is_err() {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "JetStream on {} did not become ready within 30 s",
                self.url()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

/// A running arm; stopped when dropped or by [`Running::stop`].
pub struct Running {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    child: Option<tokio::process::Child>,
}

impl Running {
    /// The arm's own process, when it runs outside the bench (the Node.js service).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// Stops the arm.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(10), task).await {
                Ok(joined) => joined??,
                Err(_) => anyhow::bail!("the service did not stop within 10 s"),
            }
        }
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
        Ok(())
    }
}

/// Parses a host configuration written by [`Setup::host_config`].
pub fn parse_config(text: &str, dir: &Path) -> anyhow::Result<Config> {
    Ok(Config::parse(text, &dir.join("millrace.toml"))?)
}

/// The host's durable consumers of the two route subjects (the streams must exist).
pub async fn route_consumers(
    js: &jetstream::Context,
    route_prefix: &str,
) -> anyhow::Result<Vec<jetstream::consumer::PullConsumer>> {
    let mut consumers = Vec::new();
    for (route, subject) in [
        ("shift", workload::SHIFT_SUBJECTS),
        ("asn", workload::ASN_SUBJECTS),
    ] {
        consumers.push(
            transport::route_consumer(
                js,
                "RAW",
                &format!("{route_prefix}{route}"),
                &[subject.to_owned()],
                Duration::from_secs(30),
                None,
            )
            .await?,
        );
    }
    Ok(consumers)
}

/// Starts `arm` in `mode` against `server`; returns once it serves.
pub async fn start(
    setup: &Setup,
    arm: Arm,
    mode: Mode,
    server: &Server,
) -> anyhow::Result<Running> {
    let stop = CancellationToken::new();
    let url = &server.url();
    let mut text = setup.host_config(arm, &server.urls(), setup.workers);
    if server.durability.replicas() > 1 {
        text.push_str(&format!(
            "\n[streams]\nreplicas = {}\n",
            server.durability.replicas()
        ));
    }
    let config = parse_config(&text, &setup.state_dir)?;
    let client = crate::measure::connect(url, "bench-service").await?;
    let js = jetstream::new(client.clone());
    if mode == Mode::JetStream {
        transport::ensure_streams(&js, &config.streams).await?;
    }
    let in_process = |mapping: Mapping, source: Source| {
        let stop = stop.clone();
        let client = client.clone();
        tokio::spawn(async move { service::run(client, source, Arc::new(mapping), stop).await })
    };
    let source = || async {
        Ok::<_, anyhow::Error>(match mode {
            Mode::Core => Source::Core,
            Mode::JetStream => Source::JetStream(route_consumers(&js, "").await?),
        })
    };
    let task = match (arm, mode) {
        (Arm::Raw, _) => Some(in_process(Mapping::Passthrough, source().await?)),
        (Arm::Native, _) => Some(in_process(
            Mapping::Native(crate::native::NativePool::start(setup.workers)?),
            source().await?,
        )),
        // On core NATS, and on JetStream with MILLRACE_BENCH_PIPELINE_LOOP=1: the host's
        // pipeline (version pick, worker pool, sandbox, checks) fed and published by the bench's
        // own loop, the one (b) runs, so (c) then differs from (b) by the plugin call alone and
        // not by the host's lanes, delivery and acks (docs/PERFORMANCE.md).
        (Arm::Rust | Arm::Python | Arm::JavaScript, _)
            if mode == Mode::Core
                || std::env::var("MILLRACE_BENCH_PIPELINE_LOOP").is_ok_and(|v| v == "1") =>
        {
            let config = Arc::new(config.clone());
            let loader = PluginLoader::new(config.clone(), setup.sandbox.clone(), None);
            let routes = RouteTable::load(&config, &loader, &Default::default()).await?;
            let delivery = Delivery::open(&js, &config.governance).await?;
            let pool = millrace::workers::WorkerPool::start(config.host.workers)?;
            let mapping = Mapping::Pipeline {
                pipeline: Box::new(Pipeline::new(pool, delivery, js.clone())),
                routes,
            };
            Some(in_process(mapping, source().await?))
        }
        (Arm::Rust | Arm::Python | Arm::JavaScript, _) => {
            let (config, sandbox, stop) = (Arc::new(config), setup.sandbox.clone(), stop.clone());
            let mut host = millrace::host::HostBuilder::new(config, client, sandbox).start();
            host.ready()
                .await
                .context("the millrace host stopped before it served")?;
            Some(tokio::spawn(async move {
                stop.cancelled().await;
                host.shutdown().await
            }))
        }
        (Arm::Node, _) => None,
    };
    let child = if arm == Arm::Node {
        if mode == Mode::JetStream {
            route_consumers(&js, "").await?;
        }
        Some(start_node(setup, url, mode).await?)
    } else {
        None
    };
    // The subscriptions and consumers are in place once the server has seen them.
    js.client().flush().await?;
    Ok(Running { stop, task, child })
}

/// Installs the Node service's packages when missing (`npm ci`).
pub async fn node_install(root: &Path) -> anyhow::Result<()> {
    let dir = root.join("bench/node-service");
    if dir.join("node_modules/nats").exists() {
        return Ok(());
    }
    eprintln!("installing the Node service's packages (npm ci)...");
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .status()
        .await
        .context("cannot run npm: install Node.js 18+ and npm")?;
    anyhow::ensure!(status.success(), "npm ci failed in {}", dir.display());
    Ok(())
}

async fn start_node(setup: &Setup, url: &str, mode: Mode) -> anyhow::Result<tokio::process::Child> {
    node_install(&setup.root).await?;
    let mode = match mode {
        Mode::Core => "core",
        Mode::JetStream => "jetstream",
    };
    let mut child = tokio::process::Command::new("node")
        .arg(setup.root.join("bench/node-service/service.mjs"))
        .args([url, mode, crate::SITE])
        .args([
            transport::consumer_name("shift", workload::SHIFT_SUBJECTS),
            transport::consumer_name("asn", workload::ASN_SUBJECTS),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start node")?;
    let stdout = child.stdout.take().context("no stdout from node")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await? {
            if line.trim() == "ready" {
                return Ok(());
            }
        }
        anyhow::bail!("the Node service exited before it was ready")
    })
    .await
    .context("the Node service was not ready within 20 s")?;
    ready?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(child)
}
