//! `/v2/metadefs/namespaces/{namespace}/objects[/{object_name}]`: named
//! groups of property definitions in a namespace.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;
use stratus_common::time;

use super::body;
use super::{check_unprotected, load_namespace, namespace_href, object_json, require_admin};
use crate::api::AppState;
use crate::db;
use crate::domain::metadef::MetadefObject;
use crate::error::{GlanceJson, GlancePath, ImageError};

const SCHEMA: &str = "object";
const READONLY: &[&str] = &["self", "schema", "created_at", "updated_at"];
const KNOWN: &[&str] = &["name", "description", "required", "properties"];

fn object_not_found(ns: &str, name: &str) -> ImageError {
    ImageError::NotFound(format!(
        "The metadata definition object with name={name} was not found in namespace={ns}."
    ))
}

/// An object from a create or update body.
fn parse(raw: &Value) -> Result<MetadefObject, ImageError> {
    let m = body::object(raw, SCHEMA)?;
    body::check_readonly(m, READONLY)?;
    body::check_known(m, KNOWN, SCHEMA)?;
    let now = time::now();
    Ok(MetadefObject {
        name: body::string(m, "name", 80, SCHEMA)?,
        description: body::opt_string(m, "description", 0, SCHEMA)?,
        required: match m.get("required") {
            Some(r) => body::string_array(r, SCHEMA)?,
            None => Vec::new(),
        },
        properties: match m.get("properties") {
            Some(p) => body::properties(p, SCHEMA)?,
            None => Map::new(),
        },
        created_at: now,
        updated_at: now,
    })
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(ns_name): GlancePath<String>,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Response, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "add_metadef_object").await?;
    let object = parse(&raw)?;
    require_admin(&ctx, "add_metadef_object")?;
    db::metadef_object_insert(&mut *state.db.conn().await?, &ns, &object).await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(object_json(&ns.namespace, &object)),
    )
        .into_response();
    let href = format!("{}/objects/{}", namespace_href(&ns.namespace), object.name);
    if let Ok(v) = href.parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(ns_name): GlancePath<String>,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "get_metadef_objects").await?;
    let objects = db::metadef_object_list(&mut *state.db.conn().await?, &ns).await?;
    let items: Vec<Value> = objects
        .iter()
        .map(|o| object_json(&ns.namespace, o))
        .collect();
    Ok(Json(json!({
        "objects": items,
        "schema": "/v2/schemas/metadefs/objects",
    })))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "get_metadef_object").await?;
    let object = db::metadef_object_get(&mut *state.db.conn().await?, &ns, &name)
        .await?
        .ok_or_else(|| object_not_found(&ns.namespace, &name))?;
    Ok(Json(object_json(&ns.namespace, &object)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "modify_metadef_object").await?;
    let mut object = parse(&raw)?;
    require_admin(&ctx, "modify_metadef_object")?;
    let conn = &mut *state.db.conn().await?;
    let old = db::metadef_object_get(conn, &ns, &name)
        .await?
        .ok_or_else(|| object_not_found(&ns.namespace, &name))?;
    object.created_at = old.created_at;
    if !db::metadef_object_update(conn, &ns, &name, &object).await? {
        return Err(object_not_found(&ns.namespace, &name));
    }
    Ok(Json(object_json(&ns.namespace, &object)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
) -> Result<StatusCode, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "delete_metadef_object").await?;
    require_admin(&ctx, "delete_metadef_object")?;
    let conn = &mut *state.db.conn().await?;
    if db::metadef_object_get(conn, &ns, &name).await?.is_none() {
        return Err(object_not_found(&ns.namespace, &name));
    }
    check_unprotected(&ns, || {
        format!("Metadata definition object {name} is protected and cannot be deleted.")
    })?;
    if !db::metadef_object_delete(conn, &ns, &name).await? {
        return Err(object_not_found(&ns.namespace, &name));
    }
    Ok(StatusCode::NO_CONTENT)
}
