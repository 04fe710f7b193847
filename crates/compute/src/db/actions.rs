//! Instance actions (`create`, `delete`, `stop`, ...) keyed by the request
//! that started them, and the events each service records under them
//! (`conductor_schedule_and_build_instances`, `compute__do_build_and_run_instance`).

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{get_os, get_s, now_db, Conn};
use crate::error::{ComputeError, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub instance_id: String,
    pub action: String,
    pub request_id: String,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub message: Option<String>,
    pub start_time: String,
    pub finish_time: Option<String>,
    pub updated_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionEvent {
    pub event: String,
    pub start_time: String,
    pub finish_time: Option<String>,
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
    pub details: Option<String>,
}

fn row_action(r: &AnyRow) -> Result<Action> {
    Ok(Action {
        id: get_s(r, "id")?,
        instance_id: get_s(r, "instance_id")?,
        action: get_s(r, "action")?,
        request_id: get_s(r, "request_id")?,
        user_id: get_os(r, "user_id")?,
        project_id: get_os(r, "project_id")?,
        message: get_os(r, "message")?,
        start_time: get_s(r, "start_time")?,
        finish_time: get_os(r, "finish_time")?,
        updated_at: get_s(r, "updated_at")?,
    })
}

/// Records that `request_id` started `action` on an instance (idempotent).
pub async fn action_start(
    conn: &mut Conn,
    instance_id: &str,
    action: &str,
    request_id: &str,
    user_id: Option<&str>,
    project_id: Option<&str>,
) -> Result<()> {
    let now = now_db();
    sqlx::query(
        "INSERT INTO instance_actions (id, instance_id, action, request_id, user_id, project_id, start_time, \
         updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7) ON CONFLICT DO NOTHING",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(instance_id)
    .bind(action)
    .bind(request_id)
    .bind(user_id)
    .bind(project_id)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks the action `request_id` started as finished (an action with no
/// events, such as Nova's `resetState`).
pub async fn action_finish(conn: &mut Conn, instance_id: &str, request_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE instance_actions SET finish_time = $1, updated_at = $1 \
         WHERE instance_id = $2 AND request_id = $3",
    )
    .bind(now_db())
    .bind(instance_id)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Starts an event under the request's action. Work without a recorded
/// action (periodic tasks) records nothing.
pub async fn action_event_start(
    conn: &mut Conn,
    instance_id: &str,
    request_id: &str,
    event: &str,
    host: Option<&str>,
) -> Result<()> {
    let now = now_db();
    // The action is found by the insert itself: every build starts and
    // finishes several events, each a round trip to the database.
    let started = sqlx::query(
        "INSERT INTO instance_action_events (id, action_id, event, start_time, host) \
         SELECT $1, id, $2, $3, $4 FROM instance_actions \
         WHERE instance_id = $5 AND request_id = $6",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(event)
    .bind(&now)
    .bind(host)
    .bind(instance_id)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    if started.rows_affected() > 0 {
        sqlx::query(
            "UPDATE instance_actions SET updated_at = $1 WHERE instance_id = $2 AND request_id = $3",
        )
        .bind(&now)
        .bind(instance_id)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Finishes the latest unfinished event of that name; `error` marks the
/// action's message "Error" as Nova does.
pub async fn action_event_finish(
    conn: &mut Conn,
    instance_id: &str,
    request_id: &str,
    event: &str,
    error: Option<&str>,
) -> Result<()> {
    let now = now_db();
    let result = if error.is_some() { "Error" } else { "Success" };
    let finished = sqlx::query(
        "UPDATE instance_action_events SET finish_time = $1, result = $2, traceback = $3 \
         WHERE id = (SELECT e.id FROM instance_action_events e \
           JOIN instance_actions a ON a.id = e.action_id \
           WHERE a.instance_id = $4 AND a.request_id = $5 AND e.event = $6 \
             AND e.finish_time IS NULL \
           ORDER BY e.start_time DESC LIMIT 1)",
    )
    .bind(&now)
    .bind(result)
    .bind(error)
    .bind(instance_id)
    .bind(request_id)
    .bind(event)
    .execute(&mut *conn)
    .await?;
    if finished.rows_affected() == 0 {
        // Finished without a start: recorded as started and finished now.
        sqlx::query(
            "INSERT INTO instance_action_events (id, action_id, event, start_time, finish_time, \
             result, traceback) \
             SELECT $1, id, $2, $3, $3, $4, $5 FROM instance_actions \
             WHERE instance_id = $6 AND request_id = $7",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(event)
        .bind(&now)
        .bind(result)
        .bind(error)
        .bind(instance_id)
        .bind(request_id)
        .execute(&mut *conn)
        .await?;
    }
    let msg = if error.is_some() { Some("Error") } else { None };
    sqlx::query(
        "UPDATE instance_actions SET updated_at = $1, finish_time = $1, message = COALESCE(message, $2) \
         WHERE instance_id = $3 AND request_id = $4",
    )
    .bind(&now)
    .bind(msg)
    .bind(instance_id)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets an instance's actions and events (undo of a launch).
pub async fn action_delete_all(conn: &mut Conn, instance_id: &str) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    sqlx::query(
        "DELETE FROM instance_action_events WHERE action_id IN \
         (SELECT id FROM instance_actions WHERE instance_id = $1)",
    )
    .bind(instance_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM instance_actions WHERE instance_id = $1")
        .bind(instance_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn action_list(conn: &mut Conn, instance_id: &str) -> Result<Vec<Action>> {
    let rows = sqlx::query(
        "SELECT * FROM instance_actions WHERE instance_id = $1 ORDER BY start_time DESC, id",
    )
    .bind(instance_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(row_action).collect()
}

pub async fn action_get(
    conn: &mut Conn,
    instance_id: &str,
    request_id: &str,
) -> Result<(Action, Vec<ActionEvent>)> {
    let row =
        sqlx::query("SELECT * FROM instance_actions WHERE instance_id = $1 AND request_id = $2")
            .bind(instance_id)
            .bind(request_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| {
                ComputeError::NotFound(format!(
                    "Action for request_id {request_id} on instance {instance_id} not found"
                ))
            })?;
    let action = row_action(&row)?;
    let rows = sqlx::query(
        "SELECT * FROM instance_action_events WHERE action_id = $1 ORDER BY start_time, id",
    )
    .bind(&action.id)
    .fetch_all(&mut *conn)
    .await?;
    let events = rows
        .iter()
        .map(|r| {
            Ok(ActionEvent {
                event: get_s(r, "event")?,
                start_time: get_s(r, "start_time")?,
                finish_time: get_os(r, "finish_time")?,
                result: get_os(r, "result")?,
                traceback: get_os(r, "traceback")?,
                host: get_os(r, "host")?,
                details: get_os(r, "details")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((action, events))
}
