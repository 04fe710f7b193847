//! `/servers/{id}/os-instance-actions`: what was done to a server, and the
//! events each service recorded under each action.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::server_create::is_uuid;
use super::{params, project_scope, ApiVersion, AppState};
use crate::db;
use crate::db::actions::Action;
use crate::error::{ComputeError, Result};

fn ts(t: &Option<String>) -> Value {
    match t.as_deref().and_then(stratus_common::time::from_db) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

/// The server whose history is asked for: the owner's (and admins'), a
/// deleted one too from 2.21 (Nova reads it with `read_deleted='yes'`).
async fn server(
    s: &AppState,
    ctx: &stratus_common::RequestContext,
    v: ApiVersion,
    id: &str,
) -> Result<()> {
    let scope = project_scope(
        ctx,
        ctx.is_admin(),
        "os_compute_api:os-instance-actions:list",
    )?;
    let missing = || crate::db::instances::not_found(id);
    if !is_uuid(id) {
        return Err(missing());
    }
    let i = db::instances::instance_get_any(&mut *s.db.conn().await?, id).await?;
    if (i.deleted && !v.at_least(21)) || !scope.permits(&i.project_id) {
        return Err(missing());
    }
    Ok(())
}

fn view(a: &Action, v: ApiVersion) -> Value {
    let mut m = json!({
        "action": a.action, "instance_uuid": a.instance_id, "message": a.message,
        "project_id": a.project_id, "request_id": a.request_id,
        "start_time": ts(&Some(a.start_time.clone())), "user_id": a.user_id,
    });
    if v.at_least(58) {
        m["updated_at"] = ts(&Some(a.updated_at.clone()));
    }
    m
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    // Nova lets the owner (and admins) read a server's history.
    server(&s, &ctx, v, &id).await?;
    let mut actions = db::actions::action_list(&mut *s.db.conn().await?, &id).await?;
    // 2.58: newest first, paged by request id.
    let (limit, marker) = if v.at_least(58) {
        params::paging(&params::query(raw.as_deref()))?
    } else {
        (None, None)
    };
    if let Some(m) = &marker {
        let pos = actions
            .iter()
            .position(|a| &a.request_id == m)
            .ok_or_else(|| ComputeError::BadRequest(format!("Marker {m} could not be found.")))?;
        actions.drain(..=pos);
    }
    if let Some(l) = limit {
        actions.truncate(l);
    }
    let mut body =
        json!({"instanceActions": actions.iter().map(|a| view(a, v)).collect::<Vec<_>>()});
    if let (Some(l), Some(last)) = (limit, actions.last()) {
        if actions.len() == l {
            let href = s.link(&format!(
                "/servers/{id}/os-instance-actions?limit={l}&marker={}",
                last.request_id
            ));
            body["links"] = json!([{"rel": "next", "href": href}]);
        }
    }
    Ok(Json(body))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path((id, req)): Path<(String, String)>,
) -> Result<Json<Value>> {
    server(&s, &ctx, v, &id).await?;
    let (a, events) = db::actions::action_get(&mut *s.db.conn().await?, &id, &req).await?;
    let mut out = view(&a, v);
    // Non-admins see events without tracebacks (and, from 2.62, without hosts).
    let admin = ctx.is_admin();
    out["events"] = json!(events
        .iter()
        .map(|e| {
            let mut ev = json!({
                "event": e.event, "start_time": ts(&Some(e.start_time.clone())),
                "finish_time": ts(&e.finish_time), "result": e.result,
            });
            if admin {
                ev["traceback"] = json!(e.traceback);
            }
            if v.at_least(62) {
                ev["hostId"] = json!("");
                if admin {
                    ev["host"] = json!(e.host);
                }
            }
            if v.at_least(84) {
                ev["details"] = json!(e.details);
            }
            ev
        })
        .collect::<Vec<_>>());
    Ok(Json(json!({"instanceAction": out})))
}
