//! Host aggregates: a named set of hosts with metadata. The
//! `availability_zone` key makes the zone of the aggregate's hosts: the
//! node queries of [`super::hosts`] read a host's zone through it.
//!
//! A change that moves a host between zones also writes the new zone on the
//! servers of that host (Nova shows a server the zone of its host) and stamps
//! the host's node, so that the scheduler's host cache reads it again.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;

use super::{get_i, get_os, get_s, now_db, Conn};
use crate::error::{ComputeError, Result};

/// The metadata key that names the zone of an aggregate's hosts.
pub const AZ_KEY: &str = "availability_zone";

#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub hosts: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl Aggregate {
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get(AZ_KEY).map(String::as_str)
    }
}

pub fn not_found(id: i64) -> ComputeError {
    ComputeError::NotFound(format!("Aggregate {id} could not be found."))
}

fn row_aggregate(r: &AnyRow) -> Result<Aggregate> {
    Ok(Aggregate {
        id: get_i(r, "id")?,
        uuid: get_s(r, "uuid")?,
        name: get_s(r, "name")?,
        hosts: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: get_s(r, "created_at")?,
        updated_at: get_os(r, "updated_at")?,
    })
}

async fn fill(conn: &mut Conn, a: &mut Aggregate) -> Result<()> {
    a.hosts = sqlx::query_scalar(
        "SELECT host FROM aggregate_hosts WHERE aggregate_id = $1 ORDER BY host",
    )
    .bind(a.id)
    .fetch_all(&mut *conn)
    .await?;
    let rows =
        sqlx::query("SELECT meta_key, meta_value FROM aggregate_metadata WHERE aggregate_id = $1")
            .bind(a.id)
            .fetch_all(&mut *conn)
            .await?;
    a.metadata = rows
        .iter()
        .map(|r| Ok((get_s(r, "meta_key")?, get_s(r, "meta_value")?)))
        .collect::<Result<_>>()?;
    Ok(())
}

async fn name_taken(conn: &mut Conn, name: &str, except: Option<i64>) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM aggregates WHERE name = $1 AND id <> $2")
        .bind(name)
        .bind(except.unwrap_or(-1))
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

fn name_exists(name: &str) -> ComputeError {
    ComputeError::Conflict(format!("Aggregate {name} already exists."))
}

/// The next aggregate id (one transaction with the insert that uses it).
async fn next_id(conn: &mut Conn) -> Result<i64> {
    sqlx::query(
        "INSERT INTO compute_counters (name, value) VALUES ('aggregates', 0) ON CONFLICT DO NOTHING",
    )
    .execute(&mut *conn)
    .await?;
    let id: i64 = sqlx::query_scalar(
        "UPDATE compute_counters SET value = value + 1 WHERE name = 'aggregates' RETURNING value",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

pub async fn aggregate_create(conn: &mut Conn, name: &str, az: Option<&str>) -> Result<Aggregate> {
    let mut tx = super::begin(conn).await?;
    if name_taken(&mut tx, name, None).await? {
        return Err(name_exists(name));
    }
    let id = next_id(&mut tx).await?;
    let now = now_db();
    sqlx::query("INSERT INTO aggregates (id, uuid, name, created_at) VALUES ($1,$2,$3,$4)")
        .bind(id)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(name)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match ComputeError::from(e) {
            ComputeError::Conflict(_) => name_exists(name),
            e => e,
        })?;
    if let Some(az) = az {
        sqlx::query(
            "INSERT INTO aggregate_metadata (aggregate_id, meta_key, meta_value) VALUES ($1,$2,$3)",
        )
        .bind(id)
        .bind(AZ_KEY)
        .bind(az)
        .execute(&mut *tx)
        .await?;
    }
    let a = aggregate_get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(a)
}

pub async fn aggregate_get(conn: &mut Conn, id: i64) -> Result<Aggregate> {
    let row = sqlx::query("SELECT * FROM aggregates WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut a = row_aggregate(&row)?;
    fill(&mut *conn, &mut a).await?;
    Ok(a)
}

pub async fn aggregate_list(conn: &mut Conn) -> Result<Vec<Aggregate>> {
    let rows = sqlx::query("SELECT * FROM aggregates ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut a = row_aggregate(r)?;
        fill(&mut *conn, &mut a).await?;
        out.push(a);
    }
    Ok(out)
}

/// The zones (other than `az`) that aggregates other than `except` give
/// to any of `hosts`: Nova's conflict check before a host changes zone.
pub async fn conflicting_zones(
    conn: &mut Conn,
    hosts: &[String],
    az: &str,
    except: i64,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for h in hosts {
        let zones: Vec<String> = sqlx::query_scalar(
            "SELECT m.meta_value FROM aggregate_hosts h JOIN aggregate_metadata m \
             ON m.aggregate_id = h.aggregate_id AND m.meta_key = $1 \
             WHERE h.host = $2 AND h.aggregate_id <> $3 AND m.meta_value <> $4",
        )
        .bind(AZ_KEY)
        .bind(h)
        .bind(except)
        .bind(az)
        .fetch_all(&mut *conn)
        .await?;
        for z in zones {
            if !out.contains(&z) {
                out.push(z);
            }
        }
    }
    Ok(out)
}

/// How many live servers the hosts run.
pub async fn instances_on_hosts(conn: &mut Conn, hosts: &[String]) -> Result<i64> {
    let mut n = 0;
    for h in hosts {
        let c: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM instances WHERE host = $1 AND deleted = 0")
                .bind(h)
                .fetch_one(&mut *conn)
                .await?;
        n += c;
    }
    Ok(n)
}

/// Writes each host's zone (as [`super::hosts`] reads it now) on its
/// servers and stamps its node for the scheduler's cache.
async fn hosts_changed(conn: &mut Conn, hosts: &[String]) -> Result<()> {
    let now = now_db();
    for h in hosts {
        sqlx::query(
            "UPDATE instances SET availability_zone = (SELECT COALESCE((SELECT MIN(m.meta_value) \
             FROM aggregate_hosts ah JOIN aggregate_metadata m ON m.aggregate_id = ah.aggregate_id \
             AND m.meta_key = 'availability_zone' WHERE ah.host = $1), \
             (SELECT n.availability_zone FROM compute_nodes n WHERE n.host = $1), \
             instances.availability_zone)) WHERE host = $1 AND deleted = 0",
        )
        .bind(h)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE compute_nodes SET updated_at = $1 WHERE host = $2")
            .bind(&now)
            .bind(h)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Renames and/or merges `metadata` (a `None` value removes the key).
pub async fn aggregate_update(
    conn: &mut Conn,
    id: i64,
    name: Option<&str>,
    metadata: &BTreeMap<String, Option<String>>,
) -> Result<Aggregate> {
    let mut tx = super::begin(conn).await?;
    let before = aggregate_get(&mut tx, id).await?;
    if let Some(n) = name {
        if name_taken(&mut tx, n, Some(id)).await? {
            return Err(name_exists(n));
        }
        sqlx::query("UPDATE aggregates SET name = $1 WHERE id = $2")
            .bind(n)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    for (k, v) in metadata {
        sqlx::query("DELETE FROM aggregate_metadata WHERE aggregate_id = $1 AND meta_key = $2")
            .bind(id)
            .bind(k)
            .execute(&mut *tx)
            .await?;
        if let Some(v) = v {
            sqlx::query(
                "INSERT INTO aggregate_metadata (aggregate_id, meta_key, meta_value) \
                 VALUES ($1,$2,$3)",
            )
            .bind(id)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("UPDATE aggregates SET updated_at = $1 WHERE id = $2")
        .bind(now_db())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if metadata.contains_key(AZ_KEY) {
        hosts_changed(&mut tx, &before.hosts).await?;
    }
    let a = aggregate_get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(a)
}

pub async fn aggregate_add_host(conn: &mut Conn, id: i64, host: &str) -> Result<Aggregate> {
    let mut tx = super::begin(conn).await?;
    let a = aggregate_get(&mut tx, id).await?;
    if a.hosts.iter().any(|h| h == host) {
        return Err(ComputeError::Conflict(format!(
            "Aggregate {id} already has host {host}."
        )));
    }
    sqlx::query("INSERT INTO aggregate_hosts (aggregate_id, host) VALUES ($1,$2)")
        .bind(id)
        .bind(host)
        .execute(&mut *tx)
        .await?;
    if a.availability_zone().is_some() {
        hosts_changed(&mut tx, &[host.to_owned()]).await?;
    }
    let a = aggregate_get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(a)
}

/// Removes a host; `NotFound` when the aggregate does not hold it.
pub async fn aggregate_remove_host(conn: &mut Conn, id: i64, host: &str) -> Result<Aggregate> {
    let mut tx = super::begin(conn).await?;
    let a = aggregate_get(&mut tx, id).await?;
    let gone = sqlx::query("DELETE FROM aggregate_hosts WHERE aggregate_id = $1 AND host = $2")
        .bind(id)
        .bind(host)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ComputeError::NotFound(format!(
            "Aggregate {id} has no host {host}."
        )));
    }
    if a.availability_zone().is_some() {
        hosts_changed(&mut tx, &[host.to_owned()]).await?;
    }
    let a = aggregate_get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(a)
}

/// Deletes an empty aggregate (Nova's 400 for one that holds hosts).
pub async fn aggregate_delete(conn: &mut Conn, id: i64) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    let a = aggregate_get(&mut tx, id).await?;
    if !a.hosts.is_empty() {
        return Err(ComputeError::BadRequest(format!(
            "Cannot remove host from aggregate {id}. Reason: Host aggregate is not empty."
        )));
    }
    sqlx::query("DELETE FROM aggregate_metadata WHERE aggregate_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM aggregates WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The zones aggregates define, each with its hosts.
pub async fn zones(conn: &mut Conn) -> Result<BTreeMap<String, Vec<String>>> {
    let rows = sqlx::query(
        "SELECT m.meta_value AS zone, h.host AS host FROM aggregate_metadata m \
         LEFT JOIN aggregate_hosts h ON h.aggregate_id = m.aggregate_id WHERE m.meta_key = $1",
    )
    .bind(AZ_KEY)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &rows {
        let hosts = out.entry(get_s(r, "zone")?).or_default();
        if let Some(h) = get_os(r, "host")? {
            hosts.push(h);
        }
    }
    Ok(out)
}
