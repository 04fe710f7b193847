//! `/v2.0/network-ip-availabilities` (Neutron's `network-ip-availability`),
//! admin-only: per network and per subnet, how many addresses the
//! allocation pools hold (`total_ips`; a subnet without pools counts its
//! whole CIDR) and how many are allocated (`used_ips`, every port's).
//! Others list nothing and find nothing, as Neutron's policy hides them.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::HeaderMap;
use ipnet::IpNet;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::NetworkId;

use super::networks::select_fields;
use super::query::{respond, ListQuery};
use super::State;
use crate::db::subnets::Subnet;
use crate::db::{ip_availability as dbi, networks as dbn, subnets as dbs, Conn};
use crate::error::{NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/network-ip-availabilities", get(list))
        .route("/v2.0/network-ip-availabilities/{id}", get(show))
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Addresses of the allocation pools, or of the CIDR without pools.
pub fn total_ips(s: &Subnet) -> u128 {
    if s.allocation_pools.is_empty() {
        let host_bits = match s.cidr {
            IpNet::V4(n) => 32 - u32::from(n.prefix_len()),
            IpNet::V6(n) => 128 - u32::from(n.prefix_len()),
        };
        return 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    }
    s.allocation_pools
        .iter()
        .map(|p| to_u128(p.end).saturating_sub(to_u128(p.start)) + 1)
        .fold(0u128, u128::saturating_add)
}

/// A count as a JSON number; beyond 64 bits (huge IPv6 pools) a float,
/// which JSON readers take as the big number it is.
fn count(n: u128) -> Value {
    u64::try_from(n).map_or_else(|_| json!(n as f64), |n| json!(n))
}

/// The availability of every network, in Neutron's shape; `ip_version`
/// keeps only subnets of that version (and networks with one).
async fn availabilities(c: &mut Conn, ip_version: Option<&[String]>) -> Result<Vec<Value>> {
    let nets = dbn::network_list(c, None).await?;
    let mut by_net: HashMap<NetworkId, Vec<Subnet>> = HashMap::new();
    for s in dbs::subnet_list(c, None).await? {
        if ip_version.is_some_and(|v| !v.contains(&s.ip_version.to_string())) {
            continue;
        }
        by_net.entry(s.network_id).or_default().push(s);
    }
    let used = dbi::allocation_counts(c).await?;
    let mut out = Vec::new();
    for n in &nets {
        let subnets = by_net.remove(&n.id).unwrap_or_default();
        if ip_version.is_some() && subnets.is_empty() {
            continue;
        }
        let (mut net_total, mut net_used) = (0u128, 0u128);
        let per_subnet: Vec<Value> = subnets
            .iter()
            .map(|s| {
                let total = total_ips(s);
                let u = u128::try_from(used.get(&s.id).copied().unwrap_or(0)).unwrap_or(0);
                net_total = net_total.saturating_add(total);
                net_used += u;
                json!({
                    "subnet_id": s.id,
                    "subnet_name": s.name,
                    "cidr": s.cidr.to_string(),
                    "ip_version": s.ip_version,
                    "total_ips": count(total),
                    "used_ips": count(u),
                })
            })
            .collect();
        out.push(json!({
            "network_id": n.id,
            "network_name": n.name,
            "project_id": n.project_id,
            "tenant_id": n.project_id,
            "total_ips": count(net_total),
            "used_ips": count(net_used),
            "subnet_ip_availability": per_subnet,
        }));
    }
    Ok(out)
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    let q = ListQuery::parse(raw.as_deref())?;
    let views = if ctx.is_admin() {
        let versions = q
            .filters
            .iter()
            .find(|(k, _)| k == "ip_version")
            .map(|(_, v)| v.as_slice());
        availabilities(&mut *state.db.conn().await?, versions).await?
    } else {
        Vec::new()
    };
    Ok(axum::Json(respond(
        views,
        &q,
        "network_ip_availabilities",
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
    if !ctx.is_admin() {
        // Neutron hides what its policy refuses to show.
        return Err(NetworkError::RouteNotFound);
    }
    let v = availabilities(&mut *state.db.conn().await?, None)
        .await?
        .into_iter()
        .find(|v| v["network_id"] == id.as_str())
        .ok_or_else(|| NetworkError::NetworkNotFound(id.clone()))?;
    Ok(axum::Json(
        json!({"network_ip_availability": select_fields(v, raw.as_deref())?}),
    ))
}
