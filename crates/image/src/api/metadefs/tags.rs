//! `/v2/metadefs/namespaces/{namespace}/tags[/{tag_name}]`: create many
//! (replacing, or appending with `X-Openstack-Append: true`), list with
//! paging, create one, show, rename, delete.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_common::time::{self, iso_seconds};

use super::{body, check_unprotected, list_params, load_namespace, namespace_href, require_admin};
use crate::api::AppState;
use crate::db;
use crate::domain::metadef::MetadefTag;
use crate::error::{GlanceJson, GlancePath, GlanceQuery, ImageError};

const READONLY: &[&str] = &["created_at", "updated_at"];

fn tag_not_found(ns: &str, name: &str) -> ImageError {
    ImageError::NotFound(format!(
        "The metadata definition tag with name={name} was not found in namespace={ns}."
    ))
}

fn tag_json(t: &MetadefTag) -> Value {
    json!({
        "name": t.name,
        "created_at": iso_seconds(t.created_at),
        "updated_at": iso_seconds(t.updated_at),
    })
}

fn new_tag(name: String) -> MetadefTag {
    let now = time::now();
    MetadefTag {
        name,
        created_at: now,
        updated_at: now,
    }
}

/// `{"tags": [{"name": ...}, ...]}`, as Glance's `tags` schema has it.
fn parse_many(raw: &Value) -> Result<Vec<MetadefTag>, ImageError> {
    const SCHEMA: &str = "tags";
    let m = body::object(raw, SCHEMA)?;
    body::check_readonly(m, READONLY)?;
    body::check_known(m, &["tags"], SCHEMA)?;
    let Some(list) = m.get("tags") else {
        return Ok(Vec::new());
    };
    let items = list
        .as_array()
        .ok_or_else(|| body::invalid(SCHEMA, format!("{list} is not of type 'array'")))?;
    items
        .iter()
        .map(|i| {
            let t = body::object(i, SCHEMA)?;
            body::check_known(t, &["name"], SCHEMA)?;
            Ok(new_tag(body::string(t, "name", 0, SCHEMA)?))
        })
        .collect()
}

pub async fn create_many(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(ns_name): GlancePath<String>,
    headers: HeaderMap,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Response, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "add_metadef_tags").await?;
    let tags = parse_many(&raw)?;
    require_admin(&ctx, "add_metadef_tags")?;
    // oslo's bool_from_string: anything but a true word is false.
    let append = headers
        .get("x-openstack-append")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "t" | "true" | "on" | "y" | "yes"
            )
        });
    if !tags.is_empty() {
        db::metadef_tags_set(&mut *state.db.conn().await?, &ns, &tags, append).await?;
    }
    let out: Vec<Value> = tags.iter().map(|t| json!({"name": t.name})).collect();
    Ok((StatusCode::CREATED, Json(json!({ "tags": out }))).into_response())
}

const SORT_KEYS: &[&str] = &["name", "created_at", "updated_at"];

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(ns_name): GlancePath<String>,
    GlanceQuery(params): GlanceQuery,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "get_metadef_tags").await?;
    let p = list_params(&params, state.config.limit_max, None)?;
    if !SORT_KEYS.contains(&p.sort_key.as_str()) {
        return Err(ImageError::BadRequest(format!(
            "Invalid sort key: {}. It must be one of the following: {}.",
            p.sort_key,
            SORT_KEYS.join(", ")
        )));
    }
    let conn = &mut *state.db.conn().await?;
    let mut tags = db::metadef_tag_list(conn, &ns).await?;
    let order = |a: &MetadefTag, b: &MetadefTag| {
        let o = match p.sort_key.as_str() {
            "name" => a.name.cmp(&b.name),
            "updated_at" => a.updated_at.cmp(&b.updated_at),
            _ => Ordering::Equal,
        }
        .then(a.created_at.cmp(&b.created_at))
        .then(a.name.cmp(&b.name));
        if p.desc {
            o.reverse()
        } else {
            o
        }
    };
    tags.sort_by(order);
    if let Some(marker) = &p.marker {
        let m = db::metadef_tag_get(conn, &ns, marker)
            .await?
            .ok_or_else(|| tag_not_found(&ns.namespace, marker))?;
        tags.retain(|t| order(t, &m) == Ordering::Greater);
    }
    if let Some(limit) = p.limit.filter(|l| *l > 0) {
        tags.truncate(limit);
    }
    let out: Vec<Value> = tags.iter().map(|t| json!({"name": t.name})).collect();
    Ok(Json(json!({ "tags": out })))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
) -> Result<Response, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "add_metadef_tag").await?;
    if name.chars().count() > 80 {
        return Err(body::invalid(
            "tag",
            format!("'{name}' is too long (at most 80 characters)"),
        ));
    }
    require_admin(&ctx, "add_metadef_tag")?;
    let tag = new_tag(name);
    db::metadef_tag_insert(&mut *state.db.conn().await?, &ns, &tag).await?;
    let mut resp = (StatusCode::CREATED, Json(tag_json(&tag))).into_response();
    let href = format!("{}/tags/{}", namespace_href(&ns.namespace), tag.name);
    if let Ok(v) = href.parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "get_metadef_tag").await?;
    let tag = db::metadef_tag_get(&mut *state.db.conn().await?, &ns, &name)
        .await?
        .ok_or_else(|| tag_not_found(&ns.namespace, &name))?;
    Ok(Json(tag_json(&tag)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "modify_metadef_tag").await?;
    let m = body::object(&raw, "tag")?;
    body::check_readonly(m, READONLY)?;
    body::check_known(m, &["name"], "tag")?;
    let new_name = body::string(m, "name", 80, "tag")?;
    require_admin(&ctx, "modify_metadef_tag")?;
    let conn = &mut *state.db.conn().await?;
    if !db::metadef_tag_rename(conn, &ns, &name, &new_name).await? {
        return Err(tag_not_found(&ns.namespace, &name));
    }
    let tag = db::metadef_tag_get(conn, &ns, &new_name)
        .await?
        .ok_or_else(|| tag_not_found(&ns.namespace, &new_name))?;
    Ok(Json(tag_json(&tag)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
) -> Result<StatusCode, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "delete_metadef_tag").await?;
    require_admin(&ctx, "delete_metadef_tag")?;
    let conn = &mut *state.db.conn().await?;
    if db::metadef_tag_get(conn, &ns, &name).await?.is_none() {
        return Err(tag_not_found(&ns.namespace, &name));
    }
    check_unprotected(&ns, || {
        format!("Metadata definition tag {name} is protected and cannot be deleted.")
    })?;
    if !db::metadef_tag_delete(conn, &ns, &name).await? {
        return Err(tag_not_found(&ns.namespace, &name));
    }
    Ok(StatusCode::NO_CONTENT)
}
