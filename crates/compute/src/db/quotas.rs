//! Per-project quota limits; a missing row means the configured default.

use std::collections::BTreeMap;

use super::{get_i, get_s, Conn};
use crate::config::QuotaDefaults;
use crate::error::Result;

/// The resources Nova's os-quota-sets shows, in its order.
pub const RESOURCES: &[&str] = &[
    "instances",
    "cores",
    "ram",
    "key_pairs",
    "metadata_items",
    "server_groups",
    "server_group_members",
    "injected_files",
    "injected_file_content_bytes",
    "injected_file_path_bytes",
];

pub fn default_limit(d: &QuotaDefaults, resource: &str) -> i64 {
    match resource {
        "instances" => d.instances,
        "cores" => d.cores,
        "ram" => d.ram,
        "key_pairs" => d.key_pairs,
        "metadata_items" => d.metadata_items,
        "server_groups" => d.server_groups,
        "server_group_members" => d.server_group_members,
        "injected_files" => d.injected_files,
        "injected_file_content_bytes" => d.injected_file_content_bytes,
        "injected_file_path_bytes" => d.injected_file_path_bytes,
        _ => -1,
    }
}

/// Every resource's limit for a project (-1 is unlimited).
pub async fn quota_get(
    conn: &mut Conn,
    project: &str,
    defaults: &QuotaDefaults,
) -> Result<BTreeMap<String, i64>> {
    let rows = sqlx::query("SELECT resource, hard_limit FROM quotas WHERE project_id = $1")
        .bind(project)
        .fetch_all(&mut *conn)
        .await?;
    let mut out: BTreeMap<String, i64> = RESOURCES
        .iter()
        .map(|r| (r.to_string(), default_limit(defaults, r)))
        .collect();
    for r in &rows {
        out.insert(get_s(r, "resource")?, get_i(r, "hard_limit")?);
    }
    Ok(out)
}

pub async fn quota_set(
    conn: &mut Conn,
    project: &str,
    limits: &BTreeMap<String, i64>,
) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    for (k, v) in limits {
        sqlx::query("DELETE FROM quotas WHERE project_id = $1 AND resource = $2")
            .bind(project)
            .bind(k)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO quotas (project_id, resource, hard_limit) VALUES ($1,$2,$3)")
            .bind(project)
            .bind(k)
            .bind(*v)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn quota_delete(conn: &mut Conn, project: &str) -> Result<()> {
    sqlx::query("DELETE FROM quotas WHERE project_id = $1")
        .bind(project)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
