//! Volumes (with their metadata as one JSON column).

use stratus_common::ids::VolumeId;
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Row};
use stratus_db::{b2i, i2b};

use super::{corrupt, map_from_db, map_to_db, placeholders, time_from_db, Conn};
use crate::domain::quota::Usage;
use crate::domain::{Volume, VolumeStatus};
use crate::error::VolumeError;

const COLUMNS: &str = "id, project_id, user_id, name, description, size, status, attach_status, \
    availability_zone, volume_type_id, bootable, readonly, snapshot_id, source_volid, image_id, \
    backend, host, metadata, created_at, updated_at";

fn parse_opt<T: std::str::FromStr>(
    what: &str,
    v: Option<String>,
) -> Result<Option<T>, VolumeError> {
    v.map(|s| s.parse().map_err(|_| corrupt(what, &s)))
        .transpose()
}

fn from_row(r: &AnyRow) -> Result<Volume, VolumeError> {
    let id: String = r.try_get("id")?;
    let status: String = r.try_get("status")?;
    let type_id: String = r.try_get("volume_type_id")?;
    let metadata: String = r.try_get("metadata")?;
    let created: String = r.try_get("created_at")?;
    let updated: String = r.try_get("updated_at")?;
    Ok(Volume {
        id: id.parse().map_err(|_| corrupt("volume id", &id))?,
        project_id: r.try_get("project_id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        size: r.try_get("size")?,
        status: status.parse().map_err(|_| corrupt("status", &status))?,
        attach_status: r.try_get("attach_status")?,
        availability_zone: r.try_get("availability_zone")?,
        volume_type_id: type_id.parse().map_err(|_| corrupt("type id", &type_id))?,
        bootable: i2b(r.try_get("bootable")?),
        readonly: i2b(r.try_get("readonly")?),
        snapshot_id: parse_opt("snapshot id", r.try_get("snapshot_id")?)?,
        source_volid: parse_opt("volume id", r.try_get("source_volid")?)?,
        image_id: parse_opt("image id", r.try_get("image_id")?)?,
        backend: r.try_get("backend")?,
        host: r.try_get("host")?,
        metadata: map_from_db(&metadata)?,
        created_at: time_from_db(&created)?,
        updated_at: time_from_db(&updated)?,
        attachments: Vec::new(),
    })
}

pub async fn volume_insert(conn: &mut Conn, v: &Volume) -> Result<(), VolumeError> {
    sqlx::query(&format!(
        "INSERT INTO volumes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    ))
    .bind(v.id.to_string())
    .bind(&v.project_id)
    .bind(v.user_id.as_deref())
    .bind(v.name.as_deref())
    .bind(v.description.as_deref())
    .bind(v.size)
    .bind(v.status.as_str())
    .bind(&v.attach_status)
    .bind(&v.availability_zone)
    .bind(v.volume_type_id.to_string())
    .bind(b2i(v.bootable))
    .bind(b2i(v.readonly))
    .bind(v.snapshot_id.map(|s| s.to_string()))
    .bind(v.source_volid.map(|s| s.to_string()))
    .bind(v.image_id.map(|s| s.to_string()))
    .bind(&v.backend)
    .bind(&v.host)
    .bind(map_to_db(&v.metadata))
    .bind(time::to_db(v.created_at))
    .bind(time::to_db(v.updated_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn volume_get(conn: &mut Conn, id: &VolumeId) -> Result<Option<Volume>, VolumeError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM volumes WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The volumes of `project`, or of every project.
pub async fn volume_list(
    conn: &mut Conn,
    project: Option<&str>,
) -> Result<Vec<Volume>, VolumeError> {
    let rows = match project {
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM volumes WHERE project_id = $1"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM volumes"))
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// The volumes of `backend` in one of `statuses` (what a manager finds
/// unfinished when it starts).
pub async fn volume_list_in_status(
    conn: &mut Conn,
    backend: &str,
    statuses: &[VolumeStatus],
) -> Result<Vec<Volume>, VolumeError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM volumes WHERE backend = $1 AND status IN ({})",
        placeholders(2, statuses.len())
    );
    let mut q = sqlx::query(&sql).bind(backend);
    for s in statuses {
        q = q.bind(s.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(from_row).collect()
}

/// Writes the fields a user may change (name, description, metadata,
/// bootable, readonly).
pub async fn volume_update(conn: &mut Conn, v: &Volume) -> Result<(), VolumeError> {
    sqlx::query(
        "UPDATE volumes SET name = $2, description = $3, metadata = $4, bootable = $5, \
         readonly = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(v.id.to_string())
    .bind(v.name.as_deref())
    .bind(v.description.as_deref())
    .bind(map_to_db(&v.metadata))
    .bind(b2i(v.bootable))
    .bind(b2i(v.readonly))
    .bind(time::to_db(time::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Compare-and-swap of the status: `to` only when the status is one of
/// `from`; whether it changed.
pub async fn volume_set_status(
    conn: &mut Conn,
    id: &VolumeId,
    from: &[VolumeStatus],
    to: VolumeStatus,
) -> Result<bool, VolumeError> {
    let sql = format!(
        "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 AND status IN ({})",
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

/// Any status to `to` (the manager finishing, `os-reset_status`).
pub async fn volume_force_status(
    conn: &mut Conn,
    id: &VolumeId,
    to: VolumeStatus,
    attach_status: Option<&str>,
) -> Result<bool, VolumeError> {
    let r = sqlx::query(
        "UPDATE volumes SET status = $1, attach_status = COALESCE($2, attach_status), \
         updated_at = $3 WHERE id = $4",
    )
    .bind(to.as_str())
    .bind(attach_status)
    .bind(time::to_db(time::now()))
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// The status and attach status together when the status is one of `from`.
pub async fn volume_set_attach(
    conn: &mut Conn,
    id: &VolumeId,
    from: &[VolumeStatus],
    to: VolumeStatus,
    attach_status: &str,
) -> Result<bool, VolumeError> {
    let sql = format!(
        "UPDATE volumes SET status = $1, attach_status = $2, updated_at = $3 WHERE id = $4 \
         AND status IN ({})",
        placeholders(5, from.len())
    );
    let mut q = sqlx::query(&sql)
        .bind(to.as_str())
        .bind(attach_status)
        .bind(time::to_db(time::now()))
        .bind(id.to_string());
    for s in from {
        q = q.bind(s.as_str());
    }
    Ok(q.execute(&mut *conn).await?.rows_affected() > 0)
}

/// The extend: new size and status together, from `extending`.
pub async fn volume_finish_extend(
    conn: &mut Conn,
    id: &VolumeId,
    size: i64,
    to: VolumeStatus,
) -> Result<bool, VolumeError> {
    let r = sqlx::query(
        "UPDATE volumes SET size = $1, status = $2, updated_at = $3 WHERE id = $4 AND status = $5",
    )
    .bind(size)
    .bind(to.as_str())
    .bind(time::to_db(time::now()))
    .bind(id.to_string())
    .bind(VolumeStatus::Extending.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn volume_delete(conn: &mut Conn, id: &VolumeId) -> Result<(), VolumeError> {
    let id = id.to_string();
    sqlx::query("DELETE FROM attachments WHERE volume_id = $1")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM volumes WHERE id = $1")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What `project` uses: volumes, snapshots, and the GiB of both.
pub async fn usage_get(conn: &mut Conn, project: &str) -> Result<Usage, VolumeError> {
    let v = sqlx::query("SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS g FROM volumes WHERE project_id = $1")
        .bind(project)
        .fetch_one(&mut *conn)
        .await?;
    let s = sqlx::query("SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS g FROM snapshots WHERE project_id = $1")
        .bind(project)
        .fetch_one(&mut *conn)
        .await?;
    let (vn, vg): (i64, i64) = (v.try_get("n")?, v.try_get("g")?);
    let (sn, sg): (i64, i64) = (s.try_get("n")?, s.try_get("g")?);
    Ok(Usage {
        volumes: vn,
        snapshots: sn,
        gigabytes: vg + sg,
    })
}
