//! The raw messages JetStream gave up delivering to a route (see
//! [`millrace_transport::undeliverable`]). Each host reads the UNDELIVERABLE stream's
//! advisories from one shared consumer and takes each message from RAW through the JetStream
//! API, which the NATS client's header parser is not part of:
//!
//! - a message the client can read goes through the route's pipeline like a live one. It was
//!   given up on because the host failed on it every time, or because it kept arriving beside
//!   one the client cannot read, in the same pull, and was lost with the connection each time;
//! - a message the client cannot read is dead-lettered, kind `undeliverable`.
//!
//! A host failure on the way leaves the advisory to be tried again, so no raw message ends
//! nowhere.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::delivery::{Delivery, Mode};
use crate::pipeline::{Pipeline, RawInput};
use crate::routes::RouteTable;
use millrace_core::config::StreamsConfig;
use millrace_transport as transport;
use millrace_transport::stored;
use millrace_transport::undeliverable::Advisory;

/// How soon an advisory this host could not settle (a host failure, a route another host
/// serves) is tried again the first time; each further try waits twice as long, up to
/// [`TRY_AGAIN_MAX`].
const TRY_AGAIN: Duration = Duration::from_secs(10);

/// The longest wait between tries of one advisory: during a lasting NATS failure, a thousand
/// given-up messages retried every 10 s were a hundred failing pipeline runs (and two log lines
/// each) a second.
const TRY_AGAIN_MAX: Duration = Duration::from_secs(300);

/// How long the `tries`-th failed try of an advisory waits before the next.
fn try_again_after(tries: i64) -> Duration {
    let doublings = u32::try_from(tries.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    TRY_AGAIN.saturating_mul(1 << doublings).min(TRY_AGAIN_MAX)
}

/// How often an advisory naming a consumer no route of this host has is tried again before it
/// is given up with an error in the log (another host serves the route, or none does any more;
/// the message stays in RAW).
const FOREIGN_TRIES: i64 = 30;

/// Settles what the advisories of `streams.raw` (read from `consumer`,
/// [`millrace_transport::undeliverable::advisories`]) name, until `shutdown`: through
/// `driver`'s pipeline, or as `delivery`'s dead letters.
pub async fn run<D: AsRef<Pipeline>>(
    consumer: jetstream::consumer::PullConsumer,
    driver: Arc<D>,
    delivery: Delivery,
    client: async_nats::Client,
    streams: StreamsConfig,
    table: Arc<RouteTable>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // The first pull may meet a connection dropped over an unreadable message: try again.
    let mut advisories = loop {
        match consumer.messages().await {
            Ok(advisories) => break advisories,
            Err(e) => {
                tracing::warn!(
                    "cannot read the advisories of undeliverable raw messages yet, trying again \
                     in {TRY_AGAIN:?}: {e}"
                );
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(TRY_AGAIN) => {}
                }
            }
        }
    };
    let settler = Settler {
        pipeline: driver.as_ref().as_ref(),
        delivery: &delivery,
        client: &client,
        raw_stream: &streams.raw,
        table: &table,
    };
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = advisories.next() => next,
        };
        let message = match next {
            None => return Ok(()),
            Some(Err(e)) => {
                tracing::debug!("reading the advisories of undeliverable raw messages: {e}");
                continue;
            }
            Some(Ok(message)) => message,
        };
        let tries = message.info().map_or(1, |info| info.delivered);
        let settled = match serde_json::from_slice::<Advisory>(&message.payload) {
            Err(e) => {
                tracing::warn!("skipped an advisory that is not JetStream's max_deliver: {e}");
                Ok(())
            }
            Ok(advisory) if advisory.stream != streams.raw => Ok(()),
            Ok(advisory) => settler.settle(&advisory, tries).await,
        };
        let answer = match settled {
            Ok(()) => AckKind::Ack,
            Err(e) => {
                let wait = try_again_after(tries);
                tracing::warn!(
                    "an undeliverable raw message is not settled yet, trying again in {}s: {e:#}",
                    wait.as_secs()
                );
                AckKind::Nak(Some(wait))
            }
        };
        if let Err(e) = message.ack_with(answer).await {
            tracing::debug!("answering an advisory failed, JetStream will redeliver it: {e}");
        }
    }
}

/// What settling an advisory needs.
struct Settler<'a> {
    pipeline: &'a Pipeline,
    delivery: &'a Delivery,
    client: &'a async_nats::Client,
    raw_stream: &'a str,
    table: &'a RouteTable,
}

impl Settler<'_> {
    /// Maps or dead-letters the message `advisory` names (its `tries`-th reading); an error
    /// leaves the advisory to be tried again.
    async fn settle(&self, advisory: &Advisory, tries: i64) -> anyhow::Result<()> {
        let (raw_stream, sequence) = (self.raw_stream, advisory.stream_seq);
        let Some(route) =
            self.table.routes().iter().find(|r| {
                transport::route_consumer_name(&r.name, &r.subjects) == advisory.consumer
            })
        else {
            let why = format!(
                "JetStream gave up delivering message {sequence} of {raw_stream} to consumer \
                 {}, which no route of this host has (another host's route, or one since \
                 removed)",
                advisory.consumer
            );
            if tries < FOREIGN_TRIES {
                anyhow::bail!(why);
            }
            tracing::error!(
                "{why}; after {tries} tries this host gives it up: it stays in {raw_stream} at \
                 sequence {sequence}"
            );
            return Ok(());
        };
        let Some(stored) = stored::stored_message(self.client, raw_stream, sequence).await? else {
            tracing::warn!(
                route = &*route.name,
                raw_sequence = sequence,
                "JetStream gave up delivering a raw message that {raw_stream} no longer holds"
            );
            return Ok(());
        };
        match RawInput::read(stored, raw_stream) {
            Err(unreadable) => {
                self.delivery
                    .unreadable(
                        route,
                        raw_stream,
                        advisory,
                        &unreadable.subject,
                        &unreadable.payload,
                        &unreadable.why,
                    )
                    .await
            }
            Ok(input) => {
                tracing::warn!(
                    route = &*route.name,
                    raw_sequence = sequence,
                    deliveries = advisory.deliveries,
                    "JetStream gave up delivering a raw message the host can read: mapping it now"
                );
                let processed = self.pipeline.process(route, &input, &Mode::LIVE).await;
                processed.outcome.map(|_| ()).map_err(anyhow::Error::from)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_wait_longer_each_time_up_to_five_minutes() {
        let waits: Vec<u64> = [1, 2, 3, 5, 6, 100, 0, -3]
            .into_iter()
            .map(|tries| try_again_after(tries).as_secs())
            .collect();
        assert_eq!(waits, [10, 20, 40, 160, 300, 300, 10, 10]);
    }
}
