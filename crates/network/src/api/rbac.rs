//! `/v2.0/rbac-policies` (`rbac-policies`): sharing a network with one
//! project or with all (`'*'`), as shared (`access_as_shared`: visible and
//! usable, ports of that project on it) or as external (`access_as_external`:
//! visible). The network's `shared` is its `'*'` shared policy and its
//! `router:external` the existence of an external policy, kept on the row
//! in the policy's transaction. A policy whose removal would strand the
//! target's ports is in use (409 `RbacPolicyInUse`).

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::NetworkId;
use stratus_common::RequestContext;

use super::query::{respond, ListQuery};
use super::{owner_for_create, parse_path_id, require_read, require_write, resource_body, State};
use crate::db::networks::{self as dbn, Network};
use crate::db::rbac::{self as dbr, RbacPolicy, RbacPolicyId};
use crate::db::{Conn, Write};
use crate::error::{Json, NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/rbac-policies", get(list).post(create))
        .route(
            "/v2.0/rbac-policies/{id}",
            get(show).put(update).delete(delete),
        )
}

pub fn view(p: &RbacPolicy) -> Value {
    json!({
        "id": p.id,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "object_type": p.object_type,
        "object_id": p.object_id,
        "action": p.action,
        "target_tenant": p.target_tenant,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePolicy {
    object_type: Option<String>,
    object_id: Option<String>,
    action: Option<String>,
    target_tenant: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePolicy {
    target_tenant: Option<String>,
}

fn not_found(id: &str) -> NetworkError {
    NetworkError::NotFoundKind {
        kind: "RbacPolicyNotFound",
        message: format!("RBAC policy of type network with ID {id} not found"),
    }
}

fn required(v: Option<String>, attr: &str) -> Result<String> {
    v.ok_or_else(|| {
        NetworkError::BadRequest(format!(
            "Failed to parse request. Required attribute '{attr}' not specified"
        ))
    })
}

/// Only an admin may share with everyone (Neutron's `restrict_wildcard`).
fn check_target(ctx: &RequestContext, target: &str, action: &str) -> Result<()> {
    if target == dbr::EVERYONE && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(format!(
            "{action}_rbac_policy:target_tenant"
        )));
    }
    if target.is_empty() || target.len() > 255 {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for target_tenant. Reason: '{target}' is not a valid string."
        )));
    }
    Ok(())
}

/// A policy the caller may see (its project's), else its 404.
async fn owned(state: &State, ctx: &RequestContext, id: &str) -> Result<RbacPolicy> {
    let pid: RbacPolicyId = parse_path_id(id, |s| not_found(&s))?;
    let mut c = state.db.conn().await?;
    match dbr::rbac_get(&mut c, &pid).await? {
        Some(p) if ctx.owns(&p.project_id) => Ok(p),
        _ => Err(not_found(id)),
    }
}

/// 409 `RbacPolicyInUse` when taking `target`'s shared access away would
/// leave ports of a project that no other policy lets use the network.
pub async fn check_unshare(conn: &mut Conn, n: &Network, target: &str) -> Result<()> {
    let users = dbr::rbac_port_projects(conn, &n.id, &n.project_id).await?;
    let policies = dbr::rbac_list_for_network(conn, &n.id).await?;
    let still = |p: &str| {
        policies.iter().any(|x| {
            x.action == dbr::ACCESS_AS_SHARED
                && x.target_tenant != target
                && (x.target_tenant == p || x.target_tenant == dbr::EVERYONE)
        })
    };
    let stranded: Vec<&String> = users
        .iter()
        .filter(|u| (target == dbr::EVERYONE || target == u.as_str()) && !still(u))
        .collect();
    if stranded.is_empty() {
        return Ok(());
    }
    Err(NetworkError::ConflictKind {
        kind: "RbacPolicyInUse",
        message: format!(
            "RBAC policy on object {} cannot be removed because other objects depend on it.\n\
             Details: Ports of project(s) {} are on the network.",
            n.id,
            stranded
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// Writes the row's mirrors of the network's policies (see the module doc).
async fn sync_network(conn: &mut Conn, net: &NetworkId) -> Result<()> {
    let policies = dbr::rbac_list_for_network(conn, net).await?;
    let shared = policies
        .iter()
        .any(|p| p.action == dbr::ACCESS_AS_SHARED && p.target_tenant == dbr::EVERYONE);
    let external = policies.iter().any(|p| p.action == dbr::ACCESS_AS_EXTERNAL);
    dbn::network_set_everyone(conn, net, Some(shared), Some(external)).await
}

fn duplicate() -> NetworkError {
    NetworkError::ConflictKind {
        kind: "DuplicateRbacPolicy",
        message: "An RBAC policy already exists with those values.".to_owned(),
    }
}

async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_rbac_policy")?;
    let b: CreatePolicy = resource_body(body, "rbac_policy")?;
    let object_type = required(b.object_type, "object_type")?;
    let object_id = required(b.object_id, "object_id")?;
    let action = required(b.action, "action")?;
    let target = required(b.target_tenant, "target_tenant")?;
    if object_type != "network" {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for object_type. Reason: '{object_type}' is not in ['network']."
        )));
    }
    if action != dbr::ACCESS_AS_SHARED && action != dbr::ACCESS_AS_EXTERNAL {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for action. Reason: '{action}' is not in ['access_as_external', \
             'access_as_shared']."
        )));
    }
    check_target(&ctx, &target, "create")?;
    let project = owner_for_create(&ctx, b.project_id, b.tenant_id)?;
    let net_id: NetworkId = object_id
        .parse()
        .map_err(|_| NetworkError::NetworkNotFound(object_id.clone()))?;
    let net = super::networks::visible(&state, &ctx, &net_id).await?;
    if !ctx.is_admin() && !ctx.owns(&net.project_id) {
        return Err(NetworkError::InvalidInput(
            "Only admins can manipulate policies on networks they do not own.".to_owned(),
        ));
    }
    let p = RbacPolicy {
        id: RbacPolicyId::new(),
        project_id: project,
        object_type,
        object_id: net_id,
        action,
        target_tenant: target,
    };
    let mut tx = crate::db::begin_write(&state.db).await?;
    match dbr::rbac_insert(&mut tx, &p).await? {
        Write::Done => {}
        Write::Duplicate => return Err(duplicate()),
        Write::Dangling => return Err(NetworkError::NetworkNotFound(net_id.to_string())),
        w @ Write::Busy => return Err(w.unexpected("creating an RBAC policy")),
    }
    sync_network(&mut tx, &net_id).await?;
    tx.commit().await?;
    state.agents.network_changed(&net_id).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"rbac_policy": view(&p)})),
    ))
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_rbac_policy")?;
    let q = ListQuery::parse(raw.as_deref())?;
    let scope = super::visible_scope(&ctx, "get_rbac_policy")?;
    let mut c = state.db.conn().await?;
    let views = dbr::rbac_list(&mut c, scope.as_ref())
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(axum::Json(respond(
        views,
        &q,
        "rbac_policies",
        uri.path(),
        &headers,
    )?))
}

async fn show(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_rbac_policy")?;
    let p = owned(&state, &ctx, &id).await?;
    let v = super::networks::select_fields(view(&p), raw.as_deref())?;
    Ok(axum::Json(json!({ "rbac_policy": v })))
}

/// Loads the network of a policy, for the in-use check.
async fn network_of(conn: &mut Conn, p: &RbacPolicy) -> Result<Network> {
    dbn::network_get(conn, &p.object_id)
        .await?
        .ok_or_else(|| NetworkError::NetworkNotFound(p.object_id.to_string()))
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "update_rbac_policy")?;
    let b: UpdatePolicy = resource_body(body, "rbac_policy")?;
    let mut p = owned(&state, &ctx, &id).await?;
    if let Some(target) = b.target_tenant {
        check_target(&ctx, &target, "update")?;
        let mut tx = crate::db::begin_write(&state.db).await?;
        if p.action == dbr::ACCESS_AS_SHARED && target != p.target_tenant {
            let n = network_of(&mut tx, &p).await?;
            check_unshare(&mut tx, &n, &p.target_tenant).await?;
        }
        match dbr::rbac_set_target(&mut tx, &p.id, &target).await? {
            Write::Done => {}
            Write::Duplicate => return Err(duplicate()),
            w => return Err(w.unexpected("updating an RBAC policy")),
        }
        sync_network(&mut tx, &p.object_id).await?;
        tx.commit().await?;
        p.target_tenant = target;
        state.agents.network_changed(&p.object_id).await;
    }
    Ok(axum::Json(json!({"rbac_policy": view(&p)})))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_rbac_policy")?;
    let p = owned(&state, &ctx, &id).await?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    if p.action == dbr::ACCESS_AS_SHARED {
        let n = network_of(&mut tx, &p).await?;
        check_unshare(&mut tx, &n, &p.target_tenant).await?;
    }
    dbr::rbac_delete(&mut tx, &p.id).await?;
    sync_network(&mut tx, &p.object_id).await?;
    tx.commit().await?;
    state.agents.network_changed(&p.object_id).await;
    Ok(StatusCode::NO_CONTENT)
}
