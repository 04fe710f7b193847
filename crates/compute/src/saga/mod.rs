//! Sagas: a multi-step operation as a list of steps, each an action and its
//! undo. Progress is written to the saga log after every step, so that a
//! restarted service resumes (skipping finished steps) or unwinds. Every
//! action and undo is idempotent: running one twice is harmless.
//!
//! ```text
//!  running --all steps done--> done
//!     |
//!     +--step k fails--> unwinding --undo k-1..0--> failed
//! ```

pub mod delete;
pub mod launch;

use crate::db::sagas::SagaRecord;
use crate::db::Store;
use crate::error::{ComputeError, Result};
use async_trait::async_trait;

#[async_trait]
pub trait Step<C: Sync>: Send + Sync {
    fn name(&self) -> &'static str;
    async fn run(&self, c: &C) -> Result<()>;
    async fn undo(&self, c: &C) -> Result<()>;
}

/// Where to make a saga fail, for the standard failure tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Inject {
    /// Fail instead of running step `n` (0-based).
    pub fail_before: Option<usize>,
}

/// Runs (or resumes) the saga `rec` (its id, kind, instance and params).
pub async fn execute<C: Sync>(
    store: &Store,
    rec: &SagaRecord,
    steps: &[Box<dyn Step<C>>],
    c: &C,
    inject: Inject,
) -> Result<()> {
    execute_until(store, rec, steps, c, inject, steps.len()).await
}

/// Runs (or resumes) the saga `rec` up to, not including, step `end`; the
/// saga stays `running` until a run reaches its last step, so that a
/// later call (or recovery after a crash) goes on from there. For work
/// that must pass a point together, as the instances of one request do.
pub async fn execute_until<C: Sync>(
    store: &Store,
    rec: &SagaRecord,
    steps: &[Box<dyn Step<C>>],
    c: &C,
    inject: Inject,
    end: usize,
) -> Result<()> {
    let (id, kind) = (rec.id.as_str(), rec.kind.as_str());
    store.saga_create(rec).await?;
    let done: Vec<i64> = store
        .saga_steps(id)
        .await?
        .into_iter()
        .filter(|s| s.status == "done")
        .map(|s| s.step)
        .collect();
    for (i, step) in steps.iter().enumerate().take(end) {
        let n = i as i64;
        if done.contains(&n) {
            continue;
        }
        let r = if inject.fail_before == Some(i) {
            Err(ComputeError::Internal(format!(
                "injected failure before step {}",
                step.name()
            )))
        } else {
            step.run(c).await
        };
        if let Err(e) = r {
            tracing::warn!(saga = id, kind, step = step.name(), error = %e, "saga step failed; unwinding");
            unwind(store, id, &steps[..i], c).await?;
            return Err(e);
        }
        store.saga_step_set(id, n, step.name(), "done").await?;
    }
    if end >= steps.len() {
        store.saga_set_state(id, "done").await?;
    }
    Ok(())
}

/// Runs a saga whose log is not persisted (the compute agent, which has no
/// database): on a failure at step k, undoes steps k..0 — the failing step
/// too, since it may have done part of its work; every undo tolerates
/// partial or absent work. Undo failures are logged, not returned: the
/// step's own error is what the caller must see.
pub async fn run_local<C: Sync>(name: &str, steps: &[Box<dyn Step<C>>], c: &C) -> Result<()> {
    for (i, step) in steps.iter().enumerate() {
        if let Err(e) = step.run(c).await {
            tracing::warn!(saga = name, step = step.name(), error = %e, "saga step failed; unwinding");
            for s in steps[..=i].iter().rev() {
                if let Err(u) = s.undo(c).await {
                    tracing::warn!(saga = name, step = s.name(), error = %u, "undo failed");
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Undoes the given (already run) steps in reverse order.
pub async fn unwind<C: Sync>(
    store: &Store,
    id: &str,
    steps: &[Box<dyn Step<C>>],
    c: &C,
) -> Result<()> {
    store.saga_set_state(id, "unwinding").await?;
    for (i, step) in steps.iter().enumerate().rev() {
        step.undo(c).await?;
        store
            .saga_step_set(id, i as i64, step.name(), "undone")
            .await?;
    }
    store.saga_set_state(id, "failed").await?;
    Ok(())
}

/// Finishes what a crash interrupted: running sagas resume, unwinding ones
/// finish unwinding.
pub async fn recover(
    store: &Store,
    bus: &crate::bus::Bus,
    cfg: &crate::config::ComputeConfig,
) -> Result<()> {
    for rec in store.saga_unfinished().await? {
        let r = match rec.kind.as_str() {
            launch::KIND => launch::resume(store, bus, &cfg.quota, &rec).await,
            delete::KIND => delete::resume(store, bus, cfg, &rec).await,
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(saga = %rec.id, error = %e, "saga recovery failed");
        }
    }
    Ok(())
}
