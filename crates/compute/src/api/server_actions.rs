//! `POST /servers/{id}/action`: the body parsed into a typed
//! [`ServerAction`] (os-stop, os-start, reboot SOFT/HARD,
//! os-getConsoleOutput, lock/unlock), run by `app::server_action`;
//! `rebuild` and `createImage` are `server_rebuild`'s.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::{
    admin_actions, require_member, server_rebuild, server_security_groups, servers, ApiVersion,
    AppState,
};
use crate::app::server_action::{self, Outcome, ServerAction};
use crate::error::{ComputeError, NovaJson, Result};

/// Nova's action schemas: exactly one action key with its argument.
pub fn parse_action(body: &Value) -> Result<ServerAction> {
    let obj = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("Malformed request body"))?;
    let Some((name, arg)) = obj.iter().next() else {
        return Err(ComputeError::bad("Malformed request body"));
    };
    if obj.len() != 1 {
        return Err(ComputeError::bad("Malformed request body"));
    }
    Ok(match name.as_str() {
        "os-stop" => ServerAction::Stop,
        "os-start" => ServerAction::Start,
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
            ServerAction::Reboot { hard }
        }
        "os-getConsoleOutput" => {
            let bad = || ComputeError::bad("Invalid input for field/attribute length.");
            let length = match arg.get("length") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(bad)?),
                Some(Value::String(l)) => Some(l.parse::<i64>().map_err(|_| bad())?),
                Some(_) => return Err(bad()),
            };
            if length.is_some_and(|l| l < -1) {
                return Err(bad());
            }
            ServerAction::ConsoleOutput { length }
        }
        "lock" => ServerAction::Lock,
        "unlock" => ServerAction::Unlock,
        other => {
            return Err(ComputeError::BadRequest(format!(
                "There is no such action: {other}"
            )))
        }
    })
}

pub async fn action(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Response> {
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:servers:action")?;
    // `rebuild` and `createImage` answer per microversion.
    if let Some(r) = server_rebuild::try_action(&s, v, &ctx, &i, &body).await? {
        return Ok(r);
    }
    // Actions kept in their own modules (issue 12).
    if admin_actions::dispatch(&s, &ctx, &i, &body)
        .await?
        .is_some()
        || server_security_groups::dispatch(&s, &ctx, &i, &body)
            .await?
            .is_some()
    {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let action = parse_action(&body)?;
    Ok(match server_action::run(&s, &ctx, &i, action).await? {
        Outcome::Accepted => StatusCode::ACCEPTED.into_response(),
        Outcome::Console(output) => Json(json!({ "output": output })).into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_as_nova_validates_them() {
        assert_eq!(
            parse_action(&json!({"os-stop": null})).ok(),
            Some(ServerAction::Stop)
        );
        assert_eq!(
            parse_action(&json!({"reboot": {"type": "hard"}})).ok(),
            Some(ServerAction::Reboot { hard: true })
        );
        assert_eq!(
            parse_action(&json!({"os-getConsoleOutput": {"length": "5"}})).ok(),
            Some(ServerAction::ConsoleOutput { length: Some(5) })
        );
        for bad in [
            json!({"reboot": {}}),
            json!({"reboot": {"type": "gentle"}}),
            json!({"os-getConsoleOutput": {"length": -2}}),
            json!({"os-stop": null, "os-start": null}),
            json!({"shelve": null}),
            json!([]),
        ] {
            assert!(
                matches!(parse_action(&bad), Err(ComputeError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
