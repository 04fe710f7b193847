//! Address scopes (Neutron's `address-scope`): a name, an IP version and
//! whether other projects may put their subnet pools in it.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_common::ids::{NetworkId, ProjectId};
use stratus_db::b2i;

use super::{flag, parse, parse_opt, Conn};
use crate::error::Result;

stratus_common::uuid_id!(
    /// A Neutron address scope.
    AddressScopeId
);

#[derive(Clone, Debug, PartialEq)]
pub struct AddressScope {
    pub id: AddressScopeId,
    pub project_id: ProjectId,
    pub name: String,
    pub shared: bool,
    pub ip_version: u8,
}

const COLS: &str = "id, project_id, name, shared, ip_version";

fn from_row(r: &AnyRow) -> Result<AddressScope> {
    Ok(AddressScope {
        id: parse(r, "id")?,
        project_id: ProjectId(r.try_get("project_id")?),
        name: r.try_get("name")?,
        shared: flag(r, "shared")?,
        ip_version: u8::try_from(r.try_get::<i64, _>("ip_version")?).unwrap_or(4),
    })
}

pub async fn address_scope_insert(conn: &mut Conn, a: &AddressScope) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO address_scopes ({COLS}) VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(a.id.to_string())
    .bind(a.project_id.as_str())
    .bind(&a.name)
    .bind(b2i(a.shared))
    .bind(i64::from(a.ip_version))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn address_scope_get(
    conn: &mut Conn,
    id: &AddressScopeId,
) -> Result<Option<AddressScope>> {
    let row = sqlx::query(&format!("SELECT {COLS} FROM address_scopes WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every scope (`None`), or those a project owns plus the shared ones.
pub async fn address_scope_list(
    conn: &mut Conn,
    visible_to: Option<&ProjectId>,
) -> Result<Vec<AddressScope>> {
    let rows = match visible_to {
        None => {
            sqlx::query(&format!("SELECT {COLS} FROM address_scopes ORDER BY id"))
                .fetch_all(conn)
                .await?
        }
        Some(p) => {
            sqlx::query(&format!(
                "SELECT {COLS} FROM address_scopes WHERE project_id = $1 OR shared = 1 ORDER BY id"
            ))
            .bind(p.as_str())
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(from_row).collect()
}

pub async fn address_scope_update(conn: &mut Conn, a: &AddressScope) -> Result<()> {
    sqlx::query("UPDATE address_scopes SET name = $2, shared = $3 WHERE id = $1")
        .bind(a.id.to_string())
        .bind(&a.name)
        .bind(b2i(a.shared))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a scope no pool is in; false when a pool still is (checked in
/// the statement, so that a pool joining meanwhile keeps it).
pub async fn address_scope_delete_unused(conn: &mut Conn, id: &AddressScopeId) -> Result<bool> {
    let r = sqlx::query(
        "DELETE FROM address_scopes WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM subnetpools WHERE address_scope_id = $1)",
    )
    .bind(id.to_string())
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// `ipv4_address_scope` and `ipv6_address_scope` of networks: the scope of
/// the pool their subnets of that version came from (Neutron allows one
/// scope per network and version).
pub async fn network_address_scopes(
    conn: &mut Conn,
) -> Result<HashMap<NetworkId, (Option<AddressScopeId>, Option<AddressScopeId>)>> {
    let rows = sqlx::query(
        "SELECT DISTINCT s.network_id, p.ip_version, p.address_scope_id FROM subnets s \
         JOIN subnetpools p ON p.id = s.subnetpool_id WHERE p.address_scope_id IS NOT NULL",
    )
    .fetch_all(conn)
    .await?;
    let mut out: HashMap<NetworkId, (Option<AddressScopeId>, Option<AddressScopeId>)> =
        HashMap::new();
    for r in &rows {
        let scope: Option<AddressScopeId> = parse_opt(r, "address_scope_id")?;
        let entry = out.entry(parse(r, "network_id")?).or_default();
        if r.try_get::<i64, _>("ip_version")? == 4 {
            entry.0 = scope;
        } else {
            entry.1 = scope;
        }
    }
    Ok(out)
}
