//! Domains: the namespace of users, groups and projects (`default` is Keystone's).

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use stratus_common::ids::DomainId;

use super::{extra, extra_text, flag, found, text, Conn, Where};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub id: DomainId,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Map<String, Value>,
}

const COLS: &str = "SELECT id, name, description, enabled, extra FROM domains";

fn from_row(r: &AnyRow) -> Result<Domain> {
    Ok(Domain {
        id: DomainId(text(r, "id")?),
        name: text(r, "name")?,
        description: text(r, "description")?,
        enabled: flag(r, "enabled")?,
        extra: extra(r)?,
    })
}

fn duplicate(name: &str) -> String {
    format!(
        "Conflict occurred attempting to store domain - Duplicate entry found with name {name}."
    )
}

pub async fn domain_create(conn: &mut Conn, d: &Domain) -> Result<()> {
    sqlx::query("INSERT INTO domains (id, name, description, enabled, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(d.id.as_str())
        .bind(&d.name)
        .bind(&d.description)
        .bind(stratus_db::b2i(d.enabled))
        .bind(extra_text(&d.extra))
        .bind(stratus_common::time::to_db(stratus_common::time::now()))
        .execute(&mut *conn)
        .await
        .map_err(|e| IdentityError::conflict_on(e, || duplicate(&d.name)))?;
    Ok(())
}

pub async fn domain_get(conn: &mut Conn, id: &str) -> Result<Domain> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", id))?;
    from_row(&row)
}

/// By name, case-insensitively as Keystone on MySQL compares.
pub async fn domain_get_by_name(conn: &mut Conn, name: &str) -> Result<Domain> {
    let rows = sqlx::query(&format!(
        "{COLS} WHERE LOWER(name) = LOWER($1) ORDER BY name"
    ))
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    // An exact match wins over a case-insensitive one.
    let row = rows
        .iter()
        .find(|r| text(r, "name").is_ok_and(|n| n == name))
        .or(rows.first())
        .ok_or_else(|| IdentityError::not_found("domain", name))?;
    from_row(row)
}

pub async fn domain_list(
    conn: &mut Conn,
    name: Option<&str>,
    enabled: Option<bool>,
) -> Result<Vec<Domain>> {
    let mut w = Where::default();
    w.text("name", name).flag("enabled", enabled);
    w.fetch(conn, COLS, "name")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn domain_update(conn: &mut Conn, d: &Domain) -> Result<()> {
    let r = sqlx::query(
        "UPDATE domains SET name = $1, description = $2, enabled = $3, extra = $4 WHERE id = $5",
    )
    .bind(&d.name)
    .bind(&d.description)
    .bind(stratus_db::b2i(d.enabled))
    .bind(extra_text(&d.extra))
    .bind(d.id.as_str())
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || duplicate(&d.name)))?;
    found(r, "domain", d.id.as_str())
}

pub async fn domain_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM domains WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "domain", id)
}
