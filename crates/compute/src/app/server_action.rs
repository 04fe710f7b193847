//! Server actions (`POST /servers/{id}/action`) apart from HTTP: a state
//! change is claimed with a compare-and-swap on task_state (409 when
//! another task runs or the vm_state does not allow it:
//! `TaskState::allowed_from`), recorded as an instance action, then cast to
//! the instance's agent.

use serde_json::{json, Value};
use stratus_common::RequestContext;

use crate::api::AppState;
use crate::db;
use crate::db::instances::{Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::model::state::{TaskState, VmState};
use crate::rpc;

/// A server action, as parsed from its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAction {
    Stop,
    Start,
    Reboot { hard: bool },
    ConsoleOutput { length: Option<i64> },
    Lock,
    Unlock,
}

/// What an action answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 202: the work goes on in the agent.
    Accepted,
    /// The console text.
    Console(String),
}

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
    db::instances::instance_update(&mut *s.db.conn().await?, &id, &Some(vec![None]), &u)
        .await
        .map_err(|e| match e {
            ComputeError::Conflict(_) => wrong_state(action, i),
            other => other,
        })?;
    db::actions::action_start(
        &mut *s.db.conn().await?,
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
        if let Ok(mut conn) = s.db.conn().await {
            let _ =
                db::instances::instance_update(&mut conn, &id, &Some(vec![Some(during)]), &u).await;
        }
        return Err(e.into());
    }
    Ok(())
}

/// Runs `action` on `i` (which the caller may see).
pub async fn run(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
    action: ServerAction,
) -> Result<Outcome> {
    let id = i.id.to_string();
    let locked = i.locked && !ctx.is_admin();
    let id_args = json!({"instance_id": id});
    let power = |during, action, method, args: Value| async move {
        let p = Power {
            action,
            during,
            method,
        };
        power_action(s, ctx, i, p, args)
            .await
            .map(|()| Outcome::Accepted)
    };
    match action {
        ServerAction::Stop | ServerAction::Start | ServerAction::Reboot { .. } if locked => {
            Err(ComputeError::Conflict(format!("Instance {id} is locked")))
        }
        ServerAction::Stop => power(TaskState::PoweringOff, "stop", rpc::STOP, id_args).await,
        ServerAction::Start => power(TaskState::PoweringOn, "start", rpc::START, id_args).await,
        ServerAction::Reboot { hard } => {
            let during = if hard {
                TaskState::RebootingHard
            } else {
                TaskState::Rebooting
            };
            let args = json!({"instance_id": id, "hard": hard});
            power(during, "reboot", rpc::REBOOT, args).await
        }
        ServerAction::ConsoleOutput { length } => {
            let Some(host) = i
                .host
                .clone()
                .filter(|_| matches!(i.vm_state, VmState::Active | VmState::Stopped))
            else {
                return Err(ComputeError::Conflict(format!(
                    "Instance {id} is not ready"
                )));
            };
            let output = rpc::AgentApi::new(s.bus.clone())
                .console_output(ctx, &host, i.id, length)
                .await?;
            Ok(Outcome::Console(output))
        }
        ServerAction::Lock | ServerAction::Unlock => {
            let lock = action == ServerAction::Lock;
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
            db::instances::instance_set_locked(&mut *s.db.conn().await?, &id, lock).await?;
            Ok(Outcome::Accepted)
        }
    }
}
