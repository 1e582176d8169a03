//! The CloudEvents 1.0 JSON envelope of a canonical event and its deterministic id (its
//! business key is the model's, [`super::business_key`]).

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{MappedEvent, business_key};

/// Where an event came from: what the envelope says beside the event itself.
#[derive(Debug, Clone)]
pub struct Lineage<'a> {
    /// The identity of the raw message (its `Nats-Msg-Id`, or stream and sequence).
    pub raw_id: &'a str,
    /// The source system, e.g. `mes`.
    pub system: &'a str,
    /// The route that mapped it.
    pub route: &'a str,
    /// The plugin name.
    pub plugin: &'a str,
    /// The plugin version.
    pub plugin_version: &'a str,
    /// The RAW stream sequence of the raw message.
    pub raw_sequence: u64,
}

/// A canonical event in its CloudEvents 1.0 JSON form.
///
/// Its JSON Schema (`contracts`) is derived from this type; `contracts` narrows `type` and
/// `data` to one kind.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CloudEvent {
    /// Always `1.0`.
    #[schemars(extend("const" = "1.0"))]
    pub specversion: &'static str,
    /// Deterministic id, see [`event_id`].
    pub id: String,
    /// `/<site>/<system>`.
    pub source: String,
    /// `millrace.<kind>.v1`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened at the source.
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    /// The business key, see [`super::business_key`].
    pub subject: String,
    /// Always `application/json`.
    #[schemars(extend("const" = "application/json"))]
    pub datacontenttype: &'static str,
    /// The event record.
    pub data: serde_json::Value,
    /// Lineage: the route.
    pub route: String,
    /// Lineage: the plugin name.
    pub plugin: String,
    /// Lineage: the plugin version.
    pub pluginversion: String,
    /// Lineage: the RAW stream sequence.
    pub rawsequence: u64,
    /// The source's own sequence number, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sourcesequence: Option<u64>,
    /// The source's transaction identity, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sourcetransaction: Option<String>,
    /// True when the event is older than the last one published for its business key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<bool>,
    /// The replay that produced the event, when it came from `millrace replay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayid: Option<String>,
}

impl CloudEvent {
    /// Wraps the `index`-th event of a raw message.
    pub fn new(event: &MappedEvent, index: usize, lineage: &Lineage<'_>) -> Self {
        let data = match serde_json::to_value(&event.data) {
            Ok(serde_json::Value::Object(mut tagged)) => tagged.remove("data").unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        Self {
            specversion: "1.0",
            id: event_id(lineage, index),
            source: format!("/{}/{}", event.site, lineage.system),
            kind: format!("millrace.{}.v1", event.data.kind()),
            time: event.occurred_at.clone(),
            subject: business_key(event),
            datacontenttype: "application/json",
            data,
            route: lineage.route.into(),
            plugin: lineage.plugin.into(),
            pluginversion: lineage.plugin_version.into(),
            rawsequence: lineage.raw_sequence,
            sourcesequence: event.source_sequence,
            sourcetransaction: event.source_transaction.clone(),
            late: None,
            replayid: None,
        }
    }

    /// The NATS subject the event is published to: `canonical.<kind>.<site>`.
    pub fn nats_subject(event: &MappedEvent) -> String {
        crate::subjects::canonical(event.data.kind(), &event.site)
    }
}

/// The event id: a UUID-shaped digest of the raw message identity, the plugin version and the
/// event's position, so a redelivered raw message yields the same ids and JetStream drops the
/// copies.
pub fn event_id(lineage: &Lineage<'_>, index: usize) -> String {
    let mut hasher = Sha256::new();
    for part in [
        lineage.raw_id,
        lineage.plugin,
        lineage.plugin_version,
        &index.to_string(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let d = hasher.finalize();
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::canonical::{EventData, ProductionCompletion, Quantity};

    fn event() -> MappedEvent {
        MappedEvent {
            site: "PLANT1".into(),
            occurred_at: "2026-03-02T06:15:00+01:00".into(),
            source_sequence: Some(4),
            source_transaction: None,
            data: EventData::ProductionCompletion(ProductionCompletion {
                work_order: "WO-1".into(),
                operation: Some("0020".into()),
                item: "FG-1".into(),
                lot: None,
                good_quantity: Quantity::new("5", "EA"),
                scrap_quantity: Quantity::new("0", "EA"),
                location: None,
            }),
        }
    }

    fn lineage(raw_id: &str) -> Lineage<'_> {
        Lineage {
            raw_id,
            system: "mes",
            route: "r",
            plugin: "p",
            plugin_version: "1.0.0",
            raw_sequence: 9,
        }
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(event_id(&lineage("a"), 0), event_id(&lineage("a"), 0));
        assert_ne!(event_id(&lineage("a"), 0), event_id(&lineage("a"), 1));
        assert_ne!(event_id(&lineage("a"), 0), event_id(&lineage("b"), 0));
        assert_eq!(event_id(&lineage("a"), 0).len(), 36);
    }

    #[test]
    fn envelope_has_cloudevents_fields() {
        let ce = CloudEvent::new(&event(), 0, &lineage("a"));
        let json = serde_json::to_value(&ce).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "millrace.production-completion.v1");
        assert_eq!(json["source"], "/PLANT1/mes");
        assert_eq!(json["subject"], "WO-1@PLANT1/0020");
        assert_eq!(json["data"]["good_quantity"]["amount"], "5");
        assert_eq!(json["sourcesequence"], 4);
        assert!(json.get("sourcetransaction").is_none());
        assert_eq!(
            CloudEvent::nats_subject(&event()),
            "canonical.production-completion.PLANT1"
        );
    }
}
