//! Catalog services (`identity`, `compute`, ...).

use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use super::{extra, extra_text, flag, found, text, Conn, Where};
use crate::error::{IdentityError, Result};
use crate::ids::ServiceId;

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub id: ServiceId,
    pub service_type: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub extra: Map<String, Value>,
}

const COLS: &str = "SELECT id, type, name, description, enabled, extra FROM services";

fn from_row(r: &AnyRow) -> Result<Service> {
    Ok(Service {
        id: ServiceId(text(r, "id")?),
        service_type: text(r, "type")?,
        name: text(r, "name")?,
        description: text(r, "description")?,
        enabled: flag(r, "enabled")?,
        extra: extra(r)?,
    })
}

pub async fn service_create(conn: &mut Conn, s: &Service) -> Result<()> {
    sqlx::query("INSERT INTO services (id, type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(s.id.as_str())
        .bind(&s.service_type)
        .bind(&s.name)
        .bind(&s.description)
        .bind(stratus_db::b2i(s.enabled))
        .bind(extra_text(&s.extra))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn service_get(conn: &mut Conn, id: &str) -> Result<Service> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("service", id))?;
    from_row(&row)
}

pub async fn service_list(
    conn: &mut Conn,
    service_type: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<Service>> {
    let mut w = Where::default();
    w.text("type", service_type).text("name", name);
    w.fetch(conn, COLS, "type, name, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn service_update(conn: &mut Conn, s: &Service) -> Result<()> {
    let r = sqlx::query("UPDATE services SET type = $1, name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $6")
        .bind(&s.service_type)
        .bind(&s.name)
        .bind(&s.description)
        .bind(stratus_db::b2i(s.enabled))
        .bind(extra_text(&s.extra))
        .bind(s.id.as_str())
        .execute(&mut *conn)
        .await?;
    found(r, "service", s.id.as_str())
}

/// Deletes a service and its endpoints, as Keystone does.
pub async fn service_delete(conn: &mut Conn, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM endpoints WHERE service_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query("DELETE FROM services WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "service", id)
}
