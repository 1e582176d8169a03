//! `GET /api/v1/visibility/postings`: what became of the canonical events the outbound routes
//! post, from the projection (posting acknowledgements and the events the routes took): per
//! target the backlog, oldest pending, posting delay and rejections by reason; per site the
//! rejections; and each posting (posted with the target's document id, rejected with the
//! reason, or pending). The events held at a gate are `GET /api/v1/outbound`'s `held`.

use axum::Json;
use axum::extract::{Query, State};

use super::{AdminState, ApiError};
use millrace_projection::postings::{PostingFilter, PostingsView, RouteProgress};

pub async fn postings(
    State(state): State<AdminState>,
    Query(filter): Query<PostingFilter>,
) -> Result<Json<PostingsView>, ApiError> {
    let visibility = state.visibility().await?;
    let progress = RouteProgress::read(&state.js, &state.host.config).await;
    Ok(Json(visibility.postings(&filter, &progress).await?))
}
