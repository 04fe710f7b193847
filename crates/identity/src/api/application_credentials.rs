//! `/v3/users/{id}/application_credentials`: a user makes a secret for the
//! project of their current token, with some or all of that token's roles.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access_rules::{access_rule_view, attach_access_rules, parse_access_rules};
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::{check_id, check_name, list_body, new_id};
use crate::db::access_rules::{access_rule_list_for_credential, access_rule_unlink_credential};
use crate::db::application_credentials::{
    application_credential_create, application_credential_delete, application_credential_get,
    application_credential_list, ApplicationCredential,
};
use crate::db::roles::role_list;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::token::provider::ScopeModel;
use crate::Inner;

#[derive(Deserialize)]
pub struct CreateBody {
    application_credential: CreateFields,
}

#[derive(Deserialize)]
struct CreateFields {
    name: String,
    secret: Option<String>,
    description: Option<String>,
    expires_at: Option<String>,
    roles: Option<Vec<RoleRef>>,
    unrestricted: Option<bool>,
    access_rules: Option<Value>,
}

#[derive(Deserialize)]
struct RoleRef {
    id: Option<String>,
    name: Option<String>,
}

async fn view(
    inner: &Inner,
    a: &ApplicationCredential,
    base: &BaseUrl,
    secret: Option<&str>,
) -> Result<Value> {
    let mut conn = inner.db.conn().await?;
    let rules: Vec<Value> = access_rule_list_for_credential(&mut conn, &a.id)
        .await?
        .iter()
        .map(access_rule_view)
        .collect();
    let roles: Vec<Value> = role_list(&mut conn, None, None)
        .await?
        .into_iter()
        .filter(|r| a.role_ids.contains(&r.id.0))
        .map(|r| json!({"id": r.id, "name": r.name, "domain_id": null}))
        .collect();
    let expires = a
        .expires_at
        .as_deref()
        .and_then(stratus_common::time::from_db)
        .map(stratus_common::time::keystone);
    let mut v = json!({
        "id": a.id, "name": a.name, "description": a.description, "user_id": a.user_id,
        "project_id": a.project_id, "expires_at": expires, "unrestricted": a.unrestricted,
        "roles": roles, "access_rules": rules,
        "links": {"self": base.v3(&format!("users/{}/application_credentials/{}", a.user_id, a.id))},
    });
    if let Some(s) = secret {
        v["secret"] = json!(s);
    }
    Ok(v)
}

fn parse_expiry(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|n| n.and_utc())
        })
        .map_err(|_| {
            IdentityError::validation(format!(
                "Invalid input for field 'expires_at': '{s}' is not a date-time."
            ))
        })?;
    if t <= chrono::Utc::now() {
        return Err(IdentityError::validation(
            "Invalid input for field 'expires_at': it is in the past.",
        ));
    }
    Ok(t)
}

pub async fn create(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(user_id): Path<String>,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    check_id("user", &user_id)?;
    let model = &caller.0;
    // Only the user, from a project-scoped token that is not itself a
    // restricted application credential (Keystone's rules).
    let project = match &model.scope {
        ScopeModel::Project { project, .. } if model.user.id.0 == user_id => project.id.0.clone(),
        _ => {
            return Err(IdentityError::forbidden(
                "identity:create_application_credential",
            ))
        }
    };
    if model
        .application_credential
        .as_ref()
        .is_some_and(|a| !a.unrestricted)
    {
        return Err(IdentityError::forbidden(
            "identity:create_application_credential",
        ));
    }
    let f = b.application_credential;
    check_name("application credential", &f.name)?;
    let expires_at = f.expires_at.as_deref().map(parse_expiry).transpose()?;
    let rules = parse_access_rules(f.access_rules.as_ref())?;
    let held: Vec<(String, String)> = model
        .roles
        .iter()
        .map(|r| (r.id.0.clone(), r.name.clone()))
        .collect();
    let role_ids = match f.roles {
        None => held.iter().map(|(id, _)| id.clone()).collect(),
        Some(wanted) if wanted.is_empty() => held.iter().map(|(id, _)| id.clone()).collect(),
        Some(wanted) => {
            let mut ids = Vec::new();
            for r in wanted {
                let found = held.iter().find(|(id, name)| {
                    r.id.as_deref() == Some(id.as_str())
                        || (r.id.is_none() && r.name.as_deref() == Some(name.as_str()))
                });
                match found {
                    Some((id, _)) if !ids.contains(id) => ids.push(id.clone()),
                    Some(_) => {}
                    None => {
                        return Err(IdentityError::Forbidden(format!(
                            "The caller does not hold role {} on project {project}.",
                            r.id.or(r.name).unwrap_or_default()
                        )))
                    }
                }
            }
            ids
        }
    };
    let secret = match f.secret {
        Some(s) if !s.is_empty() => s,
        Some(_) => {
            return Err(IdentityError::validation(
                "Invalid input for field 'secret': it must not be empty.",
            ))
        }
        None => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
    };
    let cred = ApplicationCredential {
        id: new_id(),
        name: f.name,
        user_id,
        project_id: project,
        secret_hash: inner
            .hashing
            .hash(&secret, inner.config.password_hash_cost)
            .await?,
        description: f.description.unwrap_or_default(),
        expires_at: expires_at.map(stratus_common::time::to_db),
        unrestricted: f.unrestricted.unwrap_or(false),
        role_ids,
    };
    let mut tx = crate::db::begin(&inner.db).await?;
    application_credential_create(&mut tx, &cred).await?;
    attach_access_rules(&mut tx, &cred, rules).await?;
    tx.commit().await?;
    let v = view(&inner, &cred, &base, Some(&secret)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "application_credential": v })),
    ))
}

pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    check_id("user", &user_id)?;
    enforce(&caller.ctx(), Action::OwnApplicationCredentials(&user_id))?;
    let mut conn = inner.db.conn().await?;
    let creds = application_credential_list(&mut conn, &user_id, f.get("name")).await?;
    drop(conn);
    let mut items = Vec::new();
    for a in &creds {
        items.push(view(&inner, a, &base, None).await?);
    }
    Ok(Json(list_body(
        "application_credentials",
        items,
        &base,
        &format!("users/{user_id}/application_credentials"),
    )))
}

async fn owned(inner: &Inner, user_id: &str, id: &str) -> Result<ApplicationCredential> {
    let mut conn = inner.db.conn().await?;
    let a = application_credential_get(&mut conn, id).await?;
    if a.user_id != user_id {
        return Err(IdentityError::not_found("application credential", id));
    }
    Ok(a)
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    check_id("user", &user_id)?;
    check_id("application credential", &id)?;
    enforce(&caller.ctx(), Action::OwnApplicationCredentials(&user_id))?;
    let a = owned(&inner, &user_id, &id).await?;
    Ok(Json(
        json!({"application_credential": view(&inner, &a, &base, None).await?}),
    ))
}

pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("user", &user_id)?;
    check_id("application credential", &id)?;
    enforce(&caller.ctx(), Action::OwnApplicationCredentials(&user_id))?;
    owned(&inner, &user_id, &id).await?;
    let mut tx = crate::db::begin(&inner.db).await?;
    application_credential_delete(&mut tx, &id).await?;
    access_rule_unlink_credential(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
