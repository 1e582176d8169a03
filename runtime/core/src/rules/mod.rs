//! The rules an outcome must pass, pure (no NATS, no state): the events' validity and size
//! ([`accept`], run on the worker thread after every call) and system-of-record ownership. A
//! message that breaks one ends as a [`Failure`] and so as a dead letter.

pub mod ownership;
pub mod validate;

use std::io::Write;

use crate::canonical::MappedEvent;
use crate::config::Limits;
use crate::sandbox::CallError;

pub use self::validate::InvalidEvent;

/// Why a raw message produced no canonical events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The plugin call failed, see [`CallError`].
    #[error(transparent)]
    Call(#[from] CallError),
    /// The plugin returned events that break the canonical rules.
    #[error("invalid event: {}", join(.0))]
    Invalid(Vec<InvalidEvent>),
    /// The route's source system does not own an event's kind at its site.
    #[error("not the system of record: {0}")]
    NotOwner(String),
    /// JetStream gave up delivering the raw message to the route (its `max_deliveries`), so
    /// it never reached the plugin or never got an outcome: why.
    #[error("undeliverable: {0}")]
    Undeliverable(String),
}

fn join(errors: &[InvalidEvent]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Failure {
    /// A short stable name of the failure kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Call(e) => e.kind(),
            Failure::Invalid(_) => "invalid-event",
            Failure::NotOwner(_) => "not-owner",
            Failure::Undeliverable(_) => "undeliverable",
        }
    }

    /// The failure class metrics count by: `map-error` for every error a plugin returns,
    /// else the kind (a few stable values, so label sets stay small).
    pub fn class(&self) -> &'static str {
        match self {
            Failure::Call(CallError::Map(_)) => "map-error",
            other => other.kind(),
        }
    }

    /// True when trying the same message again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Call(e) if e.is_retryable())
    }

    /// The reason without the kind.
    pub fn message(&self) -> String {
        match self {
            Failure::Call(CallError::Map(e)) => e.message().to_owned(),
            Failure::Call(CallError::Render(e)) => e.message().to_owned(),
            Failure::Invalid(errors) => join(errors),
            Failure::NotOwner(message) | Failure::Undeliverable(message) => message.clone(),
            other => other.to_string(),
        }
    }
}

/// Checks what a plugin returned: the route's output limit and every event's validity.
/// All or nothing.
pub fn accept(events: Vec<MappedEvent>, limits: &Limits) -> Result<Vec<MappedEvent>, Failure> {
    let limit = limits.output_kib.saturating_mul(1024);
    let mut size = ByteCount(0);
    for event in &events {
        // Serialising into a counter cannot fail for these plain types.
        let _ = serde_json::to_writer(&mut size, event);
    }
    if size.0 > limit {
        return Err(CallError::Output(format!(
            "the events are {} KiB as JSON, the route allows {} KiB",
            size.0.div_ceil(1024),
            limits.output_kib
        ))
        .into());
    }
    let clock = validate::Clock {
        now: time::OffsetDateTime::now_utc(),
        max_ahead: limits.max_ahead,
    };
    validate::validate_at(&events, clock).map_err(Failure::Invalid)?;
    Ok(events)
}

/// A writer that only counts bytes.
struct ByteCount(u64);

impl Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
