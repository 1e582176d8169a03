//! Route changes over the API — activate, promote, rollback — through the governed path
//! ([`crate::approval`]): applied at once, or proposed where `approval.routes` asks for a
//! second identity; the proposals and their approval; and the audit trail.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::api::{ADMISSION_BUDGET, STREAM_READ};
use super::auth::Caller;
use super::{AdminState, ApiError};
use crate::approval::{Applied, Outcome, Proposal, ProposalState, RouteChange};
use crate::audit::{self, Action, Actor, AuditEntry, AuditQuery};
use crate::registry::AdmissionBounds;
use crate::registry::rollout::Admitted;
use crate::registry::store::{Binding, CandidateMode};
use millrace_core::names::PluginId;

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
    /// The binding it replaced; absent while the route served its configured plugin.
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<Binding>,
}

impl From<Applied> for BindingChanged {
    fn from(applied: Applied) -> Self {
        Self {
            route: applied.route,
            admitted: applied.admitted,
            binding: applied.switched.after,
            before: applied.switched.before,
        }
    }
}

/// Bounds for an admission over the API: within [`ADMISSION_BUDGET`], in one of the admission
/// places, and stopped when the caller disconnects (the handler, and with it `cancel`'s drop
/// guard, is dropped).
fn admission_bounds(
    state: &AdminState,
) -> Result<(AdmissionBounds, tokio_util::sync::DropGuard), ApiError> {
    let slot = state.admission()?;
    let cancel = CancellationToken::new();
    let guard = cancel.clone().drop_guard();
    Ok((
        AdmissionBounds {
            budget: ADMISSION_BUDGET,
            cancel,
            slot: Some(slot),
            ..AdmissionBounds::default()
        },
        guard,
    ))
}

/// 200 with the binding when the change took effect, 202 with the proposal when it waits for
/// approval.
fn answer(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Applied(applied) => Json(BindingChanged::from(applied)).into_response(),
        Outcome::Proposed(proposal) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "proposal": proposal })),
        )
            .into_response(),
    }
}

async fn request(
    state: &AdminState,
    caller: &Caller,
    route: &str,
    change: RouteChange,
    bounds: AdmissionBounds,
) -> Result<Response, ApiError> {
    state.check_route(route)?;
    state
        .changes
        .request(&Actor::token(&caller.name), route, change, bounds)
        .await
        .map(answer)
        .map_err(|e| ApiError::refused(&e))
}

pub async fn activate(
    State(state): State<AdminState>,
    caller: Caller,
    Path(route): Path<String>,
    Json(body): Json<Activate>,
) -> Result<Response, ApiError> {
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
    PluginId::parse(&body.version).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (bounds, _stop_when_dropped) = admission_bounds(&state)?;
    let change = RouteChange::SetVersion {
        version: body.version,
        mode,
    };
    request(&state, &caller, &route, change, bounds).await
}

pub async fn rollback(
    State(state): State<AdminState>,
    caller: Caller,
    Path(route): Path<String>,
) -> Result<Response, ApiError> {
    let bounds = AdmissionBounds::default();
    request(&state, &caller, &route, RouteChange::Rollback, bounds).await
}

pub async fn promote(
    State(state): State<AdminState>,
    caller: Caller,
    Path(route): Path<String>,
) -> Result<Response, ApiError> {
    let bounds = AdmissionBounds::default();
    request(&state, &caller, &route, RouteChange::Promote, bounds).await
}

/// `?route=&state=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalQuery {
    route: Option<String>,
    state: Option<ProposalState>,
}

pub async fn proposals(
    State(state): State<AdminState>,
    Query(query): Query<ProposalQuery>,
) -> Result<Json<Vec<Proposal>>, ApiError> {
    state.check_route_filter(query.route.as_deref())?;
    let proposals = async {
        state
            .changes
            .proposals()
            .await?
            .list(query.route.as_deref())
            .await
    }
    .await
    .map_err(|e| ApiError::unavailable(&e))?;
    Ok(Json(
        proposals
            .into_iter()
            .filter(|p| query.state.is_none_or(|s| s == p.state))
            .collect(),
    ))
}

pub async fn proposal(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<Proposal>, ApiError> {
    async { state.changes.proposals().await?.get(&id).await }
        .await
        .map(Json)
        .map_err(|e| ApiError::unavailable(&e))
}

/// What an approval did.
#[derive(Debug, Serialize)]
pub struct Approved {
    proposal: Proposal,
    #[serde(flatten)]
    changed: BindingChanged,
}

pub async fn approve(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Approved>, ApiError> {
    let (bounds, _stop_when_dropped) = admission_bounds(&state)?;
    let (proposal, applied) = state
        .changes
        .approve(&Actor::token(&caller.name), &id, bounds)
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Json(Approved {
        proposal,
        changed: applied.into(),
    }))
}

/// `POST /api/v1/proposals/{id}/reject`, body optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// Why, for the proposer and the trail.
    reason: Option<String>,
}

pub async fn reject(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<Reject>>,
) -> Result<Json<Proposal>, ApiError> {
    let reason = body.and_then(|Json(b)| b.reason);
    state
        .changes
        .reject(&Actor::token(&caller.name), &id, reason)
        .await
        .map(Json)
        .map_err(|e| ApiError::refused(&e))
}

/// `?route=&action=&who=&since=&limit=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    route: Option<String>,
    action: Option<String>,
    who: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

pub async fn audit_trail(
    State(state): State<AdminState>,
    Query(params): Query<AuditParams>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    state.check_route_filter(params.route.as_deref())?;
    let action = params
        .action
        .as_deref()
        .map(str::parse::<Action>)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let since = params
        .since
        .as_deref()
        .map(|s| audit::parse_since(s, time::OffsetDateTime::now_utc()))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let query = AuditQuery {
        route: params.route,
        action,
        who: params.who,
        since,
        limit: super::api::list_limit(params.limit, 100, audit::MAX_LIST)?,
    };
    state
        .changes
        .audit()
        .list(&query, STREAM_READ)
        .await
        .map(Json)
        .map_err(|e| ApiError::unavailable(&e))
}
