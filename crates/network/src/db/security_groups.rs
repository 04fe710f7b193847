//! Security groups, their rules, and each project's default group.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_common::ids::{ProjectId, SecurityGroupId};
use stratus_common::time::to_db;
use stratus_db::b2i;
use uuid::Uuid;

use super::{bind_all, flag, parse, parse_opt, placeholders, ts, Conn};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct SecurityGroup {
    pub id: SecurityGroupId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub stateful: bool,
    pub rules: Vec<Rule>,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub id: Uuid,
    pub security_group_id: SecurityGroupId,
    pub project_id: ProjectId,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group_id: Option<SecurityGroupId>,
    pub description: String,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const SG_COLS: &str =
    "id, project_id, name, description, stateful, revision_number, created_at, updated_at";
const RULE_COLS: &str = "id, security_group_id, project_id, direction, ethertype, protocol, \
    port_range_min, port_range_max, remote_ip_prefix, remote_group_id, description, \
    revision_number, created_at, updated_at";

fn sg_from_row(r: &AnyRow) -> Result<SecurityGroup> {
    Ok(SecurityGroup {
        id: parse(r, "id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        stateful: flag(r, "stateful")?,
        rules: Vec::new(),
        revision_number: r.try_get("revision_number")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn rule_from_row(r: &AnyRow) -> Result<Rule> {
    Ok(Rule {
        id: parse(r, "id")?,
        security_group_id: parse(r, "security_group_id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        direction: r.try_get("direction")?,
        ethertype: r.try_get("ethertype")?,
        protocol: r.try_get("protocol")?,
        port_range_min: r.try_get("port_range_min")?,
        port_range_max: r.try_get("port_range_max")?,
        remote_ip_prefix: parse_opt(r, "remote_ip_prefix")?,
        remote_group_id: parse_opt(r, "remote_group_id")?,
        description: r.try_get("description")?,
        revision_number: r.try_get("revision_number")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

/// Inserts the group row only (rules with [`rule_insert`]).
pub async fn sg_insert(conn: &mut Conn, g: &SecurityGroup) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO security_groups ({SG_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(g.id.to_string())
    .bind(g.project_id.as_str())
    .bind(&g.name)
    .bind(&g.description)
    .bind(b2i(g.stateful))
    .bind(g.revision_number)
    .bind(to_db(g.created_at))
    .bind(to_db(g.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn rule_insert(conn: &mut Conn, r: &Rule) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO security_group_rules ({RULE_COLS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    ))
    .bind(r.id.to_string())
    .bind(r.security_group_id.to_string())
    .bind(r.project_id.as_str())
    .bind(&r.direction)
    .bind(&r.ethertype)
    .bind(r.protocol.clone())
    .bind(r.port_range_min)
    .bind(r.port_range_max)
    .bind(r.remote_ip_prefix.map(|p| p.to_string()))
    .bind(r.remote_group_id.map(|g| g.to_string()))
    .bind(&r.description)
    .bind(r.revision_number)
    .bind(to_db(r.created_at))
    .bind(to_db(r.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

async fn attach_rules(conn: &mut Conn, groups: &mut [SecurityGroup]) -> Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = groups.iter().map(|g| g.id.to_string()).collect();
    let index: HashMap<String, usize> = ids.iter().cloned().zip(0..).collect();
    let sql = format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE security_group_id IN ({}) \
         ORDER BY created_at, id",
        placeholders(1, ids.len())
    );
    let rows = bind_all(&sql, &ids).fetch_all(conn).await?;
    for r in &rows {
        let rule = rule_from_row(r)?;
        if let Some(&i) = index.get(&rule.security_group_id.to_string()) {
            groups[i].rules.push(rule);
        }
    }
    Ok(())
}

pub async fn sg_get(conn: &mut Conn, id: &SecurityGroupId) -> Result<Option<SecurityGroup>> {
    let row = sqlx::query(&format!(
        "SELECT {SG_COLS} FROM security_groups WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut v = vec![sg_from_row(&row)?];
    attach_rules(conn, &mut v).await?;
    Ok(v.pop())
}

pub async fn sg_list(
    conn: &mut Conn,
    visible_to: Option<&ProjectId>,
) -> Result<Vec<SecurityGroup>> {
    let rows = match visible_to {
        None => {
            sqlx::query(&format!(
                "SELECT {SG_COLS} FROM security_groups ORDER BY created_at, id"
            ))
            .fetch_all(&mut *conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
            "SELECT {SG_COLS} FROM security_groups WHERE project_id = $1 ORDER BY created_at, id"
        ))
            .bind(p.as_str())
            .fetch_all(&mut *conn)
            .await?
        }
    };
    let mut v = rows.iter().map(sg_from_row).collect::<Result<Vec<_>>>()?;
    attach_rules(conn, &mut v).await?;
    Ok(v)
}

pub async fn sg_update(conn: &mut Conn, g: &SecurityGroup) -> Result<()> {
    sqlx::query(
        "UPDATE security_groups SET name = $2, description = $3, updated_at = $4, \
         revision_number = revision_number + 1 WHERE id = $1",
    )
    .bind(g.id.to_string())
    .bind(&g.name)
    .bind(&g.description)
    .bind(to_db(g.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn sg_delete(conn: &mut Conn, id: &SecurityGroupId) -> Result<()> {
    for sql in [
        "DELETE FROM security_group_rules WHERE security_group_id = $1",
        "DELETE FROM default_security_groups WHERE security_group_id = $1",
        "DELETE FROM security_groups WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Whether any port uses the group (directly, or as a rule's remote group).
pub async fn sg_in_use(conn: &mut Conn, id: &SecurityGroupId) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM port_security_groups WHERE security_group_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

pub async fn sg_count(conn: &mut Conn, project: &ProjectId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM security_groups WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_one(conn)
            .await?,
    )
}

pub async fn rule_get(conn: &mut Conn, id: &Uuid) -> Result<Option<Rule>> {
    let row = sqlx::query(&format!(
        "SELECT {RULE_COLS} FROM security_group_rules WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(rule_from_row).transpose()
}

pub async fn rule_list(conn: &mut Conn, visible_to: Option<&ProjectId>) -> Result<Vec<Rule>> {
    let rows = match visible_to {
        None => {
            sqlx::query(&format!(
                "SELECT {RULE_COLS} FROM security_group_rules ORDER BY created_at, id"
            ))
            .fetch_all(conn)
            .await?
        }
        Some(p) => {
            // A project sees the rules of its own groups, whoever made them.
            sqlx::query(&format!(
                "SELECT {RULE_COLS} FROM security_group_rules WHERE project_id = $1 OR \
                 security_group_id IN (SELECT id FROM security_groups WHERE project_id = $1) \
                 ORDER BY created_at, id"
            ))
            .bind(p.as_str())
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(rule_from_row).collect()
}

pub async fn rule_delete(conn: &mut Conn, id: &Uuid) -> Result<()> {
    sqlx::query("DELETE FROM security_group_rules WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn rule_count(conn: &mut Conn, project: &ProjectId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM security_group_rules WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_one(conn)
            .await?,
    )
}

pub async fn default_sg_get(
    conn: &mut Conn,
    project: &ProjectId,
) -> Result<Option<SecurityGroupId>> {
    let row =
        sqlx::query("SELECT security_group_id FROM default_security_groups WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_optional(conn)
            .await?;
    row.as_ref()
        .map(|r| parse(r, "security_group_id"))
        .transpose()
}

/// Records `group` as the project's default; false if another request won.
pub async fn default_sg_claim(
    conn: &mut Conn,
    project: &ProjectId,
    group: &SecurityGroupId,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO default_security_groups (project_id, security_group_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(project.as_str())
    .bind(group.to_string())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether a group is some project's default group.
pub async fn sg_is_default(conn: &mut Conn, id: &SecurityGroupId) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM default_security_groups WHERE security_group_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// The addresses of the ports in each group (for remote-group rules).
pub async fn sg_members(
    conn: &mut Conn,
    groups: &[SecurityGroupId],
) -> Result<HashMap<SecurityGroupId, Vec<IpAddr>>> {
    let mut m: HashMap<SecurityGroupId, Vec<IpAddr>> = HashMap::new();
    if groups.is_empty() {
        return Ok(m);
    }
    let ids: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let sql = format!(
        "SELECT b.security_group_id, a.ip_address FROM port_security_groups b \
         JOIN ip_allocations a ON a.port_id = b.port_id WHERE b.security_group_id IN ({}) \
         ORDER BY a.ip_address",
        placeholders(1, ids.len())
    );
    let rows = bind_all(&sql, &ids).fetch_all(conn).await?;
    for g in groups {
        m.entry(*g).or_default();
    }
    for r in &rows {
        m.entry(parse(r, "security_group_id")?)
            .or_default()
            .push(parse(r, "ip_address")?);
    }
    Ok(m)
}

/// `(group, remote group)` for every rule of a group that names one of
/// `remotes` as remote group (distinct pairs).
pub async fn rules_naming_remote_groups(
    conn: &mut Conn,
    remotes: &[SecurityGroupId],
) -> Result<Vec<(SecurityGroupId, SecurityGroupId)>> {
    if remotes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = remotes.iter().map(|g| g.to_string()).collect();
    let sql = format!(
        "SELECT DISTINCT security_group_id, remote_group_id FROM security_group_rules \
         WHERE remote_group_id IN ({})",
        placeholders(1, ids.len())
    );
    let rows = bind_all(&sql, &ids).fetch_all(conn).await?;
    rows.iter()
        .map(|r| Ok((parse(r, "security_group_id")?, parse(r, "remote_group_id")?)))
        .collect()
}
