//! Posting canonical events to systems of record: the Rust mirror of `interface posting` in
//! `wit/outbound@1.0.0/posting.wit`, written once for the host's outbound driver and for
//! outbound plugins. A canonical event as a poster receives it (read back from its CloudEvent),
//! the requests it renders, a target's answer and what the answer means.
//!
//! Everything here is plain data: the host's outbound driver, its admission by golden fixtures
//! and its dead letters use the same types as a plugin's native tests.

use std::borrow::Cow;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{EventData, Timestamp};
use crate::mapping::MapError;

/// Where an event came from, as its CloudEvents envelope records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The raw message the event was mapped from, as `raw:<sequence>` (its RAW stream
    /// sequence: the envelope carries the sequence, not the raw message's `Nats-Msg-Id`).
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The business key (CloudEvents `subject`), for example `WO-1@PLANT1/OP20`: events of one
    /// key are posted in order ([`EventData::business_key`]). Not in the WIT envelope: the SDK
    /// derives it from the event's site and data.
    pub business_key: String,
    /// Where it came from.
    pub lineage: Lineage,
}

/// One canonical event, as consumers of the canonical stream see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The envelope.
    pub envelope: Envelope,
    /// The event's data (the newest canonical model; fields a newer version added are empty for
    /// events mapped under an older one).
    pub data: EventData,
}

/// The CloudEvents fields a canonical event is read from.
#[derive(Deserialize)]
struct CloudEventFields {
    id: String,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    time: String,
    subject: String,
    data: Value,
    route: String,
    plugin: String,
    pluginversion: String,
    rawsequence: u64,
    #[serde(default)]
    sourcesequence: Option<u64>,
    #[serde(default)]
    sourcetransaction: Option<String>,
}

/// Why a CloudEvent from the canonical stream could not be read as an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical CloudEvent: {0}")]
pub struct NotCanonical(String);

impl Event {
    /// Reads a canonical event in the CloudEvents JSON form the host publishes on the canonical
    /// stream (`id`, `type` = `millrace.<kind>.v<major>`, `source` = `/<site>/<system>`, `time`,
    /// `subject` (the business key), `data`, and the lineage extensions `route`, `plugin`,
    /// `pluginversion`, `rawsequence`, `sourcesequence`, `sourcetransaction`), into what a
    /// poster receives.
    ///
    /// The envelope's subject is `canonical.<kind>.<site>`; the lineage's raw id is
    /// `raw:<rawsequence>` (the CloudEvent carries the raw message's stream sequence, not its
    /// `Nats-Msg-Id`); the plugin is `<plugin>@<pluginversion>`.
    pub fn from_cloudevent(cloudevent: &Value) -> Result<Self, NotCanonical> {
        Self::from_fields(cloudevent)
    }

    /// [`from_cloudevent`](Self::from_cloudevent) of a message's bytes, exactly as they are on
    /// the canonical stream.
    pub fn from_payload(payload: &[u8]) -> Result<Self, NotCanonical> {
        let cloudevent: Value =
            serde_json::from_slice(payload).map_err(|e| NotCanonical(e.to_string()))?;
        Self::from_fields(&cloudevent)
    }

    fn from_fields(cloudevent: &Value) -> Result<Self, NotCanonical> {
        let fields =
            CloudEventFields::deserialize(cloudevent).map_err(|e| NotCanonical(e.to_string()))?;
        let kind = fields
            .kind
            .strip_prefix("millrace.")
            .and_then(|rest| rest.rsplit_once(".v").map(|(kind, _)| kind))
            .ok_or_else(|| {
                NotCanonical(format!(
                    "`type` is {:?}, expected millrace.<kind>.v<major>",
                    fields.kind
                ))
            })?
            .to_owned();
        let site = fields
            .source
            .strip_prefix('/')
            .and_then(|rest| rest.split('/').next())
            .filter(|site| !site.is_empty())
            .ok_or_else(|| {
                NotCanonical(format!(
                    "`source` is {:?}, expected /<site>/<system>",
                    fields.source
                ))
            })?
            .to_owned();
        let data = EventData::deserialize(serde_json::json!({ "kind": kind, "data": fields.data }))
            .map_err(|e| NotCanonical(format!("`data` of a {kind}: {e}")))?;
        Ok(Self {
            envelope: Envelope {
                id: fields.id,
                subject: format!("canonical.{kind}.{site}"),
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

/// An HTTP method, as the WIT `method` enum names it. A NATS target ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The target's name as the host's configuration names it (`erp`, `wms`, `notify`).
    pub target: String,
    /// The HTTP method.
    pub method: Method,
    /// The path (and query) appended to the target's base URL, for example
    /// `/odata/GoodsMovements`: it starts with `/`, holds no whitespace or control character,
    /// and must stay under the base URL once dot segments are resolved.
    pub path: String,
    /// Extra headers, in order. The host adds `Idempotency-Key`, `Content-Type` when not set
    /// here, and the target's authorization; a plugin's `Authorization` or `Idempotency-Key`,
    /// a connection header (`Host`, `Content-Length`, …), a `Nats-` header to a NATS target,
    /// a name that is not an HTTP token and a value with a line break or other control
    /// character are refused (docs/OUTBOUND.md).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    #[serde(default, with = "body")]
    #[cfg_attr(feature = "schemars", schemars(with = "body::Body"))]
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
    /// application/json`. Build the value with [`serde_json::json!`]; quantities stay decimal text.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The target the request went to (filled in from the request when a fixture leaves it out).
    #[serde(default)]
    pub target: String,
    /// The HTTP status code (a NATS target answers 200 once its publish is acknowledged).
    pub status: u16,
    /// The response headers, names in lower case.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The response body bytes.
    #[serde(default, with = "body")]
    #[cfg_attr(feature = "schemars", schemars(with = "body::Body"))]
    pub body: Vec<u8>,
}

impl Response {
    /// Returns the first value of the header `name` (ASCII case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body parsed as JSON, or none when it is not JSON. A UTF-8 byte-order mark and white
    /// space before the JSON (as some Windows-hosted services write them) hide nothing.
    pub fn json(&self) -> Option<Value> {
        let body = self.body.as_slice();
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        serde_json::from_slice(body.trim_ascii_start()).ok()
    }

    /// Whether the body is JSON whose top-level `error` reports an error: an OData error
    /// object, a message, `true`, an error number. An `error` of `null`, `false`, `0` or blank
    /// text, or a list or an object holding only such values (`{}`, `{"code": "", "message":
    /// ""}`), reports none: many services always send the member.
    pub fn error_reported(&self) -> bool {
        fn reports(error: &Value) -> bool {
            match error {
                Value::Null => false,
                Value::Bool(flag) => *flag,
                Value::Number(number) => number.as_f64() != Some(0.0),
                Value::String(text) => !text.trim().is_empty(),
                Value::Array(items) => items.iter().any(reports),
                Value::Object(members) => members.values().any(reports),
            }
        }
        self.json()
            .is_some_and(|json| json.get("error").is_some_and(reports))
    }

    /// The text at the JSON pointer `pointer` (`/d/MaterialDocument`) of the body, when the
    /// body is JSON and the value there is text (or a number, as its text).
    ///
    /// An integer is its digits, also when the target wrote it with a fraction or an exponent
    /// (`4900012345.0`, `4.900012345E9` are `4900012345`), as long as a JSON number holds it
    /// exactly (below 2^53).
    pub fn json_str(&self, pointer: &str) -> Option<String> {
        /// The first float above which not every integer is exact (2^53).
        const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;
        match self.json()?.pointer(pointer)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(match number.as_f64() {
                Some(float)
                    if !(number.is_i64() || number.is_u64())
                        && float.fract() == 0.0
                        && float.abs() < EXACT_INTEGERS =>
                {
                    format!("{float:.0}")
                }
                _ => number.to_string(),
            }),
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

    /// An answer that says "not now" rather than "no": 408 (timeout), 423 (the record is locked,
    /// as an ERP says while a user edits the material), 425, 429 (rate limit) and every 5xx (504
    /// is a gateway's timeout).
    pub fn is_transient(&self) -> bool {
        matches!(self.status, 408 | 423 | 425 | 429) || self.status >= 500
    }

    /// A top-level value of an OData answer, as text: `{"<name>": ..}` (OData v4 and plain
    /// JSON) or `{"d": {"<name>": ..}}` (OData v2, as SAP Gateway answers).
    pub fn odata_str(&self, name: &str) -> Option<String> {
        self.json_str(&format!("/{name}"))
            .or_else(|| self.json_str(&format!("/d/{name}")))
            .filter(|value| !value.is_empty())
    }

    /// The verdict for an answer that says nothing about the posting because the request did not
    /// reach the service as its caller: a redirect (3xx: a sign-in page, a moved service) or
    /// refused credentials (401, 403). Each is the target's configuration to fix, never the
    /// event's fault: **try again**, naming what to check. `None` for any other answer.
    pub fn access_problem(&self) -> Option<Verdict> {
        let why = match self.status {
            300..=399 => format!(
                "{} redirected the request (HTTP {}{}): a sign-in page or a moved service; check \
                 the target's url and auth",
                self.target,
                self.status,
                self.header("location")
                    .map(|to| format!(" to {to}"))
                    .unwrap_or_default()
            ),
            401 | 403 => format!(
                "{} refused the credentials (HTTP {}{}); check the target's auth",
                self.target,
                self.status,
                self.error_message()
                    .map(|message| format!(": {message}"))
                    .unwrap_or_default()
            ),
            _ => return None,
        };
        Some(Verdict::try_again(why))
    }

    /// The verdict for a success (2xx) that does not carry `proof`, what the service answers
    /// when it has booked a request (a document number). A NATS target's answer (its
    /// `Nats-Stream` header: the request is stored on the target's stream) is all such a target
    /// confirms: **posted**. Otherwise an error body is **rejected** with its message, and
    /// anything else (no body, a proxy's HTML page, other JSON) is **try again**, since nothing
    /// says the request was booked, and a retry with the same `Idempotency-Key` cannot book it
    /// twice (the service answers the booked document then).
    pub fn success_without(&self, proof: &str) -> Verdict {
        if self.header("nats-stream").is_some() {
            return Verdict::posted("");
        }
        if let Some(message) = self
            .error_reported()
            .then(|| self.error_message())
            .flatten()
        {
            return Verdict::rejected(message);
        }
        let body = self.text();
        let body = body.trim();
        let shown = if body.is_empty() {
            "no body".to_owned()
        } else {
            let start: String = body.chars().take(120).collect();
            format!("'{start}'")
        };
        Verdict::try_again(format!(
            "HTTP {} from {} without {proof} ({shown}): not confirmed as booked; asked again \
             with the same Idempotency-Key",
            self.status, self.target
        ))
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
        let coded = |error: &Value| {
            text_of(&error["message"]).map(|message| match error["code"].as_str() {
                Some(code) if !code.is_empty() => format!("{code}: {message}"),
                _ => message,
            })
        };
        if let Some(json) = self.json() {
            let error = &json["error"];
            if let Some(message) = coded(error) {
                // SAP Gateway wraps the application's message in a generic one
                // (`/IWBEP/CX_MGW_BUSI_EXCEPTION`): its first detail is the one a planner needs.
                let detail = error["innererror"]["errordetails"]
                    .as_array()
                    .and_then(|details| details.iter().find_map(coded))
                    .filter(|detail| *detail != message);
                return Some(match detail {
                    Some(detail) => format!("{message}; {detail}"),
                    None => message,
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

text_variant! {
    /// What a target's answer means for the posting.
    pub enum Verdict {
        /// The target booked it; the value is the target's own document id (a material document
        /// number, a delivery block id), or empty when the target gives none.
        Posted = "posted",
        /// Booked, under the target's document id.
        fn posted;
        /// The target refused it for good (a business rule, unknown material): the event is
        /// dead-lettered with this reason.
        Rejected = "rejected",
        /// Refused for good, for this reason.
        fn rejected;
        /// The target could not take it now: the host retries with backoff. The value says why.
        TryAgain = "try-again",
        /// Not now, because of this.
        fn try_again;
    }
}

text_variant! {
    /// Why a plugin could not render requests for an event. Every case is permanent: the host
    /// dead-letters the event at once.
    pub enum RenderError {
        /// The event lacks something the target needs (a lot, a unit the target knows).
        IncompleteEvent = "incomplete-event",
        /// The event lacks something the target needs.
        fn incomplete;
        /// A business rule refuses to post it.
        RejectedByRule = "rejected-by-rule",
        /// A business rule refuses to post the event.
        fn rejected;
        /// Any other reason.
        Other = "other",
        /// Any other reason, for example a route configuration the plugin cannot use.
        fn other;
    }
}

impl std::error::Error for RenderError {}

/// The SDK's shared helpers (the route configuration, the format readers) answer in
/// [`MapError`]; in a poster `?` turns them into the render error of the same meaning.
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

/// One golden fixture of an outbound plugin, `fixtures/<case>.json`: an event (the CloudEvent
/// exactly as on the canonical stream), the requests `render` must return and, for answers a
/// target may give, the verdict `interpret` must give; or the render error. The host's
/// admission and the SDK's native check read the same format (docs/OUTBOUND.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingFixture {
    /// The CloudEvent.
    pub event: Value,
    /// The requests `render` must return, as written (a body may be JSON or base64).
    #[serde(default)]
    pub requests: Option<Vec<Value>>,
    /// Answers and the verdicts they must give.
    #[serde(default)]
    pub answers: Vec<Answer>,
    /// The render error, instead of requests.
    #[serde(default)]
    pub error: Option<RenderError>,
}

/// A target's answer to one of the rendered requests, and what it must mean.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The index of the request answered.
    pub request: usize,
    /// The answer (its target, when left out, is the request's).
    pub response: Response,
    /// The verdict `interpret` must give.
    pub verdict: Verdict,
}

impl Answer {
    /// The answer's response to `request`: its target filled in from the request when the
    /// fixture leaves it out.
    pub fn response_to(&self, request: &Request) -> Response {
        let mut response = self.response.clone();
        if response.target.is_empty() {
            response.target = request.target.clone();
        }
        response
    }
}

/// The JSON form of a request's or response's body, as golden fixtures and dead letters write
/// it: the JSON value itself when the bytes are JSON, else `{"base64": "<the bytes in base64>"}`.
pub mod body {
    use super::*;

    /// The body `bytes` as fixtures and dead letters write it.
    pub fn to_json(bytes: &[u8]) -> Value {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) if !bytes.is_empty() => value,
            _ => serde_json::json!({
                "base64": base64::engine::general_purpose::STANDARD.encode(bytes)
            }),
        }
    }

    /// The bytes of a body written as [`to_json`] writes it.
    pub fn from_json(value: &Value) -> Result<Vec<u8>, String> {
        if let Some(Value::String(text)) = value.get("base64")
            && value.as_object().is_some_and(|o| o.len() == 1)
        {
            return base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("`base64` body: {e}"));
        }
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }

    /// Writes a body field in its JSON form (`#[serde(with = "body")]`).
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        to_json(bytes).serialize(s)
    }

    /// Reads a body field from its JSON form (`#[serde(with = "body")]`).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        from_json(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    /// The schema of a body field.
    #[cfg(feature = "schemars")]
    pub struct Body;

    #[cfg(feature = "schemars")]
    impl schemars::JsonSchema for Body {
        fn schema_name() -> Cow<'static, str> {
            "Body".into()
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({
                "description": "A body: the JSON value itself when the bytes are JSON, else {\"base64\": \"<the bytes in base64>\"}."
            })
        }
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::canonical::HoldAction;
    use serde_json::json;

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

    fn answer(body: &[u8]) -> Response {
        Response {
            target: "erp".into(),
            status: 201,
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    /// What a target takes liberties with in its JSON hides nothing from a poster: a
    /// byte-order mark or white space before it, an `error` member that reports no error, a
    /// document number written as a float.
    #[test]
    fn an_answer_is_read_as_the_target_meant_it() {
        let marked = answer(b"\xEF\xBB\xBF \r\n{\"d\": {\"MaterialDocument\": \"49\"}}");
        assert_eq!(marked.odata_str("MaterialDocument").as_deref(), Some("49"));
        assert_eq!(answer(b"\xEF\xBB\xBF<html>sign in</html>").json(), None);

        for none in [
            json!(null),
            json!(false),
            json!(""),
            json!("  "),
            json!({}),
            json!([]),
            json!(0),
            json!({"code": "", "message": ""}),
        ] {
            let body = json!({"jobId": "J-77", "error": none}).to_string();
            let queued = answer(body.as_bytes());
            assert!(!queued.error_reported(), "{none}");
            assert!(
                matches!(queued.success_without("a document"), Verdict::TryAgain(_)),
                "{none}"
            );
        }
        for some in [
            json!(true),
            json!("failed"),
            json!({"code": "M7/021"}),
            json!({"message": {"lang": "en", "value": "x"}}),
            json!([{"code": "E"}]),
            json!(4),
        ] {
            let body = json!({"error": some}).to_string();
            assert!(answer(body.as_bytes()).error_reported(), "{some}");
        }
        assert_eq!(
            answer(br#"{"error": "period closed"}"#).success_without("a document"),
            Verdict::rejected("period closed")
        );

        for (body, text) in [
            (
                &br#"{"d": {"MaterialDocument": 4.900012345E9}}"#[..],
                "4900012345",
            ),
            (br#"{"MaterialDocument": 4900012345.0}"#, "4900012345"),
            (br#"{"MaterialDocument": 4900012345}"#, "4900012345"),
            (br#"{"MaterialDocument": "0049"}"#, "0049"),
            (br#"{"MaterialDocument": 49.5}"#, "49.5"),
            (br#"{"MaterialDocument": 1e300}"#, "1e+300"),
        ] {
            assert_eq!(
                answer(body).odata_str("MaterialDocument").as_deref(),
                Some(text),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn reads_the_envelope_and_data_of_a_canonical_cloudevent() {
        let event = Event::from_cloudevent(&cloudevent()).unwrap();
        assert_eq!(event.envelope.kind, "quality-hold");
        assert_eq!(event.envelope.site, "PLANT1");
        assert_eq!(event.envelope.subject, "canonical.quality-hold.PLANT1");
        assert_eq!(event.envelope.business_key, "NC-2026-0412@PLANT1");
        assert_eq!(
            event.envelope.business_key,
            event.data.business_key(&event.envelope.site)
        );
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
        assert!(Event::from_payload(b"{").is_err());
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
    fn answers_that_prove_nothing_are_not_postings() {
        let answer = |status: u16, headers: &[(&str, &str)], body: &str| Response {
            target: "erp".into(),
            status,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        };
        // OData v4 and v2 shapes of one value; an empty one is none.
        let v2 = answer(201, &[], r#"{"d":{"MaterialDocument":"4900001234"}}"#);
        assert_eq!(
            v2.odata_str("MaterialDocument").as_deref(),
            Some("4900001234")
        );
        let v4 = answer(201, &[], r#"{"MaterialDocument":"4900001235"}"#);
        assert_eq!(
            v4.odata_str("MaterialDocument").as_deref(),
            Some("4900001235")
        );
        assert_eq!(
            answer(201, &[], r#"{"MaterialDocument":""}"#).odata_str("MaterialDocument"),
            None
        );
        // A lock is "not now".
        assert!(answer(423, &[], "").is_transient());
        // Redirects and refused credentials are the target's configuration: try again.
        let redirect = answer(302, &[("location", "https://sso.example/login")], "");
        assert_eq!(
            redirect.access_problem(),
            Some(Verdict::try_again(
                "erp redirected the request (HTTP 302 to https://sso.example/login): a sign-in \
                 page or a moved service; check the target's url and auth"
            ))
        );
        assert_eq!(
            answer(
                403,
                &[],
                r#"{"error":{"code":"M7/121","message":"no authorization"}}"#
            )
            .access_problem(),
            Some(Verdict::try_again(
                "erp refused the credentials (HTTP 403: M7/121: no authorization); check the \
                 target's auth"
            ))
        );
        assert_eq!(answer(400, &[], "").access_problem(), None);
        // A success without its proof: an error body is rejected, anything else asked again.
        assert_eq!(
            answer(
                200,
                &[],
                r#"{"error":{"code":"M7/021","message":"no such material"}}"#
            )
            .success_without("a material document"),
            Verdict::rejected("M7/021: no such material")
        );
        let login = answer(200, &[], "<html><title>Sign in</title></html>")
            .success_without("a material document");
        assert_eq!(login.kind(), "try-again");
        assert!(
            login
                .to_string()
                .contains("HTTP 200 from erp without a material document ('<html>")
        );
        assert_eq!(
            answer(204, &[], "").success_without("a block id").kind(),
            "try-again"
        );
        // A NATS target confirms what it can: the request is stored on its stream.
        let stored = answer(
            200,
            &[("nats-stream", "OUTBOX"), ("nats-sequence", "7")],
            r#"{"stream":"OUTBOX","sequence":7,"duplicate":false,"document":"OUTBOX:7"}"#,
        );
        assert_eq!(stored.success_without("a block id"), Verdict::posted(""));
        // SAP Gateway's generic message is followed by the application's.
        let sap = answer(
            400,
            &[],
            r#"{"error":{"code":"/IWBEP/CX_MGW_BUSI_EXCEPTION","message":{"lang":"en","value":"Error while processing"},
                "innererror":{"errordetails":[{"code":"M7/053","message":"Posting period 2026/03 is closed"}]}}}"#,
        );
        assert_eq!(
            sap.error_message().as_deref(),
            Some(
                "/IWBEP/CX_MGW_BUSI_EXCEPTION: Error while processing; M7/053: Posting period 2026/03 is closed"
            )
        );
    }

    #[test]
    fn render_errors_and_verdicts_name_their_wit_case() {
        assert_eq!(
            RenderError::incomplete("no lot").to_string(),
            "incomplete-event: no lot"
        );
        assert_eq!(Verdict::try_again("busy").kind(), "try-again");
        assert_eq!(
            RenderError::from(MapError::other("no key 'plant'")),
            RenderError::other("no key 'plant'")
        );
    }

    #[test]
    fn a_body_is_json_when_it_parses_else_base64() {
        assert_eq!(body::to_json(br#"{"a":1}"#), json!({"a": 1}));
        let bytes = vec![0xff, 0x00];
        let written = body::to_json(&bytes);
        assert_eq!(written, json!({"base64": "/wA="}));
        assert_eq!(body::from_json(&written).unwrap(), bytes);
        assert_eq!(body::to_json(&[]), json!({"base64": ""}));
    }
}
