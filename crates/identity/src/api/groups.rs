//! `/v3/groups` and group membership.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use stratus_common::ids::DomainId;

use super::crud::{self, Resource};
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::users::user_view;
use super::{check_id, check_name, list_body, new_id, schema, with_extra};
use crate::db::assignments::{assignment_delete_actor, ActorType};
use crate::db::domains::domain_get;
use crate::db::groups::{
    group_add_member, group_create, group_delete, group_get, group_has_member, group_list,
    group_member_ids, group_remove_member, group_update, Group,
};
use crate::db::users::user_get;
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::ids::GroupId;
use crate::policy::{enforce, Action};
use crate::Inner;

pub fn group_view(g: &Group, base: &BaseUrl) -> Value {
    with_extra(
        &g.extra,
        json!({
            "id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description,
            "links": {"self": base.v3(&format!("groups/{}", g.id))},
        }),
    )
}

#[derive(Deserialize)]
pub struct CreateBody {
    group: GroupCreate,
}

#[derive(Deserialize)]
struct GroupCreate {
    name: String,
    domain_id: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    group: GroupUpdate,
}

#[derive(Deserialize)]
struct GroupUpdate {
    name: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn clean(mut extra: Map<String, Value>) -> Map<String, Value> {
    for k in ["id", "links", "domain_id"] {
        extra.remove(k);
    }
    extra
}

impl Resource for Group {
    const KIND: &'static str = "group";
    const COLLECTION: &'static str = "groups";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        group_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        group_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        group_view(self, base)
    }
}

pub async fn create(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let ctx = caller.ctx();
    enforce(&ctx, Action::AdminOnly("identity:create_group"))?;
    let g = b.group;
    check_name("group", &g.name)?;
    schema::opt_id_string("domain_id", g.domain_id.as_deref())?;
    let domain_id = g
        .domain_id
        .or_else(|| ctx.project_domain_id.as_ref().map(|d| d.0.clone()))
        .unwrap_or_else(|| "default".to_owned());
    let mut tx = crate::db::begin(&inner.db).await?;
    domain_get(&mut tx, &domain_id).await?;
    let group = Group {
        id: GroupId(new_id()),
        name: g.name,
        domain_id: DomainId(domain_id),
        description: g.description.unwrap_or_default(),
        extra: clean(g.extra),
    };
    group_create(&mut tx, &group).await?;
    tx.commit().await?;
    Ok(crud::created(&group, &base))
}

pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_groups"))?;
    let mut conn = inner.db.conn().await?;
    let rows = group_list(&mut conn, f.get("name"), f.get("domain_id")).await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:get_group");
    crud::show::<Group>(&inner, &caller, action, &id, &base).await
}

pub async fn update(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:update_group");
    crud::update(&inner, &caller, action, &id, &base, |g: &mut Group| {
        let u = b.group;
        if let Some(n) = u.name {
            check_name("group", &n)?;
            g.name = n;
        }
        if let Some(d) = u.description {
            g.description = d;
        }
        g.extra.extend(clean(u.extra));
        Ok(())
    })
    .await
}

pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let action = Action::AdminOnly("identity:delete_group");
    let (mut tx, _) = crud::load_for_change::<Group>(&inner, &caller, action, &id).await?;
    assignment_delete_actor(&mut tx, ActorType::Group, &id).await?;
    group_delete(&mut tx, &id).await?;
    crud::no_content(tx).await
}

pub async fn members(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("group", &id)?;
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:list_users_in_group"),
    )?;
    let mut conn = inner.db.conn().await?;
    group_get(&mut conn, &id).await?;
    let mut items = Vec::new();
    for u in group_member_ids(&mut conn, &id).await? {
        items.push(user_view(&user_get(&mut conn, &u).await?, &base));
    }
    Ok(Json(list_body(
        "users",
        items,
        &base,
        &format!("groups/{id}/users"),
    )))
}

/// The ids of a membership path, then the policy.
fn check_membership(caller: &Caller, policy: &'static str, id: &str, user: &str) -> Result<()> {
    check_id("group", id)?;
    check_id("user", user)?;
    enforce(&caller.ctx(), Action::AdminOnly(policy))
}

/// 204 when the membership was there, else its 404.
fn membership_found(found: bool, user: String) -> Result<StatusCode> {
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(IdentityError::NotFound {
            kind: "user in group",
            id: user,
        })
    }
}

pub async fn add_member(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_membership(&caller, "identity:add_user_to_group", &id, &user)?;
    let mut tx = crate::db::begin(&inner.db).await?;
    group_get(&mut tx, &id).await?;
    user_get(&mut tx, &user).await?;
    group_add_member(&mut tx, &id, &user).await?;
    crud::no_content(tx).await
}

pub async fn check_member(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_membership(&caller, "identity:check_user_in_group", &id, &user)?;
    let mut conn = inner.db.conn().await?;
    group_get(&mut conn, &id).await?;
    user_get(&mut conn, &user).await?;
    let found = group_has_member(&mut conn, &id, &user).await?;
    membership_found(found, user)
}

pub async fn remove_member(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_membership(&caller, "identity:remove_user_from_group", &id, &user)?;
    let mut conn = inner.db.conn().await?;
    group_get(&mut conn, &id).await?;
    let found = group_remove_member(&mut conn, &id, &user).await?;
    membership_found(found, user)
}
