//! Networks.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use stratus_common::ids::{NetworkId, ProjectId};
use stratus_common::time::to_db;
use stratus_db::b2i;

use super::{flag, is_fk_violation, parse, ts, Conn, Write};
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
    /// The provider segment (`local`, `flat`, `vlan`, `vxlan`).
    pub segment: Segment,
    pub router_external: bool,
    pub availability_zone_hints: Vec<String>,
}

/// A network's one segment, as ML2's `provider:*` attributes show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
}

impl Segment {
    pub fn local() -> Self {
        Segment {
            network_type: "local".to_owned(),
            physical_network: None,
            segmentation_id: None,
        }
    }

    /// What no two networks may hold at once (`None`: nothing exclusive).
    pub fn key(&self) -> Option<String> {
        match self.network_type.as_str() {
            "local" => None,
            t => Some(format!(
                "{t}:{}:{}",
                self.physical_network.as_deref().unwrap_or(""),
                self.segmentation_id
                    .map(|i| i.to_string())
                    .unwrap_or_default()
            )),
        }
    }
}

const COLS: &str = "id, project_id, name, description, admin_state_up, shared, mtu, status, \
                    port_security_enabled, revision_number, created_at, updated_at, \
                    network_type, physical_network, segmentation_id, router_external, \
                    availability_zone_hints";

/// Networks a project sees: its own and those a policy shares with it or
/// with everyone (`access_as_shared`, `access_as_external`). `$1` is the
/// project.
pub(crate) const VISIBLE_TO: &str = "(project_id = $1 OR id IN (SELECT object_id FROM \
     rbac_policies WHERE object_type = 'network' AND (target_tenant = $1 OR target_tenant = '*')))";

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
        segment: Segment {
            network_type: r.try_get("network_type")?,
            physical_network: r.try_get("physical_network")?,
            segmentation_id: r.try_get("segmentation_id")?,
        },
        router_external: flag(r, "router_external")?,
        availability_zone_hints: {
            let s: String = r.try_get("availability_zone_hints")?;
            serde_json::from_str(&s)
                .map_err(|_| NetworkError::internal(format!("bad stored hints: {s}")))?
        },
    })
}

/// Inserts a network; [`Write::Duplicate`] when its segment is taken.
pub async fn network_insert(conn: &mut Conn, n: &Network) -> Result<Write> {
    let hints =
        serde_json::to_string(&n.availability_zone_hints).map_err(NetworkError::internal)?;
    Write::of(
        sqlx::query(&format!(
            "INSERT INTO networks ({COLS}, segment_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
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
        .bind(&n.segment.network_type)
        .bind(n.segment.physical_network.clone())
        .bind(n.segment.segmentation_id)
        .bind(b2i(n.router_external))
        .bind(hints)
        .bind(n.segment.key())
        .execute(conn)
        .await,
    )
}

pub async fn network_get(conn: &mut Conn, id: &NetworkId) -> Result<Option<Network>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM networks WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every network (`None`), or those a project sees: its own, the shared
/// and external ones, and those a policy shares with it.
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
                "SELECT {COLS} FROM networks WHERE {VISIBLE_TO} ORDER BY created_at, id"
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
         mtu = $6, port_security_enabled = $7, updated_at = $8, router_external = $9, \
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
    .bind(b2i(n.router_external))
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether project `p` sees network `id` (see [`network_list`]).
pub async fn network_visible_to(conn: &mut Conn, id: &NetworkId, p: &ProjectId) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM networks WHERE id = $2 AND {VISIBLE_TO}"
    ))
    .bind(p.as_str())
    .bind(id.to_string())
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// Sets the `'*'` mirrors of a network (`shared`, `router_external`).
pub async fn network_set_everyone(
    conn: &mut Conn,
    id: &NetworkId,
    shared: Option<bool>,
    external: Option<bool>,
) -> Result<()> {
    if let Some(v) = shared {
        sqlx::query("UPDATE networks SET shared = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(b2i(v))
            .execute(&mut *conn)
            .await?;
    }
    if let Some(v) = external {
        sqlx::query("UPDATE networks SET router_external = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(b2i(v))
            .execute(&mut *conn)
            .await?;
    }
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

/// The networks a DHCP port serves (in an agent's availability zone).
pub async fn network_ids_with_dhcp_port(conn: &mut Conn) -> Result<Vec<NetworkId>> {
    let rows = sqlx::query("SELECT DISTINCT network_id FROM ports WHERE device_owner = $1")
        .bind(crate::agents::DEVICE_OWNER_DHCP)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| parse(r, "network_id")).collect()
}
