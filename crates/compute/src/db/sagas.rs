//! The saga log: each saga's parameters and, per step, whether its action
//! finished or its undo ran, so that a restarted service can resume or unwind.

use serde::{Deserialize, Serialize};

use super::{get_i, get_s, now_db, Store};
use crate::error::Result;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SagaRecord {
    pub id: String,
    pub kind: String,
    pub instance_id: String,
    /// `running`, `unwinding`, `done`, `failed`.
    pub state: String,
    pub params: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step: i64,
    pub name: String,
    /// `done` or `undone`.
    pub status: String,
}

impl Store {
    pub async fn saga_create(&self, s: &SagaRecord) -> Result<()> {
        let now = now_db();
        sqlx::query(
            "INSERT INTO sagas (id, kind, instance_id, state, params_json, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$6) ON CONFLICT DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.kind)
        .bind(&s.instance_id)
        .bind(&s.state)
        .bind(s.params.to_string())
        .bind(&now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn saga_set_state(&self, id: &str, state: &str) -> Result<()> {
        sqlx::query("UPDATE sagas SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state)
            .bind(now_db())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn saga_step_set(&self, id: &str, step: i64, name: &str, status: &str) -> Result<()> {
        let now = now_db();
        sqlx::query("DELETE FROM saga_steps WHERE saga_id = $1 AND step = $2")
            .bind(id)
            .bind(step)
            .execute(self.pool())
            .await?;
        sqlx::query("INSERT INTO saga_steps (saga_id, step, name, status, updated_at) VALUES ($1,$2,$3,$4,$5)")
            .bind(id)
            .bind(step)
            .bind(name)
            .bind(status)
            .bind(&now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn saga_steps(&self, id: &str) -> Result<Vec<StepRecord>> {
        let rows = sqlx::query(
            "SELECT step, name, status FROM saga_steps WHERE saga_id = $1 ORDER BY step",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StepRecord {
                    step: get_i(r, "step")?,
                    name: get_s(r, "name")?,
                    status: get_s(r, "status")?,
                })
            })
            .collect()
    }

    /// Sagas a crash left in the middle.
    pub async fn saga_unfinished(&self) -> Result<Vec<SagaRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, instance_id, state, params_json FROM sagas WHERE state IN ('running', 'unwinding') \
             ORDER BY created_at",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SagaRecord {
                    id: get_s(r, "id")?,
                    kind: get_s(r, "kind")?,
                    instance_id: get_s(r, "instance_id")?,
                    state: get_s(r, "state")?,
                    params: serde_json::from_str(&get_s(r, "params_json")?)?,
                })
            })
            .collect()
    }
}
