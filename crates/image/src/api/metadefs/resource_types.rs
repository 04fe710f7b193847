//! `/v2/metadefs/resource_types` (every resource type known) and
//! `/v2/metadefs/namespaces/{namespace}/resource_types[/{name}]`: a
//! namespace's associations. Associating with a new resource type creates
//! it, as Glance does.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_common::time::{self, iso_seconds};

use super::{association_json, body, check_unprotected, load_namespace, require_admin};
use crate::api::{image_scope, AppState};
use crate::db;
use crate::domain::metadef::ResourceTypeAssociation;
use crate::error::{GlanceJson, GlancePath, ImageError};

const SCHEMA: &str = "resource_type_association";

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
) -> Result<Json<Value>, ImageError> {
    image_scope(&ctx, "list_metadef_resource_types")?;
    let types = db::metadef_resource_type_list(&mut *state.db.conn().await?).await?;
    let items: Vec<Value> = types
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "created_at": iso_seconds(t.created_at),
                "updated_at": iso_seconds(t.updated_at),
            })
        })
        .collect();
    Ok(Json(json!({ "resource_types": items })))
}

pub async fn list_associations(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(ns_name): GlancePath<String>,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &ns_name, "list_metadef_resource_types").await?;
    let list = db::metadef_association_list(&mut *state.db.conn().await?, &ns).await?;
    let items: Vec<Value> = list.iter().map(association_json).collect();
    Ok(Json(json!({ "resource_type_associations": items })))
}

pub async fn associate(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(ns_name): GlancePath<String>,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Response, ImageError> {
    let ns = load_namespace(
        &state,
        &ctx,
        &ns_name,
        "add_metadef_resource_type_association",
    )
    .await?;
    let m = body::object(&raw, SCHEMA)?;
    body::check_readonly(m, &["created_at", "updated_at"])?;
    body::check_known(m, &["name", "prefix", "properties_target"], SCHEMA)?;
    let now = time::now();
    let a = ResourceTypeAssociation {
        name: body::string(m, "name", 80, SCHEMA)?,
        prefix: body::opt_string(m, "prefix", 80, SCHEMA)?,
        properties_target: body::opt_string(m, "properties_target", 80, SCHEMA)?,
        created_at: now,
        updated_at: now,
    };
    require_admin(&ctx, "add_metadef_resource_type_association")?;
    db::metadef_association_insert(&mut *state.db.conn().await?, &ns, &a).await?;
    Ok((StatusCode::CREATED, Json(association_json(&a))).into_response())
}

pub async fn dissociate(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((ns_name, name)): GlancePath<(String, String)>,
) -> Result<StatusCode, ImageError> {
    let ns = load_namespace(
        &state,
        &ctx,
        &ns_name,
        "remove_metadef_resource_type_association",
    )
    .await?;
    require_admin(&ctx, "remove_metadef_resource_type_association")?;
    let not_found =
        || ImageError::NotFound(format!("Failed to find resource type {name} to delete"));
    let conn = &mut *state.db.conn().await?;
    let associations = db::metadef_association_list(conn, &ns).await?;
    if !associations.iter().any(|a| a.name == name) {
        return Err(not_found());
    }
    check_unprotected(&ns, || {
        format!(
            "Metadata definition resource-type-association {name} is protected and cannot be \
             deleted."
        )
    })?;
    if !db::metadef_association_delete(conn, &ns, &name).await? {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
