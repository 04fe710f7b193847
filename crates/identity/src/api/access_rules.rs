//! `/v3/users/{id}/access_rules`: the access rules a user's application
//! credentials name, and the `access_rules` member of a credential's
//! create body (Keystone's `_access_rules_properties`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use stratus_common::RequestContext;

use super::extract::{BaseUrl, Caller, Filters};
use super::{check_id, list_body, new_id};
use crate::db::access_rules::{
    access_rule_create, access_rule_delete, access_rule_find, access_rule_get, access_rule_in_use,
    access_rule_link, access_rule_list, AccessRule, AccessRuleFilter,
};
use crate::db::application_credentials::ApplicationCredential;
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::Inner;

/// `{"id", "service", "path", "method"}`, as a credential shows its rules.
pub fn access_rule_view(r: &AccessRule) -> Value {
    json!({"id": r.id, "service": r.service, "path": r.path, "method": r.method})
}

fn rule_with_link(r: &AccessRule, base: &BaseUrl) -> Value {
    let mut v = access_rule_view(r);
    v["links"] = json!({"self": base.v3(&format!("users/{}/access_rules/{}", r.user_id, r.id))});
    v
}

/// A rule as the client gave it: an existing rule's id, a triple, or both.
#[derive(Debug, Default)]
pub struct WantedRule {
    id: Option<String>,
    service: Option<String>,
    path: Option<String>,
    method: Option<String>,
}

fn invalid(why: String) -> IdentityError {
    IdentityError::validation(format!("Invalid input for field 'access_rules': {why}"))
}

fn id_like(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Keystone's schema: a list of objects with only `path` (`/...`, at most
/// 225 characters), `method` (POST, GET, HEAD, PATCH, PUT, DELETE),
/// `service` and `id` (id strings).
pub fn parse_access_rules(v: Option<&Value>) -> Result<Vec<WantedRule>> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => return Err(invalid(format!("{other} is not of type 'array'"))),
    };
    let mut out = Vec::new();
    for item in list {
        let m = item
            .as_object()
            .ok_or_else(|| invalid(format!("{item} is not of type 'object'")))?;
        let mut w = WantedRule::default();
        for (k, v) in m {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(format!("{v} is not of type 'string'")))?;
            match k.as_str() {
                "path" if s.starts_with('/') && s.chars().count() <= 225 => {
                    w.path = Some(s.to_owned())
                }
                "method" if matches!(s, "POST" | "GET" | "HEAD" | "PATCH" | "PUT" | "DELETE") => {
                    w.method = Some(s.to_owned())
                }
                "service" if id_like(s) => w.service = Some(s.to_owned()),
                "id" if id_like(s) => w.id = Some(s.to_owned()),
                "path" | "method" | "service" | "id" => {
                    return Err(invalid(format!("'{s}' is not a valid {k}")))
                }
                _ => {
                    return Err(invalid(format!(
                        "additional properties are not allowed ('{k}' was unexpected)"
                    )))
                }
            }
        }
        out.push(w);
    }
    Ok(out)
}

/// Links the credential to each wanted rule: the user's rule with the
/// given id, else the user's rule with the same triple, else a new rule.
pub async fn attach_access_rules(
    conn: &mut Conn,
    cred: &ApplicationCredential,
    wanted: Vec<WantedRule>,
) -> Result<()> {
    for w in wanted {
        let by_id = match &w.id {
            Some(id) => match access_rule_get(conn, &cred.user_id, id).await {
                Ok(r) => Some(r),
                Err(IdentityError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let rule = match by_id {
            Some(r) => r,
            None => {
                let (Some(service), Some(path), Some(method)) = (w.service, w.path, w.method)
                else {
                    return Err(invalid(
                        "a new access rule needs service, path and method".into(),
                    ));
                };
                match access_rule_find(conn, &cred.user_id, &service, &path, &method).await? {
                    Some(r) => r,
                    None => {
                        let r = AccessRule {
                            id: w.id.unwrap_or_else(new_id),
                            user_id: cred.user_id.clone(),
                            service,
                            path,
                            method,
                        };
                        access_rule_create(conn, &r).await?;
                        r
                    }
                }
            }
        };
        access_rule_link(conn, &cred.id, &rule.id).await?;
    }
    Ok(())
}

/// Keystone's `SYSTEM_READER_OR_OWNER` / `SYSTEM_ADMIN_OR_OWNER`.
fn enforce_owner(ctx: &RequestContext, user_id: &str, action: &str) -> Result<()> {
    if ctx.is_admin() || ctx.user_id.as_ref().is_some_and(|u| u.as_str() == user_id) {
        Ok(())
    } else {
        Err(IdentityError::forbidden(action))
    }
}

pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    check_id("user", &user_id)?;
    enforce_owner(&caller.ctx(), &user_id, "identity:list_access_rules")?;
    let mut conn = inner.db.conn().await?;
    let filter = AccessRuleFilter {
        service: f.get("service"),
        path: f.get("path"),
        method: f.get("method"),
    };
    let rules = access_rule_list(&mut conn, &user_id, &filter).await?;
    let items = rules.iter().map(|r| rule_with_link(r, &base)).collect();
    Ok(Json(list_body(
        "access_rules",
        items,
        &base,
        &format!("users/{user_id}/access_rules"),
    )))
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    check_id("user", &user_id)?;
    check_id("Access Rule", &id)?;
    enforce_owner(&caller.ctx(), &user_id, "identity:get_access_rule")?;
    let mut conn = inner.db.conn().await?;
    let r = access_rule_get(&mut conn, &user_id, &id).await?;
    Ok(Json(json!({"access_rule": rule_with_link(&r, &base)})))
}

pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("user", &user_id)?;
    check_id("Access Rule", &id)?;
    enforce_owner(&caller.ctx(), &user_id, "identity:delete_access_rule")?;
    let mut tx = crate::db::begin(&inner.db).await?;
    access_rule_get(&mut tx, &user_id, &id).await?;
    if access_rule_in_use(&mut tx, &id).await? {
        // Keystone's ForbiddenNotSecurity for a rule a credential names.
        return Err(IdentityError::Forbidden(
            "May not delete access rule in use".into(),
        ));
    }
    access_rule_delete(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
