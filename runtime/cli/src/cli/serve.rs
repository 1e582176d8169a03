//! `millrace run` and `millrace up`: the host, alone or with a local NATS and a live view.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use millrace::config::Config;
use millrace::delivery::dead_letter::headers;
use millrace::host::HostBuilder;
use millrace::observability::trace;
use millrace::outbound::acknowledgement::{Acknowledgement, PostingOutcome};
use millrace::projection::Projection;
use millrace::projection::query::{InventoryFilter, Visibility};
use millrace::subjects;
use millrace::transport::{
    self,
    local_server::{LocalCluster, LocalServer},
};

/// How long `up --once` waits for the sample messages to be mapped.
const ONCE_TIMEOUT: Duration = Duration::from_secs(120);

/// Says which server a host connected to (a reconnect is logged as it happens).
fn log_connected(client: &async_nats::Client) {
    let server = client.server_info();
    tracing::info!(
        server = %server.server_name,
        version = %server.version,
        "connected to NATS"
    );
}

/// `millrace run`.
pub async fn run(config_path: &Path, nats: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = Arc::new(Config::load(config_path)?);
    let export = start_logging(&config).await?;
    let client = transport::connect(&config, nats).await?;
    log_connected(&client);
    let sandbox = super::sandbox(&config)?;
    let shutdown = CancellationToken::new();
    let projection = start_projection(&config, &client, false, &shutdown).await?;
    let mut host = HostBuilder::new(config, client, sandbox).start();
    tokio::select! {
        () = super::shutdown_signal() => {}
        () = host.stopped() => {}
    }
    let served = host.shutdown().await;
    shutdown.cancel();
    let projected = match projection {
        Some(projection) => projection.await.map_err(anyhow::Error::from),
        None => Ok(()),
    };
    finish_export(export).await;
    served?;
    projected?;
    Ok(ExitCode::SUCCESS)
}

/// Sets up logging, and span export when the config asks for it.
async fn start_logging(config: &Config) -> anyhow::Result<Option<trace::OtlpExport>> {
    let telemetry = config.telemetry.clone();
    tokio::task::spawn_blocking(move || trace::init_logging(Some(&telemetry))).await?
}

/// Sends the spans still buffered, off the reactor.
async fn finish_export(export: Option<trace::OtlpExport>) {
    if let Some(export) = export {
        let _ = tokio::task::spawn_blocking(move || drop(export)).await;
    }
}

/// Starts the visibility projection beside the host when the config says it runs in `run`
/// (`up` false) or `up` (`up` true); it stops with `shutdown`.
async fn start_projection(
    config: &Config,
    client: &async_nats::Client,
    up: bool,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if !config.runs_projection(up) {
        if config.has_gates() {
            tracing::warn!(
                "outbound posting gates read the visibility projection, which this host does not \
                 run (`projection.enabled = false`): another host must run it, or the gates hold \
                 every event they govern until its buckets exist, then read them as it left them"
            );
        }
        return Ok(None);
    }
    if !up && config.projection.enabled.is_none() {
        tracing::info!("running the visibility projection: an outbound posting gate reads it");
    }
    let js = async_nats::jetstream::new(client.clone());
    transport::ensure_streams(&js, &config.streams).await?;
    let projection = Projection::open(&js, config).await?;
    Ok(Some(tokio::spawn(projection.run(shutdown.clone()))))
}

/// Starts a local JetStream cluster of `nodes` servers on client ports `port..` and cluster
/// ports right after them, and waits until it has elected its leader.
async fn start_cluster(store: PathBuf, port: u16, nodes: u8) -> anyhow::Result<LocalCluster> {
    let count = u16::from(nodes);
    let ports: Vec<u16> = (0..count).map(|i| port + i).collect();
    let cluster_ports: Vec<u16> = (0..count).map(|i| port + count + i).collect();
    let cluster = {
        let (ports, cluster_ports) = (ports.clone(), cluster_ports.clone());
        tokio::task::spawn_blocking(move || LocalCluster::start(&store, &ports, &cluster_ports))
            .await??
    };
    let servers = transport::server_addrs(&cluster.urls())?;
    let js = async_nats::jetstream::new(
        async_nats::connect(servers.as_slice())
            .await
            .context("cannot connect to the local cluster")?,
    );
    transport::jetstream_ready(&js, CLUSTER_START)
        .await
        .context("the local cluster elected no JetStream leader")?;
    outln!(
        "started a JetStream cluster of {nodes} nats-servers at {} (cluster ports {:?}; streams \
         and buckets with 3 replicas; fsync before every acknowledgement)",
        cluster.urls(),
        cluster_ports
    );
    Ok(cluster)
}

/// How long a local cluster may take to elect its JetStream leader.
const CLUSTER_START: Duration = Duration::from_secs(30);

/// What `millrace up` was told on the command line.
#[derive(Debug, clap::Args)]
pub struct UpOptions {
    /// NATS server URL; overrides `nats.url` and skips starting a local server.
    #[arg(long, env = "MILLRACE_NATS")]
    pub nats: Option<String>,
    /// Stop once the sample messages are all mapped, instead of running until Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// Port of the local nats-server; overrides `up.port`.
    #[arg(long)]
    pub port: Option<u16>,
    /// Folder for the local NATS data and the compiled-plugin cache; overrides
    /// `host.state_dir`.
    #[arg(long)]
    pub state_dir: Option<std::path::PathBuf>,
    /// Start a JetStream cluster of this many local nats-servers (3 for a trial of
    /// replicated streams: `streams.replicas` becomes 3 unless the config sets it) on
    /// consecutive ports from `up.port`, instead of one server.
    #[arg(long, value_parser = clap::value_parser!(u8).range(3..=5))]
    pub cluster: Option<u8>,
    /// Serve the admin API and console at this address instead of `admin.listen`
    /// (`127.0.0.1:0` takes any free port; the address taken is printed).
    #[arg(long)]
    pub admin_listen: Option<std::net::SocketAddr>,
}

/// `millrace up`.
pub async fn up(config_path: &Path, options: UpOptions) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(config_path)?;
    if let Some(dir) = options.state_dir {
        config.host.state_dir = std::path::absolute(&dir)?;
    }
    if let Some(port) = options.port {
        config.up.port = port;
    }
    if let Some(listen) = options.admin_listen {
        match config.admin.as_mut() {
            Some(admin) => admin.listen = listen,
            None => bail!(
                "--admin-listen {listen}: {} has no [admin] section, so there is no admin API to serve",
                config_path.display()
            ),
        }
    }
    if options.cluster.is_some() && config.streams.replicas.is_none() {
        config.streams.replicas = Some(3);
    }
    let config = Arc::new(config);
    let export = start_logging(&config).await?;
    let once = options.once;
    // What `up` started, kept running until it stops.
    let (mut _server, mut _cluster) = (None, None);
    let url = match options.nats.or_else(|| config.nats.url.clone()) {
        Some(url) => url,
        None => {
            let store = config.resolve(&config.host.state_dir).join("nats");
            let port = config.up.port;
            match options.cluster {
                None => {
                    let server =
                        tokio::task::spawn_blocking(move || LocalServer::start(port, &store))
                            .await??;
                    outln!(
                        "started nats-server with JetStream at {} (data in {}; fsync before every acknowledgement)",
                        server.url(),
                        server.store_dir().display(),
                    );
                    let url = server.url();
                    _server = Some(server);
                    url
                }
                Some(nodes) => {
                    let cluster = start_cluster(store, port, nodes).await?;
                    let url = cluster.urls();
                    _cluster = Some(cluster);
                    url
                }
            }
        }
    };
    let client = transport::connect(&config, Some(&url)).await?;
    log_connected(&client);
    let sandbox = super::sandbox(&config)?;
    let shutdown = CancellationToken::new();
    let mut host = HostBuilder::new(config.clone(), client.clone(), sandbox).start();
    let view = tokio::spawn(live_view(client.clone()).await?);
    let projection = start_projection(&config, &client, true, &shutdown).await?;
    host.ready().await?;
    outln!("host ready: {} route(s); Ctrl-C stops", config.routes.len());
    if let Some(admin) = host.admin_addr() {
        outln!(
            "console: http://{admin}/  (metrics at /metrics, API at /api/v1, see /api/v1/openapi.json)"
        );
    }
    let p = &config.projection;
    if projection.is_some() {
        outln!(
            "projection running: stock, work orders, holds, commitments, source ages and postings \
             in the key-value buckets {}, {}, {}, {}, {}, {} (`millrace projection show inventory`)",
            p.inventory_bucket,
            p.work_order_bucket,
            p.hold_bucket,
            p.commitment_bucket,
            p.source_bucket,
            p.posting_bucket
        );
    }
    let js = async_nats::jetstream::new(client.clone());
    // Each seed is mapped before the next is published: routes run in parallel, so without the
    // wait a later seed's events could reach CANONICAL first (a consumption before the opening
    // balance it draws from), and the projection would see them in that order.
    for seed in &config.up.seed {
        let files: Vec<_> = seed.files.iter().map(|f| config.resolve(f)).collect();
        super::publish::publish_files(&js, &seed.subject, &files).await?;
        if let Err(e) = wait_idle(&js, &config).await {
            tracing::warn!(subject = %seed.subject, "publishing the next seed anyway: {e:#}");
        }
    }
    let summary = {
        let (js, config, projected) = (js.clone(), config.clone(), projection.is_some());
        async move {
            wait_idle(&js, &config).await?;
            if projected {
                print_projection(&js, &config).await?;
            }
            anyhow::Ok(())
        }
    };
    if once {
        summary.await?;
        // Let the live view print the last events.
        tokio::time::sleep(Duration::from_millis(500)).await;
    } else {
        let summary = tokio::spawn(async move {
            if let Err(e) = summary.await {
                tracing::warn!("no projection summary: {e:#}");
            }
        });
        tokio::select! {
            () = super::shutdown_signal() => {}
            () = host.stopped() => {}
        }
        summary.abort();
    }
    let served = host.shutdown().await;
    shutdown.cancel();
    served?;
    if let Some(projection) = projection {
        projection.await?;
    }
    view.abort();
    finish_export(export).await;
    Ok(ExitCode::SUCCESS)
}

/// Waits for the projection to apply what the samples produced, then prints the stock
/// positions with their holds.
async fn print_projection(
    js: &async_nats::jetstream::Context,
    config: &Config,
) -> anyhow::Result<()> {
    let projection = Projection::open(js, config).await?;
    let started = Instant::now();
    while !projection.caught_up().await? {
        if started.elapsed() > ONCE_TIMEOUT {
            bail!("the projection did not catch up with the canonical stream in {ONCE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let visibility = Visibility::open(js, &config.projection).await?;
    let positions = visibility.inventory(&InventoryFilter::default()).await?;
    let orders = visibility.work_orders(&Default::default()).await?;
    let open_holds = visibility
        .holds(&Default::default())
        .await?
        .iter()
        .filter(|h| h.open)
        .count();
    outln!(
        "PROJECTION {} stock position(s), {} work order(s), {open_holds} open hold(s):",
        positions.len(),
        orders.len()
    );
    out!("{}", super::projection::inventory_table(&positions));
    Ok(())
}

/// Subscribes to canonical events, dead letters, the requests sent to NATS targets and the
/// posting acknowledgements, and returns the task printing them.
async fn live_view(
    client: async_nats::Client,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let mut all = futures::stream::select_all([
        client.subscribe(subjects::ALL_CANONICAL).await?,
        client.subscribe(subjects::ALL_DEAD_LETTERS).await?,
        client.subscribe(subjects::ALL_OUTBOX).await?,
        client.subscribe(subjects::ALL_POSTINGS).await?,
    ]);
    Ok(async move {
        while let Some(message) = all.next().await {
            outln!("{}", describe(&message));
        }
        Ok(())
    })
}

/// One line for a canonical event or a dead letter.
fn describe(message: &async_nats::Message) -> String {
    if subjects::subject_matches(subjects::ALL_DEAD_LETTERS, &message.subject) {
        let get = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map_or("?", |v| v.as_str())
                .to_owned()
        };
        return format!(
            "DEAD LETTER {}  {} seq {}: {}: {}",
            message.subject,
            get(headers::RAW_SUBJECT),
            get(headers::RAW_SEQUENCE),
            get(headers::ERROR_KIND),
            get(headers::ERROR)
        );
    }
    if subjects::subject_matches(subjects::ALL_OUTBOX, &message.subject) {
        return describe_sent(message);
    }
    if subjects::subject_matches(subjects::ALL_POSTINGS, &message.subject) {
        return describe_posting(message);
    }
    match serde_json::from_slice::<serde_json::Value>(&message.payload) {
        Ok(event) => format!(
            "EVENT {}  {}  {}",
            message.subject,
            event["subject"].as_str().unwrap_or("?"),
            event["data"]
        ),
        Err(_) => format!("EVENT {} (not JSON)", message.subject),
    }
}

/// One line for a request an outbound route sent to a NATS target: its idempotency key and
/// body (JSON on one line, else its size).
fn describe_sent(message: &async_nats::Message) -> String {
    let key = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Idempotency-Key"))
        .map_or("?", |v| v.as_str());
    let body = match serde_json::from_slice::<serde_json::Value>(&message.payload) {
        Ok(json) => json.to_string(),
        Err(_) => format!("({} bytes)", message.payload.len()),
    };
    format!("SENT {}  Idempotency-Key {key}  {body}", message.subject)
}

/// One line for a posting acknowledgement: what the target made of which event's request, and
/// the posting delay.
fn describe_posting(message: &async_nats::Message) -> String {
    let Ok(ack) = serde_json::from_slice::<Acknowledgement>(&message.payload) else {
        return format!("POSTING {} (not an acknowledgement)", message.subject);
    };
    let answer = match (ack.outcome, &ack.document, &ack.reason) {
        (PostingOutcome::Posted, Some(document), _) if !document.is_empty() => {
            format!("posted as {document}")
        }
        (PostingOutcome::Posted, ..) => "posted".to_owned(),
        (PostingOutcome::Rejected, _, reason) => {
            format!("rejected: {}", reason.as_deref().unwrap_or("?"))
        }
    };
    format!(
        "POSTING {}  {} {} request {} by {}: {answer} (HTTP {}), {} after the source",
        message.subject,
        ack.kind,
        ack.business_key,
        ack.request + 1,
        ack.route,
        ack.status,
        delay_text(ack.delay_seconds)
    )
}

/// A posting delay as a plant manager reads it: seconds, minutes or hours.
fn delay_text(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.1} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// Waits until every route consumer has nothing pending or unacknowledged.
async fn wait_idle(js: &async_nats::jetstream::Context, config: &Config) -> anyhow::Result<()> {
    let stream = js.get_stream(&config.streams.raw).await?;
    let started = Instant::now();
    let mut idle_checks = 0;
    while idle_checks < 2 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut busy = 0;
        for (name, route) in &config.routes {
            let consumer = transport::route_consumer_name(name, &route.subjects);
            let info = stream.consumer_info(&consumer).await?;
            busy += info.num_pending + info.num_ack_pending as u64;
        }
        idle_checks = if busy == 0 { idle_checks + 1 } else { 0 };
        if started.elapsed() > ONCE_TIMEOUT {
            bail!("{busy} raw message(s) still not mapped after {ONCE_TIMEOUT:?}");
        }
    }
    Ok(())
}
