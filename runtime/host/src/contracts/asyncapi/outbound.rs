//! The outbound half's channels: posting acknowledgements `posting.{target}.{site}`, the
//! requests NATS targets receive on `out.{target}.{site}`, the trading partners' functional
//! acknowledgements `ack.{route}.{partner}` and the outbound dead letters
//! `dlq.outbound.{route}`. Payload schemas come from the host's own types.

use serde_json::{Map, Value, json};

use super::{add_schema, headers};
use crate::acknowledgements::{CONTROL_NUMBER_HEADER, PLUGIN_HEADER, RAW_ID_HEADER};
use crate::contracts::schema::root;
use crate::delivery::dead_letter::headers as letter;
use crate::outbound::acknowledgement::Acknowledgement;
use crate::outbound::letter::{DIRECTION, OutboundLetter};
use millrace_core::subjects;

/// What `posting.{target}.{site}` carries.
const POSTINGS: &str = "One per request a target answered for good: posted (with the target's document id) or rejected (with the reason), with the posting delay from the event's source time (stream POSTING). What the projection and the console read.";
/// Who sends on it.
const POSTED_SUMMARY: &str =
    "An outbound route acknowledges each request its target answered for good.";
/// What `out.{target}.{site}` carries.
const OUTBOX: &str = "What an outbound route sends to a target of kind `nats` (stream OUTBOX): the body the plugin rendered, with its headers; the request's method and path are not carried. Systems that consume from NATS read it here.";
/// Who sends on it.
const SENT_SUMMARY: &str = "An outbound route posts a request to a NATS target; the host counts it posted once JetStream stored it.";

/// The document's parts the outbound channels are added to.
pub(super) struct Parts<'a> {
    /// `components.schemas`.
    pub schemas: &'a mut Map<String, Value>,
    /// `channels`.
    pub channels: &'a mut Map<String, Value>,
    /// `operations`.
    pub operations: &'a mut Map<String, Value>,
    /// `components.messages`.
    pub messages: &'a mut Map<String, Value>,
}

impl Parts<'_> {
    /// Adds the channel `id` (its address, title, description and parameters in `channel`),
    /// the messages it carries (each named by its `name`) and millrace's send operation on it,
    /// `operation`, with `summary`.
    fn channel(
        &mut self,
        (id, operation, summary): (&str, &str, &str),
        mut channel: Value,
        carried: Vec<Value>,
    ) {
        let mut references = Map::new();
        for message in carried {
            let name = message["name"].as_str().unwrap_or_default().to_owned();
            references.insert(
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            );
            self.messages.insert(name, message);
        }
        channel["messages"] = Value::Object(references);
        self.channels.insert(id.to_owned(), channel);
        self.operations.insert(
            operation.to_owned(),
            json!({
                "action": "send",
                "channel": { "$ref": format!("#/channels/{id}") },
                "summary": summary
            }),
        );
    }
}

/// Adds the outbound channels, their messages, schemas and send operations.
pub(super) fn add(mut parts: Parts<'_>) {
    let site = json!({ "description": "The site (plant) code, e.g. PLANT1." });
    let target = json!({ "description": "The target's name in the host configuration (`[targets.<name>]`)." });
    let route = json!({ "description": "The route name of the host configuration." });

    add_schema(
        parts.schemas,
        "PostingAcknowledgement",
        root::<Acknowledgement>(),
    );
    // The two channels of a target at a site, `<…>.{target}.{site}`.
    let per_target = |subject: fn(&str, &str) -> String, title: &str, description: &str| {
        json!({
            "address": subject("{target}", "{site}"),
            "title": title,
            "description": description,
            "parameters": { "target": target, "site": site }
        })
    };
    let acknowledgement = json!({
        "name": "posting-acknowledgement",
        "title": "Posting acknowledgement",
        "contentType": "application/json",
        "headers": headers(&[("Nats-Msg-Id", "posting:<route>:<event id>:<request index>:<posted|rejected>: one acknowledgement per request and outcome, however often the event is redelivered (a rejected request posted after its dead letter is redriven has its own).")], &["Nats-Msg-Id"]),
        "payload": { "$ref": "#/components/schemas/PostingAcknowledgement" }
    });
    parts.channel(
        ("postings", "sendPostingAcknowledgement", POSTED_SUMMARY),
        per_target(subjects::posting, "Posting acknowledgements", POSTINGS),
        vec![acknowledgement],
    );

    let request_headers = [
        (
            "Nats-Msg-Id",
            "The idempotency key: JetStream drops a repeat within its duplicate window.",
        ),
        (
            "Idempotency-Key",
            "The canonical event id (`<id>-1`, `<id>-2`, … for the event's later requests to the same target): a consumer books each key once.",
        ),
        (
            "Content-Type",
            "The plugin's, else application/json for a JSON body and application/octet-stream for any other.",
        ),
    ];
    let request = json!({
        "name": "target-request",
        "title": "Request to a NATS target",
        "summary": "The request's body, unchanged: JSON for the shipped plugins' targets, any bytes in general.",
        "headers": headers(&request_headers, &["Nats-Msg-Id", "Idempotency-Key", "Content-Type"]),
        "payload": { "type": "string", "format": "binary", "description": "The body the outbound plugin rendered." }
    });
    parts.channel(
        ("outbox", "sendTargetRequest", SENT_SUMMARY),
        per_target(subjects::outbox, "Requests to NATS targets", OUTBOX),
        vec![request],
    );

    let acknowledgement_headers = headers(
        &[
            (
                "Nats-Msg-Id",
                "ack:<route>:<raw identity>: one acknowledgement per raw message.",
            ),
            (RAW_ID_HEADER, "The identity of the raw message it answers."),
            (
                CONTROL_NUMBER_HEADER,
                "Its control number, drawn for the partner by compare-and-swap: never repeated.",
            ),
            (PLUGIN_HEADER, "name@version of the acknowledger plugin."),
        ],
        &[
            "Nats-Msg-Id",
            RAW_ID_HEADER,
            CONTROL_NUMBER_HEADER,
            PLUGIN_HEADER,
        ],
    );
    let document = |name: &str, title: &str, content_type: &str, standard: &str| {
        json!({
            "name": name,
            "title": title,
            "contentType": content_type,
            "headers": acknowledgement_headers,
            "payload": { "type": "string", "format": "binary", "description": standard }
        })
    };
    parts.channel(
        ("partner-acknowledgements", "sendPartnerAcknowledgement", "After a raw interchange is mapped or dead-lettered, the route's acknowledger answers the partner."),
        json!({
            "address": subjects::acknowledgement("{route}", "{partner}"),
            "title": "Functional acknowledgements for trading partners",
            "description": "An X12 997 or EDIFACT CONTRL per inbound interchange of a route with an acknowledger (stream ACKS), with a control number that never repeats for the partner.",
            "parameters": {
                "route": route,
                "partner": { "description": "The interchange sender's id, as a subject token." }
            }
        }),
        vec![
            document("x12-997", "X12 997 functional acknowledgement", "application/EDI-X12", "An X12 interchange (ISA … IEA) holding one 997: AK1/AK2/AK5/AK9 with the X12 error codes."),
            document("edifact-contrl", "EDIFACT CONTRL syntax and service report", "application/EDIFACT", "An EDIFACT interchange (UNB … UNZ) holding one CONTRL: UCI, UCF and UCM with the action and syntax error codes."),
        ],
    );

    add_schema(
        parts.schemas,
        "OutboundDeadLetter",
        root::<OutboundLetter>(),
    );
    let letter_headers = [
        (
            "Nats-Msg-Id",
            "One dead letter per event and route, however often the event is redelivered.",
        ),
        (DIRECTION, "outbound."),
        (letter::ROUTE, "The outbound route."),
        (
            letter::PLUGIN,
            "name@version of the outbound plugin, when one was called.",
        ),
        (
            letter::ERROR_KIND,
            "The failure kind: rejected, gave-up, incomplete-event, rejected-by-rule, other, refused-request, not-canonical, trap, deadline, …",
        ),
        (letter::ERROR, "The reason, on one line."),
        (
            letter::ATTEMPTS,
            "How many times the plugin was called for the failure (the route's retries of a render or of reading an answer); 1 for a target's rejection or a request the host refused.",
        ),
        (letter::RAW_SUBJECT, "The canonical subject of the event."),
        (letter::RAW_SEQUENCE, "The CANONICAL stream sequence."),
        (
            letter::FAILED_AT,
            "When it was dead-lettered, RFC 3339 UTC.",
        ),
    ];
    parts.channel(
        ("outbound-dead-letters", "sendOutboundDeadLetter", "An outbound route dead-letters an event it cannot post: rejected by the target, refused by the plugin or the host."),
        json!({
            "address": subjects::outbound_dead_letters("{route}"),
            "title": "Outbound dead letters",
            "description": "Canonical events an outbound route could not post (stream DLQ): the event as it was, the requests rendered, the request that failed and the target's last answer. `millrace dlq redrive` posts them again.",
            "parameters": { "route": route }
        }),
        vec![json!({
            "name": "outbound-dead-letter",
            "title": "Outbound dead letter",
            "contentType": "application/json",
            "headers": headers(&letter_headers, &[letter::ROUTE, letter::ERROR_KIND, letter::ERROR, DIRECTION]),
            "payload": { "$ref": "#/components/schemas/OutboundDeadLetter" }
        })],
    );
}
