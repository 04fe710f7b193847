//! The saga log: each saga's parameters and, per step, whether its action
//! finished (with its output) or its undo ran, so that a restarted service
//! can resume or unwind.

use sqlx::any::AnyRow;

use super::{get_i, get_os, get_s, now_db, Conn};
use crate::error::{ComputeError, Result};

pub use stratus_compute_rpc::saga::{SagaRecord, SagaState, StepRecord, StepStatus};

fn row_saga(r: &AnyRow) -> Result<SagaRecord> {
    Ok(SagaRecord {
        id: get_s(r, "id")?,
        kind: get_s(r, "kind")?,
        instance_id: get_s(r, "instance_id")?,
        state: get_s(r, "state")?.parse().map_err(ComputeError::Internal)?,
        params: serde_json::from_str(&get_s(r, "params_json")?)?,
    })
}

/// Creates the saga unless it exists; returns it as stored with its steps.
pub async fn saga_open(conn: &mut Conn, s: &SagaRecord) -> Result<(SagaRecord, Vec<StepRecord>)> {
    let now = now_db();
    if !s.kind.is_empty() {
        sqlx::query(
            "INSERT INTO sagas (id, kind, instance_id, state, params_json, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$6) ON CONFLICT DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.kind)
        .bind(&s.instance_id)
        .bind(s.state.as_str())
        .bind(s.params.to_string())
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    let stored = saga_get(&mut *conn, &s.id).await?;
    Ok((stored, saga_steps(&mut *conn, &s.id).await?))
}

pub async fn saga_get(conn: &mut Conn, id: &str) -> Result<SagaRecord> {
    let row =
        sqlx::query("SELECT id, kind, instance_id, state, params_json FROM sagas WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ComputeError::NotFound(format!("saga {id} not found")))?;
    row_saga(&row)
}

pub async fn saga_set_state(conn: &mut Conn, id: &str, state: SagaState) -> Result<()> {
    sqlx::query("UPDATE sagas SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(state.as_str())
        .bind(now_db())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn saga_step_record(conn: &mut Conn, id: &str, s: &StepRecord) -> Result<()> {
    let now = now_db();
    let status = match s.status {
        StepStatus::Done => "done",
        StepStatus::Undone => "undone",
    };
    let output = s.output.as_ref().map(|o| o.to_string());
    // One upsert rather than a transaction of four statements: every step
    // of every saga writes its record through here.
    sqlx::query(
        "INSERT INTO saga_steps (saga_id, step, name, status, output_json, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6) \
         ON CONFLICT (saga_id, step) DO UPDATE SET name = excluded.name, \
         status = excluded.status, output_json = excluded.output_json, \
         updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(s.step)
    .bind(&s.name)
    .bind(status)
    .bind(output)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn saga_steps(conn: &mut Conn, id: &str) -> Result<Vec<StepRecord>> {
    let rows = sqlx::query(
        "SELECT step, name, status, output_json FROM saga_steps WHERE saga_id = $1 ORDER BY step",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StepRecord {
                step: get_i(r, "step")?,
                name: get_s(r, "name")?,
                status: match get_s(r, "status")?.as_str() {
                    "done" => StepStatus::Done,
                    _ => StepStatus::Undone,
                },
                output: get_os(r, "output_json")?
                    .map(|o| serde_json::from_str(&o))
                    .transpose()?,
            })
        })
        .collect()
}

/// Sagas a crash left in the middle.
pub async fn saga_unfinished(conn: &mut Conn) -> Result<Vec<SagaRecord>> {
    let rows = sqlx::query(
        "SELECT id, kind, instance_id, state, params_json FROM sagas WHERE state IN ('running', 'unwinding') \
         ORDER BY created_at",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(row_saga).collect()
}

/// Every saga of an instance, oldest first.
pub async fn saga_list_for_instance(conn: &mut Conn, instance_id: &str) -> Result<Vec<SagaRecord>> {
    let rows = sqlx::query(
        "SELECT id, kind, instance_id, state, params_json FROM sagas WHERE instance_id = $1 \
         ORDER BY created_at, id",
    )
    .bind(instance_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(row_saga).collect()
}
