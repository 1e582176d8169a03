//! Outbound plugins: the Rust side of `world poster` in `wit/outbound@1.0.0/posting.wit`.
//!
//! A poster takes one canonical event and renders the requests that post it to the systems of
//! record (ERP, WMS, a webhook), then reads each target's answer as a [`Verdict`]. Implement
//! [`Poster`] on a unit struct and export it with one macro line:
//!
//! ```ignore
//! use millrace_sdk::posting::*;
//! use millrace_sdk::prelude::*;
//!
//! struct ErpPostings;
//!
//! impl Poster for ErpPostings {
//!     fn render(event: &Event) -> Result<Vec<Request>, RenderError> {
//!         let EventData::ProductionCompletion(done) = &event.data else {
//!             return Ok(Vec::new()); // not posted
//!         };
//!         Ok(vec![Request::post("erp", "/odata/GoodsMovements").json(json!({
//!             "Material": done.item,
//!             "Quantity": done.good_quantity.amount,
//!         }))])
//!     }
//!
//!     fn interpret(_event: &Event, _request: &Request, response: &Response) -> Verdict {
//!         match response.status {
//!             201 => Verdict::posted(response.json_str("/MaterialDocument").unwrap_or_default()),
//!             _ if response.is_transient() => Verdict::try_again(response.summary()),
//!             _ => Verdict::rejected(response.summary()),
//!         }
//!     }
//! }
//!
//! millrace_sdk::export_poster!(ErpPostings);
//! ```
//!
//! The host owns everything around the call (base URLs, credentials, retries, rate limits and
//! the `Idempotency-Key` header, which is the event id); a plugin never sees a secret. Off
//! `wasm32` the trait is plain Rust, so a plugin's `cargo test` calls it directly, and
//! [`check_fixtures`] runs the golden fixtures the host's admission runs:
//!
//! ```ignore
//! #[test]
//! fn golden_fixtures() {
//!     let passed = millrace_sdk::posting::check_fixtures::<ErpPostings>(env!("CARGO_MANIFEST_DIR"));
//!     assert!(passed.is_ok_and(|n| n > 0), "{passed:?}");
//! }
//! ```

use std::borrow::Cow;

use crate::MapError;
use crate::canonical::{EventData, Timestamp};

#[cfg(not(target_arch = "wasm32"))]
mod fixtures;

#[cfg(not(target_arch = "wasm32"))]
pub use fixtures::check_fixtures;

pub use serde_json::{Value, json};

/// An outbound plugin: renders the requests for one canonical event and reads the answers.
///
/// Both are associated functions (no `self`): the host may call them in any instance, in any
/// order, and a plugin must not rely on state from earlier calls.
pub trait Poster {
    /// Renders the requests for one event, in the order they must be sent (the host sends the
    /// next only when the previous is posted). An empty list means this event is not posted.
    fn render(event: &Event) -> Result<Vec<Request>, RenderError>;

    /// Reads a target's answer to `request`, one of those [`Poster::render`] returned for
    /// `event`.
    fn interpret(event: &Event, request: &Request, response: &Response) -> Verdict;
}

/// Where an event came from, as its CloudEvents envelope records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// The raw message the event was mapped from, as `raw:<sequence>` (its RAW stream sequence).
    pub raw_id: String,
    /// The inbound route that mapped it.
    pub route: String,
    /// The mapping plugin and version that produced it, for example `x12-856@1.2.0`.
    pub plugin: String,
    /// The source's identity of the business transaction, when it has one.
    pub source_transaction: Option<String>,
    /// The source system's own sequence number for this record, when it has one.
    pub source_sequence: Option<u64>,
}

/// The CloudEvents envelope of a canonical event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The event id (CloudEvents `id`); the host sends it as `Idempotency-Key` on every request.
    pub id: String,
    /// The event kind, for example `production-completion` or `quality-hold`.
    pub kind: String,
    /// The site (plant, warehouse) code.
    pub site: String,
    /// The canonical subject it was published to, for example `canonical.quality-hold.PLANT1`.
    pub subject: String,
    /// When the event happened at the source (CloudEvents `time`).
    pub time: Timestamp,
    /// Where it came from.
    pub lineage: Lineage,
}

/// One canonical event, as consumers of the canonical stream see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The envelope.
    pub envelope: Envelope,
    /// The event's data (the newest canonical model; fields a newer version added are empty for
    /// events mapped under an older one).
    pub data: EventData,
}

/// An HTTP method. A NATS target ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl Method {
    /// The WIT case name, lower case (`post`), as golden fixtures write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
            Self::Patch => "patch",
            Self::Delete => "delete",
        }
    }

    /// The method named `name` (any case), if it is one of the five.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Get, Self::Post, Self::Put, Self::Patch, Self::Delete]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }
}

/// One request to one target. Build it with [`Request::post`] (and `get`, `put`, `patch`,
/// `delete`), then [`Request::header`] and [`Request::json`] or [`Request::body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The target's name as the host's configuration names it (`erp`, `wms`, `notify`).
    pub target: String,
    /// The HTTP method.
    pub method: Method,
    /// The path (and query) appended to the target's base URL, for example
    /// `/odata/GoodsMovements`.
    pub path: String,
    /// Extra headers, in order. The host adds `Idempotency-Key`, `Content-Type` when not set
    /// here, and the target's authorization; a plugin's `Authorization` or `Idempotency-Key`
    /// is refused.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, target: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A GET of `path` on `target`.
    pub fn get(target: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Method::Get, target, path)
    }

    /// A POST to `path` on `target`.
    pub fn post(target: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Method::Post, target, path)
    }

    /// A PUT to `path` on `target`.
    pub fn put(target: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Method::Put, target, path)
    }

    /// A PATCH of `path` on `target`.
    pub fn patch(target: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Method::Patch, target, path)
    }

    /// A DELETE of `path` on `target`.
    pub fn delete(target: impl Into<String>, path: impl Into<String>) -> Self {
        Self::new(Method::Delete, target, path)
    }

    /// The same request with one more header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same request with `body` as its JSON body (compact) and `Content-Type:
    /// application/json`. Build the value with [`json!`]; quantities stay decimal text.
    pub fn json(self, body: Value) -> Self {
        self.body(body.to_string().into_bytes(), "application/json")
    }

    /// The same request with `body` and its `Content-Type`.
    pub fn body(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        self.headers
            .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
        self.headers
            .push(("Content-Type".to_owned(), content_type.to_owned()));
        self.body = body.into();
        self
    }

    /// Returns the first value of the header `name` (ASCII case-insensitive), if present.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A target's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The target the request went to.
    pub target: String,
    /// The HTTP status code (a NATS target answers 200 once its publish is acknowledged).
    pub status: u16,
    /// The response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The response body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// Returns the first value of the header `name` (ASCII case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body parsed as JSON, or none when it is not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The text at the JSON pointer `pointer` (`/d/MaterialDocument`) of the body, when the
    /// body is JSON and the value there is text (or a number, as its text).
    pub fn json_str(&self, pointer: &str) -> Option<String> {
        match self.json()?.pointer(pointer)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// An answer that says "not now" rather than "no": 408 (timeout), 425, 429 (rate limit) and
    /// every 5xx (504 is a gateway's timeout).
    pub fn is_transient(&self) -> bool {
        matches!(self.status, 408 | 425 | 429) || self.status >= 500
    }

    /// The target's own error message: `<code>: <message>` from an OData error body
    /// (`{"error": {"code", "message"}}`, the message text or OData v2's `{"value": ..}`), the
    /// `message` or text `error` of another JSON body, else the body's first 200 characters;
    /// none when the body is empty.
    pub fn error_message(&self) -> Option<String> {
        let text_of = |value: &Value| match value {
            Value::String(text) => Some(text.clone()),
            Value::Object(object) => object
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        if let Some(json) = self.json() {
            let error = &json["error"];
            if let Some(message) = text_of(&error["message"]) {
                return Some(match error["code"].as_str() {
                    Some(code) if !code.is_empty() => format!("{code}: {message}"),
                    _ => message,
                });
            }
            if let Some(message) = error.as_str().or_else(|| json["message"].as_str()) {
                return Some(message.to_owned());
            }
        }
        let text = self.text();
        let text = text.trim();
        (!text.is_empty()).then(|| text.chars().take(200).collect())
    }

    /// A one-line account of the answer for a verdict or a log: `HTTP 503 from erp: <the
    /// target's error message>` (see [`Response::error_message`]), or `HTTP 503 from erp` when
    /// the body is empty.
    pub fn summary(&self) -> String {
        match self.error_message() {
            Some(message) => format!("HTTP {} from {}: {message}", self.status, self.target),
            None => format!("HTTP {} from {}", self.status, self.target),
        }
    }
}

/// What a target's answer means for the posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The target booked it; the value is the target's own document id (a material document
    /// number, a delivery block id), or empty when the target gives none.
    Posted(String),
    /// The target refused it for good (a business rule, unknown material): the event is
    /// dead-lettered with this reason.
    Rejected(String),
    /// The target could not take it now: the host retries with backoff. The value says why.
    TryAgain(String),
}

impl Verdict {
    /// Booked, under the target's document id `document`.
    pub fn posted(document: impl Into<String>) -> Self {
        Self::Posted(document.into())
    }

    /// Refused for good, for `reason`.
    pub fn rejected(reason: impl Into<String>) -> Self {
        Self::Rejected(reason.into())
    }

    /// Not now, because of `why`.
    pub fn try_again(why: impl Into<String>) -> Self {
        Self::TryAgain(why.into())
    }

    /// The WIT case name: `posted`, `rejected` or `try-again`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Posted(_) => "posted",
            Self::Rejected(_) => "rejected",
            Self::TryAgain(_) => "try-again",
        }
    }

    /// The document id, reason or why the verdict carries.
    pub fn message(&self) -> &str {
        match self {
            Self::Posted(text) | Self::Rejected(text) | Self::TryAgain(text) => text,
        }
    }
}

/// Why a plugin could not render requests for an event. Every case is permanent: the host
/// dead-letters the event at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The event lacks something the target needs (a lot, a unit the target knows).
    IncompleteEvent(String),
    /// A business rule refuses to post it.
    RejectedByRule(String),
    /// Any other reason.
    Other(String),
}

impl RenderError {
    /// The event lacks something the target needs.
    pub fn incomplete(message: impl Into<String>) -> Self {
        Self::IncompleteEvent(message.into())
    }

    /// A business rule refuses to post the event.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::RejectedByRule(message.into())
    }

    /// Any other reason, for example a route configuration the plugin cannot use.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into())
    }

    /// The WIT case name, for example `incomplete-event`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IncompleteEvent(_) => "incomplete-event",
            Self::RejectedByRule(_) => "rejected-by-rule",
            Self::Other(_) => "other",
        }
    }

    /// The human-readable reason.
    pub fn message(&self) -> &str {
        match self {
            Self::IncompleteEvent(message)
            | Self::RejectedByRule(message)
            | Self::Other(message) => message,
        }
    }
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for RenderError {}

/// The shared helpers ([`crate::config::require`], the format readers) answer in [`MapError`];
/// in a poster `?` turns them into the render error of the same meaning.
impl From<MapError> for RenderError {
    fn from(error: MapError) -> Self {
        match error {
            MapError::MalformedInput(m) | MapError::UnsupportedDocument(m) => {
                Self::IncompleteEvent(m)
            }
            MapError::RejectedByRule(m) => Self::RejectedByRule(m),
            MapError::Other(m) => Self::Other(m),
        }
    }
}

/// Why a CloudEvent from the canonical stream could not be read as an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical CloudEvent: {0}")]
pub struct CloudEventError(String);

impl Event {
    /// Reads a canonical event in the CloudEvents JSON form the host publishes on the canonical
    /// stream (`id`, `type` = `millrace.<kind>.v1`, `source` = `/<site>/<system>`, `time`,
    /// `data`, and the lineage extensions `route`, `plugin`, `pluginversion`, `rawsequence`,
    /// `sourcesequence`, `sourcetransaction`), into what a poster receives.
    ///
    /// The envelope's subject is `canonical.<kind>.<site>`; the lineage's raw id is
    /// `raw:<rawsequence>` (the CloudEvent carries the raw message's stream sequence, not its
    /// `Nats-Msg-Id`); the plugin is `<plugin>@<pluginversion>`.
    pub fn from_cloudevent(cloudevent: &Value) -> Result<Self, CloudEventError> {
        let text = |name: &str| {
            cloudevent[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| CloudEventError(format!("`{name}` is missing or not text")))
        };
        let type_ = text("type")?;
        let kind = type_
            .strip_prefix("millrace.")
            .and_then(|rest| rest.rsplit_once(".v").map(|(kind, _)| kind))
            .ok_or_else(|| {
                CloudEventError(format!(
                    "`type` is {type_:?}, expected millrace.<kind>.v<major>"
                ))
            })?
            .to_owned();
        let source = text("source")?;
        let site = source
            .strip_prefix('/')
            .and_then(|rest| rest.split('/').next())
            .filter(|site| !site.is_empty())
            .ok_or_else(|| {
                CloudEventError(format!("`source` is {source:?}, expected /<site>/<system>"))
            })?
            .to_owned();
        let data = event_data(&kind, &cloudevent["data"])?;
        Ok(Self {
            envelope: Envelope {
                id: text("id")?,
                subject: format!("canonical.{kind}.{site}"),
                kind,
                site,
                time: text("time")?,
                lineage: Lineage {
                    raw_id: format!("raw:{}", cloudevent["rawsequence"].as_u64().unwrap_or(0)),
                    route: text("route").unwrap_or_default(),
                    plugin: format!(
                        "{}@{}",
                        text("plugin").unwrap_or_default(),
                        text("pluginversion").unwrap_or_default()
                    ),
                    source_transaction: cloudevent["sourcetransaction"].as_str().map(str::to_owned),
                    source_sequence: cloudevent["sourcesequence"].as_u64(),
                },
            },
            data,
        })
    }
}

/// The `data` of a CloudEvent of `kind`.
fn event_data(kind: &str, data: &Value) -> Result<EventData, CloudEventError> {
    fn read<T: serde::de::DeserializeOwned>(
        kind: &str,
        data: &Value,
    ) -> Result<T, CloudEventError> {
        T::deserialize(data).map_err(|e| CloudEventError(format!("`data` of a {kind}: {e}")))
    }
    Ok(match kind {
        "inventory-movement" => EventData::InventoryMovement(read(kind, data)?),
        "inventory-balance" => EventData::InventoryBalance(read(kind, data)?),
        "work-order-status" => EventData::WorkOrderStatus(read(kind, data)?),
        "material-consumption" => EventData::MaterialConsumption(read(kind, data)?),
        "production-completion" => EventData::ProductionCompletion(read(kind, data)?),
        "quality-hold" => EventData::QualityHold(read(kind, data)?),
        "supplier-commitment" => EventData::SupplierCommitment(read(kind, data)?),
        "shipment-notice" => EventData::ShipmentNotice(read(kind, data)?),
        other => return Err(CloudEventError(format!("unknown event kind {other:?}"))),
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::HoldAction;

    fn cloudevent() -> Value {
        json!({
            "specversion": "1.0",
            "id": "7f1c2a90-5b8e-4c1d-9a3f-0e6b2d4c8a11",
            "source": "/PLANT1/qms",
            "type": "millrace.quality-hold.v1",
            "time": "2026-03-02T09:41:27.512Z",
            "subject": "NC-2026-0412@PLANT1",
            "datacontenttype": "application/json",
            "data": {
                "hold_id": "NC-2026-0412",
                "action": "placed",
                "scope": {"item": "MAT-100", "lot": "L2603-07"},
                "reason": "porosity"
            },
            "route": "qms",
            "plugin": "quality-webhook",
            "pluginversion": "1.0.0",
            "rawsequence": 42,
            "sourcetransaction": "evt_01"
        })
    }

    #[test]
    fn reads_the_envelope_and_data_of_a_canonical_cloudevent() {
        let event = Event::from_cloudevent(&cloudevent()).unwrap();
        assert_eq!(event.envelope.kind, "quality-hold");
        assert_eq!(event.envelope.site, "PLANT1");
        assert_eq!(event.envelope.subject, "canonical.quality-hold.PLANT1");
        assert_eq!(event.envelope.lineage.plugin, "quality-webhook@1.0.0");
        assert_eq!(event.envelope.lineage.raw_id, "raw:42");
        assert_eq!(
            event.envelope.lineage.source_transaction.as_deref(),
            Some("evt_01")
        );
        let EventData::QualityHold(hold) = event.data else {
            panic!("a quality hold")
        };
        assert_eq!(hold.action, HoldAction::Placed);
        assert_eq!(hold.scope.lot.as_deref(), Some("L2603-07"));
        assert_eq!(hold.scope.location, None);
    }

    #[test]
    fn names_what_is_wrong_with_a_cloudevent() {
        let mut wrong = cloudevent();
        wrong["type"] = json!("quality-hold");
        assert!(
            Event::from_cloudevent(&wrong)
                .unwrap_err()
                .to_string()
                .contains("expected millrace.<kind>.v<major>")
        );
        let mut wrong = cloudevent();
        wrong["data"]["action"] = json!("forgotten");
        assert!(
            Event::from_cloudevent(&wrong)
                .unwrap_err()
                .to_string()
                .contains("`data` of a quality-hold: unknown variant `forgotten`")
        );
    }

    #[test]
    fn builds_requests_and_reads_answers() {
        let request = Request::post("erp", "/odata/GoodsMovements")
            .header("Accept", "application/json")
            .json(json!({"Quantity": "12.5"}));
        assert_eq!(request.method.as_str(), "post");
        assert_eq!(request.body, br#"{"Quantity":"12.5"}"#);
        assert_eq!(
            request.header_value("content-type"),
            Some("application/json")
        );
        let answer = Response {
            target: "erp".into(),
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"d":{"MaterialDocument":4900001234,"Year":"2026"}}"#.to_vec(),
        };
        assert_eq!(
            answer.json_str("/d/MaterialDocument").as_deref(),
            Some("4900001234")
        );
        assert!(answer.is_success() && !answer.is_transient());
        let busy = Response {
            status: 429,
            body: b" slow down \n".to_vec(),
            ..answer
        };
        assert!(busy.is_transient());
        assert_eq!(busy.error_message().as_deref(), Some("slow down"));
        let refused = Response {
            status: 400,
            body:
                br#"{"error":{"code":"M7/021","message":{"lang":"en","value":"no such material"}}}"#
                    .to_vec(),
            ..busy.clone()
        };
        assert_eq!(
            refused.error_message().as_deref(),
            Some("M7/021: no such material")
        );
        assert_eq!(busy.summary(), "HTTP 429 from erp: slow down");
        assert_eq!(Method::parse("PATCH"), Some(Method::Patch));
    }

    #[test]
    fn shared_helpers_errors_become_render_errors() {
        assert_eq!(
            RenderError::from(MapError::other("no key 'plant'")),
            RenderError::other("no key 'plant'")
        );
        assert_eq!(
            RenderError::incomplete("no lot").to_string(),
            "incomplete-event: no lot"
        );
        assert_eq!(Verdict::try_again("busy").kind(), "try-again");
    }
}
