//! The outbound model: a canonical event as an outbound plugin receives it (read back from its
//! CloudEvent), the requests it renders, a target's response and the plugin's verdict. These
//! mirror `interface posting` of `wit/outbound@1.0.0` one for one; the sandbox converts.
//!
//! Everything here is pure (no NATS, no network): the host's outbound driver, admission by
//! golden fixtures and the dead letters use the same types.

pub mod acknowledgement;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::canonical::EventData;

/// Where a canonical event came from, as its CloudEvents envelope records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The raw message it was mapped from: `raw:<RAW stream sequence>` (the envelope carries the
    /// sequence, not the raw message's `Nats-Msg-Id`).
    pub raw_id: String,
    /// The inbound route that mapped it.
    pub route: String,
    /// `name@version` of the mapping plugin.
    pub plugin: String,
    /// The source's transaction identity, when it has one.
    pub source_transaction: Option<String>,
    /// The source's own sequence number, when it has one.
    pub source_sequence: Option<u64>,
}

/// The CloudEvents envelope of a canonical event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The event id; sent as `Idempotency-Key`.
    pub id: String,
    /// The event kind, e.g. `production-completion`.
    pub kind: String,
    /// The site code.
    pub site: String,
    /// The canonical subject, `canonical.<kind>.<site>`.
    pub subject: String,
    /// When it happened at the source, RFC 3339.
    pub time: String,
    /// The business key (CloudEvents `subject`), e.g. `WO-1@PLANT1/OP20`: events of one key are
    /// posted in order.
    pub business_key: String,
    /// Where it came from.
    pub lineage: Lineage,
}

/// One canonical event as outbound plugins receive it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanonicalEvent {
    /// The envelope.
    pub envelope: Envelope,
    /// The event's data.
    pub data: EventData,
}

/// The CloudEvents fields an outbound plugin is given.
#[derive(Deserialize)]
struct CloudEventFields {
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    time: String,
    subject: String,
    data: serde_json::Value,
    route: String,
    plugin: String,
    pluginversion: String,
    rawsequence: u64,
    #[serde(default)]
    sourcesequence: Option<u64>,
    #[serde(default)]
    sourcetransaction: Option<String>,
}

/// Why a message on the canonical stream is not a canonical event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical CloudEvent: {0}")]
pub struct NotCanonical(String);

impl CanonicalEvent {
    /// Reads a CloudEvent exactly as it is on the CANONICAL stream.
    pub fn from_cloudevent(payload: &[u8]) -> Result<Self, NotCanonical> {
        let value: serde_json::Value =
            serde_json::from_slice(payload).map_err(|e| NotCanonical(e.to_string()))?;
        Self::from_json(value)
    }

    /// [`from_cloudevent`](Self::from_cloudevent) of a parsed JSON value.
    pub fn from_json(value: serde_json::Value) -> Result<Self, NotCanonical> {
        let fields: CloudEventFields =
            serde_json::from_value(value).map_err(|e| NotCanonical(e.to_string()))?;
        let kind = fields
            .kind
            .strip_prefix("millrace.")
            .and_then(|k| k.strip_suffix(".v1"))
            .ok_or_else(|| NotCanonical(format!("unknown event type {:?}", fields.kind)))?
            .to_owned();
        let data: EventData =
            serde_json::from_value(serde_json::json!({ "kind": kind, "data": fields.data }))
                .map_err(|e| NotCanonical(format!("{kind} event {}: {e}", fields.id)))?;
        let site = fields
            .source
            .strip_prefix('/')
            .and_then(|s| s.split_once('/'))
            .map(|(site, _system)| site.to_owned())
            .ok_or_else(|| {
                NotCanonical(format!(
                    "source {:?} is not /<site>/<system>",
                    fields.source
                ))
            })?;
        Ok(Self {
            envelope: Envelope {
                subject: crate::subjects::canonical(&kind, &site),
                id: fields.id,
                kind,
                site,
                time: fields.time,
                business_key: fields.subject,
                lineage: Lineage {
                    raw_id: format!("raw:{}", fields.rawsequence),
                    route: fields.route,
                    plugin: format!("{}@{}", fields.plugin, fields.pluginversion),
                    source_transaction: fields.sourcetransaction,
                    source_sequence: fields.sourcesequence,
                },
            },
            data,
        })
    }
}

/// An HTTP method, as the WIT `method` enum names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

/// A body: JSON when it parses as JSON (compared and shown as JSON), else `{"base64": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// The body as fixtures and dead letters write it.
    pub fn to_json(&self) -> serde_json::Value {
        match serde_json::from_slice::<serde_json::Value>(&self.0) {
            Ok(value) if !self.0.is_empty() => value,
            _ => serde_json::json!({
                "base64": base64::engine::general_purpose::STANDARD.encode(&self.0)
            }),
        }
    }

    /// The bytes of a body written as [`to_json`](Self::to_json) writes it.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        if let Some(serde_json::Value::String(text)) = value.get("base64")
            && value.as_object().is_some_and(|o| o.len() == 1)
        {
            return base64::engine::general_purpose::STANDARD
                .decode(text)
                .map(Body)
                .map_err(|e| format!("`base64` body: {e}"));
        }
        serde_json::to_vec(value)
            .map(Body)
            .map_err(|e| e.to_string())
    }
}

impl JsonSchema for Body {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Body".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A body: the JSON value itself when the bytes are JSON, else {\"base64\": \"<the bytes in base64>\"}."
        })
    }
}

impl Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Body::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// One request to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The target's name in the host's configuration.
    pub target: String,
    /// The HTTP method.
    pub method: Method,
    /// The path (and query) after the target's base URL.
    pub path: String,
    /// Extra headers, in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default)]
    pub body: Body,
}

/// A target's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The target the request went to (filled in from the request when a fixture leaves it out).
    #[serde(default)]
    pub target: String,
    /// The HTTP status.
    pub status: u16,
    /// The headers, names in lower case.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default)]
    pub body: Body,
}

/// What a target's answer means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Booked; the target's document id.
    Posted(String),
    /// Refused for good: dead letter.
    Rejected(String),
    /// Not now: retried with backoff.
    TryAgain(String),
}

/// Why a plugin rendered no requests: always permanent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RenderError {
    /// The event lacks what the target needs.
    IncompleteEvent(String),
    /// A business rule refuses to post it.
    RejectedByRule(String),
    /// Any other reason.
    Other(String),
}

impl RenderError {
    /// The WIT case name, e.g. `incomplete-event`.
    pub fn kind(&self) -> &'static str {
        match self {
            RenderError::IncompleteEvent(_) => "incomplete-event",
            RenderError::RejectedByRule(_) => "rejected-by-rule",
            RenderError::Other(_) => "other",
        }
    }

    /// The plugin's reason.
    pub fn message(&self) -> &str {
        match self {
            RenderError::IncompleteEvent(m)
            | RenderError::RejectedByRule(m)
            | RenderError::Other(m) => m,
        }
    }
}

/// Headers a plugin may not set: the host owns them.
pub const HOST_HEADERS: [&str; 2] = ["authorization", "idempotency-key"];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
        let cloudevent = serde_json::to_vec(&CloudEvent::new(&mapped, 0, &lineage)).unwrap();
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
        assert!(CanonicalEvent::from_cloudevent(b"{}").is_err());
    }

    #[test]
    fn a_body_is_json_when_it_parses_else_base64() {
        let json = Body(br#"{"a":1}"#.to_vec());
        assert_eq!(json.to_json(), serde_json::json!({"a": 1}));
        let bytes = Body(vec![0xff, 0x00]);
        let written = bytes.to_json();
        assert_eq!(written, serde_json::json!({"base64": "/wA="}));
        assert_eq!(Body::from_json(&written).unwrap(), bytes);
        assert_eq!(Body::default().to_json(), serde_json::json!({"base64": ""}));
    }
}
