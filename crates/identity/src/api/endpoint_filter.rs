//! `/v3/OS-EP-FILTER/...`: endpoint groups and project-endpoint
//! associations (Keystone's `keystone/api/os_ep_filter.py`), all admin only.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::catalog::endpoint_view;
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::projects::project_view;
use super::{check_id, check_name, list_body, new_id};
use crate::db::endpoint_filter::{
    endpoint_group_create, endpoint_group_delete, endpoint_group_endpoints, endpoint_group_get,
    endpoint_group_list, endpoint_group_projects, endpoint_group_update, project_endpoint_add,
    project_endpoint_check, project_endpoint_group_add, project_endpoint_group_check,
    project_endpoint_group_remove, project_endpoint_groups, project_endpoint_projects,
    project_endpoint_remove, project_filtered_endpoints, EndpointGroup,
};
use crate::db::endpoints::endpoint_get;
use crate::db::projects::{project_get, project_list_ids};
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

const PREFIX: &str = "OS-EP-FILTER";

pub fn endpoint_group_view(g: &EndpointGroup, base: &BaseUrl) -> Value {
    json!({"id": g.id, "name": g.name, "description": g.description, "filters": g.filters,
           "links": {"self": base.v3(&format!("{PREFIX}/endpoint_groups/{}", g.id))}})
}

fn admin(caller: &Caller, action: &'static str) -> Result<()> {
    enforce(&caller.ctx(), Action::AdminOnly(action))
}

/// Keystone's `_require_valid_filter` and its "cannot be empty" check.
fn check_filters(v: &Value) -> Result<Map<String, Value>> {
    let Value::Object(m) = v else {
        return Err(IdentityError::validation(format!(
            "Invalid input for field 'filters': {v} is not of type 'object'"
        )));
    };
    if m.is_empty() {
        return Err(IdentityError::validation(
            "filters field is required and cannot be empty",
        ));
    }
    if m.keys()
        .any(|k| !matches!(k.as_str(), "service_id" | "region_id" | "interface"))
    {
        return Err(IdentityError::validation(
            "Expecting to find service_id or region_id or interface in endpoint_group. The \
             server could not comply with the request since it is either malformed or otherwise \
             incorrect. The client is assumed to be in error.",
        ));
    }
    Ok(m.clone())
}

fn group_fields(body: &Value) -> Result<&Map<String, Value>> {
    body.get("endpoint_group")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            IdentityError::validation(
                "Invalid input for the request body: 'endpoint_group' must be an object",
            )
        })
}

fn opt_string(m: &Map<String, Value>, field: &str) -> Result<Option<Option<String>>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(v) => Err(IdentityError::validation(format!(
            "Invalid input for field '{field}': {v} is not of type 'string'"
        ))),
    }
}

pub async fn create_group(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    admin(&caller, "identity:create_endpoint_group")?;
    let m = group_fields(&body)?;
    let name = match opt_string(m, "name")? {
        Some(Some(n)) => n,
        _ => {
            return Err(IdentityError::validation(
                "Invalid input for field 'name': 'name' is a required property",
            ))
        }
    };
    check_name("endpoint group", &name)?;
    let filters = check_filters(m.get("filters").unwrap_or(&Value::Null))?;
    let g = EndpointGroup {
        id: new_id(),
        name,
        description: opt_string(m, "description")?.flatten(),
        filters,
    };
    let mut conn = inner.db.conn().await?;
    endpoint_group_create(&mut conn, &g).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"endpoint_group": endpoint_group_view(&g, &base)})),
    ))
}

pub async fn list_groups(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    admin(&caller, "identity:list_endpoint_groups")?;
    let mut conn = inner.db.conn().await?;
    let groups = endpoint_group_list(&mut conn, f.get("name")).await?;
    let items = groups
        .iter()
        .map(|g| endpoint_group_view(g, &base))
        .collect();
    Ok(Json(list_body(
        "endpoint_groups",
        items,
        &base,
        &format!("{PREFIX}/endpoint_groups"),
    )))
}

pub async fn show_group(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("Endpoint Group", &id)?;
    admin(&caller, "identity:get_endpoint_group")?;
    let mut conn = inner.db.conn().await?;
    let g = endpoint_group_get(&mut conn, &id).await?;
    Ok(Json(
        json!({"endpoint_group": endpoint_group_view(&g, &base)}),
    ))
}

pub async fn update_group(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<Value>> {
    check_id("Endpoint Group", &id)?;
    admin(&caller, "identity:update_endpoint_group")?;
    let m = group_fields(&body)?;
    if m.is_empty() {
        return Err(IdentityError::validation(
            "Invalid input for field 'endpoint_group': {} does not have enough properties",
        ));
    }
    let name = opt_string(m, "name")?;
    let description = opt_string(m, "description")?;
    let filters = m.get("filters").map(check_filters).transpose()?;
    let mut tx = crate::db::begin(&inner.db).await?;
    let mut g = endpoint_group_get(&mut tx, &id).await?;
    if let Some(n) = name {
        let n = n.unwrap_or_default();
        check_name("endpoint group", &n)?;
        g.name = n;
    }
    if let Some(d) = description {
        g.description = d;
    }
    if let Some(f) = filters {
        g.filters = f;
    }
    endpoint_group_update(&mut tx, &g).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"endpoint_group": endpoint_group_view(&g, &base)}),
    ))
}

pub async fn delete_group(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    check_id("Endpoint Group", &id)?;
    admin(&caller, "identity:delete_endpoint_group")?;
    let mut tx = crate::db::begin(&inner.db).await?;
    endpoint_group_delete(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"projects": [...]}` of the given ids (missing projects left out).
async fn projects_body(
    inner: &Inner,
    ids: &[String],
    base: &BaseUrl,
    path: &str,
) -> Result<Json<Value>> {
    let mut conn = inner.db.conn().await?;
    let projects = project_list_ids(&mut conn, ids).await?;
    let items = projects.iter().map(|p| project_view(p, base)).collect();
    Ok(Json(list_body("projects", items, base, path)))
}

pub async fn group_projects(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("Endpoint Group", &id)?;
    admin(
        &caller,
        "identity:list_projects_associated_with_endpoint_group",
    )?;
    let mut conn = inner.db.conn().await?;
    endpoint_group_get(&mut conn, &id).await?;
    let ids = endpoint_group_projects(&mut conn, &id).await?;
    drop(conn);
    let path = format!("{PREFIX}/endpoint_groups/{id}/projects");
    projects_body(&inner, &ids, &base, &path).await
}

pub async fn group_endpoints(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("Endpoint Group", &id)?;
    admin(
        &caller,
        "identity:list_endpoints_associated_with_endpoint_group",
    )?;
    let mut conn = inner.db.conn().await?;
    let g = endpoint_group_get(&mut conn, &id).await?;
    let eps = endpoint_group_endpoints(&mut conn, &g).await?;
    let items = eps.iter().map(|e| endpoint_view(e, &base)).collect();
    Ok(Json(list_body(
        "endpoints",
        items,
        &base,
        &format!("{PREFIX}/endpoint_groups/{id}/endpoints"),
    )))
}

fn association_view(group: &str, project: &str, base: &BaseUrl) -> Value {
    json!({"endpoint_group_id": group, "project_id": project,
           "links": {"self": base.v3(&format!("{PREFIX}/endpoint_groups/{group}/projects/{project}"))}})
}

pub async fn show_group_project(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path((group, project)): Path<(String, String)>,
) -> Result<Json<Value>> {
    check_id("Endpoint Group", &group)?;
    check_id("project", &project)?;
    admin(&caller, "identity:get_endpoint_group_in_project")?;
    let mut conn = inner.db.conn().await?;
    project_get(&mut conn, &project).await?;
    endpoint_group_get(&mut conn, &group).await?;
    project_endpoint_group_check(&mut conn, &group, &project).await?;
    Ok(Json(
        json!({"project_endpoint_group": association_view(&group, &project, &base)}),
    ))
}

pub async fn add_group_project(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((group, project)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("Endpoint Group", &group)?;
    check_id("project", &project)?;
    admin(&caller, "identity:add_endpoint_group_to_project")?;
    let mut tx = crate::db::begin(&inner.db).await?;
    project_get(&mut tx, &project).await?;
    endpoint_group_get(&mut tx, &group).await?;
    project_endpoint_group_add(&mut tx, &group, &project).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_group_project(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((group, project)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("Endpoint Group", &group)?;
    check_id("project", &project)?;
    admin(&caller, "identity:remove_endpoint_group_from_project")?;
    let mut tx = crate::db::begin(&inner.db).await?;
    project_get(&mut tx, &project).await?;
    endpoint_group_get(&mut tx, &group).await?;
    project_endpoint_group_remove(&mut tx, &group, &project).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn project_groups(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    check_id("project", &project)?;
    admin(&caller, "identity:list_endpoint_groups_for_project")?;
    let mut conn = inner.db.conn().await?;
    project_get(&mut conn, &project).await?;
    let groups = project_endpoint_groups(&mut conn, &project).await?;
    let items = groups
        .iter()
        .map(|g| endpoint_group_view(g, &base))
        .collect();
    Ok(Json(list_body(
        "endpoint_groups",
        items,
        &base,
        &format!("{PREFIX}/projects/{project}/endpoint_groups"),
    )))
}

pub async fn project_endpoints(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(project): Path<String>,
) -> Result<Json<Value>> {
    check_id("project", &project)?;
    admin(&caller, "identity:list_endpoints_for_project")?;
    let mut conn = inner.db.conn().await?;
    project_get(&mut conn, &project).await?;
    let eps = project_filtered_endpoints(&mut conn, &project).await?;
    let items = eps.iter().map(|e| endpoint_view(e, &base)).collect();
    Ok(Json(list_body(
        "endpoints",
        items,
        &base,
        &format!("{PREFIX}/projects/{project}/endpoints"),
    )))
}

pub async fn check_project_endpoint(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((project, endpoint)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("project", &project)?;
    check_id("endpoint", &endpoint)?;
    admin(&caller, "identity:check_endpoint_in_project")?;
    let mut conn = inner.db.conn().await?;
    endpoint_get(&mut conn, &endpoint).await?;
    project_get(&mut conn, &project).await?;
    project_endpoint_check(&mut conn, &endpoint, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_project_endpoint(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((project, endpoint)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("project", &project)?;
    check_id("endpoint", &endpoint)?;
    admin(&caller, "identity:add_endpoint_to_project")?;
    let mut tx = crate::db::begin(&inner.db).await?;
    endpoint_get(&mut tx, &endpoint).await?;
    project_get(&mut tx, &project).await?;
    project_endpoint_add(&mut tx, &endpoint, &project).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_project_endpoint(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((project, endpoint)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_id("project", &project)?;
    check_id("endpoint", &endpoint)?;
    admin(&caller, "identity:remove_endpoint_from_project")?;
    let mut conn = inner.db.conn().await?;
    project_endpoint_remove(&mut conn, &endpoint, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn endpoint_projects(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(endpoint): Path<String>,
) -> Result<Json<Value>> {
    check_id("endpoint", &endpoint)?;
    admin(&caller, "identity:list_projects_for_endpoint")?;
    let mut conn = inner.db.conn().await?;
    endpoint_get(&mut conn, &endpoint).await?;
    let ids = project_endpoint_projects(&mut conn, &endpoint).await?;
    drop(conn);
    let path = format!("{PREFIX}/endpoints/{endpoint}/projects");
    projects_body(&inner, &ids, &base, &path).await
}
