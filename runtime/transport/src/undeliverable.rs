//! Raw messages JetStream gave up delivering: a route's consumer delivers a message at most
//! `max_deliveries` times without an ack, then publishes an advisory
//! ([`subjects::max_deliveries_advisories`]), which the UNDELIVERABLE stream keeps so that a
//! host reads each one once, even when none was running at the time.
//!
//! Two kinds of message end there. One the NATS client cannot read: async-nats drops its
//! connection on a header block that is not UTF-8 text or has a line without `:` (a publisher
//! writing a Latin-1 value), so the host never sees the message and JetStream redelivers it
//! after every `ack_wait`. And one the host took in and failed on every time (a host failure is
//! redelivered, never dead-lettered, while there are deliveries left). Either way the message
//! is read through the JetStream API ([`crate::stored`]), whose JSON answer carries the header
//! block as bytes the client does not parse, so that a host can dead-letter it.

use anyhow::Context;
use async_nats::jetstream::{self, consumer};
use serde::Deserialize;

use millrace_core::config::StreamsConfig;
use millrace_core::subjects;

/// The durable consumer of the UNDELIVERABLE stream that hosts share.
pub const CONSUMER: &str = "millrace_undeliverable";

/// JetStream's `io.nats.jetstream.advisory.v1.max_deliver`.
#[derive(Debug, Clone, Deserialize)]
pub struct Advisory {
    /// The stream of the message.
    pub stream: String,
    /// The consumer that gave up.
    pub consumer: String,
    /// The message's stream sequence.
    pub stream_seq: u64,
    /// How often it was delivered.
    pub deliveries: u64,
}

/// Opens (creating when missing) the consumer of the UNDELIVERABLE stream, filtered by
/// `streams.raw`'s advisories.
pub async fn advisories(
    js: &jetstream::Context,
    streams: &StreamsConfig,
) -> anyhow::Result<consumer::PullConsumer> {
    let stream = js
        .get_stream(&streams.undeliverable)
        .await
        .with_context(|| format!("cannot open the stream {}", streams.undeliverable))?;
    stream
        .get_or_create_consumer(
            CONSUMER,
            consumer::pull::Config {
                durable_name: Some(CONSUMER.to_owned()),
                filter_subject: subjects::max_deliveries_advisories(&streams.raw),
                ack_policy: consumer::AckPolicy::Explicit,
                // No limit: a host settles or gives up on each advisory itself (a host failure
                // is tried again until it is mended; see the host's `lanes::undeliverable`).
                max_deliver: -1,
                ..Default::default()
            },
        )
        .await
        .map_err(anyhow::Error::new)
        .with_context(|| {
            format!(
                "cannot open the consumer {CONSUMER} of the stream {}",
                streams.undeliverable
            )
        })
}
