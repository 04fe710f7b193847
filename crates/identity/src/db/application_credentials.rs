//! Application credentials: a secret bound to one user and one project, with
//! a subset of the user's roles there (Terraform and CI log in with these).

use sqlx::any::AnyRow;

use super::{flag, opt_text, text, Conn};
use crate::error::{IdentityError, Result};

#[derive(Clone, PartialEq)]
pub struct ApplicationCredential {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub secret_hash: String,
    pub description: String,
    /// Stored form (`time::to_db`); `None` never expires.
    pub expires_at: Option<String>,
    /// May create further application credentials and trusts.
    pub unrestricted: bool,
    pub role_ids: Vec<String>,
}

impl std::fmt::Debug for ApplicationCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret's hash stays out of logs.
        f.debug_struct("ApplicationCredential")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

const COLS: &str = "SELECT id, name, user_id, project_id, secret_hash, description, expires_at, unrestricted, roles \
                    FROM application_credentials";

fn from_row(r: &AnyRow) -> Result<ApplicationCredential> {
    let roles: Vec<String> = serde_json::from_str(&text(r, "roles")?).unwrap_or_default();
    Ok(ApplicationCredential {
        id: text(r, "id")?,
        name: text(r, "name")?,
        user_id: text(r, "user_id")?,
        project_id: text(r, "project_id")?,
        secret_hash: text(r, "secret_hash")?,
        description: text(r, "description")?,
        expires_at: opt_text(r, "expires_at")?,
        unrestricted: flag(r, "unrestricted")?,
        role_ids: roles,
    })
}

pub async fn application_credential_create(
    conn: &mut Conn,
    a: &ApplicationCredential,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO application_credentials (id, name, user_id, project_id, secret_hash, description, expires_at, \
         unrestricted, roles, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.user_id)
    .bind(&a.project_id)
    .bind(&a.secret_hash)
    .bind(&a.description)
    .bind(a.expires_at.clone())
    .bind(stratus_db::b2i(a.unrestricted))
    .bind(serde_json::Value::from(a.role_ids.clone()).to_string())
    .bind(stratus_common::time::to_db(stratus_common::time::now()))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        IdentityError::conflict_on(e, || {
            format!(
                "Conflict occurred attempting to store application_credential - Duplicate entry found with name {}.",
                a.name
            )
        })
    })?;
    Ok(())
}

pub async fn application_credential_get(
    conn: &mut Conn,
    id: &str,
) -> Result<ApplicationCredential> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("application credential", id))?;
    from_row(&row)
}

pub async fn application_credential_get_by_name(
    conn: &mut Conn,
    user_id: &str,
    name: &str,
) -> Result<ApplicationCredential> {
    let row = sqlx::query(&format!("{COLS} WHERE user_id = $1 AND name = $2"))
        .bind(user_id)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("application credential", name))?;
    from_row(&row)
}

pub async fn application_credential_list(
    conn: &mut Conn,
    user_id: &str,
    name: Option<&str>,
) -> Result<Vec<ApplicationCredential>> {
    let mut w = super::Where::default();
    w.text("user_id", Some(user_id)).text("name", name);
    w.fetch(conn, COLS, "name, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn application_credential_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM application_credentials WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    super::found(r, "application credential", id)
}

/// A deleted user's credentials go with it.
pub async fn application_credential_delete_for_user(conn: &mut Conn, user_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM application_credentials WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
