//! Compute nodes, services (heartbeats) and resource claims.
//!
//! A claim is ONE transaction: the allocation row is inserted and the node's
//! usage raised by a guarded `UPDATE ... WHERE used + want <= total * ratio`,
//! so two schedulers racing for the last room on a host cannot both win
//! (PostgreSQL re-checks the guard on the locked row; SQLite has one writer).
//! Releasing deletes the allocation and lowers the usage by what it held, so
//! release is idempotent.
//!
//! Every write to a node (report, claim, release) or a service (heartbeat,
//! update) stamps its `updated_at`: the scheduler's host cache reads only the
//! rows stamped since its last read (`node_changes`, `compute_service_changes`)
//! and notices deletions by the counts (`host_counts`).

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

/// A node's columns, its availability zone being its host aggregate's
/// (`availability_zone` metadata, [`super::aggregates`]) when it has one,
/// else the one its agent reports: Nova's `get_host_availability_zone`.
const NODE_SELECT: &str = "SELECT n.host, n.id, n.node, n.hypervisor_type, n.host_ip, \
     COALESCE((SELECT MIN(m.meta_value) FROM aggregate_hosts h JOIN aggregate_metadata m \
     ON m.aggregate_id = h.aggregate_id AND m.meta_key = 'availability_zone' \
     WHERE h.host = n.host), n.availability_zone) AS availability_zone, \
     n.vcpus, n.memory_mb, n.local_gb, n.vcpus_used, n.memory_mb_used, n.local_gb_used, \
     n.running_vms, n.cpu_allocation_ratio, n.ram_allocation_ratio, n.disk_allocation_ratio, \
     n.created_at, n.updated_at FROM compute_nodes n";

use super::{get_f, get_i, get_os, get_s, now_db, Conn};
use crate::error::{ComputeError, Result};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ComputeNode {
    pub host: String,
    pub id: String,
    pub node: String,
    pub hypervisor_type: String,
    pub host_ip: String,
    pub availability_zone: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub vcpus_used: i64,
    pub memory_mb_used: i64,
    pub local_gb_used: i64,
    pub running_vms: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    pub updated_at: String,
}

pub use stratus_compute_rpc::node::NodeReport;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    pub host: String,
    pub binary: String,
    pub topic: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub last_seen_up: Option<String>,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Claim {
    pub host: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

fn row_node(r: &AnyRow) -> Result<ComputeNode> {
    Ok(ComputeNode {
        host: get_s(r, "host")?,
        id: get_s(r, "id")?,
        node: get_s(r, "node")?,
        hypervisor_type: get_s(r, "hypervisor_type")?,
        host_ip: get_s(r, "host_ip")?,
        availability_zone: get_s(r, "availability_zone")?,
        vcpus: get_i(r, "vcpus")?,
        memory_mb: get_i(r, "memory_mb")?,
        local_gb: get_i(r, "local_gb")?,
        vcpus_used: get_i(r, "vcpus_used")?,
        memory_mb_used: get_i(r, "memory_mb_used")?,
        local_gb_used: get_i(r, "local_gb_used")?,
        running_vms: get_i(r, "running_vms")?,
        cpu_allocation_ratio: get_f(r, "cpu_allocation_ratio")?,
        ram_allocation_ratio: get_f(r, "ram_allocation_ratio")?,
        disk_allocation_ratio: get_f(r, "disk_allocation_ratio")?,
        updated_at: get_s(r, "updated_at")?,
    })
}

fn row_service(r: &AnyRow) -> Result<Service> {
    Ok(Service {
        id: get_s(r, "id")?,
        host: get_s(r, "host")?,
        binary: get_s(r, "binary_name")?,
        topic: get_s(r, "topic")?,
        disabled: stratus_db::i2b(get_i(r, "disabled")?),
        disabled_reason: get_os(r, "disabled_reason")?,
        forced_down: stratus_db::i2b(get_i(r, "forced_down")?),
        last_seen_up: get_os(r, "last_seen_up")?,
        updated_at: get_s(r, "updated_at")?,
    })
}

/// Creates or refreshes a node's totals.
pub async fn node_report(conn: &mut Conn, n: &NodeReport) -> Result<()> {
    let now = now_db();
    sqlx::query(
        "INSERT INTO compute_nodes (host, id, node, hypervisor_type, host_ip, availability_zone, vcpus, \
         memory_mb, local_gb, cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, created_at, \
         updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$13) ON CONFLICT DO NOTHING",
    )
    .bind(&n.host)
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(&n.node)
    .bind(&n.hypervisor_type)
    .bind(&n.host_ip)
    .bind(&n.availability_zone)
    .bind(n.vcpus)
    .bind(n.memory_mb)
    .bind(n.local_gb)
    .bind(n.cpu_allocation_ratio)
    .bind(n.ram_allocation_ratio)
    .bind(n.disk_allocation_ratio)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE compute_nodes SET node = $1, hypervisor_type = $2, host_ip = $3, availability_zone = $4, \
         vcpus = $5, memory_mb = $6, local_gb = $7, cpu_allocation_ratio = $8, ram_allocation_ratio = $9, \
         disk_allocation_ratio = $10, updated_at = $11 WHERE host = $12",
    )
    .bind(&n.node)
    .bind(&n.hypervisor_type)
    .bind(&n.host_ip)
    .bind(&n.availability_zone)
    .bind(n.vcpus)
    .bind(n.memory_mb)
    .bind(n.local_gb)
    .bind(n.cpu_allocation_ratio)
    .bind(n.ram_allocation_ratio)
    .bind(n.disk_allocation_ratio)
    .bind(&now)
    .bind(&n.host)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn node_list(conn: &mut Conn) -> Result<Vec<ComputeNode>> {
    let rows = sqlx::query(&format!("{NODE_SELECT} ORDER BY n.host"))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(row_node).collect()
}

pub async fn node_get(conn: &mut Conn, id_or_host: &str) -> Result<ComputeNode> {
    let row = sqlx::query(&format!("{NODE_SELECT} WHERE n.id = $1 OR n.host = $1"))
        .bind(id_or_host)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            ComputeError::NotFound(format!(
                "Hypervisor with ID {id_or_host} could not be found."
            ))
        })?;
    row_node(&row)
}

/// Nodes stamped at or after `since` (an `updated_at` value; `""` for all).
pub async fn node_changes(conn: &mut Conn, since: &str) -> Result<Vec<ComputeNode>> {
    let rows = sqlx::query(&format!("{NODE_SELECT} WHERE n.updated_at >= $1"))
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(row_node).collect()
}

/// The node that holds an instance's allocation, as it is now.
pub async fn node_of_allocation(conn: &mut Conn, instance_id: &str) -> Result<Option<ComputeNode>> {
    let row = sqlx::query(&format!(
        "{NODE_SELECT} JOIN allocations a ON a.host = n.host WHERE a.instance_id = $1"
    ))
    .bind(instance_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(row_node).transpose()
}

/// How many compute nodes and `nova-compute` services there are (the
/// host cache's way of noticing deletions, which leave no row behind).
pub async fn host_counts(conn: &mut Conn) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM compute_nodes) AS nodes, \
         (SELECT COUNT(*) FROM services WHERE binary_name = 'nova-compute') AS services",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((get_i(&row, "nodes")?, get_i(&row, "services")?))
}

/// Records that a service is alive (creates its row the first time).
pub async fn service_heartbeat(
    conn: &mut Conn,
    host: &str,
    binary: &str,
    topic: &str,
) -> Result<()> {
    let now = now_db();
    sqlx::query(
        "INSERT INTO services (id, host, binary_name, topic, last_seen_up, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$5,$5) ON CONFLICT DO NOTHING",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(host)
    .bind(binary)
    .bind(topic)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE services SET last_seen_up = $1, updated_at = $1 WHERE host = $2 AND binary_name = $3")
        .bind(&now)
        .bind(host)
        .bind(binary)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn service_list(conn: &mut Conn) -> Result<Vec<Service>> {
    let rows = sqlx::query("SELECT * FROM services ORDER BY binary_name, host")
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(row_service).collect()
}

/// `nova-compute` services stamped at or after `since` (`""` for all).
pub async fn compute_service_changes(conn: &mut Conn, since: &str) -> Result<Vec<Service>> {
    let rows = sqlx::query(
        "SELECT * FROM services WHERE binary_name = 'nova-compute' AND updated_at >= $1",
    )
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(row_service).collect()
}

pub async fn service_get(conn: &mut Conn, id: &str) -> Result<Service> {
    let row = sqlx::query("SELECT * FROM services WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ComputeError::NotFound(format!("Service {id} could not be found.")))?;
    row_service(&row)
}

pub async fn service_update(
    conn: &mut Conn,
    id: &str,
    disabled: Option<bool>,
    reason: Option<Option<String>>,
    forced_down: Option<bool>,
) -> Result<Service> {
    let cur = service_get(&mut *conn, id).await?;
    let disabled = disabled.unwrap_or(cur.disabled);
    let reason = reason.unwrap_or(cur.disabled_reason);
    let forced = forced_down.unwrap_or(cur.forced_down);
    sqlx::query(
        "UPDATE services SET disabled = $1, disabled_reason = $2, forced_down = $3, updated_at = $4 WHERE id = $5",
    )
    .bind(stratus_db::b2i(disabled))
    .bind(reason)
    .bind(stratus_db::b2i(forced))
    .bind(now_db())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    service_get(&mut *conn, id).await
}

pub async fn service_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let svc = service_get(&mut *conn, id).await?;
    let mut tx = super::begin(conn).await?;
    sqlx::query("DELETE FROM services WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if svc.binary == "nova-compute" {
        sqlx::query("DELETE FROM compute_nodes WHERE host = $1")
            .bind(&svc.host)
            .execute(&mut *tx)
            .await?;
        // Schedulers' host caches see deletions by this counter (a deleted
        // row leaves nothing for their change reads to find).
        sqlx::query(
            "INSERT INTO compute_counters (name, value) VALUES ('host_deletions', 1) \
             ON CONFLICT (name) DO UPDATE SET value = compute_counters.value + 1",
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How many compute hosts were ever deleted ([`service_delete`]): one
/// primary-key read, where counting the rows reads every one of them.
pub async fn host_deletions(conn: &mut Conn) -> Result<i64> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT value FROM compute_counters WHERE name = 'host_deletions'")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(n.unwrap_or(0))
}

/// Claims resources for an instance on a host; `false` if they do not fit.
/// Claiming again on the same host is a no-op that answers `true`.
pub async fn allocation_claim(conn: &mut Conn, instance_id: &str, c: &Claim) -> Result<bool> {
    let mut tx = super::begin(conn).await?;
    let inserted = sqlx::query(
        "INSERT INTO allocations (instance_id, host, vcpus, memory_mb, disk_gb, created_at) \
         VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
    )
    .bind(instance_id)
    .bind(&c.host)
    .bind(c.vcpus)
    .bind(c.memory_mb)
    .bind(c.disk_gb)
    .bind(now_db())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        let held: Option<String> =
            sqlx::query_scalar("SELECT host FROM allocations WHERE instance_id = $1")
                .bind(instance_id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.rollback().await?;
        return Ok(held.as_deref() == Some(c.host.as_str()));
    }
    let updated = sqlx::query(
        "UPDATE compute_nodes SET vcpus_used = vcpus_used + $1, memory_mb_used = memory_mb_used + $2, \
         local_gb_used = local_gb_used + $3, running_vms = running_vms + 1, updated_at = $5 \
         WHERE host = $4 AND vcpus_used + $1 <= vcpus * cpu_allocation_ratio \
         AND memory_mb_used + $2 <= memory_mb * ram_allocation_ratio \
         AND local_gb_used + $3 <= local_gb * disk_allocation_ratio",
    )
    .bind(c.vcpus)
    .bind(c.memory_mb)
    .bind(c.disk_gb)
    .bind(&c.host)
    .bind(now_db())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// The host an instance holds a claim on, if any.
pub async fn allocation_host(conn: &mut Conn, instance_id: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT host FROM allocations WHERE instance_id = $1")
            .bind(instance_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Claims with no live instance behind them: the instance is gone or
/// deleted, or (for claims older than `before`, so that a placement
/// between its claim and saving the host is left alone) it is not on
/// the claimed host or left BUILD in ERROR without a host.
pub async fn allocations_orphaned(conn: &mut Conn, before: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT a.instance_id FROM allocations a LEFT JOIN instances i ON i.id = a.instance_id \
         WHERE i.id IS NULL OR i.deleted = 1 \
         OR (a.created_at < $1 AND (i.host IS NULL OR i.host <> a.host))",
    )
    .bind(before)
    .fetch_all(&mut *conn)
    .await?)
}

/// Gives back what an instance holds (nothing if it holds nothing).
pub async fn allocation_release(conn: &mut Conn, instance_id: &str) -> Result<Option<Claim>> {
    let mut tx = super::begin(conn).await?;
    let row = sqlx::query(
        "DELETE FROM allocations WHERE instance_id = $1 RETURNING host, vcpus, memory_mb, disk_gb",
    )
    .bind(instance_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let c = Claim {
        host: get_s(&row, "host")?,
        vcpus: get_i(&row, "vcpus")?,
        memory_mb: get_i(&row, "memory_mb")?,
        disk_gb: get_i(&row, "disk_gb")?,
    };
    sqlx::query(
        "UPDATE compute_nodes SET vcpus_used = vcpus_used - $1, memory_mb_used = memory_mb_used - $2, \
         local_gb_used = local_gb_used - $3, running_vms = running_vms - 1, updated_at = $5 WHERE host = $4",
    )
    .bind(c.vcpus)
    .bind(c.memory_mb)
    .bind(c.disk_gb)
    .bind(&c.host)
    .bind(now_db())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(c))
}

pub async fn allocation_get(conn: &mut Conn, instance_id: &str) -> Result<Option<Claim>> {
    let row = sqlx::query(
        "SELECT host, vcpus, memory_mb, disk_gb FROM allocations WHERE instance_id = $1",
    )
    .bind(instance_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Claim {
            host: get_s(&r, "host")?,
            vcpus: get_i(&r, "vcpus")?,
            memory_mb: get_i(&r, "memory_mb")?,
            disk_gb: get_i(&r, "disk_gb")?,
        })
    })
    .transpose()
}
