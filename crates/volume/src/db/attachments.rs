//! Attachments of volumes to servers.

use stratus_common::ids::{AttachmentId, VolumeId};
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Row};

use super::{corrupt, time_from_db, Conn};
use crate::domain::{AttachStatus, Attachment};
use crate::error::VolumeError;

const COLUMNS: &str = "id, volume_id, project_id, instance_uuid, attached_host, mountpoint, \
    attach_mode, status, connector, connection_info, attach_time, detach_time, created_at";

fn json_opt(what: &str, v: Option<String>) -> Result<Option<serde_json::Value>, VolumeError> {
    v.map(|s| serde_json::from_str(&s).map_err(|_| corrupt(what, &s)))
        .transpose()
}

fn time_opt(v: Option<String>) -> Result<Option<chrono::DateTime<chrono::Utc>>, VolumeError> {
    v.map(|s| time_from_db(&s)).transpose()
}

fn from_row(r: &AnyRow) -> Result<Attachment, VolumeError> {
    let id: String = r.try_get("id")?;
    let vid: String = r.try_get("volume_id")?;
    let status: String = r.try_get("status")?;
    let created: String = r.try_get("created_at")?;
    Ok(Attachment {
        id: id.parse().map_err(|_| corrupt("attachment id", &id))?,
        volume_id: vid.parse().map_err(|_| corrupt("volume id", &vid))?,
        project_id: r.try_get("project_id")?,
        instance_uuid: r.try_get("instance_uuid")?,
        attached_host: r.try_get("attached_host")?,
        mountpoint: r.try_get("mountpoint")?,
        attach_mode: r.try_get("attach_mode")?,
        status: status
            .parse()
            .map_err(|_| corrupt("attach status", &status))?,
        connector: json_opt("connector", r.try_get("connector")?)?,
        connection_info: json_opt("connection info", r.try_get("connection_info")?)?,
        attach_time: time_opt(r.try_get("attach_time")?)?,
        detach_time: time_opt(r.try_get("detach_time")?)?,
        created_at: time_from_db(&created)?,
    })
}

pub async fn attachment_insert(conn: &mut Conn, a: &Attachment) -> Result<(), VolumeError> {
    sqlx::query(&format!(
        "INSERT INTO attachments ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(a.id.to_string())
    .bind(a.volume_id.to_string())
    .bind(&a.project_id)
    .bind(a.instance_uuid.as_deref())
    .bind(a.attached_host.as_deref())
    .bind(a.mountpoint.as_deref())
    .bind(&a.attach_mode)
    .bind(a.status.as_str())
    .bind(a.connector.as_ref().map(|v| v.to_string()))
    .bind(a.connection_info.as_ref().map(|v| v.to_string()))
    .bind(a.attach_time.map(time::to_db))
    .bind(a.detach_time.map(time::to_db))
    .bind(time::to_db(a.created_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn attachment_get(
    conn: &mut Conn,
    id: &AttachmentId,
) -> Result<Option<Attachment>, VolumeError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM attachments WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn attachment_list_of_volume(
    conn: &mut Conn,
    volume: &VolumeId,
) -> Result<Vec<Attachment>, VolumeError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM attachments WHERE volume_id = $1 ORDER BY created_at, id"
    ))
    .bind(volume.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn attachment_list(
    conn: &mut Conn,
    project: Option<&str>,
) -> Result<Vec<Attachment>, VolumeError> {
    let rows = match project {
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM attachments WHERE project_id = $1"
            ))
            .bind(p)
            .fetch_all(&mut *conn)
            .await?
        }
        None => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM attachments"))
                .fetch_all(&mut *conn)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// Writes status, host, mountpoint, mode, connector, connection info and
/// times.
pub async fn attachment_update(conn: &mut Conn, a: &Attachment) -> Result<(), VolumeError> {
    sqlx::query(
        "UPDATE attachments SET status = $2, attached_host = $3, mountpoint = $4, attach_mode = $5, \
         connector = $6, connection_info = $7, attach_time = $8, detach_time = $9, instance_uuid = $10 \
         WHERE id = $1",
    )
    .bind(a.id.to_string())
    .bind(a.status.as_str())
    .bind(a.attached_host.as_deref())
    .bind(a.mountpoint.as_deref())
    .bind(&a.attach_mode)
    .bind(a.connector.as_ref().map(|v| v.to_string()))
    .bind(a.connection_info.as_ref().map(|v| v.to_string()))
    .bind(a.attach_time.map(time::to_db))
    .bind(a.detach_time.map(time::to_db))
    .bind(a.instance_uuid.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn attachment_delete(conn: &mut Conn, id: &AttachmentId) -> Result<(), VolumeError> {
    sqlx::query("DELETE FROM attachments WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether `status` is one an attachment counts as attached in.
pub fn is_attached(a: &Attachment) -> bool {
    a.status == AttachStatus::Attached
}
