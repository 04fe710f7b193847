//! Access rules of application credentials: `(service, method, path)` that
//! a credential may call. A rule belongs to a user and is shared by every
//! credential of that user that names the same triple (Keystone's
//! `access_rule` and `application_credential_access_rule` tables).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{found, text, Conn};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub id: String,
    pub user_id: String,
    pub service: String,
    pub path: String,
    pub method: String,
}

const COLS: &str = "SELECT id, user_id, service, path, method FROM access_rules";

fn from_row(r: &AnyRow) -> Result<AccessRule> {
    Ok(AccessRule {
        id: text(r, "id")?,
        user_id: text(r, "user_id")?,
        service: text(r, "service")?,
        path: text(r, "path")?,
        method: text(r, "method")?,
    })
}

pub async fn access_rule_create(conn: &mut Conn, a: &AccessRule) -> Result<()> {
    sqlx::query(
        "INSERT INTO access_rules (id, user_id, service, path, method) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&a.id)
    .bind(&a.user_id)
    .bind(&a.service)
    .bind(&a.path)
    .bind(&a.method)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        IdentityError::conflict_on(e, || {
            "Conflict occurred attempting to store access_rule - Duplicate entry.".to_owned()
        })
    })?;
    Ok(())
}

/// The user's rule with this id.
pub async fn access_rule_get(conn: &mut Conn, user_id: &str, id: &str) -> Result<AccessRule> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1 AND user_id = $2"))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("Access Rule", id))?;
    from_row(&row)
}

/// The user's rule for exactly this triple, if there is one.
pub async fn access_rule_find(
    conn: &mut Conn,
    user_id: &str,
    service: &str,
    path: &str,
    method: &str,
) -> Result<Option<AccessRule>> {
    let row = sqlx::query(&format!(
        "{COLS} WHERE user_id = $1 AND service = $2 AND path = $3 AND method = $4"
    ))
    .bind(user_id)
    .bind(service)
    .bind(path)
    .bind(method)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

#[derive(Debug, Default)]
pub struct AccessRuleFilter<'a> {
    pub service: Option<&'a str>,
    pub path: Option<&'a str>,
    pub method: Option<&'a str>,
}

pub async fn access_rule_list(
    conn: &mut Conn,
    user_id: &str,
    f: &AccessRuleFilter<'_>,
) -> Result<Vec<AccessRule>> {
    let mut w = super::Where::default();
    w.text("user_id", Some(user_id))
        .text("service", f.service)
        .text("path", f.path)
        .text("method", f.method);
    w.fetch(conn, COLS, "service, path, method, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// The rules of one application credential, in the order they were given.
pub async fn access_rule_list_for_credential(
    conn: &mut Conn,
    credential_id: &str,
) -> Result<Vec<AccessRule>> {
    sqlx::query(
        "SELECT r.id, r.user_id, r.service, r.path, r.method FROM access_rules r \
         JOIN application_credential_access_rules c ON c.access_rule_id = r.id \
         WHERE c.application_credential_id = $1 ORDER BY r.service, r.path, r.method, r.id",
    )
    .bind(credential_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

pub async fn access_rule_link(conn: &mut Conn, credential_id: &str, rule_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO application_credential_access_rules (application_credential_id, access_rule_id) \
         VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(credential_id)
    .bind(rule_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether any application credential uses the rule.
pub async fn access_rule_in_use(conn: &mut Conn, id: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM application_credential_access_rules WHERE access_rule_id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

pub async fn access_rule_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM access_rules WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "Access Rule", id)
}

/// A deleted credential's links go with it (its rules stay, as in Keystone).
pub async fn access_rule_unlink_credential(conn: &mut Conn, credential_id: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM application_credential_access_rules WHERE application_credential_id = $1",
    )
    .bind(credential_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A deleted user's rules and their links go with it.
pub async fn access_rule_delete_for_user(conn: &mut Conn, user_id: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM application_credential_access_rules WHERE access_rule_id IN \
         (SELECT id FROM access_rules WHERE user_id = $1)",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM access_rules WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
