//! Snapshots (metadata as one JSON column).

use stratus_common::ids::{SnapshotId, VolumeId};
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Row};

use super::{corrupt, map_from_db, map_to_db, placeholders, time_from_db, Conn};
use crate::domain::{Snapshot, SnapshotStatus};
use crate::error::VolumeError;

const COLUMNS: &str = "id, project_id, user_id, volume_id, name, description, size, status, \
    metadata, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<Snapshot, VolumeError> {
    let id: String = r.try_get("id")?;
    let vid: String = r.try_get("volume_id")?;
    let status: String = r.try_get("status")?;
    let metadata: String = r.try_get("metadata")?;
    let created: String = r.try_get("created_at")?;
    let updated: String = r.try_get("updated_at")?;
    Ok(Snapshot {
        id: id.parse().map_err(|_| corrupt("snapshot id", &id))?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        volume_id: vid.parse().map_err(|_| corrupt("volume id", &vid))?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        size: r.try_get("size")?,
        status: status.parse().map_err(|_| corrupt("status", &status))?,
        metadata: map_from_db(&metadata)?,
        created_at: time_from_db(&created)?,
        updated_at: time_from_db(&updated)?,
    })
}

pub async fn snapshot_insert(conn: &mut Conn, s: &Snapshot) -> Result<(), VolumeError> {
    sqlx::query(&format!(
        "INSERT INTO snapshots ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(s.id.to_string())
    .bind(&s.project_id)
    .bind(s.user_id.as_deref())
    .bind(s.volume_id.to_string())
    .bind(s.name.as_deref())
    .bind(s.description.as_deref())
    .bind(s.size)
    .bind(s.status.as_str())
    .bind(map_to_db(&s.metadata))
    .bind(time::to_db(s.created_at))
    .bind(time::to_db(s.updated_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn snapshot_get(
    conn: &mut Conn,
    id: &SnapshotId,
) -> Result<Option<Snapshot>, VolumeError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM snapshots WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn snapshot_list(
    conn: &mut Conn,
    project: Option<&str>,
) -> Result<Vec<Snapshot>, VolumeError> {
    let rows = match project {
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM snapshots WHERE project_id = $1"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM snapshots"))
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// The snapshots of `backend`'s volumes in one of `statuses`.
pub async fn snapshot_list_in_status(
    conn: &mut Conn,
    backend: &str,
    statuses: &[SnapshotStatus],
) -> Result<Vec<Snapshot>, VolumeError> {
    let cols: Vec<String> = COLUMNS
        .split(',')
        .map(|c| format!("s.{}", c.trim()))
        .collect();
    let sql = format!(
        "SELECT {} FROM snapshots s JOIN volumes v ON v.id = s.volume_id \
         WHERE v.backend = $1 AND s.status IN ({})",
        cols.join(", "),
        placeholders(2, statuses.len())
    );
    let mut q = sqlx::query(&sql).bind(backend);
    for st in statuses {
        q = q.bind(st.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn snapshot_list_of_volume(
    conn: &mut Conn,
    volume: &VolumeId,
) -> Result<Vec<Snapshot>, VolumeError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM snapshots WHERE volume_id = $1"
    ))
    .bind(volume.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn snapshot_update(conn: &mut Conn, s: &Snapshot) -> Result<(), VolumeError> {
    sqlx::query("UPDATE snapshots SET name = $2, description = $3, metadata = $4, updated_at = $5 WHERE id = $1")
        .bind(s.id.to_string())
        .bind(s.name.as_deref())
        .bind(s.description.as_deref())
        .bind(map_to_db(&s.metadata))
        .bind(time::to_db(time::now()))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Compare-and-swap of the status; whether it changed.
pub async fn snapshot_set_status(
    conn: &mut Conn,
    id: &SnapshotId,
    from: &[SnapshotStatus],
    to: SnapshotStatus,
) -> Result<bool, VolumeError> {
    let sql = format!(
        "UPDATE snapshots SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ({})",
        placeholders(4, from.len())
    );
    let mut q = sqlx::query(&sql)
        .bind(to.as_str())
        .bind(time::to_db(time::now()))
        .bind(id.to_string());
    for s in from {
        q = q.bind(s.as_str());
    }
    Ok(q.execute(&mut *conn).await?.rows_affected() > 0)
}

pub async fn snapshot_delete(conn: &mut Conn, id: &SnapshotId) -> Result<(), VolumeError> {
    sqlx::query("DELETE FROM snapshots WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
