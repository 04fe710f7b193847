//! `/v2.0/ports`: addresses from the IPAM, a generated MAC, port binding
//! (`binding:*`, admin only) and security groups.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::{NetworkId, PortId, ProjectId, SecurityGroupId, SubnetId};
use stratus_common::time::now;
use stratus_common::RequestContext;

use super::networks::select_fields;
use super::query::{respond, ListQuery};
use super::{
    owner_for_create, parse_path_id, require_read, require_write, resource_body, ts, State,
};
use crate::db::ports::{self as dbp, Port};
use crate::db::subnets as dbs;
use crate::domain::port::{
    binding_for, check_groups, create_ports, ip_requests, load_port, update_port, PortSpec,
    VNIC_NORMAL,
};
use crate::domain::tags::{check_limit, parse_tag_list, Tagged};
use crate::error::{Json, NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/ports", get(list).post(create))
        .route("/v2.0/ports/{id}", get(show).put(update).delete(delete))
}

fn valid_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        // A multicast MAC cannot be a port's address.
        && u8::from_str_radix(parts[0], 16).is_ok_and(|b| b & 1 == 0)
}

pub fn view(p: &Port, admin: bool) -> Value {
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "network_id": p.network_id,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "mac_address": p.mac_address,
        "admin_state_up": p.admin_state_up,
        "status": p.status,
        "device_owner": p.device_owner,
        "device_id": p.device_id,
        "fixed_ips": p.fixed_ips.iter()
            .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address.to_string()}))
            .collect::<Vec<_>>(),
        "security_groups": p.security_groups,
        "port_security_enabled": p.port_security_enabled,
        "created_at": ts(p.created_at),
        "updated_at": ts(p.updated_at),
        "revision_number": p.revision_number,
        "tags": [],
    });
    if admin {
        if let Value::Object(m) = &mut v {
            m.insert("binding:host_id".into(), json!(p.binding_host));
            m.insert("binding:vif_type".into(), json!(p.binding_vif_type));
            m.insert("binding:vif_details".into(), p.binding_vif_details.clone());
            m.insert("binding:vnic_type".into(), json!(p.binding_vnic_type));
            m.insert("binding:profile".into(), p.binding_profile.clone());
        }
    }
    v
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct FixedIpBody {
    subnet_id: Option<String>,
    ip_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePort {
    network_id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    mac_address: Option<String>,
    fixed_ips: Option<Vec<FixedIpBody>>,
    device_owner: Option<String>,
    device_id: Option<String>,
    #[serde(rename = "binding:host_id")]
    binding_host_id: Option<String>,
    #[serde(rename = "binding:profile")]
    binding_profile: Option<Value>,
    #[serde(rename = "binding:vnic_type")]
    binding_vnic_type: Option<String>,
    security_groups: Option<Vec<String>>,
    port_security_enabled: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    /// `tag-ports-during-bulk-creation`: tags set with the port.
    tags: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePort {
    name: Option<String>,
    description: Option<String>,
    admin_state_up: Option<bool>,
    fixed_ips: Option<Vec<FixedIpBody>>,
    device_owner: Option<String>,
    device_id: Option<String>,
    #[serde(rename = "binding:host_id")]
    binding_host_id: Option<String>,
    #[serde(rename = "binding:profile")]
    binding_profile: Option<Value>,
    #[serde(rename = "binding:vnic_type")]
    binding_vnic_type: Option<String>,
    security_groups: Option<Vec<String>>,
    port_security_enabled: Option<bool>,
    mac_address: Option<String>,
    network_id: Option<Value>,
}

fn parse_fixed_ips(v: &[FixedIpBody]) -> Result<Vec<(Option<SubnetId>, Option<IpAddr>)>> {
    v.iter()
        .map(|f| {
            let s = match &f.subnet_id {
                None => None,
                Some(s) => Some(s.parse().map_err(|_| {
                    NetworkError::BadRequest(format!("Invalid input for fixed_ips. Reason: '{s}' is not a valid UUID."))
                })?),
            };
            let ip = match &f.ip_address {
                None => None,
                Some(i) => Some(i.parse().map_err(|_| {
                    NetworkError::BadRequest(format!("Invalid input for fixed_ips. Reason: '{i}' is not a valid IP address."))
                })?),
            };
            if s.is_none() && ip.is_none() {
                return Err(NetworkError::BadRequest(
                    "Invalid input for fixed_ips. Reason: each entry needs a subnet_id or an ip_address.".to_owned(),
                ));
            }
            Ok((s, ip))
        })
        .collect()
}

fn parse_groups(v: &[String]) -> Result<Vec<SecurityGroupId>> {
    let mut out: Vec<SecurityGroupId> = Vec::new();
    for s in v {
        let g: SecurityGroupId = s
            .parse()
            .map_err(|_| NetworkError::SecurityGroupNotFound(s.clone()))?;
        if !out.contains(&g) {
            out.push(g);
        }
    }
    Ok(out)
}

/// `binding:profile` is a dict (null reads as empty).
fn check_profile(v: Option<Value>) -> Result<Option<Value>> {
    match v {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(json!({}))),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(other) => Err(NetworkError::BadRequest(format!(
            "Invalid input for binding:profile. Reason: '{other}' is not a dictionary."
        ))),
    }
}

fn check_vnic(v: Option<&str>) -> Result<String> {
    match v {
        None | Some(VNIC_NORMAL) => Ok(VNIC_NORMAL.to_owned()),
        Some(o) => Err(NetworkError::BadRequest(format!(
            "Invalid input for binding:vnic_type. Reason: '{o}' is not supported by this cloud (only 'normal')."
        ))),
    }
}

/// A port the caller may see, else its 404.
pub async fn visible(state: &State, ctx: &RequestContext, id: &PortId) -> Result<Port> {
    let p = load_port(state, id).await?;
    if ctx.owns(&p.project_id) {
        Ok(p)
    } else {
        Err(NetworkError::PortNotFound(id.to_string()))
    }
}

/// `POST /v2.0/ports`, one port or a list (Neutron's bulk create): all are
/// written in one transaction, or none.
async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_port")?;
    let items = super::bulk::items(body, "port", "ports")?;
    let mut specs = Vec::with_capacity(items.items.len());
    for item in items.items {
        specs.push(spec_of(&state, &ctx, item).await?);
    }
    let mut per_project: Vec<(ProjectId, i64)> = Vec::new();
    for (spec, _) in &specs {
        match per_project.iter_mut().find(|(p, _)| *p == spec.project) {
            Some((_, k)) => *k += 1,
            None => per_project.push((spec.project.clone(), 1)),
        }
    }
    {
        let mut c = state.db.conn().await?;
        for (p, k) in &per_project {
            super::quotas::check_room(&state, &mut c, p, "port", *k).await?;
        }
    }
    let ports = create_ports(&state, specs).await?;
    let mut views = Vec::with_capacity(ports.len());
    for port in ports {
        // The driver may have moved the status on (noop: ACTIVE once bound).
        let port = load_port(&state, &port.id).await?;
        let mut v = view(&port, ctx.is_admin());
        super::tags::attach_one(&mut *state.db.conn().await?, Tagged::Port, &mut v).await?;
        views.push(v);
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(super::bulk::answer(views, items.bulk, "port", "ports")),
    ))
}

/// One item of a port create, parsed and checked against policy.
async fn spec_of(state: &State, ctx: &RequestContext, item: Value) -> Result<(PortSpec, String)> {
    let b: CreatePort = super::bulk::parse(item, "port")?;
    let net_raw = b.network_id.as_deref().ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'network_id' not specified".to_owned(),
        )
    })?;
    let net_id: NetworkId = net_raw.parse().map_err(|_| {
        NetworkError::BadRequest(format!(
            "Invalid input for network_id. Reason: '{net_raw}' is not a valid UUID."
        ))
    })?;
    let project = owner_for_create(ctx, b.project_id, b.tenant_id)?;
    if (b.binding_host_id.is_some() || b.binding_profile.is_some()) && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_port:binding:host_id".to_owned(),
        ));
    }
    let vnic = check_vnic(b.binding_vnic_type.as_deref())?;
    let network = super::networks::visible(state, ctx, &net_id).await?;
    let net_owner = ctx.owns(&network.project_id);
    if let Some(mac) = &b.mac_address {
        if !valid_mac(mac) {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for mac_address. Reason: '{mac}' is not a valid MAC address."
            )));
        }
        if !net_owner {
            return Err(NetworkError::PolicyNotAuthorized(
                "create_port:mac_address".to_owned(),
            ));
        }
    }
    // Network-owned devices (DHCP, routers) are the network owner's to make.
    if !net_owner
        && b.device_owner
            .as_deref()
            .is_some_and(|o| o.starts_with("network:"))
    {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_port:device_owner".to_owned(),
        ));
    }
    let fixed_ips = b.fixed_ips.as_deref().map(parse_fixed_ips).transpose()?;
    let tags = match &b.tags {
        None | Some(Value::Null) => Vec::new(),
        Some(t) => {
            let tags = parse_tag_list(t)?;
            check_limit(Tagged::Port, &tags)?;
            tags
        }
    };
    if !net_owner && fixed_ips.iter().flatten().any(|(_, ip)| ip.is_some()) {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_port:fixed_ips:ip_address".to_owned(),
        ));
    }
    let spec = PortSpec {
        network,
        project,
        name: b.name.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
        admin_state_up: b.admin_state_up.unwrap_or(true),
        mac_address: b.mac_address.map(|m| m.to_ascii_lowercase()),
        fixed_ips,
        device_owner: b.device_owner.unwrap_or_default(),
        device_id: b.device_id.unwrap_or_default(),
        host: b.binding_host_id.unwrap_or_default(),
        profile: check_profile(b.binding_profile)?.unwrap_or_else(|| json!({})),
        security_groups: b.security_groups.as_deref().map(parse_groups).transpose()?,
        port_security_enabled: b.port_security_enabled,
        tags,
    };
    Ok((spec, vnic))
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_port")?;
    let q = ListQuery::parse(raw.as_deref())?;
    let scope = super::visible_scope(&ctx, "get_port")?;
    // Narrow in SQL what compute and agents ask for all the time.
    let network: Option<NetworkId> = q.single("network_id").and_then(|n| n.parse().ok());
    let mut c = state.db.conn().await?;
    let ports = dbp::port_list(
        &mut c,
        dbp::PortScope {
            project: scope.as_ref(),
            network: network.as_ref(),
            device_id: q.single("device_id"),
        },
    )
    .await?;
    let admin = ctx.is_admin();
    let mut views: Vec<Value> = ports.iter().map(|p| view(p, admin)).collect();
    super::tags::attach_all(&mut c, Tagged::Port, &mut views).await?;
    Ok(axum::Json(respond(
        views,
        &q,
        "ports",
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
    require_read(&ctx, "get_port")?;
    let id: PortId = parse_path_id(&id, NetworkError::PortNotFound)?;
    let p = visible(&state, &ctx, &id).await?;
    let mut v = view(&p, ctx.is_admin());
    super::tags::attach_one(&mut *state.db.conn().await?, Tagged::Port, &mut v).await?;
    Ok(axum::Json(
        json!({"port": select_fields(v, raw.as_deref())?}),
    ))
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "update_port")?;
    let id: PortId = parse_path_id(&id, NetworkError::PortNotFound)?;
    let b: UpdatePort = resource_body(body, "port")?;
    let old = visible(&state, &ctx, &id).await?;
    if (b.binding_host_id.is_some() || b.binding_profile.is_some()) && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "update_port:binding:host_id".to_owned(),
        ));
    }
    if b.network_id.is_some() {
        return Err(NetworkError::BadRequest(
            "Cannot update read-only attribute network_id".to_owned(),
        ));
    }
    if let Some(mac) = &b.mac_address {
        if !mac.eq_ignore_ascii_case(&old.mac_address) {
            return Err(NetworkError::BadRequest(
                "Cannot update read-only attribute mac_address".to_owned(),
            ));
        }
    }
    let mut p = old.clone();
    if let Some(v) = b.name {
        p.name = v;
    }
    if let Some(v) = b.description {
        p.description = v;
    }
    if let Some(v) = b.admin_state_up {
        p.admin_state_up = v;
    }
    if let Some(v) = b.device_owner {
        p.device_owner = v;
    }
    if let Some(v) = b.device_id {
        p.device_id = v;
    }
    if let Some(v) = check_profile(b.binding_profile)? {
        p.binding_profile = v;
    }
    if b.binding_vnic_type.is_some() {
        p.binding_vnic_type = check_vnic(b.binding_vnic_type.as_deref())?;
    }
    if let Some(host) = b.binding_host_id {
        if host != p.binding_host {
            let (t, d) = binding_for(&host, &p.network_id);
            p.binding_host = host;
            p.binding_vif_type = t;
            p.binding_vif_details = d;
            // A new binding is DOWN until the (new) host's agent says otherwise.
            p.status = "DOWN".to_owned();
        }
    }
    if let Some(v) = b.port_security_enabled {
        p.port_security_enabled = v;
        if !v && b.security_groups.is_none() && !p.security_groups.is_empty() {
            return Err(NetworkError::Conflict(format!(
                "Port {id} has security group associated. Cannot disable port security or ip \
                 address until security group is removed."
            )));
        }
    }
    if let Some(g) = &b.security_groups {
        let groups = parse_groups(g)?;
        if !p.port_security_enabled && !groups.is_empty() {
            return Err(NetworkError::BadRequest(
                "Port security must be enabled and port must have an IP address in order to use security groups.".to_owned(),
            ));
        }
        check_groups(&state, &p.project_id, &groups).await?;
        p.security_groups = groups;
    }
    p.updated_at = now();
    let new_ips = match &b.fixed_ips {
        None => None,
        Some(f) => {
            let asked = parse_fixed_ips(f)?;
            let mut c = state.db.conn().await?;
            let net = crate::db::networks::network_get(&mut c, &p.network_id).await?;
            let net_owner = net.is_some_and(|n| ctx.owns(&n.project_id));
            if !net_owner && asked.iter().any(|(_, ip)| ip.is_some()) {
                return Err(NetworkError::PolicyNotAuthorized(
                    "update_port:fixed_ips:ip_address".to_owned(),
                ));
            }
            let subnets = dbs::subnet_list_by_network(&mut c, &p.network_id).await?;
            // Addresses the port keeps are asked for by value.
            let asked: Vec<(Option<SubnetId>, Option<IpAddr>)> = asked
                .into_iter()
                .map(|(s, ip)| {
                    let kept = old
                        .fixed_ips
                        .iter()
                        .find(|f| Some(f.subnet_id) == s && ip.is_none());
                    match kept {
                        Some(f) => (Some(f.subnet_id), Some(f.ip_address)),
                        None => (s, ip),
                    }
                })
                .collect();
            let is_router = p.device_owner.starts_with("network:router");
            let reqs = ip_requests(&p.network_id, &subnets, Some(&asked), is_router)?;
            Some((
                reqs,
                subnets
                    .into_iter()
                    .map(|s| (s.id, s))
                    .collect::<HashMap<_, _>>(),
            ))
        }
    };
    let p = update_port(
        &state,
        &old,
        &p,
        new_ips.as_ref().map(|(r, s)| (r.as_slice(), s)),
    )
    .await?;
    let mut v = view(&p, ctx.is_admin());
    super::tags::attach_one(&mut *state.db.conn().await?, Tagged::Port, &mut v).await?;
    Ok(axum::Json(json!({ "port": v })))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_port")?;
    let id: PortId = parse_path_id(&id, NetworkError::PortNotFound)?;
    let p = visible(&state, &ctx, &id).await?;
    let mut c = state.db.conn().await?;
    dbp::port_delete(&mut c, &id).await?;
    drop(c);
    state.agents.port_changed(Some(&p), None).await;
    Ok(StatusCode::NO_CONTENT)
}
