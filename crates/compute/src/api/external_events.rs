//! `POST /os-server-external-events`: how the network service tells compute
//! that a port is plugged (seed steps 34–36). Admin or service callers only.
//! Each event is cast to its server's host (`compute_events.<host>`
//! `external_instance_event`, a topic of its own so that events never
//! queue behind builds), whose agent wakes the build waiting for it.
//! As Nova: every event gets its own `code` (200 accepted, 404 unknown
//! server, 422 server not on a host yet); the answer is 200 when all were
//! accepted, 207 when some were, 404 when none was.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::AppState;
use crate::db;
use crate::error::{ComputeError, NovaJson, Result};
use crate::rpc;

const NAMES: &[&str] = &[
    "network-changed",
    "network-vif-plugged",
    "network-vif-unplugged",
    "network-vif-deleted",
    "volume-extended",
    "power-update",
    "accelerator-request-bound",
    "volume-reimaged",
];
const STATUSES: &[&str] = &["failed", "completed", "in-progress"];

/// One validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub server_uuid: String,
    pub tag: Option<String>,
    pub status: String,
}

fn invalid(what: &str) -> ComputeError {
    ComputeError::BadRequest(format!("Invalid input for field/attribute {what}."))
}

/// Nova's request schema, as plain validation.
pub fn parse(body: &Value) -> Result<Vec<Event>> {
    let list = body
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("events"))?;
    if list.is_empty() {
        return Err(invalid("events"));
    }
    list.iter()
        .map(|e| {
            let name = e
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| NAMES.contains(n))
                .ok_or_else(|| invalid("name"))?;
            let server_uuid = e
                .get("server_uuid")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("server_uuid"))?;
            let status = match e.get("status") {
                None => "completed",
                Some(s) => s
                    .as_str()
                    .filter(|s| STATUSES.contains(s))
                    .ok_or_else(|| invalid("status"))?,
            };
            let tag = match e.get("tag") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) if t.len() <= 255 => Some(t.clone()),
                Some(_) => return Err(invalid("tag")),
            };
            Ok(Event {
                name: name.to_owned(),
                server_uuid: server_uuid.to_owned(),
                tag,
                status: status.to_owned(),
            })
        })
        .collect()
}

pub async fn create(
    State(s): State<AppState>,
    ctx: Ctx,
    NovaJson(body): NovaJson<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    if !ctx.is_admin() && !ctx.has_role("service") {
        return Err(ComputeError::Forbidden(
            "Policy doesn't allow os_compute_api:os-server-external-events:create to be performed."
                .to_owned(),
        ));
    }
    let events = parse(&body)?;
    let mut out = Vec::new();
    let mut accepted = 0;
    for e in events {
        let found = db::instances::instance_get(&mut *s.db.conn().await?, &e.server_uuid).await;
        let code = match found {
            Err(ComputeError::NotFound(_)) => 404,
            Err(err) => return Err(err),
            Ok(inst) => match inst.host {
                None => 422,
                Some(host) => {
                    let a = rpc::ExternalEventArgs {
                        instance_id: inst.id,
                        name: e.name.clone(),
                        tag: e.tag.clone().unwrap_or_default(),
                        status: e.status.clone(),
                    };
                    s.bus
                        .cast(
                            &rpc::compute_events_topic(&host),
                            rpc::EXTERNAL_EVENT,
                            &ctx,
                            &a,
                        )
                        .await?;
                    accepted += 1;
                    200
                }
            },
        };
        let mut ev = json!({"name": e.name, "server_uuid": e.server_uuid,
                            "status": e.status, "code": code});
        if let Some(t) = e.tag {
            ev["tag"] = json!(t);
        }
        out.push(ev);
    }
    if accepted == 0 {
        return Err(ComputeError::NotFound(
            "No instances found for any event".to_owned(),
        ));
    }
    let status = if accepted == out.len() {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(json!({ "events": out }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_neutron_sends() {
        let e = parse(&json!({"events": [{"name": "network-vif-plugged",
            "server_uuid": "3df201cf-2451-44f2-8d25-a4ca826fc1f3", "tag": "p", "status": "completed"}]}))
        .expect("valid");
        assert_eq!(e[0].tag.as_deref(), Some("p"));
        assert!(parse(&json!({"events": []})).is_err());
        assert!(parse(&json!({"events": [{"name": "bogus", "server_uuid": "x"}]})).is_err());
        assert!(parse(
            &json!({"events": [{"name": "network-changed", "server_uuid": "x", "status": "odd"}]})
        )
        .is_err());
    }
}
