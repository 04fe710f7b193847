//! `/v2.0/networks`.

use std::collections::HashSet;

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
use crate::db::rbac::{self as dbr, RbacPolicy, RbacPolicyId};
use crate::db::{ports as dbp, subnets as dbs, Conn, Write};
use crate::domain::segments::{self, SegmentRequest};
use crate::domain::tags::Tagged;
use crate::error::{Json, NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/networks", get(list).post(create))
        .route("/v2.0/networks/{id}", get(show).put(update).delete(delete))
}

/// A network as an admin sees it (provider attributes included; `shared`
/// is the `'*'` policy).
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
        "provider:network_type": n.segment.network_type,
        "provider:physical_network": n.segment.physical_network,
        "provider:segmentation_id": n.segment.segmentation_id,
        "router:external": n.router_external,
        "availability_zone_hints": n.availability_zone_hints,
        "availability_zones": [],
        "ipv4_address_scope": null,
        "ipv6_address_scope": null,
    })
}

/// What the caller's view of networks depends on besides the rows.
pub struct Viewer {
    admin: bool,
    /// Shared with the caller's project by a policy naming it.
    shared_with: HashSet<NetworkId>,
    /// Networks in the zone (`None`: all).
    in_zone: Option<HashSet<NetworkId>>,
    zone: String,
}

impl Viewer {
    pub async fn of(state: &State, ctx: &RequestContext, conn: &mut Conn) -> Result<Viewer> {
        let shared_with = match &ctx.project_id {
            Some(p) => dbr::rbac_shared_with(conn, p).await?.into_iter().collect(),
            None => HashSet::new(),
        };
        Ok(Viewer {
            admin: ctx.is_admin(),
            shared_with,
            in_zone: super::availability_zones::networks_in_zone(state, conn).await?,
            zone: state.config.availability_zone.clone(),
        })
    }

    /// [`view`] as this caller may see it: the provider attributes are an
    /// admin's (Neutron's `get_network:provider:*` policy), and a network
    /// shared with the caller's project is `shared` to it.
    pub fn view(&self, n: &Network, subnets: &[SubnetId]) -> Value {
        let mut v = view(n, subnets);
        if let Value::Object(m) = &mut v {
            if !self.admin {
                m.retain(|k, _| !k.starts_with("provider:"));
            }
            if self.shared_with.contains(&n.id) {
                m.insert("shared".into(), json!(true));
            }
            if self.in_zone.as_ref().is_none_or(|z| z.contains(&n.id)) {
                m.insert("availability_zones".into(), json!([self.zone]));
            }
        }
        v
    }
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
    #[serde(rename = "provider:network_type")]
    network_type: Option<String>,
    #[serde(rename = "provider:physical_network")]
    physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    segmentation_id: Option<Value>,
    #[serde(rename = "router:external")]
    router_external: Option<bool>,
    availability_zone_hints: Option<Vec<String>>,
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
    #[serde(rename = "router:external")]
    router_external: Option<bool>,
    #[serde(rename = "provider:network_type")]
    network_type: Option<Value>,
    #[serde(rename = "provider:physical_network")]
    physical_network: Option<Value>,
    #[serde(rename = "provider:segmentation_id")]
    segmentation_id: Option<Value>,
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

/// A network the caller may see (its own, shared, external, or shared with
/// its project by a policy), else its 404.
pub async fn visible(state: &State, ctx: &RequestContext, id: &NetworkId) -> Result<Network> {
    let mut c = state.db.conn().await?;
    let n = dbn::network_get(&mut c, id).await?;
    if let Some(n) = n {
        if ctx.is_admin() || ctx.project_id.as_ref() == Some(&n.project_id) {
            return Ok(n);
        }
        if let Some(p) = &ctx.project_id {
            if dbn::network_visible_to(&mut c, id, p).await? {
                return Ok(n);
            }
        }
    }
    Err(NetworkError::NetworkNotFound(id.to_string()))
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

/// Parses and checks one item of a create (nothing written).
async fn prepare(state: &State, ctx: &RequestContext, item: Value) -> Result<Network> {
    let b: CreateNetwork = super::bulk::parse(item, "network")?;
    let project = owner_for_create(ctx, b.project_id, b.tenant_id)?;
    // Neutron's policy: these attributes are an admin's to set.
    for (attr, set) in [
        ("shared", b.shared == Some(true)),
        ("provider:network_type", b.network_type.is_some()),
        ("provider:physical_network", b.physical_network.is_some()),
        ("provider:segmentation_id", b.segmentation_id.is_some()),
        ("router:external", b.router_external.is_some()),
    ] {
        if set && !ctx.is_admin() {
            return Err(NetworkError::PolicyNotAuthorized(format!(
                "create_network:{attr}"
            )));
        }
    }
    let segment = segments::validate(
        &state.config,
        &SegmentRequest {
            network_type: b.network_type,
            physical_network: b.physical_network,
            segmentation_id: b.segmentation_id,
        },
    )?;
    let mtu = b.mtu.unwrap_or(i64::from(state.config.mtu));
    check_mtu(mtu, state.config.mtu)?;
    let hints = b.availability_zone_hints.unwrap_or_default();
    super::availability_zones::check_hints(state, &mut *state.db.conn().await?, &hints).await?;
    let t = now();
    Ok(Network {
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
        segment,
        router_external: b.router_external.unwrap_or(false),
        availability_zone_hints: hints,
    })
}

/// The `'*'` policy that mirrors a flag of the row, as Neutron makes it.
fn everyone_policy(n: &Network, action: &str) -> RbacPolicy {
    RbacPolicy {
        id: RbacPolicyId::new(),
        project_id: n.project_id.clone(),
        object_type: "network".to_owned(),
        object_id: n.id,
        action: action.to_owned(),
        target_tenant: dbr::EVERYONE.to_owned(),
    }
}

/// Inserts a network and its `'*'` policies.
async fn insert(conn: &mut Conn, n: &Network) -> Result<()> {
    match dbn::network_insert(conn, n).await? {
        Write::Done => {}
        Write::Duplicate => return Err(segments::in_use(&n.segment)),
        w @ (Write::Dangling | Write::Busy) => return Err(w.unexpected("inserting a network")),
    }
    for (on, action) in [
        (n.shared, dbr::ACCESS_AS_SHARED),
        (n.router_external, dbr::ACCESS_AS_EXTERNAL),
    ] {
        if on {
            match dbr::rbac_insert(conn, &everyone_policy(n, action)).await? {
                Write::Done => {}
                w => return Err(w.unexpected("inserting a network's policy")),
            }
        }
    }
    Ok(())
}

/// `POST /v2.0/networks`, one network or a list: all are written in one
/// transaction, or none.
async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_network")?;
    let items = super::bulk::items(body, "network", "networks")?;
    let mut new = Vec::with_capacity(items.items.len());
    for item in items.items {
        new.push(prepare(&state, &ctx, item).await?);
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    let per_project = super::bulk::per_project(new.iter().map(|n| &n.project_id));
    for (p, k) in &per_project {
        super::quotas::check_room(&state, &mut tx, p, "network", *k).await?;
    }
    for n in &new {
        insert(&mut tx, n).await?;
    }
    match crate::db::commit(tx).await? {
        Write::Done => {}
        Write::Duplicate => {
            return Err(new
                .first()
                .map(|n| segments::in_use(&n.segment))
                .unwrap_or_else(|| Write::Duplicate.unexpected("creating networks")))
        }
        w => return Err(w.unexpected("creating networks")),
    }
    let viewer = Viewer::of(&state, &ctx, &mut *state.db.conn().await?).await?;
    let views = new.iter().map(|n| viewer.view(n, &[])).collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(super::bulk::answer(
            views, items.bulk, "network", "networks",
        )),
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
    let viewer = Viewer::of(&state, &ctx, &mut c).await?;
    let mut views: Vec<Value> = nets
        .iter()
        .map(|n| viewer.view(n, subnets.get(&n.id).map(Vec::as_slice).unwrap_or(&[])))
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
    let v = full_view(&state, &ctx, &mut *state.db.conn().await?, &n).await?;
    let v = select_fields(v, raw.as_deref())?;
    Ok(axum::Json(json!({"network": v})))
}

/// One network as the caller sees it, with its subnet ids, tags and
/// address scopes.
async fn full_view(
    state: &State,
    ctx: &RequestContext,
    c: &mut Conn,
    n: &Network,
) -> Result<Value> {
    let subnets = dbs::subnet_ids_of_network(&mut *c, &n.id).await?;
    let mut v = Viewer::of(state, ctx, &mut *c).await?.view(n, &subnets);
    super::tags::attach_one(&mut *c, Tagged::Network, &mut v).await?;
    super::address_scopes::attach_network_scopes(c, std::slice::from_mut(&mut v)).await?;
    Ok(v)
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
    for (attr, set) in [
        ("shared", b.shared.is_some()),
        ("router:external", b.router_external.is_some()),
    ] {
        if set && !ctx.is_admin() {
            return Err(NetworkError::PolicyNotAuthorized(format!(
                "update_network:{attr}"
            )));
        }
    }
    if b.network_type.is_some() || b.physical_network.is_some() || b.segmentation_id.is_some() {
        return Err(NetworkError::InvalidInput(
            "Plugin does not support updating provider attributes.".to_owned(),
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
    let was = (n.shared, n.router_external);
    if let Some(v) = b.shared {
        n.shared = v;
    }
    if let Some(v) = b.router_external {
        n.router_external = v;
    }
    if let Some(v) = b.port_security_enabled {
        n.port_security_enabled = v;
    }
    n.updated_at = now();
    let mut tx = crate::db::begin_write(&state.db).await?;
    if was.0 && !n.shared {
        super::rbac::check_unshare(&mut tx, &n, dbr::EVERYONE)
            .await
            .map_err(|_| NetworkError::ConflictKind {
                kind: "InvalidSharedSetting",
                message: format!(
                    "Unable to reconfigure sharing settings for network {id}. Multiple tenants \
                     are using it."
                ),
            })?;
    }
    dbn::network_update(&mut tx, &n).await?;
    for (before, after, action) in [
        (was.0, n.shared, dbr::ACCESS_AS_SHARED),
        (was.1, n.router_external, dbr::ACCESS_AS_EXTERNAL),
    ] {
        if after && !before {
            match dbr::rbac_insert(&mut tx, &everyone_policy(&n, action)).await? {
                Write::Done | Write::Duplicate => {}
                w => return Err(w.unexpected("sharing a network")),
            }
        } else if before && !after && action == dbr::ACCESS_AS_SHARED {
            dbr::rbac_delete_matching(&mut tx, &id, action, dbr::EVERYONE).await?;
        } else if before && !after {
            // No longer external: to nobody (Neutron drops every such policy).
            dbr::rbac_delete_action(&mut tx, &id, action).await?;
        }
    }
    tx.commit().await?;
    let mut c = state.db.conn().await?;
    let n = dbn::network_get(&mut c, &id)
        .await?
        .ok_or_else(|| NetworkError::NetworkNotFound(id.to_string()))?;
    let v = full_view(&state, &ctx, &mut c, &n).await?;
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
