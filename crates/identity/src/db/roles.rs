//! Roles (global ones; `domain_id` '' stored for "none") and implied roles
//! (admin implies member implies reader, as Keystone's bootstrap makes them).

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_common::ids::RoleId;

use super::{extra, extra_text, found, text, Conn, Where};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: RoleId,
    pub name: String,
    /// `None` for a global role.
    pub domain_id: Option<String>,
    pub description: String,
    pub extra: Map<String, Value>,
}

const COLS: &str = "SELECT id, name, domain_id, description, extra FROM roles";

fn from_row(r: &AnyRow) -> Result<Role> {
    let domain = text(r, "domain_id")?;
    Ok(Role {
        id: RoleId(text(r, "id")?),
        name: text(r, "name")?,
        domain_id: (!domain.is_empty()).then_some(domain),
        description: text(r, "description")?,
        extra: extra(r)?,
    })
}

fn duplicate(r: &Role) -> String {
    format!(
        "Conflict occurred attempting to store role - Duplicate entry found with name {}.",
        r.name
    )
}

pub async fn role_create(conn: &mut Conn, r: &Role) -> Result<()> {
    sqlx::query(
        "INSERT INTO roles (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(r.id.as_str())
    .bind(&r.name)
    .bind(r.domain_id.clone().unwrap_or_default())
    .bind(&r.description)
    .bind(extra_text(&r.extra))
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || duplicate(r)))?;
    Ok(())
}

pub async fn role_get(conn: &mut Conn, id: &str) -> Result<Role> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("role", id))?;
    from_row(&row)
}

/// A global role by name.
pub async fn role_get_by_name(conn: &mut Conn, name: &str) -> Result<Role> {
    let row = sqlx::query(&format!("{COLS} WHERE domain_id = '' AND name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("role", name))?;
    from_row(&row)
}

pub async fn role_list(
    conn: &mut Conn,
    name: Option<&str>,
    domain_id: Option<&str>,
) -> Result<Vec<Role>> {
    let mut w = Where::default();
    w.text("name", name).eq(
        "domain_id",
        super::Bind::Text(domain_id.unwrap_or("").to_owned()),
    );
    w.fetch(conn, COLS, "name, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn role_update(conn: &mut Conn, r: &Role) -> Result<()> {
    let res = sqlx::query("UPDATE roles SET name = $1, description = $2, extra = $3 WHERE id = $4")
        .bind(&r.name)
        .bind(&r.description)
        .bind(extra_text(&r.extra))
        .bind(r.id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|e| IdentityError::conflict_on(e, || duplicate(r)))?;
    found(res, "role", r.id.as_str())
}

/// Deletes a role with its grants and implications.
pub async fn role_delete(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM assignments WHERE role_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM implied_roles WHERE prior_role_id = $1 OR implied_role_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM roles WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "role", id)
}

pub async fn implied_role_create(conn: &mut Conn, prior: &str, implied: &str) -> Result<()> {
    sqlx::query("INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(prior)
        .bind(implied)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn implied_role_delete(conn: &mut Conn, prior: &str, implied: &str) -> Result<bool> {
    let r =
        sqlx::query("DELETE FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2")
            .bind(prior)
            .bind(implied)
            .execute(&mut *conn)
            .await?;
    Ok(r.rows_affected() > 0)
}

/// Every `(prior, implied)` pair.
pub async fn implied_role_list(conn: &mut Conn) -> Result<Vec<(String, String)>> {
    sqlx::query("SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id, implied_role_id")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
        .collect()
}
