//! `/os-aggregates` (admin only): host aggregates, their hosts and
//! metadata, as Nova's `aggregates.py` and `AggregateAPI`. An aggregate's
//! `availability_zone` (metadata) is the zone of its hosts: zone listings,
//! the scheduler and servers' `OS-EXT-AZ:availability_zone` follow it
//! ([`crate::db::aggregates`]).
//!
//! Nova's answers: 200 everywhere (create and delete included), 409 for a
//! duplicate name, a host already in the aggregate or one that another
//! aggregate puts in a different zone; 404 for an unknown aggregate or
//! compute host; 400 for a zone change of hosts that run servers, an empty
//! zone name or the deletion of an aggregate that holds hosts.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;
use stratus_common::RequestContext;

use super::params;
use super::{require_admin, ApiVersion, AppState};
use crate::db;
use crate::db::aggregates::{Aggregate, AZ_KEY};
use crate::error::{ComputeError, NovaJson, Result};

fn ts(t: Option<&str>) -> Value {
    match t.and_then(stratus_common::time::from_db) {
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
        None => Value::Null,
    }
}

/// Nova's `_marshall_aggregate`: every field of the object, `uuid` from 2.41.
fn view(a: &Aggregate, v: ApiVersion) -> Value {
    let mut m = json!({
        "id": a.id, "name": a.name, "availability_zone": a.availability_zone(),
        "hosts": a.hosts, "metadata": a.metadata,
        "created_at": ts(Some(&a.created_at)), "updated_at": ts(a.updated_at.as_deref()),
        "deleted": false, "deleted_at": null,
    });
    if v.at_least(41) {
        m["uuid"] = json!(a.uuid);
    }
    m
}

fn admin(ctx: &RequestContext, action: &str) -> Result<()> {
    require_admin(ctx, &format!("os_compute_api:os-aggregates:{action}"))
}

/// `utils.validate_integer(id, 'id')`.
fn agg_id(id: &str) -> Result<i64> {
    id.trim()
        .parse()
        .map_err(|_| ComputeError::bad("Invalid input received: id must be an integer"))
}

fn invalid(field: &str, value: &Value, why: &str) -> ComputeError {
    ComputeError::BadRequest(format!(
        "Invalid input for field/attribute {field}. Value: {}. {why}",
        params::py_repr(value)
    ))
}

fn invalid_name(reason: &str) -> ComputeError {
    ComputeError::BadRequest(format!(
        "An invalid 'name' value was provided. The name must be: {reason}"
    ))
}

/// Nova's `name` format (printable, no leading or trailing whitespace)
/// or, with `az`, `az_name` (the same without `:`); `strict` false is the
/// `*_with_leading_trailing_spaces` form (some non-space character).
fn check_name(field: &str, v: &Value, az: bool, strict: bool) -> Result<String> {
    let s = match v {
        Value::String(s) if (1..=255).contains(&s.chars().count()) => s,
        Value::String(s) if s.is_empty() => {
            return Err(invalid(
                field,
                v,
                &format!("{} is too short", params::py_repr(v)),
            ))
        }
        Value::String(_) => {
            return Err(invalid(
                field,
                v,
                &format!("{} is too long", params::py_repr(v)),
            ))
        }
        _ => {
            return Err(invalid(
                field,
                v,
                &format!("{} is not of type 'string'", params::py_repr(v)),
            ))
        }
    };
    let printable = |c: char| !c.is_control() && (!az || c != ':');
    let edges_ok = !s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace);
    let ok = s.chars().all(printable)
        && if strict {
            edges_ok
        } else {
            s.chars().any(|c| !c.is_whitespace())
        };
    if ok {
        return Ok(s.trim().to_owned());
    }
    Err(invalid_name(match (az, strict) {
        (true, true) => "printable characters except :.Can not start or end with whitespace.",
        (true, false) => "printable characters except :, with at least one non space character",
        (false, true) => "printable characters. Can not start or end with whitespace.",
        (false, false) => "printable characters with at least one non space character",
    }))
}

fn object<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>> {
    params::wrapped(body, key)
}

fn no_other_keys(obj: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<()> {
    let mut extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort_unstable();
    let list = extra
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let verb = if extra.len() == 1 { "was" } else { "were" };
    Err(invalid(
        field,
        &Value::Object(obj.clone()),
        &format!("Additional properties are not allowed ({list} {verb} unexpected)"),
    ))
}

/// The zone in a body: a name, or `null` (none).
fn zone(a: &Map<String, Value>) -> Result<Option<String>> {
    match a.get("availability_zone") {
        None | Some(Value::Null) => Ok(None),
        Some(z) => check_name("availability_zone", z, true, true).map(Some),
    }
}

pub async fn list(State(s): State<AppState>, v: ApiVersion, ctx: Ctx) -> Result<Json<Value>> {
    admin(&ctx, "index")?;
    let all = db::aggregates::aggregate_list(&mut *s.db.conn().await?).await?;
    Ok(Json(
        json!({"aggregates": all.iter().map(|a| view(a, v)).collect::<Vec<_>>()}),
    ))
}

pub async fn create(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    admin(&ctx, "create")?;
    let a = object(&body, "aggregate")?;
    no_other_keys(a, "aggregate", &["name", "availability_zone"])?;
    let name = match a.get("name") {
        Some(n) => check_name("name", n, false, true)?,
        None => {
            return Err(invalid(
                "aggregate",
                &Value::Object(a.clone()),
                "'name' is a required property",
            ))
        }
    };
    let az = zone(a)?;
    let agg =
        db::aggregates::aggregate_create(&mut *s.db.conn().await?, &name, az.as_deref()).await?;
    let mut out = view(&agg, v);
    // Nova's create answers without hosts and metadata.
    if let Some(o) = out.as_object_mut() {
        o.remove("hosts");
        o.remove("metadata");
    }
    Ok(Json(json!({ "aggregate": out })))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    admin(&ctx, "show")?;
    let a = db::aggregates::aggregate_get(&mut *s.db.conn().await?, agg_id(&id)?).await?;
    Ok(Json(json!({"aggregate": view(&a, v)})))
}

/// Nova's `is_safe_to_update_az`: a zone must have a name, no host may sit
/// in another zone through another aggregate and, on update, the hosts of
/// an aggregate that changes zone must run no server. Its errors are 400
/// (409 from `add_host`), each in its action's words.
async fn check_zone_change(
    s: &AppState,
    agg: &Aggregate,
    metadata: &BTreeMap<String, Option<String>>,
    hosts: &[String],
    prefix: &str,
    check_instances: bool,
) -> Result<()> {
    let Some(az) = metadata.get(AZ_KEY) else {
        return Ok(());
    };
    let refuse = |reason: String| {
        let msg = format!("{prefix} {}. Reason: {reason}.", agg.id);
        if prefix.starts_with("Cannot add host") {
            ComputeError::Conflict(msg)
        } else {
            ComputeError::BadRequest(msg)
        }
    };
    let Some(az) = az.as_deref().filter(|z| !z.is_empty()) else {
        return Err(refuse(format!(
            "Aggregate {} does not support empty named availability zone",
            agg.name
        )));
    };
    let mut conn = s.db.conn().await?;
    let conflicts = db::aggregates::conflicting_zones(&mut conn, hosts, az, agg.id).await?;
    if !conflicts.is_empty() {
        let list = conflicts
            .iter()
            .map(|z| format!("'{z}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(refuse(format!(
            "One or more hosts already in availability zone(s) [{list}]"
        )));
    }
    if check_instances
        && agg.availability_zone() != Some(az)
        && db::aggregates::instances_on_hosts(&mut conn, hosts).await? > 0
    {
        return Err(refuse(
            "One or more hosts contain instances in this zone".to_owned(),
        ));
    }
    Ok(())
}

pub async fn update(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    admin(&ctx, "update")?;
    let a = object(&body, "aggregate")?;
    no_other_keys(a, "aggregate", &["name", "availability_zone"])?;
    if !a.contains_key("name") && !a.contains_key("availability_zone") {
        return Err(invalid(
            "aggregate",
            &Value::Object(a.clone()),
            &format!(
                "{} is not valid under any of the given schemas",
                params::py_repr(&Value::Object(a.clone()))
            ),
        ));
    }
    let name = a
        .get("name")
        .map(|n| check_name("name", n, false, false))
        .transpose()?;
    let mut metadata = BTreeMap::new();
    if a.contains_key("availability_zone") {
        metadata.insert(AZ_KEY.to_owned(), zone(a)?);
    }
    let id = agg_id(&id)?;
    let agg = db::aggregates::aggregate_get(&mut *s.db.conn().await?, id).await?;
    check_zone_change(
        &s,
        &agg,
        &metadata,
        &agg.hosts,
        "Cannot update aggregate",
        true,
    )
    .await?;
    let agg =
        db::aggregates::aggregate_update(&mut *s.db.conn().await?, id, name.as_deref(), &metadata)
            .await?;
    Ok(Json(json!({"aggregate": view(&agg, v)})))
}

pub async fn delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    admin(&ctx, "delete")?;
    db::aggregates::aggregate_delete(&mut *s.db.conn().await?, agg_id(&id)?).await?;
    // Nova answers 200 with an empty body.
    Ok(StatusCode::OK)
}

/// The `host` of an `add_host`/`remove_host` body (Nova's `fqdn` schema).
fn action_host(body: &Map<String, Value>, action: &str) -> Result<String> {
    let h = body.get(action).and_then(Value::as_object).ok_or_else(|| {
        ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {action}. '{action}' is a required property"
        ))
    })?;
    no_other_keys(h, action, &["host"])?;
    match h.get("host") {
        Some(Value::String(s))
            if (1..=255).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) =>
        {
            Ok(s.clone())
        }
        Some(v) => Err(invalid("host", v, "Does not match the host name pattern")),
        None => Err(invalid(
            action,
            &Value::Object(h.clone()),
            "'host' is a required property",
        )),
    }
}

/// `POST /os-aggregates/{id}/action`: `add_host`, `remove_host`,
/// `set_metadata`.
pub async fn action(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    let Some(name) = obj.keys().next().cloned() else {
        return Err(ComputeError::bad("Malformed request body"));
    };
    let agg = match name.as_str() {
        "add_host" => {
            admin(&ctx, "add_host")?;
            let host = action_host(obj, "add_host")?;
            let id = agg_id(&id)?;
            let mut conn = s.db.conn().await?;
            // Nova looks the compute service up first: 404 if none.
            let known = db::hosts::service_list(&mut conn)
                .await?
                .iter()
                .any(|svc| svc.binary == "nova-compute" && svc.host == host);
            if !known {
                return Err(ComputeError::NotFound(format!(
                    "Compute host {host} could not be found."
                )));
            }
            let agg = db::aggregates::aggregate_get(&mut conn, id).await?;
            drop(conn);
            let meta: BTreeMap<String, Option<String>> = agg
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            check_zone_change(
                &s,
                &agg,
                &meta,
                std::slice::from_ref(&host),
                "Cannot add host to aggregate",
                false,
            )
            .await?;
            db::aggregates::aggregate_add_host(&mut *s.db.conn().await?, id, &host).await?
        }
        "remove_host" => {
            admin(&ctx, "remove_host")?;
            let host = action_host(obj, "remove_host")?;
            let id = agg_id(&id)?;
            let mut conn = s.db.conn().await?;
            let known = db::hosts::service_list(&mut conn)
                .await?
                .iter()
                .any(|svc| svc.binary == "nova-compute" && svc.host == host);
            let removed = if known {
                db::aggregates::aggregate_remove_host(&mut conn, id, &host).await
            } else {
                Err(ComputeError::NotFound(String::new()))
            };
            match removed {
                Ok(a) => a,
                Err(ComputeError::NotFound(_)) => {
                    return Err(ComputeError::NotFound(format!(
                        "Cannot remove host {host} in aggregate {id}"
                    )))
                }
                Err(e) => return Err(e),
            }
        }
        "set_metadata" => {
            admin(&ctx, "set_metadata")?;
            let sm = object(&body, "set_metadata")?;
            no_other_keys(sm, "set_metadata", &["metadata"])?;
            let Some(m) = sm.get("metadata") else {
                return Err(invalid(
                    "set_metadata",
                    &Value::Object(sm.clone()),
                    "'metadata' is a required property",
                ));
            };
            let metadata = metadata_with_null(m)?;
            let id = agg_id(&id)?;
            let agg = db::aggregates::aggregate_get(&mut *s.db.conn().await?, id).await?;
            check_zone_change(
                &s,
                &agg,
                &metadata,
                &agg.hosts,
                "Cannot update metadata of aggregate",
                true,
            )
            .await?;
            db::aggregates::aggregate_update(&mut *s.db.conn().await?, id, None, &metadata).await?
        }
        other => {
            // Nova's action dispatch: an unknown action is a 400.
            return Err(ComputeError::BadRequest(format!(
                "There is no such action: {other}"
            )));
        }
    };
    Ok(Json(json!({"aggregate": view(&agg, v)})))
}

/// Nova's `metadata_with_null`: keys of `[a-zA-Z0-9-_:. ]{1,255}`, values
/// strings of at most 255 characters or `null` (removes the key).
fn metadata_with_null(m: &Value) -> Result<BTreeMap<String, Option<String>>> {
    let obj = m.as_object().ok_or_else(|| {
        invalid(
            "metadata",
            m,
            &format!("{} is not of type 'object'", params::py_repr(m)),
        )
    })?;
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let key_ok = (1..=255).contains(&k.chars().count())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c));
        if !key_ok {
            return Err(invalid(
                "metadata",
                m,
                &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let v = match val {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
            other => {
                return Err(invalid(
                    &format!("metadata/{k}"),
                    other,
                    &format!("{} is not of type 'string', 'null'", params::py_repr(other)),
                ))
            }
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}
