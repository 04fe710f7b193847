//! Operator views: `/os-hypervisors` (+detail, statistics), `/os-services`
//! (list, enable/disable, force down, delete) and `/os-availability-zone`.
//! A service silent for longer than `service_down_time` shows `down`.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::params::{self, first};
use super::{require_admin, ApiVersion, AppState};
use crate::db;
use crate::db::hosts::{ComputeNode, Service};
use crate::error::{ComputeError, NovaJson, Result};
use crate::scheduler::service_is_up;

fn up(s: &AppState, svc: Option<&Service>) -> bool {
    svc.is_some_and(|x| service_is_up(x, s.cfg.service_down_time_secs))
}

fn ts(t: &str) -> Value {
    match stratus_common::time::from_db(t) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

/// Integer ids before 2.53, UUIDs after, as Nova.
fn hv_id(v: ApiVersion, index: usize, n: &ComputeNode) -> Value {
    if v.at_least(53) {
        json!(n.id)
    } else {
        json!(index + 1)
    }
}

fn svc_id(v: ApiVersion, index: usize, s: &Service) -> Value {
    if v.at_least(53) {
        json!(s.id)
    } else {
        json!(index + 1)
    }
}

fn hypervisor(
    s: &AppState,
    v: ApiVersion,
    index: usize,
    n: &ComputeNode,
    svcs: &[Service],
    detail: bool,
) -> Value {
    let (svc_index, svc) = match svcs
        .iter()
        .enumerate()
        .find(|(_, x)| x.binary == "nova-compute" && x.host == n.host)
    {
        Some((i, x)) => (i, Some(x)),
        None => (0, None),
    };
    let mut m = json!({
        "id": hv_id(v, index, n), "hypervisor_hostname": n.node,
        "state": if up(s, svc) { "up" } else { "down" },
        "status": if svc.is_some_and(|x| x.disabled) { "disabled" } else { "enabled" },
    });
    if !detail {
        return m;
    }
    m["hypervisor_type"] = json!(n.hypervisor_type);
    m["hypervisor_version"] = json!(1000);
    m["host_ip"] = json!(n.host_ip);
    m["service"] = json!({
        "host": n.host,
        "id": svc.map(|x| svc_id(v, svc_index, x)).unwrap_or(Value::Null),
        "disabled_reason": svc.and_then(|x| x.disabled_reason.clone()),
    });
    if v.at_least(88) {
        m["uptime"] = Value::Null;
    } else {
        let free_ram = n.memory_mb - n.memory_mb_used;
        let free_disk = n.local_gb - n.local_gb_used;
        m["cpu_info"] = json!({"arch": "x86_64", "model": "fake", "vendor": "stratus", "features": [],
            "topology": {"cores": n.vcpus, "threads": 1, "sockets": 1}});
        m["current_workload"] = json!(0);
        m["disk_available_least"] = json!(free_disk);
        m["free_disk_gb"] = json!(free_disk);
        m["free_ram_mb"] = json!(free_ram);
        m["local_gb"] = json!(n.local_gb);
        m["local_gb_used"] = json!(n.local_gb_used);
        m["memory_mb"] = json!(n.memory_mb);
        m["memory_mb_used"] = json!(n.memory_mb_used);
        m["running_vms"] = json!(n.running_vms);
        m["vcpus"] = json!(n.vcpus);
        m["vcpus_used"] = json!(n.vcpus_used);
    }
    m
}

async fn hv_list(s: &AppState, v: ApiVersion, raw: Option<&str>, detail: bool) -> Result<Value> {
    let q = params::query(raw);
    let nodes = db::hosts::node_list(&mut *s.db.conn().await?).await?;
    let svcs = db::hosts::service_list(&mut *s.db.conn().await?).await?;
    let pattern = first(&q, "hypervisor_hostname_pattern");
    let list: Vec<Value> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| pattern.is_none_or(|p| n.node.contains(p)))
        .map(|(i, n)| hypervisor(s, v, i, n, &svcs, detail))
        .collect();
    Ok(json!({"hypervisors": list}))
}

pub async fn hypervisors(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-hypervisors:list")?;
    Ok(Json(hv_list(&s, v, raw.as_deref(), false).await?))
}

pub async fn hypervisors_detail(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-hypervisors:list-detail")?;
    Ok(Json(hv_list(&s, v, raw.as_deref(), true).await?))
}

pub async fn hypervisor_show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-hypervisors:show")?;
    let nodes = db::hosts::node_list(&mut *s.db.conn().await?).await?;
    let svcs = db::hosts::service_list(&mut *s.db.conn().await?).await?;
    let found = nodes.iter().enumerate().find(|(i, n)| {
        if v.at_least(53) {
            n.id == id
        } else {
            (i + 1).to_string() == id
        }
    });
    let (i, n) = found.ok_or_else(|| {
        ComputeError::NotFound(format!("Hypervisor with ID {id} could not be found."))
    })?;
    Ok(Json(
        json!({"hypervisor": hypervisor(&s, v, i, n, &svcs, true)}),
    ))
}

pub async fn hypervisor_statistics(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-hypervisors:statistics")?;
    if v.at_least(88) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    let nodes = db::hosts::node_list(&mut *s.db.conn().await?).await?;
    let sum = |f: fn(&ComputeNode) -> i64| nodes.iter().map(f).sum::<i64>();
    Ok(Json(json!({"hypervisor_statistics": {
        "count": nodes.len(), "current_workload": 0,
        "disk_available_least": sum(|n| n.local_gb - n.local_gb_used),
        "free_disk_gb": sum(|n| n.local_gb - n.local_gb_used),
        "free_ram_mb": sum(|n| n.memory_mb - n.memory_mb_used),
        "local_gb": sum(|n| n.local_gb), "local_gb_used": sum(|n| n.local_gb_used),
        "memory_mb": sum(|n| n.memory_mb), "memory_mb_used": sum(|n| n.memory_mb_used),
        "running_vms": sum(|n| n.running_vms), "vcpus": sum(|n| n.vcpus), "vcpus_used": sum(|n| n.vcpus_used),
    }})))
}

fn zone_of(s: &AppState, svc: &Service, nodes: &[ComputeNode]) -> String {
    if svc.binary == "nova-compute" {
        nodes
            .iter()
            .find(|n| n.host == svc.host)
            .map(|n| n.availability_zone.clone())
            .unwrap_or_else(|| s.cfg.default_availability_zone.clone())
    } else {
        "internal".to_owned()
    }
}

fn service_view(
    s: &AppState,
    v: ApiVersion,
    i: usize,
    svc: &Service,
    nodes: &[ComputeNode],
) -> Value {
    let mut m = json!({
        "id": svc_id(v, i, svc), "binary": svc.binary, "host": svc.host,
        "disabled_reason": svc.disabled_reason,
        "state": if service_is_up(svc, s.cfg.service_down_time_secs) { "up" } else { "down" },
        "status": if svc.disabled { "disabled" } else { "enabled" },
        "updated_at": ts(&svc.updated_at), "zone": zone_of(s, svc, nodes),
    });
    if v.at_least(11) {
        m["forced_down"] = json!(svc.forced_down);
    }
    m
}

pub async fn services(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-services:list")?;
    let q = params::query(raw.as_deref());
    let nodes = db::hosts::node_list(&mut *s.db.conn().await?).await?;
    let list: Vec<Value> = db::hosts::service_list(&mut *s.db.conn().await?)
        .await?
        .iter()
        .enumerate()
        .filter(|(_, x)| first(&q, "host").is_none_or(|h| h == x.host))
        .filter(|(_, x)| first(&q, "binary").is_none_or(|b| b == x.binary))
        .map(|(i, x)| service_view(&s, v, i, x, &nodes))
        .collect();
    Ok(Json(json!({"services": list})))
}

/// 2.53+: `PUT /os-services/{uuid}` with status / disabled_reason /
/// forced_down. Older: `PUT /os-services/{enable,disable,disable-log-reason,force-down}`
/// with `host` and `binary` in the body.
pub async fn service_update(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-services:update")?;
    let svcs = db::hosts::service_list(&mut *s.db.conn().await?).await?;
    let nodes = db::hosts::node_list(&mut *s.db.conn().await?).await?;
    let str_field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let reason = str_field("disabled_reason");
    let (target, disabled, forced) = if v.at_least(53) {
        let status = match str_field("status").as_deref() {
            None => None,
            Some("enabled") => Some(false),
            Some("disabled") => Some(true),
            Some(_) => {
                return Err(ComputeError::bad(
                    "Invalid input for field/attribute status.",
                ))
            }
        };
        if reason.is_some() && status != Some(true) {
            return Err(ComputeError::bad(
                "Specifying 'disabled_reason' with status 'enabled' is invalid.",
            ));
        }
        let forced = params::boolean(body.get("forced_down"), "forced_down")?;
        (id.clone(), status, forced)
    } else {
        let host = str_field("host").ok_or_else(|| ComputeError::bad("Missing host"))?;
        let binary = str_field("binary").unwrap_or_else(|| "nova-compute".into());
        let svc = svcs
            .iter()
            .find(|x| x.host == host && x.binary == binary)
            .ok_or_else(|| {
                ComputeError::NotFound(format!(
                    "Service {binary} on host {host} could not be found."
                ))
            })?;
        match id.as_str() {
            "enable" => (svc.id.clone(), Some(false), None),
            "disable" | "disable-log-reason" => (svc.id.clone(), Some(true), None),
            "force-down" => (
                svc.id.clone(),
                None,
                params::boolean(body.get("forced_down"), "forced_down")?,
            ),
            _ => {
                return Err(ComputeError::NotFound(
                    "The resource could not be found.".into(),
                ))
            }
        }
    };
    let reason_update = match disabled {
        Some(true) => Some(reason),
        Some(false) => Some(None),
        None => None,
    };
    let svc = db::hosts::service_update(
        &mut *s.db.conn().await?,
        &target,
        disabled,
        reason_update,
        forced,
    )
    .await?;
    let i = svcs.iter().position(|x| x.id == svc.id).unwrap_or(0);
    Ok(Json(
        json!({"service": service_view(&s, v, i, &svc, &nodes)}),
    ))
}

pub async fn service_delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_admin(&ctx, "os_compute_api:os-services:delete")?;
    db::hosts::service_delete(&mut *s.db.conn().await?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn availability_zones(State(s): State<AppState>, _ctx: Ctx) -> Result<Json<Value>> {
    let mut zones: Vec<String> = db::hosts::node_list(&mut *s.db.conn().await?)
        .await?
        .into_iter()
        .map(|n| n.availability_zone)
        .collect();
    zones.push(s.cfg.default_availability_zone.clone());
    zones.sort();
    zones.dedup();
    let list: Vec<Value> = zones
        .iter()
        .map(|z| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": null}))
        .collect();
    Ok(Json(json!({"availabilityZoneInfo": list})))
}

pub async fn availability_zones_detail(State(s): State<AppState>, ctx: Ctx) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-availability-zone:detail")?;
    let nodes = db::hosts::node_list(&mut *s.db.conn().await?).await?;
    let mut zones: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>> = BTreeMap::new();
    let services = db::hosts::service_list(&mut *s.db.conn().await?).await?;
    for svc in services {
        let zone = zone_of(&s, &svc, &nodes);
        zones
            .entry(zone)
            .or_default()
            .entry(svc.host.clone())
            .or_default()
            .insert(
                svc.binary.clone(),
                json!({"available": service_is_up(&svc, s.cfg.service_down_time_secs),
                   "active": !svc.disabled, "updated_at": ts(&svc.updated_at)}),
            );
    }
    let list: Vec<Value> = zones
        .into_iter()
        .map(|(z, hosts)| json!({"zoneName": z, "zoneState": {"available": true}, "hosts": hosts}))
        .collect();
    Ok(Json(json!({"availabilityZoneInfo": list})))
}
