//! Groups of users; roles granted to a group reach its members.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use stratus_common::ids::DomainId;

use super::{extra, extra_text, found, text, Conn, Where};
use crate::error::{IdentityError, Result};
use crate::ids::GroupId;

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub domain_id: DomainId,
    pub description: String,
    pub extra: Map<String, Value>,
}

const COLS: &str = "SELECT id, name, domain_id, description, extra FROM groups";

fn from_row(r: &AnyRow) -> Result<Group> {
    Ok(Group {
        id: GroupId(text(r, "id")?),
        name: text(r, "name")?,
        domain_id: DomainId(text(r, "domain_id")?),
        description: text(r, "description")?,
        extra: extra(r)?,
    })
}

fn duplicate(g: &Group) -> String {
    format!(
        "Conflict occurred attempting to store group - Duplicate entry found with name {} at domain ID {}.",
        g.name, g.domain_id
    )
}

pub async fn group_create(conn: &mut Conn, g: &Group) -> Result<()> {
    sqlx::query(
        "INSERT INTO groups (id, name, domain_id, description, extra) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(g.id.as_str())
    .bind(&g.name)
    .bind(g.domain_id.as_str())
    .bind(&g.description)
    .bind(extra_text(&g.extra))
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || duplicate(g)))?;
    Ok(())
}

pub async fn group_get(conn: &mut Conn, id: &str) -> Result<Group> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("group", id))?;
    from_row(&row)
}

pub async fn group_list(
    conn: &mut Conn,
    name: Option<&str>,
    domain_id: Option<&str>,
) -> Result<Vec<Group>> {
    let mut w = Where::default();
    w.text("name", name).text("domain_id", domain_id);
    w.fetch(conn, COLS, "name, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn group_update(conn: &mut Conn, g: &Group) -> Result<()> {
    let r = sqlx::query("UPDATE groups SET name = $1, description = $2, extra = $3 WHERE id = $4")
        .bind(&g.name)
        .bind(&g.description)
        .bind(extra_text(&g.extra))
        .bind(g.id.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|e| IdentityError::conflict_on(e, || duplicate(g)))?;
    found(r, "group", g.id.as_str())
}

pub async fn group_delete(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM group_members WHERE group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM groups WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "group", id)
}

pub async fn group_add_member(conn: &mut Conn, group_id: &str, user_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn group_remove_member(conn: &mut Conn, group_id: &str, user_id: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn group_has_member(conn: &mut Conn, group_id: &str, user_id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND user_id = $2",
    )
    .bind(group_id)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

pub async fn group_member_ids(conn: &mut Conn, group_id: &str) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY user_id",
        )
        .bind(group_id)
        .fetch_all(&mut *conn)
        .await?,
    )
}

/// The groups a user belongs to.
pub async fn group_ids_of_user(conn: &mut Conn, user_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT group_id FROM group_members WHERE user_id = $1 ORDER BY group_id",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn group_remove_user_everywhere(conn: &mut Conn, user_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM group_members WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
