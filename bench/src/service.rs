//! The in-process services of the bench: subscribe (core NATS) or pull (JetStream), map, publish.
//!
//! One service serves arms (a), (b) and the core-NATS figures of (c) and (d); only the mapping
//! step differs. It runs on the host's own lanes (`millrace::lanes`): per-subject order (the
//! messages of a subject mapped one at a time and their events sent in order, subjects spread
//! over lanes by the host's own hash). On JetStream it consumes through the host's durable pull
//! consumers with the host's pull loop, and, as the host, maps a lane's next message while the
//! last ones' events await their acks, acking each raw message once JetStream stored all its
//! events: at-least-once. On core NATS the (c) and (d) arms are the host's pipeline
//! (`Pipeline::map`: version pick, admission, breaker, retries, event checks) on the host's
//! routes, then the host's envelope and a core publish. The JetStream figures of (c) and (d)
//! come from the millrace host itself (`millrace::host::HostBuilder`), not from this service.

use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::PullConsumer, context::PublishAckFuture};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use futures::StreamExt;
use millrace::canonical::{CloudEvent, Lineage, MappedEvent};
use millrace::config::Limits;
use millrace::lanes::{Dispatch, LaneWork, Lanes, pull_into};
use millrace::observability::Observer;
use millrace::pipeline::{Pipeline, RawInput};
use millrace::routes::RouteTable;
use millrace::sandbox::RouteContext;
use tokio_util::sync::CancellationToken;

/// Ordered lanes, as the host's default `host.partitions`.
pub const LANES: usize = 16;

/// How a service turns one raw message into what it publishes.
pub enum Mapping {
    /// Arm (a): the raw message republished as it is.
    Passthrough,
    /// Arm (b): the plugins' mapping code compiled into this binary, on its own threads.
    Native(crate::native::NativePool),
    /// Arms (c) and (d) on core NATS: the host's pipeline on the host's routes (`shift`,
    /// `asn`), loaded from the arm's host configuration.
    Pipeline {
        /// The host's pipeline (its worker pool and sandbox sessions).
        pipeline: Box<Pipeline>,
        /// The routes.
        routes: RouteTable,
    },
}

/// One message to publish.
pub struct Output {
    subject: String,
    headers: HeaderMap,
    body: Bytes,
}

/// A raw message as a service receives it.
struct Incoming {
    subject: String,
    headers: Option<HeaderMap>,
    payload: Bytes,
    sequence: u64,
    message: Option<jetstream::Message>,
}

impl Mapping {
    /// A route context for calling a plugin on the worker pool directly (`--calls`, the
    /// output check).
    pub fn route_context(name: &str) -> Arc<RouteContext> {
        let config = [("site".to_owned(), crate::SITE.to_owned())]
            .into_iter()
            .collect();
        Arc::new(RouteContext {
            route: name.into(),
            config: Arc::new(config),
            limits: Limits::default(),
        })
    }

    async fn outputs(&self, incoming: &Incoming) -> anyhow::Result<Vec<Output>> {
        let asn = incoming.subject.ends_with(".856");
        let raw_id =
            millrace::transport::raw_identity(incoming.headers.as_ref(), "RAW", incoming.sequence);
        let (events, plugin, version) = match self {
            Mapping::Passthrough => {
                let tail = incoming.subject.trim_start_matches("raw.");
                return Ok(vec![Output {
                    subject: format!("canonical.passthrough.{tail}"),
                    headers: incoming.headers.clone().unwrap_or_default(),
                    body: incoming.payload.clone(),
                }]);
            }
            Mapping::Native(pool) => {
                let events = pool.call(&incoming.subject, &incoming.payload).await?;
                let events = millrace::rules::accept(events, &Limits::default())
                    .map_err(|e| anyhow::anyhow!("invalid events: {e}"))?;
                let plugin = if asn { "x12-856" } else { "mes-shift-report" };
                (events, plugin.to_owned(), "1.0.0".to_owned())
            }
            Mapping::Pipeline { pipeline, routes } => {
                let name = if asn { "asn" } else { "shift" };
                let route = routes
                    .get(name)
                    .with_context(|| format!("no route {name}"))?;
                let input = RawInput::new(
                    incoming.subject.clone(),
                    incoming.headers.clone(),
                    incoming.payload.clone(),
                    "RAW",
                    incoming.sequence,
                );
                let mapped = pipeline
                    .map(route, &input)
                    .await
                    .map_err(|e| anyhow::anyhow!("host failure: {e}"))?;
                let events = mapped
                    .outcome
                    .map_err(|e| anyhow::anyhow!("plugin call failed: {e}"))?;
                (
                    events,
                    mapped.plugin.name.clone(),
                    mapped.plugin.version.clone(),
                )
            }
        };
        let lineage = Lineage {
            raw_id: &raw_id,
            system: if asn { "edi" } else { "mes" },
            route: if asn { "asn" } else { "shift" },
            plugin: &plugin,
            plugin_version: &version,
            raw_sequence: incoming.sequence,
        };
        envelopes(&events, &lineage)
    }
}

/// The CloudEvents of a message's events, as the host publishes them.
fn envelopes(events: &[MappedEvent], lineage: &Lineage<'_>) -> anyhow::Result<Vec<Output>> {
    let mut outputs = Vec::with_capacity(events.len());
    for (index, event) in events.iter().enumerate() {
        let envelope = CloudEvent::new(event, index, lineage);
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, envelope.id.as_str());
        headers.insert("Content-Type", "application/cloudevents+json");
        let body = envelope.to_json().context("cannot encode an event")?;
        outputs.push(Output {
            subject: CloudEvent::nats_subject(event),
            headers,
            body: body.into(),
        });
    }
    Ok(outputs)
}

/// Where a service reads from.
pub enum Source {
    /// A core subscription to `raw.>`.
    Core,
    /// The host's durable pull consumers of the two route subjects.
    JetStream(Vec<PullConsumer>),
}

/// Messages per lane whose events await their acks while the lane maps the next, as the host.
const DEPTH: usize = 16;

/// Runs a service on its own connection until `stop`.
pub async fn run(
    client: async_nats::Client,
    source: Source,
    mapping: Arc<Mapping>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let js = jetstream::new(client.clone());
    let jetstream_mode = matches!(source, Source::JetStream(_));
    let mut tasks = tokio::task::JoinSet::new();
    let work = Arc::new(Service {
        client: client.clone(),
        js,
        mapping,
        jetstream_mode,
    });
    let depth = if jetstream_mode { DEPTH } else { 0 };
    let lanes = Lanes::start(work, LANES, 32, depth, &stop, &mut tasks);
    let mut feeds = tokio::task::JoinSet::new();
    match source {
        Source::Core => {
            let mut subscription = client.subscribe("raw.>").await?;
            feeds.spawn(async move {
                while let Some(m) = subscription.next().await {
                    let incoming = Incoming {
                        subject: m.subject.to_string(),
                        headers: m.headers,
                        payload: m.payload,
                        sequence: 0,
                        message: None,
                    };
                    let lane = millrace::subjects::lane(&incoming.subject, lanes.len());
                    if !lanes.send(lane, incoming).await {
                        break;
                    }
                }
                Ok(())
            });
        }
        Source::JetStream(consumers) => {
            for consumer in consumers {
                let (lanes, stop) = (lanes.clone(), stop.clone());
                // The bench's own loop has no readiness to report: an observer no one reads.
                let unread = Arc::new(Observer::new());
                feeds.spawn(async move {
                    pull_into(consumer, None, "bench", unread, Feed, lanes, stop).await
                });
            }
        }
    }
    stop.cancelled().await;
    feeds.abort_all();
    tasks.abort_all();
    Ok(())
}

/// Hands raw messages pulled from JetStream to the lane of their subject.
struct Feed;

impl Dispatch for Feed {
    type Item = Incoming;

    fn dispatch(&self, m: jetstream::Message, lanes: usize) -> (usize, Incoming) {
        let sequence = m.info().map_or(0, |i| i.stream_sequence);
        let incoming = Incoming {
            subject: m.subject.to_string(),
            headers: m.headers.clone(),
            payload: m.payload.clone(),
            sequence,
            message: Some(m),
        };
        (millrace::subjects::lane(&incoming.subject, lanes), incoming)
    }
}

/// The lanes' work: map and publish (begin), then on JetStream await the acks and ack the raw
/// message (finish).
struct Service {
    client: async_nats::Client,
    js: jetstream::Context,
    mapping: Arc<Mapping>,
    jetstream_mode: bool,
}

/// A message whose events are sent: their acks and the raw message to ack.
type Sent = Option<(Vec<PublishAckFuture>, Option<jetstream::Message>)>;

impl LaneWork for Service {
    type Item = Incoming;
    type Begun = Sent;

    async fn begin(&self, incoming: Incoming) -> Sent {
        match self.publish(incoming).await {
            Ok(sent) => sent,
            Err(e) => {
                eprintln!("bench service: {e:#}");
                None
            }
        }
    }

    async fn finish(&self, sent: Sent) {
        let Some((acks, message)) = sent else { return };
        for ack in acks {
            if let Err(e) = ack.await {
                eprintln!("bench service: JetStream did not store an event: {e}");
                return;
            }
        }
        if let Some(message) = message
            && let Err(e) = message.ack().await
        {
            eprintln!("bench service: ack: {e}");
        }
    }
}

impl Service {
    async fn publish(&self, incoming: Incoming) -> anyhow::Result<Sent> {
        let outputs = self.mapping.outputs(&incoming).await?;
        if !self.jetstream_mode {
            for output in outputs {
                self.client
                    .publish_with_headers(output.subject, output.headers, output.body)
                    .await?;
            }
            return Ok(None);
        }
        let mut acks = Vec::with_capacity(outputs.len());
        for output in outputs {
            acks.push(
                self.js
                    .publish_with_headers(output.subject, output.headers, output.body)
                    .await?,
            );
        }
        Ok(Some((acks, incoming.message)))
    }
}
