//! RBAC policies (`/v2.0/rbac-policies`): which projects (or `'*'`) may use
//! a network as shared, or see it as external.

use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_common::ids::{NetworkId, ProjectId};

use super::{parse, Conn, Write};
use crate::error::Result;

stratus_common::uuid_id!(
    /// A Neutron RBAC policy.
    RbacPolicyId
);

pub const ACCESS_AS_SHARED: &str = "access_as_shared";
pub const ACCESS_AS_EXTERNAL: &str = "access_as_external";
/// The target that means every project.
pub const EVERYONE: &str = "*";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RbacPolicy {
    pub id: RbacPolicyId,
    pub project_id: ProjectId,
    pub object_type: String,
    pub object_id: NetworkId,
    pub action: String,
    pub target_tenant: String,
}

const COLS: &str = "id, project_id, object_type, object_id, action, target_tenant";

fn from_row(r: &AnyRow) -> Result<RbacPolicy> {
    Ok(RbacPolicy {
        id: parse(r, "id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        object_type: r.try_get("object_type")?,
        object_id: parse(r, "object_id")?,
        action: r.try_get("action")?,
        target_tenant: r.try_get("target_tenant")?,
    })
}

/// Inserts a policy: [`Write::Duplicate`] when the same one exists,
/// [`Write::Dangling`] when its network is gone.
pub async fn rbac_insert(conn: &mut Conn, p: &RbacPolicy) -> Result<Write> {
    Write::of(
        sqlx::query(&format!(
            "INSERT INTO rbac_policies ({COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(p.id.to_string())
        .bind(p.project_id.as_str())
        .bind(&p.object_type)
        .bind(p.object_id.to_string())
        .bind(&p.action)
        .bind(&p.target_tenant)
        .execute(conn)
        .await,
    )
}

pub async fn rbac_get(conn: &mut Conn, id: &RbacPolicyId) -> Result<Option<RbacPolicy>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM rbac_policies WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every policy (`None`), or those a project owns.
pub async fn rbac_list(conn: &mut Conn, owner: Option<&ProjectId>) -> Result<Vec<RbacPolicy>> {
    let rows = match owner {
        None => {
            sqlx::query(&format!("SELECT {COLS} FROM rbac_policies ORDER BY id"))
                .fetch_all(conn)
                .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM rbac_policies WHERE project_id = $1 ORDER BY id"
            ))
            .bind(p.as_str())
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// The policies on one network.
pub async fn rbac_list_for_network(conn: &mut Conn, net: &NetworkId) -> Result<Vec<RbacPolicy>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM rbac_policies WHERE object_type = 'network' AND object_id = $1 \
         ORDER BY id"
    ))
    .bind(net.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The networks shared with project `p` by name (not through `'*'`), for
/// the `shared` attribute as that project sees it.
pub async fn rbac_shared_with(conn: &mut Conn, p: &ProjectId) -> Result<Vec<NetworkId>> {
    let rows = sqlx::query(
        "SELECT object_id FROM rbac_policies WHERE object_type = 'network' \
         AND action = 'access_as_shared' AND target_tenant = $1",
    )
    .bind(p.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(|r| parse(r, "object_id")).collect()
}

/// Changes a policy's target: [`Write::Duplicate`] when that policy exists.
pub async fn rbac_set_target(conn: &mut Conn, id: &RbacPolicyId, target: &str) -> Result<Write> {
    Write::of(
        sqlx::query("UPDATE rbac_policies SET target_tenant = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(target)
            .execute(conn)
            .await,
    )
}

pub async fn rbac_delete(conn: &mut Conn, id: &RbacPolicyId) -> Result<()> {
    sqlx::query("DELETE FROM rbac_policies WHERE id = $1")
        .bind(id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the `(network, action, target)` policy if there is one.
pub async fn rbac_delete_matching(
    conn: &mut Conn,
    net: &NetworkId,
    action: &str,
    target: &str,
) -> Result<()> {
    sqlx::query(
        "DELETE FROM rbac_policies WHERE object_type = 'network' AND object_id = $1 \
         AND action = $2 AND target_tenant = $3",
    )
    .bind(net.to_string())
    .bind(action)
    .bind(target)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes every policy of `action` on a network.
pub async fn rbac_delete_action(conn: &mut Conn, net: &NetworkId, action: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM rbac_policies WHERE object_type = 'network' AND object_id = $1 \
         AND action = $2",
    )
    .bind(net.to_string())
    .bind(action)
    .execute(conn)
    .await?;
    Ok(())
}

/// The projects other than `owner` with ports on a network, for the
/// in-use check of a policy delete.
pub async fn rbac_port_projects(
    conn: &mut Conn,
    net: &NetworkId,
    owner: &ProjectId,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT DISTINCT project_id FROM ports WHERE network_id = $1 AND project_id <> $2 \
         ORDER BY project_id",
    )
    .bind(net.to_string())
    .bind(owner.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("project_id")?))
        .collect()
}
