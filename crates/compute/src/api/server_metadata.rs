//! `/servers/{id}/metadata`: list, update (merge), replace, show, set and
//! delete one key, within the `metadata_items` quota.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::{require_member, servers, AppState};
use crate::db;
use crate::error::{ComputeError, NovaJson, Result};

async fn check_quota(s: &AppState, project: &str, count: usize) -> Result<()> {
    let limits = db::quotas::quota_get(&mut *s.db.conn().await?, project, &s.cfg.quota).await?;
    let max = limits.get("metadata_items").copied().unwrap_or(-1);
    if max >= 0 && count as i64 > max {
        return Err(ComputeError::OverQuota(format!(
            "Quota exceeded for metadata_items: Requested {count}, but the maximum is {max}"
        )));
    }
    Ok(())
}

pub async fn list(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    Ok(Json(json!({"metadata": i.metadata})))
}

async fn write(
    s: &AppState,
    ctx: &Ctx,
    id: &str,
    body: &Value,
    replace: bool,
) -> Result<BTreeMap<String, String>> {
    require_member(ctx, "os_compute_api:server-metadata:update")?;
    let i = servers::visible(s, ctx, id).await?;
    let items = super::server_create::metadata_map(
        body.get("metadata")
            .ok_or_else(|| ComputeError::bad("Malformed request body"))?,
    )?;
    let mut merged = if replace {
        BTreeMap::new()
    } else {
        i.metadata.clone()
    };
    merged.extend(items.clone());
    check_quota(s, &i.project_id, merged.len()).await?;
    db::instances::instance_metadata_set(&mut *s.db.conn().await?, id, &items, replace).await
}

pub async fn update(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    let m = write(&s, &ctx, &id, &body, false).await?;
    Ok(Json(json!({"metadata": m})))
}

pub async fn replace(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    let m = write(&s, &ctx, &id, &body, true).await?;
    Ok(Json(json!({"metadata": m})))
}

pub async fn show(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    let v = i
        .metadata
        .get(&key)
        .ok_or_else(|| ComputeError::NotFound("Metadata item was not found".into()))?;
    Ok(Json(json!({"meta": { key: v }})))
}

pub async fn set(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    let meta = body
        .get("meta")
        .and_then(Value::as_object)
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    if meta.len() != 1 {
        return Err(ComputeError::bad("Request body contains too many items"));
    }
    if !meta.contains_key(&key) {
        return Err(ComputeError::bad("Request body and URI mismatch"));
    }
    let m = write(&s, &ctx, &id, &json!({"metadata": meta}), false).await?;
    Ok(Json(json!({"meta": { key.clone(): m.get(&key) }})))
}

pub async fn delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    require_member(&ctx, "os_compute_api:server-metadata:delete")?;
    servers::visible(&s, &ctx, &id).await?;
    db::instances::instance_metadata_delete(&mut *s.db.conn().await?, &id, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
