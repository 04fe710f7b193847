//! OS-EP-FILTER: endpoint groups (filters over endpoints) and which
//! endpoints and endpoint groups are associated with a project. A project
//! with any association sees only those endpoints in its catalog.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use super::endpoints::{endpoint_list, Endpoint, EndpointFilter};
use super::{found, opt_text, text, Conn, Where};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// `service_id`, `region_id` and `interface` to match exactly.
    pub filters: Map<String, Value>,
}

impl EndpointGroup {
    /// Keystone's `get_endpoints_filtered_by_endpoint_group`: every filter
    /// equals the endpoint's attribute.
    pub fn matches(&self, e: &Endpoint) -> bool {
        self.filters.iter().all(|(k, v)| {
            let have = match k.as_str() {
                "service_id" => Some(e.service_id.as_str()),
                "region_id" => e.region_id.as_deref(),
                "interface" => Some(e.interface.as_str()),
                _ => return false,
            };
            match v {
                Value::Null => have.is_none(),
                Value::String(s) => have == Some(s.as_str()),
                _ => false,
            }
        })
    }
}

const COLS: &str = "SELECT id, name, description, filters FROM endpoint_groups";

fn from_row(r: &AnyRow) -> Result<EndpointGroup> {
    let filters = match serde_json::from_str::<Value>(&text(r, "filters")?) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(EndpointGroup {
        id: text(r, "id")?,
        name: text(r, "name")?,
        description: opt_text(r, "description")?,
        filters,
    })
}

pub async fn endpoint_group_create(conn: &mut Conn, g: &EndpointGroup) -> Result<()> {
    sqlx::query(
        "INSERT INTO endpoint_groups (id, name, description, filters) VALUES ($1, $2, $3, $4)",
    )
    .bind(&g.id)
    .bind(&g.name)
    .bind(g.description.clone())
    .bind(Value::Object(g.filters.clone()).to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn endpoint_group_get(conn: &mut Conn, id: &str) -> Result<EndpointGroup> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("Endpoint Group", id))?;
    from_row(&row)
}

pub async fn endpoint_group_list(
    conn: &mut Conn,
    name: Option<&str>,
) -> Result<Vec<EndpointGroup>> {
    let mut w = Where::default();
    w.text("name", name);
    w.fetch(conn, COLS, "name, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn endpoint_group_update(conn: &mut Conn, g: &EndpointGroup) -> Result<()> {
    let r = sqlx::query(
        "UPDATE endpoint_groups SET name = $1, description = $2, filters = $3 WHERE id = $4",
    )
    .bind(&g.name)
    .bind(g.description.clone())
    .bind(Value::Object(g.filters.clone()).to_string())
    .bind(&g.id)
    .execute(&mut *conn)
    .await?;
    found(r, "Endpoint Group", &g.id)
}

/// Deletes the group and its project associations.
pub async fn endpoint_group_delete(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM project_endpoint_groups WHERE endpoint_group_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM endpoint_groups WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "Endpoint Group", id)
}

/// The endpoints the group's filters select.
pub async fn endpoint_group_endpoints(conn: &mut Conn, g: &EndpointGroup) -> Result<Vec<Endpoint>> {
    Ok(endpoint_list(conn, &EndpointFilter::default())
        .await?
        .into_iter()
        .filter(|e| g.matches(e))
        .collect())
}

pub async fn project_endpoint_add(
    conn: &mut Conn,
    endpoint_id: &str,
    project_id: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO project_endpoints (endpoint_id, project_id) VALUES ($1, $2)")
        .bind(endpoint_id)
        .bind(project_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            IdentityError::conflict_on(e, || {
                "Conflict occurred attempting to store project_endpoint - Duplicate entry."
                    .to_owned()
            })
        })?;
    Ok(())
}

fn no_project_endpoint(endpoint_id: &str, project_id: &str) -> IdentityError {
    IdentityError::NotFoundMessage(format!(
        "Endpoint {endpoint_id} not found in project {project_id}"
    ))
}

pub async fn project_endpoint_check(
    conn: &mut Conn,
    endpoint_id: &str,
    project_id: &str,
) -> Result<()> {
    sqlx::query(
        "SELECT endpoint_id FROM project_endpoints WHERE endpoint_id = $1 AND project_id = $2",
    )
    .bind(endpoint_id)
    .bind(project_id)
    .fetch_optional(&mut *conn)
    .await?
    .map(|_| ())
    .ok_or_else(|| no_project_endpoint(endpoint_id, project_id))
}

pub async fn project_endpoint_remove(
    conn: &mut Conn,
    endpoint_id: &str,
    project_id: &str,
) -> Result<()> {
    let r = sqlx::query("DELETE FROM project_endpoints WHERE endpoint_id = $1 AND project_id = $2")
        .bind(endpoint_id)
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    if r.rows_affected() == 0 {
        return Err(no_project_endpoint(endpoint_id, project_id));
    }
    Ok(())
}

/// Ids of the projects directly associated with the endpoint.
pub async fn project_endpoint_projects(conn: &mut Conn, endpoint_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT project_id FROM project_endpoints WHERE endpoint_id = $1 ORDER BY project_id",
    )
    .bind(endpoint_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| text(r, "project_id")).collect()
}

pub async fn project_endpoint_group_add(
    conn: &mut Conn,
    group_id: &str,
    project_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO project_endpoint_groups (endpoint_group_id, project_id) VALUES ($1, $2)",
    )
    .bind(group_id)
    .bind(project_id)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        IdentityError::conflict_on(e, || {
            "Conflict occurred attempting to store project_endpoint_group - Duplicate entry."
                .to_owned()
        })
    })?;
    Ok(())
}

fn no_group_association() -> IdentityError {
    IdentityError::NotFoundMessage("Endpoint Group Project Association not found".to_owned())
}

pub async fn project_endpoint_group_check(
    conn: &mut Conn,
    group_id: &str,
    project_id: &str,
) -> Result<()> {
    sqlx::query("SELECT project_id FROM project_endpoint_groups WHERE endpoint_group_id = $1 AND project_id = $2")
        .bind(group_id)
        .bind(project_id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|_| ())
        .ok_or_else(no_group_association)
}

pub async fn project_endpoint_group_remove(
    conn: &mut Conn,
    group_id: &str,
    project_id: &str,
) -> Result<()> {
    let r = sqlx::query(
        "DELETE FROM project_endpoint_groups WHERE endpoint_group_id = $1 AND project_id = $2",
    )
    .bind(group_id)
    .bind(project_id)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Err(no_group_association());
    }
    Ok(())
}

/// Ids of the projects associated with the group.
pub async fn endpoint_group_projects(conn: &mut Conn, group_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT project_id FROM project_endpoint_groups WHERE endpoint_group_id = $1 ORDER BY project_id")
        .bind(group_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| text(r, "project_id")).collect()
}

/// The endpoint groups associated with the project.
pub async fn project_endpoint_groups(
    conn: &mut Conn,
    project_id: &str,
) -> Result<Vec<EndpointGroup>> {
    sqlx::query(
        "SELECT g.id, g.name, g.description, g.filters FROM endpoint_groups g \
         JOIN project_endpoint_groups p ON p.endpoint_group_id = g.id \
         WHERE p.project_id = $1 ORDER BY g.name, g.id",
    )
    .bind(project_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Keystone's `list_endpoints_for_project`: the endpoints associated
/// directly, then those of the project's endpoint groups, each once.
pub async fn project_filtered_endpoints(
    conn: &mut Conn,
    project_id: &str,
) -> Result<Vec<Endpoint>> {
    let direct = sqlx::query("SELECT endpoint_id FROM project_endpoints WHERE project_id = $1")
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| text(r, "endpoint_id"))
        .collect::<Result<Vec<_>>>()?;
    let groups = project_endpoint_groups(conn, project_id).await?;
    if direct.is_empty() && groups.is_empty() {
        return Ok(Vec::new());
    }
    Ok(endpoint_list(conn, &EndpointFilter::default())
        .await?
        .into_iter()
        .filter(|e| direct.contains(&e.id.0) || groups.iter().any(|g| g.matches(e)))
        .collect())
}

/// A deleted endpoint's project associations go with it.
pub async fn endpoint_filter_forget_endpoint(conn: &mut Conn, endpoint_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM project_endpoints WHERE endpoint_id = $1")
        .bind(endpoint_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A deleted project's associations go with it.
pub async fn endpoint_filter_forget_project(conn: &mut Conn, project_id: &str) -> Result<()> {
    sqlx::query("DELETE FROM project_endpoints WHERE project_id = $1")
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM project_endpoint_groups WHERE project_id = $1")
        .bind(project_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
