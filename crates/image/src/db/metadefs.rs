//! Metadata definitions: namespaces and what they hold (objects, properties,
//! tags, resource type associations). A namespace is found by its name; its
//! content refers to it by an internal id so that a rename is one row.
//! Duplicates are refused with Glance's messages; a change of several rows
//! (a namespace with its content, replacing all tags, a cascade delete) is
//! one transaction.

use serde_json::{Map, Value};
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Connection, Row};
use stratus_db::{b2i, i2b};

use super::{bind_all, Arg, Conn};
use crate::domain::metadef::{
    MetadefObject, MetadefProperty, MetadefTag, Namespace, NamespaceContent, ResourceType,
    ResourceTypeAssociation,
};
use crate::error::ImageError;

fn corrupt(what: &str) -> ImageError {
    ImageError::Internal(format!("stored metadef {what} is invalid"))
}

fn when(r: &AnyRow, col: &str) -> Result<chrono::DateTime<chrono::Utc>, ImageError> {
    let s: String = r.try_get(col)?;
    time::from_db(&s).ok_or_else(|| corrupt(col))
}

fn json_map(s: &str, what: &str) -> Result<Map<String, Value>, ImageError> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(corrupt(what)),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---- namespaces

const NS_COLUMNS: &str =
    "id, namespace, display_name, description, visibility, protected, owner, created_at, updated_at";

fn namespace_from_row(r: &AnyRow) -> Result<Namespace, ImageError> {
    Ok(Namespace {
        id: r.try_get("id")?,
        namespace: r.try_get("namespace")?,
        display_name: r.try_get("display_name")?,
        description: r.try_get("description")?,
        visibility: r.try_get("visibility")?,
        protected: i2b(r.try_get("protected")?),
        owner: r.try_get("owner")?,
        created_at: when(r, "created_at")?,
        updated_at: when(r, "updated_at")?,
    })
}

pub fn duplicate_namespace(name: &str) -> ImageError {
    ImageError::Conflict(format!(
        "The metadata definition namespace={name} already exists."
    ))
}

pub async fn metadef_namespace_get(
    conn: &mut Conn,
    name: &str,
) -> Result<Option<Namespace>, ImageError> {
    let row = sqlx::query(&format!(
        "SELECT {NS_COLUMNS} FROM metadef_namespaces WHERE namespace = $1"
    ))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(namespace_from_row).transpose()
}

/// Which namespaces a listing shows.
#[derive(Clone, Debug, Default)]
pub struct NamespaceFilter {
    /// Admins see every namespace; others public ones and their project's.
    pub admin: bool,
    pub project: Option<String>,
    pub visibility: Option<String>,
    /// Associated with any of these resource types.
    pub resource_types: Vec<String>,
}

/// Namespaces matching `f`, unsorted.
pub async fn metadef_namespace_list(
    conn: &mut Conn,
    f: &NamespaceFilter,
) -> Result<Vec<Namespace>, ImageError> {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    let arg = |args: &mut Vec<Arg>, s: &str| {
        args.push(Arg::Text(s.to_owned()));
        format!("${}", args.len())
    };
    if !f.admin {
        match &f.project {
            Some(p) => {
                let p = arg(&mut args, p);
                clauses.push(format!("(visibility = 'public' OR owner = {p})"));
            }
            None => clauses.push("visibility = 'public'".to_owned()),
        }
    }
    if let Some(v) = &f.visibility {
        let p = arg(&mut args, v);
        clauses.push(format!("visibility = {p}"));
    }
    if !f.resource_types.is_empty() {
        let ps: Vec<String> = f.resource_types.iter().map(|r| arg(&mut args, r)).collect();
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM metadef_namespace_resource_types a \
             JOIN metadef_resource_types t ON t.id = a.resource_type_id \
             WHERE a.namespace_id = metadef_namespaces.id AND t.name IN ({}))",
            ps.join(", ")
        ));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let sql = format!("SELECT {NS_COLUMNS} FROM metadef_namespaces{filter}");
    let rows = bind_all(sqlx::query(&sql), &args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(namespace_from_row).collect()
}

/// Creates a namespace with its content, all or nothing.
pub async fn metadef_namespace_insert(
    conn: &mut Conn,
    ns: &Namespace,
    content: &NamespaceContent,
) -> Result<(), ImageError> {
    let mut tx = conn.begin().await?;
    let r = sqlx::query(&format!(
        "INSERT INTO metadef_namespaces ({NS_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT DO NOTHING"
    ))
    .bind(&ns.id)
    .bind(&ns.namespace)
    .bind(&ns.display_name)
    .bind(&ns.description)
    .bind(&ns.visibility)
    .bind(b2i(ns.protected))
    .bind(&ns.owner)
    .bind(time::to_db(ns.created_at))
    .bind(time::to_db(ns.updated_at))
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Err(duplicate_namespace(&ns.namespace));
    }
    for a in &content.associations {
        metadef_association_insert(&mut tx, ns, a).await?;
    }
    for o in &content.objects {
        metadef_object_insert(&mut tx, ns, o).await?;
    }
    for p in &content.properties {
        metadef_property_insert(&mut tx, ns, p).await?;
    }
    for t in &content.tags {
        metadef_tag_insert(&mut tx, ns, t).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Saves `ns` (found by its id: the name may change). False when it is gone.
pub async fn metadef_namespace_update(conn: &mut Conn, ns: &Namespace) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    let taken: Option<String> =
        sqlx::query_scalar("SELECT id FROM metadef_namespaces WHERE namespace = $1 AND id <> $2")
            .bind(&ns.namespace)
            .bind(&ns.id)
            .fetch_optional(&mut *tx)
            .await?;
    if taken.is_some() {
        return Err(ImageError::Conflict(format!(
            "Invalid update. It would result in a duplicate metadata definition namespace \
             with the same name of {}",
            ns.namespace
        )));
    }
    let r = sqlx::query(
        "UPDATE metadef_namespaces SET namespace = $1, display_name = $2, description = $3, \
         visibility = $4, protected = $5, owner = $6, updated_at = $7 WHERE id = $8",
    )
    .bind(&ns.namespace)
    .bind(&ns.display_name)
    .bind(&ns.description)
    .bind(&ns.visibility)
    .bind(b2i(ns.protected))
    .bind(&ns.owner)
    .bind(time::to_db(ns.updated_at))
    .bind(&ns.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

/// What of a namespace's content to remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Objects,
    Properties,
    Tags,
    Associations,
}

impl Content {
    fn table(self) -> &'static str {
        match self {
            Self::Objects => "metadef_objects",
            Self::Properties => "metadef_properties",
            Self::Tags => "metadef_tags",
            Self::Associations => "metadef_namespace_resource_types",
        }
    }
}

/// Removes all of one kind of a namespace's content.
pub async fn metadef_content_delete(
    conn: &mut Conn,
    ns: &Namespace,
    what: Content,
) -> Result<u64, ImageError> {
    let r = sqlx::query(&format!(
        "DELETE FROM {} WHERE namespace_id = $1",
        what.table()
    ))
    .bind(&ns.id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// Removes a namespace and everything in it. False when it was gone.
pub async fn metadef_namespace_delete(conn: &mut Conn, ns: &Namespace) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    for what in [
        Content::Tags,
        Content::Objects,
        Content::Properties,
        Content::Associations,
    ] {
        metadef_content_delete(&mut tx, ns, what).await?;
    }
    let r = sqlx::query("DELETE FROM metadef_namespaces WHERE id = $1")
        .bind(&ns.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

// ---- objects

fn object_from_row(r: &AnyRow) -> Result<MetadefObject, ImageError> {
    let required: String = r.try_get("required")?;
    let required: Vec<String> =
        serde_json::from_str(&required).map_err(|_| corrupt("object required"))?;
    let schema: String = r.try_get("json_schema")?;
    Ok(MetadefObject {
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        required,
        properties: json_map(&schema, "object properties")?,
        created_at: when(r, "created_at")?,
        updated_at: when(r, "updated_at")?,
    })
}

fn duplicate_object(ns: &Namespace, name: &str) -> ImageError {
    ImageError::Conflict(format!(
        "A metadata definition object with name={name} already exists in namespace={}.",
        ns.namespace
    ))
}

const OBJECT_COLUMNS: &str = "name, description, required, json_schema, created_at, updated_at";

pub async fn metadef_object_list(
    conn: &mut Conn,
    ns: &Namespace,
) -> Result<Vec<MetadefObject>, ImageError> {
    sqlx::query(&format!(
        "SELECT {OBJECT_COLUMNS} FROM metadef_objects WHERE namespace_id = $1 \
         ORDER BY created_at, name"
    ))
    .bind(&ns.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(object_from_row)
    .collect()
}

pub async fn metadef_object_get(
    conn: &mut Conn,
    ns: &Namespace,
    name: &str,
) -> Result<Option<MetadefObject>, ImageError> {
    let row = sqlx::query(&format!(
        "SELECT {OBJECT_COLUMNS} FROM metadef_objects WHERE namespace_id = $1 AND name = $2"
    ))
    .bind(&ns.id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(object_from_row).transpose()
}

fn object_json(o: &MetadefObject) -> Result<(String, String), ImageError> {
    let required = serde_json::to_string(&o.required)
        .map_err(|e| ImageError::Internal(format!("encoding object: {e}")))?;
    let schema = serde_json::to_string(&o.properties)
        .map_err(|e| ImageError::Internal(format!("encoding object: {e}")))?;
    Ok((required, schema))
}

pub async fn metadef_object_insert(
    conn: &mut Conn,
    ns: &Namespace,
    o: &MetadefObject,
) -> Result<(), ImageError> {
    let (required, schema) = object_json(o)?;
    let r = sqlx::query(
        "INSERT INTO metadef_objects (id, namespace_id, name, description, required, json_schema, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(new_id())
    .bind(&ns.id)
    .bind(&o.name)
    .bind(&o.description)
    .bind(required)
    .bind(schema)
    .bind(time::to_db(o.created_at))
    .bind(time::to_db(o.updated_at))
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(duplicate_object(ns, &o.name));
    }
    Ok(())
}

/// Replaces object `old_name` with `o` (which may have another name).
/// False when there is no such object.
pub async fn metadef_object_update(
    conn: &mut Conn,
    ns: &Namespace,
    old_name: &str,
    o: &MetadefObject,
) -> Result<bool, ImageError> {
    let (required, schema) = object_json(o)?;
    let mut tx = conn.begin().await?;
    if o.name != old_name && metadef_object_get(&mut tx, ns, &o.name).await?.is_some() {
        return Err(duplicate_object(ns, &o.name));
    }
    let r = sqlx::query(
        "UPDATE metadef_objects SET name = $1, description = $2, required = $3, json_schema = $4, \
         updated_at = $5 WHERE namespace_id = $6 AND name = $7",
    )
    .bind(&o.name)
    .bind(&o.description)
    .bind(required)
    .bind(schema)
    .bind(time::to_db(o.updated_at))
    .bind(&ns.id)
    .bind(old_name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

pub async fn metadef_object_delete(
    conn: &mut Conn,
    ns: &Namespace,
    name: &str,
) -> Result<bool, ImageError> {
    let r = sqlx::query("DELETE FROM metadef_objects WHERE namespace_id = $1 AND name = $2")
        .bind(&ns.id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

// ---- properties

fn property_from_row(r: &AnyRow) -> Result<MetadefProperty, ImageError> {
    let schema: String = r.try_get("json_schema")?;
    Ok(MetadefProperty {
        name: r.try_get("name")?,
        schema: json_map(&schema, "property")?,
    })
}

fn duplicate_property(ns: &Namespace, name: &str) -> ImageError {
    ImageError::Conflict(format!(
        "A metadata definition property with name={name} already exists in namespace={}.",
        ns.namespace
    ))
}

pub async fn metadef_property_list(
    conn: &mut Conn,
    ns: &Namespace,
) -> Result<Vec<MetadefProperty>, ImageError> {
    sqlx::query(
        "SELECT name, json_schema FROM metadef_properties WHERE namespace_id = $1 ORDER BY name",
    )
    .bind(&ns.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(property_from_row)
    .collect()
}

pub async fn metadef_property_get(
    conn: &mut Conn,
    ns: &Namespace,
    name: &str,
) -> Result<Option<MetadefProperty>, ImageError> {
    let row = sqlx::query(
        "SELECT name, json_schema FROM metadef_properties WHERE namespace_id = $1 AND name = $2",
    )
    .bind(&ns.id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(property_from_row).transpose()
}

fn schema_text(p: &MetadefProperty) -> Result<String, ImageError> {
    serde_json::to_string(&p.schema)
        .map_err(|e| ImageError::Internal(format!("encoding property: {e}")))
}

pub async fn metadef_property_insert(
    conn: &mut Conn,
    ns: &Namespace,
    p: &MetadefProperty,
) -> Result<(), ImageError> {
    let now = time::to_db(time::now());
    let r = sqlx::query(
        "INSERT INTO metadef_properties (id, namespace_id, name, json_schema, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(new_id())
    .bind(&ns.id)
    .bind(&p.name)
    .bind(schema_text(p)?)
    .bind(&now)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(duplicate_property(ns, &p.name));
    }
    Ok(())
}

/// Replaces property `old_name` with `p`. False when there is no such one.
pub async fn metadef_property_update(
    conn: &mut Conn,
    ns: &Namespace,
    old_name: &str,
    p: &MetadefProperty,
) -> Result<bool, ImageError> {
    let schema = schema_text(p)?;
    let mut tx = conn.begin().await?;
    if p.name != old_name && metadef_property_get(&mut tx, ns, &p.name).await?.is_some() {
        return Err(duplicate_property(ns, &p.name));
    }
    let r = sqlx::query(
        "UPDATE metadef_properties SET name = $1, json_schema = $2, updated_at = $3 \
         WHERE namespace_id = $4 AND name = $5",
    )
    .bind(&p.name)
    .bind(schema)
    .bind(time::to_db(time::now()))
    .bind(&ns.id)
    .bind(old_name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

pub async fn metadef_property_delete(
    conn: &mut Conn,
    ns: &Namespace,
    name: &str,
) -> Result<bool, ImageError> {
    let r = sqlx::query("DELETE FROM metadef_properties WHERE namespace_id = $1 AND name = $2")
        .bind(&ns.id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

// ---- tags

fn tag_from_row(r: &AnyRow) -> Result<MetadefTag, ImageError> {
    Ok(MetadefTag {
        name: r.try_get("name")?,
        created_at: when(r, "created_at")?,
        updated_at: when(r, "updated_at")?,
    })
}

fn duplicate_tag(ns: &Namespace, name: &str) -> ImageError {
    ImageError::Conflict(format!(
        "A metadata tag with name={name} already exists in namespace={}. \
         (Please note that metadata tag names are case insensitive).",
        ns.namespace
    ))
}

/// A namespace's tags, unsorted.
pub async fn metadef_tag_list(
    conn: &mut Conn,
    ns: &Namespace,
) -> Result<Vec<MetadefTag>, ImageError> {
    sqlx::query("SELECT name, created_at, updated_at FROM metadef_tags WHERE namespace_id = $1")
        .bind(&ns.id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(tag_from_row)
        .collect()
}

pub async fn metadef_tag_get(
    conn: &mut Conn,
    ns: &Namespace,
    name: &str,
) -> Result<Option<MetadefTag>, ImageError> {
    let row = sqlx::query(
        "SELECT name, created_at, updated_at FROM metadef_tags WHERE namespace_id = $1 AND name = $2",
    )
    .bind(&ns.id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(tag_from_row).transpose()
}

pub async fn metadef_tag_insert(
    conn: &mut Conn,
    ns: &Namespace,
    t: &MetadefTag,
) -> Result<(), ImageError> {
    let r = sqlx::query(
        "INSERT INTO metadef_tags (id, namespace_id, name, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(new_id())
    .bind(&ns.id)
    .bind(&t.name)
    .bind(time::to_db(t.created_at))
    .bind(time::to_db(t.updated_at))
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(duplicate_tag(ns, &t.name));
    }
    Ok(())
}

/// Adds `tags`, after removing every existing tag unless `append`; a
/// duplicate (among them or with a kept tag) changes nothing.
pub async fn metadef_tags_set(
    conn: &mut Conn,
    ns: &Namespace,
    tags: &[MetadefTag],
    append: bool,
) -> Result<(), ImageError> {
    let mut tx = conn.begin().await?;
    if !append {
        metadef_content_delete(&mut tx, ns, Content::Tags).await?;
    }
    for t in tags {
        metadef_tag_insert(&mut tx, ns, t).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Renames tag `old_name`. False when there is no such tag.
pub async fn metadef_tag_rename(
    conn: &mut Conn,
    ns: &Namespace,
    old_name: &str,
    new_name: &str,
) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    if new_name != old_name && metadef_tag_get(&mut tx, ns, new_name).await?.is_some() {
        return Err(duplicate_tag(ns, new_name));
    }
    let r = sqlx::query(
        "UPDATE metadef_tags SET name = $1, updated_at = $2 WHERE namespace_id = $3 AND name = $4",
    )
    .bind(new_name)
    .bind(time::to_db(time::now()))
    .bind(&ns.id)
    .bind(old_name)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

pub async fn metadef_tag_delete(
    conn: &mut Conn,
    ns: &Namespace,
    name: &str,
) -> Result<bool, ImageError> {
    let r = sqlx::query("DELETE FROM metadef_tags WHERE namespace_id = $1 AND name = $2")
        .bind(&ns.id)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

// ---- resource types and associations

pub async fn metadef_resource_type_list(conn: &mut Conn) -> Result<Vec<ResourceType>, ImageError> {
    sqlx::query(
        "SELECT name, protected, created_at, updated_at FROM metadef_resource_types ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ResourceType {
            name: r.try_get("name")?,
            protected: i2b(r.try_get("protected")?),
            created_at: when(r, "created_at")?,
            updated_at: when(r, "updated_at")?,
        })
    })
    .collect()
}

pub async fn metadef_association_list(
    conn: &mut Conn,
    ns: &Namespace,
) -> Result<Vec<ResourceTypeAssociation>, ImageError> {
    sqlx::query(
        "SELECT t.name, a.prefix, a.properties_target, a.created_at, a.updated_at \
         FROM metadef_namespace_resource_types a \
         JOIN metadef_resource_types t ON t.id = a.resource_type_id \
         WHERE a.namespace_id = $1 ORDER BY a.created_at, t.name",
    )
    .bind(&ns.id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ResourceTypeAssociation {
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            properties_target: r.try_get("properties_target")?,
            created_at: when(r, "created_at")?,
            updated_at: when(r, "updated_at")?,
        })
    })
    .collect()
}

/// Associates `ns` with resource type `a.name`, creating the resource type
/// when it is new (as Glance does).
pub async fn metadef_association_insert(
    conn: &mut Conn,
    ns: &Namespace,
    a: &ResourceTypeAssociation,
) -> Result<(), ImageError> {
    let mut tx = conn.begin().await?;
    let created = time::to_db(a.created_at);
    sqlx::query(
        "INSERT INTO metadef_resource_types (id, name, protected, created_at, updated_at) \
         VALUES ($1, $2, 0, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(new_id())
    .bind(&a.name)
    .bind(&created)
    .bind(&created)
    .execute(&mut *tx)
    .await?;
    let type_id: String =
        sqlx::query_scalar("SELECT id FROM metadef_resource_types WHERE name = $1")
            .bind(&a.name)
            .fetch_one(&mut *tx)
            .await?;
    let r = sqlx::query(
        "INSERT INTO metadef_namespace_resource_types (resource_type_id, namespace_id, \
         properties_target, prefix, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING",
    )
    .bind(type_id)
    .bind(&ns.id)
    .bind(&a.properties_target)
    .bind(&a.prefix)
    .bind(&created)
    .bind(time::to_db(a.updated_at))
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Err(ImageError::Conflict(format!(
            "The metadata definition resource-type association of resource-type={} to \
             namespace={} already exists.",
            a.name, ns.namespace
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// Removes the association of `ns` with resource type `name`. False when
/// there is none.
pub async fn metadef_association_delete(
    conn: &mut Conn,
    ns: &Namespace,
    name: &str,
) -> Result<bool, ImageError> {
    let r = sqlx::query(
        "DELETE FROM metadef_namespace_resource_types WHERE namespace_id = $1 AND \
         resource_type_id IN (SELECT id FROM metadef_resource_types WHERE name = $2)",
    )
    .bind(&ns.id)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
