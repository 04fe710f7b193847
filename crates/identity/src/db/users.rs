//! Users, each in a domain, with an argon2 PHC password hash (never logged,
//! never returned).

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use stratus_common::ids::{DomainId, UserId};

use super::{extra, extra_text, flag, found, opt_text, text, Conn, Where};
use crate::error::{IdentityError, Result};

#[derive(Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub domain_id: DomainId,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub description: String,
    pub password_hash: Option<String>,
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash stays out of logs.
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("domain_id", &self.domain_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

const COLS: &str =
    "SELECT id, name, domain_id, enabled, default_project_id, description, password_hash, extra FROM users";

fn from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: UserId(text(r, "id")?),
        name: text(r, "name")?,
        domain_id: DomainId(text(r, "domain_id")?),
        enabled: flag(r, "enabled")?,
        default_project_id: opt_text(r, "default_project_id")?,
        description: text(r, "description")?,
        password_hash: opt_text(r, "password_hash")?,
        extra: extra(r)?,
    })
}

fn duplicate(u: &User) -> String {
    format!(
        "Conflict occurred attempting to store user - Duplicate entry found with name {} at domain ID {}.",
        u.name, u.domain_id
    )
}

pub async fn user_create(conn: &mut Conn, u: &User) -> Result<()> {
    let now = stratus_common::time::to_db(stratus_common::time::now());
    sqlx::query(
        "INSERT INTO users (id, name, domain_id, enabled, default_project_id, description, password_hash, \
         password_created_at, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(u.id.as_str())
    .bind(&u.name)
    .bind(u.domain_id.as_str())
    .bind(stratus_db::b2i(u.enabled))
    .bind(u.default_project_id.clone())
    .bind(&u.description)
    .bind(u.password_hash.clone())
    .bind(u.password_hash.as_ref().map(|_| now.clone()))
    .bind(extra_text(&u.extra))
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || duplicate(u)))?;
    Ok(())
}

pub async fn user_get(conn: &mut Conn, id: &str) -> Result<User> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("user", id))?;
    from_row(&row)
}

pub async fn user_get_by_name(conn: &mut Conn, domain_id: &str, name: &str) -> Result<User> {
    let row = sqlx::query(&format!("{COLS} WHERE domain_id = $1 AND name = $2"))
        .bind(domain_id)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("user", name))?;
    from_row(&row)
}

pub async fn user_list(
    conn: &mut Conn,
    name: Option<&str>,
    domain_id: Option<&str>,
    enabled: Option<bool>,
) -> Result<Vec<User>> {
    let mut w = Where::default();
    w.text("name", name)
        .text("domain_id", domain_id)
        .flag("enabled", enabled);
    w.fetch(conn, COLS, "name, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Updates everything but the password.
pub async fn user_update(conn: &mut Conn, u: &User) -> Result<()> {
    let r = sqlx::query(
        "UPDATE users SET name = $1, enabled = $2, default_project_id = $3, description = $4, extra = $5 WHERE id = $6",
    )
    .bind(&u.name)
    .bind(stratus_db::b2i(u.enabled))
    .bind(u.default_project_id.clone())
    .bind(&u.description)
    .bind(extra_text(&u.extra))
    .bind(u.id.as_str())
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || duplicate(u)))?;
    found(r, "user", u.id.as_str())
}

pub async fn user_set_password(conn: &mut Conn, id: &str, hash: &str) -> Result<()> {
    let r =
        sqlx::query("UPDATE users SET password_hash = $1, password_created_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(stratus_common::time::to_db(stratus_common::time::now()))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    found(r, "user", id)
}

pub async fn user_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "user", id)
}
