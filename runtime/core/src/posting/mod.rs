//! The outbound model: a canonical event as an outbound plugin receives it (read back from its
//! CloudEvent), the requests it renders, a target's response and the plugin's verdict. These
//! mirror `interface posting` of `wit/outbound@1.0.0` one for one; the sandbox converts.
//!
//! The types are `millrace-model`'s, the ones the SDK gives outbound plugins, so the host's
//! outbound driver, admission by golden fixtures, the dead letters and a plugin's own tests
//! read the same JSON. What only the host does stays here: the headers it owns and the
//! acknowledgements it publishes.

pub mod acknowledgement;

/// One canonical event as outbound plugins receive it (the SDK's `posting::Event`).
pub use millrace_model::posting::Event as CanonicalEvent;
pub use millrace_model::posting::{
    Answer, Envelope, Lineage, Method, NotCanonical, PostingFixture, RenderError, Request,
    Response, Verdict, body,
};

/// Headers a plugin may not set: the host owns them.
pub const HOST_HEADERS: [&str; 2] = ["authorization", "idempotency-key"];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canonical::EventData;

    #[test]
    fn an_event_reads_back_from_the_cloudevent_the_inbound_half_publishes() {
        use crate::canonical::{CloudEvent, Lineage, MappedEvent, ProductionCompletion, Quantity};
        let mapped = MappedEvent {
            site: "PLANT1".into(),
            occurred_at: "2026-11-30T03:00:00Z".into(),
            source_sequence: Some(42),
            source_transaction: Some("TX-7".into()),
            data: EventData::ProductionCompletion(ProductionCompletion {
                work_order: "WO-1".into(),
                operation: None,
                item: "ITEM-1".into(),
                lot: Some("LOT-1".into()),
                good_quantity: Quantity::new("5", "EA"),
                scrap_quantity: Quantity::new("0", "EA"),
                location: None,
            }),
        };
        let lineage = Lineage {
            raw_id: "msg-1",
            system: "mes",
            route: "mes",
            plugin: "mes-shift-report",
            plugin_version: "1.2.0",
            raw_sequence: 9,
        };
        let cloudevent = serde_json::to_value(CloudEvent::new(&mapped, 0, &lineage)).unwrap();
        let event = CanonicalEvent::from_cloudevent(&cloudevent).unwrap();
        assert_eq!(event.data, mapped.data);
        let e = &event.envelope;
        assert_eq!(e.kind, "production-completion");
        assert_eq!(e.site, "PLANT1");
        assert_eq!(e.subject, "canonical.production-completion.PLANT1");
        assert_eq!(e.time, "2026-11-30T03:00:00Z");
        assert_eq!(e.lineage.plugin, "mes-shift-report@1.2.0");
        assert_eq!(e.lineage.raw_id, "raw:9");
        assert_eq!(e.lineage.source_sequence, Some(42));
        assert_eq!(e.lineage.source_transaction.as_deref(), Some("TX-7"));
        assert_eq!(e.business_key, crate::canonical::business_key(&mapped));
        assert!(CanonicalEvent::from_cloudevent(&serde_json::json!({})).is_err());
    }
}
