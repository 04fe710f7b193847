//! `/v2/metadefs/namespaces[/{namespace}]`: create (with its whole tree),
//! list (visibility, resource types, sorting, paging), show (with its
//! objects, properties, tags and associations; `resource_type` prefixes the
//! property names), replace, delete, and the delete-all of a namespace's
//! objects, properties and tags.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;
use stratus_common::time;

use super::body::{self, invalid};
use super::{
    association_json, check_unprotected, list_params, load_namespace, namespace_href,
    namespace_json, object_json, param, require_admin,
};
use crate::api::{image_scope, AppState};
use crate::db::{self, Content, NamespaceFilter};
use crate::domain::access::project;
use crate::domain::metadef::{
    MetadefObject, MetadefProperty, MetadefTag, Namespace, NamespaceContent,
    ResourceTypeAssociation,
};
use crate::error::{GlanceJson, GlancePath, GlanceQuery, ImageError};

const SCHEMA: &str = "namespace";
const READONLY: &[&str] = &["self", "schema", "created_at", "updated_at"];
const KNOWN: &[&str] = &[
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "resource_type_associations",
    "properties",
    "objects",
    "tags",
];

/// The namespace's own attributes from a create or update body.
struct NamespaceBody {
    namespace: String,
    display_name: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
    protected: Option<bool>,
    owner: Option<String>,
}

fn parse_namespace(body: &Map<String, Value>) -> Result<NamespaceBody, ImageError> {
    body::check_readonly(body, READONLY)?;
    body::check_known(body, KNOWN, SCHEMA)?;
    let visibility = body::opt_string(body, "visibility", 0, SCHEMA)?;
    if let Some(v) = &visibility {
        if v != "public" && v != "private" {
            return Err(invalid(
                SCHEMA,
                format!("'{v}' is not one of ['public', 'private']"),
            ));
        }
    }
    Ok(NamespaceBody {
        namespace: body::string(body, "namespace", 80, SCHEMA)?,
        display_name: body::opt_string(body, "display_name", 80, SCHEMA)?,
        description: body::opt_string(body, "description", 500, SCHEMA)?,
        visibility,
        protected: body::opt_bool(body, "protected", SCHEMA)?,
        owner: body::opt_string(body, "owner", 255, SCHEMA)?,
    })
}

fn array<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], ImageError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(invalid(
            SCHEMA,
            format!("{other} is not of type 'array' ({key})"),
        )),
    }
}

/// The tree a create body brings along.
fn parse_content(body: &Map<String, Value>) -> Result<NamespaceContent, ImageError> {
    let now = time::now();
    let mut content = NamespaceContent::default();
    for a in array(body, "resource_type_associations")? {
        let m = body::object(a, SCHEMA)?;
        content.associations.push(ResourceTypeAssociation {
            name: body::string(m, "name", 80, SCHEMA)?,
            prefix: body::opt_string(m, "prefix", 80, SCHEMA)?,
            properties_target: body::opt_string(m, "properties_target", 80, SCHEMA)?,
            created_at: now,
            updated_at: now,
        });
    }
    for o in array(body, "objects")? {
        let m = body::object(o, SCHEMA)?;
        content.objects.push(MetadefObject {
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
        });
    }
    if let Some(p) = body.get("properties") {
        for (name, def) in body::properties(p, SCHEMA)? {
            let Value::Object(mut schema) = def else {
                continue;
            };
            schema.insert("name".to_owned(), Value::String(name.clone()));
            content.properties.push(MetadefProperty { name, schema });
        }
    }
    for t in array(body, "tags")? {
        let m = body::object(t, SCHEMA)?;
        content.tags.push(MetadefTag {
            name: body::string(m, "name", 80, SCHEMA)?,
            created_at: now,
            updated_at: now,
        });
    }
    Ok(content)
}

/// The name → definition map of properties, as namespaces show them.
fn properties_map(props: &[MetadefProperty], prefix: &str) -> Map<String, Value> {
    props
        .iter()
        .map(|p| {
            (
                format!("{prefix}{}", p.name),
                Value::Object(p.schema.clone()),
            )
        })
        .collect()
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Response, ImageError> {
    image_scope(&ctx, "add_metadef_namespace")?;
    let body = body::object(&raw, SCHEMA)?;
    let b = parse_namespace(body)?;
    let content = parse_content(body)?;
    require_admin(&ctx, "add_metadef_namespace")?;
    let now = time::now();
    let ns = Namespace {
        id: uuid::Uuid::new_v4().to_string(),
        namespace: b.namespace,
        display_name: b.display_name,
        description: b.description,
        visibility: b.visibility.unwrap_or_else(|| "private".to_owned()),
        protected: b.protected.unwrap_or(false),
        owner: b
            .owner
            .or_else(|| project(&ctx).map(str::to_owned))
            .unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    db::metadef_namespace_insert(&mut *state.db.conn().await?, &ns, &content).await?;
    let mut out = namespace_json(&ns);
    if !content.associations.is_empty() {
        let a: Vec<Value> = content.associations.iter().map(association_json).collect();
        out.insert("resource_type_associations".to_owned(), Value::Array(a));
    }
    if !content.objects.is_empty() {
        let o: Vec<Value> = content
            .objects
            .iter()
            .map(|o| object_json(&ns.namespace, o))
            .collect();
        out.insert("objects".to_owned(), Value::Array(o));
    }
    if !content.properties.is_empty() {
        out.insert(
            "properties".to_owned(),
            Value::Object(properties_map(&content.properties, "")),
        );
    }
    if !content.tags.is_empty() {
        let t: Vec<Value> = content
            .tags
            .iter()
            .map(|t| json!({"name": t.name}))
            .collect();
        out.insert("tags".to_owned(), Value::Array(t));
    }
    let mut resp = (StatusCode::CREATED, Json(Value::Object(out))).into_response();
    if let Ok(v) = namespace_href(&ns.namespace).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(name): GlancePath<String>,
    GlanceQuery(params): GlanceQuery,
) -> Result<Json<Value>, ImageError> {
    let ns = load_namespace(&state, &ctx, &name, "get_metadef_namespace").await?;
    let conn = &mut *state.db.conn().await?;
    let objects = db::metadef_object_list(conn, &ns).await?;
    let associations = db::metadef_association_list(conn, &ns).await?;
    let properties = db::metadef_property_list(conn, &ns).await?;
    let tags = db::metadef_tag_list(conn, &ns).await?;
    // `?resource_type=X`: names as they apply to X (with its prefix).
    let prefix = param(&params, "resource_type")
        .and_then(|rt| associations.iter().find(|a| a.name == rt))
        .and_then(|a| a.prefix.clone())
        .unwrap_or_default();
    let mut out = namespace_json(&ns);
    if !objects.is_empty() {
        let o: Vec<Value> = objects
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if !prefix.is_empty() {
                    o.properties = o
                        .properties
                        .into_iter()
                        .map(|(k, v)| (format!("{prefix}{k}"), v))
                        .collect();
                    o.required = o.required.iter().map(|r| format!("{prefix}{r}")).collect();
                }
                object_json(&ns.namespace, &o)
            })
            .collect();
        out.insert("objects".to_owned(), Value::Array(o));
    }
    if !associations.is_empty() {
        let a: Vec<Value> = associations.iter().map(association_json).collect();
        out.insert("resource_type_associations".to_owned(), Value::Array(a));
    }
    if !properties.is_empty() {
        out.insert(
            "properties".to_owned(),
            Value::Object(properties_map(&properties, &prefix)),
        );
    }
    if !tags.is_empty() {
        let mut tags = tags;
        tags.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
        let t: Vec<Value> = tags.iter().map(|t| json!({"name": t.name})).collect();
        out.insert("tags".to_owned(), Value::Array(t));
    }
    Ok(Json(Value::Object(out)))
}

fn cmp_key(a: &Namespace, b: &Namespace, key: &str) -> Ordering {
    match key {
        "namespace" => a.namespace.cmp(&b.namespace),
        "display_name" => a.display_name.cmp(&b.display_name),
        "description" => a.description.cmp(&b.description),
        "visibility" => a.visibility.cmp(&b.visibility),
        "protected" => a.protected.cmp(&b.protected),
        "owner" => a.owner.cmp(&b.owner),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        "id" => a.id.cmp(&b.id),
        _ => a.created_at.cmp(&b.created_at),
    }
}

const SORT_KEYS: &[&str] = &[
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "created_at",
    "updated_at",
    "id",
];

/// Encodes query pairs for the `first`/`next` links.
fn query_string(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| -> String {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        b' ' => "+".to_owned(),
                        _ => format!("%{b:02X}"),
                    })
                    .collect()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlanceQuery(params): GlanceQuery,
) -> Result<Json<Value>, ImageError> {
    image_scope(&ctx, "get_metadef_namespaces")?;
    let p = list_params(
        &params,
        state.config.limit_max,
        Some(state.config.limit_default),
    )?;
    if !SORT_KEYS.contains(&p.sort_key.as_str()) {
        return Err(ImageError::BadRequest(format!(
            "Invalid sort key: {}. It must be one of the following: {}.",
            p.sort_key,
            SORT_KEYS.join(", ")
        )));
    }
    let visibility = param(&params, "visibility").map(str::to_owned);
    if let Some(v) = &visibility {
        if v != "public" && v != "private" {
            return Err(ImageError::BadRequest(format!(
                "Invalid visibility value: {v}"
            )));
        }
    }
    let filter = NamespaceFilter {
        admin: ctx.is_admin(),
        project: project(&ctx).map(str::to_owned),
        visibility,
        resource_types: param(&params, "resource_types")
            .map(|r| r.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    let conn = &mut *state.db.conn().await?;
    let mut all = db::metadef_namespace_list(conn, &filter).await?;
    // The key asked for, then created_at and id, as Glance pages them.
    let order = |a: &Namespace, b: &Namespace| {
        let o = cmp_key(a, b, &p.sort_key)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id));
        if p.desc {
            o.reverse()
        } else {
            o
        }
    };
    all.sort_by(order);
    if let Some(marker) = &p.marker {
        let m = load_namespace(&state, &ctx, marker, "get_metadef_namespace").await?;
        all.retain(|n| order(n, &m) == Ordering::Greater);
    }
    if let Some(limit) = p.limit {
        all.truncate(limit);
    }
    let mut items = Vec::with_capacity(all.len());
    for ns in &all {
        let mut m = namespace_json(ns);
        let associations = db::metadef_association_list(conn, ns).await?;
        if !associations.is_empty() {
            let a: Vec<Value> = associations.iter().map(association_json).collect();
            m.insert("resource_type_associations".to_owned(), Value::Array(a));
        }
        items.push(Value::Object(m));
    }
    let mut rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "marker")
        .cloned()
        .collect();
    let mut body = Map::new();
    body.insert("namespaces".to_owned(), Value::Array(items));
    let first = if rest.is_empty() {
        "/v2/metadefs/namespaces".to_owned()
    } else {
        format!("/v2/metadefs/namespaces?{}", query_string(&rest))
    };
    body.insert("first".to_owned(), json!(first));
    body.insert(
        "schema".to_owned(),
        json!("/v2/schemas/metadefs/namespaces"),
    );
    if let (Some(limit), Some(last)) = (p.limit, all.last()) {
        if limit > 0 && all.len() == limit {
            rest.push(("marker".to_owned(), last.namespace.clone()));
            body.insert(
                "next".to_owned(),
                json!(format!("/v2/metadefs/namespaces?{}", query_string(&rest))),
            );
        }
    }
    Ok(Json(Value::Object(body)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(name): GlancePath<String>,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Json<Value>, ImageError> {
    let mut ns = load_namespace(&state, &ctx, &name, "modify_metadef_namespace").await?;
    let body = body::object(&raw, SCHEMA)?;
    let b = parse_namespace(body)?;
    // The tree is checked as on create, but only the namespace changes.
    parse_content(body)?;
    require_admin(&ctx, "modify_metadef_namespace")?;
    // Glance replaces: what the body leaves out goes back to its default.
    ns.namespace = b.namespace;
    ns.display_name = b.display_name;
    ns.description = b.description;
    ns.visibility = b.visibility.unwrap_or_else(|| "private".to_owned());
    ns.protected = b.protected.unwrap_or(false);
    ns.owner = b
        .owner
        .or_else(|| project(&ctx).map(str::to_owned))
        .unwrap_or_default();
    ns.updated_at = time::now();
    if !db::metadef_namespace_update(&mut *state.db.conn().await?, &ns).await? {
        return Err(super::namespace_not_found(&name));
    }
    Ok(Json(Value::Object(namespace_json(&ns))))
}

fn protected_namespace(ns: &Namespace) -> impl FnOnce() -> String + '_ {
    move || {
        format!(
            "Metadata definition namespace {} is protected and cannot be deleted.",
            ns.namespace
        )
    }
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(name): GlancePath<String>,
) -> Result<StatusCode, ImageError> {
    let ns = load_namespace(&state, &ctx, &name, "delete_metadef_namespace").await?;
    require_admin(&ctx, "delete_metadef_namespace")?;
    check_unprotected(&ns, protected_namespace(&ns))?;
    if !db::metadef_namespace_delete(&mut *state.db.conn().await?, &ns).await? {
        return Err(super::namespace_not_found(&name));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Removes all of one kind of content (Glance checks the namespace's
/// delete policy and protection for these).
async fn delete_content(
    state: &AppState,
    ctx: &stratus_auth::RequestContext,
    name: &str,
    what: Content,
) -> Result<StatusCode, ImageError> {
    let ns = load_namespace(state, ctx, name, "delete_metadef_namespace").await?;
    require_admin(ctx, "delete_metadef_namespace")?;
    check_unprotected(&ns, protected_namespace(&ns))?;
    db::metadef_content_delete(&mut *state.db.conn().await?, &ns, what).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_objects(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(name): GlancePath<String>,
) -> Result<StatusCode, ImageError> {
    delete_content(&state, &ctx, &name, Content::Objects).await
}

pub async fn delete_properties(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(name): GlancePath<String>,
) -> Result<StatusCode, ImageError> {
    delete_content(&state, &ctx, &name, Content::Properties).await
}

pub async fn delete_tags(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(name): GlancePath<String>,
) -> Result<StatusCode, ImageError> {
    delete_content(&state, &ctx, &name, Content::Tags).await
}
