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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, AckKind};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::driver::OutboundDriver;
use self::gate::GateCheck;
use self::input::EventInput;
use self::target::Target;
use crate::delivery::Mode;
use crate::lanes::{Dispatch, Held, LaneWork, Lanes, pull_into};
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
    let driver = Arc::new(driver(js, config, calls, observer.clone()).await?);
    let mut tasks = JoinSet::new();
    let mut consumers = Vec::new();
    for route in table.outbound() {
        let consumer = millrace_transport::route_consumer(
            js,
            &config.streams.canonical,
            &route.name,
            &route.subjects,
            route.ack_wait,
            route.max_deliveries,
        )
        .await?;
        consumers.push((
            route.name.clone(),
            route.subjects.join(","),
            consumer.clone(),
        ));
        // One event in hand per lane and none queued: a paused route holds few events; and
        // an event is posted start to end before the next (depth 0), never overtaken.
        let work = Arc::new(RoutePoster {
            driver: driver.clone(),
            route: route.clone(),
            stop: shutdown.clone(),
            parked: Arc::default(),
        });
        let partitions = config.host.partitions.max(1);
        let lanes = Lanes::start(work, partitions, 1, 0, &shutdown, &mut tasks);
        let feed = OutboundFeed {
            targets: driver.targets_of(&route.name),
        };
        let (stop, name, seen) = (shutdown.clone(), route.name.clone(), observer.clone());
        // Pulls one event per lane at a time (what the lanes have room for), so a paused
        // route holds few events.
        tasks.spawn(async move { pull_into(consumer, None, &name, seen, feed, lanes, stop).await });
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

/// The outbound lanes' work: posts one event, then acks it, or leaves it to redelivery after
/// a host failure.
///
/// An event its route's gate holds leaves its lane: it waits parked, with the later events of
/// its business key queued behind it, so that the key's order holds, while the lane goes on
/// with the other keys. Held in its lane, it kept the keys sharing that lane waiting, and
/// enough held events (one lot's consumptions filled a route's 16 lanes) stopped the route for
/// every lot and site until the hold was released. Parked events stay held messages (kept
/// from redelivery) and count towards the consumer's `max_ack_pending`.
struct RoutePoster {
    driver: Arc<OutboundDriver>,
    route: Arc<Route>,
    stop: CancellationToken,
    parked: Arc<Mutex<Parked>>,
}

/// The parked events by business key, each key's in arrival order; a key is here while the
/// task posting its events runs.
type Parked = HashMap<String, VecDeque<(jetstream::Message, Option<Held>)>>;

impl LaneWork for RoutePoster {
    type Item = jetstream::Message;
    type Begun = ();

    async fn begin(&self, message: jetstream::Message) {
        post(&self.driver, &self.route, message, &self.stop).await;
    }

    async fn finish(&self, (): ()) {}

    async fn begin_held(
        &self,
        message: jetstream::Message,
        held: Option<Held>,
    ) -> ((), Option<Held>) {
        let key = business_key(&message).into_owned();
        // Behind an earlier event of its key that is parked: after it, whatever the gate says.
        // (The events of one key come through one lane, one at a time, so no other event of
        // the key is between this check and the queueing.)
        if let Some(queue) = lock(&self.parked).get_mut(&key) {
            queue.push_back((message, held));
            return ((), None);
        }
        if !self
            .driver
            .held_at_gate(&self.route, &message.payload)
            .await
        {
            post(&self.driver, &self.route, message, &self.stop).await;
            return ((), held);
        }
        lock(&self.parked).insert(key.clone(), VecDeque::new());
        let (driver, route, stop, parked) = (
            self.driver.clone(),
            self.route.clone(),
            self.stop.clone(),
            self.parked.clone(),
        );
        tokio::spawn(async move {
            let mut next = Some((message, held));
            while let Some((message, held)) = next {
                // `process` waits at the gate, listed as held, until it lets the event pass.
                post(&driver, &route, message, &stop).await;
                drop(held);
                let mut parked = lock(&parked);
                next = parked.get_mut(&key).and_then(VecDeque::pop_front);
                if next.is_none() {
                    parked.remove(&key);
                }
            }
        });
        ((), None)
    }
}

fn lock(parked: &Mutex<Parked>) -> std::sync::MutexGuard<'_, Parked> {
    parked
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands an outbound route's events to the lane of their business key, once none of the
/// route's targets is down (its breaker open): the events stay on the stream meanwhile, nothing
/// is retried in a loop.
struct OutboundFeed {
    targets: Vec<Arc<Target>>,
}

impl Dispatch for OutboundFeed {
    type Item = jetstream::Message;

    fn dispatch(&self, message: jetstream::Message, lanes: usize) -> (usize, jetstream::Message) {
        (lane(&message, lanes), message)
    }

    /// The event waiting here is held (kept from redelivery) by the puller meanwhile.
    async fn ready(&self, _message: &jetstream::Message) {
        while self.targets.iter().any(|t| t.breaker.pausing()) {
            tokio::time::sleep(PAUSE_RECHECK).await;
        }
    }
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
    match driver.process(route, &input, &Mode::LIVE, stop).await {
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
    millrace_core::subjects::lane(&business_key(message), lanes)
}

/// An event's business key (its envelope's `subject`), else the subject it came on.
fn business_key(message: &jetstream::Message) -> std::borrow::Cow<'_, str> {
    #[derive(serde::Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        subject: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Key<'_>>(&message.payload)
        .ok()
        .and_then(|k| k.subject)
        .unwrap_or(std::borrow::Cow::Borrowed(message.subject.as_str()))
}
