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
pub mod rebuild;
pub mod snapshot;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use stratus_common::RequestContext;

use crate::bus::{Bus, Envelope, Handler, RemoteError};
use crate::clients::{
    AcceptAll, FakeVolumes, ImageApi, NetworkApi, StaticToken, TokenSource, VolumeApi,
};
use crate::config::ComputeConfig;
use crate::db::hosts::NodeReport;
use crate::db::instances::{Expected, Instance, InstanceUpdate};
use crate::db::sagas::{SagaRecord, SagaState};
use crate::error::{ComputeError, Result};
use crate::model::state::{PowerState, TaskState, VmState};
use crate::rpc;
use crate::saga::build_log::ConductorLog;
use crate::saga::{Ended, Inject, SagaLog};
use crate::trace;
use crate::virt::VirtDriver;
use stratus_common::ids::{ImageId, InstanceId};

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
    /// The volume service (attachments), called with the service token.
    pub volumes: Arc<dyn VolumeApi>,
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
            volumes: Arc::new(FakeVolumes::default()),
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
    /// The agent's way to the database.
    pub conductor: rpc::ConductorApi,
    /// One build at a time per instance.
    pub builds: BuildGates,
    /// Failures to inject into builds (the standard saga tests).
    pub inject: Inject,
}

/// A lock per instance being built, so that a redelivered message and a
/// resumed build never run one saga at once.
#[derive(Default)]
pub struct BuildGates(
    std::sync::Mutex<std::collections::HashMap<InstanceId, Arc<tokio::sync::Mutex<()>>>>,
);

impl BuildGates {
    fn gate(&self, id: InstanceId) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Gates nobody holds or waits for are dropped as we go.
        m.retain(|_, g| Arc::strong_count(g) > 1);
        m.entry(id).or_default().clone()
    }
}

fn args<T: DeserializeOwned>(env: &Envelope) -> Result<T> {
    serde_json::from_value(env.args.clone())
        .map_err(|e| ComputeError::BadRequest(format!("bad arguments: {e}")))
}

fn exp(states: &[Option<TaskState>]) -> Expected {
    Some(states.to_vec())
}

impl Agent {
    async fn instance(&self, ctx: &RequestContext, id: InstanceId) -> Result<Instance> {
        Ok(self.conductor.instance_get(ctx, id).await?)
    }

    async fn update(
        &self,
        ctx: &RequestContext,
        id: InstanceId,
        expected: Expected,
        updates: InstanceUpdate,
    ) -> Result<Instance> {
        Ok(self
            .conductor
            .instance_update(ctx, id, expected, updates)
            .await?)
    }

    async fn event(
        &self,
        ctx: &RequestContext,
        id: InstanceId,
        event: &str,
        finish: bool,
        error: Option<String>,
    ) -> Result<()> {
        let a = rpc::EventArgs {
            instance_id: id,
            event: event.to_owned(),
            host: Some(self.host.clone()),
            error,
        };
        Ok(self.conductor.action_event(ctx, &a, finish).await?)
    }

    /// Runs `work` between an action event's start and finish.
    async fn with_event<F, Fut>(
        &self,
        ctx: &RequestContext,
        id: InstanceId,
        event: &str,
        work: F,
    ) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.with_event_out(ctx, id, event, work).await
    }

    /// [`Self::with_event`] for work with an outcome.
    async fn with_event_out<T, F, Fut>(
        &self,
        ctx: &RequestContext,
        id: InstanceId,
        event: &str,
        work: F,
    ) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let res = id.to_string();
        let started = self.event(ctx, id, event, false, None);
        let what = format!("action event {event} start (conductor)");
        trace::time(17, what, Some(&res), started).await?;
        let r = work().await;
        let error = r.as_ref().err().map(|e| e.to_string());
        let finished = self.event(ctx, id, event, true, error);
        let what = format!("action event {event} finish (conductor)");
        trace::time(17, what, Some(&res), finished).await?;
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
        Ok(self.conductor.node_report(self.node_report()).await?)
    }

    /// Whether the instance is in a build on this host.
    fn is_building_here(&self, i: &Instance) -> bool {
        !i.deleted
            && i.vm_state == VmState::Building
            && i.host.as_deref() == Some(self.host.as_str())
    }

    /// Runs (or resumes) the build of an instance; one at a time per
    /// instance, so that a redelivered message and a resumed build never
    /// run the same saga at once.
    pub async fn build(&self, ctx: &RequestContext, a: rpc::BuildArgs) -> Result<()> {
        let gate = self.builds.gate(a.instance_id);
        let _held = gate.lock().await;
        let id = a.instance_id;
        let res = id.to_string();
        let what = "instance_get (conductor)";
        let inst = match trace::time(14, what, Some(&res), self.instance(ctx, id)).await {
            Ok(i) => i,
            Err(ComputeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let attempt = a
            .attempt
            .unwrap_or_else(|| u32::try_from(inst.attempts.max(1) - 1).unwrap_or(0));
        let rec = SagaRecord {
            id: build::saga_id(&id.to_string(), attempt),
            kind: build::KIND.to_owned(),
            instance_id: id.to_string(),
            state: SagaState::Running,
            params: serde_json::json!({
                "host": self.host,
                "attempt": attempt,
                "alternates": a.alternates,
                "context": crate::saga::loggable(ctx),
            }),
        };
        let log = ConductorLog::new(&self.conductor, ctx);
        if !self.is_building_here(&inst) {
            // Deleted, moved, failed or built: a stale or repeated cast.
            // A build of ours it interrupted still unwinds.
            let probe = SagaRecord {
                kind: String::new(),
                ..rec.clone()
            };
            let stored = match log.open(&probe).await {
                Ok((stored, _)) => stored.state,
                Err(ComputeError::NotFound(_)) => SagaState::Done,
                Err(e) => return Err(e),
            };
            if matches!(stored, SagaState::Running | SagaState::Unwinding) {
                let token = self.service_token().await?;
                let b = build::Build::new(self, ctx, &inst, token);
                crate::saga::unwind(&log, &rec.id, &build::steps(), &b).await?;
            }
            return Ok(());
        }
        let token = trace::time(18, "service token", Some(&res), self.service_token()).await?;
        let b = build::Build::new(self, ctx, &inst, token);
        let ended = self
            .with_event_out(ctx, id, "compute__do_build_and_run_instance", || async {
                crate::saga::execute(&log, &rec, &build::steps(), &b, self.inject).await
            })
            .await;
        match ended {
            Ok(Ended::Done | Ended::Crashed) => Ok(()),
            // This attempt failed before (and was rescheduled then).
            Ok(Ended::AlreadyFailed) => Ok(()),
            Err(e) => {
                // Unwound already. Deleted, timed out or taken meanwhile:
                // nothing more to do; else the conductor tries elsewhere.
                if self.is_gone(ctx, id).await {
                    return Ok(());
                }
                let r = rpc::RescheduleArgs {
                    instance_id: id,
                    failed_host: self.host.clone(),
                    alternates: a.alternates,
                    error: format!("Build of instance {id} failed: {e}"),
                    attempt: Some(attempt),
                };
                Ok(self.conductor.reschedule(ctx, &r).await?)
            }
        }
    }

    /// Seed steps 39–42 and 48–51 for a server that runs: the host's
    /// connector to the reserved attachment gives the connection info, the
    /// driver gives the guest the disk, and the attachment is completed
    /// (the volume is `in-use`). Each part is idempotent.
    async fn attach_volume(&self, a: rpc::VolumeArgs) -> Result<rpc::VolumeAttached> {
        let token = self.service_token().await?;
        let volumes = &self.services.volumes;
        let info = self
            .connect_volume(&token, &a.attachment_id, &a.device)
            .await?;
        let disk = crate::model::DiskSpec {
            device: guest_device(&a.device).to_owned(),
            source: crate::model::DiskSource::Volume {
                volume_id: a.volume_id.to_string(),
                connection_info: info.clone(),
            },
            size_gb: 0,
            boot_index: None,
        };
        self.driver
            .attach_volume(a.instance_id, &disk)
            .await
            .map_err(|e| ComputeError::Internal(e.to_string()))?;
        volumes
            .attachment_complete(&token, &a.attachment_id)
            .await?;
        Ok(rpc::VolumeAttached {
            connection_info: info,
        })
    }

    /// This host's connector given to a reserved attachment for the guest's
    /// `device` (`/dev/vdb`): the connection info (idempotent).
    pub(crate) async fn connect_volume(
        &self,
        token: &str,
        attachment: &stratus_common::ids::AttachmentId,
        device: &str,
    ) -> Result<serde_json::Value> {
        let connector =
            stratus_volume_client::Connector::for_host(&self.host, Some(device.to_owned()));
        self.services
            .volumes
            .attachment_connect(token, attachment, &connector)
            .await
    }

    /// The service user's token, for every call an agent makes to another
    /// service (the request's id still travels with `ctx`).
    async fn service_token(&self) -> Result<String> {
        self.services.tokens.token().await
    }

    /// Deleted, or out of this host's build (a delete set `deleting`, the
    /// build timed out, or it moved).
    async fn is_gone(&self, ctx: &RequestContext, id: InstanceId) -> bool {
        match self.instance(ctx, id).await {
            Ok(i) => !self.is_building_here(&i) || i.task_state == Some(TaskState::Deleting),
            Err(ComputeError::NotFound(_)) => true,
            Err(_) => false,
        }
    }

    /// Removes the instance's ports: those we made are deleted, those the
    /// user brought are unbound (as Nova's `deallocate_for_instance`).
    pub async fn deallocate_network(&self, ctx: &RequestContext, inst: &Instance) -> Result<()> {
        let id = inst.id.to_string();
        let token = self.service_token().await?;
        let mut unbind: Vec<String> = Vec::new();
        // The saved info may be stale (the build failed before saving it):
        // the network service's own list is the truth for what to delete.
        if let Ok(current) = self.instance(ctx, inst.id).await {
            for v in current.network_info.iter().filter(|v| v.preexisting) {
                unbind.push(v.port_id.clone());
            }
        }
        for p in inst.networks.user_ports() {
            let p = p.to_string();
            if !unbind.contains(&p) {
                unbind.push(p);
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

    async fn power(&self, ctx: &RequestContext, id: InstanceId, during: TaskState) -> Result<()> {
        let event = match during {
            TaskState::PoweringOff => "compute_stop_instance",
            TaskState::PoweringOn => "compute_start_instance",
            _ => "compute_reboot_instance",
        };
        let (vm_after, power_after) = during
            .done_state()
            .ok_or_else(|| ComputeError::BadRequest(format!("{during} is no power action")))?;
        let iid = id;
        self.with_event(ctx, id, event, || async {
            let act = async {
                match during {
                    TaskState::PoweringOff => self.driver.power_off(iid).await,
                    TaskState::PoweringOn => self.driver.power_on(iid).await,
                    TaskState::RebootingHard => self.driver.reboot(iid, true).await,
                    _ => self.driver.reboot(iid, false).await,
                }
            };
            let r = trace::time(
                43,
                format!("{during} (driver)"),
                Some(&iid.to_string()),
                act,
            )
            .await;
            let console = self.driver.console_output(iid).await.ok();
            let u = InstanceUpdate {
                vm_state: Some(if r.is_ok() { vm_after } else { VmState::Error }),
                task_state: Some(None),
                power_state: Some(if r.is_ok() {
                    power_after
                } else {
                    PowerState::NoState
                }),
                console_log: console,
                ..InstanceUpdate::default()
            };
            self.update(ctx, id, exp(&[Some(during)]), u).await?;
            r.map_err(|e| ComputeError::Internal(e.to_string()))
        })
        .await
    }

    async fn terminate(&self, ctx: &RequestContext, id: InstanceId) -> Result<()> {
        let inst = match self.instance(ctx, id).await {
            Ok(i) => Some(i),
            Err(ComputeError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        self.with_event(ctx, id, "compute_terminate_instance", || async {
            let destroy = async {
                self.driver
                    .destroy(id)
                    .await
                    .map_err(|e| ComputeError::Internal(e.to_string()))
            };
            trace::time(
                43,
                "destroy the guest (driver)",
                Some(&id.to_string()),
                destroy,
            )
            .await?;
            if let Some(inst) = &inst {
                self.deallocate_network(ctx, inst).await?;
                self.release_image(inst).await;
            }
            Ok(())
        })
        .await?;
        Ok(self.conductor.instance_destroyed(ctx, id).await?)
    }

    /// Drops the instance's hold on its cached image and its folder.
    pub async fn release_image(&self, inst: &Instance) {
        if let (Some(cache), Ok(image)) = (&self.services.cache, inst.image_ref.parse::<ImageId>())
        {
            cache.release(image, inst.id).await;
        }
        build::remove_instance_dir(self, &inst.id.to_string()).await;
    }

    /// Makes the database and the driver agree after a restart: interrupted
    /// deletes and power actions finish, builds resume (returned, for the
    /// caller to run once the agent consumes its topics: a redelivered
    /// message for the same build waits for them and finds them done),
    /// guests with no instance behind them go.
    pub async fn reconcile(&self) -> Result<Vec<rpc::BuildArgs>> {
        let ctx = RequestContext::internal();
        let mine = self.conductor.instances_on_host(&self.host).await?;
        let running = self.driver.list().await;
        self.reap_guests(&mine, &running).await;
        // Builds begun here and not finished: they resume, or unwind when
        // their server left BUILD meanwhile (timed out, deleted).
        let mut resume = self.conductor.builds_on_host(&self.host).await?;
        for inst in &mine {
            let id = inst.id;
            let actual = running.iter().find(|(v, _)| *v == inst.id).map(|(_, p)| *p);
            if inst.task_state == Some(TaskState::Deleting) {
                // A failure here (say, the network service is down) must
                // not keep the agent from starting: the instance stays
                // `deleting` and the next reconcile or delete retries.
                if let Err(e) = self.terminate(&ctx, id).await {
                    tracing::warn!(instance = %id, error = %e, "cannot finish an interrupted delete");
                }
                continue;
            }
            let u = match (inst.vm_state, actual) {
                // A build the restart interrupted, or one not begun: its
                // saga knows where it stopped.
                (VmState::Building, _) => {
                    if !resume.iter().any(|b| b.instance_id == id) {
                        resume.push(rpc::BuildArgs {
                            instance_id: id,
                            alternates: Vec::new(),
                            attempt: None,
                        });
                    }
                    continue;
                }
                // A rebuild the restart interrupted: its old guest may be
                // gone already, so it cannot go back (Nova's `_init_instance`).
                (_, _)
                    if matches!(
                        inst.task_state,
                        Some(TaskState::Rebuilding | TaskState::RebuildSpawning)
                    ) =>
                {
                    InstanceUpdate {
                        vm_state: Some(VmState::Error),
                        task_state: Some(None),
                        power_state: Some(actual.unwrap_or(PowerState::NoState)),
                        ..InstanceUpdate::default()
                    }
                }
                (VmState::Active, None) => InstanceUpdate {
                    // The hypervisor lost the guest (a host reboot):
                    // Nova's NOSTATE, the power sync then stops it.
                    power_state: Some(PowerState::NoState),
                    ..InstanceUpdate::default()
                },
                (VmState::Stopped, Some(PowerState::Running)) => InstanceUpdate {
                    vm_state: Some(VmState::Active),
                    task_state: Some(None),
                    power_state: Some(PowerState::Running),
                    ..InstanceUpdate::default()
                },
                (_, _) if inst.task_state.is_some() => InstanceUpdate {
                    // An interrupted stop/start/reboot: settle on what is real.
                    task_state: Some(None),
                    power_state: Some(actual.unwrap_or(PowerState::Shutdown)),
                    ..InstanceUpdate::default()
                },
                _ => continue,
            };
            self.update(&ctx, id, None, u).await?;
        }
        Ok(resume)
    }

    /// Destroys guests that no live instance on this host stands behind
    /// (deleted meanwhile, or moved away). Returns how many went.
    pub async fn reap_guests(
        &self,
        mine: &[Instance],
        running: &[(InstanceId, PowerState)],
    ) -> usize {
        let mut reaped = 0;
        for (vm_id, _) in running {
            if !mine.iter().any(|i| i.id == *vm_id && !i.deleted) {
                tracing::info!(host = %self.host, instance = %vm_id, "reconciler: destroying a guest with no instance behind it");
                match self.driver.destroy(*vm_id).await {
                    Ok(()) => reaped += 1,
                    Err(e) => {
                        tracing::warn!(instance = %vm_id, error = %e, "cannot destroy a guest with no instance")
                    }
                }
            }
        }
        reaped
    }

    /// One run of the agent's reconciler: guests with no instance go.
    pub async fn reconcile_guests(&self) -> Result<usize> {
        // Listed first: a guest defined after the instances were read
        // belongs to one of them.
        let running = self.driver.list().await;
        let mine = self.conductor.instances_on_host(&self.host).await?;
        Ok(self.reap_guests(&mine, &running).await)
    }

    fn external_event(&self, a: rpc::ExternalEventArgs) {
        if !self
            .waiters
            .deliver(&a.instance_id.to_string(), &a.name, &a.tag, &a.status)
        {
            tracing::debug!(instance = %a.instance_id, event = %a.name, tag = %a.tag, "external event nobody waits for");
        }
    }

    async fn dispatch(&self, env: &Envelope) -> Result<serde_json::Value> {
        let ctx = &env.context;
        trace::queued(13, env, trace::instance_of(env).as_deref());
        match env.method.as_str() {
            rpc::BUILD_AND_RUN => self.build(ctx, args(env)?).await?,
            rpc::STOP => {
                let a: rpc::InstanceArgs = args(env)?;
                self.power(ctx, a.instance_id, TaskState::PoweringOff)
                    .await?
            }
            rpc::START => {
                let a: rpc::InstanceArgs = args(env)?;
                self.power(ctx, a.instance_id, TaskState::PoweringOn)
                    .await?
            }
            rpc::REBOOT => {
                let a: rpc::RebootArgs = args(env)?;
                let during = if a.hard {
                    TaskState::RebootingHard
                } else {
                    TaskState::Rebooting
                };
                self.power(ctx, a.instance_id, during).await?
            }
            rpc::image_actions::REBUILD => rebuild::rebuild(self, ctx, args(env)?).await?,
            rpc::image_actions::SNAPSHOT => snapshot::snapshot(self, ctx, args(env)?).await?,
            rpc::ATTACH_VOLUME => {
                let attached = self.attach_volume(args(env)?).await?;
                return Ok(serde_json::to_value(attached)?);
            }
            rpc::DETACH_VOLUME => {
                let a: rpc::VolumeArgs = args(env)?;
                self.driver
                    .detach_volume(a.instance_id, guest_device(&a.device))
                    .await
                    .map_err(|e| ComputeError::Internal(e.to_string()))?
            }
            rpc::TERMINATE => {
                let a: rpc::InstanceArgs = args(env)?;
                self.terminate(ctx, a.instance_id).await?
            }
            // Casts from an API older than `compute_events.<host>`.
            rpc::EXTERNAL_EVENT => self.external_event(args(env)?),
            rpc::CONSOLE => {
                let a: rpc::ConsoleArgs = args(env)?;
                let text = self
                    .driver
                    .console_output(a.instance_id)
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

/// The driver's name of a device (`vdb`) from Nova's (`/dev/vdb`).
fn guest_device(device: &str) -> &str {
    device.strip_prefix("/dev/").unwrap_or(device)
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

/// Runs the agent's reconciler every `every` until the task is aborted.
pub async fn reconcile_loop(agent: Arc<Agent>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match agent.reconcile_guests().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(host = %agent.host, reaped = n, "reconciler run destroyed guests with no instance")
            }
            Err(e) => tracing::warn!(host = %agent.host, error = %e, "agent reconciler run failed"),
        }
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
