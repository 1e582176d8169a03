//! The AsyncAPI 3.0 document of millrace's subjects, built from the same generated schemas.
//!
//! Channels: `raw.{system}.{site}.{format}` (what millrace receives), one
//! `canonical.<kind>.{site}` channel per event kind, `dlq.{route}` and `shadow.{route}` (what it
//! sends), the audit trail `audit.route.{route}.{action}` and `audit.host.{area}.{action}`, and
//! the outbound half's ([`outbound`]): `posting.{target}.{site}`, `out.{target}.{site}`,
//! `ack.{route}.{partner}` and `dlq.outbound.{route}`. The schemas' `$defs` become
//! `components.schemas`, so every `$ref` resolves inside the document.

mod outbound;

use serde_json::{Map, Value, json};

use super::WitVersion;
use super::schema::{self, root};
use crate::audit::AuditEntry;
use crate::delivery::dead_letter::headers as letter;
use crate::operations::shadow::ShadowReport;

/// The AsyncAPI document of `version`.
pub fn document(version: WitVersion) -> Value {
    let mut schemas = Map::new();
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();

    let site = json!({ "description": "The site (plant) code, e.g. PLANT1." });
    let route = json!({ "description": "The route name of the host configuration." });

    channels.insert(
        "raw".into(),
        json!({
            "address": millrace_core::subjects::raw("{system}", "{site}", "{format}"),
            "title": "Raw messages",
            "description": "Raw messages as sources publish them (stream RAW). Sources should set Nats-Msg-Id.",
            "parameters": {
                "system": { "description": "The source system, e.g. mes." },
                "site": site,
                "format": { "description": "The document format, e.g. shift-report." }
            },
            "messages": { "raw": { "$ref": "#/components/messages/raw" } }
        }),
    );
    messages.insert(
        "raw".into(),
        json!({
            "name": "raw",
            "title": "Raw message",
            "contentType": "application/octet-stream",
            "summary": "The source's bytes, unchanged (often not UTF-8).",
            "headers": headers(&[("Nats-Msg-Id", "The source's message identity: millrace's event ids derive from it, so a redelivered message yields the same events.")], &[]),
            "payload": { "type": "string", "format": "binary" }
        }),
    );
    operations.insert(
        "receiveRaw".into(),
        json!({
            "action": "receive",
            "channel": { "$ref": "#/channels/raw" },
            "summary": "millrace consumes raw messages through one durable consumer per route."
        }),
    );

    for kind in schema::kinds() {
        let Some(event) = schema::event(version, &kind) else {
            continue;
        };
        let mut event = relocate(event);
        let name = format!("{}Event", pascal(&kind));
        if let Some(Value::Object(defs)) = event.as_object_mut().and_then(|o| o.remove("$defs")) {
            schemas.extend(defs);
        }
        if let Some(object) = event.as_object_mut() {
            object.remove("$schema");
        }
        schemas.insert(name.clone(), event);
        let channel = format!("canonical-{kind}");
        channels.insert(
            channel.clone(),
            json!({
                "address": millrace_core::subjects::canonical(&kind, "{site}"),
                "title": format!("Canonical {kind} events"),
                "description": format!("millrace.{kind}.v1 CloudEvents (stream CANONICAL)."),
                "parameters": { "site": site },
                "messages": { kind.clone(): { "$ref": format!("#/components/messages/{kind}") } }
            }),
        );
        messages.insert(
            kind.clone(),
            json!({
                "name": kind,
                "title": format!("millrace.{kind}.v1"),
                "contentType": "application/json",
                "headers": headers(&[("Nats-Msg-Id", "The event id, for JetStream de-duplication.")], &["Nats-Msg-Id"]),
                "payload": { "$ref": format!("#/components/schemas/{name}") }
            }),
        );
        operations.insert(
            format!("send-{kind}"),
            json!({
                "action": "send",
                "channel": { "$ref": format!("#/channels/{channel}") },
                "summary": format!("millrace publishes each mapped {kind} event once (de-duplicated by its id).")
            }),
        );
    }

    channels.insert(
        "dead-letters".into(),
        json!({
            "address": millrace_core::subjects::dead_letters("{route}"),
            "title": "Dead letters",
            "description": "Raw messages a route could not map (stream DLQ): the original bytes and headers, plus Millrace-* headers saying what failed.",
            "parameters": { "route": route },
            "messages": { "dead-letter": { "$ref": "#/components/messages/dead-letter" } }
        }),
    );
    let letter_headers = [
        (letter::ROUTE, "The route."),
        (letter::PLUGIN, "name@version of the plugin."),
        (
            letter::ERROR_KIND,
            "The failure kind, e.g. malformed-input, invalid-event, trap, deadline.",
        ),
        (letter::ERROR, "The reason, on one line."),
        (letter::ATTEMPTS, "How many times the plugin was called."),
        (letter::RAW_SUBJECT, "The raw subject."),
        (letter::RAW_SEQUENCE, "The RAW stream sequence."),
        (
            letter::RAW_MSG_ID,
            "The raw message's Nats-Msg-Id, when it had one.",
        ),
        (
            letter::FAILED_AT,
            "When it was dead-lettered, RFC 3339 UTC.",
        ),
        (
            letter::ORIGINAL_HEADER,
            "`Name: value` in base64, for each original header whose name the letter sets itself.",
        ),
        (
            letter::RAW_NOT_COPIED,
            "Set only when the raw message would not fit in one NATS message beside the letter's headers: why. The letter then has no payload and no original headers; both are the RAW stream's message at Millrace-Raw-Sequence.",
        ),
    ];
    messages.insert(
        "dead-letter".into(),
        json!({
            "name": "dead-letter",
            "title": "Dead letter",
            "contentType": "application/octet-stream",
            "headers": headers(&letter_headers, &[letter::ROUTE, letter::ERROR_KIND, letter::ERROR, letter::RAW_SUBJECT]),
            "payload": { "type": "string", "format": "binary", "description": "The raw message's bytes, unchanged; empty when Millrace-Raw-Not-Copied is set." }
        }),
    );
    operations.insert(
        "sendDeadLetter".into(),
        json!({ "action": "send", "channel": { "$ref": "#/channels/dead-letters" } }),
    );

    add_schema(&mut schemas, "ShadowReport", root::<ShadowReport>());
    channels.insert(
        "shadow".into(),
        json!({
            "address": millrace_core::subjects::shadow("{route}"),
            "title": "Shadow reports",
            "description": "Where a shadow candidate's events (inbound routes) or rendered requests (outbound routes) differ from the active version's (stream SHADOW); a shadow never publishes canonical events and never sends a request.",
            "parameters": { "route": route },
            "messages": { "shadow-report": { "$ref": "#/components/messages/shadow-report" } }
        }),
    );
    messages.insert(
        "shadow-report".into(),
        json!({
            "name": "shadow-report",
            "title": "Shadow report",
            "contentType": "application/json",
            "payload": { "$ref": "#/components/schemas/ShadowReport" }
        }),
    );
    operations.insert(
        "sendShadowReport".into(),
        json!({ "action": "send", "channel": { "$ref": "#/channels/shadow" } }),
    );

    add_schema(&mut schemas, "AuditEntry", root::<AuditEntry>());
    let action = json!({
        "description": "What kind of change.",
        "enum": crate::audit::Action::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>()
    });
    for (channel, scope, name, title, description) in [
        (
            "audit-route",
            millrace_core::subjects::AUDIT_ROUTE,
            ("route", route.clone()),
            "Audit trail of a route",
            "Every change to one route (set-version, canary, shadow, promote, rollback, redrive, replay, and the proposals, approvals and rejections of changes) with who made it, when, and the state before and after (stream AUDIT).",
        ),
        (
            "audit-host",
            millrace_core::subjects::AUDIT_HOST,
            (
                "area",
                json!({ "description": "What routes share: plugins (deploys) or projection (rebuilds).", "enum": ["plugins", "projection"] }),
            ),
            "Audit trail of what routes share",
            "Plugin deploys and projection rebuilds, with who made them and when (stream AUDIT).",
        ),
    ] {
        let (parameter, described) = name;
        channels.insert(
            channel.into(),
            json!({
                "address": millrace_core::subjects::audit(scope, &format!("{{{parameter}}}"), "{action}"),
                "title": title,
                "description": description,
                "parameters": { parameter: described, "action": action },
                "messages": { "audit-entry": { "$ref": "#/components/messages/audit-entry" } }
            }),
        );
        operations.insert(
            format!("send-{channel}"),
            json!({ "action": "send", "channel": { "$ref": format!("#/channels/{channel}") } }),
        );
    }
    messages.insert(
        "audit-entry".into(),
        json!({
            "name": "audit-entry",
            "title": "Audit entry",
            "contentType": "application/json",
            "payload": { "$ref": "#/components/schemas/AuditEntry" }
        }),
    );

    outbound::add(outbound::Parts {
        schemas: &mut schemas,
        channels: &mut channels,
        operations: &mut operations,
        messages: &mut messages,
    });

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "millrace subjects",
            "version": version.to_string(),
            "description": format!(
                "The NATS subjects of a millrace host for plugins built against {}. \
                 Generated from the host's model; do not edit. Subject prefixes are the defaults.",
                version.package()
            )
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "schemas": schemas, "messages": messages }
    })
}

/// Adds the generated `schema` to `components.schemas` as `name`, its `$defs` beside it.
fn add_schema(schemas: &mut Map<String, Value>, name: &str, schema: Value) {
    let mut schema = relocate(schema);
    if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        schemas.extend(defs);
    }
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schemas.insert(name.to_owned(), schema);
}

/// A headers schema: the named headers as strings, `required` among them.
fn headers(named: &[(&str, &str)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = named
        .iter()
        .map(|(name, description)| {
            (
                (*name).to_owned(),
                json!({ "type": "string", "description": description }),
            )
        })
        .collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

/// Points `#/$defs/X` references at `#/components/schemas/X`.
fn relocate(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(object) => {
                for (key, v) in object.iter_mut() {
                    if key == "$ref"
                        && let Some(name) = v.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                    {
                        *v = Value::String(format!("#/components/schemas/{name}"));
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// `inventory-movement` → `InventoryMovement`.
fn pascal(kind: &str) -> String {
    kind.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(o) => {
                for (k, v) in o {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap().to_owned());
                    }
                    refs(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_inside_the_document() {
        for version in WitVersion::served() {
            let doc = document(version);
            assert_eq!(doc["asyncapi"], "3.0.0");
            let mut all = Vec::new();
            refs(&doc, &mut all);
            assert!(!all.is_empty());
            for r in all {
                let pointer = r.strip_prefix('#').unwrap();
                assert!(
                    doc.pointer(pointer).is_some(),
                    "{r} does not resolve in {version}"
                );
            }
        }
    }

    #[test]
    fn it_names_every_subject_family() {
        let doc = document(WitVersion::newest());
        let addresses: Vec<&str> = doc["channels"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["address"].as_str().unwrap())
            .collect();
        for wanted in [
            "raw.{system}.{site}.{format}",
            "canonical.inventory-movement.{site}",
            "canonical.shipment-notice.{site}",
            "dlq.{route}",
            "shadow.{route}",
            "posting.{target}.{site}",
            "out.{target}.{site}",
            "ack.{route}.{partner}",
            "dlq.outbound.{route}",
        ] {
            assert!(
                addresses.contains(&wanted),
                "{wanted} missing: {addresses:?}"
            );
        }
    }
}
