//! `/v2.0/networks`.

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::{NetworkId, SubnetId};
use stratus_common::time::now;
use stratus_common::RequestContext;

use super::query::{respond, ListQuery};
use super::{
    owner_for_create, parse_path_id, require_read, require_write, resource_body, ts, State,
};
use crate::db::networks::{self as dbn, Network};
use crate::db::{ports as dbp, subnets as dbs, Write};
use crate::domain::tags::Tagged;
use crate::error::{Json, NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/networks", get(list).post(create))
        .route("/v2.0/networks/{id}", get(show).put(update).delete(delete))
}

pub fn view(n: &Network, subnets: &[SubnetId]) -> Value {
    json!({
        "id": n.id,
        "name": n.name,
        "description": n.description,
        "admin_state_up": n.admin_state_up,
        "status": n.status,
        "subnets": subnets,
        "shared": n.shared,
        "project_id": n.project_id,
        "tenant_id": n.project_id,
        "mtu": n.mtu,
        "port_security_enabled": n.port_security_enabled,
        "created_at": ts(n.created_at),
        "updated_at": ts(n.updated_at),
        "revision_number": n.revision_number,
        "tags": [],
        "ipv4_address_scope": null,
        "ipv6_address_scope": null,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateNetwork {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    mtu: Option<i64>,
    port_security_enabled: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateNetwork {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    shared: Option<bool>,
    mtu: Option<i64>,
    port_security_enabled: Option<bool>,
}

fn check_mtu(mtu: i64, max: u32) -> Result<()> {
    if mtu < 68 {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for mtu. Reason: '{mtu}' is too small - must be at least '68'."
        )));
    }
    if mtu > i64::from(max) {
        return Err(NetworkError::BadRequest(format!(
            "Requested MTU is too big, maximum is {max}."
        )));
    }
    Ok(())
}

/// A network the caller may see, else its 404.
pub async fn visible(state: &State, ctx: &RequestContext, id: &NetworkId) -> Result<Network> {
    let mut c = state.db.conn().await?;
    match dbn::network_get(&mut c, id).await? {
        Some(n) if ctx.is_admin() || n.shared || ctx.project_id.as_ref() == Some(&n.project_id) => {
            Ok(n)
        }
        _ => Err(NetworkError::NetworkNotFound(id.to_string())),
    }
}

/// A network the caller may change: 404 if invisible, 403 if only shared.
pub async fn owned(
    state: &State,
    ctx: &RequestContext,
    id: &NetworkId,
    action: &str,
) -> Result<Network> {
    let n = visible(state, ctx, id).await?;
    if ctx.owns(&n.project_id) {
        Ok(n)
    } else {
        Err(NetworkError::PolicyNotAuthorized(action.to_owned()))
    }
}

async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_network")?;
    let b: CreateNetwork = resource_body(body, "network")?;
    let project = owner_for_create(&ctx, b.project_id, b.tenant_id)?;
    if b.shared == Some(true) && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_network:shared".to_owned(),
        ));
    }
    let mtu = b.mtu.unwrap_or(i64::from(state.config.mtu));
    check_mtu(mtu, state.config.mtu)?;
    let mut c = state.db.conn().await?;
    super::quotas::check(&state, &mut c, &project, "network").await?;
    let t = now();
    let n = Network {
        id: NetworkId::new(),
        project_id: project,
        name: b.name.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
        admin_state_up: b.admin_state_up.unwrap_or(true),
        shared: b.shared.unwrap_or(false),
        mtu,
        status: "ACTIVE".to_owned(),
        port_security_enabled: b.port_security_enabled.unwrap_or(true),
        revision_number: 1,
        created_at: t,
        updated_at: t,
    };
    dbn::network_insert(&mut c, &n).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"network": view(&n, &[])})),
    ))
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_network")?;
    let q = ListQuery::parse(raw.as_deref())?;
    let scope = super::visible_scope(&ctx, "get_network")?;
    let mut c = state.db.conn().await?;
    let nets = dbn::network_list(&mut c, scope.as_ref()).await?;
    let subnets = dbs::subnet_ids_by_network(&mut c).await?;
    let mut views: Vec<Value> = nets
        .iter()
        .map(|n| view(n, subnets.get(&n.id).map(Vec::as_slice).unwrap_or(&[])))
        .collect();
    super::tags::attach_all(&mut c, Tagged::Network, &mut views).await?;
    super::address_scopes::attach_network_scopes(&mut c, &mut views).await?;
    Ok(axum::Json(respond(
        views,
        &q,
        "networks",
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
    require_read(&ctx, "get_network")?;
    let id: NetworkId = parse_path_id(&id, NetworkError::NetworkNotFound)?;
    let n = visible(&state, &ctx, &id).await?;
    let mut c = state.db.conn().await?;
    let subnets: Vec<SubnetId> = dbs::subnet_list_by_network(&mut c, &id)
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    let mut v = view(&n, &subnets);
    super::tags::attach_one(&mut c, Tagged::Network, &mut v).await?;
    super::address_scopes::attach_network_scopes(&mut c, std::slice::from_mut(&mut v)).await?;
    let v = select_fields(v, raw.as_deref())?;
    Ok(axum::Json(json!({"network": v})))
}

/// `fields=` on a single resource.
pub fn select_fields(mut v: Value, raw: Option<&str>) -> Result<Value> {
    let q = ListQuery::parse(raw)?;
    if !q.fields.is_empty() {
        if let Value::Object(m) = &mut v {
            m.retain(|k, _| q.fields.iter().any(|f| f == k));
        }
    }
    Ok(v)
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "update_network")?;
    let id: NetworkId = parse_path_id(&id, NetworkError::NetworkNotFound)?;
    let b: UpdateNetwork = resource_body(body, "network")?;
    let mut n = owned(&state, &ctx, &id, "update_network").await?;
    if b.shared.is_some() && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "update_network:shared".to_owned(),
        ));
    }
    if let Some(m) = b.mtu {
        check_mtu(m, state.config.mtu)?;
        n.mtu = m;
    }
    if let Some(v) = b.name {
        n.name = v;
    }
    if let Some(v) = b.description {
        n.description = v;
    }
    if let Some(v) = b.admin_state_up {
        n.admin_state_up = v;
    }
    if let Some(v) = b.shared {
        n.shared = v;
    }
    if let Some(v) = b.port_security_enabled {
        n.port_security_enabled = v;
    }
    n.updated_at = now();
    let mut c = state.db.conn().await?;
    dbn::network_update(&mut c, &n).await?;
    let n = dbn::network_get(&mut c, &id)
        .await?
        .ok_or_else(|| NetworkError::NetworkNotFound(id.to_string()))?;
    let subnets: Vec<SubnetId> = dbs::subnet_list_by_network(&mut c, &id)
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    let mut v = view(&n, &subnets);
    super::tags::attach_one(&mut c, Tagged::Network, &mut v).await?;
    super::address_scopes::attach_network_scopes(&mut c, std::slice::from_mut(&mut v)).await?;
    drop(c);
    state.agents.network_changed(&id).await;
    Ok(axum::Json(json!({ "network": v })))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_network")?;
    let id: NetworkId = parse_path_id(&id, NetworkError::NetworkNotFound)?;
    owned(&state, &ctx, &id, "delete_network").await?;
    let hosts = delete_network(&state, &id).await?;
    state.agents.network_deleted(&id, &hosts).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a network whose only ports are DHCP ports (those go with it, as
/// in Neutron), all in one transaction. Returns the hosts that had ports.
pub async fn delete_network(state: &State, id: &NetworkId) -> Result<Vec<String>> {
    let mut tx = crate::db::begin_write(&state.db).await?;
    let ports = dbp::port_list(
        &mut tx,
        dbp::PortScope {
            network: Some(id),
            ..Default::default()
        },
    )
    .await?;
    if ports
        .iter()
        .any(|p| p.device_owner != crate::agents::DEVICE_OWNER_DHCP)
    {
        return Err(NetworkError::NetworkInUse(id.to_string()));
    }
    let mut hosts: Vec<String> = Vec::new();
    for p in &ports {
        if !p.binding_host.is_empty() && !hosts.contains(&p.binding_host) {
            hosts.push(p.binding_host.clone());
        }
        dbp::port_delete(&mut tx, &p.id).await?;
    }
    for s in dbs::subnet_list_by_network(&mut tx, id).await? {
        dbs::subnet_delete(&mut tx, &s.id).await?;
    }
    // A port created meanwhile makes this fail on its foreign key.
    dbn::network_delete(&mut tx, id).await?;
    match crate::db::commit(tx).await? {
        Write::Done => Ok(hosts),
        Write::Dangling => Err(NetworkError::NetworkInUse(id.to_string())),
        w @ (Write::Duplicate | Write::Busy) => Err(w.unexpected("deleting a network")),
    }
}
