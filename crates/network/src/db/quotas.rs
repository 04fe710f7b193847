//! Per-project quota overrides (defaults come from the configuration).

use sqlx::Row;
use stratus_common::ids::ProjectId;

use super::Conn;
use crate::error::Result;

/// The overrides of one project: `(resource, limit)`.
pub async fn quota_get(conn: &mut Conn, project: &ProjectId) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT resource, hard_limit FROM quotas WHERE project_id = $1")
        .bind(project.as_str())
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("resource")?, r.try_get("hard_limit")?)))
        .collect()
}

/// Projects that have any override.
pub async fn quota_projects(conn: &mut Conn) -> Result<Vec<ProjectId>> {
    let rows = sqlx::query("SELECT DISTINCT project_id FROM quotas ORDER BY project_id")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok(ProjectId(r.try_get("project_id")?)))
        .collect()
}

pub async fn quota_set(
    conn: &mut Conn,
    project: &ProjectId,
    resource: &str,
    limit: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = $3",
    )
    .bind(project.as_str())
    .bind(resource)
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn quota_delete(conn: &mut Conn, project: &ProjectId) -> Result<()> {
    sqlx::query("DELETE FROM quotas WHERE project_id = $1")
        .bind(project.as_str())
        .execute(conn)
        .await?;
    Ok(())
}
