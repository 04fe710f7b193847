//! The admin server actions (`POST /servers/{id}/action`):
//! `{"os-resetState": {"state": "active"|"error"}}` and
//! `{"injectNetworkInfo": null}`, both 202 and admin only, as Nova's
//! `admin_actions.py`.

use serde_json::Value;

use super::{require_admin, AppState};
use crate::app::admin_actions;
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};
use crate::model::state::VmState;

/// The state `os-resetState` asks for (Nova's `reset_server_state` schema).
pub fn parse_reset_state(arg: &Value) -> Result<VmState> {
    let o = arg.as_object().ok_or_else(|| {
        ComputeError::BadRequest(format!(
            "Invalid input for field/attribute os-resetState. Value: {arg}. {arg} is not of type 'object'"
        ))
    })?;
    if let Some(k) = o.keys().find(|k| *k != "state") {
        return Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute os-resetState. Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    match o.get("state") {
        None => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute os-resetState. Value: {arg}. 'state' is a required property"
        ))),
        Some(Value::String(s)) if s == "active" => Ok(VmState::Active),
        Some(Value::String(s)) if s == "error" => Ok(VmState::Error),
        Some(other) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute state. Value: {other}. {other} is not one of ['active', 'error']"
        ))),
    }
}

/// Runs the action if `body` is one of these; `None` for any other action.
pub async fn dispatch(
    s: &AppState,
    ctx: &stratus_common::RequestContext,
    i: &Instance,
    body: &Value,
) -> Result<Option<()>> {
    let Some((name, arg)) = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
    else {
        return Ok(None);
    };
    match name.as_str() {
        "os-resetState" => {
            let state = parse_reset_state(arg)?;
            require_admin(ctx, "os_compute_api:os-admin-actions:reset_state")?;
            admin_actions::reset_state(s, ctx, i, state).await?;
        }
        "injectNetworkInfo" => {
            require_admin(ctx, "os_compute_api:os-admin-actions:inject_network_info")?;
            admin_actions::inject_network_info(s, ctx, i).await?;
        }
        _ => return Ok(None),
    }
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reset_state_takes_active_or_error() {
        assert_eq!(
            parse_reset_state(&json!({"state": "active"})).ok(),
            Some(VmState::Active)
        );
        assert_eq!(
            parse_reset_state(&json!({"state": "error"})).ok(),
            Some(VmState::Error)
        );
        for bad in [
            json!({}),
            json!({"state": "stopped"}),
            json!({"state": 1}),
            json!(null),
            json!({"state": "error", "x": 1}),
        ] {
            assert!(
                matches!(parse_reset_state(&bad), Err(ComputeError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
