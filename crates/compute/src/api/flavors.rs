//! `/flavors`: list, detail, show, create, delete, description update,
//! extra specs and project access. Writes are admin-only.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::params;
use super::{require_admin, views, ApiVersion, AppState};
use crate::db;
use crate::db::flavors::{Flavor, PublicFilter};
use crate::error::{ComputeError, NovaJson, Result};

/// Reads a create body into a flavor (Nova's schema, loosely typed ints).
pub fn parse_create(body: &Value) -> Result<Flavor> {
    let f = params::wrapped(body, "flavor")?;
    let name = params::string(f.get("name"), "name", 255)?;
    if name.trim() != name {
        return Err(ComputeError::bad(
            "Invalid input for field/attribute name. Leading or trailing whitespace.",
        ));
    }
    let id = match f.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 255
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_. ".contains(c)) =>
        {
            s.trim().to_owned()
        }
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute id. Value: {other}."
            )))
        }
    };
    let max = i64::from(i32::MAX);
    let need = |k: &str, min: i64| -> Result<i64> {
        params::int(f.get(k), k, min, max)?.ok_or_else(|| {
            ComputeError::BadRequest(format!(
                "Invalid input for field/attribute {k}. '{k}' is a required property"
            ))
        })
    };
    let rxtx = match f.get("rxtx_factor") {
        None | Some(Value::Null) => 1.0,
        Some(v) => match v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(x) if x > 0.0 => x,
            _ => {
                return Err(ComputeError::bad(
                    "Invalid input for field/attribute rxtx_factor.",
                ))
            }
        },
    };
    let description = match f.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 65535 => Some(s.clone()),
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute description.",
            ))
        }
    };
    Ok(Flavor {
        id,
        name,
        ram: need("ram", 1)?,
        vcpus: need("vcpus", 1)?,
        disk: need("disk", 0)?,
        ephemeral: params::int(
            f.get("OS-FLV-EXT-DATA:ephemeral"),
            "OS-FLV-EXT-DATA:ephemeral",
            0,
            max,
        )?
        .unwrap_or(0),
        swap: params::int(f.get("swap"), "swap", 0, max)?.unwrap_or(0),
        rxtx_factor: rxtx,
        is_public: params::boolean(
            f.get("os-flavor-access:is_public"),
            "os-flavor-access:is_public",
        )?
        .unwrap_or(true),
        disabled: false,
        description,
        extra_specs: BTreeMap::new(),
    })
}

async fn visible(s: &AppState, ctx: &stratus_common::RequestContext, id: &str) -> Result<Flavor> {
    let f = db::flavors::flavor_get(&mut *s.db.conn().await?, id).await?;
    if !f.is_public && !ctx.is_admin() {
        let project = ctx
            .project_id
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        if !db::flavors::flavor_access_list(&mut *s.db.conn().await?, id)
            .await?
            .contains(&project)
        {
            return Err(ComputeError::NotFound(format!(
                "Flavor {id} could not be found."
            )));
        }
    }
    Ok(f)
}

/// Nova's `VALID_SORT_KEYS` of the flavor list schema (`schemas/flavors.py`).
pub const SORT_KEYS: &[&str] = &[
    "created_at",
    "description",
    "disabled",
    "ephemeral_gb",
    "flavorid",
    "id",
    "is_public",
    "memory_mb",
    "name",
    "root_gb",
    "rxtx_factor",
    "swap",
    "updated_at",
    "vcpu_weight",
    "vcpus",
];

/// The keys of Nova's `index_query` (unknown ones are 400 from 2.75).
const QUERY_KEYS: &[&str] = &[
    "limit",
    "marker",
    "is_public",
    "minRam",
    "minDisk",
    "sort_key",
    "sort_dir",
];

/// Nova's flavor list schema: `sort_key` and `sort_dir` are enums at every
/// version; `minRam`/`minDisk` are any string the handler then reads as
/// Python's `int()` (so `-1` is fine and matches every flavor).
fn check_query(q: &[(String, String)], v: ApiVersion) -> Result<()> {
    params::enum_param(q, "sort_key", SORT_KEYS)?;
    params::enum_param(q, "sort_dir", &["asc", "desc"])?;
    if v.at_least(75) {
        params::no_additional(q, QUERY_KEYS, false)?;
    }
    Ok(())
}

/// Orders flavors as Nova's `paginate_query(..., [sort_key, 'id'],
/// sort_dir)` does; keys we do not keep (times, the internal id, weight)
/// fall back to the flavor id.
fn sort(all: &mut [Flavor], key: &str, desc: bool) {
    use std::cmp::Ordering;
    let by = |a: &Flavor, b: &Flavor| -> Ordering {
        match key {
            "name" => a.name.cmp(&b.name),
            "memory_mb" => a.ram.cmp(&b.ram),
            "vcpus" => a.vcpus.cmp(&b.vcpus),
            "root_gb" => a.disk.cmp(&b.disk),
            "ephemeral_gb" => a.ephemeral.cmp(&b.ephemeral),
            "swap" => a.swap.cmp(&b.swap),
            "rxtx_factor" => a.rxtx_factor.total_cmp(&b.rxtx_factor),
            "is_public" => a.is_public.cmp(&b.is_public),
            "disabled" => a.disabled.cmp(&b.disabled),
            "description" => a.description.cmp(&b.description),
            _ => Ordering::Equal,
        }
    };
    all.sort_by(|a, b| by(a, b).then_with(|| a.id.cmp(&b.id)));
    if desc {
        all.reverse();
    }
}

/// Python's `int()` of a query value: surrounding blanks and a sign allowed.
fn py_int(v: &str) -> Option<i64> {
    v.trim().parse::<i64>().ok()
}

async fn listing(
    s: &AppState,
    ctx: &stratus_common::RequestContext,
    raw: Option<&str>,
    v: ApiVersion,
) -> Result<Vec<Flavor>> {
    let q = params::query(raw);
    check_query(&q, v)?;
    let admin = ctx.is_admin();
    // Nova's `_parse_is_public`, for admins only (a user always gets the
    // public flavors plus those shared with the project): absent means
    // public, `none` (any case) everything, else oslo's strict
    // `bool_from_string`.
    let filter = match params::last(&q, "is_public") {
        Some(v) if admin => {
            if v.eq_ignore_ascii_case("none") {
                PublicFilter::All
            } else {
                match params::bool_from_string_strict(v) {
                    Ok(true) => PublicFilter::Public,
                    Ok(false) => PublicFilter::Private,
                    Err(_) => {
                        return Err(ComputeError::BadRequest(format!(
                            "Invalid is_public filter [{v}]"
                        )))
                    }
                }
            }
        }
        _ => PublicFilter::Public,
    };
    let project = ctx.project_id.as_ref().map(|p| p.as_str().to_owned());
    let mut all =
        db::flavors::flavor_list(&mut *s.db.conn().await?, filter, project.as_deref(), admin)
            .await?;
    let min = |k: &str| -> Result<Option<i64>> {
        match params::last(&q, k) {
            None => Ok(None),
            Some(v) => py_int(v)
                .map(Some)
                .ok_or_else(|| ComputeError::BadRequest(format!("Invalid {k} filter [{v}]"))),
        }
    };
    if let Some(r) = min("minRam")? {
        all.retain(|f| f.ram >= r);
    }
    if let Some(d) = min("minDisk")? {
        all.retain(|f| f.disk >= d);
    }
    sort(
        &mut all,
        params::last(&q, "sort_key")
            .filter(|k| !k.is_empty())
            .unwrap_or("flavorid"),
        params::last(&q, "sort_dir") == Some("desc"),
    );
    let (limit, marker) = params::paging(&q)?;
    if let Some(m) = marker {
        let pos = all
            .iter()
            .position(|f| f.id == m)
            .ok_or_else(|| ComputeError::BadRequest(format!("marker [{m}] not found")))?;
        all.drain(..=pos);
    }
    if let Some(l) = limit {
        all.truncate(l);
    }
    Ok(all)
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let fl = listing(&s, &ctx, raw.as_deref(), v).await?;
    Ok(Json(
        json!({"flavors": fl.iter().map(|f| views::flavor_brief(&s, v, f)).collect::<Vec<_>>()}),
    ))
}

pub async fn list_detail(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let fl = listing(&s, &ctx, raw.as_deref(), v).await?;
    Ok(Json(
        json!({"flavors": fl.iter().map(|f| views::flavor(&s, v, f)).collect::<Vec<_>>()}),
    ))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let f = visible(&s, &ctx, &id).await?;
    Ok(Json(json!({"flavor": views::flavor(&s, v, &f)})))
}

pub async fn create(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-flavor-manage:create")?;
    let f = parse_create(&body)?;
    // A private flavor starts with no access entries: Nova does not add the
    // creator's project either (bug 1209101, kept for compatibility).
    db::flavors::flavor_create(&mut *s.db.conn().await?, &f).await?;
    let f = db::flavors::flavor_get(&mut *s.db.conn().await?, &f.id).await?;
    Ok(Json(json!({"flavor": views::flavor(&s, v, &f)})))
}

pub async fn update(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    if !v.at_least(55) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    require_admin(&ctx, "os_compute_api:os-flavor-manage:update")?;
    let f = params::wrapped(&body, "flavor")?;
    let desc = match f.get("description") {
        Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        _ => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute description.",
            ))
        }
    };
    db::flavors::flavor_set_description(&mut *s.db.conn().await?, &id, desc.as_deref()).await?;
    let f = db::flavors::flavor_get(&mut *s.db.conn().await?, &id).await?;
    Ok(Json(json!({"flavor": views::flavor(&s, v, &f)})))
}

pub async fn delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_admin(&ctx, "os_compute_api:os-flavor-manage:delete")?;
    db::flavors::flavor_delete(&mut *s.db.conn().await?, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn extra_specs_list(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let f = visible(&s, &ctx, &id).await?;
    Ok(Json(json!({"extra_specs": f.extra_specs})))
}

fn spec_map(body: &Value, key: &str) -> Result<BTreeMap<String, String>> {
    let m = body.get(key).and_then(Value::as_object).ok_or_else(|| {
        ComputeError::BadRequest(format!("Invalid input for field/attribute {key}."))
    })?;
    m.iter()
        .map(|(k, v)| {
            if k.is_empty() || k.len() > 255 {
                return Err(ComputeError::bad(
                    "Invalid input for field/attribute extra_specs key.",
                ));
            }
            let v = match v {
                Value::String(s) if s.len() <= 255 => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ComputeError::bad(
                        "Invalid input for field/attribute extra_specs value.",
                    ))
                }
            };
            Ok((k.clone(), v))
        })
        .collect()
}

pub async fn extra_specs_create(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-flavor-extra-specs:create")?;
    db::flavors::flavor_get(&mut *s.db.conn().await?, &id).await?;
    let specs = spec_map(&body, "extra_specs")?;
    db::flavors::flavor_extra_specs_set(&mut *s.db.conn().await?, &id, &specs).await?;
    Ok(Json(json!({"extra_specs": specs})))
}

pub async fn extra_spec_show(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let f = visible(&s, &ctx, &id).await?;
    let v = f.extra_specs.get(&key).ok_or_else(|| {
        ComputeError::NotFound(format!("Flavor {id} has no extra specs with key {key}."))
    })?;
    Ok(Json(json!({ key: v })))
}

pub async fn extra_spec_update(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-flavor-extra-specs:update")?;
    db::flavors::flavor_get(&mut *s.db.conn().await?, &id).await?;
    let obj = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    if obj.len() != 1 || !obj.contains_key(&key) {
        return Err(ComputeError::bad("Request body and URI mismatch"));
    }
    let specs = spec_map(&json!({"x": body}), "x")?;
    db::flavors::flavor_extra_specs_set(&mut *s.db.conn().await?, &id, &specs).await?;
    Ok(Json(json!(specs)))
}

pub async fn extra_spec_delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode> {
    require_admin(&ctx, "os_compute_api:os-flavor-extra-specs:delete")?;
    db::flavors::flavor_get(&mut *s.db.conn().await?, &id).await?;
    db::flavors::flavor_extra_spec_delete(&mut *s.db.conn().await?, &id, &key).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn access_body(s: &AppState, id: &str) -> Result<Json<Value>> {
    let list: Vec<Value> = db::flavors::flavor_access_list(&mut *s.db.conn().await?, id)
        .await?
        .into_iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    Ok(Json(json!({"flavor_access": list})))
}

pub async fn access_list(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "os_compute_api:os-flavor-access")?;
    let f = db::flavors::flavor_get(&mut *s.db.conn().await?, &id).await?;
    if f.is_public {
        return Err(ComputeError::NotFound(
            "Access list not available for public flavors.".into(),
        ));
    }
    access_body(&s, &id).await
}

pub async fn action(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Response> {
    let tenant = |k: &str| -> Result<String> {
        params::string(body.get(k).and_then(|b| b.get("tenant")), "tenant", 255)
    };
    let f = db::flavors::flavor_get(&mut *s.db.conn().await?, &id).await?;
    if body.get("addTenantAccess").is_some() {
        require_admin(&ctx, "os_compute_api:os-flavor-access:add_tenant_access")?;
        if f.is_public {
            return Err(ComputeError::Conflict(
                "Can not add access to a public flavor.".into(),
            ));
        }
        db::flavors::flavor_access_add(&mut *s.db.conn().await?, &id, &tenant("addTenantAccess")?)
            .await?;
    } else if body.get("removeTenantAccess").is_some() {
        require_admin(&ctx, "os_compute_api:os-flavor-access:remove_tenant_access")?;
        db::flavors::flavor_access_remove(
            &mut *s.db.conn().await?,
            &id,
            &tenant("removeTenantAccess")?,
        )
        .await?;
    } else {
        return Err(ComputeError::bad("There is no such action"));
    }
    Ok(access_body(&s, &id).await?.into_response())
}
