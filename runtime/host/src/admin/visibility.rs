//! The visibility projection over HTTP: stock with its quality holds, work orders, holds,
//! supplier commitments and the age of each source's last update, read from the projection's
//! buckets (the projection may run in this host or another process).

use axum::Json;
use axum::extract::{Query, State};

use super::{AdminState, ApiError};
use millrace_projection::ProjectionError;
use millrace_projection::query::{
    CommitmentView, Filter, HoldView, InventoryFilter, InventoryPosition, SourceView, Visibility,
    WorkOrderView,
};

type ApiResult<T> = Result<Json<T>, ApiError>;

impl AdminState {
    /// The projection's read side, opened on first use. While NATS is down, 503 at once:
    /// each bucket read would wait for its timeout to fail.
    pub(super) async fn visibility(&self) -> Result<&Visibility, ApiError> {
        if !self.nats_connected() {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "NATS is not connected: the projection's buckets cannot be read until it is",
            ));
        }
        self.visibility
            .get_or_try_init(|| Visibility::open(&self.js, &self.host.config.projection))
            .await
            .map_err(ApiError::from)
    }
}

/// A projection that cannot be read leaves the service unavailable.
impl From<ProjectionError> for ApiError {
    fn from(e: ProjectionError) -> Self {
        ApiError::unavailable(&e.into())
    }
}

pub async fn inventory(
    State(state): State<AdminState>,
    Query(filter): Query<InventoryFilter>,
) -> ApiResult<Vec<InventoryPosition>> {
    Ok(Json(state.visibility().await?.inventory(&filter).await?))
}

pub async fn work_orders(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Vec<WorkOrderView>> {
    Ok(Json(state.visibility().await?.work_orders(&filter).await?))
}

pub async fn holds(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Vec<HoldView>> {
    Ok(Json(state.visibility().await?.holds(&filter).await?))
}

pub async fn commitments(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Vec<CommitmentView>> {
    Ok(Json(state.visibility().await?.commitments(&filter).await?))
}

pub async fn sources(State(state): State<AdminState>) -> ApiResult<Vec<SourceView>> {
    Ok(Json(state.visibility().await?.sources().await?))
}
