//! `/v3/roles` and implied roles (`/v3/roles/{prior}/implies/{implied}`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use stratus_common::ids::RoleId;

use super::crud::{self, Resource};
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::{check_id, check_name, new_id, with_extra};
use crate::db::roles::{
    implied_role_create, implied_role_delete, implied_role_list, role_create, role_delete,
    role_get, role_list, role_update, Role,
};
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

pub fn role_view(r: &Role, base: &BaseUrl) -> Value {
    with_extra(
        &r.extra,
        json!({
            "id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description,
            "options": {},
            "links": {"self": base.v3(&format!("roles/{}", r.id))},
        }),
    )
}

fn brief(r: &Role, base: &BaseUrl) -> Value {
    json!({"id": r.id, "name": r.name, "links": {"self": base.v3(&format!("roles/{}", r.id))}})
}

#[derive(Deserialize)]
pub struct CreateBody {
    role: RoleCreate,
}

#[derive(Deserialize)]
struct RoleCreate {
    name: String,
    description: Option<String>,
    domain_id: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    role: RoleUpdate,
}

#[derive(Deserialize)]
struct RoleUpdate {
    name: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn clean(mut extra: Map<String, Value>) -> Map<String, Value> {
    for k in ["id", "links", "options", "domain_id"] {
        extra.remove(k);
    }
    extra
}

impl Resource for Role {
    const KIND: &'static str = "role";
    const COLLECTION: &'static str = "roles";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        role_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        role_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        role_view(self, base)
    }
}

pub async fn create(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_role"))?;
    let r = b.role;
    check_name("role", &r.name)?;
    if r.domain_id.is_some() {
        return Err(IdentityError::validation(
            "Domain-specific roles are not supported.",
        ));
    }
    let role = Role {
        id: RoleId(new_id()),
        name: r.name,
        domain_id: None,
        description: r.description.unwrap_or_default(),
        extra: clean(r.extra),
    };
    let mut conn = inner.db.conn().await?;
    role_create(&mut conn, &role).await?;
    Ok(crud::created(&role, &base))
}

pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_roles"))?;
    let mut conn = inner.db.conn().await?;
    let rows = role_list(&mut conn, f.get("name"), f.get("domain_id")).await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:get_role");
    crud::show::<Role>(&inner, &caller, action, &id, &base).await
}

pub async fn update(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:update_role");
    crud::update(&inner, &caller, action, &id, &base, |r: &mut Role| {
        let u = b.role;
        if let Some(n) = u.name {
            check_name("role", &n)?;
            r.name = n;
        }
        if let Some(d) = u.description {
            r.description = d;
        }
        r.extra.extend(clean(u.extra));
        Ok(())
    })
    .await
}

pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let action = Action::AdminOnly("identity:delete_role");
    let (mut tx, _) = crud::load_for_change::<Role>(&inner, &caller, action, &id).await?;
    role_delete(&mut tx, &id).await?;
    crud::no_content(tx).await
}

fn inference(prior: &Role, implied: &[Role], base: &BaseUrl) -> Value {
    json!({"prior_role": brief(prior, base), "implies": implied.iter().map(|r| brief(r, base)).collect::<Vec<_>>()})
}

pub async fn list_implied(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("role", &id)?;
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:list_implied_roles"),
    )?;
    let mut conn = inner.db.conn().await?;
    let prior = role_get(&mut conn, &id).await?;
    let mut implied = Vec::new();
    for (_, i) in implied_role_list(&mut conn)
        .await?
        .into_iter()
        .filter(|(p, _)| *p == id)
    {
        implied.push(role_get(&mut conn, &i).await?);
    }
    Ok(Json(
        json!({"role_inference": inference(&prior, &implied, &base),
        "links": {"self": base.v3(&format!("roles/{id}/implies"))}}),
    ))
}

pub async fn inferences(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
) -> Result<Json<Value>> {
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:list_role_inference_rules"),
    )?;
    let mut conn = inner.db.conn().await?;
    let pairs = implied_role_list(&mut conn).await?;
    let mut out = Vec::new();
    let mut priors: Vec<String> = pairs.iter().map(|(p, _)| p.clone()).collect();
    priors.dedup();
    for p in priors {
        let prior = role_get(&mut conn, &p).await?;
        let mut implied = Vec::new();
        for (_, i) in pairs.iter().filter(|(q, _)| *q == p) {
            implied.push(role_get(&mut conn, i).await?);
        }
        out.push(inference(&prior, &implied, &base));
    }
    Ok(Json(
        json!({"role_inferences": out, "links": {"self": base.v3("role_inferences")}}),
    ))
}

/// The ids of an implication path, then the policy.
fn check_implication(caller: &Caller, policy: &'static str, id: &str, implied: &str) -> Result<()> {
    check_id("role", id)?;
    check_id("role", implied)?;
    enforce(&caller.ctx(), Action::AdminOnly(policy))
}

/// One implication, as `PUT` and `GET /v3/roles/{prior}/implies/{implied}` show it.
fn implication(p: &Role, i: &Role, base: &BaseUrl) -> Json<Value> {
    Json(
        json!({"role_inference": {"prior_role": brief(p, base), "implies": brief(i, base)},
        "links": {"self": base.v3(&format!("roles/{}/implies/{}", p.id, i.id))}}),
    )
}

fn no_implication(id: &str, implied: &str) -> IdentityError {
    IdentityError::NotFound {
        kind: "implied role",
        id: format!("{id} implies {implied}"),
    }
}

pub async fn add_implied(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path((id, implied)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>)> {
    check_implication(&caller, "identity:create_implied_role", &id, &implied)?;
    if id == implied {
        return Err(IdentityError::validation("A role cannot imply itself."));
    }
    let mut tx = crate::db::begin(&inner.db).await?;
    let p = role_get(&mut tx, &id).await?;
    let i = role_get(&mut tx, &implied).await?;
    implied_role_create(&mut tx, &id, &implied).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, implication(&p, &i, &base)))
}

pub async fn check_implied(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path((id, implied)): Path<(String, String)>,
) -> Result<Json<Value>> {
    check_implication(&caller, "identity:get_implied_role", &id, &implied)?;
    let mut conn = inner.db.conn().await?;
    let p = role_get(&mut conn, &id).await?;
    let i = role_get(&mut conn, &implied).await?;
    if !implied_role_list(&mut conn)
        .await?
        .contains(&(id.clone(), implied.clone()))
    {
        return Err(no_implication(&id, &implied));
    }
    Ok(implication(&p, &i, &base))
}

pub async fn remove_implied(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((id, implied)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_implication(&caller, "identity:delete_implied_role", &id, &implied)?;
    let mut conn = inner.db.conn().await?;
    if implied_role_delete(&mut conn, &id, &implied).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_implication(&id, &implied))
    }
}
