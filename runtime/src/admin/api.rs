//! The JSON API: the same reads and operations as the CLI, over HTTP.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{AdminState, ApiError};
use crate::config::Scope;
use crate::governance::redrive::{self, LetterDetail, LetterSummary, Redriven, Redriver};
use crate::governance::shadow::{self, ShadowReport};
use crate::observability::figures::{FiguresSnapshot, PartnerFigures, RouteFigures, SiteFigures};
use crate::registry::rollout::{self, Admitted};
use crate::registry::signing::Signature;
use crate::registry::store::{Binding, CandidateMode, StoredFixture, VersionRecord};
use crate::routes::Serving;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// A route: what it consumes, what it serves here, its binding and its figures.
#[derive(Debug, Serialize)]
pub struct RouteView {
    name: String,
    subjects: Vec<String>,
    serving: Vec<Serving>,
    /// The registry binding every host follows; absent while the route serves its
    /// configured plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    binding: Option<Binding>,
    figures: RouteFigures,
}

/// The host's state in one answer.
#[derive(Debug, Serialize)]
pub struct Status {
    version: &'static str,
    uptime_seconds: u64,
    nats_connected: bool,
    ready: bool,
    routes: Vec<RouteView>,
    sites: BTreeMap<String, SiteFigures>,
    partners: BTreeMap<String, PartnerFigures>,
}

impl AdminState {
    /// The routes (or `only` one), with their figures from `figures`.
    async fn route_views(
        &self,
        only: Option<&str>,
        figures: &FiguresSnapshot,
    ) -> Result<Vec<RouteView>, ApiError> {
        let bindings = self
            .host
            .registry
            .bindings()
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        let views = self
            .host
            .table
            .routes()
            .iter()
            .filter(|r| only.is_none_or(|name| *name == *r.name))
            .map(|route| RouteView {
                name: route.name.to_string(),
                subjects: route.subjects.clone(),
                serving: route.serving(),
                binding: bindings.get(&*route.name).cloned(),
                figures: figures
                    .routes
                    .get(&*route.name)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect();
        Ok(views)
    }

    fn check_route(&self, route: &str) -> Result<(), ApiError> {
        rollout::check_route(&self.host.config, route)
            .map_err(|e| ApiError::not_found(format!("{e:#}")))
    }
}

pub async fn status(State(state): State<AdminState>, headers: HeaderMap) -> ApiResult<Status> {
    state.tokens.check(&headers, Scope::Read)?;
    let figures = state.host.observer.snapshot();
    Ok(Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: figures.uptime_seconds,
        nats_connected: matches!(
            state.host.client.connection_state(),
            async_nats::connection::State::Connected
        ),
        ready: state.host.ready.load(std::sync::atomic::Ordering::Relaxed),
        routes: state.route_views(None, &figures).await?,
        sites: figures.sites,
        partners: figures.partners,
    }))
}

pub async fn routes(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> ApiResult<Vec<RouteView>> {
    state.tokens.check(&headers, Scope::Read)?;
    let figures = state.host.observer.snapshot();
    Ok(Json(state.route_views(None, &figures).await?))
}

pub async fn route(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(route): Path<String>,
) -> ApiResult<RouteView> {
    state.tokens.check(&headers, Scope::Read)?;
    state.check_route(&route)?;
    let figures = state.host.observer.snapshot();
    let mut views = state.route_views(Some(&route), &figures).await?;
    views
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("this host does not serve route {route}")))
}

/// `POST /api/v1/routes/{route}/activate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// The deployed version, `name@version`.
    version: String,
    /// Make it a canary on this share of messages (1-99) instead of the active version.
    canary: Option<u8>,
    /// Make it a shadow candidate instead of the active version.
    #[serde(default)]
    shadow: bool,
}

/// What a change of binding did.
#[derive(Debug, Serialize)]
pub struct BindingChanged {
    route: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    admitted: Option<Admitted>,
    binding: Binding,
}

pub async fn activate(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(route): Path<String>,
    Json(body): Json<Activate>,
) -> ApiResult<BindingChanged> {
    let caller = state.tokens.check(&headers, Scope::Admin)?;
    state.check_route(&route)?;
    let mode = match (body.canary, body.shadow) {
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "`canary` and `shadow` exclude each other",
            ));
        }
        (Some(percent), false) if !(1..=99).contains(&percent) => {
            return Err(ApiError::bad_request(
                "`canary` is a share of messages from 1 to 99",
            ));
        }
        (Some(percent), false) => Some(CandidateMode::Canary { percent }),
        (None, true) => Some(CandidateMode::Shadow),
        (None, false) => None,
    };
    let host = &state.host;
    let (admitted, binding) = rollout::set_version(
        &host.config,
        &host.registry,
        &host.sandbox,
        &route,
        &body.version,
        mode,
    )
    .await
    .map_err(|e| ApiError::refused(&e))?;
    tracing::info!(
        route,
        version = body.version,
        by = caller.name,
        "route binding set over the admin API"
    );
    Ok(Json(BindingChanged {
        route,
        admitted: Some(admitted),
        binding,
    }))
}

pub async fn rollback(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(route): Path<String>,
) -> ApiResult<BindingChanged> {
    let caller = state.tokens.check(&headers, Scope::Admin)?;
    state.check_route(&route)?;
    let binding = rollout::rollback(&state.host.config, &state.host.registry, &route).await;
    changed(
        route,
        binding,
        &caller.name,
        "route rolled back over the admin API",
    )
}

pub async fn promote(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(route): Path<String>,
) -> ApiResult<BindingChanged> {
    let caller = state.tokens.check(&headers, Scope::Admin)?;
    state.check_route(&route)?;
    let binding = rollout::promote(&state.host.config, &state.host.registry, &route).await;
    changed(
        route,
        binding,
        &caller.name,
        "candidate promoted over the admin API",
    )
}

/// The answer to a rollback or promote, logged with who asked.
fn changed(
    route: String,
    binding: anyhow::Result<Binding>,
    by: &str,
    what: &str,
) -> ApiResult<BindingChanged> {
    let binding = binding.map_err(|e| ApiError::refused(&e))?;
    tracing::info!(route, to = binding.active, by, "{what}");
    Ok(Json(BindingChanged {
        route,
        admitted: None,
        binding,
    }))
}

/// `?limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    limit: Option<usize>,
}

pub async fn shadow_diffs(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(route): Path<String>,
    Query(query): Query<Limit>,
) -> ApiResult<Vec<ShadowReport>> {
    state.tokens.check(&headers, Scope::Read)?;
    state.check_route(&route)?;
    let limit = query.limit.unwrap_or(20).clamp(1, 1000);
    shadow::reports(&state.js, &state.host.config, &route, limit)
        .await
        .map(Json)
        .map_err(|e| ApiError::unavailable(&e))
}

/// A deployed version, as listed.
#[derive(Debug, Serialize)]
pub struct PluginVersion {
    id: String,
    name: String,
    version: String,
    wit: String,
    digest: String,
    size: u64,
    deployed_at: String,
    fixtures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_by: Option<String>,
    /// Routes using it: `<route> (active|candidate|previous)`.
    routes: Vec<String>,
}

async fn versions(state: &AdminState, name: Option<&str>) -> Result<Vec<PluginVersion>, ApiError> {
    let registry = &state.host.registry;
    let bindings = registry
        .bindings()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let records = registry
        .list()
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(records
        .into_iter()
        .filter(|r| name.is_none_or(|n| r.name == n))
        .map(|record| {
            let id = record.id();
            let routes = rollout::routes_using(&bindings, &id);
            PluginVersion {
                id,
                fixtures: record.fixtures.len(),
                signed_by: record.signature.as_ref().map(|s| s.key.clone()),
                name: record.name,
                version: record.version,
                wit: record.wit,
                digest: record.digest,
                size: record.size,
                deployed_at: record.deployed_at,
                routes,
            }
        })
        .collect())
}

pub async fn plugins(
    State(state): State<AdminState>,
    headers: HeaderMap,
) -> ApiResult<Vec<PluginVersion>> {
    state.tokens.check(&headers, Scope::Read)?;
    Ok(Json(versions(&state, None).await?))
}

pub async fn plugin(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Vec<PluginVersion>> {
    state.tokens.check(&headers, Scope::Read)?;
    let found = versions(&state, Some(&name)).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!(
            "no version of {name} is deployed"
        )));
    }
    Ok(Json(found))
}

/// `POST /api/v1/plugins`: a version uploaded whole.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The plugin.toml text.
    manifest: String,
    /// The component, base64.
    component: String,
    /// Its golden fixtures: name, input (base64) and the expected JSON.
    fixtures: Vec<StoredFixture>,
    /// The publisher's signature over name, version and digest.
    signature: Option<Signature>,
}

/// What a deploy did.
#[derive(Debug, Serialize)]
pub struct Deployed {
    id: String,
    digest: String,
    /// False when the same bytes were already deployed.
    stored: bool,
}

pub async fn deploy(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Json(body): Json<Deploy>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let caller = state.tokens.check(&headers, Scope::Admin)?;
    let component = base64::engine::general_purpose::STANDARD
        .decode(&body.component)
        .map_err(|e| ApiError::bad_request(format!("`component` is not base64: {e}")))?;
    let record = VersionRecord::uploaded(body.manifest, &component, body.fixtures, body.signature)
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let stored = state
        .host
        .registry
        .deploy(&record, &component)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, format!("{e:#}")))?;
    tracing::info!(
        version = record.id(),
        by = caller.name,
        stored,
        "plugin deployed over the admin API"
    );
    let status = if stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Deployed {
            id: record.id(),
            digest: record.digest,
            stored,
        }),
    ))
}

/// `?route=&limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterQuery {
    route: Option<String>,
    limit: Option<usize>,
}

pub async fn dead_letters(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(query): Query<LetterQuery>,
) -> ApiResult<Vec<LetterSummary>> {
    state.tokens.check(&headers, Scope::Read)?;
    if let Some(route) = &query.route {
        state.check_route(route)?;
    }
    let letters = redrive::letters(&state.js, &state.host.config, query.route.as_deref())
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 10_000);
    let skip = letters.len().saturating_sub(limit);
    Ok(Json(letters[skip..].iter().map(|l| l.summary()).collect()))
}

pub async fn dead_letter(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(sequence): Path<u64>,
) -> ApiResult<LetterDetail> {
    state.tokens.check(&headers, Scope::Read)?;
    redrive::letter(&state.js, &state.host.config, sequence)
        .await
        .map(|l| Json(l.detail()))
        .map_err(|e| ApiError::not_found(format!("{e:#}")))
}

/// `POST /api/v1/dead-letters/{sequence}/redrive`, body optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    /// Redrive through this deployed version instead of the route's active one.
    version: Option<String>,
}

pub async fn redrive(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Path(sequence): Path<u64>,
    body: Option<Json<Redrive>>,
) -> ApiResult<Redriven> {
    let caller = state.tokens.check(&headers, Scope::Admin)?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let host = &state.host;
    redrive::letter(&state.js, &host.config, sequence)
        .await
        .map_err(|e| ApiError::not_found(format!("{e:#}")))?;
    let mut redriver = Redriver::new(
        host.config.clone(),
        state.js.clone(),
        host.loader.clone(),
        host.delivery.clone(),
        body.version,
        None,
    )
    .map_err(|e| ApiError::unavailable(&e))?;
    let result = redriver.redrive(sequence).await;
    redriver.finish().await;
    let redriven = result.map_err(|e| ApiError::refused(&e))?;
    tracing::info!(
        sequence,
        by = caller.name,
        still_failing = redriven.still_failing,
        "dead letter redriven over the admin API"
    );
    Ok(Json(redriven))
}
