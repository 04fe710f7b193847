//! Volumes attached to servers (Nova's `block_device_mapping` rows of
//! destination `volume`): made `attaching` when an attach reserves the
//! device name, `attached` once the guest has the disk, `detaching` while
//! a detach runs, and removed when it ends.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use stratus_common::ids::{AttachmentId, InstanceId, VolumeId};

use super::{get_i, get_os, get_s, now_db, Conn};
use crate::error::{ComputeError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BdmStatus {
    Attaching,
    Attached,
    Detaching,
}

impl BdmStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attaching => "attaching",
            Self::Attached => "attached",
            Self::Detaching => "detaching",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "attaching" => Self::Attaching,
            "attached" => Self::Attached,
            "detaching" => Self::Detaching,
            other => return Err(ComputeError::Internal(format!("bad bdm status {other}"))),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeBdm {
    pub id: String,
    pub instance_id: InstanceId,
    pub volume_id: VolumeId,
    /// The guest's name for it: `/dev/vdb`.
    pub device_name: String,
    pub attachment_id: Option<AttachmentId>,
    pub status: BdmStatus,
    pub delete_on_termination: bool,
    pub connection_info: Option<serde_json::Value>,
    pub tag: Option<String>,
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T> {
    s.parse()
        .map_err(|_| ComputeError::Internal(format!("bad {what} {s} in block_device_mappings")))
}

fn row_bdm(r: &AnyRow) -> Result<VolumeBdm> {
    Ok(VolumeBdm {
        id: get_s(r, "id")?,
        instance_id: parse(&get_s(r, "instance_id")?, "instance id")?,
        volume_id: parse(&get_s(r, "volume_id")?, "volume id")?,
        device_name: get_s(r, "device_name")?,
        attachment_id: get_os(r, "attachment_id")?
            .map(|a| parse(&a, "attachment id"))
            .transpose()?,
        status: BdmStatus::parse(&get_s(r, "status")?)?,
        delete_on_termination: get_i(r, "delete_on_termination")? != 0,
        connection_info: get_os(r, "connection_info_json")?
            .map(|j| serde_json::from_str(&j))
            .transpose()?,
        tag: get_os(r, "tag")?,
    })
}

/// Records a new mapping; 409 when the volume is attached to the server
/// already or its device name is taken.
pub async fn bdm_create(conn: &mut Conn, b: &VolumeBdm) -> Result<()> {
    let now = now_db();
    let r = sqlx::query(
        "INSERT INTO block_device_mappings (id, instance_id, volume_id, device_name, attachment_id, \
         status, delete_on_termination, connection_info_json, tag, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$10)",
    )
    .bind(&b.id)
    .bind(b.instance_id.to_string())
    .bind(b.volume_id.to_string())
    .bind(&b.device_name)
    .bind(b.attachment_id.map(|a| a.to_string()))
    .bind(b.status.as_str())
    .bind(i64::from(b.delete_on_termination))
    .bind(
        b.connection_info
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
    )
    .bind(&b.tag)
    .bind(&now)
    .execute(&mut *conn)
    .await;
    match r {
        Err(e) if stratus_db::is_unique_violation(&e) => Err(ComputeError::Conflict(format!(
            "volume {} is already attached to the instance {}",
            b.volume_id, b.instance_id
        ))),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// The server's mappings, by device name.
pub async fn bdm_list(conn: &mut Conn, instance: &InstanceId) -> Result<Vec<VolumeBdm>> {
    sqlx::query("SELECT * FROM block_device_mappings WHERE instance_id = $1 ORDER BY device_name")
        .bind(instance.to_string())
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(row_bdm)
        .collect()
}

/// The mappings of each of `ids` that has some, by device name (one query
/// per 500 ids: a server list's page).
pub async fn bdm_list_many(
    conn: &mut Conn,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<VolumeBdm>>> {
    let mut out: std::collections::HashMap<String, Vec<VolumeBdm>> = Default::default();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT * FROM block_device_mappings WHERE instance_id IN ({}) ORDER BY device_name",
            super::instances::placeholders(0, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let b = row_bdm(&r)?;
            out.entry(b.instance_id.to_string()).or_default().push(b);
        }
    }
    Ok(out)
}

/// The mapping of `volume` on the server, if any.
pub async fn bdm_get(
    conn: &mut Conn,
    instance: &InstanceId,
    volume: &VolumeId,
) -> Result<Option<VolumeBdm>> {
    sqlx::query("SELECT * FROM block_device_mappings WHERE instance_id = $1 AND volume_id = $2")
        .bind(instance.to_string())
        .bind(volume.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(row_bdm)
        .transpose()
}

/// Sets the attachment id of the mapping `id`.
pub async fn bdm_set_attachment(
    conn: &mut Conn,
    id: &str,
    attachment: Option<AttachmentId>,
) -> Result<()> {
    sqlx::query(
        "UPDATE block_device_mappings SET attachment_id = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(attachment.map(|a| a.to_string()))
    .bind(now_db())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves the mapping `id` from one of `from` to `to` (compare-and-swap);
/// `false` when it was in none of them (or is gone).
pub async fn bdm_set_status(
    conn: &mut Conn,
    id: &str,
    from: &[BdmStatus],
    to: BdmStatus,
    connection_info: Option<&serde_json::Value>,
) -> Result<bool> {
    let current = sqlx::query("SELECT status FROM block_device_mappings WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(current) = current else {
        return Ok(false);
    };
    let cur = BdmStatus::parse(&get_s(&current, "status")?)?;
    if !from.contains(&cur) {
        return Ok(cur == to);
    }
    let info = connection_info.map(serde_json::to_string).transpose()?;
    let r = sqlx::query(
        "UPDATE block_device_mappings SET status = $1, \
         connection_info_json = COALESCE($2, connection_info_json), updated_at = $3 \
         WHERE id = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(info)
    .bind(now_db())
    .bind(id)
    .bind(cur.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes the mapping `id`; an absent one is fine.
pub async fn bdm_delete(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM block_device_mappings WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
