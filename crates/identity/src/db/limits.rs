//! Unified limits: registered limits (a service's default for a resource,
//! optionally per region) and limits (a project's or domain's override of
//! one registered limit). A limit stores only its registered limit's id and
//! shows that limit's service, region and resource, as Keystone's `limit`
//! table does.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{opt_text, text, Conn, Where};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredLimit {
    pub id: String,
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
    pub default_limit: i64,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub id: String,
    pub registered_limit_id: String,
    pub project_id: Option<String>,
    pub domain_id: Option<String>,
    pub resource_limit: i64,
    pub description: Option<String>,
    /// From the registered limit (read only).
    pub service_id: String,
    pub region_id: Option<String>,
    pub resource_name: String,
}

const REG_COLS: &str =
    "SELECT id, service_id, region_id, resource_name, default_limit, description \
                        FROM registered_limits";

fn reg_from_row(r: &AnyRow) -> Result<RegisteredLimit> {
    Ok(RegisteredLimit {
        id: text(r, "id")?,
        service_id: text(r, "service_id")?,
        region_id: opt_text(r, "region_id")?,
        resource_name: text(r, "resource_name")?,
        default_limit: r.try_get::<i64, _>("default_limit")?,
        description: opt_text(r, "description")?,
    })
}

fn missing_registered(id: &str) -> IdentityError {
    IdentityError::NotFoundMessage(format!("Could not find registered limit for {id}."))
}

fn missing_limit(id: &str) -> IdentityError {
    IdentityError::NotFoundMessage(format!("Could not find limit for {id}."))
}

fn found_or(r: sqlx::any::AnyQueryResult, missing: impl FnOnce() -> IdentityError) -> Result<()> {
    if r.rows_affected() == 0 {
        Err(missing())
    } else {
        Ok(())
    }
}

fn duplicate(kind: &str) -> IdentityError {
    IdentityError::Conflict(format!(
        "Conflict occurred attempting to store {kind} - Duplicate entry."
    ))
}

pub async fn registered_limit_create(conn: &mut Conn, l: &RegisteredLimit) -> Result<()> {
    if registered_limit_find(
        conn,
        &l.service_id,
        l.region_id.as_deref(),
        &l.resource_name,
    )
    .await?
    .is_some()
    {
        return Err(duplicate("registered_limit"));
    }
    sqlx::query(
        "INSERT INTO registered_limits (id, service_id, region_id, resource_name, default_limit, description) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&l.id)
    .bind(&l.service_id)
    .bind(l.region_id.clone())
    .bind(&l.resource_name)
    .bind(l.default_limit)
    .bind(l.description.clone())
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || "Conflict occurred attempting to store registered_limit - Duplicate entry.".to_owned()))?;
    Ok(())
}

/// The registered limit of `(service, region, resource)`; a `None` region
/// matches only a registered limit without one.
pub async fn registered_limit_find(
    conn: &mut Conn,
    service_id: &str,
    region_id: Option<&str>,
    resource_name: &str,
) -> Result<Option<RegisteredLimit>> {
    // Region ids are never empty, so '' stands for "no region" on both engines.
    let row = sqlx::query(&format!(
        "{REG_COLS} WHERE service_id = $1 AND COALESCE(region_id, '') = $2 AND resource_name = $3"
    ))
    .bind(service_id)
    .bind(region_id.unwrap_or(""))
    .bind(resource_name)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(reg_from_row).transpose()
}

pub async fn registered_limit_get(conn: &mut Conn, id: &str) -> Result<RegisteredLimit> {
    let row = sqlx::query(&format!("{REG_COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            IdentityError::NotFoundMessage(format!("Could not find registered limit for {id}."))
        })?;
    reg_from_row(&row)
}

#[derive(Debug, Default)]
pub struct LimitFilter<'a> {
    pub service_id: Option<&'a str>,
    pub region_id: Option<&'a str>,
    pub resource_name: Option<&'a str>,
    pub project_id: Option<&'a str>,
    pub domain_id: Option<&'a str>,
}

pub async fn registered_limit_list(
    conn: &mut Conn,
    f: &LimitFilter<'_>,
) -> Result<Vec<RegisteredLimit>> {
    let mut w = Where::default();
    w.text("service_id", f.service_id)
        .text("region_id", f.region_id)
        .text("resource_name", f.resource_name);
    w.fetch(conn, REG_COLS, "service_id, resource_name, id")
        .await?
        .iter()
        .map(reg_from_row)
        .collect()
}

/// Writes back a changed registered limit; the caller checked that no
/// limit refers to it when its service, region or resource changed.
pub async fn registered_limit_update(conn: &mut Conn, l: &RegisteredLimit) -> Result<()> {
    if let Some(other) = registered_limit_find(
        conn,
        &l.service_id,
        l.region_id.as_deref(),
        &l.resource_name,
    )
    .await?
    {
        if other.id != l.id {
            return Err(duplicate("registered_limit"));
        }
    }
    let r = sqlx::query(
        "UPDATE registered_limits SET service_id = $1, region_id = $2, resource_name = $3, \
         default_limit = $4, description = $5 WHERE id = $6",
    )
    .bind(&l.service_id)
    .bind(l.region_id.clone())
    .bind(&l.resource_name)
    .bind(l.default_limit)
    .bind(l.description.clone())
    .bind(&l.id)
    .execute(&mut *conn)
    .await?;
    found_or(r, || missing_registered(&l.id))
}

pub async fn registered_limit_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM registered_limits WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found_or(r, || missing_registered(id))
}

/// Whether any limit refers to the registered limit.
pub async fn registered_limit_in_use(conn: &mut Conn, id: &str) -> Result<bool> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM limits WHERE registered_limit_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

const LIMIT_COLS: &str =
    "SELECT l.id, l.registered_limit_id, l.project_id, l.domain_id, l.resource_limit, \
     l.description, r.service_id, r.region_id, r.resource_name \
     FROM limits l JOIN registered_limits r ON r.id = l.registered_limit_id";

fn limit_from_row(r: &AnyRow) -> Result<Limit> {
    Ok(Limit {
        id: text(r, "id")?,
        registered_limit_id: text(r, "registered_limit_id")?,
        project_id: opt_text(r, "project_id")?,
        domain_id: opt_text(r, "domain_id")?,
        resource_limit: r.try_get::<i64, _>("resource_limit")?,
        description: opt_text(r, "description")?,
        service_id: text(r, "service_id")?,
        region_id: opt_text(r, "region_id")?,
        resource_name: text(r, "resource_name")?,
    })
}

/// Inserts a limit of `l.registered_limit_id`; a second limit of the same
/// registered limit for the same project or domain is Keystone's 409.
pub async fn limit_create(conn: &mut Conn, l: &Limit) -> Result<()> {
    let (col, owner) = match (&l.project_id, &l.domain_id) {
        (Some(p), _) => ("project_id", p),
        (None, Some(d)) => ("domain_id", d),
        (None, None) => {
            return Err(IdentityError::Internal(
                "a limit without a project or domain".into(),
            ))
        }
    };
    let taken = sqlx::query(&format!(
        "SELECT id FROM limits WHERE registered_limit_id = $1 AND {col} = $2"
    ))
    .bind(&l.registered_limit_id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await?;
    if taken.is_some() {
        return Err(duplicate("limit"));
    }
    sqlx::query(
        "INSERT INTO limits (id, registered_limit_id, project_id, domain_id, resource_limit, description) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&l.id)
    .bind(&l.registered_limit_id)
    .bind(l.project_id.clone())
    .bind(l.domain_id.clone())
    .bind(l.resource_limit)
    .bind(l.description.clone())
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        IdentityError::conflict_on(e, || {
            "Conflict occurred attempting to store limit - Duplicate entry.".to_owned()
        })
    })?;
    Ok(())
}

pub async fn limit_get(conn: &mut Conn, id: &str) -> Result<Limit> {
    let row = sqlx::query(&format!("{LIMIT_COLS} WHERE l.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::NotFoundMessage(format!("Could not find limit for {id}.")))?;
    limit_from_row(&row)
}

pub async fn limit_list(conn: &mut Conn, f: &LimitFilter<'_>) -> Result<Vec<Limit>> {
    let mut w = Where::default();
    w.text("r.service_id", f.service_id)
        .text("r.region_id", f.region_id)
        .text("r.resource_name", f.resource_name)
        .text("l.project_id", f.project_id)
        .text("l.domain_id", f.domain_id);
    w.fetch(conn, LIMIT_COLS, "r.service_id, r.resource_name, l.id")
        .await?
        .iter()
        .map(limit_from_row)
        .collect()
}

/// Only the value and the description of a limit change.
pub async fn limit_update(conn: &mut Conn, l: &Limit) -> Result<()> {
    let r = sqlx::query("UPDATE limits SET resource_limit = $1, description = $2 WHERE id = $3")
        .bind(l.resource_limit)
        .bind(l.description.clone())
        .bind(&l.id)
        .execute(&mut *conn)
        .await?;
    found_or(r, || missing_limit(&l.id))
}

pub async fn limit_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM limits WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found_or(r, || missing_limit(id))
}

/// A deleted project's limits go with it (Keystone's
/// `delete_limits_for_project`).
pub async fn limit_delete_for_project(conn: &mut Conn, project_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM limits WHERE project_id = $1")
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A deleted domain's own limits go with it.
pub async fn limit_delete_for_domain(conn: &mut Conn, domain_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM limits WHERE domain_id = $1")
        .bind(domain_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
