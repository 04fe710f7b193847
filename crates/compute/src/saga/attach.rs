//! Attaching a volume to a server and detaching it, as sagas run by the
//! API (`attach-<server>-<volume>-<request>`, `detach-...`):
//!
//! ```text
//!  attach:
//!  reserve_device  ↔ forget the mapping      (the row makes a 2nd attach 400)
//!  reserve_volume  ↔ delete the attachment   (Cinder: available -> reserved)
//!  attach_on_host  ↔ detach from the guest   (agent: connector -> connection
//!                                             info, driver, os-complete)
//!  mark_attached                             (the mapping shows the volume)
//!
//!  detach:
//!  mark_detaching  ↔ back to attached
//!  detach_on_host  ↔ attach it again         (agent: driver)
//!  forget          ↔ the mapping back         (the row is removed)
//!  release_volume                            (Cinder: attachment deleted,
//!                                             the volume is available)
//! ```
//!
//! Every step is idempotent; the mapping row (with its attachment id) is
//! what a repeated step or an undo reads, so that a reservation is never
//! made twice nor left behind.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_common::ids::{AttachmentId, InstanceId, VolumeId};
use stratus_common::RequestContext;
use stratus_db::Db;

use super::{execute, loggable, output, Inject, Outputs, Step};
use crate::bus::Bus;
use crate::clients::Volumes;
use crate::db::bdms::{self, BdmStatus, VolumeBdm};
use crate::db::sagas::{SagaRecord, SagaState};
use crate::error::{ComputeError, Result};
use crate::rpc;

pub const ATTACH: &str = "attach";
pub const DETACH: &str = "detach";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Params {
    /// Without its token (see [`loggable`]).
    pub context: RequestContext,
    /// The mapping as the attach makes it (or as the detach found it).
    pub bdm: VolumeBdm,
    /// The agent whose guest gets (or loses) the disk.
    pub host: String,
}

pub struct VolumeSaga<'a> {
    pub db: &'a Db,
    pub bus: &'a Bus,
    pub volumes: &'a Volumes,
    /// The request's context with its token while the request runs.
    pub ctx: RequestContext,
    pub p: Params,
}

impl VolumeSaga<'_> {
    fn args(&self, attachment: AttachmentId) -> rpc::VolumeArgs {
        rpc::VolumeArgs {
            instance_id: self.p.bdm.instance_id,
            volume_id: self.p.bdm.volume_id,
            attachment_id: attachment,
            device: self.p.bdm.device_name.clone(),
        }
    }

    async fn current(&self) -> Result<Option<VolumeBdm>> {
        let b = &self.p.bdm;
        Ok(
            bdms::bdm_get(&mut *self.db.conn().await?, &b.instance_id, &b.volume_id)
                .await?
                .filter(|r| r.id == b.id),
        )
    }

    /// The attachment of the mapping, wherever it is recorded.
    async fn attachment(&self, done: &Outputs, step: &str) -> Result<Option<AttachmentId>> {
        if let Some(a) = done.get::<AttachmentId>(step)? {
            return Ok(Some(a));
        }
        if let Some(a) = self.p.bdm.attachment_id {
            return Ok(Some(a));
        }
        Ok(self.current().await?.and_then(|r| r.attachment_id))
    }

    /// The attachments the volume service has of this volume to this
    /// server: asked with the user's token (the volume is in the user's
    /// project), or in a resumed saga with the service user's, in every
    /// project.
    async fn lost_reservations(&self) -> Result<Vec<AttachmentId>> {
        let token = self.volumes.token(&self.ctx).await?;
        let all_projects = self.ctx.auth_token.is_none();
        let b = &self.p.bdm;
        self.volumes
            .api
            .attachments_of(&token, &b.volume_id, &b.instance_id, all_projects)
            .await
    }

    fn agent(&self) -> rpc::AgentApi {
        rpc::AgentApi::new(self.bus.clone())
    }
}

struct ReserveDevice;
struct ReserveVolume;
struct AttachOnHost;
struct MarkAttached;

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for ReserveDevice {
    fn name(&self) -> &'static str {
        "reserve_device"
    }
    fn seed_step(&self) -> u16 {
        5
    }
    async fn run(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<Value> {
        match bdms::bdm_create(&mut *c.db.conn().await?, &c.p.bdm).await {
            Ok(()) => Ok(Value::Null),
            // Made by an earlier run of this saga: still ours.
            Err(ComputeError::Conflict(_)) if c.current().await?.is_some() => Ok(Value::Null),
            // Nova's InvalidVolume for a volume the server has already.
            Err(ComputeError::Conflict(_)) => Err(ComputeError::BadRequest(format!(
                "Invalid volume: volume {} already attached",
                c.p.bdm.volume_id
            ))),
            Err(e) => Err(e),
        }
    }
    async fn undo(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<()> {
        bdms::bdm_delete(&mut *c.db.conn().await?, &c.p.bdm.id).await
    }
}

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for ReserveVolume {
    fn name(&self) -> &'static str {
        "reserve_volume"
    }
    fn seed_step(&self) -> u16 {
        39
    }
    async fn run(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<Value> {
        // Reserved by an earlier run: the mapping has its attachment.
        if let Some(a) = c.current().await?.and_then(|r| r.attachment_id) {
            return output(&a);
        }
        let b = &c.p.bdm;
        // Reserved by an earlier run whose reply was lost before the
        // mapping learnt the attachment: the volume service has it.
        let a = match c.lost_reservations().await?.first() {
            Some(a) => *a,
            None => {
                let token = c.volumes.token(&c.ctx).await?;
                c.volumes
                    .api
                    .attachment_reserve(&token, &b.volume_id, &b.instance_id)
                    .await?
            }
        };
        bdms::bdm_set_attachment(&mut *c.db.conn().await?, &b.id, Some(a)).await?;
        output(&a)
    }
    async fn undo(&self, c: &VolumeSaga<'a>, done: &Outputs) -> Result<()> {
        let token = c.volumes.token(&c.ctx).await?;
        match c.attachment(done, self.name()).await? {
            Some(a) => c.volumes.api.attachment_delete(&token, &a).await?,
            // The reservation's reply may have been lost: whatever joins
            // this volume to this server goes.
            None => {
                for a in c.lost_reservations().await? {
                    c.volumes.api.attachment_delete(&token, &a).await?;
                }
            }
        }
        bdms::bdm_set_attachment(&mut *c.db.conn().await?, &c.p.bdm.id, None).await
    }
}

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for AttachOnHost {
    fn name(&self) -> &'static str {
        "attach_on_host"
    }
    fn seed_step(&self) -> u16 {
        48
    }
    async fn run(&self, c: &VolumeSaga<'a>, done: &Outputs) -> Result<Value> {
        let a: AttachmentId = done.require("reserve_volume")?;
        let got = c
            .agent()
            .attach_volume(&c.ctx, &c.p.host, &c.args(a))
            .await?;
        output(&got.connection_info)
    }
    async fn undo(&self, c: &VolumeSaga<'a>, done: &Outputs) -> Result<()> {
        let Some(a) = c.attachment(done, "reserve_volume").await? else {
            return Ok(());
        };
        Ok(c.agent()
            .detach_volume(&c.ctx, &c.p.host, &c.args(a))
            .await?)
    }
}

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for MarkAttached {
    fn name(&self) -> &'static str {
        "mark_attached"
    }
    fn seed_step(&self) -> u16 {
        5
    }
    async fn run(&self, c: &VolumeSaga<'a>, done: &Outputs) -> Result<Value> {
        let info: Value = done.require("attach_on_host")?;
        let ok = bdms::bdm_set_status(
            &mut *c.db.conn().await?,
            &c.p.bdm.id,
            &[BdmStatus::Attaching],
            BdmStatus::Attached,
            Some(&info),
        )
        .await?;
        if !ok {
            return Err(ComputeError::Conflict(format!(
                "volume {} changed while it was being attached",
                c.p.bdm.volume_id
            )));
        }
        Ok(Value::Null)
    }
    async fn undo(&self, _c: &VolumeSaga<'a>, _done: &Outputs) -> Result<()> {
        // The last step: nothing after it can fail.
        Ok(())
    }
}

pub fn attach_steps<'a>() -> Vec<Box<dyn Step<VolumeSaga<'a>>>> {
    vec![
        Box::new(ReserveDevice),
        Box::new(ReserveVolume),
        Box::new(AttachOnHost),
        Box::new(MarkAttached),
    ]
}

struct MarkDetaching;
struct DetachOnHost;
struct ReleaseVolume;
struct Forget;

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for MarkDetaching {
    fn name(&self) -> &'static str {
        "mark_detaching"
    }
    fn seed_step(&self) -> u16 {
        5
    }
    async fn run(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<Value> {
        let ok = bdms::bdm_set_status(
            &mut *c.db.conn().await?,
            &c.p.bdm.id,
            &[BdmStatus::Attached],
            BdmStatus::Detaching,
            None,
        )
        .await?;
        if !ok {
            return Err(ComputeError::Conflict(format!(
                "Invalid volume: Unable to detach volume {}: it is being attached or detached.",
                c.p.bdm.volume_id
            )));
        }
        Ok(Value::Null)
    }
    async fn undo(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<()> {
        bdms::bdm_set_status(
            &mut *c.db.conn().await?,
            &c.p.bdm.id,
            &[BdmStatus::Detaching],
            BdmStatus::Attached,
            None,
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for DetachOnHost {
    fn name(&self) -> &'static str {
        "detach_on_host"
    }
    fn seed_step(&self) -> u16 {
        48
    }
    async fn run(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<Value> {
        if let Some(a) = c.p.bdm.attachment_id {
            c.agent()
                .detach_volume(&c.ctx, &c.p.host, &c.args(a))
                .await?;
        }
        Ok(Value::Null)
    }
    async fn undo(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<()> {
        // The guest gets its disk back (connect and os-complete again are
        // harmless on an attached attachment).
        if let Some(a) = c.p.bdm.attachment_id {
            c.agent()
                .attach_volume(&c.ctx, &c.p.host, &c.args(a))
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for ReleaseVolume {
    fn name(&self) -> &'static str {
        "release_volume"
    }
    fn seed_step(&self) -> u16 {
        39
    }
    async fn run(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<Value> {
        if let Some(a) = c.p.bdm.attachment_id {
            let token = c.volumes.token(&c.ctx).await?;
            c.volumes.api.attachment_delete(&token, &a).await?;
        }
        Ok(Value::Null)
    }
    async fn undo(&self, _c: &VolumeSaga<'a>, _done: &Outputs) -> Result<()> {
        // The last step: nothing after it can fail.
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<VolumeSaga<'a>> for Forget {
    fn name(&self) -> &'static str {
        "forget"
    }
    fn seed_step(&self) -> u16 {
        5
    }
    async fn run(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<Value> {
        bdms::bdm_delete(&mut *c.db.conn().await?, &c.p.bdm.id).await?;
        Ok(Value::Null)
    }
    async fn undo(&self, c: &VolumeSaga<'a>, _done: &Outputs) -> Result<()> {
        // The mapping as the detach found it (attached); one still there
        // is fine.
        let mut b = c.p.bdm.clone();
        b.status = BdmStatus::Attached;
        match bdms::bdm_create(&mut *c.db.conn().await?, &b).await {
            Ok(()) | Err(ComputeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

pub fn detach_steps<'a>() -> Vec<Box<dyn Step<VolumeSaga<'a>>>> {
    vec![
        Box::new(MarkDetaching),
        Box::new(DetachOnHost),
        Box::new(Forget),
        Box::new(ReleaseVolume),
    ]
}

fn steps_of<'a>(kind: &str) -> Vec<Box<dyn Step<VolumeSaga<'a>>>> {
    if kind == DETACH {
        detach_steps()
    } else {
        attach_steps()
    }
}

/// Runs the attach (`ATTACH`) or detach (`DETACH`) saga of `bdm` on
/// `host`'s guest.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    db: &Db,
    bus: &Bus,
    volumes: &Volumes,
    ctx: &RequestContext,
    kind: &'static str,
    bdm: VolumeBdm,
    host: &str,
    inject: Inject,
) -> Result<()> {
    let id = format!(
        "{kind}-{}-{}-{}",
        bdm.instance_id, bdm.volume_id, ctx.request_id
    );
    let c = VolumeSaga {
        db,
        bus,
        volumes,
        ctx: ctx.clone(),
        p: Params {
            context: loggable(ctx),
            bdm,
            host: host.to_owned(),
        },
    };
    let rec = SagaRecord {
        id,
        kind: kind.to_owned(),
        instance_id: c.p.bdm.instance_id.to_string(),
        state: SagaState::Running,
        params: serde_json::to_value(&c.p)?,
    };
    execute(db, &rec, &steps_of(kind), &c, inject).await?;
    Ok(())
}

/// Finishes an attach or detach a crash interrupted (the service user's
/// token stands in for the user's).
pub async fn resume(db: &Db, bus: &Bus, volumes: &Volumes, rec: &SagaRecord) -> Result<()> {
    let p: Params = serde_json::from_value(rec.params.clone())?;
    let c = VolumeSaga {
        db,
        bus,
        volumes,
        ctx: p.context.clone(),
        p,
    };
    let steps = steps_of(&rec.kind);
    if rec.state == SagaState::Unwinding {
        return super::unwind(db, &rec.id, &steps, &c).await;
    }
    execute(db, rec, &steps, &c, Inject::default()).await?;
    Ok(())
}

/// A new mapping for `volume` on `instance` at the first free device
/// after the root disk (`/dev/vdb`, ...), given the ones it has.
pub fn new_bdm(
    instance: InstanceId,
    volume: VolumeId,
    existing: &[VolumeBdm],
    tag: Option<String>,
    delete_on_termination: bool,
) -> VolumeBdm {
    let device_name = (1..26)
        .map(|n| format!("/dev/{}", crate::model::guest::device_name(n)))
        .find(|d| existing.iter().all(|b| &b.device_name != d))
        .unwrap_or_else(|| "/dev/vdz".to_owned());
    VolumeBdm {
        id: uuid::Uuid::new_v4().to_string(),
        instance_id: instance,
        volume_id: volume,
        device_name,
        attachment_id: None,
        status: BdmStatus::Attaching,
        delete_on_termination,
        connection_info: None,
        tag,
    }
}
