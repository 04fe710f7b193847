//! The build saga's log as an agent keeps it: through the conductor, since
//! agents never open the compute database (seed steps 14–17 and 45–47).
//!
//! A step's record is sent as the next step starts and confirmed before
//! the log is written again (or the run ends): the round trip to the
//! conductor overlaps the next step's work instead of waiting in front of
//! it. The log's writes stay in order, one in flight at most, and a
//! record that failed fails the run at the next write. A crash while a
//! record is in flight is a crash before it was written: the step runs
//! again on resume, as steps are idempotent.

use std::sync::Mutex;

use async_trait::async_trait;
use stratus_common::RequestContext;
use tokio::task::JoinHandle;

use super::SagaLog;
use crate::db::sagas::{SagaRecord, SagaState, StepRecord};
use crate::error::{ComputeError, Result};
use crate::rpc;

pub struct ConductorLog<'a> {
    conductor: &'a rpc::ConductorApi,
    ctx: &'a RequestContext,
    /// The record sent and not yet confirmed. A run that returns early
    /// (an error elsewhere) leaves it to finish on its own: written or
    /// not, as if the agent had stopped there.
    in_flight: Mutex<Option<JoinHandle<Result<()>>>>,
}

impl<'a> ConductorLog<'a> {
    pub fn new(conductor: &'a rpc::ConductorApi, ctx: &'a RequestContext) -> Self {
        Self {
            conductor,
            ctx,
            in_flight: Mutex::new(None),
        }
    }

    fn take_in_flight(&self) -> Option<JoinHandle<Result<()>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

#[async_trait]
impl SagaLog for ConductorLog<'_> {
    async fn open(&self, rec: &SagaRecord) -> Result<(SagaRecord, Vec<StepRecord>)> {
        self.flush().await?;
        let o = self.conductor.saga_open(self.ctx, rec.clone()).await?;
        Ok((o.saga, o.steps))
    }
    async fn record(&self, saga: &str, step: &StepRecord) -> Result<()> {
        self.flush().await?;
        let a = rpc::SagaRecordArgs {
            saga_id: saga.to_owned(),
            step: step.clone(),
        };
        let conductor = self.conductor.clone();
        let ctx = self.ctx.clone();
        let sent = tokio::spawn(async move { Ok(conductor.saga_record(&ctx, &a).await?) });
        *self.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent);
        Ok(())
    }
    async fn set_state(&self, saga: &str, state: SagaState) -> Result<()> {
        self.flush().await?;
        let a = rpc::SagaStateArgs {
            saga_id: saga.to_owned(),
            state,
        };
        Ok(self.conductor.saga_state(self.ctx, &a).await?)
    }
    async fn flush(&self) -> Result<()> {
        match self.take_in_flight() {
            None => Ok(()),
            Some(sent) => sent
                .await
                .map_err(|e| ComputeError::Internal(format!("saga record: {e}")))?,
        }
    }
    fn seed_step(&self) -> Option<u16> {
        // The agent's calls to the conductor.
        Some(17)
    }
}
