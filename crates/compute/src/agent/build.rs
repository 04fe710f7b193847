//! The agent's build saga (seed steps 19–38): fetch the image into the
//! host's cache, make the instance's disk when the driver needs one,
//! create and bind one port per requested network (a `network-vif-plugged`
//! waiter registered before each binding), spawn, wait for the events, and
//! mark the server ACTIVE. Any failure undoes every step run so far, the
//! failing one included (each undo tolerates partial or absent work), so a
//! failed build leaves no port, overlay or guest behind.
//!
//! Agents never open the database, so this saga's log is not persisted:
//! after an agent restart `Agent::reconcile` finds the BUILDING instance
//! and cleans up the same things before rescheduling it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use stratus_common::ids::ImageId;
use stratus_common::RequestContext;
use stratus_imagecache::{CacheError, CachedImage};

use super::events::{self, Outcome, Waiter};
use super::{exp, Agent};
use crate::clients::VifInfo;
use crate::db::instances::{Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::saga::Step;
use crate::state::{power, task, vm};

pub const VIF_PLUGGED: &str = "network-vif-plugged";

/// What the steps share while one build runs.
pub struct Build<'a> {
    pub agent: &'a Agent,
    pub ctx: &'a RequestContext,
    pub inst: &'a Instance,
    /// The user's token, or the service token when none came along.
    pub token: String,
    cached: Mutex<Option<CachedImage>>,
    waiters: Mutex<Vec<Waiter>>,
}

impl<'a> Build<'a> {
    pub fn new(
        agent: &'a Agent,
        ctx: &'a RequestContext,
        inst: &'a Instance,
        token: String,
    ) -> Self {
        Self {
            agent,
            ctx,
            inst,
            token,
            cached: Mutex::new(None),
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn id(&self) -> String {
        self.inst.id.to_string()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cache_err(image: &str, e: CacheError) -> ComputeError {
    match e {
        CacheError::NotFound => {
            ComputeError::BadRequest(format!("Image {image} could not be found."))
        }
        CacheError::NotActive(_) => {
            ComputeError::BadRequest(format!("Image {image} is not active."))
        }
        other => ComputeError::Internal(format!("image {image}: {other}")),
    }
}

/// The instance's own folder on this host (its overlay disk).
pub fn instance_dir(agent: &Agent, id: &str) -> PathBuf {
    agent.services.instances_dir.join(id)
}

struct FetchImage;
struct CreateDisk;
struct AllocateNetwork;
struct Spawn;
struct MarkActive;

#[async_trait]
impl<'a> Step<Build<'a>> for FetchImage {
    fn name(&self) -> &'static str {
        "fetch_image"
    }
    async fn run(&self, b: &Build<'a>) -> Result<()> {
        let image = b.inst.image_ref.as_str();
        if image.is_empty() {
            return Ok(());
        }
        let id = b.id();
        b.agent
            .with_event(b.ctx, &id, "compute__fetch_image", || async {
                let info = b.agent.services.images.image_get(&b.token, image).await?;
                info.require_active()?;
                if let Some(cache) = &b.agent.services.cache {
                    let image_id: ImageId = image.parse().map_err(|_| {
                        ComputeError::BadRequest(format!("Image {image} could not be found."))
                    })?;
                    let c = cache
                        .ensure(image_id, &b.token)
                        .await
                        .map_err(|e| cache_err(image, e))?;
                    *lock(&b.cached) = Some(c);
                }
                Ok(())
            })
            .await
    }
    async fn undo(&self, b: &Build<'a>) -> Result<()> {
        release_image(b.agent, b.inst).await;
        Ok(())
    }
}

/// Drops the instance's hold on its cached image (and its overlay folder).
pub async fn release_image(agent: &Agent, inst: &Instance) {
    if let (Some(cache), Ok(image)) = (&agent.services.cache, inst.image_ref.parse::<ImageId>()) {
        cache.release(image, inst.id).await;
    }
    let dir = instance_dir(agent, &inst.id.to_string());
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove instance folder");
        }
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for CreateDisk {
    fn name(&self) -> &'static str {
        "create_disk"
    }
    async fn run(&self, b: &Build<'a>) -> Result<()> {
        if !b.agent.driver.needs_disk() {
            return Ok(());
        }
        let Some(cache) = &b.agent.services.cache else {
            return Ok(());
        };
        let cached = lock(&b.cached).clone();
        let Some(cached) = cached else {
            // Boot from volume: no local root disk from an image.
            return Ok(());
        };
        let dir = instance_dir(b.agent, &b.id());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ComputeError::Internal(format!("{}: {e}", dir.display())))?;
        let size = u64::try_from(b.inst.flavor.disk).unwrap_or(0);
        cache
            .create_overlay(&cached, &dir, size)
            .await
            .map_err(|e| ComputeError::Internal(format!("disk of {}: {e}", b.id())))?;
        Ok(())
    }
    async fn undo(&self, b: &Build<'a>) -> Result<()> {
        release_image(b.agent, b.inst).await;
        Ok(())
    }
}

/// The requested networks: `(network id, None)` for a new port,
/// `(network id, Some(port))` for a port the user brought.
pub fn requested(networks: &Value) -> Vec<(String, Option<String>)> {
    networks
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|n| {
                    let port = n.get("port").and_then(Value::as_str).map(str::to_owned);
                    let net = n.get("uuid").and_then(Value::as_str).unwrap_or("");
                    if port.is_none() && net.is_empty() {
                        return None;
                    }
                    Some((net.to_owned(), port))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[async_trait]
impl<'a> Step<Build<'a>> for AllocateNetwork {
    fn name(&self) -> &'static str {
        "allocate_network"
    }
    async fn run(&self, b: &Build<'a>) -> Result<()> {
        let a = b.agent;
        let id = b.id();
        let wanted = requested(&b.inst.networks);
        if wanted.is_empty() {
            return Ok(());
        }
        let service = a.services.tokens.token().await?;
        let az = b
            .inst
            .availability_zone
            .clone()
            .unwrap_or_else(|| a.cfg.default_availability_zone.clone());
        let owner = format!("compute:{az}");
        let wait = a.cfg.vif_plugging_timeout > 0;
        let mut vifs: Vec<VifInfo> = Vec::new();
        for (net, port) in wanted {
            let (port_id, preexisting) = match port {
                Some(p) => (p, true),
                None => match a.services.networks.port_create(&b.token, &net, &id).await? {
                    Some(p) => (p.id, false),
                    // No network service behind this agent: no port.
                    None => continue,
                },
            };
            if wait {
                let w = a.waiters.register(&id, VIF_PLUGGED, &port_id);
                lock(&b.waiters).push(w);
            }
            let bound = a
                .services
                .networks
                .port_bind(&service, &port_id, &a.host, &id, &owner)
                .await?;
            let mut vif = a.services.networks.vif_info(&service, &bound).await?;
            vif.preexisting = preexisting;
            vifs.push(vif);
        }
        // Saved through the conductor: the API's `addresses` and the
        // metadata service read it from the database.
        let u = InstanceUpdate {
            network_info: Some(vifs),
            ..InstanceUpdate::default()
        };
        a.update(b.ctx, &id, exp(&[Some(task::SPAWNING)]), u)
            .await?;
        Ok(())
    }
    async fn undo(&self, b: &Build<'a>) -> Result<()> {
        b.agent.waiters.clear(&b.id());
        lock(&b.waiters).clear();
        b.agent.deallocate_network(b.ctx, b.inst).await?;
        // Forget the saved ports so that a rescheduled or failed server
        // shows no address that no longer exists. Gone servers need nothing.
        let u = InstanceUpdate {
            network_info: Some(Vec::new()),
            ..InstanceUpdate::default()
        };
        match b.agent.update(b.ctx, &b.id(), None, u).await {
            Ok(_) | Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for Spawn {
    fn name(&self) -> &'static str {
        "spawn"
    }
    async fn run(&self, b: &Build<'a>) -> Result<()> {
        let a = b.agent;
        a.driver
            .spawn(b.inst)
            .await
            .map_err(|e| ComputeError::Internal(e.to_string()))?;
        let waiters = std::mem::take(&mut *lock(&b.waiters));
        if waiters.is_empty() {
            return Ok(());
        }
        let timeout = Duration::from_secs(a.cfg.vif_plugging_timeout);
        let outcome = events::wait_all(waiters, timeout).await;
        a.waiters.clear(&b.id());
        match outcome {
            Outcome::Completed => Ok(()),
            Outcome::Failed(tag, status) => Err(ComputeError::Internal(format!(
                "Virtual Interface creation failed: port {tag} reported {status}"
            ))),
            Outcome::TimedOut(tags) if a.cfg.vif_plugging_is_fatal => {
                Err(ComputeError::Internal(format!(
                    "Virtual Interface creation failed: no {VIF_PLUGGED} event for port(s) {} \
                     within {} s",
                    tags.join(", "),
                    a.cfg.vif_plugging_timeout
                )))
            }
            Outcome::TimedOut(tags) => {
                tracing::warn!(instance = %b.id(), ports = ?tags, "vif plugging timed out; going on (vif_plugging_is_fatal = false)");
                Ok(())
            }
        }
    }
    async fn undo(&self, b: &Build<'a>) -> Result<()> {
        let _ = b.agent.driver.destroy(&b.id()).await;
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for MarkActive {
    fn name(&self) -> &'static str {
        "mark_active"
    }
    async fn run(&self, b: &Build<'a>) -> Result<()> {
        let id = b.id();
        let console = b.agent.driver.console_output(&id).await.unwrap_or_default();
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
        b.agent
            .update(b.ctx, &id, exp(&[Some(task::SPAWNING)]), u)
            .await?;
        Ok(())
    }
    async fn undo(&self, _b: &Build<'a>) -> Result<()> {
        // The last step: nothing after it can fail.
        Ok(())
    }
}

pub fn steps<'a>() -> Vec<Box<dyn Step<Build<'a>>>> {
    vec![
        Box::new(FetchImage),
        Box::new(CreateDisk),
        Box::new(AllocateNetwork),
        Box::new(Spawn),
        Box::new(MarkActive),
    ]
}
