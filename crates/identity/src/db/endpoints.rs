//! Catalog endpoints: a service's URL for one interface in one region.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use super::{extra, extra_text, flag, found, opt_text, text, Conn, Where};
use crate::error::{IdentityError, Result};
use crate::ids::EndpointId;

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub service_id: String,
    pub interface: String,
    pub region_id: Option<String>,
    pub url: String,
    pub enabled: bool,
    pub extra: Map<String, Value>,
}

const COLS: &str =
    "SELECT id, service_id, interface, region_id, url, enabled, extra FROM endpoints";

fn from_row(r: &AnyRow) -> Result<Endpoint> {
    Ok(Endpoint {
        id: EndpointId(text(r, "id")?),
        service_id: text(r, "service_id")?,
        interface: text(r, "interface")?,
        region_id: opt_text(r, "region_id")?,
        url: text(r, "url")?,
        enabled: flag(r, "enabled")?,
        extra: extra(r)?,
    })
}

pub async fn endpoint_create(conn: &mut Conn, e: &Endpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.id.as_str())
    .bind(&e.service_id)
    .bind(&e.interface)
    .bind(e.region_id.clone())
    .bind(&e.url)
    .bind(stratus_db::b2i(e.enabled))
    .bind(extra_text(&e.extra))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn endpoint_get(conn: &mut Conn, id: &str) -> Result<Endpoint> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("endpoint", id))?;
    from_row(&row)
}

#[derive(Debug, Default)]
pub struct EndpointFilter<'a> {
    pub service_id: Option<&'a str>,
    pub interface: Option<&'a str>,
    pub region_id: Option<&'a str>,
    pub enabled: Option<bool>,
}

pub async fn endpoint_list(conn: &mut Conn, f: &EndpointFilter<'_>) -> Result<Vec<Endpoint>> {
    let mut w = Where::default();
    w.text("service_id", f.service_id)
        .text("interface", f.interface)
        .text("region_id", f.region_id)
        .flag("enabled", f.enabled);
    w.fetch(conn, COLS, "service_id, interface, id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn endpoint_update(conn: &mut Conn, e: &Endpoint) -> Result<()> {
    let r = sqlx::query(
        "UPDATE endpoints SET service_id = $1, interface = $2, region_id = $3, url = $4, enabled = $5, extra = $6 WHERE id = $7",
    )
    .bind(&e.service_id)
    .bind(&e.interface)
    .bind(e.region_id.clone())
    .bind(&e.url)
    .bind(stratus_db::b2i(e.enabled))
    .bind(extra_text(&e.extra))
    .bind(e.id.as_str())
    .execute(&mut *conn)
    .await?;
    found(r, "endpoint", e.id.as_str())
}

pub async fn endpoint_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM endpoints WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "endpoint", id)
}
