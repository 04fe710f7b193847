//! Compute's part of the process's Prometheus metrics
//! (`stratus_telemetry::metrics`): the instances by `vm_state`, counted in
//! the compute database at each scrape, and which instance updates end a
//! launch.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;
use stratus_db::Db;
use stratus_telemetry::metrics::{self, Collect};

use crate::error::Result;
use crate::model::state::{TaskState, VmState};

/// Counts the instances by state at each scrape (of the process whose API
/// holds the compute database).
pub fn watch_instances(db: &Db) {
    metrics::on_scrape("compute-instances", Arc::new(InstancesByState(db.clone())));
}

struct InstancesByState(Db);

#[async_trait]
impl Collect for InstancesByState {
    async fn collect(&self) {
        match count_by_state(&self.0).await {
            Ok(counts) => metrics::set_instances(&counts),
            Err(e) => tracing::warn!(error = %e, "instances by state for metrics"),
        }
    }
}

async fn count_by_state(db: &Db) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(
        "SELECT vm_state, COUNT(*) AS n FROM instances WHERE deleted = 0 GROUP BY vm_state",
    )
    .fetch_all(&mut *db.conn().await?)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("vm_state")?, r.try_get("n")?)))
        .collect()
}

/// An update to ACTIVE of an instance that was spawning ends a launch (the
/// build's last step, through the conductor); a launch that fails ends in
/// `place::fail_build`.
pub fn ends_launch(expected: &Option<Vec<Option<TaskState>>>, vm_state: Option<VmState>) -> bool {
    vm_state == Some(VmState::Active)
        && expected
            .as_ref()
            .is_some_and(|e| e.contains(&Some(TaskState::Spawning)))
}
