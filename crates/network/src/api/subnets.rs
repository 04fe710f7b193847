//! `/v2.0/subnets`: CIDR, gateway and pool defaults and checks as Neutron
//! makes them.

use std::net::IpAddr;

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::{NetworkId, SubnetId};
use stratus_common::time::now;
use stratus_common::RequestContext;

use super::networks::select_fields;
use super::query::{respond, ListQuery};
use super::{
    double_option, owner_for_create, parse_path_id, require_read, require_write, resource_body, ts,
    State,
};
use crate::db::ports as dbp;
use crate::db::subnets::{self as dbs, HostRoute, Subnet};
use crate::domain::tags::Tagged;
use crate::error::{Json, NetworkError, Result};
use crate::ipam::{self, Pool};

/// Neutron's `max_dns_nameservers` default.
const MAX_DNS: usize = 5;
/// Neutron's `max_subnet_host_routes` default.
const MAX_ROUTES: usize = 20;

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/subnets", get(list).post(create))
        .route("/v2.0/subnets/{id}", get(show).put(update).delete(delete))
}

pub fn view(s: &Subnet) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "network_id": s.network_id,
        "project_id": s.project_id,
        "tenant_id": s.project_id,
        "cidr": s.cidr.to_string(),
        "ip_version": s.ip_version,
        "gateway_ip": s.gateway_ip.map(|g| g.to_string()),
        "enable_dhcp": s.enable_dhcp,
        "allocation_pools": s.allocation_pools.iter()
            .map(|p| json!({"start": p.start.to_string(), "end": p.end.to_string()}))
            .collect::<Vec<_>>(),
        "dns_nameservers": s.dns_nameservers.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "host_routes": s.host_routes.iter()
            .map(|r| json!({"destination": r.destination.to_string(), "nexthop": r.nexthop.to_string()}))
            .collect::<Vec<_>>(),
        "ipv6_address_mode": null,
        "ipv6_ra_mode": null,
        "subnetpool_id": s.subnetpool_id,
        "service_types": [],
        "created_at": ts(s.created_at),
        "updated_at": ts(s.updated_at),
        "revision_number": s.revision_number,
        "tags": [],
    })
}

#[derive(Deserialize)]
struct PoolBody {
    start: String,
    end: String,
}

#[derive(Deserialize)]
struct RouteBody {
    destination: String,
    nexthop: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSubnet {
    network_id: Option<String>,
    cidr: Option<String>,
    ip_version: Option<u8>,
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    gateway_ip: Option<Option<String>>,
    allocation_pools: Option<Vec<PoolBody>>,
    dns_nameservers: Option<Vec<String>>,
    host_routes: Option<Vec<RouteBody>>,
    enable_dhcp: Option<bool>,
    ipv6_address_mode: Option<String>,
    ipv6_ra_mode: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
    // `subnet_allocation` and `default-subnetpools`.
    #[serde(default, deserialize_with = "double_option")]
    subnetpool_id: Option<Option<String>>,
    use_default_subnetpool: Option<bool>,
    prefixlen: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateSubnet {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    gateway_ip: Option<Option<String>>,
    allocation_pools: Option<Vec<PoolBody>>,
    dns_nameservers: Option<Vec<String>>,
    host_routes: Option<Vec<RouteBody>>,
    enable_dhcp: Option<bool>,
    cidr: Option<Value>,
    ip_version: Option<Value>,
    network_id: Option<Value>,
}

fn parse_ip(s: &str, what: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| {
        NetworkError::BadRequest(format!(
            "Invalid input for {what}. Reason: '{s}' is not a valid IP address."
        ))
    })
}

fn parse_pools(pools: &[PoolBody]) -> Result<Vec<Pool>> {
    pools
        .iter()
        .map(|p| {
            Ok(Pool {
                start: parse_ip(&p.start, "allocation_pools")?,
                end: parse_ip(&p.end, "allocation_pools")?,
            })
        })
        .collect()
}

fn parse_dns(dns: &[String]) -> Result<Vec<IpAddr>> {
    if dns.len() > MAX_DNS {
        return Err(NetworkError::BadRequest(format!(
            "Number of DNS nameservers exceeds the limit {MAX_DNS}."
        )));
    }
    let mut out: Vec<IpAddr> = Vec::new();
    for d in dns {
        let ip = parse_ip(d, "dns_nameservers")?;
        if out.contains(&ip) {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for dns_nameservers. Reason: Duplicate nameserver '{d}'."
            )));
        }
        out.push(ip);
    }
    Ok(out)
}

fn parse_routes(routes: &[RouteBody], ip_version: u8) -> Result<Vec<HostRoute>> {
    if routes.len() > MAX_ROUTES {
        return Err(NetworkError::BadRequest(format!(
            "Number of host routes exceeds the limit {MAX_ROUTES}."
        )));
    }
    let mut out: Vec<HostRoute> = Vec::new();
    for r in routes {
        let destination: IpNet = r.destination.parse().map_err(|_| {
            NetworkError::BadRequest(format!(
                "Invalid input for host_routes. Reason: '{}' is not a valid IP subnet.",
                r.destination
            ))
        })?;
        let nexthop = parse_ip(&r.nexthop, "host_routes")?;
        let v = |a: bool| if a { 4 } else { 6 };
        if v(destination.addr().is_ipv4()) != ip_version || v(nexthop.is_ipv4()) != ip_version {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for operation: host route {}/{} does not match the subnet's IP version.",
                r.destination, r.nexthop
            )));
        }
        let route = HostRoute {
            destination: destination.trunc(),
            nexthop,
        };
        if out.contains(&route) {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for host_routes. Reason: Duplicate hostroute '{}'.",
                r.destination
            )));
        }
        out.push(route);
    }
    Ok(out)
}

fn parse_gateway(cidr: &IpNet, g: &str) -> Result<IpAddr> {
    let ip = parse_ip(g, "gateway_ip")?;
    ipam::check_in_subnet(cidr, ip).map_err(|_| {
        NetworkError::BadRequest(format!(
            "Gateway is not valid on subnet: {g} is not a usable address of {cidr}."
        ))
    })?;
    Ok(ip)
}

/// A subnet the caller may see, else its 404.
pub async fn visible(state: &State, ctx: &RequestContext, id: &SubnetId) -> Result<Subnet> {
    let mut c = state.db.conn().await?;
    let Some(s) = dbs::subnet_get(&mut c, id).await? else {
        return Err(NetworkError::SubnetNotFound(id.to_string()));
    };
    if ctx.owns(&s.project_id) {
        return Ok(s);
    }
    // Subnets of a network the caller sees (shared, external, or shared
    // with its project by a policy).
    let seen = match &ctx.project_id {
        Some(p) => crate::db::networks::network_visible_to(&mut c, &s.network_id, p).await?,
        None => false,
    };
    if seen {
        Ok(s)
    } else {
        Err(NetworkError::SubnetNotFound(id.to_string()))
    }
}

/// `POST /v2.0/subnets`, one subnet or a list (Neutron's bulk create): all
/// are written in one transaction, or none.
async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_subnet")?;
    let items = super::bulk::items(body, "subnet", "subnets")?;
    let mut new: Vec<Prepared> = Vec::with_capacity(items.items.len());
    for item in items.items {
        new.push(prepare(&state, &ctx, item).await?);
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    let per_project = super::bulk::per_project(new.iter().map(|p| &p.subnet.project_id));
    for (p, k) in &per_project {
        super::quotas::check_room(&state, &mut tx, p, "subnet", *k).await?;
    }
    for Prepared { subnet: s, cut } in &mut new {
        if let Some(cut) = cut {
            cut_from_pool(&mut tx, s, cut).await?;
        }
        let existing = dbs::subnet_list_by_network(&mut tx, &s.network_id).await?;
        let pool = cut.as_ref().map(|c| &c.pool);
        super::subnet_pools::check_network_affinity(&mut tx, &existing, s.ip_version, pool).await?;
        // Checked inside the transaction that inserts, so that two requests
        // cannot both add an overlapping CIDR on SQLite (one writer); on
        // PostgreSQL the window is the transaction's. The subnets of this
        // request inserted before are among those listed.
        for other in dbs::subnet_list_by_network(&mut tx, &s.network_id).await? {
            if other.cidr.contains(&s.cidr.network()) || s.cidr.contains(&other.cidr.network()) {
                return Err(NetworkError::BadRequest(format!(
                    "Invalid input for operation: Requested subnet with cidr: {} for network: {} overlaps with another subnet.",
                    s.cidr, s.network_id
                )));
            }
        }
        dbs::subnet_insert(&mut tx, s).await?;
    }
    tx.commit().await?;
    let new: Vec<Subnet> = new.into_iter().map(|p| p.subnet).collect();
    let mut notified: Vec<NetworkId> = Vec::new();
    for s in &new {
        if !notified.contains(&s.network_id) {
            notified.push(s.network_id);
            state.agents.network_changed(&s.network_id).await;
        }
    }
    let views = new.iter().map(view).collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(super::bulk::answer(views, items.bulk, "subnet", "subnets")),
    ))
}

/// One subnet of a create, parsed and checked; with a pool, what to cut
/// from it in the transaction that inserts.
struct Prepared {
    subnet: Subnet,
    cut: Option<PoolCut>,
}

/// A subnet's CIDR still to cut from a pool, and what its gateway and
/// allocation pools are then made of.
struct PoolCut {
    pool: crate::db::subnet_pools::SubnetPool,
    asked: Option<ipnet::IpNet>,
    /// A gateway without a CIDR asks for the CIDR around it.
    gateway: Option<IpAddr>,
    prefixlen: Option<Value>,
    gateway_ip: Option<Option<String>>,
    allocation_pools: Option<Vec<PoolBody>>,
}

/// Cuts the subnet's CIDR from its pool (in the caller's transaction) and
/// makes its gateway and allocation pools as for a CIDR given.
async fn cut_from_pool(tx: &mut crate::db::Conn, s: &mut Subnet, cut: &PoolCut) -> Result<()> {
    let cidr = super::subnet_pools::cut(
        tx,
        &cut.pool,
        &s.project_id,
        cut.asked,
        cut.gateway,
        cut.prefixlen.as_ref(),
    )
    .await?;
    let gateway_ip = match &cut.gateway_ip {
        None => ipam::default_gateway(&cidr),
        Some(None) => None,
        Some(Some(g)) => Some(parse_gateway(&cidr, g)?),
    };
    s.allocation_pools = match &cut.allocation_pools {
        Some(p) => {
            let pools = parse_pools(p)?;
            ipam::validate_pools(&cidr, &pools, gateway_ip)?;
            pools
        }
        None => ipam::default_pools(&cidr, gateway_ip),
    };
    s.cidr = cidr;
    s.gateway_ip = gateway_ip;
    Ok(())
}

/// One item of a subnet create, parsed and checked (nothing written).
async fn prepare(state: &State, ctx: &RequestContext, item: Value) -> Result<Prepared> {
    let mut b: CreateSubnet = super::bulk::parse(item, "subnet")?;
    let net_id = b.network_id.as_deref().ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'network_id' not specified".to_owned(),
        )
    })?;
    let net_id: NetworkId = net_id.parse().map_err(|_| {
        NetworkError::BadRequest(format!(
            "Invalid input for network_id. Reason: '{net_id}' is not a valid UUID."
        ))
    })?;
    let ip_version = b.ip_version.ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'ip_version' not specified".to_owned(),
        )
    })?;
    if ip_version != 4 && ip_version != 6 {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for ip_version. Reason: {ip_version} is not in [4, 6]."
        )));
    }
    if b.ipv6_address_mode.is_some() || b.ipv6_ra_mode.is_some() {
        return Err(NetworkError::BadRequest(
            "ipv6_address_mode and ipv6_ra_mode are not supported by this cloud.".to_owned(),
        ));
    }
    let asked_cidr = b
        .cidr
        .as_deref()
        .map(|c| ipam::parse_cidr(c, ip_version))
        .transpose()?;
    let pool_ask = super::subnet_pools::PoolAsk {
        subnetpool_id: b.subnetpool_id,
        use_default_subnetpool: b.use_default_subnetpool,
        prefixlen: b.prefixlen,
    };
    let pool = super::subnet_pools::pool_for_subnet(
        state,
        ctx,
        &pool_ask,
        ip_version,
        asked_cidr.as_ref(),
    )
    .await?;
    if pool.is_some() && asked_cidr.is_none() && b.allocation_pools.is_some() {
        return Err(NetworkError::BadRequest(
            "Bad subnets request: allocation_pools allowed only for specific subnet requests."
                .to_owned(),
        ));
    }
    // With a pool, the CIDR is cut in the transaction; until then the
    // asked one, or a placeholder.
    let cidr = match (&pool, asked_cidr) {
        (_, Some(c)) => c,
        (Some(_), None) => ipnet::IpNet::V4(ipnet::Ipv4Net::default()),
        (None, None) => {
            return Err(NetworkError::BadRequest(
                "Bad subnets request: a cidr must be specified.".to_owned(),
            ))
        }
    };
    let net = super::networks::visible(state, ctx, &net_id).await?;
    if !ctx.owns(&net.project_id) {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_subnet".to_owned(),
        ));
    }
    let project = match (b.project_id, b.tenant_id) {
        (None, None) => net.project_id.clone(),
        (p, t) => owner_for_create(ctx, p, t)?,
    };
    let cut = match pool {
        Some(pool) => Some(PoolCut {
            pool,
            asked: asked_cidr,
            gateway: match (&b.gateway_ip, asked_cidr) {
                (Some(Some(g)), None) => Some(parse_ip(g, "gateway_ip")?),
                _ => None,
            },
            prefixlen: pool_ask.prefixlen,
            gateway_ip: b.gateway_ip.clone(),
            allocation_pools: b.allocation_pools.take(),
        }),
        None => None,
    };
    let (gateway_ip, allocation_pools) = if cut.is_some() {
        (None, Vec::new())
    } else {
        let gateway_ip = match b.gateway_ip {
            None => ipam::default_gateway(&cidr),
            Some(None) => None,
            Some(Some(g)) => Some(parse_gateway(&cidr, &g)?),
        };
        let allocation_pools = match &b.allocation_pools {
            Some(p) => {
                let pools = parse_pools(p)?;
                ipam::validate_pools(&cidr, &pools, gateway_ip)?;
                pools
            }
            None => ipam::default_pools(&cidr, gateway_ip),
        };
        (gateway_ip, allocation_pools)
    };
    let dns_nameservers = parse_dns(b.dns_nameservers.as_deref().unwrap_or(&[]))?;
    let host_routes = parse_routes(b.host_routes.as_deref().unwrap_or(&[]), ip_version)?;
    let t = now();
    let s = Subnet {
        id: SubnetId::new(),
        network_id: net_id,
        project_id: project,
        name: b.name.unwrap_or_default(),
        description: b.description.unwrap_or_default(),
        cidr,
        ip_version,
        gateway_ip,
        enable_dhcp: b.enable_dhcp.unwrap_or(true),
        allocation_pools,
        dns_nameservers,
        host_routes,
        subnetpool_id: cut.as_ref().map(|c| c.pool.id),
        revision_number: 0,
        created_at: t,
        updated_at: t,
    };
    Ok(Prepared { subnet: s, cut })
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_subnet")?;
    let q = ListQuery::parse(raw.as_deref())?;
    let scope = super::visible_scope(&ctx, "get_subnet")?;
    let mut c = state.db.conn().await?;
    let subnets = dbs::subnet_list(&mut c, scope.as_ref()).await?;
    let mut views: Vec<Value> = subnets.iter().map(view).collect();
    super::tags::attach_all(&mut c, Tagged::Subnet, &mut views).await?;
    Ok(axum::Json(respond(
        views,
        &q,
        "subnets",
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
    require_read(&ctx, "get_subnet")?;
    let id: SubnetId = parse_path_id(&id, NetworkError::SubnetNotFound)?;
    let s = visible(&state, &ctx, &id).await?;
    let mut v = view(&s);
    super::tags::attach_one(&mut *state.db.conn().await?, Tagged::Subnet, &mut v).await?;
    Ok(axum::Json(
        json!({"subnet": select_fields(v, raw.as_deref())?}),
    ))
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "update_subnet")?;
    let id: SubnetId = parse_path_id(&id, NetworkError::SubnetNotFound)?;
    let b: UpdateSubnet = resource_body(body, "subnet")?;
    let mut s = visible(&state, &ctx, &id).await?;
    if !ctx.owns(&s.project_id) {
        return Err(NetworkError::PolicyNotAuthorized(
            "update_subnet".to_owned(),
        ));
    }
    for (attr, present) in [
        ("cidr", b.cidr.is_some()),
        ("ip_version", b.ip_version.is_some()),
        ("network_id", b.network_id.is_some()),
    ] {
        if present {
            return Err(NetworkError::BadRequest(format!(
                "Cannot update read-only attribute {attr}"
            )));
        }
    }
    if let Some(v) = b.name {
        s.name = v;
    }
    if let Some(v) = b.description {
        s.description = v;
    }
    if let Some(v) = b.enable_dhcp {
        s.enable_dhcp = v;
    }
    if let Some(g) = b.gateway_ip {
        s.gateway_ip = match g {
            None => None,
            Some(g) => Some(parse_gateway(&s.cidr, &g)?),
        };
    }
    if let Some(p) = &b.allocation_pools {
        s.allocation_pools = parse_pools(p)?;
    }
    ipam::validate_pools(&s.cidr, &s.allocation_pools, s.gateway_ip)?;
    if let Some(d) = &b.dns_nameservers {
        s.dns_nameservers = parse_dns(d)?;
    }
    if let Some(r) = &b.host_routes {
        s.host_routes = parse_routes(r, s.ip_version)?;
    }
    s.updated_at = now();
    let mut tx = crate::db::begin_write(&state.db).await?;
    dbs::subnet_update(&mut tx, &s).await?;
    let s = dbs::subnet_get(&mut tx, &id)
        .await?
        .ok_or_else(|| NetworkError::SubnetNotFound(id.to_string()))?;
    let mut v = view(&s);
    super::tags::attach_one(&mut tx, Tagged::Subnet, &mut v).await?;
    tx.commit().await?;
    state.agents.network_changed(&s.network_id).await;
    Ok(axum::Json(json!({ "subnet": v })))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_subnet")?;
    let id: SubnetId = parse_path_id(&id, NetworkError::SubnetNotFound)?;
    let s = visible(&state, &ctx, &id).await?;
    if !ctx.owns(&s.project_id) {
        return Err(NetworkError::PolicyNotAuthorized(
            "delete_subnet".to_owned(),
        ));
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    let users = dbp::ports_on_subnet(&mut tx, &id).await?;
    if users
        .iter()
        .any(|(_, owner)| owner != crate::agents::DEVICE_OWNER_DHCP)
    {
        return Err(NetworkError::SubnetInUse(id.to_string()));
    }
    // DHCP ports just lose their address on this subnet.
    for (port, _) in &users {
        dbp::allocation_delete_on_subnet(&mut tx, port, &id).await?;
    }
    dbs::subnet_delete(&mut tx, &id).await?;
    tx.commit().await?;
    state.agents.network_changed(&s.network_id).await;
    Ok(StatusCode::NO_CONTENT)
}
