//! `/servers`: list and detail with filters and paging, show, update and
//! delete (create is `server_create`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::{Ctx, ProjectScope};
use stratus_common::RequestContext;

use super::params::{self, first};
use super::server_create::is_uuid;
use super::{project_scope, require_member, servers_query, views, ApiVersion, AppState};
use crate::db;
use crate::db::instances::{Instance, InstanceUpdate, ListFilter};
use crate::error::{ComputeError, NovaJson, Result};
use crate::model::state;
use crate::saga;
use crate::trace;

/// The instance if the caller may see it (its project's readers, admins);
/// 404 for another project's (never 403), 403 for a caller with no project.
pub async fn visible(s: &AppState, ctx: &RequestContext, id: &str) -> Result<Instance> {
    visible_on(&mut *s.db.conn().await?, ctx, id).await
}

/// [`visible`] on a connection the caller goes on using.
async fn visible_on(conn: &mut db::Conn, ctx: &RequestContext, id: &str) -> Result<Instance> {
    let scope = project_scope(ctx, ctx.is_admin(), "os_compute_api:servers:show")?;
    if !is_uuid(id) {
        return Err(crate::db::instances::not_found(id));
    }
    let i = db::instances::instance_get(conn, id).await?;
    if !scope.permits(&i.project_id) {
        return Err(crate::db::instances::not_found(id));
    }
    Ok(i)
}

fn filters(
    ctx: &RequestContext,
    raw: Option<&str>,
    v: ApiVersion,
    detail: bool,
) -> Result<ListFilter> {
    let q = params::query(raw);
    let admin = ctx.is_admin();
    let checked = servers_query::check(&q, v, admin)?;
    let all_tenants = servers_query::all_tenants(&q)?;
    let rule = if detail {
        "os_compute_api:servers:detail"
    } else {
        "os_compute_api:servers:index"
    };
    // Nova: a caller without a project (a system-scoped admin) that does not
    // ask for all_tenants gets the servers its user made.
    let own_user = ctx.is_system_scoped() && !all_tenants;
    let scope = project_scope(ctx, all_tenants || own_user, rule)?;
    // The first sort key Nova keeps (the ignored ones are dropped).
    let sort_key = params::all(&q, "sort_key").find(|k| !servers_query::is_ignored_sort_key(v, k));
    if let Some(k @ ("host" | "node")) = sort_key {
        if !admin {
            return Err(ComputeError::Forbidden(format!(
                "Only administrators can sort servers by {k}"
            )));
        }
    }
    let mut f = ListFilter {
        sort_key: sort_key.unwrap_or("created_at").to_owned(),
        sort_desc: !matches!(first(&q, "sort_dir"), Some("asc")),
        // Nova lists recently deleted servers too when asked for changes.
        include_deleted: checked.changes_since.is_some() || checked.changes_before.is_some(),
        changes_since: checked.changes_since,
        changes_before: checked.changes_before,
        ..ListFilter::default()
    };
    // Any string passes the schema; Nova's database layer refuses the rest.
    if params::all(&q, "sort_dir").any(|d| d != "asc" && d != "desc") {
        return Err(ComputeError::bad(
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'",
        ));
    }
    // Without all_tenants Nova drops `tenant_id` and filters by the
    // caller's project, whatever `project_id` says.
    f.project_id = match &scope {
        ProjectScope::All => first(&q, "project_id")
            .or(first(&q, "tenant_id"))
            .map(str::to_owned),
        ProjectScope::Project(p) => Some(p.as_str().to_owned()),
    };
    if own_user {
        f.project_id = None;
        // No user id matches nothing rather than everything.
        f.user_id = Some(
            ctx.user_id
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
        );
    }
    if admin {
        f.host = first(&q, "host").map(str::to_owned);
    }
    f.name = first(&q, "name").map(str::to_owned);
    if let Some(st) = first(&q, "status") {
        // Nova: an unknown status is a 400 from 2.38 on, before that it
        // matches nothing (an empty list).
        if v.at_least(38) && !state::is_known_status(st) {
            return Err(ComputeError::bad("Invalid status value"));
        }
        f.vm_states = Some(state::vm_states_for_status(st).unwrap_or_default());
    }
    f.reservation_id = first(&q, "reservation_id").map(str::to_owned);
    // Nova's filters open to every user (`_get_server_search_options`):
    // the last value of each, as webob's `req.GET` gives it.
    let opt = |k: &str| params::last(&q, k).map(str::to_owned);
    f.flavor_id = opt("flavor");
    f.image_ref = opt("image");
    f.ip = opt("ip");
    // `ip6` is a user's filter from 2.5; before, only an admin's.
    if admin || v.at_least(5) {
        f.ip6 = opt("ip6");
    }
    if first(&q, "deleted").is_some_and(|d| d.eq_ignore_ascii_case("true")) && !admin {
        f.vm_states = Some(Vec::new());
    }
    let (limit, marker) = params::paging(&q)?;
    f.limit = limit;
    f.marker = marker;
    Ok(f)
}

async fn listing(
    s: &AppState,
    ctx: &RequestContext,
    raw: Option<&str>,
    detail: bool,
    v: ApiVersion,
) -> Result<Value> {
    let mut f = filters(ctx, raw, v, detail)?;
    if v.at_least(26) {
        crate::app::server_tags::narrow_list(s, &params::query(raw), &mut f).await?;
    }
    let mut conn = s.db.conn().await?;
    let list = match &f.flavor_id {
        // Nova looks the flavor up first: a missing one is an empty list.
        Some(id) if !flavor_exists(&mut conn, id).await? => Vec::new(),
        _ => db::instances::instance_list(&mut conn, &f).await?,
    };
    let servers: Vec<Value> = if detail {
        // What the view needs beyond the rows, for the whole page at once.
        let ids: Vec<String> = list.iter().map(|i| i.id.to_string()).collect();
        let mut bdms = db::bdms::bdm_list_many(&mut conn, &ids).await?;
        let mut tags = if v.at_least(26) {
            db::instance_tags::instance_tags_many(&mut conn, &ids).await?
        } else {
            Default::default()
        };
        drop(conn);
        list.iter()
            .zip(&ids)
            .map(|(i, id)| {
                let mut view = views::server(s, v, ctx, i);
                let b = bdms.remove(id).unwrap_or_default();
                view["os-extended-volumes:volumes_attached"] = views::volumes_attached(v, &b);
                if v.at_least(26) {
                    view["tags"] = json!(tags.remove(id).unwrap_or_default());
                }
                view
            })
            .collect()
    } else {
        drop(conn);
        list.iter().map(|i| views::server_brief(s, i)).collect()
    };
    let mut body = json!({ "servers": servers });
    if let (Some(l), Some(last)) = (f.limit, list.last()) {
        if list.len() == l {
            let path = if detail {
                "/servers/detail"
            } else {
                "/servers"
            };
            let mut q: Vec<(String, String)> = params::query(raw)
                .into_iter()
                .filter(|(k, _)| k != "marker")
                .collect();
            q.push(("marker".into(), last.id.to_string()));
            let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            body["servers_links"] =
                json!([{"rel": "next", "href": s.link(&format!("{path}?{}", qs.join("&")))}]);
        }
    }
    Ok(body)
}

async fn flavor_exists(conn: &mut db::Conn, id: &str) -> Result<bool> {
    match db::flavors::flavor_get(conn, id).await {
        Ok(_) => Ok(true),
        Err(ComputeError::NotFound(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    Ok(Json(listing(&s, &ctx, raw.as_deref(), false, v).await?))
}

pub async fn list_detail(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    Ok(Json(listing(&s, &ctx, raw.as_deref(), true, v).await?))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    // A poll (seed steps 55–58), under its own request id.
    let res = Some(id.as_str());
    let polled = trace::start(55, "GET /servers/{id} received", res).started(trace::began());
    polled.ok();
    // One connection for the whole answer: the most frequent request of
    // all (clients poll it until ACTIVE).
    let mut conn = s.db.conn().await?;
    let read = visible_on(&mut conn, &ctx, &id);
    let i = trace::time(56, "read instance state", res, read).await?;
    let answered = trace::start(58, "return instance state", res);
    let view = views::server(&s, v, &ctx, &i);
    let view = with_volumes_on(&mut conn, v, &i, view).await;
    answered.finish(&view);
    Ok(Json(json!({ "server": view? })))
}

/// The server's view with its attached volumes
/// (`os-extended-volumes:volumes_attached`).
pub(crate) async fn with_volumes(
    s: &AppState,
    v: ApiVersion,
    i: &Instance,
    view: Value,
) -> Result<Value> {
    with_volumes_on(&mut *s.db.conn().await?, v, i, view).await
}

async fn with_volumes_on(
    conn: &mut db::Conn,
    v: ApiVersion,
    i: &Instance,
    mut view: Value,
) -> Result<Value> {
    let bdms = db::bdms::bdm_list(&mut *conn, &i.id).await?;
    view["os-extended-volumes:volumes_attached"] = views::volumes_attached(v, &bdms);
    crate::app::server_tags::fill_view(conn, v, i, &mut view).await?;
    Ok(view)
}

pub async fn update(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_member(&ctx, "os_compute_api:servers:update")?;
    let i = visible(&s, &ctx, &id).await?;
    let b = params::wrapped(&body, "server")?;
    let mut u = InstanceUpdate::default();
    if b.contains_key("name") {
        u.name = Some(params::string(b.get("name"), "name", 255)?);
    }
    if b.contains_key("description") {
        if !v.at_least(19) {
            return Err(ComputeError::bad("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)"));
        }
        u.description = Some(match b.get("description") {
            Some(Value::String(d)) if d.chars().count() <= 255 => Some(d.clone()),
            Some(Value::Null) => None,
            _ => {
                return Err(ComputeError::bad(
                    "Invalid input for field/attribute description.",
                ))
            }
        });
    }
    let i = db::instances::instance_update(&mut *s.db.conn().await?, &i.id.to_string(), &None, &u)
        .await?;
    Ok(Json(json!({"server": views::server(&s, v, &ctx, &i)})))
}

pub async fn delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_member(&ctx, "os_compute_api:servers:delete")?;
    let i = visible(&s, &ctx, &id).await?;
    if i.locked && !ctx.is_admin() {
        return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
    }
    let local = saga::delete::destroy_host(&s.db, &s.cfg, &i)
        .await?
        .is_none();
    saga::delete::run(&s.db, &s.bus, &s.cfg, Some(&s.volumes), &ctx, &i).await?;
    if local {
        // No agent will terminate it (never scheduled, or its host is
        // down): remove its ports here, as Nova's local delete does.
        if let Err(e) = local_deallocate(&s, &ctx, &i).await {
            tracing::warn!(instance = %id, error = %e, "cannot remove the ports of a locally deleted server");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Best effort, with the caller's token: delete the ports compute made,
/// unbind those the user brought.
async fn local_deallocate(s: &AppState, ctx: &RequestContext, i: &Instance) -> Result<()> {
    let token = ctx.auth_token.clone().unwrap_or_default();
    let id = i.id.to_string();
    let brought: Vec<String> = i
        .network_info
        .iter()
        .filter(|v| v.preexisting)
        .map(|v| v.port_id.clone())
        .collect();
    for p in &brought {
        s.networks.port_unbind(&token, p).await?;
    }
    for p in s.networks.ports_of(&token, &id).await? {
        if !brought.contains(&p) {
            s.networks.port_delete(&token, &p).await?;
        }
    }
    Ok(())
}
