//! The JSON API: the same reads and operations as the CLI, over HTTP.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::{AdminState, ApiError};
use crate::audit::{Actor, AuditEntry, Change};
use crate::observability::figures::{FiguresSnapshot, PartnerFigures, RouteFigures, SiteFigures};
use crate::operations::dead_letters;
use crate::operations::redrive::{self, LetterDetail, LetterSummary, Redriven, Redriver};
use crate::operations::shadow::{self, ShadowReport};
use crate::registry::MAX_FIXTURES;
use crate::registry::rollout;
use crate::registry::signing::Signature;
use crate::registry::store::{Binding, StoredFixture, VersionRecord};
use crate::routes::Serving;
use millrace_core::names::PluginId;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Longest the golden fixtures of one admission over the API may run together.
pub(super) const ADMISSION_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Longest a read of a stream (dead letters, shadow reports) may take before the API answers 503.
pub(super) const STREAM_READ: std::time::Duration = std::time::Duration::from_secs(5);

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
        let bindings = self.bindings().await?;
        let table = &self.host.table;
        // The list is the inbound routes (the outbound ones, with their targets and gates, are
        // `GET /api/v1/outbound`); one route asked for by name is found in either.
        let outbound = if only.is_some() {
            table.outbound()
        } else {
            &[]
        };
        let views = table
            .routes()
            .iter()
            .chain(outbound)
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

    /// The route bindings from the registry. While the host's NATS connection is down, the last
    /// ones read, at once: the status is wanted most then, and reading the registry would wait
    /// for its timeout to fail (the status says `nats_connected: false`).
    pub(super) async fn bindings(&self) -> Result<super::Bindings, ApiError> {
        let last = || {
            self.last_bindings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        };
        if !self.nats_connected()
            && let Some(bindings) = last()
        {
            return Ok(bindings);
        }
        let bindings = match self.host.registry.bindings().await {
            Ok(bindings) => bindings,
            // NATS went away while the read was on its way, before the connection state said
            // so: the last ones read, as above, rather than a 503 for the status.
            Err(crate::registry::store::RegistryError::Unavailable(why)) if last().is_some() => {
                tracing::debug!("route bindings unreadable, the last ones shown: {why}");
                return last().ok_or_else(|| {
                    ApiError::from(crate::registry::store::RegistryError::Unavailable(why))
                });
            }
            Err(e) => return Err(e.into()),
        };
        *self
            .last_bindings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bindings.clone());
        Ok(bindings)
    }

    /// Whether the host's connections to NATS are both up.
    pub(super) fn nats_connected(&self) -> bool {
        [&self.host.client, &self.host.reads].iter().all(|c| {
            matches!(
                c.connection_state(),
                async_nats::connection::State::Connected
            )
        })
    }

    /// Why the host is not ready (`/readyz`, `status.ready`): NATS not connected, the host
    /// stopping, or a route that cannot pull from its consumer (a stream without quorum, a
    /// consumer gone); `None` when connected and every route consumes.
    pub(super) fn not_ready(&self) -> Option<String> {
        if !self.nats_connected() {
            return Some("NATS is not connected".to_owned());
        }
        if !self.host.ready.load(std::sync::atomic::Ordering::Relaxed) {
            return Some("the host is stopping".to_owned());
        }
        let failures = self.host.observer.pull_failures();
        (!failures.is_empty()).then(|| {
            let routes: Vec<String> = failures
                .iter()
                .map(|(route, why)| format!("route {route} cannot pull its messages ({why})"))
                .collect();
            routes.join("; ")
        })
    }

    /// A place among the deploys and admissions running at once, or 503.
    pub(super) fn admission(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.admissions.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "other deploys or admissions are running: try again when they are done",
            )
        })
    }

    pub(super) fn check_route(&self, route: &str) -> Result<(), ApiError> {
        rollout::check_route(&self.host.config, route)
            .map_err(|e| ApiError::not_found(format!("{e:#}")))
    }

    /// Checks the route a listing is narrowed to, when it is.
    pub(super) fn check_route_filter(&self, route: Option<&str>) -> Result<(), ApiError> {
        route.map_or(Ok(()), |route| self.check_route(route))
    }

    /// Records `change`, made by `caller`, in the audit trail.
    pub(super) async fn audit(
        &self,
        caller: &Caller,
        change: Change,
    ) -> Result<AuditEntry, ApiError> {
        self.changes
            .audit()
            .record(&Actor::token(&caller.name), change)
            .await
            .map_err(|e| ApiError::unavailable(&e))
    }
}

pub async fn status(State(state): State<AdminState>) -> ApiResult<Status> {
    let figures = state.host.observer.snapshot();
    Ok(Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: figures.uptime_seconds,
        nats_connected: state.nats_connected(),
        // As `/readyz` says: connected to NATS, and every route consuming.
        ready: state.not_ready().is_none(),
        routes: state.route_views(None, &figures).await?,
        sites: figures.sites,
        partners: figures.partners,
    }))
}

pub async fn routes(State(state): State<AdminState>) -> ApiResult<Vec<RouteView>> {
    let figures = state.host.observer.snapshot();
    Ok(Json(state.route_views(None, &figures).await?))
}

pub async fn route(
    State(state): State<AdminState>,
    Path(route): Path<String>,
) -> ApiResult<RouteView> {
    state.check_route(&route)?;
    let figures = state.host.observer.snapshot();
    let mut views = state.route_views(Some(&route), &figures).await?;
    views
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("this host does not serve route {route}")))
}

/// A listing's `?limit=`: `default` when not given, at most `most`; 0 lists nothing and is the
/// caller's mistake (it listed one).
pub(super) fn list_limit(
    asked: Option<usize>,
    default: usize,
    most: usize,
) -> Result<usize, ApiError> {
    match asked {
        Some(0) => Err(ApiError::bad_request(format!(
            "`limit` is 0: ask for 1 to {most} (default {default})"
        ))),
        asked => Ok(asked.unwrap_or(default).min(most)),
    }
}

/// `?limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    limit: Option<usize>,
}

pub async fn shadow_diffs(
    State(state): State<AdminState>,
    Path(route): Path<String>,
    Query(query): Query<Limit>,
) -> ApiResult<Vec<ShadowReport>> {
    state.check_route(&route)?;
    let limit = list_limit(query.limit, 20, 1000)?;
    shadow::reports(
        &state.js,
        &state.host.config.streams,
        &route,
        limit,
        STREAM_READ,
    )
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
    let bindings = registry.bindings().await?;
    let records = registry.list().await?;
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

pub async fn plugins(State(state): State<AdminState>) -> ApiResult<Vec<PluginVersion>> {
    Ok(Json(versions(&state, None).await?))
}

pub async fn plugin(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> ApiResult<Vec<PluginVersion>> {
    millrace_core::names::check_plugin_name(&name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
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
    caller: Caller,
    Json(body): Json<Deploy>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    if body.fixtures.len() > MAX_FIXTURES {
        return Err(ApiError::bad_request(format!(
            "{} golden fixtures: a version may carry at most {MAX_FIXTURES}",
            body.fixtures.len()
        )));
    }
    let component = base64::engine::general_purpose::STANDARD
        .decode(&body.component)
        .map_err(|e| ApiError::bad_request(format!("`component` is not base64: {e}")))?;
    let record = VersionRecord::uploaded(body.manifest, &component, body.fixtures, body.signature)
        .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let slot = state.admission()?;
    check_component(&state, &record, component.clone(), slot).await?;
    let stored = state.host.registry.deploy(&record, &component).await?;
    if stored {
        let change = Change::deploy(&record);
        state.audit(&caller, change).await?;
    }
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

/// Refuses what is not a WebAssembly component this host can compile, at deploy rather than
/// at activate: a script or random bytes never become a version. Compiling fills the
/// compiled-plugin cache, so the activation that follows does not compile again.
async fn check_component(
    state: &AdminState,
    record: &VersionRecord,
    component: Vec<u8>,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Result<(), ApiError> {
    // The component-model preamble: `\0asm`, then version 0x0d and layer 1.
    const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    if !component.starts_with(&COMPONENT_PREAMBLE) {
        return Err(ApiError::bad_request(
            "`component` is not a WebAssembly component (it lacks the component preamble): build the plugin for wasm32-wasip2 and upload the .wasm file",
        ));
    }
    let sandbox = state.host.sandbox.clone();
    let (name, version) = (record.name.clone(), record.version.clone());
    let acknowledger = record.parsed_manifest().is_ok_and(|m| m.is_acknowledger());
    // The slot is held by the compile itself, which outlives a caller that leaves.
    let built = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        if acknowledger {
            sandbox
                .load_acknowledger(&name, &version, &component)
                .map(|_| None)
        } else {
            sandbox
                .load(&name, &version, &component)
                .map(|loaded| Some(loaded.wit))
        }
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| {
        ApiError::bad_request(format!(
            "`component` is not a component this host can run: {e:#}"
        ))
    })?;
    // The manifest must name the WIT package the component is built against: a version stored
    // otherwise is immutable and refused by every admission.
    if let Some(built) = built {
        crate::registry::check_built_against(record, built)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))?;
    }
    Ok(())
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
    Query(query): Query<LetterQuery>,
) -> ApiResult<Vec<LetterSummary>> {
    state.check_route_filter(query.route.as_deref())?;
    let limit = list_limit(query.limit, 100, dead_letters::MAX_LIST)?;
    let config = &state.host.config;
    dead_letters::recent(
        &state.js,
        &config.streams,
        &redrive::dead_letter_filter(&config.outbound, query.route.as_deref()),
        limit,
        STREAM_READ,
    )
    .await
    .map(Json)
    .map_err(|e| ApiError::unavailable(&e))
}

pub async fn dead_letter(
    State(state): State<AdminState>,
    Path(sequence): Path<u64>,
) -> ApiResult<LetterDetail> {
    tokio::time::timeout(
        STREAM_READ,
        redrive::letter(&state.js, &state.host.config.streams, sequence),
    )
    .await
    .map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("reading dead letter {sequence} took longer than {STREAM_READ:?}: try again"),
        )
    })?
    .map(|l| Json(l.detail()))
    .map_err(|e| ApiError::unavailable(&e))
}

/// `POST /api/v1/dead-letters/{sequence}/redrive`, body optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    /// Redrive through this deployed version instead of the route's active one.
    version: Option<String>,
    /// Post an outbound letter even when a later event of its business key was posted since
    /// (by default it stays, said superseded).
    #[serde(default)]
    superseded: bool,
}

pub async fn redrive(
    State(state): State<AdminState>,
    caller: Caller,
    Path(sequence): Path<u64>,
    body: Option<Json<Redrive>>,
) -> ApiResult<Redriven> {
    let body = body.map(|Json(b)| b).unwrap_or_default();
    if let Some(version) = &body.version {
        PluginId::parse(version).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    let host = &state.host;
    let before = redrive::letter(&state.js, &host.config.streams, sequence)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .summary();
    let mut redriver = Redriver::new(
        host.config.clone(),
        state.js.clone(),
        host.loader.clone(),
        host.delivery.clone(),
        body.version,
        None,
    )
    .map_err(|e| ApiError::unavailable(&e))?
    .post_superseded(body.superseded);
    let result = redriver.redrive(sequence).await;
    redriver.finish().await;
    let redriven = result.map_err(|e| ApiError::refused(&e))?;
    let change = Change::redrive(Some(&before), &redriven);
    state.audit(&caller, change).await?;
    Ok(Json(redriven))
}
