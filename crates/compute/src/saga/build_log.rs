//! The build saga's log as an agent keeps it: through the conductor, since
//! agents never open the compute database (seed steps 14–17 and 45–47).

use async_trait::async_trait;
use stratus_common::RequestContext;

use super::SagaLog;
use crate::db::sagas::{SagaRecord, SagaState, StepRecord};
use crate::error::Result;
use crate::rpc;

pub struct ConductorLog<'a> {
    pub conductor: &'a rpc::ConductorApi,
    pub ctx: &'a RequestContext,
}

#[async_trait]
impl SagaLog for ConductorLog<'_> {
    async fn open(&self, rec: &SagaRecord) -> Result<(SagaRecord, Vec<StepRecord>)> {
        let o = self.conductor.saga_open(self.ctx, rec.clone()).await?;
        Ok((o.saga, o.steps))
    }
    async fn record(&self, saga: &str, step: &StepRecord) -> Result<()> {
        let a = rpc::SagaRecordArgs {
            saga_id: saga.to_owned(),
            step: step.clone(),
        };
        Ok(self.conductor.saga_record(self.ctx, &a).await?)
    }
    async fn set_state(&self, saga: &str, state: SagaState) -> Result<()> {
        let a = rpc::SagaStateArgs {
            saga_id: saga.to_owned(),
            state,
        };
        Ok(self.conductor.saga_state(self.ctx, &a).await?)
    }
    fn seed_step(&self) -> Option<u16> {
        // The agent's calls to the conductor.
        Some(17)
    }
}
