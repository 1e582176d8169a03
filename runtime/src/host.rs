//! The host daemon: consumes every route's raw subjects, maps each message on the worker
//! pool, publishes the canonical events (or the dead letter) and only then acks.
//!
//! Messages are spread over ordered lanes by raw subject: a lane handles one message at a
//! time, start to ack, so the messages of one subject are published in order while other
//! subjects run in parallel. Lanes and workers are fed through bounded channels, so when the
//! host is busy it stops pulling from JetStream rather than queueing without bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span};

use crate::admin::{self, AdminState, RunningHost};
use crate::canonical::MappedEvent;
use crate::config::Config;
use crate::delivery::{Delivered, Delivery, Mode, RawOrigin};
use crate::governance::Failure;
use crate::governance::shadow::{ShadowReport, differences};
use crate::observability::{At, Observer, trace};
use crate::registry::fixtures::Outcome;
use crate::registry::store::{BindingChange, Registry};
use crate::router::{self, Pick, PluginLoader, Route, RouteTable};
use crate::sandbox::{PluginComponent, RawMessage, Sandbox};
use crate::transport;
use crate::workers::WorkerPool;

/// Messages waiting per lane before the consumers wait.
const LANE_QUEUE: usize = 32;

/// How soon a message whose publish failed is redelivered.
const REDELIVER_AFTER_PUBLISH_ERROR: Duration = Duration::from_secs(1);

/// A raw message pulled for a route.
struct Incoming {
    route: Arc<Route>,
    message: jetstream::Message,
}

/// What the lanes share.
struct Lanes {
    pool: WorkerPool,
    delivery: Delivery,
    raw_stream: String,
    js: jetstream::Context,
    observer: Arc<Observer>,
}

/// Runs the host until `shutdown` is cancelled, then drains what is in flight.
/// `ready` is told once every route consumes.
pub async fn serve(
    config: Arc<Config>,
    client: async_nats::Client,
    sandbox: Sandbox,
    shutdown: CancellationToken,
    ready: Option<oneshot::Sender<()>>,
) -> anyhow::Result<()> {
    let js = jetstream::new(client.clone());
    transport::ensure_streams(&js, &config.streams).await?;
    let registry = Registry::open(&config, Some(&js)).await?;
    let bindings = registry.bindings().await?;
    let changes = registry.watch().await?;
    // Bound before anything is loaded: an address in use fails the start at once.
    let admin_listener = match &config.admin {
        Some(admin) => Some(
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
    let shared = Arc::new(Lanes {
        pool: WorkerPool::start(config.host.workers).context("cannot start the worker threads")?,
        delivery: delivery.clone(),
        raw_stream: config.streams.raw.clone(),
        js: js.clone(),
        observer: observer.clone(),
    });

    let mut lanes = Vec::with_capacity(config.host.partitions);
    let mut lane_tasks = JoinSet::new();
    for _ in 0..config.host.partitions {
        let (tx, mut rx) = mpsc::channel::<Incoming>(LANE_QUEUE);
        let shared = shared.clone();
        lane_tasks.spawn(async move {
            while let Some(incoming) = rx.recv().await {
                shared.process(incoming).await;
            }
        });
        lanes.push(tx);
    }

    let mut consumers = JoinSet::new();
    let mut watched = Vec::new();
    for route in table.routes() {
        for subject in &route.subjects {
            let consumer = transport::route_consumer(
                &js,
                &config.streams.raw,
                &route.name,
                subject,
                route.ack_wait,
            )
            .await?;
            watched.push((route.name.clone(), subject.clone(), consumer.clone()));
            consumers.spawn(pull(
                consumer,
                route.clone(),
                lanes.clone(),
                shutdown.clone(),
            ));
        }
        tracing::info!(
            route = &*route.name,
            plugin = route.active().id(),
            digest = &route.active().digest[..12],
            subjects = ?route.subjects,
            "route serving"
        );
    }
    let lag = tokio::spawn(watch_lag(watched, observer.clone(), shutdown.clone()));
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
            })?;
            Some(tokio::spawn(admin::serve(
                listener,
                state,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    if let Some(ready) = ready {
        let _ = ready.send(());
    }

    let mut result = Ok(());
    tokio::select! {
        () = shutdown.cancelled() => {}
        Some(ended) = consumers.join_next() => {
            result = ended.context("a consumer task failed").and_then(|r| r);
        }
    }
    shutdown.cancel();
    readiness.store(false, std::sync::atomic::Ordering::Relaxed);
    while consumers.join_next().await.is_some() {}
    lag.abort();
    if let Some(admin) = admin {
        match admin.await {
            Ok(Err(e)) => tracing::warn!("the admin server stopped with an error: {e:#}"),
            Err(e) => tracing::warn!("the admin server task failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
    drop(lanes);
    while lane_tasks.join_next().await.is_some() {}
    follower.abort();
    if let Ok(shared) = Arc::try_unwrap(shared) {
        tokio::task::spawn_blocking(move || shared.pool.shutdown()).await?;
    }
    client.flush().await.ok();
    tracing::info!("host stopped");
    result
}

/// Pulls a route subject's messages into the lanes until shutdown. Losing the server only
/// pauses it: it opens a new pull stream once the connection is back.
async fn pull(
    consumer: jetstream::consumer::PullConsumer,
    route: Arc<Route>,
    lanes: Vec<mpsc::Sender<Incoming>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pause = || tokio::time::sleep(Duration::from_millis(500));
    loop {
        let mut messages = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            opened = consumer.messages() => match opened {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(route = &*route.name, "cannot pull messages, retrying: {e}");
                    pause().await;
                    continue;
                }
            },
        };
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let lane = router::lane(&message.subject, lanes.len());
                    let incoming = Incoming {
                        route: route.clone(),
                        message,
                    };
                    if lanes[lane].send(incoming).await.is_err() {
                        return Ok(());
                    }
                }
                Some(Err(e)) => {
                    // Missed heartbeats and the like while the server restarts: the stream
                    // carries on once the connection is back.
                    tracing::warn!(route = &*route.name, "pulling messages: {e}");
                    pause().await;
                }
                None => break,
            }
        }
        pause().await;
    }
}

impl Lanes {
    /// Maps, delivers and acks one raw message.
    async fn process(&self, incoming: Incoming) {
        let (sequence, stored_at) = message_info(&incoming.message);
        let raw_id = transport::raw_identity(
            incoming.message.headers.as_ref(),
            &self.raw_stream,
            sequence,
        );
        // The versions the message started on are the ones it finishes on, whatever swaps.
        let pick = incoming.route.slot().pick(&raw_id);
        let span = trace::message_span(
            &incoming.route.name,
            &pick.plugin.id(),
            sequence,
            incoming.message.headers.as_ref(),
        );
        let route = incoming.route.clone();
        let done = self
            .process_in(incoming, &raw_id, pick, sequence, &span)
            .instrument(span.clone())
            .await;
        if done {
            self.observer.finished(&route.name, stored_at);
        }
    }

    /// Maps and delivers the message; true once it is done (its events or dead letter
    /// stored), false when it will be redelivered.
    async fn process_in(
        &self,
        incoming: Incoming,
        raw_id: &str,
        pick: Pick,
        sequence: u64,
        span: &Span,
    ) -> bool {
        let Incoming { route, message } = incoming;
        let raw = RawMessage {
            subject: message.subject.to_string(),
            headers: flatten(message.headers.as_ref()),
            payload: message.payload.to_vec(),
        };
        let plugin = pick.plugin;
        let at = At {
            route: &route.name,
            plugin_version: &plugin.id(),
        };
        self.observer.message_in(at);
        let shadow_input = pick.shadow.as_ref().map(|_| raw.clone());
        let (outcome, attempts) = self.map_with_retries(&route, &plugin, raw).await;
        if let (Some(candidate), Some(raw)) = (pick.shadow, shadow_input) {
            self.shadow(&route, &plugin, candidate, raw, &outcome, sequence)
                .await;
        }
        let traceparent = trace::outgoing(span, message.headers.as_ref());
        let origin = RawOrigin {
            id: raw_id,
            subject: &message.subject,
            sequence,
            headers: message.headers.as_ref(),
            payload: &message.payload,
            traceparent: traceparent.as_deref(),
        };
        let delivered = self
            .delivery
            .deliver(&route, &plugin, &origin, outcome, attempts, &Mode::LIVE)
            .await;
        match delivered {
            Ok(delivered) => {
                match delivered {
                    Delivered::Events { event_ids, .. } => {
                        span.record("outcome", "published");
                        span.record("event_ids", event_ids.join(",").as_str());
                    }
                    Delivered::Failed(failure) => {
                        span.record("outcome", failure.class());
                    }
                }
                if let Err(e) = message.ack().await {
                    tracing::warn!(
                        route = &*route.name,
                        raw_sequence = sequence,
                        "ack failed, JetStream will redeliver: {e}"
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(
                    route = &*route.name,
                    raw_sequence = sequence,
                    "delivery failed, the message will be redelivered: {e:#}"
                );
                let _ = message
                    .ack_with(AckKind::Nak(Some(REDELIVER_AFTER_PUBLISH_ERROR)))
                    .await;
                false
            }
        }
    }

    /// Runs a shadow candidate on the same message and publishes where it differs from the
    /// active version's outcome. Never affects the message's delivery.
    #[allow(clippy::too_many_arguments)]
    async fn shadow(
        &self,
        route: &Route,
        active: &PluginComponent,
        candidate: Arc<PluginComponent>,
        raw: RawMessage,
        outcome: &Result<Vec<MappedEvent>, Failure>,
        sequence: u64,
    ) {
        let raw_subject = raw.subject.clone();
        let candidate_id = candidate.id();
        let shadowed = match route.admission.acquire().await {
            Ok(_permit) => self.pool.call(candidate, route.context.clone(), raw).await,
            Err(_) => return,
        };
        let differences = differences(&Outcome::from(outcome.clone()), &Outcome::from(shadowed));
        if differences.is_empty() {
            tracing::debug!(
                route = &*route.name,
                raw_sequence = sequence,
                "shadow agrees"
            );
            return;
        }
        tracing::info!(
            route = &*route.name,
            raw_sequence = sequence,
            candidate = candidate_id,
            differences = differences.len(),
            "shadow differs"
        );
        let report = ShadowReport {
            route: route.name.to_string(),
            raw_subject,
            raw_sequence: sequence,
            active: active.id(),
            candidate: candidate_id,
            differences,
        };
        let published = match serde_json::to_vec(&report) {
            Ok(body) => self
                .js
                .publish(format!("shadow.{}", route.name), body.into())
                .await
                .map(|_| ()),
            Err(e) => {
                tracing::warn!("cannot encode a shadow report: {e}");
                Ok(())
            }
        };
        if let Err(e) = published {
            tracing::warn!(route = &*route.name, "cannot publish a shadow report: {e}");
        }
    }

    /// Calls the plugin, retrying traps and breached limits with backoff as the route says.
    async fn map_with_retries(
        &self,
        route: &Route,
        plugin: &Arc<PluginComponent>,
        raw: RawMessage,
    ) -> (Result<Vec<MappedEvent>, Failure>, u32) {
        let mut attempt = 1;
        let at = At {
            route: &route.name,
            plugin_version: &plugin.id(),
        };
        loop {
            let result = loop {
                let Ok(permit) = route.admission.acquire().await else {
                    break Err(Failure::Call(crate::sandbox::CallError::Instantiate(
                        "the route is shutting down".into(),
                    )));
                };
                // A route cooling down after a breach waits without holding a worker permit.
                if let Some(wait) = route.breaker.remaining() {
                    drop(permit);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                let started = Instant::now();
                let result = self
                    .pool
                    .call(plugin.clone(), route.context.clone(), raw.clone())
                    .await;
                self.observer.plugin_call(at, started.elapsed(), &result);
                route.breaker.record(matches!(
                    result,
                    Err(Failure::Call(
                        crate::sandbox::CallError::Deadline(_)
                            | crate::sandbox::CallError::Memory(_)
                    ))
                ));
                break result;
            };
            match result {
                Err(failure) if failure.is_retryable() && attempt < route.retry.attempts => {
                    let backoff = route
                        .retry
                        .backoff
                        .saturating_mul(1 << (attempt - 1).min(16));
                    tracing::info!(
                        route = &*route.name,
                        attempt,
                        "plugin call failed, retrying in {backoff:?}: {failure}"
                    );
                    self.observer.retry(at);
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                other => return (other, attempt),
            }
        }
    }
}

/// How often consumer lag is read from the server.
const LAG_INTERVAL: Duration = Duration::from_secs(2);

/// Reads every route consumer's pending count into the metrics until shutdown.
async fn watch_lag(
    consumers: Vec<(Arc<str>, String, jetstream::consumer::PullConsumer)>,
    observer: Arc<Observer>,
    shutdown: CancellationToken,
) {
    loop {
        let mut per_route: std::collections::BTreeMap<&str, u64> = Default::default();
        for (route, subject, consumer) in &consumers {
            // A consumer that cannot be read now (server restarting) keeps its last figure.
            if let Ok(info) = consumer.get_info().await {
                observer.pending(route, subject, info.num_pending);
                *per_route.entry(route).or_default() += info.num_pending;
            }
        }
        for (route, pending) in per_route {
            observer.route_pending(route, pending);
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(LAG_INTERVAL) => {}
        }
    }
}

/// The RAW stream sequence of a message and when JetStream stored it.
fn message_info(message: &jetstream::Message) -> (u64, Option<time::OffsetDateTime>) {
    message.info().map_or((0, None), |info| {
        (info.stream_sequence, Some(info.published))
    })
}

/// The headers as name/value pairs, for the plugin.
fn flatten(headers: Option<&HeaderMap>) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    if let Some(headers) = headers {
        for (name, values) in headers.iter() {
            for value in values {
                pairs.push((name.to_string(), value.as_str().to_owned()));
            }
        }
    }
    pairs.sort();
    pairs
}

/// Follows route bindings: when one changes, loads its versions (compiled off the hot path,
/// or taken from the compile cache) and swaps them in; a version that cannot be loaded leaves
/// the route on what it serves.
async fn follow_bindings(
    mut changes: mpsc::Receiver<BindingChange>,
    table: Arc<RouteTable>,
    loader: Arc<PluginLoader>,
    observer: Arc<Observer>,
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
        match loader.slot(&change.route, change.binding.as_ref()).await {
            Ok(slot) => {
                let after = slot.active.id();
                let candidate = slot
                    .candidate
                    .as_ref()
                    .map(|(c, mode)| format!("{} ({mode:?})", c.id()));
                route.swap(slot);
                observer.serving(&route.name, &route.serving());
                tracing::info!(
                    route = &*route.name,
                    from = before,
                    to = after,
                    candidate,
                    took_ms = started.elapsed().as_millis() as u64,
                    "route switched"
                );
            }
            Err(e) => tracing::error!(
                route = &*route.name,
                "route stays on {before}: the new binding cannot be served: {e:#}"
            ),
        }
    }
}
