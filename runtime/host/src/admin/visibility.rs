//! The visibility projection over HTTP: stock with its quality holds, work orders, holds,
//! supplier commitments and the age of each source's last update, read from the projection's
//! buckets (the projection may run in this host or another process).

use axum::Json;
use axum::extract::{Query, State};

use super::{AdminState, ApiError};
use millrace_projection::query::{
    CommitmentView, Filter, HoldView, InventoryFilter, InventoryPosition, SourceView, Visibility,
    WorkOrderView,
};

type ApiResult<T> = Result<Json<T>, ApiError>;

impl AdminState {
    /// The projection's read side, opened on first use.
    pub(super) async fn visibility(&self) -> Result<&Visibility, ApiError> {
        self.visibility
            .get_or_try_init(|| Visibility::open(&self.js, &self.host.config.projection))
            .await
            .map_err(|e| ApiError::unavailable(&e.into()))
    }
}

fn failed(e: millrace_projection::ProjectionError) -> ApiError {
    ApiError::unavailable(&e.into())
}

pub async fn inventory(
    State(state): State<AdminState>,
    Query(filter): Query<InventoryFilter>,
) -> ApiResult<Vec<InventoryPosition>> {
    let visibility = state.visibility().await?;
    visibility
        .inventory(&filter)
        .await
        .map(Json)
        .map_err(failed)
}

pub async fn work_orders(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Vec<WorkOrderView>> {
    let visibility = state.visibility().await?;
    visibility
        .work_orders(&filter)
        .await
        .map(Json)
        .map_err(failed)
}

pub async fn holds(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Vec<HoldView>> {
    let visibility = state.visibility().await?;
    visibility.holds(&filter).await.map(Json).map_err(failed)
}

pub async fn commitments(
    State(state): State<AdminState>,
    Query(filter): Query<Filter>,
) -> ApiResult<Vec<CommitmentView>> {
    let visibility = state.visibility().await?;
    visibility
        .commitments(&filter)
        .await
        .map(Json)
        .map_err(failed)
}

pub async fn sources(State(state): State<AdminState>) -> ApiResult<Vec<SourceView>> {
    let visibility = state.visibility().await?;
    visibility.sources().await.map(Json).map_err(failed)
}
