//! A server's security groups: `GET /servers/{id}/os-security-groups`
//! (Nova's `ServerSecurityGroupController`) and the actions
//! `addSecurityGroup` / `removeSecurityGroup` (`POST /servers/{id}/action`,
//! `{"addSecurityGroup": {"name": "web"}}`, 202), as Nova's
//! `SecurityGroupActionController`: the body checked as Nova's `_parse`
//! does, the work in `app::security_groups`.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_common::RequestContext;

use super::{servers, AppState};
use crate::app::security_groups::{self, Change};
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};

pub async fn index(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    Ok(Json(
        json!({"security_groups": security_groups::of_server(&s, &ctx, &i).await?}),
    ))
}

/// The group name of an add/remove body, with Nova's 400s.
pub fn parse_group(arg: &Value) -> Result<String> {
    let o = arg
        .as_object()
        .ok_or_else(|| ComputeError::bad("Missing parameter dict"))?;
    let name = match o.get("name") {
        None => return Err(ComputeError::bad("Security group not specified")),
        Some(Value::String(n)) => n.clone(),
        Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    if name.trim().is_empty() {
        return Err(ComputeError::bad("Security group name cannot be empty"));
    }
    Ok(name)
}

/// Runs the action if `body` is one of these; `None` for any other action.
pub async fn dispatch(
    s: &AppState,
    ctx: &RequestContext,
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
    let how = match name.as_str() {
        "addSecurityGroup" => Change::Add,
        "removeSecurityGroup" => Change::Remove,
        _ => return Ok(None),
    };
    let group = parse_group(arg)?;
    security_groups::change(s, ctx, i, &group, how).await?;
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_parse_as_nova_parses_them() {
        assert_eq!(
            parse_group(&json!({"name": "web"})).ok().as_deref(),
            Some("web")
        );
        for (bad, msg) in [
            (json!(null), "Missing parameter dict"),
            (json!({}), "Security group not specified"),
            (json!({"name": "  "}), "Security group name cannot be empty"),
            (json!({"name": null}), "Security group name cannot be empty"),
        ] {
            match parse_group(&bad) {
                Err(ComputeError::BadRequest(m)) => assert_eq!(m, msg),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
