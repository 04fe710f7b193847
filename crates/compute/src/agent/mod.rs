//! The compute agent of one host: consumes `compute.<host>`, drives its virt
//! driver and reports every state change through the conductor (it never
//! opens the database). It reports its node and heartbeats periodically,
//! and on start reconciles what the database says runs here with what the
//! driver really has.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stratus_common::RequestContext;

use crate::bus::{Bus, Envelope, Handler, RemoteError};
use crate::clients::{ImageApi, NetworkApi};
use crate::config::ComputeConfig;
use crate::db::hosts::NodeReport;
use crate::db::instances::{Expected, Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::rpc;
use crate::state::{power, task, vm};
use crate::virt::VirtDriver;

pub struct Agent {
    pub host: String,
    pub bus: Bus,
    pub driver: Arc<dyn VirtDriver>,
    pub images: Arc<dyn ImageApi>,
    pub networks: Arc<dyn NetworkApi>,
    pub cfg: ComputeConfig,
}

fn args<T: DeserializeOwned>(env: &Envelope) -> Result<T> {
    serde_json::from_value(env.args.clone())
        .map_err(|e| ComputeError::BadRequest(format!("bad arguments: {e}")))
}

fn exp(states: &[Option<&str>]) -> Expected {
    Some(states.iter().map(|s| s.map(str::to_owned)).collect())
}

impl Agent {
    async fn conductor<R: DeserializeOwned>(
        &self,
        ctx: &RequestContext,
        method: &str,
        a: &impl Serialize,
    ) -> Result<R> {
        Ok(self.bus.call(rpc::CONDUCTOR, method, ctx, a).await?)
    }

    async fn instance(&self, ctx: &RequestContext, id: &str) -> Result<Instance> {
        let a = rpc::InstanceArgs {
            instance_id: id.to_owned(),
        };
        self.conductor(ctx, rpc::INSTANCE_GET, &a).await
    }

    async fn update(
        &self,
        ctx: &RequestContext,
        id: &str,
        expected: Expected,
        updates: InstanceUpdate,
    ) -> Result<Instance> {
        let a = rpc::UpdateArgs {
            instance_id: id.to_owned(),
            expected_task_state: expected,
            updates,
        };
        self.conductor(ctx, rpc::INSTANCE_UPDATE, &a).await
    }

    async fn event(
        &self,
        ctx: &RequestContext,
        id: &str,
        event: &str,
        finish: bool,
        error: Option<String>,
    ) -> Result<()> {
        let a = rpc::EventArgs {
            instance_id: id.to_owned(),
            event: event.to_owned(),
            host: Some(self.host.clone()),
            error,
        };
        let method = if finish {
            rpc::EVENT_FINISH
        } else {
            rpc::EVENT_START
        };
        self.conductor::<()>(ctx, method, &a).await
    }

    /// Runs `work` between an action event's start and finish.
    async fn with_event<F, Fut>(
        &self,
        ctx: &RequestContext,
        id: &str,
        event: &str,
        work: F,
    ) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.event(ctx, id, event, false, None).await?;
        let r = work().await;
        self.event(
            ctx,
            id,
            event,
            true,
            r.as_ref().err().map(|e| e.to_string()),
        )
        .await?;
        r
    }

    pub fn node_report(&self) -> NodeReport {
        let r = self.driver.resources();
        NodeReport {
            host: self.host.clone(),
            node: self.host.clone(),
            hypervisor_type: r.hypervisor_type,
            host_ip: "127.0.0.1".to_owned(),
            availability_zone: self.cfg.default_availability_zone.clone(),
            vcpus: r.vcpus,
            memory_mb: r.memory_mb,
            local_gb: r.local_gb,
            cpu_allocation_ratio: self.cfg.cpu_allocation_ratio,
            ram_allocation_ratio: self.cfg.ram_allocation_ratio,
            disk_allocation_ratio: self.cfg.disk_allocation_ratio,
        }
    }

    /// Reports the node and heartbeats (the conductor records both).
    pub async fn report(&self) -> Result<()> {
        let a = rpc::NodeReportArgs {
            report: self.node_report(),
        };
        self.conductor::<()>(&RequestContext::internal(), rpc::NODE_REPORT, &a)
            .await
    }

    async fn build(&self, ctx: &RequestContext, a: rpc::BuildArgs) -> Result<()> {
        let id = a.instance_id.as_str();
        let inst = match self.instance(ctx, id).await {
            Ok(i) => i,
            Err(ComputeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if inst.deleted
            || inst.host.as_deref() != Some(self.host.as_str())
            || inst.vm_state != vm::BUILDING
        {
            // Deleted, moved or already built: a stale or repeated cast.
            return Ok(());
        }
        // Take the build (scheduling -> spawning). Losing this swap means the
        // server was deleted or another delivery of this cast already has it;
        // either way there is nothing of ours to clean up.
        let take = InstanceUpdate {
            task_state: Some(Some(task::SPAWNING.to_owned())),
            ..InstanceUpdate::default()
        };
        match self
            .update(ctx, id, exp(&[Some(task::SCHEDULING)]), take)
            .await
        {
            Ok(_) => {}
            Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let spawned = self
            .with_event(ctx, id, "compute__do_build_and_run_instance", || {
                self.spawn(ctx, &inst)
            })
            .await;
        match spawned {
            Ok(()) => Ok(()),
            Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => {
                // Deleted while we spawned: leave nothing running.
                let _ = self.driver.destroy(id).await;
                Ok(())
            }
            Err(e) => {
                let _ = self.driver.destroy(id).await;
                let r = rpc::RescheduleArgs {
                    instance_id: id.to_owned(),
                    failed_host: self.host.clone(),
                    alternates: a.alternates,
                    error: e.to_string(),
                };
                self.conductor::<()>(ctx, rpc::RESCHEDULE, &r).await
            }
        }
    }

    async fn spawn(&self, ctx: &RequestContext, inst: &Instance) -> Result<()> {
        let id = inst.id.to_string();
        // Any failure before the final update is a build failure (reschedule),
        // never to be mistaken for the "deleted meanwhile" of the final swap.
        let failed =
            |e: ComputeError| ComputeError::Internal(format!("Build of instance {id} failed: {e}"));
        // Steps 19-38: the image and the networks (stand-ins until the image
        // and network services land).
        if !inst.image_ref.is_empty() {
            self.images
                .image_get(ctx, &inst.image_ref)
                .await
                .map_err(failed)?;
        }
        if let Some(list) = inst.networks.as_array() {
            let ids: Vec<String> = list
                .iter()
                .filter_map(|n| n.get("uuid").and_then(|u| u.as_str()).map(str::to_owned))
                .collect();
            self.networks
                .networks_validate(ctx, &ids)
                .await
                .map_err(failed)?;
        }
        self.driver
            .spawn(inst)
            .await
            .map_err(|e| ComputeError::Internal(e.to_string()))?;
        let console = self.driver.console_output(&id).await.unwrap_or_default();
        let u = InstanceUpdate {
            vm_state: Some(vm::ACTIVE.to_owned()),
            task_state: Some(None),
            power_state: Some(power::RUNNING),
            launched_at: Some(Some(stratus_common::time::to_db(
                stratus_common::time::now(),
            ))),
            console_log: Some(console),
            ..InstanceUpdate::default()
        };
        self.update(ctx, &id, exp(&[Some(task::SPAWNING)]), u)
            .await?;
        Ok(())
    }

    async fn power(&self, ctx: &RequestContext, id: &str, method: &str, hard: bool) -> Result<()> {
        let (event, during, vm_after, power_after) = match method {
            rpc::STOP => (
                "compute_stop_instance",
                task::POWERING_OFF,
                vm::STOPPED,
                power::SHUTDOWN,
            ),
            rpc::START => (
                "compute_start_instance",
                task::POWERING_ON,
                vm::ACTIVE,
                power::RUNNING,
            ),
            _ if hard => (
                "compute_reboot_instance",
                task::REBOOTING_HARD,
                vm::ACTIVE,
                power::RUNNING,
            ),
            _ => (
                "compute_reboot_instance",
                task::REBOOTING,
                vm::ACTIVE,
                power::RUNNING,
            ),
        };
        self.with_event(ctx, id, event, || async {
            let r = match method {
                rpc::STOP => self.driver.power_off(id).await,
                rpc::START => self.driver.power_on(id).await,
                _ => self.driver.reboot(id, hard).await,
            };
            let console = self.driver.console_output(id).await.ok();
            let u = InstanceUpdate {
                vm_state: Some(if r.is_ok() { vm_after } else { vm::ERROR }.to_owned()),
                task_state: Some(None),
                power_state: Some(if r.is_ok() {
                    power_after
                } else {
                    power::NOSTATE
                }),
                console_log: console,
                ..InstanceUpdate::default()
            };
            self.update(ctx, id, exp(&[Some(during)]), u).await?;
            r.map_err(|e| ComputeError::Internal(e.to_string()))
        })
        .await
    }

    async fn terminate(&self, ctx: &RequestContext, id: &str) -> Result<()> {
        self.with_event(ctx, id, "compute_terminate_instance", || async {
            self.driver
                .destroy(id)
                .await
                .map_err(|e| ComputeError::Internal(e.to_string()))
        })
        .await?;
        let a = rpc::InstanceArgs {
            instance_id: id.to_owned(),
        };
        self.conductor::<()>(ctx, rpc::INSTANCE_DESTROYED, &a).await
    }

    /// Makes the database and the driver agree after a restart.
    pub async fn reconcile(&self) -> Result<()> {
        let ctx = RequestContext::internal();
        let a = rpc::HostArgs {
            host: self.host.clone(),
        };
        let mine: Vec<Instance> = self.conductor(&ctx, rpc::INSTANCES_ON_HOST, &a).await?;
        let running = self.driver.list().await;
        for (vm_id, _) in &running {
            if !mine
                .iter()
                .any(|i| &i.id.to_string() == vm_id && !i.deleted)
            {
                tracing::info!(host = %self.host, instance = %vm_id, "destroying a guest the database does not know");
                let _ = self.driver.destroy(vm_id).await;
            }
        }
        for inst in &mine {
            let id = inst.id.to_string();
            let actual = running.iter().find(|(v, _)| v == &id).map(|(_, p)| *p);
            if inst.task_state.as_deref() == Some(task::DELETING) {
                self.terminate(&ctx, &id).await?;
                continue;
            }
            let u = match (inst.vm_state.as_str(), actual) {
                // A build the restart interrupted.
                (vm::BUILDING, _) => {
                    let _ = self.driver.destroy(&id).await;
                    let a = rpc::RescheduleArgs {
                        instance_id: id.clone(),
                        failed_host: self.host.clone(),
                        alternates: Vec::new(),
                        error: "Instance build was interrupted by a compute agent restart."
                            .to_owned(),
                    };
                    self.conductor::<()>(&ctx, rpc::RESCHEDULE, &a).await?;
                    continue;
                }
                (vm::ACTIVE, None) | (vm::ACTIVE, Some(power::SHUTDOWN)) => InstanceUpdate {
                    vm_state: Some(vm::STOPPED.to_owned()),
                    task_state: Some(None),
                    power_state: Some(power::SHUTDOWN),
                    ..InstanceUpdate::default()
                },
                (vm::STOPPED, Some(power::RUNNING)) => InstanceUpdate {
                    vm_state: Some(vm::ACTIVE.to_owned()),
                    task_state: Some(None),
                    power_state: Some(power::RUNNING),
                    ..InstanceUpdate::default()
                },
                (_, _) if inst.task_state.is_some() => InstanceUpdate {
                    // An interrupted stop/start/reboot: settle on what is real.
                    task_state: Some(None),
                    power_state: Some(actual.unwrap_or(power::SHUTDOWN)),
                    ..InstanceUpdate::default()
                },
                _ => continue,
            };
            self.update(&ctx, &id, None, u).await?;
        }
        Ok(())
    }

    async fn dispatch(&self, env: &Envelope) -> Result<serde_json::Value> {
        let ctx = &env.context;
        match env.method.as_str() {
            rpc::BUILD_AND_RUN => self.build(ctx, args(env)?).await?,
            rpc::STOP | rpc::START => {
                let a: rpc::InstanceArgs = args(env)?;
                self.power(ctx, &a.instance_id, &env.method, false).await?
            }
            rpc::REBOOT => {
                let a: rpc::RebootArgs = args(env)?;
                self.power(ctx, &a.instance_id, rpc::REBOOT, a.hard).await?
            }
            rpc::TERMINATE => {
                let a: rpc::InstanceArgs = args(env)?;
                self.terminate(ctx, &a.instance_id).await?
            }
            rpc::CONSOLE => {
                let a: rpc::ConsoleArgs = args(env)?;
                let text = self
                    .driver
                    .console_output(&a.instance_id)
                    .await
                    .map_err(|e| ComputeError::Conflict(e.to_string()))?;
                return Ok(serde_json::Value::String(tail_lines(&text, a.length)));
            }
            other => {
                return Err(ComputeError::BadRequest(format!(
                    "unknown compute method {other}"
                )))
            }
        }
        Ok(serde_json::Value::Null)
    }
}

/// The last `n` lines (all when `None` or negative), as Nova's console API.
pub fn tail_lines(text: &str, n: Option<i64>) -> String {
    match n {
        Some(n) if n >= 0 => {
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines
                .len()
                .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX));
            let mut s = lines[skip..].join("\n");
            if !s.is_empty() {
                s.push('\n');
            }
            s
        }
        _ => text.to_owned(),
    }
}

#[async_trait]
impl Handler for Agent {
    async fn handle(&self, env: Envelope) -> std::result::Result<serde_json::Value, RemoteError> {
        self.dispatch(&env).await.map_err(|e| {
            tracing::warn!(host = %self.host, method = %env.method, error = %e, "compute agent");
            e.to_remote()
        })
    }
}

/// Heartbeats until the task is aborted.
pub async fn heartbeat_loop(agent: Arc<Agent>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = agent.report().await {
            tracing::warn!(host = %agent.host, error = %e, "heartbeat failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tail_lines;

    #[test]
    fn console_tail() {
        assert_eq!(tail_lines("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(tail_lines("a\nb\n", None), "a\nb\n");
        assert_eq!(tail_lines("a\nb\n", Some(0)), "");
    }
}
