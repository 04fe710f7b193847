//! Tags of networks, subnets, ports and security groups: one table per
//! resource (`<resource>_tags`), each row removed with its resource by the
//! foreign key's `ON DELETE CASCADE`.

use std::collections::HashMap;

use super::{Conn, Write};
use crate::domain::tags::Tagged;
use crate::error::Result;

/// The tags of one resource, sorted.
pub async fn tags_get(conn: &mut Conn, kind: Tagged, id: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT tag FROM {} WHERE resource_id = $1 ORDER BY tag",
        kind.table()
    );
    Ok(sqlx::query_scalar(&sql).bind(id).fetch_all(conn).await?)
}

/// Every tag of every resource of a kind, by resource id (for lists).
pub async fn tags_by_resource(
    conn: &mut Conn,
    kind: Tagged,
) -> Result<HashMap<String, Vec<String>>> {
    use sqlx::Row;
    let sql = format!(
        "SELECT resource_id, tag FROM {} ORDER BY resource_id, tag",
        kind.table()
    );
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in rows {
        let id: String = r.try_get("resource_id")?;
        out.entry(id).or_default().push(r.try_get("tag")?);
    }
    Ok(out)
}

/// Adds one tag (nothing if it is there). `Dangling`: the resource is gone.
pub async fn tag_add(conn: &mut Conn, kind: Tagged, id: &str, tag: &str) -> Result<Write> {
    let sql = format!(
        "INSERT INTO {} (resource_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        kind.table()
    );
    Write::of(sqlx::query(&sql).bind(id).bind(tag).execute(conn).await)
}

/// Removes one tag; whether it was there.
pub async fn tag_delete(conn: &mut Conn, kind: Tagged, id: &str, tag: &str) -> Result<bool> {
    let sql = format!(
        "DELETE FROM {} WHERE resource_id = $1 AND tag = $2",
        kind.table()
    );
    let r = sqlx::query(&sql).bind(id).bind(tag).execute(conn).await?;
    Ok(r.rows_affected() > 0)
}

/// Removes every tag of a resource.
pub async fn tags_delete_all(conn: &mut Conn, kind: Tagged, id: &str) -> Result<()> {
    let sql = format!("DELETE FROM {} WHERE resource_id = $1", kind.table());
    sqlx::query(&sql).bind(id).execute(conn).await?;
    Ok(())
}

/// Replaces a resource's tags (run it in a transaction). `Dangling`: the
/// resource is gone.
pub async fn tags_replace(
    conn: &mut Conn,
    kind: Tagged,
    id: &str,
    tags: &[String],
) -> Result<Write> {
    tags_delete_all(conn, kind, id).await?;
    for t in tags {
        match tag_add(conn, kind, id, t).await? {
            Write::Done => {}
            other => return Ok(other),
        }
    }
    Ok(Write::Done)
}
