//! The outbound half of a host: canonical events posted to the systems of record.
//!
//! Each outbound route (`[outbound.<name>]`) has its own durable consumer on the CANONICAL
//! stream, so a slow or down target holds back neither the inbound side nor another route.
//! Its events are spread over ordered lanes by business key (the events of one key are posted
//! in order) and taken through the [`driver`]: gate, render on the shared worker pool, requests
//! to the [`target`]s in order, interpret, acknowledge ([`acknowledgement`]) or dead-letter
//! ([`letter`]). docs/OUTBOUND.md is the operator's guide.

pub mod acknowledgement;
pub mod driver;
pub mod gate;
pub mod input;
pub mod letter;
pub mod target;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::driver::OutboundDriver;
use self::gate::GateCheck;
use self::input::{EventInput, KeepAlive};
use self::target::Target;
use crate::delivery::Mode;
use crate::observability::Observer;
use crate::pipeline::PluginCalls;
use crate::routes::{Route, RouteTable};
use millrace_core::config::Config;
use millrace_projection::query::Visibility;

/// How soon an event the host could not finish is redelivered.
const REDELIVER_AFTER_HOST_FAILURE: Duration = Duration::from_secs(1);

/// How often a paused consumer looks at its targets' breakers again.
const PAUSE_RECHECK: Duration = Duration::from_millis(250);

/// The outbound half running in a host.
pub struct OutboundHalf {
    /// The driver, shared with redrive and the admin API.
    pub driver: Arc<OutboundDriver>,
    /// The consumers and lanes; each ends when the host stops.
    pub tasks: JoinSet<anyhow::Result<()>>,
    /// Each outbound route's consumer, for the lag figures: route, subjects, consumer.
    pub consumers: Vec<(Arc<str>, String, jetstream::consumer::PullConsumer)>,
}

/// The outbound driver of `config`'s targets and gates, calling plugins through `calls`.
pub async fn driver(
    js: &jetstream::Context,
    config: &Config,
    calls: PluginCalls,
    observer: Arc<Observer>,
) -> anyhow::Result<OutboundDriver> {
    let mut targets = BTreeMap::new();
    for (name, target) in &config.targets {
        targets.insert(name.clone(), Arc::new(Target::new(name, target, js)?));
    }
    let route_targets = config
        .outbound
        .iter()
        .map(|(name, route)| (name.clone(), route.targets.clone()))
        .collect();
    let gates: BTreeMap<_, _> = config
        .outbound
        .iter()
        .filter_map(|(name, route)| route.gate.map(|g| (name.clone(), g)))
        .collect();
    let visibility = if gates.is_empty() {
        None
    } else {
        Some(
            Visibility::open(js, &config.projection)
                .await
                .context("the posting gates read the projection, which cannot be opened")?,
        )
    };
    Ok(OutboundDriver::new(
        calls,
        targets,
        route_targets,
        GateCheck::new(gates, visibility, observer.clone()),
        js.clone(),
        observer,
    ))
}

/// Starts every outbound route of `table`: its consumer on the CANONICAL stream and its lanes.
pub async fn start(
    js: &jetstream::Context,
    config: &Config,
    table: &RouteTable,
    calls: PluginCalls,
    observer: Arc<Observer>,
    shutdown: CancellationToken,
) -> anyhow::Result<OutboundHalf> {
    let driver = Arc::new(driver(js, config, calls, observer).await?);
    let mut tasks = JoinSet::new();
    let mut consumers = Vec::new();
    for route in table.outbound() {
        let consumer = millrace_transport::route_consumer(
            js,
            &config.streams.canonical,
            &route.name,
            &route.subjects,
            route.ack_wait,
        )
        .await?;
        consumers.push((
            route.name.clone(),
            route.subjects.join(","),
            consumer.clone(),
        ));
        let lanes = config.host.partitions.max(1);
        let mut senders = Vec::with_capacity(lanes);
        for _ in 0..lanes {
            // One event in hand per lane and none queued: a paused route holds few events.
            let (tx, mut rx) = mpsc::channel::<jetstream::Message>(1);
            let (driver, route, stop) = (driver.clone(), route.clone(), shutdown.clone());
            tasks.spawn(async move {
                loop {
                    let message = tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        message = rx.recv() => message,
                    };
                    let Some(message) = message else { break };
                    post(&driver, &route, message, &stop).await;
                }
                Ok(())
            });
            senders.push(tx);
        }
        tasks.spawn(pull(
            consumer,
            route.clone(),
            driver.targets_of(&route.name),
            senders,
            shutdown.clone(),
        ));
        tracing::info!(
            route = &*route.name,
            plugin = route.active().id(),
            subjects = ?route.subjects,
            "outbound route serving"
        );
    }
    Ok(OutboundHalf {
        driver,
        tasks,
        consumers,
    })
}

/// Posts one event, then acks it, or leaves it to redelivery after a host failure.
async fn post(
    driver: &OutboundDriver,
    route: &Route,
    message: jetstream::Message,
    stop: &CancellationToken,
) {
    let input = EventInput {
        subject: message.subject.to_string(),
        payload: message.payload.clone(),
        sequence: message.info().map_or(0, |i| i.stream_sequence),
    };
    match driver
        .process(route, &input, &Mode::LIVE, &message, stop)
        .await
    {
        Ok(_) => {
            if let Err(e) = message.double_ack().await {
                tracing::warn!(
                    route = &*route.name,
                    sequence = input.sequence,
                    "ack failed, JetStream will redeliver: {e}"
                );
            }
        }
        Err(e) => {
            tracing::warn!(
                route = &*route.name,
                sequence = input.sequence,
                "the event will be redelivered: {e}"
            );
            let _ = message
                .ack_with(AckKind::Nak(Some(REDELIVER_AFTER_HOST_FAILURE)))
                .await;
        }
    }
}

/// The lane of an event: by its business key, so the events of one key go in order.
fn lane(message: &jetstream::Message, lanes: usize) -> usize {
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        subject: Option<&'a str>,
    }
    let key = serde_json::from_slice::<Key<'_>>(&message.payload)
        .ok()
        .and_then(|k| k.subject)
        .unwrap_or(message.subject.as_str());
    millrace_core::subjects::lane(key, lanes)
}

/// Pulls a route's events into its lanes until shutdown, pausing while a target of the route
/// is down (its breaker open): the events stay on the stream, nothing is retried in a loop.
async fn pull(
    consumer: jetstream::consumer::PullConsumer,
    route: Arc<Route>,
    targets: Vec<Arc<Target>>,
    lanes: Vec<mpsc::Sender<jetstream::Message>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pause = || tokio::time::sleep(Duration::from_millis(500));
    loop {
        let opened = consumer
            .stream()
            .max_messages_per_batch(lanes.len().max(1))
            .messages();
        let mut messages = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            opened = opened => match opened {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(route = &*route.name, "cannot pull events, retrying: {e}");
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
                    let mut waited = Duration::ZERO;
                    while targets.iter().any(|t| t.breaker.is_open()) {
                        tokio::select! {
                            () = shutdown.cancelled() => return Ok(()),
                            () = tokio::time::sleep(PAUSE_RECHECK) => {}
                        }
                        waited += PAUSE_RECHECK;
                        if waited >= Duration::from_secs(5) {
                            message.still_working().await;
                            waited = Duration::ZERO;
                        }
                    }
                    let lane = lane(&message, lanes.len());
                    let sent = tokio::select! {
                        () = shutdown.cancelled() => return Ok(()),
                        sent = lanes[lane].send(message) => sent,
                    };
                    if sent.is_err() {
                        return Ok(());
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(route = &*route.name, "pulling events: {e}");
                    pause().await;
                }
                None => break,
            }
        }
        pause().await;
    }
}
