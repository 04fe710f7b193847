//! Server groups (affinity, anti-affinity and their soft forms) and members.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{get_s, Conn};
use crate::error::{ComputeError, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub user_id: String,
    pub policy: String,
    pub rules: serde_json::Value,
    pub members: Vec<String>,
    pub created_at: String,
}

fn row_group(r: &AnyRow) -> Result<ServerGroup> {
    Ok(ServerGroup {
        id: get_s(r, "id")?,
        name: get_s(r, "name")?,
        project_id: get_s(r, "project_id")?,
        user_id: get_s(r, "user_id")?,
        policy: get_s(r, "policy")?,
        rules: serde_json::from_str(&get_s(r, "rules_json")?)?,
        members: Vec::new(),
        created_at: get_s(r, "created_at")?,
    })
}

pub async fn server_group_create(conn: &mut Conn, g: &ServerGroup) -> Result<()> {
    sqlx::query(
        "INSERT INTO server_groups (id, name, project_id, user_id, policy, rules_json, created_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7)",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(&g.project_id)
    .bind(&g.user_id)
    .bind(&g.policy)
    .bind(g.rules.to_string())
    .bind(&g.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn server_group_get(conn: &mut Conn, id: &str) -> Result<ServerGroup> {
    let row = sqlx::query("SELECT * FROM server_groups WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            ComputeError::NotFound(format!("Instance group {id} could not be found."))
        })?;
    let mut g = row_group(&row)?;
    g.members = server_group_members(&mut *conn, id).await?;
    Ok(g)
}

pub async fn server_group_members(conn: &mut Conn, id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT instance_id FROM server_group_members WHERE group_id = $1 ORDER BY instance_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Groups of one project, or of all projects (`None`).
pub async fn server_group_list(conn: &mut Conn, project: Option<&str>) -> Result<Vec<ServerGroup>> {
    let rows = sqlx::query(
        "SELECT * FROM server_groups WHERE ($1 = '' OR project_id = $1) ORDER BY created_at, id",
    )
    .bind(project.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = rows.iter().map(row_group).collect::<Result<Vec<_>>>()?;
    for g in &mut out {
        g.members = server_group_members(&mut *conn, &g.id).await?;
    }
    Ok(out)
}

pub async fn server_group_count(conn: &mut Conn, project: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM server_groups WHERE project_id = $1")
            .bind(project)
            .fetch_one(&mut *conn)
            .await?,
    )
}

pub async fn server_group_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    let n = sqlx::query("DELETE FROM server_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if n.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Instance group {id} could not be found."
        )));
    }
    sqlx::query("DELETE FROM server_group_members WHERE group_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Hosts of the group's live members other than `except`.
pub async fn server_group_hosts(conn: &mut Conn, id: &str, except: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT i.host FROM server_group_members m JOIN instances i ON i.id = m.instance_id \
         WHERE m.group_id = $1 AND i.deleted = 0 AND i.host IS NOT NULL AND i.id <> $2",
    )
    .bind(id)
    .bind(except)
    .fetch_all(&mut *conn)
    .await?)
}
