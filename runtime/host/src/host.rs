//! The host daemon: consumes every route's raw subjects, takes each message through the
//! [`crate::pipeline`] and only then acks.
//!
//! Messages are spread over ordered lanes ([`crate::lanes`]) by raw subject: a lane maps its
//! messages one at a time and sends their events in order, so the messages of one subject are
//! published in order while other subjects run in parallel; it maps the next message while
//! the last ones' events await JetStream's acks, and acks each raw message in order once its
//! events are stored. Lanes and workers are fed through bounded channels, so when the host is
//! busy it stops pulling from JetStream rather than queueing without bound; a message it holds
//! meanwhile is kept from redelivery by in-progress acks.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, AckKind};
use std::net::SocketAddr;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::acknowledgements::Acknowledgements;
use crate::admin::{self, AdminState, RunningHost};
use crate::delivery::{Delivery, Mode};
use crate::lanes::{Dispatch, LaneWork, Lanes, pull_into};
use crate::observability::{Observer, server_watch};
use crate::pipeline::{Begun, Pipeline, RawInput};
use crate::registry::loader::PluginLoader;
use crate::registry::store::{BindingChange, Registry};
use crate::routes::{Route, RouteTable, Serving};
use millrace_core::config::Config;
use millrace_core::sandbox::Sandbox;
use millrace_core::subjects;
use millrace_core::workers::WorkerPool;
use millrace_transport as transport;

/// Messages waiting per lane. The route consumers pull only what the lanes have room for, and
/// keep what they pulled from redelivery until it is acked ([`crate::lanes`]).
const LANE_QUEUE: usize = 32;

/// Messages per lane whose events are sent and await their acks while the lane maps the next.
const LANE_DEPTH: usize = 16;

/// How long a stopping host waits for its last publishes to leave.
const FLUSH_ON_STOP: Duration = Duration::from_secs(2);

/// How soon a message the host could not finish (publish failed, workers stopping) is
/// redelivered after its first delivery; each later one waits twice as long as the one
/// before, up to [`REDELIVER_AFTER_HOST_FAILURE_MAX`], so that a lasting failure spends the
/// route's `max_deliveries` over minutes, not seconds.
const REDELIVER_AFTER_HOST_FAILURE: Duration = Duration::from_secs(1);

/// The longest wait before a message the host could not finish is redelivered.
const REDELIVER_AFTER_HOST_FAILURE_MAX: Duration = Duration::from_secs(60);

/// How long a lane first waits before it maps and sends a message again after a host failure
/// (a key-value write refused, a publish not answered); the wait doubles up to
/// [`RETRY_IN_PLACE_LAST`], then the message is left to redelivery. Trying again in place keeps
/// the later messages of the lane, and so of the subject, behind it: left to redelivery at once,
/// the message came back after them and its events were published out of order.
const RETRY_IN_PLACE_FIRST: Duration = Duration::from_millis(50);

/// The longest wait of a lane trying a message again in place (about 3 s in all).
const RETRY_IN_PLACE_LAST: Duration = Duration::from_millis(1600);

/// How soon a message delivered `delivered` times is redelivered after a host failure.
fn redelivery_after_host_failure(delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    (REDELIVER_AFTER_HOST_FAILURE * 2u32.pow(doublings)).min(REDELIVER_AFTER_HOST_FAILURE_MAX)
}

/// A raw message pulled for a route.
struct Incoming {
    route: Arc<Route>,
    message: jetstream::Message,
}

/// The live driver of the pipeline, shared by the lanes: takes each pulled message through
/// the pipeline, then acks it, or leaves it to redelivery after a host failure.
struct LiveDriver {
    pipeline: Pipeline,
    raw_stream: String,
    observer: Arc<Observer>,
    /// Cancelled when the host stops: a lane then stops trying a message again in place.
    shutdown: CancellationToken,
}

impl AsRef<Pipeline> for LiveDriver {
    fn as_ref(&self) -> &Pipeline {
        &self.pipeline
    }
}

/// A host to start: its configuration, NATS connection and sandbox, and optionally an admin
/// listener already bound (tests bind port 0 and ask [`HostHandle::admin_addr`]).
pub struct HostBuilder {
    config: Arc<Config>,
    client: async_nats::Client,
    sandbox: Sandbox,
    admin_listener: Option<tokio::net::TcpListener>,
}

/// Where a host is in its life, as [`HostHandle`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostState {
    /// Opening streams, loading and admitting the routes' plugin versions.
    Starting,
    /// Every route consumes; the admin API (when there is one) listens at this address.
    Ready {
        /// The admin API's address.
        admin_addr: Option<SocketAddr>,
    },
    /// Stopped (see [`HostHandle::wait`] for why).
    Stopped,
}

/// A route's binding changed and the host acted on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSwitch {
    /// The route.
    pub route: String,
    /// `name@version` it served before.
    pub from: String,
    /// The versions it serves now, with their roles, or why it stays on `from`.
    pub to: Result<Vec<Serving>, String>,
}

/// A running host: its state, the route switches it makes, and how to stop it.
pub struct HostHandle {
    state: watch::Receiver<HostState>,
    switches: broadcast::Sender<RouteSwitch>,
    shutdown: CancellationToken,
    /// The host's task; taken by [`ready`](HostHandle::ready) when it reports the host's error.
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl HostBuilder {
    /// A host serving `config`'s routes over `client`, running plugins in `sandbox`.
    pub fn new(config: Arc<Config>, client: async_nats::Client, sandbox: Sandbox) -> Self {
        Self {
            config,
            client,
            sandbox,
            admin_listener: None,
        }
    }

    /// Serves the admin API on `listener` instead of binding `admin.listen`.
    #[must_use]
    pub fn admin_listener(mut self, listener: tokio::net::TcpListener) -> Self {
        self.admin_listener = Some(listener);
        self
    }

    /// Starts the host on the current tokio runtime and returns at once.
    pub fn start(self) -> HostHandle {
        let shutdown = CancellationToken::new();
        let (state, watched) = watch::channel(HostState::Starting);
        let (switches, _) = broadcast::channel(64);
        let task = tokio::spawn(run(self, shutdown.clone(), state, switches.clone()));
        HostHandle {
            state: watched,
            switches,
            shutdown,
            task: Some(task),
        }
    }
}

impl HostHandle {
    /// Waits until every route consumes; `Err` (with the reason) when the host stopped first.
    pub async fn ready(&mut self) -> anyhow::Result<()> {
        let reached = self
            .state
            .wait_for(|s| !matches!(s, HostState::Starting))
            .await
            .map(|s| s.clone());
        match (reached, self.task.take()) {
            (Ok(HostState::Ready { .. }), task) => {
                self.task = task;
                Ok(())
            }
            (_, Some(task)) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => anyhow::bail!("the host stopped before it was ready"),
                Err(e) => Err(anyhow::anyhow!("the host task failed: {e}")),
            },
            (_, None) => anyhow::bail!("the host stopped before it was ready"),
        }
    }

    /// Where the host is now.
    pub fn state(&self) -> HostState {
        self.state.borrow().clone()
    }

    /// The admin API's address, once the host is ready and serves one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        match &*self.state.borrow() {
            HostState::Ready { admin_addr } => *admin_addr,
            _ => None,
        }
    }

    /// The route switches the host makes from now on, as bindings change.
    pub fn route_switches(&self) -> broadcast::Receiver<RouteSwitch> {
        self.switches.subscribe()
    }

    /// Asks the host to stop: it finishes the messages in flight (within `host.drain_timeout`)
    /// and leaves the rest to redelivery.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the host has stopped, without taking its result (see [`wait`](Self::wait)).
    pub async fn stopped(&mut self) {
        let _ = self
            .state
            .wait_for(|s| matches!(s, HostState::Stopped))
            .await;
    }

    /// Waits until the host has stopped (asked to, or because a consumer failed), and returns
    /// its outcome (unless [`ready`](Self::ready) already returned it).
    pub async fn wait(self) -> anyhow::Result<()> {
        match self.task {
            Some(task) => task.await.context("the host task failed")?,
            None => anyhow::bail!("the host stopped before it was ready (ready() said why)"),
        }
    }

    /// Stops the host and waits until it has.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop();
        self.wait().await
    }
}

/// The host's life: start, serve until `shutdown` is cancelled or a consumer fails, drain.
async fn run(
    builder: HostBuilder,
    shutdown: CancellationToken,
    state: watch::Sender<HostState>,
    switches: broadcast::Sender<RouteSwitch>,
) -> anyhow::Result<()> {
    let result = serve(builder, &shutdown, &state, switches).await;
    shutdown.cancel();
    state.send_replace(HostState::Stopped);
    result
}

async fn serve(
    builder: HostBuilder,
    shutdown: &CancellationToken,
    state: &watch::Sender<HostState>,
    switches: broadcast::Sender<RouteSwitch>,
) -> anyhow::Result<()> {
    let HostBuilder {
        config,
        client,
        sandbox,
        admin_listener,
    } = builder;
    let shutdown = shutdown.clone();
    let js = jetstream::new(client.clone());
    transport::ensure_streams(&js, &config.streams).await?;
    transport::ensure_buckets(&js, &config).await?;
    let registry = Registry::open(&config, Some(&js)).await?;
    let bindings = registry.bindings().await?;
    let changes = registry.watch().await?;
    // Bound before anything is loaded: an address in use fails the start at once.
    let admin_listener = match (&config.admin, admin_listener) {
        (Some(_), Some(listener)) => Some(listener),
        (Some(admin), None) => Some(
            tokio::net::TcpListener::bind(admin.listen)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {} for the admin API (admin.listen in {})",
                        admin.listen,
                        config.source.display()
                    )
                })?,
        ),
        (None, _) => None,
    };
    let admin_addr = match &admin_listener {
        Some(listener) => Some(
            listener
                .local_addr()
                .context("the admin listener has no address")?,
        ),
        None => None,
    };
    let loader = Arc::new(PluginLoader::new(
        config.clone(),
        sandbox.clone(),
        Some(registry.clone()),
    ));
    let table = Arc::new(RouteTable::load(&config, &loader, &bindings).await?);
    let observer = Arc::new(Observer::new());
    for route in table.routes() {
        observer.serving(&route.name, &route.serving());
    }
    let follower = tokio::spawn(follow_bindings(
        changes,
        table.clone(),
        loader.clone(),
        observer.clone(),
        switches,
        shutdown.clone(),
    ));
    if table.routes().is_empty() {
        tracing::warn!(
            "no routes in {}: nothing will be mapped; add a [routes.<name>] section",
            config.source.display()
        );
    }
    let delivery = Delivery::open(&js, &config.governance)
        .await?
        .observed(observer.clone());
    let pool = WorkerPool::start(config.host.workers).context("cannot start the worker threads")?;
    let acknowledgements = Acknowledgements::open(&config, &js, &sandbox, Some(&registry))
        .await?
        .map(Arc::new);
    let shared = Arc::new(LiveDriver {
        pipeline: Pipeline::new(pool, delivery.clone(), js.clone()).acknowledging(acknowledgements),
        raw_stream: config.streams.raw.clone(),
        observer: observer.clone(),
        shutdown: shutdown.clone(),
    });

    let mut lane_tasks = JoinSet::new();
    let lanes = Lanes::start(
        shared.clone(),
        config.host.partitions,
        LANE_QUEUE,
        LANE_DEPTH,
        &shutdown,
        &mut lane_tasks,
    );

    let mut consumers = JoinSet::new();
    let mut watched = Vec::new();
    let mut outbound = crate::outbound::start(
        &js,
        &config,
        &table,
        shared.pipeline.calls().clone(),
        observer.clone(),
        shutdown.clone(),
    )
    .await?;
    watched.append(&mut outbound.consumers);
    // Every consumer exists before any pull starts: a raw message the NATS client cannot read,
    // waiting in a route's backlog, drops the connection when it is delivered, and a request
    // made then would fail the start.
    let mut route_consumers = Vec::new();
    for route in table.routes() {
        let consumer = transport::route_consumer(
            &js,
            &config.streams.raw,
            &route.name,
            &route.subjects,
            route.ack_wait,
            route.max_deliveries,
        )
        .await?;
        route_consumers.push((route, consumer));
    }
    let advisories = transport::undeliverable::advisories(&js, &config.streams).await?;
    for (route, consumer) in route_consumers {
        // The lag is the route consumer's, reported under all its subjects at once.
        watched.push((
            route.name.clone(),
            route.subjects.join(","),
            consumer.clone(),
        ));
        let feed = RouteFeed {
            route: route.clone(),
        };
        let (lanes, stop, name, seen) = (
            lanes.clone(),
            shutdown.clone(),
            route.name.clone(),
            observer.clone(),
        );
        consumers
            .spawn(async move { pull_into(consumer, None, &name, seen, feed, lanes, stop).await });
        tracing::info!(
            route = &*route.name,
            plugin = route.active().id(),
            digest = &route.active().digest[..12],
            subjects = ?route.subjects,
            "route serving"
        );
    }
    let lag = tokio::spawn(server_watch::lag(
        watched,
        observer.clone(),
        shutdown.clone(),
    ));
    let server_watch = tokio::spawn(server_watch::liveness(
        client.clone(),
        config
            .nats
            .ping_interval
            .unwrap_or(millrace_core::config::DEFAULT_PING_INTERVAL)
            .get(),
        shutdown.clone(),
    ));
    let undeliverable = tokio::spawn({
        let run = crate::lanes::undeliverable::run(
            advisories,
            shared.clone(),
            delivery.clone(),
            client.clone(),
            config.streams.clone(),
            table.clone(),
            shutdown.clone(),
        );
        async move {
            if let Err(e) = run.await {
                tracing::error!("undeliverable raw messages will not be dead-lettered: {e:#}");
            }
        }
    });
    let readiness = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let admin = match admin_listener {
        Some(listener) => {
            let state = AdminState::new(RunningHost {
                config: config.clone(),
                client: client.clone(),
                reads: admin::reads_connection(&config, &client).await,
                registry,
                sandbox,
                loader: loader.clone(),
                table: table.clone(),
                delivery,
                observer: observer.clone(),
                ready: readiness.clone(),
                outbound: Some(outbound.driver.clone()),
            })?;
            Some(tokio::spawn(admin::serve(
                listener,
                state,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    state.send_replace(HostState::Ready { admin_addr });

    let mut result = Ok(());
    tokio::select! {
        () = shutdown.cancelled() => {}
        Some(ended) = consumers.join_next() => {
            result = ended.context("a consumer task failed").and_then(|r| r);
        }
        Some(ended) = outbound.tasks.join_next() => {
            result = ended.context("an outbound task failed").and_then(|r| r);
        }
    }
    shutdown.cancel();
    readiness.store(false, std::sync::atomic::Ordering::Relaxed);
    tracing::info!("stopping: finishing the messages in flight");
    let drain = config.host.drain_timeout.get();
    let drained = tokio::time::timeout(drain, async {
        while consumers.join_next().await.is_some() {}
        if let Some(admin) = admin {
            match admin.await {
                Ok(Err(e)) => tracing::warn!("the admin server stopped with an error: {e:#}"),
                Err(e) => tracing::warn!("the admin server task failed: {e}"),
                Ok(Ok(())) => {}
            }
        }
        while lane_tasks.join_next().await.is_some() {}
        while outbound.tasks.join_next().await.is_some() {}
    })
    .await;
    lag.abort();
    server_watch.abort();
    follower.abort();
    undeliverable.abort();
    // Its hold on the pipeline ends with it, before the pipeline is shut down below.
    let _ = undeliverable.await;
    if drained.is_err() {
        // NATS gone, or a target stuck: nothing acked is lost, what is not acked is redelivered.
        tracing::warn!(
            "stopping: gave up waiting after {drain:?} (host.drain_timeout); the messages not yet acknowledged will be redelivered"
        );
        consumers.abort_all();
        lane_tasks.abort_all();
        outbound.tasks.abort_all();
        while lane_tasks.join_next().await.is_some() {}
    }
    drop(lanes);
    drop(outbound);
    if let Ok(shared) = Arc::try_unwrap(shared) {
        shared.pipeline.shutdown().await;
    }
    let _ = tokio::time::timeout(FLUSH_ON_STOP, client.flush()).await;
    tracing::info!("host stopped");
    result
}

/// Hands a route's raw messages to the lane of their subject.
struct RouteFeed {
    route: Arc<Route>,
}

impl Dispatch for RouteFeed {
    type Item = Incoming;

    fn dispatch(&self, message: jetstream::Message, lanes: usize) -> (usize, Incoming) {
        let lane = subjects::lane(&message.subject, lanes);
        let incoming = Incoming {
            route: self.route.clone(),
            message,
        };
        (lane, incoming)
    }
}

/// A raw message whose events are sent, awaiting their acks.
struct InFlight {
    incoming: Incoming,
    input: RawInput,
    begun: Begun,
}

impl LaneWork for LiveDriver {
    type Item = Incoming;
    type Begun = InFlight;

    /// Maps the raw message and sends its events (or stores its dead letter). After a host
    /// failure it tries again in place for a few seconds, the lane's later messages waiting,
    /// before it leaves the message to redelivery.
    async fn begin(&self, incoming: Incoming) -> InFlight {
        let input = RawInput::delivered(&incoming.message, &self.raw_stream);
        let mut pause = RETRY_IN_PLACE_FIRST;
        loop {
            let begun = self
                .pipeline
                .begin(&incoming.route, &input, &Mode::LIVE)
                .await;
            match begun.host_failure() {
                Some(failure) if pause <= RETRY_IN_PLACE_LAST && !self.shutdown.is_cancelled() => {
                    tracing::info!(
                        route = &*incoming.route.name,
                        raw_sequence = input.sequence,
                        "trying again in {pause:?}, the subject's later messages waiting: {failure}"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = self.shutdown.cancelled() => {}
                    }
                    pause *= 2;
                }
                _ => {
                    return InFlight {
                        incoming,
                        input,
                        begun,
                    };
                }
            }
        }
    }

    /// Acks the message once it is done (its events or its dead letter stored), or leaves it
    /// to redelivery after a host failure.
    async fn finish(&self, in_flight: InFlight) {
        let InFlight {
            incoming: Incoming { route, message },
            input,
            begun,
        } = in_flight;
        let processed = self
            .pipeline
            .finish(&route, &input, &Mode::LIVE, begun)
            .await;
        match processed.outcome {
            Ok(_) => {
                if let Err(e) = message.ack().await {
                    tracing::warn!(
                        route = &*route.name,
                        raw_sequence = input.sequence,
                        "ack failed, JetStream will redeliver: {e}"
                    );
                }
                self.observer.finished(&route.name, input.stored_at);
            }
            Err(e) => {
                tracing::warn!(
                    route = &*route.name,
                    raw_sequence = input.sequence,
                    "the message will be redelivered: {e}"
                );
                self.observer.host_failure(&route.name);
                let delivered = message.info().map_or(1, |info| info.delivered);
                let _ = message
                    .ack_with(AckKind::Nak(Some(redelivery_after_host_failure(delivered))))
                    .await;
            }
        }
    }
}

/// Follows route bindings: when one changes, loads its versions (compiled off the hot path,
/// or taken from the compile cache) and swaps them in; a version that cannot be loaded leaves
/// the route on what it serves.
async fn follow_bindings(
    mut changes: mpsc::Receiver<BindingChange>,
    table: Arc<RouteTable>,
    loader: Arc<PluginLoader>,
    observer: Arc<Observer>,
    switches: broadcast::Sender<RouteSwitch>,
    shutdown: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            () = shutdown.cancelled() => return,
            change = changes.recv() => change,
        };
        let Some(change) = change else { return };
        let Some(route) = table.get(&change.route) else {
            continue;
        };
        let started = std::time::Instant::now();
        let before = route.active().id();
        match loader
            .versions(&change.route, change.binding.as_ref())
            .await
        {
            Ok(versions) => {
                let after = versions.active.id();
                let candidate = versions
                    .candidate
                    .as_ref()
                    .map(|(c, mode)| format!("{} ({mode:?})", c.id()));
                route.swap(versions);
                observer.serving(&route.name, &route.serving());
                tracing::info!(
                    route = &*route.name,
                    from = before,
                    to = after,
                    candidate,
                    took_ms = started.elapsed().as_millis() as u64,
                    "route switched"
                );
                let _ = switches.send(RouteSwitch {
                    route: route.name.to_string(),
                    from: before,
                    to: Ok(route.serving()),
                });
            }
            Err(e) => {
                tracing::error!(
                    route = &*route.name,
                    "route stays on {before}: the new binding cannot be served: {e:#}"
                );
                let _ = switches.send(RouteSwitch {
                    route: route.name.to_string(),
                    from: before,
                    to: Err(format!("{e:#}")),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redelivery_after_host_failure as after;

    #[test]
    fn a_lasting_host_failure_spends_the_deliveries_over_minutes() {
        let delays: Vec<u64> = (1..=8).map(|d| after(d).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        // The default `max_deliveries` (20): 19 waits before JetStream gives up, as the
        // configuration's documentation says ("about 14 minutes").
        let waited: u64 = (1..20).map(|d| after(d).as_secs()).sum();
        assert_eq!(waited, 843);
        assert_eq!(after(0).as_secs(), 1);
        assert_eq!(after(i64::MAX).as_secs(), 60);
    }
}
