//! The dead letter of a raw message the NATS client cannot read (see
//! [`millrace_transport::undeliverable`]): it never reached a plugin, so the letter says why and
//! keeps its payload, without the headers the client refuses.

use crate::delivery::dead_letter::DeadLetter;
use crate::observability::At;
use crate::routes::Route;
use millrace_core::rules::Failure;
use millrace_transport as transport;
use millrace_transport::undeliverable::Advisory;

use super::Delivery;

impl Delivery {
    /// Stores the dead letter (kind `undeliverable`) of the message of `raw_stream` that
    /// `advisory` names, published on `subject` with `payload` and headers the client cannot
    /// read (`why`).
    pub async fn unreadable(
        &self,
        route: &Route,
        raw_stream: &str,
        advisory: &Advisory,
        subject: &str,
        payload: &bytes::Bytes,
        why: &str,
    ) -> anyhow::Result<()> {
        let (sequence, deliveries) = (advisory.stream_seq, advisory.deliveries);
        let failure = Failure::Undeliverable(format!(
            "the NATS client cannot read it: {why}. It was delivered {deliveries} times and \
             never reached the plugin. This letter keeps its payload but not its headers \
             ({raw_stream}'s message {sequence} has them as sent): have the publisher send \
             headers NATS clients read, a `NATS/1.0` line then `Name: value` lines in UTF-8"
        ));
        let plugin = route.active().id();
        tracing::warn!(
            route = &*route.name,
            raw_sequence = sequence,
            subject,
            error_kind = failure.kind(),
            "dead-lettered: {failure}"
        );
        let letter = DeadLetter {
            route: &route.name,
            plugin: &plugin,
            raw_subject: subject,
            raw_sequence: sequence,
            raw_id: &transport::raw_identity(None, raw_stream, sequence),
            raw_headers: None,
            not_copied: None,
            attempts: 0,
            failure: &failure,
        };
        self.dead_letter(letter, payload, None).await?;
        self.observer.dead_lettered(
            At {
                route: &route.name,
                plugin_version: &plugin,
            },
            &failure,
            route.site(subject),
            route.partner(subject),
        );
        Ok(())
    }
}
