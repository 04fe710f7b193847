//! Subnets with their allocation pools, DNS servers and host routes (child
//! tables kept in the order the user gave).

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_common::ids::{NetworkId, ProjectId, SubnetId};
use stratus_common::time::to_db;
use stratus_db::b2i;

use super::subnet_pools::SubnetPoolId;
use super::{bind_all, flag, parse, parse_opt, placeholders, ts, Conn};
use crate::error::Result;
use crate::ipam::Pool;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Subnet {
    pub id: SubnetId,
    pub network_id: NetworkId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub cidr: IpNet,
    pub ip_version: u8,
    pub gateway_ip: Option<IpAddr>,
    pub enable_dhcp: bool,
    pub allocation_pools: Vec<Pool>,
    pub dns_nameservers: Vec<IpAddr>,
    pub host_routes: Vec<HostRoute>,
    /// The pool the CIDR was cut from (`subnet_allocation`).
    pub subnetpool_id: Option<SubnetPoolId>,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLS: &str = "id, network_id, project_id, name, description, cidr, ip_version, gateway_ip, \
                    enable_dhcp, revision_number, created_at, updated_at, subnetpool_id";

fn from_row(r: &AnyRow) -> Result<Subnet> {
    Ok(Subnet {
        id: parse(r, "id")?,
        network_id: parse(r, "network_id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        cidr: parse(r, "cidr")?,
        ip_version: u8::try_from(r.try_get::<i64, _>("ip_version")?).unwrap_or(4),
        gateway_ip: parse_opt(r, "gateway_ip")?,
        enable_dhcp: flag(r, "enable_dhcp")?,
        allocation_pools: Vec::new(),
        dns_nameservers: Vec::new(),
        host_routes: Vec::new(),
        subnetpool_id: parse_opt(r, "subnetpool_id")?,
        revision_number: r.try_get("revision_number")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub async fn subnet_insert(conn: &mut Conn, s: &Subnet) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO subnets ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(s.id.to_string())
    .bind(s.network_id.to_string())
    .bind(s.project_id.as_str())
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.cidr.to_string())
    .bind(i64::from(s.ip_version))
    .bind(s.gateway_ip.map(|g| g.to_string()))
    .bind(b2i(s.enable_dhcp))
    .bind(s.revision_number)
    .bind(to_db(s.created_at))
    .bind(to_db(s.updated_at))
    .bind(s.subnetpool_id.map(|p| p.to_string()))
    .execute(&mut *conn)
    .await?;
    write_children(conn, s).await
}

async fn write_children(conn: &mut Conn, s: &Subnet) -> Result<()> {
    let id = s.id.to_string();
    for table in [
        "subnet_allocation_pools",
        "subnet_dns_nameservers",
        "subnet_host_routes",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE subnet_id = $1"))
            .bind(&id)
            .execute(&mut *conn)
            .await?;
    }
    for (i, p) in s.allocation_pools.iter().enumerate() {
        sqlx::query(
            "INSERT INTO subnet_allocation_pools (subnet_id, position, first_ip, last_ip) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(i as i64)
        .bind(p.start.to_string())
        .bind(p.end.to_string())
        .execute(&mut *conn)
        .await?;
    }
    for (i, d) in s.dns_nameservers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO subnet_dns_nameservers (subnet_id, position, address) VALUES ($1, $2, $3)",
        )
        .bind(&id)
        .bind(i as i64)
        .bind(d.to_string())
        .execute(&mut *conn)
        .await?;
    }
    for (i, r) in s.host_routes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO subnet_host_routes (subnet_id, position, destination, nexthop) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(i as i64)
        .bind(r.destination.to_string())
        .bind(r.nexthop.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Fills pools, DNS servers and routes of `subnets` in three queries.
async fn attach_children(conn: &mut Conn, subnets: &mut [Subnet]) -> Result<()> {
    if subnets.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = subnets.iter().map(|s| s.id.to_string()).collect();
    let index: HashMap<String, usize> = ids.iter().cloned().zip(0..).collect();
    let list = placeholders(1, ids.len());
    let sql = format!(
        "SELECT subnet_id, first_ip, last_ip FROM subnet_allocation_pools \
         WHERE subnet_id IN ({list}) ORDER BY subnet_id, position"
    );
    let rows = bind_all(&sql, &ids).fetch_all(&mut *conn).await?;
    for r in &rows {
        let sid: String = r.try_get("subnet_id")?;
        if let Some(&i) = index.get(&sid) {
            subnets[i].allocation_pools.push(Pool {
                start: parse(r, "first_ip")?,
                end: parse(r, "last_ip")?,
            });
        }
    }
    let sql = format!(
        "SELECT subnet_id, address FROM subnet_dns_nameservers \
         WHERE subnet_id IN ({list}) ORDER BY subnet_id, position"
    );
    let rows = bind_all(&sql, &ids).fetch_all(&mut *conn).await?;
    for r in &rows {
        let sid: String = r.try_get("subnet_id")?;
        if let Some(&i) = index.get(&sid) {
            subnets[i].dns_nameservers.push(parse(r, "address")?);
        }
    }
    let sql = format!(
        "SELECT subnet_id, destination, nexthop FROM subnet_host_routes \
         WHERE subnet_id IN ({list}) ORDER BY subnet_id, position"
    );
    let rows = bind_all(&sql, &ids).fetch_all(&mut *conn).await?;
    for r in &rows {
        let sid: String = r.try_get("subnet_id")?;
        if let Some(&i) = index.get(&sid) {
            subnets[i].host_routes.push(HostRoute {
                destination: parse(r, "destination")?,
                nexthop: parse(r, "nexthop")?,
            });
        }
    }
    Ok(())
}

pub async fn subnet_get(conn: &mut Conn, id: &SubnetId) -> Result<Option<Subnet>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM subnets WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![from_row(&row)?];
    attach_children(conn, &mut v).await?;
    Ok(v.pop())
}

/// Every subnet (`None`), or those a project owns plus those on networks it
/// sees (shared, external, or shared with it by a policy).
pub async fn subnet_list(conn: &mut Conn, visible_to: Option<&ProjectId>) -> Result<Vec<Subnet>> {
    let rows = match visible_to {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM subnets ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM subnets WHERE project_id = $1 OR network_id IN \
                 (SELECT id FROM networks WHERE {}) ORDER BY created_at, id",
                super::networks::VISIBLE_TO
            ))
            .bind(p.as_str())
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut v = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_children(conn, &mut v).await?;
    Ok(v)
}

pub async fn subnet_list_by_network(conn: &mut Conn, network: &NetworkId) -> Result<Vec<Subnet>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM subnets WHERE network_id = $1 ORDER BY created_at, id"
    ))
    .bind(network.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut v = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_children(conn, &mut v).await?;
    Ok(v)
}

/// One network's subnet ids (its `subnets` attribute), oldest first, without
/// the subnets' pools, servers and routes.
pub async fn subnet_ids_of_network(conn: &mut Conn, network: &NetworkId) -> Result<Vec<SubnetId>> {
    let rows = sqlx::query("SELECT id FROM subnets WHERE network_id = $1 ORDER BY created_at, id")
        .bind(network.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| parse(r, "id")).collect()
}

/// Subnet ids per network, for the `subnets` attribute of networks.
pub async fn subnet_ids_by_network(conn: &mut Conn) -> Result<HashMap<NetworkId, Vec<SubnetId>>> {
    let rows = sqlx::query("SELECT id, network_id FROM subnets ORDER BY created_at, id")
        .fetch_all(conn)
        .await?;
    let mut m: HashMap<NetworkId, Vec<SubnetId>> = HashMap::new();
    for r in &rows {
        m.entry(parse(r, "network_id")?)
            .or_default()
            .push(parse(r, "id")?);
    }
    Ok(m)
}

/// Writes the mutable attributes and children and bumps the revision.
pub async fn subnet_update(conn: &mut Conn, s: &Subnet) -> Result<()> {
    sqlx::query(
        "UPDATE subnets SET name = $2, description = $3, gateway_ip = $4, enable_dhcp = $5, \
         updated_at = $6, revision_number = revision_number + 1 WHERE id = $1",
    )
    .bind(s.id.to_string())
    .bind(&s.name)
    .bind(&s.description)
    .bind(s.gateway_ip.map(|g| g.to_string()))
    .bind(b2i(s.enable_dhcp))
    .bind(to_db(s.updated_at))
    .execute(&mut *conn)
    .await?;
    write_children(conn, s).await
}

pub async fn subnet_delete(conn: &mut Conn, id: &SubnetId) -> Result<()> {
    sqlx::query("DELETE FROM subnets WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn subnet_count(conn: &mut Conn, project: &ProjectId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM subnets WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_one(conn)
            .await?,
    )
}
