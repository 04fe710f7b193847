//! `/v2/metadefs/namespaces/{namespace}/properties[/{property_name}]`:
//! property definitions (JSON-schema fragments with a title and a type).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;

use super::{body, check_unprotected, load_namespace, namespace_href, param, require_admin};
use crate::api::AppState;
use crate::db;
use crate::domain::metadef::MetadefProperty;
use crate::error::{GlanceJson, GlancePath, GlanceQuery, ImageError};

const SCHEMA: &str = "property";
const READONLY: &[&str] = &["created_at", "updated_at"];

fn property_not_found(ns: &str, name: &str) -> ImageError {
    ImageError::NotFound(format!(
        "The metadata definition property with name={name} was not found in namespace={ns}."
    ))
}

fn parse(raw: &Value) -> Result<MetadefProperty, ImageError> {
    let m = body::object(raw, SCHEMA)?;
    body::check_readonly(m, READONLY)?;
    let schema = body::property(raw, SCHEMA, true)?;
    let name = body::string(m, "name", 80, SCHEMA)?;
    Ok(MetadefProperty { name, schema })
}

/// The definition as Glance shows one property: with its name.
fn property_json(p: &MetadefProperty) -> Value {
    let mut m = p.schema.clone();
    m.insert("name".to_owned(), Value::String(p.name.clone()));
    Value::Object(m)
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(ns_name): GlancePath<String>,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Response, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "add_metadef_property").await?;
    let property = parse(&raw)?;
    require_admin(&ctx, "add_metadef_property")?;
    db::metadef_property_insert(&mut *state.db.conn().await?, &ns, &property).await?;
    let mut resp = (StatusCode::CREATED, Json(property_json(&property))).into_response();
    let href = format!(
        "{}/properties/{}",
        namespace_href(&ns.namespace),
        property.name
    );
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
    let ns = load_namespace(&state, &ctx, &ns_name, "get_metadef_properties").await?;
    let props = db::metadef_property_list(&mut *state.db.conn().await?, &ns).await?;
    let map: Map<String, Value> = props
        .iter()
        .map(|p| (p.name.clone(), property_json(p)))
        .collect();
    Ok(Json(json!({ "properties": map })))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
    GlanceQuery(params): GlanceQuery,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "get_metadef_property").await?;
    let conn = &mut *state.db.conn().await?;
    let mut lookup = name.clone();
    // `?resource_type=X`: the name is given with X's prefix.
    if let Some(rt) = param(&params, "resource_type").filter(|r| !r.is_empty()) {
        let associations = db::metadef_association_list(conn, &ns).await?;
        let a = associations.iter().find(|a| a.name == rt).ok_or_else(|| {
            ImageError::NotFound(format!(
                "The metadata definition resource-type association of resource-type={rt} to \
                 namespace={} was not found.",
                ns.namespace
            ))
        })?;
        let prefix = a.prefix.clone().unwrap_or_default();
        match name.strip_prefix(prefix.as_str()) {
            Some(rest) if !prefix.is_empty() => lookup = rest.to_owned(),
            _ => {
                return Err(ImageError::NotFound(format!(
                    "Property {name} does not start with the expected resource type \
                     association prefix of '{prefix}'."
                )))
            }
        }
    }
    let p = db::metadef_property_get(conn, &ns, &lookup)
        .await?
        .ok_or_else(|| property_not_found(&ns.namespace, &lookup))?;
    Ok(Json(property_json(&p)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "modify_metadef_property").await?;
    let property = parse(&raw)?;
    require_admin(&ctx, "modify_metadef_property")?;
    if !db::metadef_property_update(&mut *state.db.conn().await?, &ns, &name, &property).await? {
        return Err(property_not_found(&ns.namespace, &name));
    }
    Ok(Json(property_json(&property)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
) -> Result<StatusCode, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "remove_metadef_property").await?;
    require_admin(&ctx, "remove_metadef_property")?;
    let conn = &mut *state.db.conn().await?;
    if db::metadef_property_get(conn, &ns, &name).await?.is_none() {
        return Err(property_not_found(&ns.namespace, &name));
    }
    check_unprotected(&ns, || {
        format!("Metadata definition property {name} is protected and cannot be deleted.")
    })?;
    if !db::metadef_property_delete(conn, &ns, &name).await? {
        return Err(property_not_found(&ns.namespace, &name));
    }
    Ok(StatusCode::NO_CONTENT)
}
