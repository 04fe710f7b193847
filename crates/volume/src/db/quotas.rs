//! Per-project quota limits an admin set (the rest come from the defaults).

use stratus_db::sqlx::{self, Row};

use super::Conn;
use crate::domain::quota::Limits;
use crate::error::VolumeError;

/// The defaults overlaid with what was set for `project`.
pub async fn quota_limits(
    conn: &mut Conn,
    project: &str,
    defaults: &Limits,
) -> Result<Limits, VolumeError> {
    let rows = sqlx::query("SELECT resource, hard_limit FROM quotas WHERE project_id = $1")
        .bind(project)
        .fetch_all(&mut *conn)
        .await?;
    let mut l = defaults.clone();
    for r in rows {
        let res: String = r.try_get("resource")?;
        let lim: i64 = r.try_get("hard_limit")?;
        l.0.insert(res, lim);
    }
    Ok(l)
}

pub async fn quota_set(
    conn: &mut Conn,
    project: &str,
    resource: &str,
    limit: i64,
) -> Result<(), VolumeError> {
    sqlx::query(
        "INSERT INTO quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = $3",
    )
    .bind(project)
    .bind(resource)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Back to the defaults.
pub async fn quota_delete(conn: &mut Conn, project: &str) -> Result<(), VolumeError> {
    sqlx::query("DELETE FROM quotas WHERE project_id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
