//! `/v3/users`, a user's projects and groups, and the self-service password
//! change. Disabling a user or changing a password revokes the user's tokens.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use stratus_common::ids::{DomainId, UserId};

use super::crud::{self, Resource};
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::groups::group_view;
use super::projects::project_view;
use super::{check_id, check_name, list_body, new_id, schema, with_extra};
use crate::db::assignments::{assignment_delete_actor, ActorType};
use crate::db::domains::domain_get;
use crate::db::groups::{group_get, group_ids_of_user, group_remove_user_everywhere};
use crate::db::revocations::revocation_create_for_user;
use crate::db::users::{
    user_create, user_delete, user_get, user_list, user_set_password, user_update, User,
};
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

pub fn user_view(u: &User, base: &BaseUrl) -> Value {
    let mut v = with_extra(
        &u.extra,
        json!({
            "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
            "password_expires_at": null, "options": {},
            "links": {"self": base.v3(&format!("users/{}", u.id))},
        }),
    );
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    if !u.description.is_empty() {
        v["description"] = json!(u.description);
    }
    v
}

#[derive(Deserialize)]
pub struct CreateBody {
    user: UserCreate,
}

#[derive(Deserialize)]
struct UserCreate {
    name: String,
    domain_id: Option<String>,
    password: Option<String>,
    enabled: Option<bool>,
    default_project_id: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    user: UserUpdate,
}

#[derive(Deserialize)]
struct UserUpdate {
    name: Option<String>,
    password: Option<String>,
    enabled: Option<bool>,
    default_project_id: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct PasswordBody {
    user: PasswordChange,
}

#[derive(Deserialize)]
struct PasswordChange {
    original_password: String,
    password: String,
}

fn clean(mut extra: Map<String, Value>) -> Map<String, Value> {
    for k in ["id", "links", "options", "domain_id", "password_expires_at"] {
        extra.remove(k);
    }
    extra
}

fn check_password(p: &str) -> Result<()> {
    if p.is_empty() || p.len() > 4096 {
        return Err(IdentityError::validation(
            "Invalid input for field 'password': it must be 1 to 4096 characters.",
        ));
    }
    Ok(())
}

/// A checked, hashed new password, when the body has one.
async fn new_password_hash(inner: &Inner, password: Option<&str>) -> Result<Option<String>> {
    match password {
        Some(p) => {
            check_password(p)?;
            Ok(Some(
                inner
                    .hashing
                    .hash(p, inner.config.password_hash_cost)
                    .await?,
            ))
        }
        None => Ok(None),
    }
}

impl Resource for User {
    const KIND: &'static str = "user";
    const COLLECTION: &'static str = "users";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        user_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        user_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        user_view(self, base)
    }
}

/// Every token of the user issued up to now stops working.
pub(crate) async fn revoke_user_tokens(conn: &mut Conn, user_id: &str) -> Result<()> {
    revocation_create_for_user(conn, user_id, chrono::Utc::now()).await
}

pub async fn create(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let ctx = caller.ctx();
    enforce(&ctx, Action::AdminOnly("identity:create_user"))?;
    let u = b.user;
    check_name("user", &u.name)?;
    schema::opt_id_string("domain_id", u.domain_id.as_deref())?;
    schema::opt_id_string("default_project_id", u.default_project_id.as_deref())?;
    let hash = new_password_hash(&inner, u.password.as_deref()).await?;
    let domain_id = u
        .domain_id
        .or_else(|| ctx.project_domain_id.as_ref().map(|d| d.0.clone()))
        .unwrap_or_else(|| "default".to_owned());
    let mut tx = crate::db::begin(&inner.db).await?;
    domain_get(&mut tx, &domain_id).await?;
    let user = User {
        id: UserId(new_id()),
        name: u.name,
        domain_id: DomainId(domain_id),
        enabled: u.enabled.unwrap_or(true),
        default_project_id: u.default_project_id,
        description: u.description.unwrap_or_default(),
        password_hash: hash,
        extra: clean(u.extra),
    };
    user_create(&mut tx, &user).await?;
    tx.commit().await?;
    Ok(crud::created(&user, &base))
}

pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_users"))?;
    let mut conn = inner.db.conn().await?;
    let rows = user_list(
        &mut conn,
        f.get("name"),
        f.get("domain_id"),
        f.bool("enabled")?,
    )
    .await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    crud::show::<User>(&inner, &caller, Action::GetUser(&id), &id, &base).await
}

pub async fn update(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Json<Value>> {
    check_id("user", &id)?;
    enforce(&caller.ctx(), Action::AdminOnly("identity:update_user"))?;
    let u = b.user;
    schema::opt_id_string("default_project_id", u.default_project_id.as_deref())?;
    let hash = new_password_hash(&inner, u.password.as_deref()).await?;
    let mut tx = crate::db::begin(&inner.db).await?;
    let mut user = user_get(&mut tx, &id).await?;
    if let Some(n) = u.name {
        check_name("user", &n)?;
        user.name = n;
    }
    let disabling = user.enabled && u.enabled == Some(false);
    if let Some(e) = u.enabled {
        user.enabled = e;
    }
    if let Some(p) = u.default_project_id {
        user.default_project_id = Some(p);
    }
    if let Some(d) = u.description {
        user.description = d;
    }
    user.extra.extend(clean(u.extra));
    user_update(&mut tx, &user).await?;
    if let Some(h) = &hash {
        user_set_password(&mut tx, &id, h).await?;
    }
    if disabling || hash.is_some() {
        revoke_user_tokens(&mut tx, &id).await?;
    }
    tx.commit().await?;
    Ok(crud::one(&user, &base))
}

pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let action = Action::AdminOnly("identity:delete_user");
    let (mut tx, _) = crud::load_for_change::<User>(&inner, &caller, action, &id).await?;
    assignment_delete_actor(&mut tx, ActorType::User, &id).await?;
    group_remove_user_everywhere(&mut tx, &id).await?;
    crate::db::application_credentials::application_credential_delete_for_user(&mut tx, &id)
        .await?;
    crate::db::access_rules::access_rule_delete_for_user(&mut tx, &id).await?;
    user_delete(&mut tx, &id).await?;
    crud::no_content(tx).await
}

/// `GET /v3/users/{id}/projects`: projects the user holds a role on.
pub async fn projects(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("user", &id)?;
    enforce(&caller.ctx(), Action::ListUserProjects(&id))?;
    let mut conn = inner.db.conn().await?;
    user_get(&mut conn, &id).await?;
    let items = super::auth::user_projects(&mut conn, &id)
        .await?
        .iter()
        .map(|p| project_view(p, &base))
        .collect();
    Ok(Json(list_body(
        "projects",
        items,
        &base,
        &format!("users/{id}/projects"),
    )))
}

/// `GET /v3/users/{id}/groups`.
pub async fn groups(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("user", &id)?;
    enforce(&caller.ctx(), Action::GetUser(&id))?;
    let mut conn = inner.db.conn().await?;
    user_get(&mut conn, &id).await?;
    let mut items = Vec::new();
    for g in group_ids_of_user(&mut conn, &id).await? {
        items.push(group_view(&group_get(&mut conn, &g).await?, &base));
    }
    Ok(Json(list_body(
        "groups",
        items,
        &base,
        &format!("users/{id}/groups"),
    )))
}

/// `POST /v3/users/{id}/password`: the user proves the old password; no
/// token is needed (so that an expired password can be changed), as in Keystone.
pub async fn change_password(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    Body(b): Body<PasswordBody>,
) -> Result<StatusCode> {
    check_id("user", &id)?;
    check_password(&b.user.password)?;
    let mut conn = inner.db.conn().await?;
    let user = match user_get(&mut conn, &id).await {
        Ok(u) => Some(u),
        Err(IdentityError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    drop(conn);
    let ok = inner
        .hashing
        .verify(
            &b.user.original_password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
            inner.config.password_hash_cost,
        )
        .await?;
    match user {
        Some(u) if ok && u.enabled => {}
        _ => return Err(IdentityError::unauthorized()),
    }
    let hash = inner
        .hashing
        .hash(&b.user.password, inner.config.password_hash_cost)
        .await?;
    let mut tx = crate::db::begin(&inner.db).await?;
    user_set_password(&mut tx, &id, &hash).await?;
    revoke_user_tokens(&mut tx, &id).await?;
    crud::no_content(tx).await
}
