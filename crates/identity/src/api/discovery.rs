//! Version discovery: `GET /` (300, Keystone's `{"versions":{"values":[...]}}`)
//! and `GET /v3` (200), as keystoneauth reads them before every command.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::extract::BaseUrl;

fn version(base: &BaseUrl) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}/v3/", base.0)}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

pub async fn versions(base: BaseUrl) -> impl IntoResponse {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [version(&base)]}})),
    )
}

pub async fn v3(base: BaseUrl) -> Json<Value> {
    Json(json!({ "version": version(&base) }))
}
