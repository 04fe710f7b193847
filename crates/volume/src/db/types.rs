//! Volume types and their extra specs (kept as one JSON object per type).

use stratus_common::ids::VolumeTypeId;
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Row};
use stratus_db::{b2i, i2b};

use super::{corrupt, map_from_db, map_to_db, time_from_db, Conn};
use crate::domain::vtype::DEFAULT_TYPE;
use crate::domain::VolumeType;
use crate::error::VolumeError;

const COLUMNS: &str = "id, name, description, is_public, extra_specs, created_at";

fn from_row(r: &AnyRow) -> Result<VolumeType, VolumeError> {
    let id: String = r.try_get("id")?;
    let specs: String = r.try_get("extra_specs")?;
    let created: String = r.try_get("created_at")?;
    Ok(VolumeType {
        id: id.parse().map_err(|_| corrupt("type id", &id))?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        is_public: i2b(r.try_get("is_public")?),
        extra_specs: map_from_db(&specs)?,
        created_at: time_from_db(&created)?,
    })
}

/// Inserts a type; a taken name is a 409.
pub async fn type_insert(conn: &mut Conn, t: &VolumeType) -> Result<(), VolumeError> {
    let now = time::to_db(t.created_at);
    let r = sqlx::query(
        "INSERT INTO volume_types (id, name, description, is_public, extra_specs, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING",
    )
    .bind(t.id.to_string())
    .bind(&t.name)
    .bind(t.description.as_deref())
    .bind(b2i(t.is_public))
    .bind(map_to_db(&t.extra_specs))
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(VolumeError::Conflict(format!(
            "Volume Type {} already exists.",
            t.name
        )));
    }
    Ok(())
}

/// Makes `__DEFAULT__` unless it exists (any number of times, by any
/// number of processes: the unique name keeps one).
pub async fn type_ensure_default(conn: &mut Conn) -> Result<VolumeType, VolumeError> {
    if let Some(t) = type_get_by_name(conn, DEFAULT_TYPE).await? {
        return Ok(t);
    }
    let t = VolumeType {
        id: VolumeTypeId::new(),
        name: DEFAULT_TYPE.to_owned(),
        description: Some("Default Volume Type".to_owned()),
        is_public: true,
        extra_specs: Default::default(),
        created_at: time::now(),
    };
    match type_insert(conn, &t).await {
        Ok(()) | Err(VolumeError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    type_get_by_name(conn, DEFAULT_TYPE)
        .await?
        .ok_or_else(|| VolumeError::Internal("the default volume type vanished".to_owned()))
}

pub async fn type_get(
    conn: &mut Conn,
    id: &VolumeTypeId,
) -> Result<Option<VolumeType>, VolumeError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM volume_types WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn type_get_by_name(
    conn: &mut Conn,
    name: &str,
) -> Result<Option<VolumeType>, VolumeError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM volume_types WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn type_list(conn: &mut Conn) -> Result<Vec<VolumeType>, VolumeError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM volume_types ORDER BY name"))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Writes name, description, is_public and extra specs.
pub async fn type_update(conn: &mut Conn, t: &VolumeType) -> Result<(), VolumeError> {
    sqlx::query(
        "UPDATE volume_types SET name = $2, description = $3, is_public = $4, extra_specs = $5, \
         updated_at = $6 WHERE id = $1",
    )
    .bind(t.id.to_string())
    .bind(&t.name)
    .bind(t.description.as_deref())
    .bind(b2i(t.is_public))
    .bind(map_to_db(&t.extra_specs))
    .bind(time::to_db(time::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes a type no volume uses (in one statement, so that a volume
/// created meanwhile keeps its type); whether it was deleted.
pub async fn type_delete_unused(conn: &mut Conn, id: &VolumeTypeId) -> Result<bool, VolumeError> {
    let r = sqlx::query(
        "DELETE FROM volume_types WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM volumes WHERE volume_type_id = $1)",
    )
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}
