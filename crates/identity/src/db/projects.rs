//! Projects (tenants), each in a domain; names are unique per domain.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use stratus_common::ids::{DomainId, ProjectId};

use super::{extra, extra_text, flag, found, opt_text, text, Conn, Where};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub domain_id: DomainId,
    pub parent_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub is_domain: bool,
    pub extra: Map<String, Value>,
}

const COLS: &str =
    "SELECT id, name, domain_id, parent_id, description, enabled, is_domain, extra FROM projects";

fn from_row(r: &AnyRow) -> Result<Project> {
    Ok(Project {
        id: ProjectId(text(r, "id")?),
        name: text(r, "name")?,
        domain_id: DomainId(text(r, "domain_id")?),
        parent_id: opt_text(r, "parent_id")?,
        description: text(r, "description")?,
        enabled: flag(r, "enabled")?,
        is_domain: flag(r, "is_domain")?,
        extra: extra(r)?,
    })
}

fn duplicate(p: &Project) -> String {
    format!(
        "Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {}.",
        p.name
    )
}

pub async fn project_create(conn: &mut Conn, p: &Project) -> Result<()> {
    sqlx::query(
        "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, is_domain, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id.as_str())
    .bind(&p.name)
    .bind(p.domain_id.as_str())
    .bind(p.parent_id.clone())
    .bind(&p.description)
    .bind(stratus_db::b2i(p.enabled))
    .bind(stratus_db::b2i(p.is_domain))
    .bind(extra_text(&p.extra))
    .bind(stratus_common::time::to_db(stratus_common::time::now()))
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || duplicate(p)))?;
    Ok(())
}

pub async fn project_get(conn: &mut Conn, id: &str) -> Result<Project> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("project", id))?;
    from_row(&row)
}

pub async fn project_get_by_name(conn: &mut Conn, domain_id: &str, name: &str) -> Result<Project> {
    let row = sqlx::query(&format!("{COLS} WHERE domain_id = $1 AND name = $2"))
        .bind(domain_id)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("project", name))?;
    from_row(&row)
}

#[derive(Debug, Default)]
pub struct ProjectFilter<'a> {
    pub name: Option<&'a str>,
    pub domain_id: Option<&'a str>,
    pub parent_id: Option<&'a str>,
    pub enabled: Option<bool>,
    pub is_domain: Option<bool>,
}

pub async fn project_list(conn: &mut Conn, f: &ProjectFilter<'_>) -> Result<Vec<Project>> {
    let mut w = Where::default();
    w.text("name", f.name)
        .text("domain_id", f.domain_id)
        .text("parent_id", f.parent_id)
        .flag("enabled", f.enabled)
        .flag("is_domain", f.is_domain);
    w.fetch(conn, COLS, "name, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Projects by id, in name order; unknown ids are skipped.
pub async fn project_list_ids(conn: &mut Conn, ids: &[String]) -> Result<Vec<Project>> {
    let mut out = Vec::new();
    for id in ids {
        match project_get(conn, id).await {
            Ok(p) => out.push(p),
            Err(IdentityError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.0.cmp(&b.id.0)));
    Ok(out)
}

pub async fn project_update(conn: &mut Conn, p: &Project) -> Result<()> {
    let r = sqlx::query(
        "UPDATE projects SET name = $1, description = $2, enabled = $3, extra = $4 WHERE id = $5",
    )
    .bind(&p.name)
    .bind(&p.description)
    .bind(stratus_db::b2i(p.enabled))
    .bind(extra_text(&p.extra))
    .bind(p.id.as_str())
    .execute(&mut *conn)
    .await
    .map_err(|e| IdentityError::conflict_on(e, || duplicate(p)))?;
    found(r, "project", p.id.as_str())
}

pub async fn project_has_children(conn: &mut Conn, id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE parent_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

pub async fn project_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "project", id)
}
