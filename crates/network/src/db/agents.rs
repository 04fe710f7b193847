//! Agents that reported in (DHCP and L2, per host).

use sqlx::Row;
use stratus_common::time::{now, to_db};
use stratus_db::b2i;

use super::Conn;
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub host: String,
    /// What the agent reports: `dhcp` or `l2`.
    pub agent_type: String,
    pub alive: bool,
    pub heartbeat_at: String,
    pub created_at: String,
    pub admin_state_up: bool,
    pub description: String,
}

pub async fn agent_report(
    conn: &mut Conn,
    host: &str,
    agent_type: &str,
    alive: bool,
) -> Result<()> {
    let t = to_db(now());
    sqlx::query(
        "INSERT INTO agents (host, agent_type, alive, heartbeat_at, created_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (host, agent_type) \
         DO UPDATE SET alive = $3, heartbeat_at = $4",
    )
    .bind(host)
    .bind(agent_type)
    .bind(b2i(alive))
    .bind(t)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn agent_list(conn: &mut Conn) -> Result<Vec<Agent>> {
    let rows = sqlx::query(
        "SELECT host, agent_type, alive, heartbeat_at, created_at, admin_state_up, description \
         FROM agents ORDER BY host, agent_type",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Agent {
                host: r.try_get("host")?,
                agent_type: r.try_get("agent_type")?,
                alive: stratus_db::i2b(r.try_get("alive")?),
                heartbeat_at: r.try_get("heartbeat_at")?,
                created_at: r.try_get("created_at")?,
                admin_state_up: stratus_db::i2b(r.try_get("admin_state_up")?),
                description: r.try_get("description")?,
            })
        })
        .collect()
}

/// Sets what an admin may change; false when the agent is not there.
pub async fn agent_set(
    conn: &mut Conn,
    host: &str,
    agent_type: &str,
    admin_state_up: bool,
    description: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE agents SET admin_state_up = $1, description = $2 \
         WHERE host = $3 AND agent_type = $4",
    )
    .bind(b2i(admin_state_up))
    .bind(description)
    .bind(host)
    .bind(agent_type)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Forgets an agent (it comes back with its next report, as in Neutron).
pub async fn agent_delete(conn: &mut Conn, host: &str, agent_type: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM agents WHERE host = $1 AND agent_type = $2")
        .bind(host)
        .bind(agent_type)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
