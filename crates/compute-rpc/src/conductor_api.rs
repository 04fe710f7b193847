//! What a compute agent asks of the conductor (seed steps 14–17, 45–47),
//! as typed calls over the bus: agents never open the compute database.

use stratus_common::ids::InstanceId;
use stratus_common::RequestContext;

use stratus_bus::Bus;

use crate::error::Result;
use crate::instance::{Expected, Instance, InstanceUpdate};
use crate::messages::*;
use crate::node::NodeReport;
use crate::saga::SagaRecord;
use serde::Serialize;

#[derive(Clone)]
pub struct ConductorApi {
    bus: Bus,
}

impl ConductorApi {
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    async fn call<R: serde::de::DeserializeOwned>(
        &self,
        ctx: &RequestContext,
        method: &str,
        args: &impl Serialize,
    ) -> Result<R> {
        Ok(self.bus.call(CONDUCTOR, method, ctx, args).await?)
    }

    /// The instance, deleted ones included (an agent must see a delete).
    pub async fn instance_get(&self, ctx: &RequestContext, id: InstanceId) -> Result<Instance> {
        self.call(ctx, INSTANCE_GET, &InstanceArgs { instance_id: id })
            .await
    }

    /// A compare-and-swap update: `Conflict` unless the task state is one
    /// of `expected`, `NotFound` once deleted.
    pub async fn instance_update(
        &self,
        ctx: &RequestContext,
        id: InstanceId,
        expected: Expected,
        updates: InstanceUpdate,
    ) -> Result<Instance> {
        let a = UpdateArgs {
            instance_id: id,
            expected_task_state: expected,
            updates,
        };
        self.call(ctx, INSTANCE_UPDATE, &a).await
    }

    /// An instance action event starts (`finish: false`) or ends, with its
    /// error if it failed.
    pub async fn action_event(
        &self,
        ctx: &RequestContext,
        a: &EventArgs,
        finish: bool,
    ) -> Result<()> {
        let method = if finish { EVENT_FINISH } else { EVENT_START };
        self.call(ctx, method, a).await
    }

    pub async fn node_report(&self, report: NodeReport) -> Result<()> {
        self.call(
            &RequestContext::internal(),
            NODE_REPORT,
            &NodeReportArgs { report },
        )
        .await
    }

    pub async fn reschedule(&self, ctx: &RequestContext, a: &RescheduleArgs) -> Result<()> {
        self.call(ctx, RESCHEDULE, a).await
    }

    pub async fn instance_destroyed(&self, ctx: &RequestContext, id: InstanceId) -> Result<()> {
        self.call(ctx, INSTANCE_DESTROYED, &InstanceArgs { instance_id: id })
            .await
    }

    /// The live instances the database places on `host`.
    pub async fn instances_on_host(&self, host: &str) -> Result<Vec<Instance>> {
        let a = HostArgs {
            host: host.to_owned(),
        };
        self.call(&RequestContext::internal(), INSTANCES_ON_HOST, &a)
            .await
    }

    /// The unfinished build sagas of `host`.
    pub async fn builds_on_host(&self, host: &str) -> Result<Vec<BuildArgs>> {
        let a = HostArgs {
            host: host.to_owned(),
        };
        self.call(&RequestContext::internal(), BUILDS_ON_HOST, &a)
            .await
    }

    pub async fn instance_stop(&self, ctx: &RequestContext, a: &StopArgs) -> Result<()> {
        self.call(ctx, INSTANCE_STOP, a).await
    }

    pub async fn saga_open(&self, ctx: &RequestContext, saga: SagaRecord) -> Result<SagaOpened> {
        self.call(ctx, SAGA_OPEN, &SagaOpenArgs { saga }).await
    }

    pub async fn saga_record(&self, ctx: &RequestContext, a: &SagaRecordArgs) -> Result<()> {
        self.call(ctx, SAGA_RECORD, a).await
    }

    pub async fn saga_state(&self, ctx: &RequestContext, a: &SagaStateArgs) -> Result<()> {
        self.call(ctx, SAGA_STATE, a).await
    }

    pub async fn bdm_save(&self, ctx: &RequestContext, bdm: serde_json::Value) -> Result<()> {
        self.call(ctx, BDM_SAVE, &BdmSaveArgs { bdm }).await
    }

    pub async fn bdm_delete(&self, ctx: &RequestContext, a: &BdmDeleteArgs) -> Result<()> {
        self.call(ctx, BDM_DELETE, a).await
    }

    /// Hands an agent's trace events to the conductor to store (a cast:
    /// recording never waits for the database).
    pub async fn record_events(&self, events: Vec<serde_json::Value>) -> Result<()> {
        Ok(self
            .bus
            .cast(
                CONDUCTOR,
                RECORD_EVENTS,
                &RequestContext::internal(),
                &RecordEventsArgs { events },
            )
            .await?)
    }
}
