//! `/v2.0/quotas`: per-project limits (overrides of the configured
//! defaults), and the check every create makes.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::ProjectId;

use super::{require_admin, require_read, State};
use crate::config::QUOTA_RESOURCES;
use crate::db::{networks, ports, quotas as dbq, security_groups, subnets, Conn};
use crate::error::{Json, NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/quotas", get(list))
        .route(
            "/v2.0/quotas/{project}",
            get(show).put(update).delete(reset),
        )
        .route("/v2.0/quotas/{project}/default", get(defaults))
        .route("/v2.0/quotas/{project}/details", get(details))
}

/// The effective limits of a project, in Neutron's resource order.
pub async fn limits(
    state: &State,
    conn: &mut Conn,
    project: &ProjectId,
) -> Result<Vec<(&'static str, i64)>> {
    let overrides = dbq::quota_get(conn, project).await?;
    Ok(QUOTA_RESOURCES
        .iter()
        .map(|r| {
            let v = overrides
                .iter()
                .find(|(k, _)| k == r)
                .map(|(_, v)| *v)
                .or_else(|| state.config.quotas.get(r))
                .unwrap_or(-1);
            (*r, v)
        })
        .collect())
}

async fn used(conn: &mut Conn, project: &ProjectId, resource: &str) -> Result<i64> {
    match resource {
        "network" => networks::network_count(conn, project).await,
        "subnet" => subnets::subnet_count(conn, project).await,
        "port" => ports::port_count(conn, project).await,
        "security_group" => security_groups::sg_count(conn, project).await,
        "security_group_rule" => security_groups::rule_count(conn, project).await,
        _ => Ok(0),
    }
}

/// 409 OverQuota when one more `resource` would pass the project's limit.
pub async fn check(
    state: &State,
    conn: &mut Conn,
    project: &ProjectId,
    resource: &str,
) -> Result<()> {
    check_room(state, conn, project, resource, 1).await
}

/// 409 OverQuota when `adding` more `resource`s (a bulk create) would pass
/// the project's limit.
pub async fn check_room(
    state: &State,
    conn: &mut Conn,
    project: &ProjectId,
    resource: &str,
    adding: i64,
) -> Result<()> {
    let limit = limits(state, conn, project)
        .await?
        .into_iter()
        .find(|(r, _)| *r == resource)
        .map_or(-1, |(_, v)| v);
    if limit < 0 {
        return Ok(());
    }
    if used(conn, project, resource).await? + adding > limit {
        return Err(NetworkError::OverQuota(resource.to_owned()));
    }
    Ok(())
}

fn quota_map(limits: &[(&str, i64)]) -> Map<String, Value> {
    limits
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect()
}

fn may_see(ctx: &stratus_common::RequestContext, project: &ProjectId) -> Result<()> {
    require_read(ctx, "get_quota")?;
    if ctx.owns(project) {
        Ok(())
    } else {
        Err(NetworkError::PolicyNotAuthorized("get_quota".to_owned()))
    }
}

async fn list(AxState(state): AxState<State>, ctx: Ctx) -> Result<axum::Json<Value>> {
    require_admin(&ctx, "get_quota")?;
    let mut c = state.db.conn().await?;
    let mut out = Vec::new();
    for p in dbq::quota_projects(&mut c).await? {
        let mut m = quota_map(&limits(&state, &mut c, &p).await?);
        m.insert("project_id".into(), json!(p));
        m.insert("tenant_id".into(), json!(p));
        out.push(Value::Object(m));
    }
    Ok(axum::Json(json!({"quotas": out})))
}

async fn show(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<axum::Json<Value>> {
    let project = ProjectId(project);
    may_see(&ctx, &project)?;
    let mut c = state.db.conn().await?;
    Ok(axum::Json(
        json!({"quota": quota_map(&limits(&state, &mut c, &project).await?)}),
    ))
}

async fn defaults(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<axum::Json<Value>> {
    let project = ProjectId(project);
    may_see(&ctx, &project)?;
    let d: Vec<(&str, i64)> = QUOTA_RESOURCES
        .iter()
        .map(|r| (*r, state.config.quotas.get(r).unwrap_or(-1)))
        .collect();
    Ok(axum::Json(json!({"quota": quota_map(&d)})))
}

async fn details(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<axum::Json<Value>> {
    let project = ProjectId(project);
    may_see(&ctx, &project)?;
    let mut c = state.db.conn().await?;
    let mut m = Map::new();
    for (r, limit) in limits(&state, &mut c, &project).await? {
        let u = used(&mut c, &project, r).await?;
        m.insert(
            r.to_owned(),
            json!({"limit": limit, "used": u, "reserved": 0}),
        );
    }
    Ok(axum::Json(json!({"quota": m})))
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(project): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_admin(&ctx, "update_quota")?;
    let project = ProjectId(project);
    let Some(Value::Object(q)) = body.get("quota") else {
        return Err(NetworkError::BadRequest(
            "Unable to find 'quota' in request body".to_owned(),
        ));
    };
    let mut changes = Vec::new();
    for (k, v) in q {
        let Some(r) = QUOTA_RESOURCES.iter().find(|r| **r == k) else {
            return Err(NetworkError::BadRequest(format!(
                "Unrecognized attribute(s) '{k}'"
            )));
        };
        // Clients send numbers, sometimes as strings.
        let n = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n >= -1)
            .ok_or_else(|| {
                NetworkError::BadRequest(format!(
                "Invalid input for {k}. Reason: '{v}' is not an integer greater or equal to -1."
            ))
            })?;
        changes.push((*r, n));
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    for (r, n) in changes {
        dbq::quota_set(&mut tx, &project, r, n).await?;
    }
    let l = limits(&state, &mut tx, &project).await?;
    tx.commit().await?;
    Ok(axum::Json(json!({"quota": quota_map(&l)})))
}

async fn reset(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<StatusCode> {
    require_admin(&ctx, "delete_quota")?;
    let mut c = state.db.conn().await?;
    dbq::quota_delete(&mut c, &ProjectId(project)).await?;
    Ok(StatusCode::NO_CONTENT)
}
