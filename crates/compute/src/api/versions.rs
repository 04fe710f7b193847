//! Version documents: `GET /` (200, v2.0 first, as tempest requires) and
//! `GET /v2.1`.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::microversion::{MAX, MIN};
use super::AppState;

fn doc21(base: &str) -> Value {
    json!({
        "id": "v2.1", "status": "CURRENT", "version": MAX.to_string(), "min_version": MIN.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/v2.1/")},
                  {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]
    })
}

fn doc20(base: &str) -> Value {
    json!({
        "id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
        "updated": "2025-07-04T12:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v2/")},
                  {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]
    })
}

pub async fn index(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"versions": [doc20(&s.base_url), doc21(&s.base_url)]}))
}

pub async fn v21(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"version": doc21(&s.base_url)}))
}

pub async fn v2(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"version": doc20(&s.base_url)}))
}
