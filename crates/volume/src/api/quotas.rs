//! `/os-quota-sets/{project}`: a project's limits (and usage with
//! `usage=true`), its defaults; admins change and reset them.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::{Ctx, RequestContext};

use super::{forbidden, read_scope, AppState};
use crate::db;
use crate::domain::list::parse_bool;
use crate::domain::quota::{Limits, RESOURCES};
use crate::error::{CinderJson, CinderQuery, PathParams, VolumeError};

/// Readers of a project see its quotas; admins see every project's.
fn check_read(ctx: &RequestContext, project: &str) -> Result<(), VolumeError> {
    let scope = read_scope(ctx, false, "volume_extension:quotas:show")?;
    if ctx.is_admin() || scope.permits(project) {
        Ok(())
    } else {
        Err(forbidden("volume_extension:quotas:show"))
    }
}

fn require_admin(ctx: &RequestContext, action: &str) -> Result<(), VolumeError> {
    read_scope(ctx, false, action)?;
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(forbidden(action))
    }
}

fn body(project: &str, limits: &Limits, usage: Option<&crate::domain::quota::Usage>) -> Value {
    let mut o = Map::new();
    o.insert("id".to_owned(), json!(project));
    for r in RESOURCES {
        let limit = limits.get(r);
        let v = match usage {
            Some(u) => json!({"limit": limit, "in_use": u.get(r), "reserved": 0, "allocated": 0}),
            None => json!(limit),
        };
        o.insert((*r).to_owned(), v);
    }
    json!({"quota_set": o})
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    let project = params.get("id");
    check_read(&ctx, project)?;
    let with_usage = q.get("usage").map(parse_bool).transpose()?.unwrap_or(false);
    let mut conn = state.db.conn().await?;
    let limits =
        db::quota_limits(&mut conn, project, &Limits::defaults(&state.config.quota)).await?;
    let usage = if with_usage {
        Some(db::usage_get(&mut conn, project).await?)
    } else {
        None
    };
    Ok(Json(body(project, &limits, usage.as_ref())))
}

pub async fn defaults(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    let project = params.get("id");
    check_read(&ctx, project)?;
    Ok(Json(body(
        project,
        &Limits::defaults(&state.config.quota),
        None,
    )))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    CinderJson(b): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    require_admin(&ctx, "volume_extension:quotas:update")?;
    let project = params.get("id");
    let qs = super::volumes::object(b, "quota_set")?;
    let mut changes = Vec::new();
    for (k, v) in &qs {
        if k == "tenant_id" || k == "id" {
            continue;
        }
        if !RESOURCES.contains(&k.as_str()) {
            return Err(VolumeError::bad(format!(
                "Invalid input received: Bad key(s) in quota set: {k}"
            )));
        }
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if n >= -1 => changes.push((k.clone(), n)),
            _ => return Err(VolumeError::bad(format!("Invalid input received: Quota limit {v} for {k} must be an integer of at least -1."))),
        }
    }
    let mut tx = state.db.begin().await?;
    for (k, n) in &changes {
        db::quota_set(&mut tx, project, k, *n).await?;
    }
    let limits = db::quota_limits(&mut tx, project, &Limits::defaults(&state.config.quota)).await?;
    tx.commit().await?;
    let mut v = body(project, &limits, None);
    // Cinder's update answer has no id.
    if let Some(o) = v["quota_set"].as_object_mut() {
        o.remove("id");
    }
    Ok(Json(v))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    require_admin(&ctx, "volume_extension:quotas:delete")?;
    db::quota_delete(&mut *state.db.conn().await?, params.get("id")).await?;
    Ok(Json(json!({})))
}
