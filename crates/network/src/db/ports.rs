//! Ports, their IP allocations (the table whose primary key forbids double
//! allocation) and their security group bindings.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_common::ids::{NetworkId, PortId, ProjectId, SecurityGroupId, SubnetId};
use stratus_common::time::to_db;
use stratus_db::b2i;

use super::{bind_all, flag, parse, placeholders, ts, Conn, Write};
use crate::error::{NetworkError, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedIp {
    pub subnet_id: SubnetId,
    pub ip_address: IpAddr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub id: PortId,
    pub network_id: NetworkId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub mac_address: String,
    pub admin_state_up: bool,
    pub status: String,
    pub device_owner: String,
    pub device_id: String,
    pub binding_host: String,
    pub binding_vif_type: String,
    pub binding_vif_details: serde_json::Value,
    pub binding_vnic_type: String,
    pub binding_profile: serde_json::Value,
    pub port_security_enabled: bool,
    pub fixed_ips: Vec<FixedIp>,
    pub security_groups: Vec<SecurityGroupId>,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLS: &str = "id, network_id, project_id, name, description, mac_address, admin_state_up, \
    status, device_owner, device_id, binding_host, binding_vif_type, binding_vif_details, \
    binding_vnic_type, binding_profile, port_security_enabled, revision_number, created_at, \
    updated_at";

fn json_col(r: &AnyRow, col: &str) -> Result<serde_json::Value> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| NetworkError::internal(format!("bad stored {col}: {e}")))
}

fn from_row(r: &AnyRow) -> Result<Port> {
    Ok(Port {
        id: parse(r, "id")?,
        network_id: parse(r, "network_id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        mac_address: r.try_get("mac_address")?,
        admin_state_up: flag(r, "admin_state_up")?,
        status: r.try_get("status")?,
        device_owner: r.try_get("device_owner")?,
        device_id: r.try_get("device_id")?,
        binding_host: r.try_get("binding_host")?,
        binding_vif_type: r.try_get("binding_vif_type")?,
        binding_vif_details: json_col(r, "binding_vif_details")?,
        binding_vnic_type: r.try_get("binding_vnic_type")?,
        binding_profile: json_col(r, "binding_profile")?,
        port_security_enabled: flag(r, "port_security_enabled")?,
        fixed_ips: Vec::new(),
        security_groups: Vec::new(),
        revision_number: r.try_get("revision_number")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

/// Inserts the port row only; addresses and groups are added by the caller
/// in the same transaction. `Duplicate`: the MAC is taken on the network;
/// `Dangling`: the network is gone.
pub async fn port_insert(conn: &mut Conn, p: &Port) -> Result<Write> {
    let r = sqlx::query(&format!(
        "INSERT INTO ports ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19)"
    ))
    .bind(p.id.to_string())
    .bind(p.network_id.to_string())
    .bind(p.project_id.as_str())
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.mac_address)
    .bind(b2i(p.admin_state_up))
    .bind(&p.status)
    .bind(&p.device_owner)
    .bind(&p.device_id)
    .bind(&p.binding_host)
    .bind(&p.binding_vif_type)
    .bind(p.binding_vif_details.to_string())
    .bind(&p.binding_vnic_type)
    .bind(p.binding_profile.to_string())
    .bind(b2i(p.port_security_enabled))
    .bind(p.revision_number)
    .bind(to_db(p.created_at))
    .bind(to_db(p.updated_at))
    .execute(conn)
    .await;
    Write::of(r)
}

/// Claims an address. `Duplicate`: someone else holds it; `Dangling`: the
/// subnet (or the port) is gone.
pub async fn allocation_insert(
    conn: &mut Conn,
    network: &NetworkId,
    subnet: &SubnetId,
    ip: IpAddr,
    port: &PortId,
) -> Result<Write> {
    let r = sqlx::query(
        "INSERT INTO ip_allocations (subnet_id, ip_address, network_id, port_id) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(subnet.to_string())
    .bind(ip.to_string())
    .bind(network.to_string())
    .bind(port.to_string())
    .execute(conn)
    .await;
    Write::of(r)
}

pub async fn allocations_for_subnet(conn: &mut Conn, subnet: &SubnetId) -> Result<Vec<IpAddr>> {
    let rows = sqlx::query("SELECT ip_address FROM ip_allocations WHERE subnet_id = $1")
        .bind(subnet.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| parse(r, "ip_address")).collect()
}

pub async fn allocation_delete(
    conn: &mut Conn,
    port: &PortId,
    subnet: &SubnetId,
    ip: IpAddr,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM ip_allocations WHERE port_id = $1 AND subnet_id = $2 AND ip_address = $3",
    )
    .bind(port.to_string())
    .bind(subnet.to_string())
    .bind(ip.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn allocations_delete_for_port(conn: &mut Conn, port: &PortId) -> Result<()> {
    sqlx::query("DELETE FROM ip_allocations WHERE port_id = $1")
        .bind(port.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Drops a port's addresses on one subnet.
pub async fn allocation_delete_on_subnet(
    conn: &mut Conn,
    port: &PortId,
    subnet: &SubnetId,
) -> Result<()> {
    sqlx::query("DELETE FROM ip_allocations WHERE port_id = $1 AND subnet_id = $2")
        .bind(port.to_string())
        .bind(subnet.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Ports holding an address on a subnet, with their device owner.
pub async fn ports_on_subnet(conn: &mut Conn, subnet: &SubnetId) -> Result<Vec<(PortId, String)>> {
    let rows = sqlx::query(
        "SELECT p.id, p.device_owner FROM ports p JOIN ip_allocations a ON a.port_id = p.id \
         WHERE a.subnet_id = $1",
    )
    .bind(subnet.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok((parse(r, "id")?, r.try_get("device_owner")?)))
        .collect()
}

pub async fn port_sg_replace(
    conn: &mut Conn,
    port: &PortId,
    groups: &[SecurityGroupId],
) -> Result<()> {
    sqlx::query("DELETE FROM port_security_groups WHERE port_id = $1")
        .bind(port.to_string())
        .execute(&mut *conn)
        .await?;
    for g in groups {
        sqlx::query(
            "INSERT INTO port_security_groups (port_id, security_group_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(port.to_string())
        .bind(g.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The hosts with a bound port in one of `groups`, each once, sorted;
/// ports owned by `except_owner`, and `except_port`, do not count.
pub async fn port_hosts_in_groups(
    conn: &mut Conn,
    groups: &[SecurityGroupId],
    except_owner: &str,
    except_port: Option<&PortId>,
) -> Result<Vec<String>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut vals: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    vals.push(except_owner.to_owned());
    let mut sql = format!(
        "SELECT DISTINCT p.binding_host FROM ports p \
         JOIN port_security_groups b ON b.port_id = p.id \
         WHERE b.security_group_id IN ({}) AND p.binding_host <> '' AND p.device_owner <> ${}",
        placeholders(1, groups.len()),
        vals.len()
    );
    if let Some(p) = except_port {
        vals.push(p.to_string());
        sql.push_str(&format!(" AND p.id <> ${}", vals.len()));
    }
    sql.push_str(" ORDER BY p.binding_host");
    let rows = bind_all(&sql, &vals).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| Ok(r.try_get("binding_host")?))
        .collect()
}

/// Fills `fixed_ips` and `security_groups` of `ports`.
async fn attach_children(conn: &mut Conn, ports: &mut [Port]) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = ports.iter().map(|p| p.id.to_string()).collect();
    let index: HashMap<String, usize> = ids.iter().cloned().zip(0..).collect();
    let list = placeholders(1, ids.len());
    let sql = format!(
        "SELECT port_id, subnet_id, ip_address FROM ip_allocations WHERE port_id IN ({list})"
    );
    let rows = bind_all(&sql, &ids).fetch_all(&mut *conn).await?;
    for r in &rows {
        let pid: String = r.try_get("port_id")?;
        if let Some(&i) = index.get(&pid) {
            ports[i].fixed_ips.push(FixedIp {
                subnet_id: parse(r, "subnet_id")?,
                ip_address: parse(r, "ip_address")?,
            });
        }
    }
    let sql = format!(
        "SELECT port_id, security_group_id FROM port_security_groups WHERE port_id IN ({list})"
    );
    let rows = bind_all(&sql, &ids).fetch_all(&mut *conn).await?;
    for r in &rows {
        let pid: String = r.try_get("port_id")?;
        if let Some(&i) = index.get(&pid) {
            ports[i]
                .security_groups
                .push(parse(r, "security_group_id")?);
        }
    }
    for p in ports.iter_mut() {
        // Addresses in a stable order: by subnet creation is not known
        // here, so by address; groups by id.
        p.fixed_ips.sort_by_key(|f| f.ip_address);
        p.security_groups.sort();
    }
    Ok(())
}

pub async fn port_get(conn: &mut Conn, id: &PortId) -> Result<Option<Port>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM ports WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![from_row(&row)?];
    attach_children(conn, &mut v).await?;
    Ok(v.pop())
}

/// Narrowing done in SQL for the lookups agents and compute make often.
#[derive(Default, Clone, Debug)]
pub struct PortScope<'a> {
    pub project: Option<&'a ProjectId>,
    pub network: Option<&'a NetworkId>,
    pub device_id: Option<&'a str>,
}

pub async fn port_list(conn: &mut Conn, scope: PortScope<'_>) -> Result<Vec<Port>> {
    let mut conds = Vec::new();
    let mut vals = Vec::new();
    if let Some(p) = scope.project {
        vals.push(p.as_str().to_owned());
        conds.push(format!("project_id = ${}", vals.len()));
    }
    if let Some(n) = scope.network {
        vals.push(n.to_string());
        conds.push(format!("network_id = ${}", vals.len()));
    }
    if let Some(d) = scope.device_id {
        vals.push(d.to_owned());
        conds.push(format!("device_id = ${}", vals.len()));
    }
    let wher = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    let sql = format!("SELECT {COLS} FROM ports {wher} ORDER BY created_at, id");
    let rows = bind_all(&sql, &vals).fetch_all(&mut *conn).await?;
    let mut v = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    attach_children(conn, &mut v).await?;
    Ok(v)
}

/// Writes the mutable attributes and bumps the revision.
pub async fn port_update(conn: &mut Conn, p: &Port) -> Result<()> {
    sqlx::query(
        "UPDATE ports SET name = $2, description = $3, admin_state_up = $4, status = $5, \
         device_owner = $6, device_id = $7, binding_host = $8, binding_vif_type = $9, \
         binding_vif_details = $10, binding_vnic_type = $11, binding_profile = $12, \
         port_security_enabled = $13, updated_at = $14, revision_number = revision_number + 1 \
         WHERE id = $1",
    )
    .bind(p.id.to_string())
    .bind(&p.name)
    .bind(&p.description)
    .bind(b2i(p.admin_state_up))
    .bind(&p.status)
    .bind(&p.device_owner)
    .bind(&p.device_id)
    .bind(&p.binding_host)
    .bind(&p.binding_vif_type)
    .bind(p.binding_vif_details.to_string())
    .bind(&p.binding_vnic_type)
    .bind(p.binding_profile.to_string())
    .bind(b2i(p.port_security_enabled))
    .bind(to_db(p.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets the status; returns the previous one, or `None` if the port is gone.
pub async fn port_set_status(conn: &mut Conn, id: &PortId, status: &str) -> Result<Option<String>> {
    let old: Option<String> = sqlx::query_scalar("SELECT status FROM ports WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(old) = old else { return Ok(None) };
    if old != status {
        sqlx::query(
            "UPDATE ports SET status = $2, updated_at = $3, revision_number = revision_number + 1 \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(status)
        .bind(to_db(stratus_common::time::now()))
        .execute(conn)
        .await?;
    }
    Ok(Some(old))
}

pub async fn port_delete(conn: &mut Conn, id: &PortId) -> Result<()> {
    // Children go first so that engines without cascading still agree.
    for sql in [
        "DELETE FROM ip_allocations WHERE port_id = $1",
        "DELETE FROM port_security_groups WHERE port_id = $1",
        "DELETE FROM ports WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn port_count(conn: &mut Conn, project: &ProjectId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM ports WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_one(conn)
            .await?,
    )
}
