//! Subnet pools (Neutron's `subnet_allocation`) with their prefixes (a
//! child table), and what the allocator needs to know about the subnets
//! cut from them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_common::ids::{NetworkId, ProjectId};
use stratus_common::time::to_db;
use stratus_db::b2i;

use super::address_scopes::AddressScopeId;
use super::{bind_all, flag, parse, parse_opt, placeholders, ts, Conn, Write};
use crate::error::Result;

stratus_common::uuid_id!(
    /// A Neutron subnet pool.
    SubnetPoolId
);

#[derive(Clone, Debug, PartialEq)]
pub struct SubnetPool {
    pub id: SubnetPoolId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    /// Compacted and sorted, as Neutron keeps them.
    pub prefixes: Vec<IpNet>,
    pub default_prefixlen: u8,
    pub min_prefixlen: u8,
    pub max_prefixlen: u8,
    pub shared: bool,
    pub is_default: bool,
    pub default_quota: Option<i64>,
    pub address_scope_id: Option<AddressScopeId>,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A subnet cut from a pool, as the allocator and the scope checks see it.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSubnet {
    pub cidr: IpNet,
    pub project_id: ProjectId,
    pub network_id: NetworkId,
}

const COLS: &str = "id, project_id, name, description, ip_version, default_prefixlen, \
    min_prefixlen, max_prefixlen, shared, is_default, default_quota, address_scope_id, \
    revision_number, created_at, updated_at";

fn small(r: &AnyRow, col: &str) -> Result<u8> {
    let v: i64 = r.try_get(col)?;
    u8::try_from(v).map_err(|_| crate::error::NetworkError::internal(format!("bad stored {col}")))
}

fn from_row(r: &AnyRow) -> Result<SubnetPool> {
    Ok(SubnetPool {
        id: parse(r, "id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        ip_version: small(r, "ip_version")?,
        prefixes: Vec::new(),
        default_prefixlen: small(r, "default_prefixlen")?,
        min_prefixlen: small(r, "min_prefixlen")?,
        max_prefixlen: small(r, "max_prefixlen")?,
        shared: flag(r, "shared")?,
        is_default: flag(r, "is_default")?,
        default_quota: r.try_get("default_quota")?,
        address_scope_id: parse_opt(r, "address_scope_id")?,
        revision_number: r.try_get("revision_number")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

/// Fills the prefixes of `pools` in one query.
async fn attach_prefixes(conn: &mut Conn, pools: &mut [SubnetPool]) -> Result<()> {
    if pools.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = pools.iter().map(|p| p.id.to_string()).collect();
    let index: HashMap<String, usize> = ids.iter().cloned().zip(0..).collect();
    let sql = format!(
        "SELECT subnetpool_id, cidr FROM subnetpool_prefixes WHERE subnetpool_id IN ({})",
        placeholders(1, ids.len())
    );
    let rows = bind_all(&sql, &ids).fetch_all(&mut *conn).await?;
    for r in &rows {
        let id: String = r.try_get("subnetpool_id")?;
        if let Some(&i) = index.get(&id) {
            pools[i].prefixes.push(parse(r, "cidr")?);
        }
    }
    for p in pools.iter_mut() {
        p.prefixes.sort();
    }
    Ok(())
}

async fn write_prefixes(conn: &mut Conn, p: &SubnetPool) -> Result<()> {
    sqlx::query("DELETE FROM subnetpool_prefixes WHERE subnetpool_id = $1")
        .bind(p.id.to_string())
        .execute(&mut *conn)
        .await?;
    for cidr in &p.prefixes {
        sqlx::query("INSERT INTO subnetpool_prefixes (subnetpool_id, cidr) VALUES ($1, $2)")
            .bind(p.id.to_string())
            .bind(cidr.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts a pool. `Duplicate`: another default pool of its IP version
/// exists; `Dangling`: its address scope is gone.
pub async fn subnet_pool_insert(conn: &mut Conn, p: &SubnetPool) -> Result<Write> {
    let w = Write::of(
        sqlx::query(&format!(
            "INSERT INTO subnetpools ({COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(p.id.to_string())
        .bind(p.project_id.as_str())
        .bind(&p.name)
        .bind(&p.description)
        .bind(i64::from(p.ip_version))
        .bind(i64::from(p.default_prefixlen))
        .bind(i64::from(p.min_prefixlen))
        .bind(i64::from(p.max_prefixlen))
        .bind(b2i(p.shared))
        .bind(b2i(p.is_default))
        .bind(p.default_quota)
        .bind(p.address_scope_id.map(|a| a.to_string()))
        .bind(p.revision_number)
        .bind(to_db(p.created_at))
        .bind(to_db(p.updated_at))
        .execute(&mut *conn)
        .await,
    )?;
    if w == Write::Done {
        write_prefixes(conn, p).await?;
    }
    Ok(w)
}

/// Writes the mutable attributes and prefixes and bumps the revision;
/// outcomes as [`subnet_pool_insert`].
pub async fn subnet_pool_update(conn: &mut Conn, p: &SubnetPool) -> Result<Write> {
    let w = Write::of(
        sqlx::query(
            "UPDATE subnetpools SET name = $2, description = $3, default_prefixlen = $4, \
             min_prefixlen = $5, max_prefixlen = $6, is_default = $7, default_quota = $8, \
             address_scope_id = $9, updated_at = $10, revision_number = revision_number + 1 \
             WHERE id = $1",
        )
        .bind(p.id.to_string())
        .bind(&p.name)
        .bind(&p.description)
        .bind(i64::from(p.default_prefixlen))
        .bind(i64::from(p.min_prefixlen))
        .bind(i64::from(p.max_prefixlen))
        .bind(b2i(p.is_default))
        .bind(p.default_quota)
        .bind(p.address_scope_id.map(|a| a.to_string()))
        .bind(to_db(p.updated_at))
        .execute(&mut *conn)
        .await,
    )?;
    if w == Write::Done {
        write_prefixes(conn, p).await?;
    }
    Ok(w)
}

pub async fn subnet_pool_get(conn: &mut Conn, id: &SubnetPoolId) -> Result<Option<SubnetPool>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM subnetpools WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![from_row(&row)?];
    attach_prefixes(conn, &mut v).await?;
    Ok(v.pop())
}

/// Every pool (`None`), or those a project owns plus the shared ones.
pub async fn subnet_pool_list(
    conn: &mut Conn,
    visible_to: Option<&ProjectId>,
) -> Result<Vec<SubnetPool>> {
    let rows = match visible_to {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM subnetpools ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM subnetpools WHERE project_id = $1 OR shared = 1 \
                 ORDER BY created_at, id"
            ))
            .bind(p.as_str())
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut v = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_prefixes(conn, &mut v).await?;
    Ok(v)
}

/// The default pool of an IP version, if any.
pub async fn subnet_pool_default(conn: &mut Conn, ip_version: u8) -> Result<Option<SubnetPool>> {
    let row = sqlx::query(&format!(
        "SELECT {COLS} FROM subnetpools WHERE is_default = 1 AND ip_version = $1"
    ))
    .bind(i64::from(ip_version))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![from_row(&row)?];
    attach_prefixes(conn, &mut v).await?;
    Ok(v.pop())
}

/// The pools of an address scope.
pub async fn subnet_pools_in_scope(
    conn: &mut Conn,
    scope: &AddressScopeId,
) -> Result<Vec<SubnetPool>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM subnetpools WHERE address_scope_id = $1 ORDER BY created_at, id"
    ))
    .bind(scope.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut v = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_prefixes(conn, &mut v).await?;
    Ok(v)
}

/// Takes the pool's row lock for the rest of the transaction, so that two
/// subnets cut from one pool at once are cut one after the other (Neutron
/// swaps a hash column for the same reason). False: the pool is gone.
pub async fn subnet_pool_lock(conn: &mut Conn, id: &SubnetPoolId) -> Result<bool> {
    let r = sqlx::query("UPDATE subnetpools SET revision_number = revision_number WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// The subnets cut from a pool.
pub async fn subnet_pool_subnets(conn: &mut Conn, id: &SubnetPoolId) -> Result<Vec<PoolSubnet>> {
    let rows = sqlx::query(
        "SELECT cidr, project_id, network_id FROM subnets WHERE subnetpool_id = $1 \
         ORDER BY created_at, id",
    )
    .bind(id.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PoolSubnet {
                cidr: parse(r, "cidr")?,
                project_id: ProjectId(r.try_get("project_id")?),
                network_id: parse(r, "network_id")?,
            })
        })
        .collect()
}

/// Deletes a pool no subnet was cut from; false when one was (checked in
/// the statement, so that a subnet cut meanwhile keeps it).
pub async fn subnet_pool_delete_unused(conn: &mut Conn, id: &SubnetPoolId) -> Result<bool> {
    let r = sqlx::query(
        "DELETE FROM subnetpools WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM subnets WHERE subnetpool_id = $1)",
    )
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}
