//! The agent's build saga (seed steps 13–47), `build-<instance>-<attempt>`,
//! its log kept by the conductor:
//!
//! ```text
//!  take            scheduling -> spawning (the build is ours)
//!  fetch_image  ↔  release the cache's hold        output: the cached image
//!  allocate_network ↔ delete/unbind the ports      output: the VIFs
//!  boot_volume  ↔  delete the attachment          output: the boot volume
//!                  (boot from volume only: the user's volume, or the one
//!                  the launch made from the image in the user's project)
//!  create_disks ↔  remove the instance's folder    output: the disks
//!  define_guest ↔  destroy the guest               (from the GuestSpec)
//!  start_guest  ↔  power it off                    (then wait for vif-plugged)
//!  mark_active     spawning -> active (a lost reply is not undone)
//! ```
//!
//! A redelivered or repeated `build_and_run_instance` resumes at the first
//! unfinished step; an agent that restarts resumes its builds. A failure
//! undoes every step run so far, the failing one included, and then the
//! conductor reschedules. The `GuestSpec` the driver gets is assembled
//! from the outputs of the steps before, never from the database row.

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
use crate::clients::volume::{volume_settled, VOLUME_WAIT};
use crate::clients::VifInfo;
use crate::db::instances::{Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::model::bdm::{BdmSource, BlockDeviceMapping};
use crate::model::guest::{device_name, GuestImage};
use crate::model::state::{PowerState, TaskState, VmState};
use crate::model::{DiskSource, DiskSpec, GuestSpec};
use crate::saga::{output, Outputs, Step};
use crate::trace;
use serde::{Deserialize, Serialize};
use stratus_common::ids::{AttachmentId, VolumeId};
use stratus_telemetry::Outcome as Traced;

pub const VIF_PLUGGED: &str = "network-vif-plugged";
pub const KIND: &str = "build";

pub fn saga_id(instance: &str, attempt: u32) -> String {
    format!("build-{instance}-{attempt}")
}

/// What the steps share while one build runs.
pub struct Build<'a> {
    pub agent: &'a Agent,
    pub ctx: &'a RequestContext,
    /// The instance as read when this run began: what the request asked
    /// for (flavor, image, networks, user data), which a build never changes.
    pub inst: &'a Instance,
    /// The service user's token: a build calls the image and network
    /// services as compute itself (resumes and reschedules have no user
    /// token, and none is ever kept), on the instance's project's behalf.
    pub token: String,
    /// `network-vif-plugged` waiters registered before binding; empty
    /// when the build resumed past its binding (the events came already).
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
            waiters: Mutex::new(Vec::new()),
        }
    }

    fn id(&self) -> String {
        self.inst.id.to_string()
    }

    fn image(&self) -> Option<ImageId> {
        self.inst.image_ref.parse().ok()
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

struct Take;
pub(crate) struct FetchImage;
struct AllocateNetwork;
struct BootVolume;
pub(crate) struct CreateDisks;
struct DefineGuest;
struct StartGuest;
struct MarkActive;

#[async_trait]
impl<'a> Step<Build<'a>> for Take {
    fn name(&self) -> &'static str {
        "take"
    }
    fn seed_step(&self) -> u16 {
        17
    }
    async fn run(&self, b: &Build<'a>, _done: &Outputs) -> Result<Value> {
        let take = InstanceUpdate {
            task_state: Some(Some(TaskState::Spawning)),
            ..InstanceUpdate::default()
        };
        match b
            .agent
            .update(b.ctx, b.inst.id, exp(&[Some(TaskState::Scheduling)]), take)
            .await
        {
            Ok(_) => Ok(Value::Null),
            // Taken by an earlier run whose record was lost: still ours.
            Err(ComputeError::Conflict(e)) => match b.agent.instance(b.ctx, b.inst.id).await? {
                i if b.agent.is_building_here(&i) => Ok(Value::Null),
                _ => Err(ComputeError::Conflict(e)),
            },
            Err(e) => Err(e),
        }
    }
    async fn undo(&self, _b: &Build<'a>, _done: &Outputs) -> Result<()> {
        // The conductor's reschedule or failure sets the state.
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for FetchImage {
    fn name(&self) -> &'static str {
        "fetch_image"
    }
    fn seed_step(&self) -> u16 {
        19
    }
    fn traces_itself(&self) -> bool {
        true
    }
    async fn run(&self, b: &Build<'a>, _done: &Outputs) -> Result<Value> {
        let image = b.inst.image_ref.as_str();
        let id = b.id();
        let res = Some(id.as_str());
        if image.is_empty() {
            trace::skipped(19, "image record", res, "boots from a volume");
            trace::skipped(21, "image bits", res, "boots from a volume");
            return Ok(Value::Null);
        }
        let mut cached: Option<CachedImage> = None;
        let record = "GET /v2/images/{id} (image record)";
        // Under the build's own action event, as Nova has it (a failure
        // shows there, with its error).
        let fetch = async {
            let Some(cache) = &b.agent.services.cache else {
                let images = &b.agent.services.images;
                let info = trace::time(19, record, res, images.image_get(&b.token, image));
                info.await?.require_active()?;
                trace::skipped(21, "image bits", res, "no image cache on this host");
                return Ok(());
            };
            let image_id: ImageId = image.parse().map_err(|_| {
                ComputeError::BadRequest(format!("Image {image} could not be found."))
            })?;
            // The record is read once: the cache checks the bits
            // against the same answer.
            let meta = trace::time(19, record, res, cache.record(image_id, &b.token))
                .await
                .map_err(|e| match e {
                    // Retried by the saga, as the image client's own.
                    CacheError::Unavailable(e) => {
                        ComputeError::Unavailable(format!("The image service is unavailable: {e}"))
                    }
                    e => cache_err(image, e),
                })?;
            let t = trace::start(21, "image cache: image bits", res);
            match cache.ensure_record(&meta, &b.token).await {
                Ok(c) => {
                    let detail = if c.hit { "cached" } else { "fetched" };
                    t.end(Traced::Ok, Some(detail.to_owned()));
                    cached = Some(c);
                    Ok(())
                }
                Err(e) => {
                    let e = cache_err(image, e);
                    t.end(Traced::Error, Some(e.to_string()));
                    Err(e)
                }
            }
        };
        fetch.await?;
        output(&cached)
    }
    async fn undo(&self, b: &Build<'a>, _done: &Outputs) -> Result<()> {
        if let (Some(cache), Some(image)) = (&b.agent.services.cache, b.image()) {
            cache.release(image, b.inst.id).await;
        }
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for AllocateNetwork {
    fn name(&self) -> &'static str {
        "allocate_network"
    }
    fn seed_step(&self) -> u16 {
        26
    }
    fn traces_itself(&self) -> bool {
        true
    }
    async fn run(&self, b: &Build<'a>, _done: &Outputs) -> Result<Value> {
        let a = b.agent;
        let id = b.id();
        let res = Some(id.as_str());
        let wanted = b.inst.networks.entries();
        if wanted.is_empty() {
            trace::skipped(26, "ports", res, "no network requested");
            return output(&Vec::<VifInfo>::new());
        }
        let az = b
            .inst
            .availability_zone
            .clone()
            .unwrap_or_else(|| a.cfg.default_availability_zone.clone());
        let owner = format!("compute:{az}");
        let wait = a.cfg.vif_plugging_timeout > 0;
        let mut vifs: Vec<VifInfo> = Vec::new();
        for n in wanted {
            let (port_id, preexisting) = match (n.port, n.network) {
                (Some(p), _) => (p.to_string(), true),
                (None, Some(net)) => {
                    let net = net.to_string();
                    let made = a.services.networks.port_create(
                        &b.token,
                        &net,
                        &id,
                        &b.inst.project_id,
                        &b.inst.security_groups,
                    );
                    match trace::time(26, "POST /v2.0/ports (port create)", res, made).await? {
                        Some(p) => (p.id, false),
                        // No network service behind this agent: no port.
                        None => continue,
                    }
                }
                (None, None) => continue,
            };
            if wait {
                let w = a.waiters.register(&id, VIF_PLUGGED, &port_id);
                lock(&b.waiters).push(w);
            }
            let bind = a
                .services
                .networks
                .port_bind(&b.token, &port_id, &a.host, &id, &owner);
            let bound = trace::time(26, "PUT /v2.0/ports/{id} (port bind)", res, bind).await?;
            let info = a.services.networks.vif_info(&b.token, &bound);
            let mut vif = trace::time(38, "network info of the port", res, info).await?;
            vif.preexisting = preexisting;
            vifs.push(vif);
        }
        if vifs.is_empty() {
            trace::skipped(26, "ports", res, "no network service behind this agent");
        }
        // Saved through the conductor: the API's `addresses` and the
        // metadata service read it from the database.
        let u = InstanceUpdate {
            network_info: Some(vifs.clone()),
            ..InstanceUpdate::default()
        };
        let save = a.update(b.ctx, b.inst.id, exp(&[Some(TaskState::Spawning)]), u);
        trace::time(
            37,
            "save network info (conductor instance_update)",
            res,
            save,
        )
        .await?;
        output(&vifs)
    }
    async fn undo(&self, b: &Build<'a>, _done: &Outputs) -> Result<()> {
        b.agent.waiters.clear(&b.id());
        lock(&b.waiters).clear();
        b.agent.deallocate_network(b.ctx, b.inst).await?;
        // Forget the saved ports so that a rescheduled or failed server
        // shows no address that no longer exists. Gone servers need nothing.
        let u = InstanceUpdate {
            network_info: Some(Vec::new()),
            ..InstanceUpdate::default()
        };
        match b.agent.update(b.ctx, b.inst.id, None, u).await {
            Ok(_) | Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The guest's device of a boot volume.
pub const ROOT_DEVICE: &str = "/dev/vda";
const BOOT_VOLUME: &str = "boot_volume";

/// What [`BootVolume`] made ready: the volume, its attachment and the disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BootDisk {
    pub volume_id: VolumeId,
    pub attachment_id: AttachmentId,
    /// Made by the build itself, with the service user's token: only in
    /// logs from before the launch made boot volumes (its undo deletes it).
    #[serde(default)]
    pub created: bool,
    pub disk: DiskSpec,
}

/// The request's boot volume mapping, if the server boots from a volume.
pub fn boot_mapping(inst: &Instance) -> Option<&BlockDeviceMapping> {
    inst.bdm.iter().find(|m| m.boots_from_volume())
}

fn mapped_volume(m: &BlockDeviceMapping) -> Result<VolumeId> {
    let id = m.uuid.clone().unwrap_or_default();
    id.parse()
        .map_err(|_| ComputeError::BadRequest(format!("Volume {id} could not be found.")))
}

/// The boot volume: the step's output, the user's volume, or the one the
/// launch made from the image.
fn known_boot_volume(m: &BlockDeviceMapping, done: &Outputs) -> Result<Option<VolumeId>> {
    if let Some(d) = done.get::<BootDisk>(BOOT_VOLUME)? {
        return Ok(Some(d.volume_id));
    }
    match m.source_type {
        BdmSource::Volume => Ok(mapped_volume(m).ok()),
        _ => Ok(m.volume_id),
    }
}

/// Waits while the volume is being made; its state once it is not.
async fn settled_volume(b: &Build<'_>, id: &VolumeId) -> Result<crate::clients::VolumeInfo> {
    volume_settled(b.agent.services.volumes.as_ref(), &b.token, id, VOLUME_WAIT).await
}

/// The server is being deleted (or is gone): what unwinds its build then
/// is the delete.
async fn being_deleted(b: &Build<'_>) -> Result<bool> {
    match b.agent.instance(b.ctx, b.inst.id).await {
        Ok(i) => Ok(i.deleted || i.task_state == Some(TaskState::Deleting)),
        Err(ComputeError::NotFound(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for BootVolume {
    fn name(&self) -> &'static str {
        BOOT_VOLUME
    }
    fn seed_step(&self) -> u16 {
        39
    }
    fn traces_itself(&self) -> bool {
        true
    }
    async fn run(&self, b: &Build<'a>, _done: &Outputs) -> Result<Value> {
        let id = b.id();
        let res = Some(id.as_str());
        let Some(m) = boot_mapping(b.inst) else {
            trace::skipped(39, "boot volume", res, "no volume");
            trace::skipped(48, "volume in the domain", res, "no volume");
            return Ok(Value::Null);
        };
        let what = "boot volume: attachment through the volume API";
        let r = trace::time(39, what, res, self.attach(b, m)).await;
        trace::skipped(
            48,
            "volume in the domain",
            res,
            "given to the hypervisor with the domain's definition (43)",
        );
        r
    }
    async fn undo(&self, b: &Build<'a>, done: &Outputs) -> Result<()> {
        self.detach(b, done).await
    }
}

impl BootVolume {
    async fn attach(&self, b: &Build<'_>, m: &BlockDeviceMapping) -> Result<Value> {
        let a = b.agent;
        let vols = &a.services.volumes;
        let id = b.id();
        let volume = match m.source_type {
            BdmSource::Volume => mapped_volume(m)?,
            // Made by the launch, with the user's token (agents have only
            // the service user's, which would make it the service's).
            BdmSource::Image | BdmSource::Snapshot => m.volume_id.ok_or_else(|| {
                ComputeError::BadRequest(format!(
                    "Block Device Mapping is Invalid: no volume was made for the boot disk of {id}."
                ))
            })?,
            other => {
                return Err(ComputeError::BadRequest(format!(
                    "Block Device Mapping is Invalid: booting from a {other:?} mapping to a volume is not supported."
                )))
            }
        };
        let info = settled_volume(b, &volume).await?;
        let ours = info
            .attachments
            .iter()
            .find(|(_, server)| server.as_deref() == Some(id.as_str()))
            .map(|(att, _)| *att);
        if ours.is_none() && info.status != "available" {
            return Err(ComputeError::BadRequest(format!(
                "Volume {volume} did not finish being created even after we waited {} seconds. And its status is {}.",
                VOLUME_WAIT.as_secs(),
                info.status
            )));
        }
        let attachment = match ours {
            Some(att) => att,
            None => {
                vols.attachment_reserve(&b.token, &volume, &b.inst.id)
                    .await?
            }
        };
        // The attach saga's agent side, without a guest yet: the
        // connector gives the connection info, and the attachment is
        // completed (the volume is `in-use`).
        let connection_info = a.connect_volume(&b.token, &attachment, ROOT_DEVICE).await?;
        vols.attachment_complete(&b.token, &attachment).await?;
        let bdm = crate::db::bdms::VolumeBdm {
            id: uuid::Uuid::new_v4().to_string(),
            instance_id: b.inst.id,
            volume_id: volume,
            device_name: ROOT_DEVICE.to_owned(),
            attachment_id: Some(attachment),
            status: crate::db::bdms::BdmStatus::Attached,
            delete_on_termination: m.delete_on_termination,
            connection_info: Some(connection_info.clone()),
            tag: m.tag.clone(),
        };
        a.conductor
            .bdm_save(b.ctx, serde_json::to_value(&bdm)?)
            .await?;
        output(&BootDisk {
            volume_id: volume,
            attachment_id: attachment,
            created: false,
            disk: DiskSpec {
                device: device_name(0),
                source: DiskSource::Volume {
                    volume_id: volume.to_string(),
                    connection_info,
                },
                size_gb: m.volume_size.unwrap_or(info.size),
                boot_index: Some(0),
            },
        })
    }
    async fn detach(&self, b: &Build<'_>, done: &Outputs) -> Result<()> {
        let Some(m) = boot_mapping(b.inst) else {
            return Ok(());
        };
        let Some(volume) = known_boot_volume(m, done)? else {
            return Ok(());
        };
        let vols = &b.agent.services.volumes;
        let id = b.id();
        let info = match settled_volume(b, &volume).await {
            Ok(v) => Some(v),
            Err(ComputeError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        for (att, server) in info.iter().flat_map(|v| v.attachments.iter()) {
            if server.as_deref() == Some(id.as_str()) {
                vols.attachment_delete(&b.token, att).await?;
            }
        }
        let forget = crate::rpc::BdmDeleteArgs {
            instance_id: b.inst.id,
            volume_id: volume,
        };
        b.agent.conductor.bdm_delete(b.ctx, &forget).await?;
        // A volume the launch made is the server's: it waits for the next
        // host, or for the server's delete. When that delete is what
        // unwinds this build, the volume goes here: the delete could not
        // take it while this build had it attached.
        let legacy = done
            .get::<BootDisk>(BOOT_VOLUME)?
            .is_some_and(|d| d.created);
        let with_server = m.boots_from_new_volume() && m.delete_on_termination;
        if info.is_some() && (legacy || (with_server && being_deleted(b).await?)) {
            vols.volume_delete(&b.token, &volume).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for CreateDisks {
    fn name(&self) -> &'static str {
        "create_disks"
    }
    fn seed_step(&self) -> u16 {
        43
    }
    async fn run(&self, b: &Build<'a>, done: &Outputs) -> Result<Value> {
        let dir = instance_dir(b.agent, &b.id());
        let cached: Option<CachedImage> = done.get("fetch_image")?;
        let root_gb = b.inst.flavor.disk;
        let mut disks = Vec::new();
        let from_volume = boot_mapping(b.inst).is_some();
        match (
            &cached,
            &b.agent.services.cache,
            b.agent.driver.needs_disk(),
        ) {
            _ if from_volume => {}
            (Some(cached), Some(cache), true) => {
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("{}: {e}", dir.display())))?;
                let size = u64::try_from(root_gb).unwrap_or(0);
                let path = cache
                    .create_overlay(cached, &dir, size)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("disk of {}: {e}", b.id())))?;
                disks.push(DiskSpec {
                    device: device_name(0),
                    source: DiskSource::Image {
                        image: cached.image_id,
                        path,
                        base: cached.path.clone(),
                    },
                    size_gb: root_gb,
                    boot_index: Some(0),
                });
            }
            // No local disk to make (the fake driver, or no image cache);
            // boot from volume has no local root disk.
            _ if !b.inst.image_ref.is_empty() => disks.push(DiskSpec {
                device: device_name(0),
                source: DiskSource::Local {
                    path: dir.join("disk"),
                },
                size_gb: root_gb,
                boot_index: Some(0),
            }),
            _ => {}
        }
        if let (Some(_), Some(cache), true, false) = (
            &cached,
            &b.agent.services.cache,
            b.agent.driver.needs_disk(),
            from_volume,
        ) {
            boot_files(b, cache, &dir).await?;
        }
        output(&disks)
    }
    async fn undo(&self, b: &Build<'a>, _done: &Outputs) -> Result<()> {
        remove_instance_dir(b.agent, &b.id()).await;
        Ok(())
    }
}

/// Direct kernel boot: the image's `kernel_id` and `ramdisk_id` images,
/// fetched into the host's cache and linked into the guest's folder as
/// `kernel` and `ramdisk` (where the driver looks for them), so that the
/// guest keeps them however the cache is cleaned.
async fn boot_files(
    b: &Build<'_>,
    cache: &stratus_imagecache::ImageCache,
    dir: &std::path::Path,
) -> Result<()> {
    for (property, file) in [("kernel_id", "kernel"), ("ramdisk_id", "ramdisk")] {
        let Some(id) = b.inst.image_properties.get(property) else {
            continue;
        };
        let what = if file == "kernel" {
            "Kernel"
        } else {
            "Ramdisk"
        };
        let missing = || ComputeError::BadRequest(format!("{what} image {id} could not be found."));
        let image: ImageId = id.parse().map_err(|_| missing())?;
        let got = cache.ensure(image, &b.token).await.map_err(|e| match e {
            CacheError::NotFound | CacheError::NotActive(_) => missing(),
            other => ComputeError::Internal(format!("{what} image {id}: {other}")),
        })?;
        let dest = dir.join(file);
        let _ = tokio::fs::remove_file(&dest).await;
        if tokio::fs::hard_link(&got.path, &dest).await.is_err() {
            tokio::fs::copy(&got.path, &dest)
                .await
                .map_err(|e| ComputeError::Internal(format!("{}: {e}", dest.display())))?;
        }
    }
    Ok(())
}

/// Removes the instance's folder on this host (its overlay disk).
pub async fn remove_instance_dir(agent: &Agent, id: &str) {
    let dir = instance_dir(agent, id);
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove instance folder");
        }
    }
}

/// How the hypervisor is named in trace events.
fn hypervisor(b: &Build<'_>) -> &'static str {
    if b.agent.driver.resources().hypervisor_type == "fake" {
        "fake driver: no hypervisor"
    } else {
        "libvirt domain"
    }
}

/// The guest as the earlier steps made it ready.
pub fn guest_spec(b: &Build<'_>, done: &Outputs) -> Result<GuestSpec> {
    let inst = b.inst;
    Ok(GuestSpec {
        id: inst.id,
        name: inst.name.clone(),
        hostname: inst.hostname.clone(),
        project_id: inst.project_id.clone(),
        vcpus: inst.flavor.vcpus,
        memory_mb: inst.flavor.ram,
        image: b.image().map(|id| GuestImage {
            id,
            properties: inst.image_properties.clone(),
        }),
        disks: done
            .get::<BootDisk>(BOOT_VOLUME)?
            .map(|d| d.disk)
            .into_iter()
            .chain(
                done.get::<Vec<DiskSpec>>("create_disks")?
                    .unwrap_or_default(),
            )
            .collect(),
        vifs: done.get("allocate_network")?.unwrap_or_default(),
        user_data: inst.user_data.clone(),
        key_data: inst.key_data.clone(),
        metadata: inst.metadata.clone(),
        dir: instance_dir(b.agent, &b.id()),
    })
}

#[async_trait]
impl<'a> Step<Build<'a>> for DefineGuest {
    fn name(&self) -> &'static str {
        "define_guest"
    }
    fn seed_step(&self) -> u16 {
        43
    }
    fn traces_itself(&self) -> bool {
        true
    }
    async fn run(&self, b: &Build<'a>, done: &Outputs) -> Result<Value> {
        let spec = guest_spec(b, done)?;
        let id = b.id();
        let what = format!("define the guest ({})", hypervisor(b));
        let define = async {
            b.agent
                .driver
                .define(&spec)
                .await
                .map_err(|e| ComputeError::Internal(e.to_string()))
        };
        trace::time(43, what, Some(&id), define).await?;
        Ok(Value::Null)
    }
    async fn undo(&self, b: &Build<'a>, _done: &Outputs) -> Result<()> {
        b.agent
            .driver
            .destroy(b.inst.id)
            .await
            .map_err(|e| ComputeError::Internal(e.to_string()))
    }
}

#[async_trait]
impl<'a> Step<Build<'a>> for StartGuest {
    fn name(&self) -> &'static str {
        "start_guest"
    }
    fn seed_step(&self) -> u16 {
        43
    }
    fn traces_itself(&self) -> bool {
        true
    }
    async fn run(&self, b: &Build<'a>, _done: &Outputs) -> Result<Value> {
        let id = b.id();
        let res = Some(id.as_str());
        // The ports first: a real guest opens its taps when it starts, and
        // the L2 agent makes them (`network-vif-plugged` says it has).
        wait_plugged(b).await?;
        let what = format!("start the guest ({})", hypervisor(b));
        let start = async {
            b.agent
                .driver
                .start(b.inst.id)
                .await
                .map_err(|e| ComputeError::Internal(e.to_string()))
        };
        trace::time(43, what, res, start).await?;
        let reason = if b.inst.network_info.is_empty() && b.inst.networks.entries().is_empty() {
            "no port"
        } else {
            "the hypervisor plugs the VIFs as the guest starts (43)"
        };
        trace::skipped(44, "plug the VIFs", res, reason);
        Ok(Value::Null)
    }
    async fn undo(&self, b: &Build<'a>, _done: &Outputs) -> Result<()> {
        match b.agent.driver.power_off(b.inst.id).await {
            Ok(()) | Err(crate::virt::VirtError::NotFound(_)) => Ok(()),
            Err(e) => Err(ComputeError::Internal(e.to_string())),
        }
    }
}

/// Waits for `network-vif-plugged` of every port this run bound (none
/// when the build resumed past its binding: the events came already).
async fn wait_plugged(b: &Build<'_>) -> Result<()> {
    let a = b.agent;
    let id = b.id();
    let res = Some(id.as_str());
    let what = format!("wait for {VIF_PLUGGED}");
    let waiters = std::mem::take(&mut *lock(&b.waiters));
    if waiters.is_empty() {
        let reason = if a.cfg.vif_plugging_timeout == 0 {
            "vif_plugging_timeout is 0"
        } else {
            "no port bound by this run"
        };
        trace::skipped(38, what, res, reason);
        return Ok(());
    }
    let timeout = Duration::from_secs(a.cfg.vif_plugging_timeout);
    let t = trace::start(38, what, res);
    let outcome = events::wait_all(waiters, timeout).await;
    match &outcome {
        Outcome::Completed => t.ok(),
        Outcome::Failed(tag, status) => {
            t.end(Traced::Error, Some(format!("port {tag} reported {status}")))
        }
        Outcome::TimedOut(tags) => t.end(
            Traced::Error,
            Some(format!("timed out waiting for {}", tags.join(", "))),
        ),
    }
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

#[async_trait]
impl<'a> Step<Build<'a>> for MarkActive {
    fn name(&self) -> &'static str {
        "mark_active"
    }
    fn seed_step(&self) -> u16 {
        47
    }
    fn hands_off(&self) -> bool {
        true
    }
    async fn run(&self, b: &Build<'a>, _done: &Outputs) -> Result<Value> {
        let console = b
            .agent
            .driver
            .console_output(b.inst.id)
            .await
            .unwrap_or_default();
        let u = InstanceUpdate {
            vm_state: Some(VmState::Active),
            task_state: Some(None),
            power_state: Some(PowerState::Running),
            launched_at: Some(Some(stratus_common::time::to_db(
                stratus_common::time::now(),
            ))),
            console_log: Some(console),
            ..InstanceUpdate::default()
        };
        match b
            .agent
            .update(b.ctx, b.inst.id, exp(&[Some(TaskState::Spawning)]), u)
            .await
        {
            Ok(_) => Ok(Value::Null),
            // The reply to an earlier run that committed was lost: done.
            Err(ComputeError::Conflict(e)) => match b.agent.instance(b.ctx, b.inst.id).await? {
                i if !i.deleted
                    && i.vm_state == VmState::Active
                    && i.host.as_deref() == Some(b.agent.host.as_str()) =>
                {
                    Ok(Value::Null)
                }
                _ => Err(ComputeError::Conflict(e)),
            },
            Err(e) => Err(e),
        }
    }
    async fn undo(&self, _b: &Build<'a>, _done: &Outputs) -> Result<()> {
        // The last step: nothing after it can fail.
        Ok(())
    }
}

pub fn steps<'a>() -> Vec<Box<dyn Step<Build<'a>>>> {
    vec![
        Box::new(Take),
        Box::new(FetchImage),
        Box::new(AllocateNetwork),
        Box::new(BootVolume),
        Box::new(CreateDisks),
        Box::new(DefineGuest),
        Box::new(StartGuest),
        Box::new(MarkActive),
    ]
}
