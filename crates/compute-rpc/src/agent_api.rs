//! What the API, the scheduler and the conductor ask of a host's compute
//! agent (`compute.<host>`), as typed casts and calls.

use stratus_common::ids::InstanceId;
use stratus_common::RequestContext;

use stratus_bus::Bus;

use crate::error::{Result, RpcError};
use crate::messages::*;
use crate::model::state::TaskState;

#[derive(Clone)]
pub struct AgentApi {
    bus: Bus,
}

impl AgentApi {
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }

    /// Seed step 12: build (or go on building) an instance placed on `host`.
    pub async fn build_and_run(
        &self,
        ctx: &RequestContext,
        host: &str,
        a: &BuildArgs,
    ) -> Result<()> {
        Ok(self
            .bus
            .cast(&compute_topic(host), BUILD_AND_RUN, ctx, a)
            .await?)
    }

    /// The power action a task state stands for: stop, start or reboot.
    pub async fn power(
        &self,
        ctx: &RequestContext,
        host: &str,
        id: InstanceId,
        during: TaskState,
    ) -> Result<()> {
        let topic = compute_topic(host);
        let one = InstanceArgs { instance_id: id };
        let sent = match during {
            TaskState::PoweringOff => self.bus.cast(&topic, STOP, ctx, &one).await,
            TaskState::PoweringOn => self.bus.cast(&topic, START, ctx, &one).await,
            TaskState::Rebooting | TaskState::RebootingHard => {
                let a = RebootArgs {
                    instance_id: id,
                    hard: during == TaskState::RebootingHard,
                };
                self.bus.cast(&topic, REBOOT, ctx, &a).await
            }
            other => return Err(RpcError::Internal(format!("{other} is no power action"))),
        };
        Ok(sent?)
    }

    pub async fn terminate(&self, ctx: &RequestContext, host: &str, id: InstanceId) -> Result<()> {
        Ok(self
            .bus
            .cast(
                &compute_topic(host),
                TERMINATE,
                ctx,
                &InstanceArgs { instance_id: id },
            )
            .await?)
    }

    /// The last `length` lines of the guest's console.
    pub async fn console_output(
        &self,
        ctx: &RequestContext,
        host: &str,
        id: InstanceId,
        length: Option<i64>,
    ) -> Result<String> {
        let a = ConsoleArgs {
            instance_id: id,
            length,
        };
        Ok(self
            .bus
            .call(&compute_topic(host), CONSOLE, ctx, &a)
            .await?)
    }

    /// Attaches a reserved volume to the guest (see [`ATTACH_VOLUME`]);
    /// idempotent, so a retried call after a lost reply is harmless.
    pub async fn attach_volume(
        &self,
        ctx: &RequestContext,
        host: &str,
        a: &VolumeArgs,
    ) -> Result<VolumeAttached> {
        Ok(self
            .bus
            .call(&compute_topic(host), ATTACH_VOLUME, ctx, a)
            .await?)
    }

    /// Takes the volume's disk away from the guest; a disk it does not
    /// have is fine.
    pub async fn detach_volume(
        &self,
        ctx: &RequestContext,
        host: &str,
        a: &VolumeArgs,
    ) -> Result<()> {
        let _: serde_json::Value = self
            .bus
            .call(&compute_topic(host), DETACH_VOLUME, ctx, a)
            .await?;
        Ok(())
    }
}
