//! HTTP ingest for systems that cannot speak NATS (SaaS webhooks, batch drops):
//! `POST /ingest/<system>/<site>/<format>` publishes the body to `raw.<system>.<site>.<format>`
//! and answers only once JetStream has stored it. A token publishes only to the subjects its
//! `subjects` list in the config allows (ownership is read from the subject).
//!
//! The sender's `Idempotency-Key` is scoped by sender and subject: the `Nats-Msg-Id` is a
//! digest of the token name, the subject and the key, so a retried request with the same key
//! is stored once, while another sender's (or another subject's) same key is a new message.
//! The key as sent travels in the `Millrace-Idempotency-Key` header.

use async_nats::HeaderMap as NatsHeaders;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Serialize;

use super::auth::Caller;
use super::{AdminState, ApiError};
use millrace_core::digest::sha256_hex;
use millrace_core::names::IngestSubject;
use millrace_core::subjects::subject_matches;

/// The header carrying the key as the sender sent it.
pub const SENDER_KEY: &str = "Millrace-Idempotency-Key";

/// The header carrying the sender's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// The header naming the token a message was ingested with.
pub const SENDER: &str = "Millrace-Ingest-Sender";

/// What JetStream did with an ingested message.
#[derive(Debug, Serialize)]
pub struct Ingested {
    subject: String,
    stream: String,
    sequence: u64,
    /// True when the key was seen within the duplicate window: nothing new was stored.
    duplicate: bool,
    /// Whether a route of this host consumes the subject.
    routed: bool,
}

/// The `Nats-Msg-Id` of a key sent by `sender` for `subject`.
pub fn message_id(sender: &str, subject: &str, key: &str) -> String {
    let digest = sha256_hex(format!("{sender}\n{subject}\n{key}").as_bytes());
    format!("ingest-{}", &digest[..32])
}

pub async fn ingest(
    State(state): State<AdminState>,
    caller: Caller,
    headers: HeaderMap,
    Path(suffix): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Ingested>), ApiError> {
    let config = &state.host.config;
    let subject =
        IngestSubject::from_path(&suffix).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let subject = subject.as_str().to_owned();
    if !caller.may_ingest(&subject) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` may not publish to {subject}: its `subjects` are {}",
                caller.name,
                caller.subjects.join(", ")
            ),
        ));
    }
    if !config
        .streams
        .raw_subjects
        .iter()
        .any(|p| subject_matches(p, &subject))
    {
        return Err(ApiError::bad_request(format!(
            "{subject} is not captured by the raw stream (streams.raw_subjects: {})",
            config.streams.raw_subjects.join(", ")
        )));
    }
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "send an {IDEMPOTENCY_KEY} header (1 to 256 characters, unique per message): a retried request with the same key is stored once"
            ))
        })?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: nothing to ingest",
        ));
    }
    let mut out = NatsHeaders::new();
    out.insert(
        async_nats::header::NATS_MESSAGE_ID,
        message_id(&caller.name, &subject, key).as_str(),
    );
    out.insert(SENDER_KEY, key);
    out.insert(SENDER, caller.name.as_str());
    for name in [
        header::CONTENT_TYPE.as_str(),
        crate::observability::trace::TRACEPARENT,
    ] {
        if let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) {
            out.insert(name, value);
        }
    }
    // nats-server closes a connection that publishes past its max_payload: refuse first.
    let max = millrace_transport::max_payload(&state.js.client());
    if let Err(too_large) = millrace_transport::fits(Some(&out), body.len(), max) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the message would be {too_large}: send a smaller body"),
        ));
    }
    let stored = state
        .js
        .publish_with_headers(subject.clone(), out, body)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot publish to NATS: {e}"),
            )
        })?
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "JetStream did not store the message, send it again with the same key: {e}"
                ),
            )
        })?;
    let routed = state
        .host
        .table
        .routes()
        .iter()
        .any(|r| r.subjects.iter().any(|p| subject_matches(p, &subject)));
    let status = if stored.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(Ingested {
            subject,
            stream: stored.stream,
            sequence: stored.sequence,
            duplicate: stored.duplicate,
            routed,
        }),
    ))
}
