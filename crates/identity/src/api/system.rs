//! Role grants on the system (`PUT|HEAD|GET|DELETE /v3/system/{users|groups}/{actor}/roles/{role}`
//! and `GET /v3/system/{users|groups}/{actor}/roles`), as Keystone's
//! `api/system.py`: 204 for a grant, a check and a revoke, 404 for an
//! unknown actor, role or grant, 400 for a domain-specific role.

use std::sync::Arc;

use axum::extract::{MatchedPath, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use super::extract::{BaseUrl, Caller};
use super::roles::role_view;
use super::{check_id, crud, list_body};
use crate::db::assignments::{
    assignment_check, assignment_grant, assignment_list, assignment_revoke, ActorType, Assignment,
    AssignmentFilter, TargetType, SYSTEM_ALL,
};
use crate::db::groups::group_get;
use crate::db::roles::{role_get, Role};
use crate::db::users::user_get;
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

fn actor_type(path: &MatchedPath) -> ActorType {
    if path.as_str().starts_with("/v3/system/groups/") {
        ActorType::Group
    } else {
        ActorType::User
    }
}

/// The policy name Keystone gives the call (`identity:create_system_grant_for_user`, ...).
fn rule(verb: &str, actor: ActorType) -> &'static str {
    match (verb, actor) {
        ("create", ActorType::User) => "identity:create_system_grant_for_user",
        ("create", ActorType::Group) => "identity:create_system_grant_for_group",
        ("check", ActorType::User) => "identity:check_system_grant_for_user",
        ("check", ActorType::Group) => "identity:check_system_grant_for_group",
        ("revoke", ActorType::User) => "identity:revoke_system_grant_for_user",
        ("revoke", ActorType::Group) => "identity:revoke_system_grant_for_group",
        (_, ActorType::User) => "identity:list_system_grants_for_user",
        (_, ActorType::Group) => "identity:list_system_grants_for_group",
    }
}

async fn check_actor(conn: &mut Conn, actor: ActorType, id: &str) -> Result<()> {
    match actor {
        ActorType::User => user_get(conn, id).await.map(|_| ()),
        ActorType::Group => group_get(conn, id).await.map(|_| ()),
    }
}

fn system_grant(actor_type: ActorType, actor_id: String, role_id: String) -> Assignment {
    Assignment {
        actor_type,
        actor_id,
        target_type: TargetType::System,
        target_id: SYSTEM_ALL.to_owned(),
        role_id,
        inherited: false,
    }
}

/// Keystone's `RoleAssignmentNotFound`.
fn no_assignment(a: &Assignment) -> IdentityError {
    IdentityError::NotFound {
        kind: "role assignment",
        id: a.role_id.clone(),
    }
}

/// Keystone refuses a domain-specific role on the system.
fn global_role(role: &Role) -> Result<()> {
    if role.domain_id.is_some() {
        return Err(IdentityError::validation(format!(
            "Role {} is a domain-specific role. Unable to use a domain-specific role as a system role.",
            role.id
        )));
    }
    Ok(())
}

pub async fn grant(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    path: MatchedPath,
    Path((actor, role)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("resource", &actor)?;
    check_id("role", &role)?;
    let at = actor_type(&path);
    enforce(&caller.ctx(), Action::AdminOnly(rule("create", at)))?;
    let mut tx = crate::db::begin(&inner.db).await?;
    // Keystone looks up the role before the actor.
    let r = role_get(&mut tx, &role).await?;
    check_actor(&mut tx, at, &actor).await?;
    global_role(&r)?;
    assignment_grant(&mut tx, &system_grant(at, actor, role)).await?;
    crud::no_content(tx).await
}

pub async fn check(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    path: MatchedPath,
    Path((actor, role)): Path<(String, String)>,
) -> Result<StatusCode> {
    let at = actor_type(&path);
    enforce(&caller.ctx(), Action::AdminOnly(rule("check", at)))?;
    let mut conn = inner.db.conn().await?;
    role_get(&mut conn, &role).await?;
    check_actor(&mut conn, at, &actor).await?;
    let a = system_grant(at, actor, role);
    if assignment_check(&mut conn, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_assignment(&a))
    }
}

/// An unknown actor is not looked up first (Keystone's
/// `allow_non_existing`): it simply has no grant to remove, so 404.
pub async fn revoke(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    path: MatchedPath,
    Path((actor, role)): Path<(String, String)>,
) -> Result<StatusCode> {
    let at = actor_type(&path);
    enforce(&caller.ctx(), Action::AdminOnly(rule("revoke", at)))?;
    let mut tx = crate::db::begin(&inner.db).await?;
    role_get(&mut tx, &role).await?;
    let a = system_grant(at, actor, role);
    if !assignment_revoke(&mut tx, &a).await? {
        return Err(no_assignment(&a));
    }
    crud::no_content(tx).await
}

/// The roles granted to the actor on the system, directly.
pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    path: MatchedPath,
    Path(actor): Path<String>,
) -> Result<Json<Value>> {
    let at = actor_type(&path);
    enforce(&caller.ctx(), Action::AdminOnly(rule("list", at)))?;
    let mut conn = inner.db.conn().await?;
    check_actor(&mut conn, at, &actor).await?;
    let grants = assignment_list(
        &mut conn,
        &AssignmentFilter {
            actor_type: Some(at),
            actor_id: Some(actor.clone()),
            target_type: Some(TargetType::System),
            target_id: Some(SYSTEM_ALL.to_owned()),
            role_id: None,
        },
    )
    .await?;
    let mut items = Vec::new();
    for g in &grants {
        match role_get(&mut conn, &g.role_id).await {
            Ok(r) => items.push(role_view(&r, &base)),
            // A role deleted meanwhile takes its grants with it.
            Err(IdentityError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let self_path = format!("system/{}s/{actor}/roles", at.as_str());
    Ok(Json(list_body("roles", items, &base, &self_path)))
}
