//! `/v3/domains`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use stratus_common::ids::DomainId;

use super::crud::{self, Resource};
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::{check_name, new_id, schema, with_extra};
use crate::db::assignments::{
    assignment_delete_actor, assignment_delete_target, ActorType, TargetType,
};
use crate::db::domains::{
    domain_create, domain_delete, domain_get, domain_list, domain_update, Domain,
};
use crate::db::groups::{group_delete, group_list};
use crate::db::projects::{project_delete, project_list, ProjectFilter};
use crate::db::users::{user_delete, user_list};
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

pub fn domain_view(d: &Domain, base: &BaseUrl) -> Value {
    with_extra(
        &d.extra,
        json!({
            "id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
            "tags": [], "options": {},
            "links": {"self": base.v3(&format!("domains/{}", d.id))},
        }),
    )
}

#[derive(Deserialize)]
pub struct CreateBody {
    domain: DomainCreate,
}

#[derive(Deserialize)]
struct DomainCreate {
    name: String,
    id: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    domain: DomainUpdate,
}

#[derive(Deserialize)]
struct DomainUpdate {
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn clean(mut extra: Map<String, Value>) -> Map<String, Value> {
    for k in ["id", "links", "tags", "options", "domain_id"] {
        extra.remove(k);
    }
    extra
}

impl Resource for Domain {
    const KIND: &'static str = "domain";
    const COLLECTION: &'static str = "domains";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        domain_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        domain_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        domain_view(self, base)
    }
}

pub async fn create(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_domain"))?;
    let d = b.domain;
    check_name("domain", &d.name)?;
    // Keystone checks a domain's tags with the project tag schema.
    if let Some(t) = d.extra.get("tags") {
        schema::tags(t)?;
    }
    let domain = Domain {
        id: DomainId(d.id.unwrap_or_else(new_id)),
        name: d.name,
        description: d.description.unwrap_or_default(),
        enabled: d.enabled.unwrap_or(true),
        extra: clean(d.extra),
    };
    let mut conn = inner.db.conn().await?;
    domain_create(&mut conn, &domain).await?;
    Ok(crud::created(&domain, &base))
}

pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_domains"))?;
    let mut conn = inner.db.conn().await?;
    let rows = domain_list(&mut conn, f.get("name"), f.bool("enabled")?).await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    crud::show::<Domain>(&inner, &caller, Action::GetDomain(&id), &id, &base).await
}

pub async fn update(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:update_domain");
    crud::update(&inner, &caller, action, &id, &base, |d: &mut Domain| {
        let u = b.domain;
        if let Some(n) = u.name {
            check_name("domain", &n)?;
            d.name = n;
        }
        if let Some(v) = u.description {
            d.description = v;
        }
        if let Some(e) = u.enabled {
            d.enabled = e;
        }
        d.extra.extend(clean(u.extra));
        Ok(())
    })
    .await
}

/// Deletes a disabled domain with everything in it.
pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let action = Action::AdminOnly("identity:delete_domain");
    let (mut tx, d) = crud::load_for_change::<Domain>(&inner, &caller, action, &id).await?;
    if d.enabled {
        return Err(IdentityError::Forbidden(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    let projects = project_list(
        &mut tx,
        &ProjectFilter {
            domain_id: Some(&id),
            ..Default::default()
        },
    )
    .await?;
    for p in projects {
        assignment_delete_target(&mut tx, TargetType::Project, p.id.as_str()).await?;
        crate::db::limits::limit_delete_for_project(&mut tx, p.id.as_str()).await?;
        crate::db::endpoint_filter::endpoint_filter_forget_project(&mut tx, p.id.as_str()).await?;
        project_delete(&mut tx, p.id.as_str()).await?;
    }
    for u in user_list(&mut tx, None, Some(&id), None).await? {
        assignment_delete_actor(&mut tx, ActorType::User, u.id.as_str()).await?;
        crate::db::groups::group_remove_user_everywhere(&mut tx, u.id.as_str()).await?;
        user_delete(&mut tx, u.id.as_str()).await?;
    }
    for g in group_list(&mut tx, None, Some(&id)).await? {
        assignment_delete_actor(&mut tx, ActorType::Group, g.id.as_str()).await?;
        group_delete(&mut tx, g.id.as_str()).await?;
    }
    assignment_delete_target(&mut tx, TargetType::Domain, &id).await?;
    crate::db::limits::limit_delete_for_domain(&mut tx, &id).await?;
    crate::db::domain_configs::domain_config_delete(&mut tx, &id, None, None).await?;
    domain_delete(&mut tx, &id).await?;
    crud::no_content(tx).await
}
