//! Agents that reported in (DHCP and L2, per host).

use sqlx::{AnyConnection, Row};
use stratus_common::time::{now, to_db};
use stratus_db::b2i;

use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub host: String,
    pub agent_type: String,
    pub alive: bool,
    pub heartbeat_at: String,
}

pub async fn agent_report(
    conn: &mut AnyConnection,
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

pub async fn agent_list(conn: &mut AnyConnection) -> Result<Vec<Agent>> {
    let rows = sqlx::query(
        "SELECT host, agent_type, alive, heartbeat_at FROM agents ORDER BY host, agent_type",
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
            })
        })
        .collect()
}
