//! `/limits` and `/os-quota-sets`: show, defaults, detail, update (admin),
//! reset (admin). Members may read their own project only.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;
use stratus_common::RequestContext;

use super::{params, require_admin, ApiVersion, AppState};
use crate::db;
use crate::db::quotas::{default_limit, RESOURCES};
use crate::error::{ComputeError, NovaJson, Result};

/// Resources shown at a microversion (2.36 dropped the network proxies,
/// 2.57 the file injection ones).
fn shown(v: ApiVersion, r: &str) -> bool {
    !(v.at_least(57) && r.starts_with("injected_file"))
}

fn quota_body(v: ApiVersion, limits: &BTreeMap<String, i64>) -> Map<String, Value> {
    let mut m = Map::new();
    for r in RESOURCES.iter().filter(|r| shown(v, r)) {
        m.insert(
            (*r).to_owned(),
            json!(limits.get(*r).copied().unwrap_or(-1)),
        );
    }
    if !v.at_least(36) {
        for r in [
            "fixed_ips",
            "floating_ips",
            "security_groups",
            "security_group_rules",
        ] {
            m.insert(r.to_owned(), json!(-1));
        }
    }
    m
}

fn may_read(ctx: &RequestContext, project: &str) -> Result<()> {
    if ctx.owns(&project.into()) {
        Ok(())
    } else {
        Err(ComputeError::Forbidden(
            "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.".into(),
        ))
    }
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    may_read(&ctx, &project)?;
    let limits = db::quotas::quota_get(&mut *s.db.conn().await?, &project, &s.cfg.quota).await?;
    let mut m = quota_body(v, &limits);
    m.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": m})))
}

pub async fn defaults(
    State(s): State<AppState>,
    v: ApiVersion,
    _ctx: Ctx,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    let limits: BTreeMap<String, i64> = RESOURCES
        .iter()
        .map(|r| (r.to_string(), default_limit(&s.cfg.quota, r)))
        .collect();
    let mut m = quota_body(v, &limits);
    m.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": m})))
}

async fn usage(s: &AppState, project: &str) -> Result<BTreeMap<&'static str, i64>> {
    let (n, cores, ram) = db::instances::instance_usage(&mut *s.db.conn().await?, project).await?;
    let groups = db::server_groups::server_group_count(&mut *s.db.conn().await?, project).await?;
    Ok(BTreeMap::from([
        ("instances", n),
        ("cores", cores),
        ("ram", ram),
        ("server_groups", groups),
    ]))
}

pub async fn detail(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    may_read(&ctx, &project)?;
    let limits = db::quotas::quota_get(&mut *s.db.conn().await?, &project, &s.cfg.quota).await?;
    let used = usage(&s, &project).await?;
    let mut m = Map::new();
    for (k, lim) in quota_body(v, &limits) {
        let in_use = used.get(k.as_str()).copied().unwrap_or(0);
        m.insert(k, json!({"limit": lim, "in_use": in_use, "reserved": 0}));
    }
    m.insert("id".into(), json!(project));
    Ok(Json(json!({"quota_set": m})))
}

pub async fn update(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(project): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-quota-sets:update")?;
    let q = params::wrapped(&body, "quota_set")?;
    let mut set = BTreeMap::new();
    for (k, val) in q {
        if k == "force" {
            continue;
        }
        if !RESOURCES.contains(&k.as_str()) {
            return Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute quota_set. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let n = params::int(Some(val), k, -1, i64::from(i32::MAX))?.unwrap_or(-1);
        set.insert(k.clone(), n);
    }
    db::quotas::quota_set(&mut *s.db.conn().await?, &project, &set).await?;
    let limits = db::quotas::quota_get(&mut *s.db.conn().await?, &project, &s.cfg.quota).await?;
    Ok(Json(json!({"quota_set": quota_body(v, &limits)})))
}

pub async fn reset(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<StatusCode> {
    require_admin(&ctx, "os_compute_api:os-quota-sets:delete")?;
    db::quotas::quota_delete(&mut *s.db.conn().await?, &project).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn limits(State(s): State<AppState>, v: ApiVersion, ctx: Ctx) -> Result<Json<Value>> {
    let project = match super::project_scope(&ctx, false, "os_compute_api:limits")? {
        stratus_auth::ProjectScope::Project(p) => p.as_str().to_owned(),
        stratus_auth::ProjectScope::All => String::new(),
    };
    let l = db::quotas::quota_get(&mut *s.db.conn().await?, &project, &s.cfg.quota).await?;
    let used = usage(&s, &project).await?;
    let g = |k: &str| l.get(k).copied().unwrap_or(-1);
    let u = |k: &str| used.get(k).copied().unwrap_or(0);
    let mut a = json!({
        "maxServerMeta": g("metadata_items"), "maxTotalKeypairs": g("key_pairs"),
        "maxServerGroups": g("server_groups"), "maxServerGroupMembers": g("server_group_members"),
        "maxTotalCores": g("cores"), "maxTotalInstances": g("instances"), "maxTotalRAMSize": g("ram"),
        "totalCoresUsed": u("cores"), "totalInstancesUsed": u("instances"), "totalRAMUsed": u("ram"),
        "totalServerGroupsUsed": u("server_groups"), "maxImageMeta": 128,
    });
    if !v.at_least(57) {
        a["maxPersonality"] = json!(g("injected_files"));
        a["maxPersonalitySize"] = json!(g("injected_file_content_bytes"));
    }
    if !v.at_least(36) {
        for k in [
            "maxSecurityGroups",
            "maxSecurityGroupRules",
            "maxTotalFloatingIps",
        ] {
            a[k] = json!(-1);
        }
        for k in ["totalSecurityGroupsUsed", "totalFloatingIpsUsed"] {
            a[k] = json!(0);
        }
    }
    Ok(Json(json!({"limits": {"rate": [], "absolute": a}})))
}
