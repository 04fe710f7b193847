//! Regions of the catalog (`RegionOne` by default).

use serde_json::{Map, Value};
use sqlx::any::AnyRow;

use super::{extra, extra_text, found, opt_text, text, Conn, Where};
use crate::error::{IdentityError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
    pub extra: Map<String, Value>,
}

const COLS: &str = "SELECT id, description, parent_region_id, extra FROM regions";

fn from_row(r: &AnyRow) -> Result<Region> {
    Ok(Region {
        id: text(r, "id")?,
        description: text(r, "description")?,
        parent_region_id: opt_text(r, "parent_region_id")?,
        extra: extra(r)?,
    })
}

pub async fn region_create(conn: &mut Conn, r: &Region) -> Result<()> {
    sqlx::query(
        "INSERT INTO regions (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)",
    )
    .bind(&r.id)
    .bind(&r.description)
    .bind(r.parent_region_id.clone())
    .bind(extra_text(&r.extra))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        IdentityError::conflict_on(e, || {
            format!(
                "Conflict occurred attempting to store region - Duplicate ID, {}.",
                r.id
            )
        })
    })?;
    Ok(())
}

pub async fn region_get(conn: &mut Conn, id: &str) -> Result<Region> {
    let row = sqlx::query(&format!("{COLS} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| IdentityError::not_found("region", id))?;
    from_row(&row)
}

pub async fn region_list(conn: &mut Conn, parent_region_id: Option<&str>) -> Result<Vec<Region>> {
    let mut w = Where::default();
    w.text("parent_region_id", parent_region_id);
    w.fetch(conn, COLS, "id")
        .await?
        .iter()
        .map(from_row)
        .collect()
}

pub async fn region_update(conn: &mut Conn, r: &Region) -> Result<()> {
    let res = sqlx::query(
        "UPDATE regions SET description = $1, parent_region_id = $2, extra = $3 WHERE id = $4",
    )
    .bind(&r.description)
    .bind(r.parent_region_id.clone())
    .bind(extra_text(&r.extra))
    .bind(&r.id)
    .execute(&mut *conn)
    .await?;
    found(res, "region", &r.id)
}

pub async fn region_in_use(conn: &mut Conn, id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM regions WHERE parent_region_id = $1) + (SELECT COUNT(*) FROM endpoints WHERE region_id = $1)",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

pub async fn region_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let r = sqlx::query("DELETE FROM regions WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    found(r, "region", id)
}
