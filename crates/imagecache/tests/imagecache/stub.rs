//! A stub image API on 127.0.0.1:0: `GET /v2/images/{id}` answers the JSON a
//! test registered (with or without locations), `GET /v2/images/{id}/file`
//! serves its bytes, and both count their calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use md5::{Digest as _, Md5};
use serde_json::{json, Value};
use sha2::Sha512;
use stratus_common::ids::ImageId;

pub const TOKEN: &str = "service-token";

#[derive(Default)]
struct Images {
    json: HashMap<String, Value>,
    data: HashMap<String, Bytes>,
}

#[derive(Clone, Default)]
struct St {
    images: Arc<Mutex<Images>>,
    downloads: Arc<AtomicUsize>,
}

pub struct StubGlance {
    pub url: String,
    st: St,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StubGlance {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn md5_hex(d: &[u8]) -> String {
    hex::encode(Md5::digest(d))
}

pub fn sha512_hex(d: &[u8]) -> String {
    hex::encode(Sha512::digest(d))
}

/// The JSON Glance gives an admin for an active image holding `data`.
pub fn active_image(id: ImageId, disk_format: &str, data: &[u8]) -> Value {
    json!({
        "id": id.to_string(), "name": "img", "status": "active",
        "visibility": "public", "protected": false, "tags": [],
        "disk_format": disk_format, "container_format": "bare",
        "min_ram": 0, "min_disk": 0,
        "size": data.len(), "virtual_size": null,
        "checksum": md5_hex(data), "os_hash_algo": "sha512", "os_hash_value": sha512_hex(data),
        "owner": "p1", "self": format!("/v2/images/{id}"), "file": format!("/v2/images/{id}/file"),
        "schema": "/v2/schemas/image",
    })
}

fn authorised(h: &HeaderMap) -> bool {
    h.get("x-auth-token").and_then(|v| v.to_str().ok()) == Some(TOKEN)
}

fn unauthorised() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "This server could not verify that you are authorized",
    )
        .into_response()
}

async fn show(State(st): State<St>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if !authorised(&h) {
        return unauthorised();
    }
    let v = st.images.lock().expect("lock").json.get(&id).cloned();
    match v {
        Some(v) => Json(v).into_response(),
        None => (StatusCode::NOT_FOUND, "No image found").into_response(),
    }
}

async fn download(State(st): State<St>, Path(id): Path<String>, h: HeaderMap) -> Response {
    if !authorised(&h) {
        return unauthorised();
    }
    st.downloads.fetch_add(1, Ordering::SeqCst);
    let data = st.images.lock().expect("lock").data.get(&id).cloned();
    // Slow enough that concurrent callers really overlap with the download.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    match data {
        Some(d) => (StatusCode::OK, d).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

impl StubGlance {
    pub async fn start() -> Self {
        let st = St::default();
        let app = Router::new()
            .route("/v2/images/{id}", get(show))
            .route("/v2/images/{id}/file", get(download))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self { url, st, task }
    }

    /// Registers an image: `json` is what `GET /v2/images/{id}` answers and
    /// `data` what the download serves.
    pub fn put(&self, id: ImageId, json: Value, data: impl Into<Bytes>) {
        let mut g = self.st.images.lock().expect("lock");
        g.json.insert(id.to_string(), json);
        g.data.insert(id.to_string(), data.into());
    }

    pub fn downloads(&self) -> usize {
        self.st.downloads.load(Ordering::SeqCst)
    }
}
