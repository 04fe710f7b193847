//! `/v2/metadefs/...`: Glance's metadata definitions catalog (see
//! [`crate::domain::metadef`]) and its schemas under `/v2/schemas/metadefs`.
//!
//! Policy as Zed's defaults: any project-scoped token reads what it may see
//! (public namespaces and its project's; admins everything); only admins
//! write (`metadef_admin`). A namespace the caller may not see is "not
//! found", also for writes; a write to one it sees but may not change is
//! 403. Nothing is seeded: Glance loads its standard namespaces with
//! `glance-manage db_load_metadefs`, not at start.

mod body;
mod namespaces;
mod objects;
mod properties;
mod resource_types;
mod schemas;
mod tags;

pub(super) use schemas::schema;

use std::sync::Arc;

use serde_json::{json, Map, Value};
use stratus_auth::routes::{get, Routes};
use stratus_common::time::iso_seconds;
use stratus_common::RequestContext;

use super::{image_scope, AppState};
use crate::db;
use crate::domain::metadef::{MetadefObject, Namespace, ResourceTypeAssociation};
use crate::error::ImageError;

pub(super) fn routes() -> Routes<Arc<AppState>> {
    const NS: &str = "/v2/metadefs/namespaces/{namespace}";
    Routes::new()
        .route(
            "/v2/metadefs/namespaces",
            get(namespaces::list).post(namespaces::create),
        )
        .route(
            NS,
            get(namespaces::show)
                .put(namespaces::update)
                .delete(namespaces::delete),
        )
        .route(
            &format!("{NS}/objects"),
            get(objects::list)
                .post(objects::create)
                .delete(namespaces::delete_objects),
        )
        .route(
            &format!("{NS}/objects/{{object_name}}"),
            get(objects::show)
                .put(objects::update)
                .delete(objects::delete),
        )
        .route(
            &format!("{NS}/properties"),
            get(properties::list)
                .post(properties::create)
                .delete(namespaces::delete_properties),
        )
        .route(
            &format!("{NS}/properties/{{property_name}}"),
            get(properties::show)
                .put(properties::update)
                .delete(properties::delete),
        )
        .route(
            &format!("{NS}/tags"),
            get(tags::list)
                .post(tags::create_many)
                .delete(namespaces::delete_tags),
        )
        .route(
            &format!("{NS}/tags/{{tag_name}}"),
            get(tags::show)
                .post(tags::create)
                .put(tags::update)
                .delete(tags::delete),
        )
        .route("/v2/metadefs/resource_types", get(resource_types::list))
        .route(
            &format!("{NS}/resource_types"),
            get(resource_types::list_associations).post(resource_types::associate),
        )
        .route(
            &format!("{NS}/resource_types/{{resource_type}}"),
            stratus_auth::routes::delete(resource_types::dissociate),
        )
        .route("/v2/schemas/metadefs/namespace", get(schemas::namespace))
        .route("/v2/schemas/metadefs/namespaces", get(schemas::namespaces))
        .route("/v2/schemas/metadefs/object", get(schemas::object))
        .route("/v2/schemas/metadefs/objects", get(schemas::objects))
        .route("/v2/schemas/metadefs/property", get(schemas::property))
        .route("/v2/schemas/metadefs/properties", get(schemas::properties))
        .route(
            "/v2/schemas/metadefs/resource_type",
            get(schemas::resource_type),
        )
        .route(
            "/v2/schemas/metadefs/resource_types",
            get(schemas::resource_types),
        )
        .route("/v2/schemas/metadefs/tag", get(schemas::tag))
        .route("/v2/schemas/metadefs/tags", get(schemas::tags))
}

fn forbidden(action: &str) -> ImageError {
    ImageError::Forbidden(format!(
        "You are not authorized to complete {action} action."
    ))
}

/// Glance's `metadef_admin`: the catalog is changed by admins only.
fn require_admin(ctx: &RequestContext, action: &str) -> Result<(), ImageError> {
    image_scope(ctx, action)?;
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(forbidden(action))
    }
}

fn namespace_not_found(name: &str) -> ImageError {
    ImageError::NotFound(format!(
        "Metadata definition namespace={name} was not found."
    ))
}

/// The namespace `name` if the caller may see it, else 404.
async fn load_namespace(
    state: &AppState,
    ctx: &RequestContext,
    name: &str,
    action: &str,
) -> Result<Namespace, ImageError> {
    image_scope(ctx, action)?;
    let ns = db::metadef_namespace_get(&mut *state.db.conn().await?, name)
        .await?
        .filter(|ns| ns.visible_to(ctx))
        .ok_or_else(|| namespace_not_found(name))?;
    Ok(ns)
}

/// Glance's domain refuses to delete anything of a protected namespace.
fn check_unprotected(ns: &Namespace, refused: impl FnOnce() -> String) -> Result<(), ImageError> {
    if ns.protected {
        Err(ImageError::Forbidden(refused()))
    } else {
        Ok(())
    }
}

fn namespace_href(ns: &str) -> String {
    format!("/v2/metadefs/namespaces/{ns}")
}

fn insert_opt(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(key.to_owned(), Value::String(v.clone()));
    }
}

/// A namespace as Glance shows it (absent attributes left out).
fn namespace_json(ns: &Namespace) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("namespace".to_owned(), json!(ns.namespace));
    insert_opt(&mut m, "display_name", &ns.display_name);
    insert_opt(&mut m, "description", &ns.description);
    m.insert("visibility".to_owned(), json!(ns.visibility));
    m.insert("protected".to_owned(), json!(ns.protected));
    m.insert("owner".to_owned(), json!(ns.owner));
    m.insert("created_at".to_owned(), json!(iso_seconds(ns.created_at)));
    m.insert("updated_at".to_owned(), json!(iso_seconds(ns.updated_at)));
    m.insert("self".to_owned(), json!(namespace_href(&ns.namespace)));
    m.insert("schema".to_owned(), json!("/v2/schemas/metadefs/namespace"));
    m
}

fn object_json(ns: &str, o: &MetadefObject) -> Value {
    let mut m = Map::new();
    m.insert("name".to_owned(), json!(o.name));
    insert_opt(&mut m, "description", &o.description);
    m.insert("required".to_owned(), json!(o.required));
    m.insert("properties".to_owned(), Value::Object(o.properties.clone()));
    m.insert("created_at".to_owned(), json!(iso_seconds(o.created_at)));
    m.insert("updated_at".to_owned(), json!(iso_seconds(o.updated_at)));
    m.insert(
        "self".to_owned(),
        json!(format!("{}/objects/{}", namespace_href(ns), o.name)),
    );
    m.insert("schema".to_owned(), json!("/v2/schemas/metadefs/object"));
    Value::Object(m)
}

fn association_json(a: &ResourceTypeAssociation) -> Value {
    let mut m = Map::new();
    m.insert("name".to_owned(), json!(a.name));
    insert_opt(&mut m, "prefix", &a.prefix);
    insert_opt(&mut m, "properties_target", &a.properties_target);
    m.insert("created_at".to_owned(), json!(iso_seconds(a.created_at)));
    m.insert("updated_at".to_owned(), json!(iso_seconds(a.updated_at)));
    Value::Object(m)
}

/// Query parameters as Glance's metadef listings read them.
struct ListParams {
    limit: Option<usize>,
    marker: Option<String>,
    sort_key: String,
    desc: bool,
}

fn list_params(
    params: &[(String, String)],
    limit_max: usize,
    default_limit: Option<usize>,
) -> Result<ListParams, ImageError> {
    let mut p = ListParams {
        limit: default_limit,
        marker: None,
        sort_key: "created_at".to_owned(),
        desc: true,
    };
    for (k, v) in params {
        match k.as_str() {
            "limit" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| ImageError::BadRequest("limit param must be an integer".into()))?;
                if n < 0 {
                    return Err(ImageError::BadRequest(
                        "limit param must be positive".into(),
                    ));
                }
                p.limit = Some(usize::try_from(n).unwrap_or(limit_max).min(limit_max));
            }
            "marker" => p.marker = Some(v.clone()),
            "sort_key" => p.sort_key = v.clone(),
            "sort_dir" => {
                p.desc = match v.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => {
                        return Err(ImageError::BadRequest(format!(
                            "Invalid sort direction: {v}"
                        )))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(p)
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
