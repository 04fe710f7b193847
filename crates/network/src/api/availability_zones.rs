//! Network availability zones (`availability_zone`,
//! `network_availability_zone`): `/v2.0/availability_zones` lists the zones
//! of the DHCP agents, which all share the server's configured zone (the
//! agents report none); with the noop driver, which needs no agent, the
//! server's zone is the one zone. A network is in the zone once a DHCP agent
//! serves it (noop: at once).

use std::collections::HashSet;

use axum::extract::{OriginalUri, RawQuery, State as AxState};
use axum::http::HeaderMap;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::NetworkId;

use super::query::{respond, ListQuery};
use super::{require_read, State};
use crate::config::DriverKind;
use crate::db::{agents as dba, Conn};
use crate::error::{NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new().route("/v2.0/availability_zones", get(list))
}

/// The network zones and whether each is available.
pub async fn zones(state: &State, conn: &mut Conn) -> Result<Vec<(String, bool)>> {
    let zone = state.config.availability_zone.clone();
    if state.config.driver == DriverKind::Noop {
        return Ok(vec![(zone, true)]);
    }
    let dhcp: Vec<_> = dba::agent_list(conn)
        .await?
        .into_iter()
        .filter(|a| a.agent_type == "dhcp")
        .collect();
    if dhcp.is_empty() {
        return Ok(Vec::new());
    }
    let up = dhcp
        .iter()
        .any(|a| a.admin_state_up && super::agents::is_alive(a));
    Ok(vec![(zone, up)])
}

/// 404 `AvailabilityZoneNotFound` for a hint naming no zone; Neutron's
/// length limit on the stored hints.
pub async fn check_hints(state: &State, conn: &mut Conn, hints: &[String]) -> Result<()> {
    if hints.join(",").len() > 255 {
        return Err(NetworkError::BadRequest(
            "Invalid input for availability_zone_hints. Reason: Too many availability_zone_hints specified.".to_owned(),
        ));
    }
    let known: Vec<String> = zones(state, conn).await?.into_iter().map(|z| z.0).collect();
    match hints.iter().find(|h| !known.contains(h)) {
        Some(h) => Err(NetworkError::NotFoundKind {
            kind: "AvailabilityZoneNotFound",
            message: format!("AvailabilityZone {h} could not be found."),
        }),
        None => Ok(()),
    }
}

/// The networks that are in the zone (see the module doc); `None`: all.
pub async fn networks_in_zone(
    state: &State,
    conn: &mut Conn,
) -> Result<Option<HashSet<NetworkId>>> {
    if state.config.driver == DriverKind::Noop {
        return Ok(None);
    }
    let rows = crate::db::networks::network_ids_with_dhcp_port(conn).await?;
    Ok(Some(rows.into_iter().collect()))
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_availability_zone")?;
    let q = ListQuery::parse(raw.as_deref())?;
    let mut c = state.db.conn().await?;
    let views: Vec<Value> = zones(&state, &mut c)
        .await?
        .into_iter()
        .map(|(name, up)| {
            json!({"name": name, "resource": "network",
                   "state": if up { "available" } else { "unavailable" }})
        })
        .collect();
    Ok(axum::Json(respond(
        views,
        &q,
        "availability_zones",
        uri.path(),
        &headers,
    )?))
}
