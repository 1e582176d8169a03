//! The durable pull consumers of the routes: their names (and the names older hosts gave
//! them), and opening one, created, updated or taken over from its predecessors.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::{self, consumer};

/// The name older hosts gave the consumer of one route subject, when they kept one per
/// subject: `millrace_<route>__<subject>` with `*` and `>` spelled out.
pub fn consumer_name(route: &str, subject: &str) -> String {
    let subject: String = subject
        .split('.')
        .map(|t| match t {
            "*" => "_star_",
            ">" => "_all_",
            t => t,
        })
        .collect::<Vec<_>>()
        .join("_");
    format!("millrace_{route}__{subject}")
}

/// The durable consumer name of a route. A route with one subject keeps the name it had when
/// hosts kept one consumer per subject, so an upgraded host goes on from where the old one
/// stopped; a route with several subjects has one consumer named after the route alone.
pub fn route_consumer_name(route: &str, subjects: &[String]) -> String {
    match subjects {
        [subject] => consumer_name(route, subject),
        _ => format!("millrace_{route}"),
    }
}

/// The subjects a consumer filters on, whichever of the two fields holds them.
fn filters(filter_subject: &str, filter_subjects: &[String]) -> Vec<String> {
    if filter_subjects.is_empty() && !filter_subject.is_empty() {
        vec![filter_subject.to_owned()]
    } else {
        filter_subjects.to_vec()
    }
}

/// Opens the durable pull consumer of a route: one consumer filtered by all the route's
/// subjects, created when missing, and updated in place (keeping its position) when the route's
/// subjects, `ack_wait` or `max_deliveries` changed. Several hosts may open it at once.
///
/// `max_deliveries` (none: no limit) is how often JetStream delivers one message without an
/// ack before it gives up on it and publishes an advisory ([`crate::undeliverable`]).
///
/// A new consumer takes over from the consumers it replaces (the per-subject ones of older
/// hosts, or the route's consumer under its other name when the route went from one subject to
/// several or back): it starts at the oldest message any of them still had to deliver, and they
/// are deleted. Without predecessors it starts at the beginning of the stream. A subject added
/// to a route is consumed from the route's position on; `millrace replay` maps older messages.
pub async fn route_consumer(
    js: &jetstream::Context,
    raw_stream: &str,
    route: &str,
    subjects: &[String],
    ack_wait: Duration,
    max_deliveries: Option<u32>,
) -> anyhow::Result<consumer::PullConsumer> {
    let mut stream = js
        .get_stream(raw_stream)
        .await
        .with_context(|| format!("cannot open the raw stream {raw_stream}"))?;
    let name = route_consumer_name(route, subjects);
    let cannot = || {
        format!(
            "cannot create the consumer `{name}` of route `{route}` for {subjects:?} on stream \
             {raw_stream}: is every subject captured by the stream (`streams.raw_subjects`)?"
        )
    };
    let (filter_subject, filter_subjects) = match subjects {
        [subject] => (subject.clone(), Vec::new()),
        _ => (String::new(), subjects.to_vec()),
    };
    let mut config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        filter_subject,
        filter_subjects,
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait,
        max_deliver: max_deliveries.map_or(-1, i64::from),
        max_ack_pending: 1024,
        ..Default::default()
    };
    match stream.consumer_info(&name).await {
        Ok(info) => {
            let current = &info.config;
            if filters(&current.filter_subject, &current.filter_subjects) == subjects
                && current.ack_wait == ack_wait
                && current.max_deliver == config.max_deliver
            {
                return stream
                    .get_consumer(&name)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))
                    .with_context(cannot);
            }
            // Where a consumer starts cannot change: keep the existing one's.
            config.deliver_policy = current.deliver_policy;
            // The last host to start sets them: hosts sharing a route should share its section.
            tracing::warn!(
                consumer = &*name,
                ?subjects,
                was_subjects = ?filters(&current.filter_subject, &current.filter_subjects),
                was_ack_wait = ?current.ack_wait,
                was_max_deliver = current.max_deliver,
                "updating the route's consumer to this config's subjects, ack_wait and \
                 max_deliveries; every host serving the route should have the same settings, \
                 or each one started sets its own"
            );
            return stream
                .update_consumer(config)
                .await
                .map_err(anyhow::Error::new)
                .with_context(cannot);
        }
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::Error::new(e)).with_context(cannot),
    }

    let mut predecessors: Vec<String> = subjects.iter().map(|s| consumer_name(route, s)).collect();
    predecessors.push(route_consumer_name(route, &[]));
    predecessors.retain(|p| *p != name);
    predecessors.dedup();
    let last = stream
        .info()
        .await
        .with_context(|| format!("cannot read the raw stream {raw_stream}"))?
        .state
        .last_sequence;
    let mut start: Option<u64> = None;
    let mut replaced = Vec::new();
    for predecessor in predecessors {
        let info = match stream.consumer_info(&predecessor).await {
            Ok(info) => info,
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => continue,
            Err(e) => return Err(anyhow::Error::new(e)).with_context(cannot),
        };
        // The oldest message it may still have to deliver; none when it is done.
        let next = if info.num_pending == 0 && info.num_ack_pending == 0 {
            last + 1
        } else {
            info.ack_floor.stream_sequence + 1
        };
        start = Some(start.map_or(next, |s| s.min(next)));
        replaced.push(predecessor);
    }
    if let Some(start_sequence) = start {
        config.deliver_policy = consumer::DeliverPolicy::ByStartSequence { start_sequence };
    }
    let consumer = match stream.create_consumer(config).await {
        Ok(consumer) => consumer,
        // Another host starting at the same moment created it first.
        Err(e) => match stream.get_consumer(&name).await {
            Ok(consumer) => consumer,
            Err(_) => return Err(anyhow::Error::new(e)).with_context(cannot),
        },
    };
    for predecessor in replaced {
        tracing::info!(
            consumer = &*name,
            replaced = &*predecessor,
            "the route's consumer takes over from an older one, which is deleted"
        );
        match stream.delete_consumer(&predecessor).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(
                consumer = &*predecessor,
                "cannot delete the replaced consumer: {e}; delete it by hand (nats consumer rm {raw_stream} {predecessor})"
            ),
        }
    }
    Ok(consumer)
}
