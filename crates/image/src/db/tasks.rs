//! Tasks (`/v2/tasks`): one row each, the status changed by
//! compare-and-swap so that a task never leaves a final status.

use chrono::{DateTime, Utc};
use serde_json::Value;
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Row};

use super::{bind_all, Arg, Conn};
use crate::domain::task::{Task, TaskStatus};
use crate::error::ImageError;

const TASK_COLUMNS: &str = "id, type, status, owner, input, result, message, image_id, \
                            request_id, user_id, expires_at, created_at, updated_at";

fn task_from_row(r: &AnyRow) -> Result<Task, ImageError> {
    let bad = |w: &str| ImageError::Internal(format!("stored task {w} is invalid"));
    let status: String = r.try_get("status")?;
    let input: String = r.try_get("input")?;
    let result: Option<String> = r.try_get("result")?;
    let expires: Option<String> = r.try_get("expires_at")?;
    let created: String = r.try_get("created_at")?;
    let updated: String = r.try_get("updated_at")?;
    Ok(Task {
        id: r.try_get("id")?,
        task_type: r.try_get("type")?,
        status: TaskStatus::parse(&status).ok_or_else(|| bad("status"))?,
        owner: r.try_get("owner")?,
        input: serde_json::from_str(&input).map_err(|_| bad("input"))?,
        result: result
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|_| bad("result"))?,
        message: r.try_get("message")?,
        image_id: r.try_get("image_id")?,
        request_id: r.try_get("request_id")?,
        user_id: r.try_get("user_id")?,
        expires_at: expires
            .map(|e| time::from_db(&e).ok_or_else(|| bad("time")))
            .transpose()?,
        created_at: time::from_db(&created).ok_or_else(|| bad("time"))?,
        updated_at: time::from_db(&updated).ok_or_else(|| bad("time"))?,
    })
}

pub async fn task_insert(conn: &mut Conn, t: &Task) -> Result<(), ImageError> {
    sqlx::query(&format!(
        "INSERT INTO tasks ({TASK_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(&t.id)
    .bind(&t.task_type)
    .bind(t.status.as_str())
    .bind(&t.owner)
    .bind(t.input.to_string())
    .bind(t.result.as_ref().map(Value::to_string))
    .bind(&t.message)
    .bind(&t.image_id)
    .bind(&t.request_id)
    .bind(&t.user_id)
    .bind(t.expires_at.map(time::to_db))
    .bind(time::to_db(t.created_at))
    .bind(time::to_db(t.updated_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn task_get(conn: &mut Conn, id: &str) -> Result<Option<Task>, ImageError> {
    let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(task_from_row).transpose()
}

/// Tasks of `task_type` and `status` (each if given), unsorted.
pub async fn task_list(
    conn: &mut Conn,
    task_type: Option<&str>,
    status: Option<&str>,
) -> Result<Vec<Task>, ImageError> {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    for (col, v) in [("type", task_type), ("status", status)] {
        if let Some(v) = v {
            args.push(Arg::Text(v.to_owned()));
            clauses.push(format!("{col} = ${}", args.len()));
        }
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks{filter}");
    bind_all(sqlx::query(&sql), &args)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(task_from_row)
        .collect()
}

/// What a status change records besides the status.
#[derive(Clone, Debug, Default)]
pub struct TaskOutcome {
    pub result: Option<Value>,
    pub message: String,
    pub image_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Moves task `id` from `from` to `to` with `outcome`; false when it was
/// not in `from` (or the move is not one of the task's transitions).
pub async fn task_set_status(
    conn: &mut Conn,
    id: &str,
    from: TaskStatus,
    to: TaskStatus,
    outcome: &TaskOutcome,
) -> Result<bool, ImageError> {
    if !from.can_become(to) {
        return Ok(false);
    }
    let r = sqlx::query(
        "UPDATE tasks SET status = $1, result = $2, message = $3, \
         image_id = COALESCE($4, image_id), expires_at = $5, updated_at = $6 \
         WHERE id = $7 AND status = $8",
    )
    .bind(to.as_str())
    .bind(outcome.result.as_ref().map(Value::to_string))
    .bind(&outcome.message)
    .bind(&outcome.image_id)
    .bind(outcome.expires_at.map(time::to_db))
    .bind(time::to_db(time::now()))
    .bind(id)
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a running task alive (see `crate::data::fail_stale_tasks`).
pub async fn task_touch(conn: &mut Conn, id: &str) -> Result<(), ImageError> {
    sqlx::query(
        "UPDATE tasks SET updated_at = $1 WHERE id = $2 AND status IN ('pending', 'processing')",
    )
    .bind(time::to_db(time::now()))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Fails every unfinished task not marked alive since `before` (its
/// service died while running it); how many.
pub async fn task_fail_stale(
    conn: &mut Conn,
    before: DateTime<Utc>,
    message: &str,
    expires_at: DateTime<Utc>,
) -> Result<u64, ImageError> {
    let r = sqlx::query(
        "UPDATE tasks SET status = 'failure', message = $1, expires_at = $2, updated_at = $3 \
         WHERE status IN ('pending', 'processing') AND updated_at < $4",
    )
    .bind(message)
    .bind(time::to_db(expires_at))
    .bind(time::to_db(time::now()))
    .bind(time::to_db(before))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}
