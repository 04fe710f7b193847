//! `POST /servers/{id}/action`: os-stop, os-start, reboot (SOFT/HARD),
//! os-getConsoleOutput, lock/unlock. A state change is claimed with a
//! compare-and-swap on task_state (409 when another task runs), recorded as
//! an instance action, then cast to the instance's agent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_common::RequestContext;

use super::{require_member, servers, AppState};
use crate::db::instances::{Instance, InstanceUpdate};
use crate::error::{ComputeError, NovaJson, Result};
use crate::model::state::{TaskState, VmState};
use crate::rpc;

fn wrong_state(action: &str, i: &Instance) -> ComputeError {
    ComputeError::Conflict(format!(
        "Cannot '{action}' instance {} while it is in vm_state {}",
        i.id, i.vm_state
    ))
}

/// A power action: its instance-action name, the task_state while it runs
/// (which says where it may start: `TaskState::allowed_from`) and the
/// agent method that does it.
struct Power<'a> {
    action: &'a str,
    during: TaskState,
    method: &'a str,
}

/// Checks the state, claims the task and casts the work to the agent.
async fn power_action(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
    p: Power<'_>,
    args: Value,
) -> Result<()> {
    let Power {
        action,
        during,
        method,
    } = p;
    if !during.may_begin_in(i.vm_state) {
        return Err(wrong_state(action, i));
    }
    if let Some(t) = &i.task_state {
        return Err(ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in task_state {t}",
            i.id
        )));
    }
    let host = i.host.clone().ok_or_else(|| wrong_state(action, i))?;
    let id = i.id.to_string();
    let u = InstanceUpdate {
        task_state: Some(Some(during)),
        ..InstanceUpdate::default()
    };
    s.store
        .instance_update(&id, &Some(vec![None]), &u)
        .await
        .map_err(|e| match e {
            ComputeError::Conflict(_) => wrong_state(action, i),
            other => other,
        })?;
    s.store
        .action_start(
            &id,
            action,
            &ctx.request_id.0,
            ctx.user_id.as_ref().map(|u| u.as_str()),
            ctx.project_id.as_ref().map(|p| p.as_str()),
        )
        .await?;
    if let Err(e) = s
        .bus
        .cast(&rpc::compute_topic(&host), method, ctx, &args)
        .await
    {
        // Give the task back so the server is not stuck.
        let u = InstanceUpdate {
            task_state: Some(None),
            ..InstanceUpdate::default()
        };
        let _ = s
            .store
            .instance_update(&id, &Some(vec![Some(during)]), &u)
            .await;
        return Err(e.into());
    }
    Ok(())
}

pub async fn action(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Response> {
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:servers:action")?;
    let obj = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    let Some((name, arg)) = obj.iter().next() else {
        return Err(ComputeError::bad("Malformed request body"));
    };
    if obj.len() != 1 {
        return Err(ComputeError::bad("Malformed request body"));
    }
    let locked = i.locked && !ctx.is_admin();
    let id_args = json!({"instance_id": id});
    match name.as_str() {
        "os-stop" | "os-start" | "reboot" if locked => {
            Err(ComputeError::Conflict(format!("Instance {id} is locked")))
        }
        "os-stop" => {
            let p = Power {
                action: "stop",
                during: TaskState::PoweringOff,
                method: rpc::STOP,
            };
            power_action(&s, &ctx, &i, p, id_args).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-start" => {
            let p = Power {
                action: "start",
                during: TaskState::PoweringOn,
                method: rpc::START,
            };
            power_action(&s, &ctx, &i, p, id_args).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "reboot" => {
            let kind = arg
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .ok_or_else(|| {
                    ComputeError::bad(
                        "Invalid input for field/attribute type. 'type' is a required property",
                    )
                })?;
            let hard = match kind.as_str() {
                "HARD" => true,
                "SOFT" => false,
                _ => {
                    return Err(ComputeError::bad(
                        "Invalid input for field/attribute type. Value must be SOFT or HARD.",
                    ))
                }
            };
            let during = if hard {
                TaskState::RebootingHard
            } else {
                TaskState::Rebooting
            };
            let args = json!({"instance_id": id, "hard": hard});
            let p = Power {
                action: "reboot",
                during,
                method: rpc::REBOOT,
            };
            power_action(&s, &ctx, &i, p, args).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-getConsoleOutput" => {
            let length =
                match arg.get("length") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| {
                        ComputeError::bad("Invalid input for field/attribute length.")
                    })?),
                    Some(Value::String(l)) => Some(l.parse::<i64>().map_err(|_| {
                        ComputeError::bad("Invalid input for field/attribute length.")
                    })?),
                    Some(_) => {
                        return Err(ComputeError::bad(
                            "Invalid input for field/attribute length.",
                        ))
                    }
                };
            if length.is_some_and(|l| l < -1) {
                return Err(ComputeError::bad(
                    "Invalid input for field/attribute length.",
                ));
            }
            let Some(host) = i
                .host
                .clone()
                .filter(|_| matches!(i.vm_state, VmState::Active | VmState::Stopped))
            else {
                return Err(ComputeError::Conflict(format!(
                    "Instance {id} is not ready"
                )));
            };
            let args = rpc::ConsoleArgs {
                instance_id: id.clone(),
                length,
            };
            let output: String = s
                .bus
                .call(&rpc::compute_topic(&host), rpc::CONSOLE, &ctx, &args)
                .await?;
            Ok(Json(json!({ "output": output })).into_response())
        }
        "lock" | "unlock" => {
            let lock = name == "lock";
            if !lock
                && i.locked
                && !ctx.is_admin()
                && ctx.user_id.as_ref().map(|u| u.as_str()) != Some(i.user_id.as_str())
            {
                return Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:os-lock-server:unlock to be performed."
                        .into(),
                ));
            }
            s.store.instance_set_locked(&id, lock).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        other => Err(ComputeError::BadRequest(format!(
            "There is no such action: {other}"
        ))),
    }
}
