//! Logs and trace spans. Every raw message is mapped inside a `message` span (route, plugin
//! version, raw sequence, event ids). A W3C `traceparent` header on the raw message makes the
//! span its child, and the events and dead letters carry the span's own `traceparent` on, so a
//! trace runs from the publishing system through millrace to the consumers of the events.
//! With `[telemetry] otlp_endpoint` set, `run` and `up` export spans over OTLP/HTTP.

use anyhow::Context as _;
use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use millrace_core::config::TelemetryConfig;

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// Sets up logging to stderr (`RUST_LOG` tunes it: default `info` for millrace, `warn`
/// otherwise) and, when `telemetry` names an OTLP endpoint, span export to it. Call it off the
/// async reactor: the exporter's HTTP client blocks on its own thread.
pub fn init_logging(telemetry: Option<&TelemetryConfig>) -> anyhow::Result<Option<OtlpExport>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,millrace=info"));
    // Colours only on a terminal: logs written to files or collected stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(|| OneLine(std::io::stderr()))
        .with_target(false);
    let export = match telemetry.and_then(|t| t.otlp_endpoint.as_deref().map(|e| (e, t))) {
        Some((endpoint, telemetry)) => Some(export_otlp(endpoint, &telemetry.service_name)?),
        None => None,
    };
    let otel = export.as_ref().map(|export| {
        tracing_opentelemetry::layer().with_tracer(export.provider.tracer("millrace"))
    });
    // A second call (tests running commands in one process) keeps the first set-up.
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(fmt)
        .with(filter)
        .try_init();
    if let Some(export) = &export {
        tracing::info!(endpoint = export.url, "exporting trace spans over OTLP");
    }
    Ok(export)
}

/// A log writer that keeps each record on one line: the formatter writes a record at a time,
/// ending in a line break, and a line break or carriage return inside it (a plugin's log
/// message or map error, which a plugin writes) is written as `\n` or `\r`. Otherwise a
/// plugin could write what reads as a record of the host's own (`... INFO message{route=..}:
/// all good`) into the operator's log.
struct OneLine<W>(W);

impl<W: std::io::Write> std::io::Write for OneLine<W> {
    fn write(&mut self, record: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match record.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (record, &b""[..]),
        };
        if !body.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            self.0.write_all(record)?;
            return Ok(record.len());
        }
        let mut line = Vec::with_capacity(record.len() + 16);
        for &b in body {
            match b {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                _ => line.push(b),
            }
        }
        line.extend_from_slice(end);
        self.0.write_all(&line)?;
        Ok(record.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Span export to an OpenTelemetry collector; spans still buffered are sent when it is
/// dropped.
pub struct OtlpExport {
    provider: SdkTracerProvider,
    url: String,
}

impl Drop for OtlpExport {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: the last trace spans could not be exported: {e}");
        }
    }
}

/// Span export over OTLP/HTTP (protobuf) to `endpoint`, its base URL (e.g.
/// `http://127.0.0.1:4318`; `/v1/traces` is added).
fn export_otlp(endpoint: &str, service: &str) -> anyhow::Result<OtlpExport> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .build()
        .with_context(|| format!("cannot set up OTLP export to {url}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_owned())
                .build(),
        )
        .build();
    Ok(OtlpExport { provider, url })
}

/// The span a raw message is mapped in, child of the trace its `traceparent` names.
pub fn message_span(
    route: &str,
    plugin_version: &str,
    raw_sequence: u64,
    headers: Option<&HeaderMap>,
) -> Span {
    let span = tracing::info_span!(
        "message",
        route,
        plugin_version,
        raw_sequence,
        event_ids = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    if let Some(headers) = headers
        && headers.get(TRACEPARENT).is_some()
    {
        let parent = TraceContextPropagator::new().extract(&Headers(headers));
        // Fails only when span export is off: then the raw message's context is passed on as is.
        let _ = span.set_parent(parent);
    }
    span
}

/// The `traceparent` to put on what `span` publishes: the span's own when spans are exported,
/// else the one the raw message came with.
pub fn outgoing(span: &Span, incoming: Option<&HeaderMap>) -> Option<String> {
    let context = span.context();
    if context.span().span_context().is_valid() {
        let mut out = Carrier(None);
        TraceContextPropagator::new().inject_context(&context, &mut out);
        return out.0;
    }
    millrace_transport::header_value(incoming, TRACEPARENT)
        .filter(|value| is_traceparent(value))
        .map(str::to_owned)
}

/// Whether `value` is a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero):
/// only one is passed on, so a publisher cannot make every event carry a header of its choosing
/// (of any length: with it an event or a dead letter could pass a NATS message's size).
fn is_traceparent(value: &str) -> bool {
    let hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let not_zero = |part: &str| part.bytes().any(|b| b != b'0');
    let parts: Vec<&str> = value.split('-').collect();
    matches!(parts.as_slice(), [version, trace, span, flags]
        if hex(version, 2) && *version != "ff" && hex(trace, 32) && hex(span, 16)
            && hex(flags, 2) && not_zero(trace) && not_zero(span))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

struct Carrier(Option<String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        if key == TRACEPARENT {
            self.0 = Some(value);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{OneLine, is_traceparent};

    /// What a plugin writes (a log message, a map error) cannot start a record of its own.
    #[test]
    fn a_log_record_stays_on_one_line() {
        use std::io::Write as _;
        let mut out = OneLine(Vec::new());
        out.write_all(b"INFO plugin log: bad\n2026-12-01T13:20:01Z  INFO all good\r\n")
            .unwrap();
        out.write_all(b"INFO plain\n").unwrap();
        out.write_all(b"no end").unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "INFO plugin log: bad\\n2026-12-01T13:20:01Z  INFO all good\\r\nINFO plain\nno end"
        );
    }

    #[test]
    fn only_a_w3c_traceparent_is_passed_on() {
        assert!(is_traceparent(
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        ));
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            &"0".repeat(600_000),
        ] {
            assert!(!is_traceparent(bad), "{bad:.80}");
        }
    }
}
