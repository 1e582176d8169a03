//! The published contracts over HTTP: the JSON Schemas of the canonical events and the
//! AsyncAPI document, per WIT version (the documents `millrace schema` prints).

use axum::Json;
use axum::extract::Path;
use serde::Serialize;

use super::ApiError;
use crate::contracts::{self, WitVersion};

/// One document the API serves.
#[derive(Debug, Serialize)]
pub struct DocumentEntry {
    /// The WIT version, e.g. `1.1.0`.
    wit: String,
    /// The event kind or `asyncapi`.
    name: String,
    /// Where the API serves it.
    url: String,
    /// Where the repository keeps it, under `schemas/`.
    path: String,
}

/// Every document of every served WIT version.
pub async fn index() -> Json<Vec<DocumentEntry>> {
    let mut out = Vec::new();
    for version in WitVersion::served() {
        for name in contracts::document_names() {
            out.push(DocumentEntry {
                wit: version.to_string(),
                url: format!("/api/v1/schemas/{version}/{name}"),
                path: format!("schemas/{}/{name}.json", version.folder()),
                name,
            });
        }
    }
    Json(out)
}

/// One document: `/api/v1/schemas/1.1.0/inventory-movement`, `/api/v1/schemas/1.0/asyncapi`.
pub async fn document(
    Path((wit, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let version = WitVersion::find(&wit).map_err(|e| ApiError::not_found(e.to_string()))?;
    let name = name.strip_suffix(".json").unwrap_or(&name);
    contracts::document(version, name)
        .map(Json)
        .map_err(|e| ApiError::not_found(e.to_string()))
}
