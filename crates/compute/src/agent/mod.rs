//! The compute agent of one host: consumes `compute.<host>` (and its
//! external events on `compute_events.<host>`), drives its virt driver
//! and reports every state change through the conductor (it never opens
//! the database). It reports its node and heartbeats periodically,
//! and on start reconciles what the database says runs here with what the
//! driver really has; afterwards its power-state sync (`power_sync`) keeps
//! the two aligned as Nova's `_sync_power_states` does.

pub mod build;
pub mod events;
pub mod power_sync;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stratus_common::RequestContext;

use crate::bus::{Bus, Envelope, Handler, RemoteError};
use crate::clients::{AcceptAll, ImageApi, NetworkApi, StaticToken, TokenSource};
use crate::config::ComputeConfig;
use crate::db::hosts::NodeReport;
use crate::db::instances::{Expected, Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::rpc;
use crate::state::{power, task, vm};
use crate::virt::VirtDriver;

/// What an agent uses besides its driver: the image and network services,
/// the host's image cache and a source of service tokens.
#[derive(Clone)]
pub struct AgentServices {
    pub images: Arc<dyn ImageApi>,
    pub networks: Arc<dyn NetworkApi>,
    /// `None`: images are checked but not fetched (the fake driver needs no
    /// bits and tests need no image service).
    pub cache: Option<stratus_imagecache::ImageCache>,
    pub tokens: Arc<dyn TokenSource>,
    /// Where instances' own files (overlay disks) go: `<dir>/<instance>`.
    pub instances_dir: PathBuf,
}

impl AgentServices {
    /// Stand-ins: every image and network accepted, no cache, no ports.
    pub fn accept_all(instances_dir: PathBuf) -> Self {
        Self {
            images: Arc::new(AcceptAll),
            networks: Arc::new(AcceptAll),
            cache: None,
            tokens: Arc::new(StaticToken(String::new())),
            instances_dir,
        }
    }
}

pub struct Agent {
    pub host: String,
    pub bus: Bus,
    pub driver: Arc<dyn VirtDriver>,
    pub services: AgentServices,
    pub cfg: ComputeConfig,
    /// Builds waiting for external events (`network-vif-plugged`).
    pub waiters: events::Waiters,
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

    /// The user's token from the message, else the service token.
    async fn token_for(&self, ctx: &RequestContext) -> Result<String> {
        match ctx.auth_token.as_deref() {
            Some(t) if !t.is_empty() => Ok(t.to_owned()),
            _ => self.services.tokens.token().await,
        }
    }

    async fn spawn(&self, ctx: &RequestContext, inst: &Instance) -> Result<()> {
        let id = inst.id.to_string();
        let token = self.token_for(ctx).await?;
        let b = build::Build::new(self, ctx, inst, token);
        match crate::saga::run_local("build", &build::steps(), &b).await {
            Ok(()) => Ok(()),
            // The final swap lost: deleted meanwhile (already unwound).
            Err(e @ (ComputeError::NotFound(_) | ComputeError::Conflict(_)))
                if self.is_gone(ctx, &id).await =>
            {
                Err(e)
            }
            // Anything else is a build failure (reschedule), never to be
            // mistaken for the "deleted meanwhile" above.
            Err(e) => Err(ComputeError::Internal(format!(
                "Build of instance {id} failed: {e}"
            ))),
        }
    }

    /// Deleted, or taken out of this build (a delete set `deleting`).
    async fn is_gone(&self, ctx: &RequestContext, id: &str) -> bool {
        match self.instance(ctx, id).await {
            Ok(i) => i.deleted || i.task_state.as_deref() != Some(task::SPAWNING),
            Err(ComputeError::NotFound(_)) => true,
            Err(_) => false,
        }
    }

    /// Removes the instance's ports: those we made are deleted, those the
    /// user brought are unbound (as Nova's `deallocate_for_instance`).
    pub async fn deallocate_network(&self, ctx: &RequestContext, inst: &Instance) -> Result<()> {
        let id = inst.id.to_string();
        let token = self.services.tokens.token().await;
        let token = match token {
            Ok(t) if !t.is_empty() => t,
            _ => self.token_for(ctx).await?,
        };
        let mut unbind: Vec<String> = Vec::new();
        // The saved info may be stale (the build failed before saving it):
        // the network service's own list is the truth for what to delete.
        if let Ok(current) = self.instance(ctx, &id).await {
            for v in current.network_info.iter().filter(|v| v.preexisting) {
                unbind.push(v.port_id.clone());
            }
        }
        for (_, port) in build::requested(&inst.networks) {
            if let Some(p) = port {
                if !unbind.contains(&p) {
                    unbind.push(p);
                }
            }
        }
        for p in &unbind {
            self.services.networks.port_unbind(&token, p).await?;
        }
        for p in self.services.networks.ports_of(&token, &id).await? {
            if !unbind.contains(&p) {
                self.services.networks.port_delete(&token, &p).await?;
            }
        }
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
        let inst = match self.instance(ctx, id).await {
            Ok(i) => Some(i),
            Err(ComputeError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        self.with_event(ctx, id, "compute_terminate_instance", || async {
            self.driver
                .destroy(id)
                .await
                .map_err(|e| ComputeError::Internal(e.to_string()))?;
            if let Some(inst) = &inst {
                self.deallocate_network(ctx, inst).await?;
                build::release_image(self, inst).await;
            }
            Ok(())
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
                // A failure here (say, the network service is down) must
                // not keep the agent from starting: the instance stays
                // `deleting` and the next reconcile or delete retries.
                if let Err(e) = self.terminate(&ctx, &id).await {
                    tracing::warn!(instance = %id, error = %e, "cannot finish an interrupted delete");
                }
                continue;
            }
            let u = match (inst.vm_state.as_str(), actual) {
                // A build the restart interrupted.
                (vm::BUILDING, _) => {
                    let _ = self.driver.destroy(&id).await;
                    if let Err(e) = self.deallocate_network(&ctx, inst).await {
                        tracing::warn!(instance = %id, error = %e, "cannot remove the ports of an interrupted build");
                    }
                    build::release_image(self, inst).await;
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

    /// Wakes the build waiting for this event (dropped when none waits,
    /// as Nova drops unexpected events).
    fn external_event(&self, a: rpc::ExternalEventArgs) {
        if !self
            .waiters
            .deliver(&a.instance_id, &a.name, &a.tag, &a.status)
        {
            tracing::debug!(instance = %a.instance_id, event = %a.name, tag = %a.tag, "external event nobody waits for");
        }
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
            // Casts from an API older than `compute_events.<host>`.
            rpc::EXTERNAL_EVENT => self.external_event(args(env)?),
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

/// The agent's `compute_events.<host>` consumer: external events only, so
/// that they never wait behind builds for a `compute.<host>` slot.
pub struct EventHandler(pub Arc<Agent>);

#[async_trait]
impl Handler for EventHandler {
    async fn handle(&self, env: Envelope) -> std::result::Result<serde_json::Value, RemoteError> {
        let r = match env.method.as_str() {
            rpc::EXTERNAL_EVENT => args(&env).map(|a| self.0.external_event(a)),
            other => Err(ComputeError::BadRequest(format!(
                "unknown compute event method {other}"
            ))),
        };
        r.map(|()| serde_json::Value::Null).map_err(|e| {
            tracing::warn!(host = %self.0.host, method = %env.method, error = %e, "compute agent events");
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
