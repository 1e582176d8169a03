//! The in-process services of the bench: subscribe (core NATS) or pull (JetStream), map, publish.
//!
//! One loop serves arms (a), (b) and the core-NATS figures of (c) and (d); only the mapping step
//! differs. Like the millrace host it keeps per-subject order with ordered lanes (one message
//! of a subject in flight at a time, subjects spread over lanes by the host's own hash). On
//! JetStream it consumes through the host's durable pull consumers, publishes the events
//! pipelined, waits until JetStream stored them all, and only then acks: at-least-once, as the
//! host. The JetStream figures of (c) and (d) come from the millrace host itself
//! (`millrace::host::HostBuilder`), not from this loop.

use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::{self, consumer::PullConsumer};
use async_nats::{HeaderMap, header};
use bytes::Bytes;
use futures::StreamExt;
use millrace::canonical::{CloudEvent, Lineage, MappedEvent};
use millrace::config::Limits;
use millrace::sandbox::{PluginComponent, RawMessage, RouteContext};
use millrace::workers::WorkerPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Ordered lanes, as the host's default `host.partitions`.
pub const LANES: usize = 16;

/// How a service turns one raw message into what it publishes.
pub enum Mapping {
    /// Arm (a): the raw message republished as it is.
    Passthrough,
    /// Arm (b): the plugins' mapping code compiled into this binary, on its own threads.
    Native(crate::native::NativePool),
    /// Arms (c) and (d) on core NATS: the millrace worker pool and sandbox, the host's call path.
    Sandbox {
        /// The host's worker pool.
        pool: WorkerPool,
        /// The shift-report plugin and its route.
        shift: (Arc<PluginComponent>, Arc<RouteContext>),
        /// The 856 plugin and its route.
        asn: (Arc<PluginComponent>, Arc<RouteContext>),
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
    /// The route context of the sandbox arms.
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
            Mapping::Sandbox {
                pool,
                shift,
                asn: notice,
            } => {
                let (plugin, route) = if asn { notice } else { shift };
                let raw = RawMessage {
                    subject: incoming.subject.clone(),
                    headers: Vec::new(),
                    payload: incoming.payload.to_vec(),
                };
                let events = pool
                    .call(plugin.clone(), route.clone(), raw)
                    .await?
                    .map_err(|e| anyhow::anyhow!("plugin call failed: {e}"))?;
                (events, plugin.name.clone(), plugin.version.clone())
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
        let body = serde_json::to_vec(&envelope).context("cannot encode an event")?;
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

/// Runs a service on its own connection until `stop`.
pub async fn run(
    client: async_nats::Client,
    source: Source,
    mapping: Arc<Mapping>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let js = jetstream::new(client.clone());
    let jetstream_mode = matches!(source, Source::JetStream(_));
    let mut lanes = Vec::with_capacity(LANES);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..LANES {
        let (tx, mut rx) = mpsc::channel::<Incoming>(32);
        let (client, js, mapping) = (client.clone(), js.clone(), mapping.clone());
        tasks.spawn(async move {
            while let Some(incoming) = rx.recv().await {
                if let Err(e) = process(&client, &js, &mapping, incoming, jetstream_mode).await {
                    eprintln!("bench service: {e:#}");
                }
            }
        });
        lanes.push(tx);
    }
    let mut feeds = tokio::task::JoinSet::new();
    match source {
        Source::Core => {
            let mut subscription = client.subscribe("raw.>").await?;
            let lanes = lanes.clone();
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
                    if lanes[lane].send(incoming).await.is_err() {
                        return;
                    }
                }
            });
        }
        Source::JetStream(consumers) => {
            for consumer in consumers {
                let mut messages = consumer.messages().await?;
                let lanes = lanes.clone();
                feeds.spawn(async move {
                    while let Some(Ok(m)) = messages.next().await {
                        let sequence = m.info().map_or(0, |i| i.stream_sequence);
                        let incoming = Incoming {
                            subject: m.subject.to_string(),
                            headers: m.headers.clone(),
                            payload: m.payload.clone(),
                            sequence,
                            message: Some(m),
                        };
                        let lane = millrace::subjects::lane(&incoming.subject, lanes.len());
                        if lanes[lane].send(incoming).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    }
    stop.cancelled().await;
    feeds.abort_all();
    drop(lanes);
    tasks.abort_all();
    Ok(())
}

async fn process(
    client: &async_nats::Client,
    js: &jetstream::Context,
    mapping: &Mapping,
    incoming: Incoming,
    jetstream_mode: bool,
) -> anyhow::Result<()> {
    let outputs = mapping.outputs(&incoming).await?;
    if !jetstream_mode {
        for output in outputs {
            client
                .publish_with_headers(output.subject, output.headers, output.body)
                .await?;
        }
        return Ok(());
    }
    let mut acks = Vec::with_capacity(outputs.len());
    for output in outputs {
        acks.push(
            js.publish_with_headers(output.subject, output.headers, output.body)
                .await?,
        );
    }
    for ack in acks {
        ack.await.context("JetStream did not store an event")?;
    }
    if let Some(message) = incoming.message {
        message
            .ack()
            .await
            .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
    }
    Ok(())
}
