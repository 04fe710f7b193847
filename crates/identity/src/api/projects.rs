//! `/v3/projects`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use stratus_common::ids::{DomainId, ProjectId};

use super::crud::{self, Resource};
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::{check_name, new_id, schema, with_extra};
use crate::db::assignments::{assignment_delete_target, TargetType};
use crate::db::domains::domain_get;
use crate::db::projects::{
    project_create, project_delete, project_get, project_has_children, project_list,
    project_update, Project, ProjectFilter,
};
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

pub fn project_view(p: &Project, base: &BaseUrl) -> Value {
    // Tags are kept with the extra attributes (`--tag` in OSC).
    let tags = p.extra.get("tags").cloned().unwrap_or_else(|| json!([]));
    let mut v = with_extra(
        &p.extra,
        json!({
            "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
            "enabled": p.enabled, "is_domain": p.is_domain,
            // Keystone shows a top-level project's domain as its parent.
            "parent_id": p.parent_id.clone().unwrap_or_else(|| p.domain_id.0.clone()),
            "options": {},
            "links": {"self": base.v3(&format!("projects/{}", p.id))},
        }),
    );
    v["tags"] = tags;
    v
}

#[derive(Deserialize)]
pub struct CreateBody {
    project: ProjectCreate,
}

#[derive(Deserialize)]
struct ProjectCreate {
    name: String,
    domain_id: Option<String>,
    parent_id: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    is_domain: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Deserialize)]
pub struct UpdateBody {
    project: ProjectUpdate,
}

#[derive(Deserialize)]
struct ProjectUpdate {
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn clean(mut extra: Map<String, Value>) -> Result<Map<String, Value>> {
    for k in [
        "id",
        "links",
        "options",
        "domain_id",
        "parent_id",
        "is_domain",
    ] {
        extra.remove(k);
    }
    if let Some(t) = extra.get("tags") {
        schema::tags(t)?;
    }
    Ok(extra)
}

impl Resource for Project {
    const KIND: &'static str = "project";
    const COLLECTION: &'static str = "projects";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        project_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        project_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        project_view(self, base)
    }
}

pub async fn create(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<CreateBody>,
) -> Result<(StatusCode, Json<Value>)> {
    let ctx = caller.ctx();
    enforce(&ctx, Action::AdminOnly("identity:create_project"))?;
    let p = b.project;
    check_name("project", &p.name)?;
    schema::opt_id_string("domain_id", p.domain_id.as_deref())?;
    schema::opt_id_string("parent_id", p.parent_id.as_deref())?;
    if p.is_domain == Some(true) {
        return Err(IdentityError::validation(
            "Projects acting as domains are not supported.",
        ));
    }
    let mut tx = crate::db::begin(&inner.db).await?;
    let parent = match &p.parent_id {
        Some(id) => Some(project_get(&mut tx, id).await?),
        None => None,
    };
    let domain_id = p
        .domain_id
        .or_else(|| parent.as_ref().map(|x| x.domain_id.0.clone()))
        .or_else(|| ctx.project_domain_id.as_ref().map(|d| d.0.clone()))
        .unwrap_or_else(|| "default".to_owned());
    domain_get(&mut tx, &domain_id).await?;
    if let Some(par) = &parent {
        if par.domain_id.as_str() != domain_id {
            return Err(IdentityError::validation(
                "A project must be in the same domain as its parent.",
            ));
        }
    }
    let project = Project {
        id: ProjectId(new_id()),
        name: p.name,
        domain_id: DomainId(domain_id),
        parent_id: p.parent_id,
        description: p.description.unwrap_or_default(),
        enabled: p.enabled.unwrap_or(true),
        is_domain: false,
        extra: clean(p.extra)?,
    };
    project_create(&mut tx, &project).await?;
    tx.commit().await?;
    Ok(crud::created(&project, &base))
}

pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_projects"))?;
    let mut conn = inner.db.conn().await?;
    let filter = ProjectFilter {
        name: f.get("name"),
        domain_id: f.get("domain_id"),
        parent_id: f.get("parent_id"),
        enabled: f.bool("enabled")?,
        is_domain: f.bool("is_domain")?,
    };
    let rows = project_list(&mut conn, &filter).await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    crud::show::<Project>(&inner, &caller, Action::GetProject(&id), &id, &base).await
}

pub async fn update(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<UpdateBody>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:update_project");
    crud::update(&inner, &caller, action, &id, &base, |p: &mut Project| {
        let u = b.project;
        if let Some(n) = u.name {
            check_name("project", &n)?;
            p.name = n;
        }
        if let Some(v) = u.description {
            p.description = v;
        }
        if let Some(e) = u.enabled {
            p.enabled = e;
        }
        p.extra.extend(clean(u.extra)?);
        Ok(())
    })
    .await
}

pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let action = Action::AdminOnly("identity:delete_project");
    let (mut tx, _) = crud::load_for_change::<Project>(&inner, &caller, action, &id).await?;
    if project_has_children(&mut tx, &id).await? {
        return Err(IdentityError::Forbidden(format!(
            "Cannot delete the project {id} since it is not a leaf in the hierarchy."
        )));
    }
    assignment_delete_target(&mut tx, TargetType::Project, &id).await?;
    crate::db::limits::limit_delete_for_project(&mut tx, &id).await?;
    crate::db::endpoint_filter::endpoint_filter_forget_project(&mut tx, &id).await?;
    project_delete(&mut tx, &id).await?;
    crud::no_content(tx).await
}
