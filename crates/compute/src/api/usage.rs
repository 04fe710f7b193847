//! `/os-simple-tenant-usage`: what each project's servers used over a
//! window (`start`, `end`; default now), as Nova's `simple_tenant_usage.py`:
//! hours of each server inside the window, times its flavor's vCPUs, RAM
//! and disk, summed per project. The list of every project is admin-only
//! (`detailed=1` adds each server); a project's readers may read their own
//! (`/{tenant_id}`, always detailed). From 2.40 the servers are paged
//! (`limit`, `marker`, `*_links`).

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;

use super::params;
use super::{require_admin, ApiVersion, AppState};
use crate::db;
use crate::db::usage::UsageRow;
use crate::error::{ComputeError, Result};

/// Nova's `CONF.api.max_limit`.
const MAX_LIMIT: usize = 1000;

fn ts(t: DateTime<Utc>) -> Value {
    json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
}

/// `_parse_datetime`: one of Nova's three formats, naive times being UTC;
/// absent or empty means now.
fn parse_time(v: Option<&str>) -> Result<DateTime<Utc>> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok(stratus_common::time::now());
    };
    [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
    .map(|t| t.and_utc())
    .ok_or_else(|| ComputeError::bad("Invalid datetime string: Datetime is in invalid format"))
}

struct Window {
    start: DateTime<Utc>,
    stop: DateTime<Utc>,
    detailed: bool,
    limit: usize,
    marker: Option<String>,
}

/// `_get_datetime_range` plus paging: the first value of each key (as
/// `parse_qs(...)[0]`), the end clamped to now.
fn window(raw: Option<&str>, v: ApiVersion, known: &[&str]) -> Result<Window> {
    let q = params::query(raw);
    if v.at_least(75) {
        params::no_additional(&q, known, false)?;
    }
    let first = |k: &str| params::first(&q, k);
    let start = parse_time(first("start"))?;
    let stop = parse_time(first("end"))?;
    if start >= stop {
        return Err(ComputeError::bad(
            "Invalid start time. The start time cannot occur after the end time.",
        ));
    }
    let (limit, marker) = if v.at_least(40) {
        let (l, m) = params::paging(&q)?;
        (l.unwrap_or(MAX_LIMIT).min(MAX_LIMIT), m)
    } else {
        (MAX_LIMIT, None)
    };
    Ok(Window {
        start,
        stop: stop.min(stratus_common::time::now()),
        detailed: first("detailed") == Some("1"),
        limit,
        marker,
    })
}

/// `_hours_for`: the hours of `[launched, terminated)` inside the window.
fn hours(r: &UsageRow, w: &Window) -> f64 {
    let at = |t: &Option<String>| t.as_deref().and_then(stratus_common::time::from_db);
    let (Some(launched), terminated) = (at(&r.launched_at), at(&r.terminated_at)) else {
        return 0.0;
    };
    if terminated.is_some_and(|t| t < w.start) || launched > w.stop {
        return 0.0;
    }
    let begin = launched.max(w.start);
    let end = terminated.map_or(w.stop, |t| t.min(w.stop));
    (end - begin).num_microseconds().unwrap_or(0) as f64 / 3_600_000_000.0
}

/// `_tenant_usages_for_period`: one summary per project, in the order the
/// servers came, and every server's usage (for the paging links).
fn summarise(rows: &[UsageRow], w: &Window, detailed: bool) -> (Vec<Value>, Vec<Value>) {
    let now = stratus_common::time::now();
    let mut order: Vec<String> = Vec::new();
    let mut sums: Map<String, Value> = Map::new();
    let mut all = Vec::new();
    for r in rows {
        let h = hours(r, w);
        let started = r
            .launched_at
            .as_deref()
            .and_then(stratus_common::time::from_db)
            .unwrap_or(now);
        let ended = r
            .terminated_at
            .as_deref()
            .and_then(stratus_common::time::from_db);
        let state = if ended.is_some() {
            "terminated"
        } else {
            r.vm_state.as_str()
        };
        let uptime = (ended.unwrap_or(now) - started).num_seconds();
        let local_gb = r.flavor.disk + r.flavor.ephemeral;
        let info = json!({
            "hours": h, "flavor": r.flavor.name, "instance_id": r.id, "name": r.name,
            "tenant_id": r.project_id, "memory_mb": r.flavor.ram, "local_gb": local_gb,
            "vcpus": r.flavor.vcpus, "started_at": ts(started),
            "ended_at": ended.map_or(Value::Null, ts), "state": state, "uptime": uptime,
        });
        if !sums.contains_key(&r.project_id) {
            order.push(r.project_id.clone());
            let mut s = json!({
                "tenant_id": r.project_id, "total_local_gb_usage": 0.0,
                "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0, "total_hours": 0.0,
                "start": ts(w.start), "stop": ts(w.stop),
            });
            if detailed {
                s["server_usages"] = json!([]);
            }
            sums.insert(r.project_id.clone(), s);
        }
        if let Some(s) = sums.get_mut(&r.project_id) {
            let add = |s: &mut Value, k: &str, x: f64| {
                s[k] = json!(s[k].as_f64().unwrap_or(0.0) + x);
            };
            add(s, "total_local_gb_usage", local_gb as f64 * h);
            add(s, "total_vcpus_usage", r.flavor.vcpus as f64 * h);
            add(s, "total_memory_mb_usage", r.flavor.ram as f64 * h);
            add(s, "total_hours", h);
            if detailed {
                if let Some(list) = s["server_usages"].as_array_mut() {
                    list.push(info.clone());
                }
            }
        }
        all.push(info);
    }
    let summaries = order
        .iter()
        .filter_map(|p| sums.remove(p))
        .collect::<Vec<_>>();
    (summaries, all)
}

/// `application/x-www-form-urlencoded`, as Python's `urlencode`.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Nova's `_get_collection_links`: a `next` link when the page is full,
/// with the request's parameters (sorted) and the last server as marker.
fn links(s: &AppState, raw: Option<&str>, path: &str, w: &Window, all: &[Value]) -> Option<Value> {
    let last = all.last()?;
    if all.len() != w.limit {
        return None;
    }
    let mut q: std::collections::BTreeMap<String, String> = params::query(raw)
        .into_iter()
        .filter(|(k, _)| k != "marker")
        .collect();
    q.insert(
        "marker".into(),
        last["instance_id"].as_str().unwrap_or("").to_owned(),
    );
    let qs: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    Some(json!([{"rel": "next", "href": s.link(&format!("{path}?{}", qs.join("&")))}]))
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-simple-tenant-usage:list")?;
    let w = window(
        raw.as_deref(),
        v,
        &["start", "end", "detailed", "limit", "marker"],
    )?;
    let db = stratus_common::time::to_db;
    let rows = db::usage::usage_instances(
        &mut *s.db.conn().await?,
        &db(w.start),
        &db(w.stop),
        None,
        Some(w.limit),
        w.marker.as_deref(),
    )
    .await?;
    let (usages, all) = summarise(&rows, &w, w.detailed);
    let mut body = json!({ "tenant_usages": usages });
    if v.at_least(40) {
        if let Some(l) = links(&s, raw.as_deref(), "/os-simple-tenant-usage", &w, &all) {
            body["tenant_usages_links"] = l;
        }
    }
    Ok(Json(body))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(tenant): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    // PROJECT_READER_OR_ADMIN on the named project.
    let own = ctx
        .project_id
        .as_ref()
        .is_some_and(|p| p.as_str() == tenant && ctx.can_read());
    if !own && !ctx.is_admin() {
        return Err(ComputeError::Forbidden(
            "Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed."
                .into(),
        ));
    }
    let w = window(raw.as_deref(), v, &["start", "end", "limit", "marker"])?;
    let db = stratus_common::time::to_db;
    let rows = db::usage::usage_instances(
        &mut *s.db.conn().await?,
        &db(w.start),
        &db(w.stop),
        Some(&tenant),
        Some(w.limit),
        w.marker.as_deref(),
    )
    .await?;
    let (usages, all) = summarise(&rows, &w, true);
    let usage = usages.into_iter().next().unwrap_or_else(|| json!({}));
    let mut body = json!({ "tenant_usage": usage });
    if v.at_least(40) {
        let path = format!("/os-simple-tenant-usage/{tenant}");
        if let Some(l) = links(&s, raw.as_deref(), &path, &w, &all) {
            body["tenant_usage_links"] = l;
        }
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_novas_formats() {
        assert!(parse_time(Some("2026-01-02T03:04:05")).is_ok());
        assert!(parse_time(Some("2026-01-02T03:04:05.123456")).is_ok());
        assert!(parse_time(Some("2026-01-02 03:04:05.5")).is_ok());
        assert!(parse_time(Some("2026-01-02")).is_err());
        assert!(parse_time(None).is_ok());
    }

    #[test]
    fn form_encoding_is_pythons() {
        assert_eq!(
            form_encode("2026-01-02 03:04:05.5"),
            "2026-01-02+03%3A04%3A05.5"
        );
    }
}
