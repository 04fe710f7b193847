//! `/types` and `/types/{id}/extra_specs`: everyone lists and shows public
//! types and reads their extra specs (non-admins only the keys Cinder
//! deems user-visible); admins create, change and delete them.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::{Ctx, RequestContext};
use stratus_common::ids::VolumeTypeId;
use stratus_common::time;

use super::view;
use super::volumes::{object, opt_str};
use super::{forbidden, read_scope, AppState};
use crate::db;
use crate::domain::vtype::DEFAULT_TYPE;
use crate::domain::{metadata_of, validate_name, VolumeType};
use crate::error::{CinderJson, CinderQuery, PathParams, VolumeError};

fn require_admin(ctx: &RequestContext, action: &str) -> Result<(), VolumeError> {
    read_scope(ctx, false, action)?;
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(forbidden(action))
    }
}

/// A type by id or by name (cinderclient looks names up this way); private
/// types only for admins.
async fn load(state: &AppState, ctx: &RequestContext, id: &str) -> Result<VolumeType, VolumeError> {
    read_scope(ctx, false, "volume_extension:type_get")?;
    let mut conn = state.db.conn().await?;
    db::type_ensure_default(&mut conn).await?;
    let found = match id.parse::<VolumeTypeId>() {
        Ok(tid) => db::type_get(&mut conn, &tid).await?,
        Err(_) => None,
    };
    found
        .filter(|t| t.is_public || ctx.is_admin())
        .ok_or_else(|| VolumeError::type_not_found(id))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    read_scope(&ctx, false, "volume_extension:types_index")?;
    let mut conn = state.db.conn().await?;
    db::type_ensure_default(&mut conn).await?;
    let all = db::type_list(&mut conn).await?;
    // Admins see private types too unless they ask for public ones only
    // (`is_public=None` is "all", as cinderclient sends it).
    let public_only = match q.get("is_public") {
        _ if !ctx.is_admin() => true,
        None | Some("None") | Some("none") => false,
        Some(v) => crate::domain::list::parse_bool(v)?,
    };
    let types: Vec<Value> = all
        .iter()
        .filter(|t| t.is_public || !public_only)
        .filter(|t| q.get("name").is_none_or(|n| t.name == n))
        .map(|t| view::volume_type(t, ctx.is_admin()))
        .collect();
    Ok(Json(json!({"volume_types": types})))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    let t = load(&state, &ctx, params.get("id")).await?;
    Ok(Json(
        json!({"volume_type": view::volume_type(&t, ctx.is_admin())}),
    ))
}

fn is_public_of(body: &serde_json::Map<String, Value>) -> Result<Option<bool>, VolumeError> {
    for key in ["os-volume-type-access:is_public", "is_public"] {
        match body.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => return Ok(Some(*b)),
            Some(Value::String(s)) => return crate::domain::list::parse_bool(s).map(Some),
            Some(other) => {
                return Err(VolumeError::bad(format!(
                    "Invalid value '{other}' for is_public. Accepted values: True or False."
                )))
            }
        }
    }
    Ok(None)
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    require_admin(&ctx, "volume_extension:types_manage")?;
    let body = object(body, "volume_type")?;
    let name = opt_str(&body, "name")?
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| VolumeError::bad("Volume type name can not be empty."))?;
    validate_name(Some(&name), "name")?;
    let description = opt_str(&body, "description")?;
    validate_name(description.as_deref(), "description")?;
    let extra_specs = match body.get("extra_specs") {
        None | Some(Value::Null) => Default::default(),
        Some(m) => metadata_of(m, "extra_specs")?,
    };
    let t = VolumeType {
        id: VolumeTypeId::new(),
        name,
        description,
        is_public: is_public_of(&body)?.unwrap_or(true),
        extra_specs,
        created_at: time::now(),
    };
    db::type_insert(&mut *state.db.conn().await?, &t).await?;
    Ok(Json(json!({"volume_type": view::volume_type(&t, true)})))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    require_admin(&ctx, "volume_extension:types_manage")?;
    let body = object(body, "volume_type")?;
    let mut t = load(&state, &ctx, params.get("id")).await?;
    if let Some(n) = opt_str(&body, "name")? {
        let n = n.trim().to_owned();
        if n.is_empty() {
            return Err(VolumeError::bad("Volume type name can not be empty."));
        }
        if t.name == DEFAULT_TYPE && n != DEFAULT_TYPE {
            return Err(VolumeError::bad(
                "The default volume type cannot be renamed.",
            ));
        }
        validate_name(Some(&n), "name")?;
        t.name = n;
    }
    if body.contains_key("description") {
        t.description = opt_str(&body, "description")?;
        validate_name(t.description.as_deref(), "description")?;
    }
    if let Some(p) = is_public_of(&body)? {
        t.is_public = p;
    }
    db::type_update(&mut *state.db.conn().await?, &t).await?;
    Ok(Json(json!({"volume_type": view::volume_type(&t, true)})))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<StatusCode, VolumeError> {
    require_admin(&ctx, "volume_extension:types_manage")?;
    let t = load(&state, &ctx, params.get("id")).await?;
    if t.name == DEFAULT_TYPE {
        return Err(VolumeError::bad("Default volume type can not be deleted."));
    }
    if !db::type_delete_unused(&mut *state.db.conn().await?, &t.id).await? {
        return Err(VolumeError::bad("Target volume type is still in use."));
    }
    Ok(StatusCode::ACCEPTED)
}

/// The extra specs Cinder shows to anyone (`USER_VISIBLE_EXTRA_SPECS`);
/// the others can name the backend behind a type
/// (`volume_extension:types_extra_specs:read_sensitive`, admins).
const USER_VISIBLE_SPECS: [&str; 3] = [
    "RESKEY:availability_zones",
    "multiattach",
    "replication_enabled",
];

/// The extra specs of `t` the caller may read (index and show are open to
/// any scoped caller, as in Cinder).
fn readable_specs(
    ctx: &RequestContext,
    t: &VolumeType,
) -> std::collections::BTreeMap<String, String> {
    t.extra_specs
        .iter()
        .filter(|(k, _)| ctx.is_admin() || USER_VISIBLE_SPECS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub async fn specs_list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    let t = load(&state, &ctx, params.get("id")).await?;
    Ok(Json(json!({"extra_specs": readable_specs(&ctx, &t)})))
}

pub async fn specs_merge(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    require_admin(&ctx, "volume_extension:types_extra_specs:create")?;
    let Value::Object(mut o) = body else {
        return Err(VolumeError::bad(
            "Missing required element 'extra_specs' in request body.",
        ));
    };
    let specs = o.remove("extra_specs").ok_or_else(|| {
        VolumeError::bad("Missing required element 'extra_specs' in request body.")
    })?;
    let specs = metadata_of(&specs, "extra_specs")?;
    let mut t = load(&state, &ctx, params.get("id")).await?;
    t.extra_specs.extend(specs.clone());
    db::type_update(&mut *state.db.conn().await?, &t).await?;
    Ok(Json(json!({"extra_specs": specs})))
}

pub async fn spec_show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    let t = load(&state, &ctx, params.get("id")).await?;
    let key = params.get("key");
    let v = readable_specs(&ctx, &t).remove(key).ok_or_else(|| {
        VolumeError::NotFound(format!(
            "Volume Type {} has no extra specs with key {key}.",
            t.id
        ))
    })?;
    Ok(Json(json!({key: v})))
}

pub async fn spec_set(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    require_admin(&ctx, "volume_extension:types_extra_specs:update")?;
    let m = metadata_of(&body, "extra_specs")?;
    let key = params.get("key");
    if m.len() != 1 || !m.contains_key(key) {
        return Err(VolumeError::bad("Request body and URI mismatch"));
    }
    let mut t = load(&state, &ctx, params.get("id")).await?;
    t.extra_specs.extend(m.clone());
    db::type_update(&mut *state.db.conn().await?, &t).await?;
    Ok(Json(json!(m)))
}

pub async fn spec_delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<StatusCode, VolumeError> {
    require_admin(&ctx, "volume_extension:types_extra_specs:delete")?;
    let mut t = load(&state, &ctx, params.get("id")).await?;
    let key = params.get("key");
    if t.extra_specs.remove(key).is_none() {
        return Err(VolumeError::NotFound(format!(
            "Volume Type {} has no extra specs with key {key}.",
            t.id
        )));
    }
    db::type_update(&mut *state.db.conn().await?, &t).await?;
    Ok(StatusCode::ACCEPTED)
}
