//! Role grants (`PUT|HEAD|GET|DELETE /v3/{projects|domains}/{id}/{users|groups}/{actor}/roles/{role}`)
//! and `GET /v3/role_assignments` with Keystone's filters (`scope.system`
//! included), `effective` and `include_names`; system grants themselves are
//! in [`super::system`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::extract::{BaseUrl, Caller, Filters};
use super::roles::role_view;
use super::{check_id, crud, list_body};
use crate::db::assignments::{
    assignment_check, assignment_grant, assignment_list, assignment_revoke, ActorType, Assignment,
    AssignmentFilter, TargetType, SYSTEM_ALL,
};
use crate::db::domains::domain_get;
use crate::db::groups::group_get;
use crate::db::projects::project_get;
use crate::db::roles::role_get;
use crate::db::users::user_get;
use crate::db::Conn;
use crate::effective::effective_assignments;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

/// Which kinds the matched route names (`/v3/projects/{id}/users/...`).
fn kinds(path: &MatchedPath) -> (TargetType, ActorType) {
    let p = path.as_str();
    let target = if p.starts_with("/v3/domains/") {
        TargetType::Domain
    } else {
        TargetType::Project
    };
    let actor = if p.contains("/groups/") {
        ActorType::Group
    } else {
        ActorType::User
    };
    (target, actor)
}

/// 404 unless target and actor exist.
async fn check_parties(
    conn: &mut Conn,
    target: TargetType,
    target_id: &str,
    actor: ActorType,
    actor_id: &str,
) -> Result<()> {
    match target {
        TargetType::Project => project_get(conn, target_id).await.map(|_| ())?,
        TargetType::Domain => domain_get(conn, target_id).await.map(|_| ())?,
        TargetType::System => {}
    }
    match actor {
        ActorType::User => user_get(conn, actor_id).await.map(|_| ()),
        ActorType::Group => group_get(conn, actor_id).await.map(|_| ()),
    }
}

/// 404 unless the grant's target, actor and role exist.
async fn check_grant(conn: &mut Conn, a: &Assignment) -> Result<()> {
    check_parties(conn, a.target_type, &a.target_id, a.actor_type, &a.actor_id).await?;
    role_get(conn, &a.role_id).await.map(|_| ())
}

fn no_assignment(a: Assignment) -> IdentityError {
    IdentityError::NotFound {
        kind: "role assignment",
        id: a.role_id,
    }
}

fn assignment(path: &MatchedPath, target_id: String, actor_id: String, role: String) -> Assignment {
    let (target_type, actor_type) = kinds(path);
    Assignment {
        actor_type,
        actor_id,
        target_type,
        target_id,
        role_id: role,
        inherited: false,
    }
}

pub async fn grant(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    path: MatchedPath,
    Path((target, actor, role)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    for (k, v) in [("target", &target), ("actor", &actor), ("role", &role)] {
        check_id(if k == "role" { "role" } else { "resource" }, v)?;
    }
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_grant"))?;
    let a = assignment(&path, target, actor, role);
    let mut tx = crate::db::begin(&inner.db).await?;
    check_grant(&mut tx, &a).await?;
    assignment_grant(&mut tx, &a).await?;
    crud::no_content(tx).await
}

pub async fn check(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    path: MatchedPath,
    Path((target, actor, role)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:check_grant"))?;
    let a = assignment(&path, target, actor, role);
    let mut conn = inner.db.conn().await?;
    check_grant(&mut conn, &a).await?;
    if assignment_check(&mut conn, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_assignment(a))
    }
}

pub async fn revoke(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    path: MatchedPath,
    Path((target, actor, role)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:revoke_grant"))?;
    let a = assignment(&path, target, actor, role);
    let mut tx = crate::db::begin(&inner.db).await?;
    check_grant(&mut tx, &a).await?;
    if !assignment_revoke(&mut tx, &a).await? {
        return Err(no_assignment(a));
    }
    crud::no_content(tx).await
}

/// `GET /v3/projects/{id}/users/{user}/roles`: the roles granted directly.
pub async fn list_grants(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    path: MatchedPath,
    Path((target, actor)): Path<(String, String)>,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_grants"))?;
    let (tt, at) = kinds(&path);
    let mut conn = inner.db.conn().await?;
    check_parties(&mut conn, tt, &target, at, &actor).await?;
    let grants = assignment_list(
        &mut conn,
        &AssignmentFilter {
            actor_type: Some(at),
            actor_id: Some(actor.clone()),
            target_type: Some(tt),
            target_id: Some(target.clone()),
            role_id: None,
        },
    )
    .await?;
    let mut items = Vec::new();
    for g in grants.iter().filter(|g| !g.inherited) {
        items.push(role_view(&role_get(&mut conn, &g.role_id).await?, &base));
    }
    let self_path = format!("{}s/{target}/{}s/{actor}/roles", tt.as_str(), at.as_str());
    Ok(Json(list_body("roles", items, &base, &self_path)))
}

/// Names for `include_names`, looked up once each.
#[derive(Default)]
struct Names {
    cache: HashMap<(char, String), Value>,
}

impl Names {
    async fn get(&mut self, conn: &mut Conn, kind: char, id: &str) -> Result<Value> {
        if let Some(v) = self.cache.get(&(kind, id.to_owned())) {
            return Ok(v.clone());
        }
        let found = match kind {
            'r' => role_get(conn, id)
                .await
                .map(|r| json!({"id": r.id, "name": r.name})),
            'u' => match user_get(conn, id).await {
                Ok(u) => {
                    let d = domain_get(conn, u.domain_id.as_str()).await?;
                    Ok(json!({"id": u.id, "name": u.name, "domain": {"id": d.id, "name": d.name}}))
                }
                Err(e) => Err(e),
            },
            'g' => match group_get(conn, id).await {
                Ok(g) => {
                    let d = domain_get(conn, g.domain_id.as_str()).await?;
                    Ok(json!({"id": g.id, "name": g.name, "domain": {"id": d.id, "name": d.name}}))
                }
                Err(e) => Err(e),
            },
            'p' => match project_get(conn, id).await {
                Ok(p) => {
                    let d = domain_get(conn, p.domain_id.as_str()).await?;
                    Ok(json!({"id": p.id, "name": p.name, "domain": {"id": d.id, "name": d.name}}))
                }
                Err(e) => Err(e),
            },
            _ => domain_get(conn, id)
                .await
                .map(|d| json!({"id": d.id, "name": d.name})),
        };
        let v = match found {
            Ok(v) => v,
            // A grant may name something deleted meanwhile: show its id.
            Err(IdentityError::NotFound { .. }) => json!({ "id": id }),
            Err(e) => return Err(e),
        };
        self.cache.insert((kind, id.to_owned()), v.clone());
        Ok(v)
    }
}

/// `GET /v3/role_assignments`.
pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:list_role_assignments"),
    )?;
    let (actor_type, actor_id) = match (f.get("user.id"), f.get("group.id")) {
        (Some(u), None) => (Some(ActorType::User), Some(u.to_owned())),
        (None, Some(g)) => (Some(ActorType::Group), Some(g.to_owned())),
        (None, None) => (None, None),
        _ => {
            return Err(IdentityError::validation(
                "Specify only one of user.id and group.id.",
            ))
        }
    };
    let system = f.get("scope.system");
    if system.is_some() && f.get("scope.domain.id").is_some() {
        return Err(IdentityError::validation(
            "Specify system or domain, not both",
        ));
    }
    if system.is_some() && f.get("scope.project.id").is_some() {
        return Err(IdentityError::validation(
            "Specify system or project, not both",
        ));
    }
    let (target_type, target_id) = match (f.get("scope.project.id"), f.get("scope.domain.id")) {
        (Some(p), None) => (Some(TargetType::Project), Some(p.to_owned())),
        (None, Some(d)) => (Some(TargetType::Domain), Some(d.to_owned())),
        // Keystone has one system, whatever value `scope.system` names.
        (None, None) if system.is_some() => (Some(TargetType::System), Some(SYSTEM_ALL.to_owned())),
        (None, None) => (None, None),
        _ => {
            return Err(IdentityError::validation(
                "Specify only one of scope.project.id and scope.domain.id.",
            ))
        }
    };
    let effective = f.flag("effective");
    if effective && actor_type == Some(ActorType::Group) {
        return Err(IdentityError::validation(
            "group.id cannot be combined with effective.",
        ));
    }
    // Keystone's effective mode ignores `scope.system` (and lists no system
    // grant, see `effective_assignments`).
    let (target_type, target_id) = if effective && target_type == Some(TargetType::System) {
        (None, None)
    } else {
        (target_type, target_id)
    };
    let filter = AssignmentFilter {
        actor_type,
        actor_id,
        target_type,
        target_id,
        role_id: f.get("role.id").map(str::to_owned),
    };
    let names = f.flag("include_names");
    let mut conn = inner.db.conn().await?;
    let rows = if effective {
        effective_assignments(&mut conn, &filter).await?
    } else {
        assignment_list(&mut conn, &filter).await?
    };
    let mut cache = Names::default();
    let mut items = Vec::new();
    for a in rows {
        let (ak, akey) = match a.actor_type {
            ActorType::User => ('u', "user"),
            ActorType::Group => ('g', "group"),
        };
        let (tk, tkey) = match a.target_type {
            TargetType::Project => ('p', "project"),
            TargetType::Domain => ('d', "domain"),
            TargetType::System => ('s', "system"),
        };
        let (role, actor, target) = if names {
            (
                cache.get(&mut conn, 'r', &a.role_id).await?,
                cache.get(&mut conn, ak, &a.actor_id).await?,
                if tk == 's' {
                    json!({"all": true})
                } else {
                    cache.get(&mut conn, tk, &a.target_id).await?
                },
            )
        } else {
            (
                json!({"id": a.role_id}),
                json!({"id": a.actor_id}),
                if tk == 's' {
                    json!({"all": true})
                } else {
                    json!({"id": a.target_id})
                },
            )
        };
        let mut scope = json!({ tkey: target });
        if a.inherited {
            scope["OS-INHERIT:inherited_to"] = json!("projects");
        }
        let link = if tk == 's' {
            base.v3(&format!(
                "system/{akey}s/{}/roles/{}",
                a.actor_id, a.role_id
            ))
        } else {
            base.v3(&format!(
                "{tkey}s/{}/{akey}s/{}/roles/{}",
                a.target_id, a.actor_id, a.role_id
            ))
        };
        items.push(
            json!({"role": role, akey: actor, "scope": scope, "links": {"assignment": link}}),
        );
    }
    Ok(Json(list_body(
        "role_assignments",
        items,
        &base,
        "role_assignments",
    )))
}
