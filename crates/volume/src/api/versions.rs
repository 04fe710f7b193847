//! Version discovery: `GET /` (300, as Cinder) and `GET /v3` (200), each
//! with the v3 API's microversion range. openstacksdk and keystoneauth
//! negotiate from `version` / `min_version`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::{base_url, AppState, MAX_VERSION, MIN_VERSION};

pub fn version_document(base: &str) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": MAX_VERSION.to_string(),
        "min_version": MIN_VERSION.to_string(),
        "updated": "2022-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/v3/")},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}
        ],
    })
}

/// `GET /`: 300 Multiple Choices.
pub async fn root(State(state): State<Arc<AppState>>, headers: HeaderMap) -> impl IntoResponse {
    let doc = version_document(&base_url(&state, &headers));
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": [doc]})),
    )
}

/// `GET /v3`, `GET /v3/`.
pub async fn v3(State(state): State<Arc<AppState>>, headers: HeaderMap) -> impl IntoResponse {
    let doc = version_document(&base_url(&state, &headers));
    Json(json!({"versions": [doc]}))
}
