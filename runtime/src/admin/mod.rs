//! The admin HTTP server of a host: health and readiness, Prometheus `/metrics`, the JSON API
//! (described by `openapi.json` beside this file), the web console, and HTTP ingest for the
//! systems that cannot speak NATS.
//!
//! It is served only when the configuration has an `[admin]` section, on loopback unless
//! `admin.listen` says otherwise (and then only with tokens). Tokens carry a scope: `read`,
//! `ingest` or `admin`; see [`auth`].

mod api;
pub mod auth;
mod console;
mod ingest;
mod visibility;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::delivery::Delivery;
use crate::observability::Observer;
use crate::registry::loader::PluginLoader;
use crate::registry::store::Registry;
use crate::routes::RouteTable;
use crate::sandbox::Sandbox;

/// The OpenAPI document of the API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest plugin upload: the component (base64) and its fixtures.
const DEPLOY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// The running host, as the admin server sees it.
pub struct RunningHost {
    /// The configuration it runs.
    pub config: Arc<Config>,
    /// Its NATS connection.
    pub client: async_nats::Client,
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
}

/// What every handler shares.
#[derive(Clone)]
pub struct AdminState {
    host: Arc<RunningHost>,
    tokens: Arc<auth::Tokens>,
    js: async_nats::jetstream::Context,
    visibility: Arc<tokio::sync::OnceCell<crate::projection::query::Visibility>>,
}

impl AdminState {
    /// The state of `host`'s admin server; reads the token secrets.
    pub fn new(host: RunningHost) -> anyhow::Result<Self> {
        let tokens = auth::Tokens::load(host.config.admin.as_ref())?;
        let js = async_nats::jetstream::new(host.client.clone());
        Ok(Self {
            host: Arc::new(host),
            tokens: Arc::new(tokens),
            js,
            visibility: Arc::default(),
        })
    }
}

/// Every route of the server.
pub fn router(state: AdminState) -> Router {
    let ingest_limit = state
        .host
        .config
        .admin
        .as_ref()
        .map_or(1024, |a| a.ingest_max_kib)
        * 1024;
    Router::new()
        .route("/", get(console::page))
        .route("/console.js", get(console::script))
        .route("/console.css", get(console::style))
        .route("/common.js", get(console::common))
        .route("/visibility", get(console::visibility_page))
        .route("/visibility.js", get(console::visibility_script))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/routes", get(api::routes))
        .route("/api/v1/routes/{route}", get(api::route))
        .route("/api/v1/routes/{route}/activate", post(api::activate))
        .route("/api/v1/routes/{route}/rollback", post(api::rollback))
        .route("/api/v1/routes/{route}/promote", post(api::promote))
        .route(
            "/api/v1/routes/{route}/shadow-diffs",
            get(api::shadow_diffs),
        )
        .route(
            "/api/v1/plugins",
            get(api::plugins)
                .post(api::deploy)
                .layer(DefaultBodyLimit::max(DEPLOY_MAX_BYTES)),
        )
        .route("/api/v1/plugins/{name}", get(api::plugin))
        .route("/api/v1/dead-letters", get(api::dead_letters))
        .route("/api/v1/dead-letters/{sequence}", get(api::dead_letter))
        .route(
            "/api/v1/dead-letters/{sequence}/redrive",
            post(api::redrive),
        )
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
        .route(
            "/ingest/{*suffix}",
            post(ingest::ingest).layer(DefaultBodyLimit::max(ingest_limit)),
        )
        .fallback(not_found)
        .with_state(state)
}

/// Serves the admin API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!("admin API, metrics and console on http://{address}/");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
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

    /// A failure of the operation itself (refused version, nothing to roll back...).
    fn refused(error: &anyhow::Error) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{error:#}"))
    }

    /// NATS or the registry could not be reached.
    fn unavailable(error: &anyhow::Error) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("{error:#}"))
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

/// Ready while every route consumes and NATS is connected.
async fn readyz(State(state): State<AdminState>) -> Response {
    let connected = matches!(
        state.host.client.connection_state(),
        async_nats::connection::State::Connected
    );
    let consuming = state.host.ready.load(Ordering::Relaxed);
    if connected && consuming {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = if connected {
            "not ready: the host is stopping\n"
        } else {
            "not ready: NATS is not connected\n"
        };
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

async fn metrics(
    State(state): State<AdminState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    state.tokens.check(&headers, crate::config::Scope::Read)?;
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
