//! Version discovery. openstacksdk fails hard without it: `GET /` must be a
//! 300 with `versions[].id/status/links` (see CLIENT_FLOW.md).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::{base_url, AppState};

const VERSIONS: &[(&str, &str)] = &[
    ("v2.17", "CURRENT"),
    ("v2.16", "SUPPORTED"),
    ("v2.15", "SUPPORTED"),
    ("v2.14", "SUPPORTED"),
    ("v2.13", "SUPPORTED"),
    ("v2.12", "SUPPORTED"),
    ("v2.11", "SUPPORTED"),
    ("v2.10", "SUPPORTED"),
    ("v2.9", "SUPPORTED"),
    ("v2.8", "SUPPORTED"),
    ("v2.7", "SUPPORTED"),
    ("v2.6", "SUPPORTED"),
    ("v2.5", "SUPPORTED"),
    ("v2.4", "SUPPORTED"),
    ("v2.3", "SUPPORTED"),
    ("v2.2", "SUPPORTED"),
    ("v2.1", "SUPPORTED"),
    ("v2.0", "SUPPORTED"),
];

fn document(base: &str) -> Value {
    let href = format!("{base}/v2/");
    let versions: Vec<Value> = VERSIONS
        .iter()
        .map(|(id, status)| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]}))
        .collect();
    json!({"versions": versions})
}

/// `GET /`: 300 Multiple Choices, as Glance (and Tempest) expect.
pub async fn root(State(state): State<Arc<AppState>>, headers: HeaderMap) -> impl IntoResponse {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(document(&base_url(&state, &headers))),
    )
}

/// `GET /versions`, `GET /v2/`: the same list with 200.
pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> impl IntoResponse {
    Json(document(&base_url(&state, &headers)))
}
