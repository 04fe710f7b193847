//! The instance row as a rebuild changes it (Nova's `compute_api.rebuild`:
//! `instance.update(kwargs)` then `save(expected_task_state=[None])`): the
//! task is claimed and the new image and the request's attributes written
//! in one transaction, so that a rebuild that cannot start changes nothing.

use std::collections::BTreeMap;

use super::{now_db, Conn};
use crate::db::instances::{instance_get, Instance};
use crate::error::{ComputeError, Result};
use crate::model::state::{TaskState, VmState};

/// What a rebuild writes; `None` leaves a column as it is.
#[derive(Clone, Debug, Default)]
pub struct RebuildChanges {
    /// The new image (left alone for a server booted from a volume, whose
    /// `image_ref` stays empty, as in Nova).
    pub image_ref: Option<String>,
    pub image_properties: Option<BTreeMap<String, String>>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    /// `Some((None, None))` unsets the key pair (2.54's `key_name: null`).
    pub key: Option<(Option<String>, Option<String>)>,
    pub user_data: Option<Option<String>>,
    pub hostname: Option<String>,
    /// Replaces the whole metadata.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Claims `rebuilding` on a live instance in one of `from` with no task
/// and writes `c`, all or nothing. `Conflict` when the state does not
/// allow it (another task runs, or the vm_state changed meanwhile).
pub async fn instance_rebuild_begin(
    conn: &mut Conn,
    id: &str,
    from: &[VmState],
    c: &RebuildChanges,
) -> Result<Instance> {
    let now = now_db();
    let mut tx = super::begin(conn).await?;
    let states: Vec<String> = (0..from.len()).map(|k| format!("${}", k + 4)).collect();
    let sql = format!(
        "UPDATE instances SET task_state = $1, updated_at = $2 \
         WHERE id = $3 AND deleted = 0 AND task_state IS NULL AND vm_state IN ({})",
        if states.is_empty() {
            "NULL".to_owned()
        } else {
            states.join(", ")
        }
    );
    let mut q = sqlx::query(&sql)
        .bind(TaskState::Rebuilding.as_str())
        .bind(&now)
        .bind(id);
    for s in from {
        q = q.bind(s.as_str());
    }
    if q.execute(&mut *tx).await?.rows_affected() == 0 {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'rebuild' instance {id} while it is in this state"
        )));
    }
    let mut sets: Vec<(&str, Option<String>)> = Vec::new();
    if let Some(v) = &c.image_ref {
        sets.push(("image_ref", Some(v.clone())));
    }
    if let Some(v) = &c.image_properties {
        sets.push(("image_props_json", Some(serde_json::to_string(v)?)));
    }
    if let Some(v) = &c.name {
        sets.push(("name", Some(v.clone())));
    }
    if let Some(v) = &c.description {
        sets.push(("description", v.clone()));
    }
    if let Some(v) = &c.access_ip_v4 {
        sets.push(("access_ip_v4", Some(v.clone())));
    }
    if let Some(v) = &c.access_ip_v6 {
        sets.push(("access_ip_v6", Some(v.clone())));
    }
    if let Some((name, data)) = &c.key {
        sets.push(("key_name", name.clone()));
        sets.push(("key_data", data.clone()));
    }
    if let Some(v) = &c.user_data {
        sets.push(("user_data", v.clone()));
    }
    if let Some(v) = &c.hostname {
        sets.push(("hostname", Some(v.clone())));
    }
    // Column names come from the list above, never from the request.
    for (col, v) in sets {
        sqlx::query(&format!("UPDATE instances SET {col} = $1 WHERE id = $2"))
            .bind(v)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(m) = &c.metadata {
        sqlx::query("DELETE FROM instance_metadata WHERE instance_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for (k, v) in m {
            sqlx::query(
                "INSERT INTO instance_metadata (instance_id, meta_key, meta_value) VALUES ($1,$2,$3)",
            )
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    instance_get(&mut *conn, id).await
}
