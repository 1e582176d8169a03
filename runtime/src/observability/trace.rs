//! Logs and trace spans. Every raw message is mapped inside a `message` span (route, plugin
//! version, raw sequence, event ids). A W3C `traceparent` header on the raw message makes the
//! span its child, and the events and dead letters carry the span's own `traceparent` on, so a
//! trace runs from the publishing system through millrace to the consumers of the events.
//! With `[telemetry] otlp_endpoint` set, spans are exported over OTLP/HTTP.

use std::sync::OnceLock;

use anyhow::Context as _;
use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, reload};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

type OtelLayer = Option<OpenTelemetryLayer<Registry, opentelemetry_sdk::trace::Tracer>>;

/// Where the OpenTelemetry layer is switched on once the configuration is read.
static OTEL: OnceLock<reload::Handle<OtelLayer, Registry>> = OnceLock::new();

/// Logs go to stderr; `RUST_LOG` tunes them (default `info` for millrace, `warn` otherwise).
/// Span export waits for [`export_otlp`].
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,millrace=info"));
    // Colours only on a terminal: logs written to files or collected stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (otel, handle) = reload::Layer::new(None);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_target(false);
    if tracing_subscriber::registry()
        .with(otel)
        .with(fmt)
        .with(filter)
        .try_init()
        .is_ok()
    {
        let _ = OTEL.set(handle);
    }
}

/// Span export to an OpenTelemetry collector; spans still buffered are sent when it is
/// dropped.
pub struct OtlpExport {
    provider: SdkTracerProvider,
}

impl Drop for OtlpExport {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: the last trace spans could not be exported: {e}");
        }
    }
}

/// Starts exporting spans over OTLP/HTTP (protobuf) to `endpoint` (its base URL, e.g.
/// `http://127.0.0.1:4318`; `/v1/traces` is added). Call it off the async reactor: the
/// exporter's HTTP client blocks on its own thread.
pub fn export_otlp(endpoint: &str, service: &str) -> anyhow::Result<OtlpExport> {
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
    let tracer = provider.tracer("millrace");
    let handle = OTEL
        .get()
        .context("logging is not set up, so spans cannot be exported")?;
    handle
        .modify(|layer| *layer = Some(tracing_opentelemetry::layer().with_tracer(tracer)))
        .context("cannot switch on span export")?;
    tracing::info!(endpoint = url, "exporting trace spans over OTLP");
    Ok(OtlpExport { provider })
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
    crate::transport::header_value(incoming, TRACEPARENT).map(str::to_owned)
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
