//! The agent's power-state sync, Nova's `_sync_power_states` periodic task:
//! every `[compute] sync_power_state_interval_secs` the agent compares each
//! of its instances' `power_state` in the database with what its driver
//! reports and, as Nova's `_sync_instance_power_state` does:
//!
//! ```text
//!   task_state set (an action in progress)      -> left alone
//!   power_state differs                          -> DB power_state := driver's
//!   vm ACTIVE,  guest SHUTDOWN/CRASHED/SUSPENDED -> stop  (action `stop`)
//!   vm STOPPED, guest running (not NOSTATE/SHUTDOWN/CRASHED)
//!                                                -> force_stop (action `stop`)
//!   vm paused,  guest SHUTDOWN/CRASHED           -> force_stop
//!   otherwise (building, error, ACTIVE guest missing, ...) -> nothing more
//! ```
//!
//! Writes go through the conductor (`instance_update` with task_state
//! expected empty, then `instance_stop`), never to the database directly.
//! The stop is the same work as the API's: the conductor records the `stop`
//! action (no user: Nova's periodic context has none) and claims
//! `powering-off`, then the agent powers the guest off under the
//! `compute_stop_instance` event. The sync itself records no action, as in
//! Nova.

use std::sync::Arc;
use std::time::Duration;

use stratus_common::RequestContext;

use super::{exp, Agent};
use crate::db::instances::InstanceUpdate;
use crate::error::{ComputeError, Result};
use crate::model::state::{PowerState, TaskState, VmState};
use crate::rpc::{self, RpcError};
use stratus_common::ids::InstanceId;

/// What the sync does about one instance after the power_state update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Correction {
    None,
    /// `compute_api.stop`: the guest went down by itself.
    Stop,
    /// `compute_api.force_stop`: the guest runs although it should not.
    ForceStop,
}

/// Nova's decision table for a (vm_state, driver power_state) pair.
pub fn correction(vm_state: VmState, vm_power: PowerState) -> Correction {
    use PowerState as P;
    match vm_state {
        VmState::Active => match vm_power {
            P::Shutdown | P::Crashed | P::Suspended => Correction::Stop,
            // PAUSED: ignored; NOSTATE: "unexpectedly not found", ignored.
            _ => Correction::None,
        },
        VmState::Stopped => match vm_power {
            P::NoState | P::Shutdown | P::Crashed => Correction::None,
            _ => Correction::ForceStop,
        },
        VmState::Paused => match vm_power {
            P::Shutdown | P::Crashed => Correction::ForceStop,
            _ => Correction::None,
        },
        // building, rescued, resized, suspended, error, deleted: nothing.
        _ => Correction::None,
    }
}

fn driver_state(guests: &[(InstanceId, PowerState)], id: InstanceId) -> PowerState {
    guests
        .iter()
        .find(|(g, _)| *g == id)
        .map(|(_, p)| *p)
        .unwrap_or(PowerState::NoState)
}

impl Agent {
    /// One run of the sync over every instance the database places here.
    pub async fn sync_power_states(&self) -> Result<()> {
        let mine = self.conductor.instances_on_host(&self.host).await?;
        let guests = self.driver.list().await;
        let live = mine.iter().filter(|i| !i.deleted).count();
        if live != guests.len() {
            tracing::warn!(host = %self.host, db = live, hypervisor = guests.len(),
                "while synchronizing instance power states, the database and the hypervisor count different instances");
        }
        for inst in mine.iter().filter(|i| !i.deleted) {
            if let Some(t) = &inst.task_state {
                tracing::info!(instance = %inst.id, task = %t, "during sync_power_state the instance has a pending task; skip");
                continue;
            }
            let vm_power = driver_state(&guests, inst.id);
            if let Err(e) = self.sync_instance_power_state(inst.id, vm_power).await {
                tracing::warn!(instance = %inst.id, error = %e, "periodic sync_power_state failed for an instance");
            }
        }
        Ok(())
    }

    /// Nova's `_sync_instance_power_state` for one instance, under its own
    /// request id (so that a stop is an action of its own).
    async fn sync_instance_power_state(&self, id: InstanceId, vm_power: PowerState) -> Result<()> {
        let ctx = RequestContext::internal();
        // Nova refreshes the record before it compares.
        let inst = match self.instance(&ctx, id).await {
            Ok(i) => i,
            Err(ComputeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if inst.deleted || inst.host.as_deref() != Some(self.host.as_str()) {
            return Ok(());
        }
        if inst.task_state.is_some() {
            return Ok(());
        }
        if vm_power != inst.power_state {
            tracing::info!(instance = %id, db_power_state = ?inst.power_state, vm_power_state = ?vm_power,
                "the DB power_state does not match the hypervisor's; updating the DB");
            let u = InstanceUpdate {
                power_state: Some(vm_power),
                ..InstanceUpdate::default()
            };
            // Only while no task runs: a task that began meanwhile owns
            // the instance now.
            match self.update(&ctx, id, exp(&[None]), u).await {
                Ok(_) => {}
                Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        let force = match correction(inst.vm_state, vm_power) {
            Correction::None => return Ok(()),
            Correction::Stop => {
                // Nova asks the driver again, uncached, before it stops.
                let now = driver_state(&self.driver.list().await, id);
                if !now.is_off() {
                    return Ok(());
                }
                tracing::warn!(instance = %id, vm_state = %inst.vm_state, db_power_state = ?inst.power_state,
                    vm_power_state = ?now, "instance shutdown by itself; calling the stop API");
                false
            }
            Correction::ForceStop => {
                tracing::warn!(instance = %id, vm_state = %inst.vm_state, db_power_state = ?inst.power_state,
                    vm_power_state = ?vm_power, "instance is not stopped; calling the stop API");
                true
            }
        };
        let a = rpc::StopArgs {
            instance_id: id,
            host: self.host.clone(),
            force,
        };
        match self.conductor.instance_stop(&ctx, &a).await {
            Ok(()) => {}
            // Deleted, moved or taken by a task meanwhile: theirs now.
            Err(RpcError::NotFound(_)) | Err(RpcError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.power(&ctx, id, TaskState::PoweringOff).await
    }
}

/// Runs the sync every `every` until the task is aborted.
pub async fn power_sync_loop(agent: Arc<Agent>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = agent.sync_power_states().await {
            tracing::warn!(host = %agent.host, error = %e, "power-state sync failed");
        }
    }
}

/// Nova's lifecycle events, by polling: when a guest's power state changes
/// between two looks at the driver (it powered itself off, crashed, or an
/// action of ours finished), the sync runs at once instead of at its next
/// period. Its decision table ignores instances with a task in progress,
/// so our own stops and reboots are left alone.
pub async fn lifecycle_loop(agent: Arc<Agent>, every: Duration) {
    let mut last = agent.driver.list().await;
    loop {
        tokio::time::sleep(every).await;
        let now = agent.driver.list().await;
        let changed = now
            .iter()
            .any(|(id, p)| last.iter().any(|(l, lp)| l == id && lp != p));
        last = now;
        if changed {
            if let Err(e) = agent.sync_power_states().await {
                tracing::warn!(host = %agent.host, error = %e, "power-state sync after a lifecycle change failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrections_follow_nova() {
        assert_eq!(
            correction(VmState::Active, PowerState::Shutdown),
            Correction::Stop
        );
        assert_eq!(
            correction(VmState::Active, PowerState::Crashed),
            Correction::Stop
        );
        assert_eq!(
            correction(VmState::Active, PowerState::NoState),
            Correction::None
        );
        assert_eq!(
            correction(VmState::Active, PowerState::Paused),
            Correction::None
        );
        assert_eq!(
            correction(VmState::Stopped, PowerState::Running),
            Correction::ForceStop
        );
        assert_eq!(
            correction(VmState::Stopped, PowerState::Shutdown),
            Correction::None
        );
        assert_eq!(
            correction(VmState::Stopped, PowerState::NoState),
            Correction::None
        );
        assert_eq!(
            correction(VmState::Error, PowerState::Shutdown),
            Correction::None
        );
        assert_eq!(
            correction(VmState::Building, PowerState::Running),
            Correction::None
        );
    }
}
