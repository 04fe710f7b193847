//! `/os-server-groups`: affinity, anti-affinity and their soft forms.
//! `policies: [..]` before 2.64, `policy` + `rules` from 2.64.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::params::{self, first};
use super::{project_scope, require_member, ApiVersion, AppState};
use crate::db;
use crate::db::server_groups::ServerGroup;
use crate::error::{ComputeError, NovaJson, Result};

const POLICIES: &[&str] = &[
    "affinity",
    "anti-affinity",
    "soft-affinity",
    "soft-anti-affinity",
];

fn view(g: &ServerGroup, v: ApiVersion) -> Value {
    let mut m = json!({"id": g.id, "name": g.name, "members": g.members, "metadata": {}});
    if v.at_least(64) {
        m["policy"] = json!(g.policy);
        m["rules"] = g.rules.clone();
        m.as_object_mut().map(|o| o.remove("metadata"));
    } else {
        m["policies"] = json!([g.policy]);
    }
    if v.at_least(13) {
        m["project_id"] = json!(g.project_id);
        m["user_id"] = json!(g.user_id);
    }
    m
}

pub async fn create(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_member(&ctx, "os_compute_api:os-server-groups:create")?;
    let g = params::wrapped(&body, "server_group")?;
    let name = params::string(g.get("name"), "name", 255)?;
    let policy = if v.at_least(64) {
        g.get("policy").and_then(Value::as_str).map(str::to_owned)
    } else {
        match g.get("policies").and_then(Value::as_array) {
            Some(p) if p.len() == 1 => p[0].as_str().map(str::to_owned),
            _ => None,
        }
    };
    let policy = policy
        .filter(|p| POLICIES.contains(&p.as_str()))
        .ok_or_else(|| ComputeError::bad("Invalid input for field/attribute policy."))?;
    let rules = g.get("rules").cloned().unwrap_or(json!({}));
    if !rules.is_object()
        || (policy != "anti-affinity" && rules.as_object().is_some_and(|r| !r.is_empty()))
    {
        return Err(ComputeError::bad(
            "Invalid input for field/attribute rules.",
        ));
    }
    let project = ctx
        .project_id
        .as_ref()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let limits = db::quotas::quota_get(&mut *s.db.conn().await?, &project, &s.cfg.quota).await?;
    let max = limits.get("server_groups").copied().unwrap_or(-1);
    if max >= 0
        && db::server_groups::server_group_count(&mut *s.db.conn().await?, &project).await? >= max
    {
        return Err(ComputeError::OverQuota(
            "Quota exceeded, too many server groups.".into(),
        ));
    }
    let group = ServerGroup {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        project_id: project,
        user_id: ctx
            .user_id
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
        policy,
        rules,
        members: Vec::new(),
        created_at: stratus_common::time::to_db(stratus_common::time::now()),
    };
    db::server_groups::server_group_create(&mut *s.db.conn().await?, &group).await?;
    Ok(Json(json!({"server_group": view(&group, v)})))
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let q = params::query(raw.as_deref());
    // Nova checks `index:all_projects` without failing: a non-admin asking
    // for all projects gets its own.
    let all = ctx.is_admin()
        && first(&q, "all_projects").is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let scope = project_scope(&ctx, all, "os_compute_api:os-server-groups:index")?;
    let project = scope.filter().map(|p| p.as_str().to_owned());
    let groups =
        db::server_groups::server_group_list(&mut *s.db.conn().await?, project.as_deref()).await?;
    Ok(Json(
        json!({"server_groups": groups.iter().map(|g| view(g, v)).collect::<Vec<_>>()}),
    ))
}

async fn visible(
    s: &AppState,
    ctx: &stratus_common::RequestContext,
    id: &str,
) -> Result<ServerGroup> {
    let scope = project_scope(ctx, ctx.is_admin(), "os_compute_api:os-server-groups:show")?;
    let g = db::server_groups::server_group_get(&mut *s.db.conn().await?, id).await?;
    if !scope.permits(&g.project_id) {
        return Err(ComputeError::NotFound(format!(
            "Instance group {id} could not be found."
        )));
    }
    Ok(g)
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let g = visible(&s, &ctx, &id).await?;
    Ok(Json(json!({"server_group": view(&g, v)})))
}

pub async fn delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_member(&ctx, "os_compute_api:os-server-groups:delete")?;
    visible(&s, &ctx, &id).await?;
    db::server_groups::server_group_delete(&mut *s.db.conn().await?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
