//! The scheduler worker: consumes `scheduler.select_and_build`, reads the
//! host states, filters and weighs them (`select`), claims on the best host
//! in one transaction and casts the build to that host's agent with
//! alternates.

pub mod select;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;

use crate::bus::{Bus, Envelope, Handler, RemoteError};
use crate::config::ComputeConfig;
use crate::db::hosts::Service;
use crate::db::Store;
use crate::error::{ComputeError, Result};
use crate::ops;
use crate::rpc;
use crate::state::{task, vm};
use select::{HostState, Request, Weights};

pub struct Scheduler {
    pub store: Store,
    pub bus: Bus,
    pub cfg: ComputeConfig,
}

/// Whether a service's last heartbeat is recent enough.
pub fn service_is_up(s: &Service, down_after_secs: u64) -> bool {
    if s.forced_down {
        return false;
    }
    let Some(seen) = s
        .last_seen_up
        .as_deref()
        .and_then(stratus_common::time::from_db)
    else {
        return false;
    };
    let limit = Duration::seconds(i64::try_from(down_after_secs).unwrap_or(i64::MAX / 1000));
    stratus_common::time::now() - seen <= limit
}

impl Scheduler {
    /// The current host snapshot.
    pub async fn host_states(&self) -> Result<Vec<HostState>> {
        let services = self.store.service_list().await?;
        // Indexed by host: a linear search per node was quadratic at 10,000 hosts.
        let by_host: std::collections::HashMap<&str, _> = services
            .iter()
            .filter(|s| s.binary == "nova-compute")
            .map(|s| (s.host.as_str(), s))
            .collect();
        let nodes = self.store.node_list().await?;
        Ok(nodes
            .into_iter()
            .map(|node| {
                let svc = by_host.get(node.host.as_str()).copied();
                HostState {
                    up: svc.is_some_and(|s| service_is_up(s, self.cfg.service_down_time_secs)),
                    enabled: svc.is_some_and(|s| !s.disabled),
                    node,
                }
            })
            .collect())
    }

    async fn select_and_build(&self, env: &Envelope, instance_id: &str) -> Result<()> {
        let ctx = &env.context;
        let rid = ctx.request_id.0.as_str();
        let inst = match self.store.instance_get(instance_id).await {
            Ok(i) => i,
            // Deleted before we got to it: nothing to do.
            Err(ComputeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if inst.vm_state != vm::BUILDING
            || inst.task_state.as_deref() != Some(task::SCHEDULING)
            || inst.host.is_some()
        {
            // A redelivered cast for work already done.
            return Ok(());
        }
        const EV: &str = "conductor_schedule_and_build_instances";
        self.store
            .action_event_start(instance_id, rid, EV, None)
            .await?;
        let mut req = Request {
            vcpus: inst.flavor.vcpus,
            memory_mb: inst.flavor.ram,
            disk_gb: inst.flavor.disk + inst.flavor.ephemeral,
            availability_zone: inst.availability_zone.clone(),
            ignore_hosts: inst.tried_hosts.clone(),
            image_properties: inst.image_properties.clone(),
            ..Request::default()
        };
        if let Some(g) = &inst.server_group_id {
            if let Ok(group) = self.store.server_group_get(g).await {
                req.group_policy = Some(group.policy);
                req.group_hosts = self.store.server_group_hosts(g, instance_id).await?;
            }
        }
        let weights = Weights {
            ram: self.cfg.ram_weight_multiplier,
            cpu: self.cfg.cpu_weight_multiplier,
        };
        self.store
            .action_event_start(instance_id, rid, "scheduler_select_destinations", None)
            .await?;
        let candidates = select::select(&self.host_states().await?, &req, weights);
        let alternates = (self.cfg.max_attempts as usize).saturating_sub(1);
        let placed =
            ops::place(&self.store, &self.bus, ctx, &inst, &candidates, alternates).await?;
        if !placed {
            let msg = ops::NO_VALID_HOST;
            self.store
                .action_event_finish(instance_id, rid, "scheduler_select_destinations", Some(msg))
                .await?;
            ops::fail_build(
                &self.store,
                instance_id,
                msg,
                "There are not enough hosts available.",
            )
            .await?;
            self.store
                .action_event_finish(instance_id, rid, EV, Some(msg))
                .await?;
            return Ok(());
        }
        self.store
            .action_event_finish(instance_id, rid, "scheduler_select_destinations", None)
            .await?;
        self.store
            .action_event_finish(instance_id, rid, EV, None)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Handler for Scheduler {
    async fn handle(&self, env: Envelope) -> std::result::Result<serde_json::Value, RemoteError> {
        let r = match env.method.as_str() {
            rpc::SELECT_AND_BUILD => {
                match serde_json::from_value::<rpc::InstanceArgs>(env.args.clone()) {
                    Ok(a) => self.select_and_build(&env, &a.instance_id).await,
                    Err(e) => Err(ComputeError::BadRequest(e.to_string())),
                }
            }
            other => Err(ComputeError::BadRequest(format!(
                "unknown scheduler method {other}"
            ))),
        };
        match r {
            Ok(()) => Ok(serde_json::Value::Null),
            Err(e) => {
                tracing::error!(method = %env.method, error = %e, "scheduler");
                Err(e.to_remote())
            }
        }
    }
}

pub fn handler(store: Store, bus: Bus, cfg: ComputeConfig) -> Arc<Scheduler> {
    Arc::new(Scheduler { store, bus, cfg })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(seen_secs_ago: i64, forced_down: bool) -> Service {
        let seen = stratus_common::time::now() - Duration::seconds(seen_secs_ago);
        Service {
            id: "s".into(),
            host: "h".into(),
            binary: "nova-compute".into(),
            topic: "compute".into(),
            disabled: false,
            disabled_reason: None,
            forced_down,
            last_seen_up: Some(stratus_common::time::to_db(seen)),
            updated_at: String::new(),
        }
    }

    #[test]
    fn a_silent_or_forced_down_service_is_down() {
        assert!(service_is_up(&svc(5, false), 60));
        assert!(!service_is_up(&svc(120, false), 60));
        assert!(!service_is_up(&svc(0, true), 60));
        let mut never = svc(0, false);
        never.last_seen_up = None;
        assert!(!service_is_up(&never, 60));
    }
}
