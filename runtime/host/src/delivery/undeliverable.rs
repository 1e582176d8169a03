//! The dead letter of a raw message the NATS client cannot read (see
//! [`millrace_transport::undeliverable`]): it never reached a plugin, so the letter says why and
//! keeps its payload, without the headers the client refuses.

use crate::pipeline::input::RawInput;
use crate::routes::Route;
use millrace_core::rules::Failure;
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
        // Without its headers, as the letter keeps it: its identity is its stream and sequence.
        let raw = RawInput::new(
            subject.to_owned(),
            None,
            payload.clone(),
            raw_stream,
            sequence,
        );
        let plugin = route.active().id();
        self.dead_lettered(route, &plugin, &raw, None, 0, &failure)
            .await
    }
}
