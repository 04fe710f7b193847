//! Server tags (Nova's `tags` table, microversion 2.26+): a set of short
//! strings per server, and the instance ids the list filters `tags`,
//! `tags-any`, `not-tags` and `not-tags-any` select.

use std::collections::{BTreeMap, BTreeSet};

use super::{get_s, Conn};
use crate::error::Result;

/// The server's tags, in order.
pub async fn instance_tags_list(conn: &mut Conn, instance_id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT tag FROM instance_tags WHERE instance_id = $1 ORDER BY tag")
        .bind(instance_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(|r| get_s(r, "tag")).collect()
}

/// The tags of each of `ids` that has some, in order (one query per 500
/// ids: a server list's page).
pub async fn instance_tags_many(
    conn: &mut Conn,
    ids: &[String],
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT instance_id, tag FROM instance_tags WHERE instance_id IN ({}) ORDER BY tag",
            super::instances::placeholders(0, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.entry(get_s(&r, "instance_id")?)
                .or_default()
                .push(get_s(&r, "tag")?);
        }
    }
    Ok(out)
}

/// Adds one tag; `false` when the server already had it.
pub async fn instance_tag_add(conn: &mut Conn, instance_id: &str, tag: &str) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO instance_tags (instance_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(instance_id)
    .bind(tag)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes one tag; `false` when the server did not have it.
pub async fn instance_tag_delete(conn: &mut Conn, instance_id: &str, tag: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM instance_tags WHERE instance_id = $1 AND tag = $2")
        .bind(instance_id)
        .bind(tag)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Replaces the server's tags with `tags` (duplicates collapse), in one
/// transaction.
pub async fn instance_tags_set(conn: &mut Conn, instance_id: &str, tags: &[String]) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    sqlx::query("DELETE FROM instance_tags WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
    for t in tags.iter().collect::<BTreeSet<_>>() {
        sqlx::query("INSERT INTO instance_tags (instance_id, tag) VALUES ($1, $2)")
            .bind(instance_id)
            .bind(t)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The list filters on tags (each a list of tags; an empty one is unset).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagFilter {
    /// Servers with every one of these.
    pub all: Vec<String>,
    /// Servers with at least one of these.
    pub any: Vec<String>,
    /// Servers without at least one of these.
    pub not_all: Vec<String>,
    /// Servers with none of these.
    pub not_any: Vec<String>,
}

impl TagFilter {
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
            && self.any.is_empty()
            && self.not_all.is_empty()
            && self.not_any.is_empty()
    }

    /// Whether a server with `tags` passes every filter given.
    pub fn matches(&self, tags: &BTreeSet<String>) -> bool {
        let has = |t: &String| tags.contains(t);
        (self.all.is_empty() || self.all.iter().all(has))
            && (self.any.is_empty() || self.any.iter().any(has))
            && (self.not_all.is_empty() || !self.not_all.iter().all(has))
            && (self.not_any.is_empty() || !self.not_any.iter().any(has))
    }
}

/// The ids of the servers (of `project`, or of every project when `None`;
/// deleted ones included, the list decides) that pass `f`.
pub async fn instance_ids_by_tags(
    conn: &mut Conn,
    project: Option<&str>,
    f: &TagFilter,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT i.id AS id, t.tag AS tag FROM instances i \
         LEFT JOIN instance_tags t ON t.instance_id = i.id \
         WHERE ($1 = '' OR i.project_id = $1)",
    )
    .bind(project.unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?;
    let mut tags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        let set = tags.entry(get_s(r, "id")?).or_default();
        if let Some(t) = super::get_os(r, "tag")? {
            set.insert(t);
        }
    }
    Ok(tags
        .into_iter()
        .filter(|(_, t)| f.matches(t))
        .map(|(id, _)| id)
        .collect())
}
