//! The CloudEvents 1.0 JSON envelope of a canonical event and its deterministic id (its
//! business key is the model's, [`super::business_key`]).

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{EventData, MappedEvent, business_key};

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

/// A canonical event in its CloudEvents 1.0 JSON form, borrowing the event and its lineage: it
/// is built for every event published and serialized once, so it copies nothing it can point
/// to (the record is written straight from the event, not through a `serde_json::Value`).
///
/// Its JSON Schema (`contracts`) is derived from this type; `contracts` narrows `type` and
/// `data` to one kind.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CloudEvent<'a> {
    /// Always `1.0`.
    #[schemars(extend("const" = "1.0"))]
    pub specversion: &'static str,
    /// Deterministic id, see [`event_id`].
    pub id: String,
    /// `/<site>/<system>`.
    pub source: String,
    /// `millrace.<kind>.v1`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it happened at the source.
    #[schemars(extend("format" = "date-time"))]
    pub time: &'a str,
    /// The business key, see [`super::business_key`].
    pub subject: String,
    /// Always `application/json`.
    #[schemars(extend("const" = "application/json"))]
    pub datacontenttype: &'static str,
    /// The event record.
    #[schemars(with = "serde_json::Value")]
    pub data: Record<'a>,
    /// Lineage: the route.
    pub route: &'a str,
    /// Lineage: the plugin name.
    pub plugin: &'a str,
    /// Lineage: the plugin version.
    pub pluginversion: &'a str,
    /// Lineage: the RAW stream sequence.
    pub rawsequence: u64,
    /// The source's own sequence number, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sourcesequence: Option<u64>,
    /// The source's transaction identity, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sourcetransaction: Option<&'a str>,
    /// True when the event is older than the last one published for its business key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<bool>,
    /// The replay that produced the event, when it came from `millrace replay`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayid: Option<&'a str>,
}

/// An event's record as the envelope's `data`: the record of its kind alone, without the
/// kind's tag (the envelope's `type` names the kind).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a>(pub &'a EventData);

impl Serialize for Record<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            EventData::InventoryMovement(r) => r.serialize(serializer),
            EventData::InventoryBalance(r) => r.serialize(serializer),
            EventData::WorkOrderStatus(r) => r.serialize(serializer),
            EventData::MaterialConsumption(r) => r.serialize(serializer),
            EventData::ProductionCompletion(r) => r.serialize(serializer),
            EventData::QualityHold(r) => r.serialize(serializer),
            EventData::SupplierCommitment(r) => r.serialize(serializer),
            EventData::ShipmentNotice(r) => r.serialize(serializer),
        }
    }
}

impl<'a> CloudEvent<'a> {
    /// Wraps the `index`-th event of a raw message.
    pub fn new(event: &'a MappedEvent, index: usize, lineage: &Lineage<'a>) -> Self {
        Self {
            specversion: "1.0",
            id: event_id(lineage, index),
            source: format!("/{}/{}", event.site, lineage.system),
            kind: event.data.event_type(),
            time: &event.occurred_at,
            subject: business_key(event),
            datacontenttype: "application/json",
            data: Record(&event.data),
            route: lineage.route,
            plugin: lineage.plugin,
            pluginversion: lineage.plugin_version,
            rawsequence: lineage.raw_sequence,
            sourcesequence: event.source_sequence,
            sourcetransaction: event.source_transaction.as_deref(),
            late: None,
            replayid: None,
        }
    }

    /// The envelope as the JSON bytes published.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        // Most envelopes fit; a larger one grows the buffer once or twice.
        let mut body = Vec::with_capacity(1024);
        serde_json::to_writer(&mut body, self)?;
        Ok(body)
    }

    /// The NATS subject the event is published to: `canonical.<kind>.<site>`.
    pub fn nats_subject(event: &MappedEvent) -> String {
        crate::subjects::canonical(event.data.kind(), &event.site)
    }
}

/// The event id: a UUID-shaped digest of the route, the raw message identity, the plugin
/// version and the event's position, so a redelivered raw message yields the same ids and
/// JetStream drops the copies. The route is part of it because two routes may map the same raw
/// message with the same plugin version (one route per plant on a shared subject): without it
/// their events would share ids, and JetStream would drop one plant's as copies of the other's.
pub fn event_id(lineage: &Lineage<'_>, index: usize) -> String {
    let mut hasher = Sha256::new();
    let mut digits = [0u8; 20];
    for part in [
        lineage.route.as_bytes(),
        lineage.raw_id.as_bytes(),
        lineage.plugin.as_bytes(),
        lineage.plugin_version.as_bytes(),
        decimal(index, &mut digits),
    ] {
        hasher.update(part);
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for (i, byte) in digest[..16].iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    id
}

/// `n` in decimal ASCII, written at the end of `buffer`.
fn decimal(mut n: usize, buffer: &mut [u8; 20]) -> &[u8] {
    let mut at = buffer.len();
    loop {
        at -= 1;
        buffer[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buffer[at..];
        }
    }
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

    /// Two routes that map the same raw message with the same plugin version (one route per
    /// plant on a shared subject) give their events different ids: with the same ids JetStream
    /// dropped one plant's events as copies of the other's.
    #[test]
    fn ids_differ_by_route() {
        let other = Lineage {
            route: "r2",
            ..lineage("a")
        };
        assert_ne!(event_id(&lineage("a"), 0), event_id(&other, 0));
    }

    #[test]
    fn ids_keep_their_form_and_value() {
        // The digest of "r\0a\0p\01.0.0\07\0" (route, raw identity, plugin, version,
        // position): ids must not change with how they are computed, or redelivered messages
        // published before an upgrade would not be deduplicated. (The route joined the digest
        // once, deliberately: docs/DEPLOYMENT.md says what that upgrade costs.)
        let mut hasher = Sha256::new();
        hasher.update(b"r\0a\0p\x001.0.0\x007\0");
        let d = hasher.finalize();
        let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
        let expected = format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        assert_eq!(event_id(&lineage("a"), 7), expected);
        let mut digits = [0u8; 20];
        assert_eq!(decimal(0, &mut digits), b"0");
        assert_eq!(decimal(1203, &mut digits), b"1203");
        assert_eq!(
            decimal(usize::MAX, &mut digits),
            usize::MAX.to_string().as_bytes()
        );
    }

    #[test]
    fn the_record_is_the_kinds_own_json() {
        let event = event();
        let ce = CloudEvent::new(&event, 0, &lineage("a"));
        let json: serde_json::Value = serde_json::from_slice(&ce.to_json().unwrap()).unwrap();
        let record = match &event.data {
            EventData::ProductionCompletion(record) => serde_json::to_value(record).unwrap(),
            other => serde_json::to_value(other).unwrap(),
        };
        assert_eq!(json["data"], record);
        assert_eq!(json, serde_json::to_value(&ce).unwrap());
    }

    #[test]
    fn envelope_has_cloudevents_fields() {
        let event = event();
        let ce = CloudEvent::new(&event, 0, &lineage("a"));
        let json = serde_json::to_value(&ce).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "millrace.production-completion.v1");
        assert_eq!(json["source"], "/PLANT1/mes");
        assert_eq!(json["subject"], "WO-1@PLANT1/0020");
        assert_eq!(json["data"]["good_quantity"]["amount"], "5");
        assert_eq!(json["sourcesequence"], 4);
        assert!(json.get("sourcetransaction").is_none());
        assert_eq!(
            CloudEvent::nats_subject(&event),
            "canonical.production-completion.PLANT1"
        );
    }
}
