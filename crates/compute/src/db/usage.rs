//! What `/os-simple-tenant-usage` counts: the servers (deleted ones too)
//! that ran during a window, as Nova's `instance_get_active_by_window_joined`
//! selects them (launched before its end, not terminated before its start),
//! paged by `(project_id, id)`.

use super::{get_os, get_s, Conn};
use crate::error::{ComputeError, Result};
use stratus_compute_rpc::flavor::Flavor;

/// The part of a server its usage is made of.
#[derive(Clone, Debug)]
pub struct UsageRow {
    pub id: String,
    pub name: String,
    pub project_id: String,
    pub flavor: Flavor,
    pub vm_state: String,
    pub launched_at: Option<String>,
    pub terminated_at: Option<String>,
}

/// Servers active in `[begin, end)` (stored-form times), of one project or
/// all, after `marker` (a server id: 400 when there is no such server).
pub async fn usage_instances(
    conn: &mut Conn,
    begin: &str,
    end: &str,
    project: Option<&str>,
    limit: Option<usize>,
    marker: Option<&str>,
) -> Result<Vec<UsageRow>> {
    let (after_project, after_id) = match marker {
        None => (String::new(), String::new()),
        Some(m) => {
            let p: Option<String> =
                sqlx::query_scalar("SELECT project_id FROM instances WHERE id = $1")
                    .bind(m)
                    .fetch_optional(&mut *conn)
                    .await?;
            let p = p.ok_or_else(|| {
                ComputeError::BadRequest(format!("Marker {m} could not be found."))
            })?;
            (p, m.to_owned())
        }
    };
    let rows = sqlx::query(
        "SELECT id, name, project_id, flavor_json, vm_state, launched_at, terminated_at \
         FROM instances WHERE (terminated_at IS NULL OR terminated_at > $1) \
         AND launched_at IS NOT NULL AND launched_at < $2 AND ($3 = '' OR project_id = $3) \
         AND ($4 = '' OR project_id > $4 OR (project_id = $4 AND id > $5)) \
         ORDER BY project_id, id LIMIT $6",
    )
    .bind(begin)
    .bind(end)
    .bind(project.unwrap_or(""))
    .bind(&after_project)
    .bind(&after_id)
    .bind(limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX)))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(UsageRow {
                id: get_s(r, "id")?,
                name: get_s(r, "name")?,
                project_id: get_s(r, "project_id")?,
                flavor: serde_json::from_str(&get_s(r, "flavor_json")?)?,
                vm_state: get_s(r, "vm_state")?,
                launched_at: get_os(r, "launched_at")?,
                terminated_at: get_os(r, "terminated_at")?,
            })
        })
        .collect()
}
