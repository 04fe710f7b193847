//! `/v2.0/agents`: the DHCP and L2 agents that report in, as Neutron shows
//! them to admins (`openstack network agent list/show/set/delete`). An
//! agent's id is a name-based UUID of its type and host, so the table needs
//! no id of its own and every server computes the same one; it is alive
//! while its heartbeats are younger than Neutron's `agent_down_time`.

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::time::{from_db, now};
use stratus_common::RequestContext;

use super::networks::select_fields;
use super::query::{respond, ListQuery};
use super::{require_admin, resource_body, State};
use crate::db::agents::{self as dba, Agent};
use crate::error::{Json, NetworkError, Result};
use crate::rpc_server::name_uuid;

/// Neutron's default `agent_down_time`: an agent is dead after this long
/// without a heartbeat (agents report every 30 s).
const AGENT_DOWN_TIME_SECS: i64 = 75;

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/agents", get(list))
        .route("/v2.0/agents/{id}", get(show).put(update).delete(delete))
}

/// What Neutron calls each kind of agent we run: type, binary, topic.
fn kind(agent_type: &str) -> (&str, &str, Value) {
    match agent_type {
        "dhcp" => ("DHCP agent", "neutron-dhcp-agent", json!("dhcp_agent")),
        "l2" => (
            "Linux bridge agent",
            "neutron-linuxbridge-agent",
            json!("N/A"),
        ),
        other => (other, other, json!("N/A")),
    }
}

fn agent_id(a: &Agent) -> String {
    name_uuid(&format!("{}/{}", a.agent_type, a.host)).to_string()
}

/// Neutron's agent times: `2026-11-25 13:00:00`.
fn agent_time(db: &str) -> Value {
    from_db(db)
        .map(|t| json!(t.format("%Y-%m-%d %H:%M:%S").to_string()))
        .unwrap_or(Value::Null)
}

pub(crate) fn is_alive(a: &Agent) -> bool {
    a.alive
        && from_db(&a.heartbeat_at)
            .is_some_and(|t| now() - t < chrono::Duration::seconds(AGENT_DOWN_TIME_SECS))
}

pub fn view(a: &Agent) -> Value {
    let (agent_type, binary, topic) = kind(&a.agent_type);
    let zone = if a.agent_type == "dhcp" {
        json!("nova")
    } else {
        Value::Null
    };
    json!({
        "id": agent_id(a),
        "agent_type": agent_type,
        "binary": binary,
        "topic": topic,
        "host": a.host,
        "admin_state_up": a.admin_state_up,
        "alive": is_alive(a),
        "availability_zone": zone,
        "description": if a.description.is_empty() { Value::Null } else { json!(a.description) },
        "created_at": agent_time(&a.created_at),
        "started_at": agent_time(&a.created_at),
        "heartbeat_timestamp": agent_time(&a.heartbeat_at),
        "configurations": {},
        "resources_synced": Value::Null,
    })
}

/// Agents are admin-only: others list none and find none (Neutron filters
/// what its policy hides, and hides it as not found).
async fn find(state: &State, ctx: &RequestContext, id: &str) -> Result<Agent> {
    let not_found = || NetworkError::AgentNotFound(id.to_owned());
    if !ctx.is_admin() {
        return Err(not_found());
    }
    let mut c = state.db.conn().await?;
    dba::agent_list(&mut c)
        .await?
        .into_iter()
        .find(|a| agent_id(a) == id)
        .ok_or_else(not_found)
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    let q = ListQuery::parse(raw.as_deref())?;
    let views = if ctx.is_admin() {
        let mut c = state.db.conn().await?;
        dba::agent_list(&mut c).await?.iter().map(view).collect()
    } else {
        Vec::new()
    };
    Ok(axum::Json(respond(
        views,
        &q,
        "agents",
        uri.path(),
        &headers,
    )?))
}

async fn show(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>> {
    let a = find(&state, &ctx, &id).await?;
    Ok(axum::Json(
        json!({"agent": select_fields(view(&a), raw.as_deref())?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAgent {
    admin_state_up: Option<bool>,
    description: Option<Option<String>>,
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let a = find(&state, &ctx, &id).await?;
    require_admin(&ctx, "update_agent")?;
    let b: UpdateAgent = resource_body(body, "agent")?;
    let admin_state_up = b.admin_state_up.unwrap_or(a.admin_state_up);
    let description = match b.description {
        Some(d) => d.unwrap_or_default(),
        None => a.description.clone(),
    };
    let mut c = state.db.conn().await?;
    if !dba::agent_set(&mut c, &a.host, &a.agent_type, admin_state_up, &description).await? {
        return Err(NetworkError::AgentNotFound(id));
    }
    let updated = Agent {
        admin_state_up,
        description,
        ..a
    };
    Ok(axum::Json(json!({"agent": view(&updated)})))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let a = find(&state, &ctx, &id).await?;
    require_admin(&ctx, "delete_agent")?;
    let mut c = state.db.conn().await?;
    if !dba::agent_delete(&mut c, &a.host, &a.agent_type).await? {
        return Err(NetworkError::AgentNotFound(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(agent_type: &str, heartbeat: chrono::DateTime<chrono::Utc>) -> Agent {
        Agent {
            host: "node-a".into(),
            agent_type: agent_type.into(),
            alive: true,
            heartbeat_at: stratus_common::time::to_db(heartbeat),
            created_at: "2026-11-25T13:00:00.000000Z".into(),
            admin_state_up: true,
            description: String::new(),
        }
    }

    #[test]
    fn views_name_the_agents_as_neutron_does() {
        let dhcp = view(&agent("dhcp", now()));
        assert_eq!(dhcp["agent_type"], "DHCP agent");
        assert_eq!(dhcp["binary"], "neutron-dhcp-agent");
        assert_eq!(dhcp["availability_zone"], "nova");
        assert_eq!(dhcp["alive"], true);
        let l2 = view(&agent("l2", now() - chrono::Duration::seconds(90)));
        assert_eq!(l2["agent_type"], "Linux bridge agent");
        assert_eq!(
            l2["alive"], false,
            "no heartbeat for longer than agent_down_time"
        );
        assert_ne!(dhcp["id"], l2["id"], "one id per type and host");
        assert_eq!(
            dhcp["id"],
            view(&agent("dhcp", now()))["id"],
            "ids are stable"
        );
        assert_eq!(dhcp["description"], Value::Null);
    }
}
