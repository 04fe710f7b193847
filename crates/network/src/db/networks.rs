//! Networks.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use stratus_common::ids::{NetworkId, ProjectId};
use stratus_common::time::to_db;
use stratus_db::b2i;

use super::{flag, is_fk_violation, parse, ts, Conn};
use crate::error::{NetworkError, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub id: NetworkId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub shared: bool,
    pub mtu: i64,
    pub status: String,
    pub port_security_enabled: bool,
    pub revision_number: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLS: &str = "id, project_id, name, description, admin_state_up, shared, mtu, status, \
                    port_security_enabled, revision_number, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<Network> {
    use sqlx::Row;
    Ok(Network {
        id: parse(r, "id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        admin_state_up: flag(r, "admin_state_up")?,
        shared: flag(r, "shared")?,
        mtu: r.try_get("mtu")?,
        status: r.try_get("status")?,
        port_security_enabled: flag(r, "port_security_enabled")?,
        revision_number: r.try_get("revision_number")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

pub async fn network_insert(conn: &mut Conn, n: &Network) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO networks ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(n.id.to_string())
    .bind(n.project_id.as_str())
    .bind(&n.name)
    .bind(&n.description)
    .bind(b2i(n.admin_state_up))
    .bind(b2i(n.shared))
    .bind(n.mtu)
    .bind(&n.status)
    .bind(b2i(n.port_security_enabled))
    .bind(n.revision_number)
    .bind(to_db(n.created_at))
    .bind(to_db(n.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn network_get(conn: &mut Conn, id: &NetworkId) -> Result<Option<Network>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM networks WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every network (`None`), or those a project owns plus the shared ones.
pub async fn network_list(conn: &mut Conn, visible_to: Option<&ProjectId>) -> Result<Vec<Network>> {
    let rows = match visible_to {
        None => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM networks ORDER BY created_at, id"
            ))
            .fetch_all(conn)
            .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM networks WHERE project_id = $1 OR shared = 1 \
                 ORDER BY created_at, id"
            ))
            .bind(p.as_str())
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// Writes the mutable attributes and bumps the revision.
pub async fn network_update(conn: &mut Conn, n: &Network) -> Result<()> {
    sqlx::query(
        "UPDATE networks SET name = $2, description = $3, admin_state_up = $4, shared = $5, \
         mtu = $6, port_security_enabled = $7, updated_at = $8, \
         revision_number = revision_number + 1 WHERE id = $1",
    )
    .bind(n.id.to_string())
    .bind(&n.name)
    .bind(&n.description)
    .bind(b2i(n.admin_state_up))
    .bind(b2i(n.shared))
    .bind(n.mtu)
    .bind(b2i(n.port_security_enabled))
    .bind(to_db(n.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes the network row; `NetworkInUse` when a port or subnet still
/// refers to it (one created meanwhile: the caller removed those it saw).
pub async fn network_delete(conn: &mut Conn, id: &NetworkId) -> Result<()> {
    sqlx::query("DELETE FROM networks WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await
        .map_err(|e| {
            if is_fk_violation(&e) {
                NetworkError::NetworkInUse(id.to_string())
            } else {
                e.into()
            }
        })?;
    Ok(())
}

pub async fn network_count(conn: &mut Conn, project: &ProjectId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM networks WHERE project_id = $1")
            .bind(project.as_str())
            .fetch_one(conn)
            .await?,
    )
}
