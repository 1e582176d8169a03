//! What the host reads from the NATS server besides messages: each route consumer's lag (the
//! pending-messages metrics) and whether the server answers at all.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use super::Observer;

/// async-nats pings its server only after a whole ping interval in which the client sent
/// nothing, and a host always sends (pulls, lag reads): a stalled or partitioned server kept a
/// host idle on it for minutes while the other nodes of the cluster had quorum. So every
/// `every` (`nats.ping_interval`) this asks the server for the JetStream account info (it
/// answers, or says no one does: bytes come in either way), and a server from which nothing
/// came for two intervals is left: the client reconnects to the next server of `nats.url`.
pub async fn liveness(client: async_nats::Client, every: Duration, shutdown: CancellationToken) {
    let received = || {
        client
            .statistics()
            .in_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let mut silent = 0;
    loop {
        let (before, started) = (received(), tokio::time::Instant::now());
        let probe = async {
            let _answer =
                tokio::time::timeout(every, client.request("$JS.API.INFO", bytes::Bytes::new()))
                    .await;
            tokio::time::sleep_until(started + every).await;
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = probe => {}
        }
        let connected = matches!(
            client.connection_state(),
            async_nats::connection::State::Connected
        );
        silent = if connected && received() == before {
            silent + 1
        } else {
            0
        };
        if silent >= 2 {
            tracing::warn!(
                "the NATS server has sent nothing for {} s; reconnecting (to the next server of \
                 nats.url when there is one)",
                (every * 2).as_secs()
            );
            silent = 0;
            if let Err(e) = client.force_reconnect().await {
                tracing::warn!("cannot reconnect to NATS: {e}");
            }
        }
    }
}

/// How often consumer lag is read from the server.
const LAG_INTERVAL: Duration = Duration::from_secs(2);

/// Reads every route consumer's pending count into the metrics until shutdown.
pub async fn lag(
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
