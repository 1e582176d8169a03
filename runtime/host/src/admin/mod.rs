//! The admin HTTP server of a host: health and readiness, Prometheus `/metrics`, the JSON API
//! (described by `openapi.json` beside this file), the web console, and HTTP ingest for the
//! systems that cannot speak NATS.
//!
//! It is served only when the configuration has an `[admin]` section, on loopback unless
//! `admin.listen` says otherwise (and then only with tokens). Tokens carry a scope: `read`,
//! `ingest` or `admin`; see [`auth`]. docs/SECURITY.md is the threat model and the limits.
//!
//! Its reads and ingest use a NATS connection of their own, so no API call can make the
//! server cut the connection the routes consume and publish on.

mod api;
pub mod auth;
mod changes;
mod console;
mod ingest;
mod outbound;
mod postings;
mod schemas;
mod visibility;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::approval::{ProposalError, RouteChanges};
use crate::delivery::Delivery;
use crate::observability::Observer;
use crate::operations::redrive::{LetterInRedrive, NoSuchLetter};
use crate::registry::loader::PluginLoader;
use crate::registry::store::{Registry, RegistryError};
use crate::routes::RouteTable;
use millrace_core::config::{Config, Scope};
use millrace_core::sandbox::Sandbox;

/// The OpenAPI document of the API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest plugin upload: the component (base64) and its fixtures.
const DEPLOY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Deploys and admissions running at once (each holds an upload or compiles a component);
/// more are answered 503.
const ADMISSIONS_AT_ONCE: usize = 2;

/// How long the server waits for requests in flight when it stops.
const DRAIN: Duration = Duration::from_secs(10);

/// The Content-Security-Policy of every answer: the console's own scripts and styles only,
/// API calls to this host only, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The running host, as the admin server sees it.
pub struct RunningHost {
    /// The configuration it runs.
    pub config: Arc<Config>,
    /// Its NATS connection, the one its routes consume and publish on.
    pub client: async_nats::Client,
    /// The admin server's own NATS connection, for its reads and ingest (see
    /// [`reads_connection`]).
    pub reads: async_nats::Client,
    /// The plugin registry.
    pub registry: Registry,
    /// The sandbox, for admitting versions.
    pub sandbox: Sandbox,
    /// Loads routes for redrives.
    pub loader: Arc<PluginLoader>,
    /// The routes it serves.
    pub table: Arc<RouteTable>,
    /// Its delivery stage, for redrives.
    pub delivery: Delivery,
    /// Its metrics and figures.
    pub observer: Arc<Observer>,
    /// True while every route consumes.
    pub ready: Arc<AtomicBool>,
    /// Its outbound driver (targets, gates), when it serves outbound routes.
    pub outbound: Option<Arc<crate::outbound::driver::OutboundDriver>>,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AdminState {
    host: Arc<RunningHost>,
    tokens: Arc<auth::Tokens>,
    /// JetStream on the admin server's own connection.
    js: async_nats::jetstream::Context,
    visibility: Arc<tokio::sync::OnceCell<millrace_projection::query::Visibility>>,
    /// Requests in flight.
    requests: Arc<Semaphore>,
    /// Deploys and admissions in flight.
    admissions: Arc<Semaphore>,
    /// Route changes, proposals and the audit trail.
    changes: RouteChanges,
    /// The route bindings as last read from the registry, shown while NATS is down.
    last_bindings: Arc<std::sync::Mutex<Option<Bindings>>>,
}

/// Every route's binding, by route.
type Bindings = std::collections::BTreeMap<String, crate::registry::store::Binding>;

impl AdminState {
    /// The state of `host`'s admin server; reads the token secrets.
    pub fn new(host: RunningHost) -> anyhow::Result<Self> {
        let tokens = auth::Tokens::load(host.config.admin.as_ref(), &host.config.file())?;
        let js = async_nats::jetstream::new(host.reads.clone());
        let max_requests = host.config.admin.as_ref().map_or(64, |a| a.max_requests);
        let changes = RouteChanges::new(
            host.config.clone(),
            host.registry.clone(),
            host.sandbox.clone(),
            js.clone(),
        );
        Ok(Self {
            changes,
            host: Arc::new(host),
            tokens: Arc::new(tokens),
            js,
            visibility: Arc::default(),
            requests: Arc::new(Semaphore::new(max_requests)),
            admissions: Arc::new(Semaphore::new(ADMISSIONS_AT_ONCE)),
            last_bindings: Arc::default(),
        })
    }
}

/// A NATS connection for the admin server alone, to the server `client` is connected to
/// (`nats.url`, else the address that server announces), with the same credentials. Should
/// it fail, the admin server shares `client`, and says so.
pub async fn reads_connection(config: &Config, client: &async_nats::Client) -> async_nats::Client {
    let url = config.nats.url.clone().unwrap_or_else(|| {
        let info = client.server_info();
        let host = match info.host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => info.host.clone(),
        };
        format!("nats://{host}:{}", info.port)
    });
    match millrace_transport::connect(config, Some(&url)).await {
        Ok(reads) => reads,
        Err(e) => {
            tracing::warn!(
                "the admin API shares the host's NATS connection: its own to {url} failed: {e:#}"
            );
            client.clone()
        }
    }
}

/// Every route of the server. Each group needs one scope, checked by a route layer before
/// any body is read.
pub fn router(state: AdminState) -> Router {
    let ingest_limit = state
        .host
        .config
        .admin
        .as_ref()
        .map_or(1024, |a| a.ingest_max_kib)
        * 1024;
    let gate = |scope| {
        middleware::from_fn_with_state(
            auth::Gate {
                tokens: state.tokens.clone(),
                scope,
            },
            auth::require,
        )
    };
    let open = Router::new()
        .route("/", get(console::page))
        .route("/console.js", get(console::script))
        .route("/console.css", get(console::style))
        .route("/common.js", get(console::common))
        .route("/visibility", get(console::visibility_page))
        .route("/visibility.js", get(console::visibility_script))
        .route("/postings", get(console::postings_page))
        .route("/postings.js", get(console::postings_script))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(openapi));
    let read = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/routes", get(api::routes))
        .route("/api/v1/routes/{route}", get(api::route))
        .route(
            "/api/v1/routes/{route}/shadow-diffs",
            get(api::shadow_diffs),
        )
        .route("/api/v1/plugins", get(api::plugins))
        .route("/api/v1/plugins/{name}", get(api::plugin))
        .route("/api/v1/dead-letters", get(api::dead_letters))
        .route("/api/v1/dead-letters/{sequence}", get(api::dead_letter))
        .route("/api/v1/visibility/inventory", get(visibility::inventory))
        .route(
            "/api/v1/visibility/work-orders",
            get(visibility::work_orders),
        )
        .route("/api/v1/visibility/holds", get(visibility::holds))
        .route(
            "/api/v1/visibility/commitments",
            get(visibility::commitments),
        )
        .route("/api/v1/visibility/sources", get(visibility::sources))
        .route("/api/v1/visibility/postings", get(postings::postings))
        .route("/api/v1/outbound", get(outbound::outbound))
        .route("/api/v1/schemas", get(schemas::index))
        .route("/api/v1/schemas/{wit}/{name}", get(schemas::document))
        .route("/api/v1/audit", get(changes::audit_trail))
        .route("/api/v1/proposals", get(changes::proposals))
        .route("/api/v1/proposals/{id}", get(changes::proposal))
        .route_layer(gate(Scope::Read));
    let admin = Router::new()
        .route("/api/v1/routes/{route}/activate", post(changes::activate))
        .route("/api/v1/routes/{route}/rollback", post(changes::rollback))
        .route("/api/v1/routes/{route}/promote", post(changes::promote))
        .route("/api/v1/proposals/{id}/approve", post(changes::approve))
        .route("/api/v1/proposals/{id}/reject", post(changes::reject))
        .route(
            "/api/v1/plugins",
            post(api::deploy).layer(DefaultBodyLimit::max(DEPLOY_MAX_BYTES)),
        )
        .route(
            "/api/v1/dead-letters/{sequence}/redrive",
            post(api::redrive),
        )
        .route_layer(gate(Scope::Admin));
    let ingest = Router::new()
        .route(
            "/ingest/{*suffix}",
            post(ingest::ingest).layer(DefaultBodyLimit::max(ingest_limit)),
        )
        .route_layer(gate(Scope::Ingest));
    open.merge(read)
        .merge(admin)
        .merge(ingest)
        .fallback(not_found)
        .layer(middleware::from_fn(errors_as_json))
        .layer(middleware::from_fn_with_state(
            state.requests.clone(),
            limit_requests,
        ))
        .layer(middleware::from_fn_with_state(
            state.tokens.clone(),
            auth::loopback_only,
        ))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown`: HTTP/1.1 with a header-read timeout
/// (a client trickling its headers is disconnected) and at most `admin.max_connections`
/// connections (further clients wait in the listen backlog).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let settings = state.host.config.admin.clone().unwrap_or_default();
    tracing::info!("admin API, metrics and console on http://{address}/");
    // Read the bindings once now, so that the status has them should NATS go down before
    // anyone asks; a failure here is the first status request's to report.
    if let Err(e) = state.bindings().await {
        tracing::debug!("cannot read the route bindings yet: {}", e.1);
    }
    let app = router(state);
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let mut open = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = connections.clone().acquire_owned() => permit?,
        };
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("the admin server cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let shutdown = shutdown.clone();
        let header_timeout = settings.header_timeout.get();
        open.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection =
                builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            let mut stopping = false;
            loop {
                tokio::select! {
                    _ = connection.as_mut() => break,
                    () = shutdown.cancelled(), if !stopping => {
                        connection.as_mut().graceful_shutdown();
                        stopping = true;
                    }
                }
            }
        });
        while open.try_join_next().is_some() {}
    }
    let drained =
        tokio::time::timeout(DRAIN, async { while open.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("admin requests still running after {DRAIN:?} were dropped");
    }
    Ok(())
}

/// Answers 503 at once when `admin.max_requests` requests are in flight.
async fn limit_requests(
    State(requests): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    match requests.try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let mut busy = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the admin server is busy (admin.max_requests requests in flight): try again",
            )
            .into_response();
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            busy
        }
    }
}

/// An API error answered as text, as axum's extractors answer a body they cannot read (malformed
/// JSON 400, wrong content type 415, a missing field 422, a body over the limit 413), becomes
/// the API's JSON error, `{"error": ...}`, which the OpenAPI document promises for every error.
async fn errors_as_json(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = path.starts_with("/api/") || path.starts_with("/ingest/");
    let response = next.run(request).await;
    if !api {
        return response;
    }
    let status = response.status();
    let is_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !is_text {
        return response;
    }
    let message = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    ApiError::new(status, message).into_response()
}

/// The headers that keep the console out of frames and the browser from guessing types.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An API error: a status and a message saying what to do.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into())
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure of the operation itself (refused version, nothing to roll back...), unless a
    /// registry error in its chain says otherwise (not deployed, a conflict, unreachable).
    fn refused(error: &anyhow::Error) -> Self {
        Self::classified(error, StatusCode::UNPROCESSABLE_ENTITY)
    }

    /// NATS or the registry could not be reached, unless a registry error in the chain says
    /// otherwise.
    fn unavailable(error: &anyhow::Error) -> Self {
        Self::classified(error, StatusCode::SERVICE_UNAVAILABLE)
    }

    /// The status the first typed error in `error`'s chain names (a [`RegistryError`]'s or a
    /// [`ProposalError`]'s kind, 404 for a [`NoSuchLetter`], 409 for a [`LetterInRedrive`]),
    /// else `otherwise`.
    fn classified(error: &anyhow::Error, otherwise: StatusCode) -> Self {
        let status = error
            .chain()
            .find_map(|cause| {
                if let Some(registry) = cause.downcast_ref::<RegistryError>() {
                    return Some(registry.status());
                }
                if let Some(proposal) = cause.downcast_ref::<ProposalError>() {
                    return Some(proposal.status());
                }
                if cause.downcast_ref::<LetterInRedrive>().is_some() {
                    return Some(StatusCode::CONFLICT);
                }
                cause
                    .downcast_ref::<NoSuchLetter>()
                    .map(|_| StatusCode::NOT_FOUND)
            })
            .unwrap_or(otherwise);
        Self::new(status, format!("{error:#}"))
    }
}

impl RegistryError {
    /// The HTTP status of a registry error's kind.
    fn status(&self) -> StatusCode {
        match self {
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Conflict(_) => StatusCode::CONFLICT,
            RegistryError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RegistryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl ProposalError {
    /// The HTTP status of a proposal error's kind.
    fn status(&self) -> StatusCode {
        match self {
            ProposalError::NotFound(_) => StatusCode::NOT_FOUND,
            ProposalError::OwnProposal { .. } => StatusCode::FORBIDDEN,
            ProposalError::Decided { .. } => StatusCode::CONFLICT,
            ProposalError::Expired { .. } => StatusCode::GONE,
            ProposalError::ReasonTooLong(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        Self::new(error.status(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint: see /api/v1/openapi.json")
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready while every route consumes and both NATS connections (the routes' and the admin
/// server's) are up.
async fn readyz(State(state): State<AdminState>) -> Response {
    match state.not_ready() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AdminState>) -> Result<Response, ApiError> {
    let text = state.host.observer.metrics.encode().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}"),
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    /// The paths `router` serves, read from its source.
    fn served() -> BTreeSet<String> {
        let source = include_str!("mod.rs");
        let body = &source[source.find("pub fn router").unwrap()
            ..source.find("/// Serves the admin API").unwrap()];
        body.split(".route(")
            .skip(1)
            .filter_map(|call| call.trim_start().strip_prefix('"'))
            .map(|rest| rest[..rest.find('"').unwrap()].replace("{*suffix}", "{path}"))
            .collect()
    }

    #[test]
    fn the_openapi_document_describes_every_path_served() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        let documented: BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(served(), documented);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(op["summary"].is_string(), "{method} {path} has no summary");
                assert!(
                    !op["responses"].as_object().unwrap().is_empty(),
                    "{method} {path}"
                );
            }
        }
    }
}
