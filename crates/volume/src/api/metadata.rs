//! `/volumes/{id}/metadata` and `/volumes/{id}/metadata/{key}`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::volumes::object;
use super::{id_scope, load_volume, write_scope, AppState};
use crate::db;
use crate::domain::{metadata_of, Volume};
use crate::error::{CinderJson, PathParams, VolumeError};

async fn load(
    state: &AppState,
    ctx: &stratus_auth::RequestContext,
    params: &PathParams,
    write: bool,
) -> Result<Volume, VolumeError> {
    if write {
        write_scope(ctx, "volume:update_volume_metadata")?;
    }
    let scope = id_scope(ctx, "volume:get_volume_metadata")?;
    load_volume(&mut *state.db.conn().await?, &scope, params.get("id")).await
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    let v = load(&state, &ctx, &params, false).await?;
    Ok(Json(json!({"metadata": v.metadata})))
}

fn metadata_body(body: Value) -> Result<std::collections::BTreeMap<String, String>, VolumeError> {
    let Value::Object(mut o) = body else {
        return Err(VolumeError::bad(
            "Malformed request body: metadata is required.",
        ));
    };
    let m = o
        .remove("metadata")
        .ok_or_else(|| VolumeError::bad("Malformed request body: metadata is required."))?;
    metadata_of(&m, "metadata")
}

/// `POST`: merges the given keys in.
pub async fn merge(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    let new = metadata_body(body)?;
    let mut v = load(&state, &ctx, &params, true).await?;
    v.metadata.extend(new);
    db::volume_update(&mut *state.db.conn().await?, &v).await?;
    Ok(Json(json!({"metadata": v.metadata})))
}

/// `PUT`: replaces all of it.
pub async fn replace(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    let new = metadata_body(body)?;
    let mut v = load(&state, &ctx, &params, true).await?;
    v.metadata = new;
    db::volume_update(&mut *state.db.conn().await?, &v).await?;
    Ok(Json(json!({"metadata": v.metadata})))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    let v = load(&state, &ctx, &params, false).await?;
    let key = params.get("key");
    let value = v.metadata.get(key).ok_or_else(|| {
        VolumeError::NotFound(format!("Volume {} has no metadata with key {key}.", v.id))
    })?;
    Ok(Json(json!({"meta": {key: value}})))
}

/// `PUT /metadata/{key}` with `{"meta": {key: value}}`.
pub async fn set(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    let meta = object(body, "meta")?;
    let m = metadata_of(&Value::Object(meta), "meta")?;
    let key = params.get("key");
    if m.len() != 1 || !m.contains_key(key) {
        return Err(VolumeError::bad("Request body and URI mismatch"));
    }
    let mut v = load(&state, &ctx, &params, true).await?;
    v.metadata.extend(m.clone());
    db::volume_update(&mut *state.db.conn().await?, &v).await?;
    Ok(Json(json!({"meta": m})))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<StatusCode, VolumeError> {
    let mut v = load(&state, &ctx, &params, true).await?;
    let key = params.get("key");
    if v.metadata.remove(key).is_none() {
        return Err(VolumeError::NotFound(format!(
            "Volume {} has no metadata with key {key}.",
            v.id
        )));
    }
    db::volume_update(&mut *state.db.conn().await?, &v).await?;
    Ok(StatusCode::OK)
}
