//! Attaching volumes to servers and detaching them
//! (`/servers/{id}/os-volume_attachments`) apart from HTTP: Nova's checks
//! (the server's state, its lock, a volume attached already), then the
//! attach or detach saga (`saga::attach`), which the request waits for.

use stratus_common::ids::VolumeId;
use stratus_common::RequestContext;

use crate::api::AppState;
use crate::db::bdms::{self, BdmStatus, VolumeBdm};
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};
use crate::model::state::VmState;
use crate::saga::{attach, Inject};

/// An attach request, as parsed from its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachRequest {
    pub volume_id: VolumeId,
    pub tag: Option<String>,
    pub delete_on_termination: bool,
}

/// The vm_states a volume may be attached or detached in (Nova's
/// `check_instance_state` on `attach_volume` / `detach_volume`, less the
/// states Stratus has no guest for).
fn may_change_volumes(vm: VmState) -> bool {
    matches!(
        vm,
        VmState::Active | VmState::Stopped | VmState::Paused | VmState::Suspended
    )
}

/// The host of a server whose volumes may change now; Nova's 409s
/// otherwise.
fn ready_host(ctx: &RequestContext, i: &Instance, action: &str) -> Result<String> {
    if i.locked && !ctx.is_admin() {
        return Err(ComputeError::Conflict(format!(
            "Instance {} is locked",
            i.id
        )));
    }
    let wrong = |what: String| {
        ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in {what}",
            i.id
        ))
    };
    if !may_change_volumes(i.vm_state) {
        return Err(wrong(format!("vm_state {}", i.vm_state)));
    }
    if let Some(t) = &i.task_state {
        return Err(wrong(format!("task_state {t}")));
    }
    i.host
        .clone()
        .ok_or_else(|| wrong(format!("vm_state {}", i.vm_state)))
}

/// The server's volumes as the API shows them (attached ones, and those
/// on their way in or out).
pub async fn list(s: &AppState, i: &Instance) -> Result<Vec<VolumeBdm>> {
    bdms::bdm_list(&mut *s.db.conn().await?, &i.id).await
}

/// The mapping of `volume` on the server, or Nova's 404.
pub async fn get(s: &AppState, i: &Instance, volume: &str) -> Result<VolumeBdm> {
    let not_attached = || ComputeError::NotFound(format!("volume_id not found: {volume}"));
    let vid: VolumeId = volume.parse().map_err(|_| not_attached())?;
    bdms::bdm_get(&mut *s.db.conn().await?, &i.id, &vid)
        .await?
        .ok_or_else(not_attached)
}

/// Attaches the volume and returns its mapping once the guest has it.
pub async fn attach(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
    req: AttachRequest,
) -> Result<VolumeBdm> {
    let host = ready_host(ctx, i, "attach_volume")?;
    let existing = list(s, i).await?;
    if existing.iter().any(|b| b.volume_id == req.volume_id) {
        return Err(ComputeError::BadRequest(format!(
            "Invalid volume: volume {} already attached",
            req.volume_id
        )));
    }
    // Nova's 404 for a volume the caller cannot see, before anything is
    // reserved; Cinder's own 400 comes from the reservation.
    let token = s.volumes.token(ctx).await?;
    s.volumes.api.volume_get(&token, &req.volume_id).await?;
    let bdm = attach::new_bdm(
        i.id,
        req.volume_id,
        &existing,
        req.tag,
        req.delete_on_termination,
    );
    crate::db::actions::action_start(
        &mut *s.db.conn().await?,
        &i.id.to_string(),
        "attach_volume",
        &ctx.request_id.0,
        ctx.user_id.as_ref().map(|u| u.as_str()),
        ctx.project_id.as_ref().map(|p| p.as_str()),
    )
    .await?;
    attach::run(
        &s.db,
        &s.bus,
        &s.volumes,
        ctx,
        attach::ATTACH,
        bdm,
        &host,
        Inject::default(),
    )
    .await?;
    get(s, i, &req.volume_id.to_string()).await
}

/// Detaches the volume; the request returns once the volume is free.
pub async fn detach(s: &AppState, ctx: &RequestContext, i: &Instance, volume: &str) -> Result<()> {
    let bdm = get(s, i, volume).await?;
    let host = ready_host(ctx, i, "detach_volume")?;
    if bdm.status != BdmStatus::Attached {
        return Err(ComputeError::BadRequest(format!(
            "Invalid volume: Unable to detach volume {volume}: it is {}.",
            bdm.status.as_str()
        )));
    }
    crate::db::actions::action_start(
        &mut *s.db.conn().await?,
        &i.id.to_string(),
        "detach_volume",
        &ctx.request_id.0,
        ctx.user_id.as_ref().map(|u| u.as_str()),
        ctx.project_id.as_ref().map(|p| p.as_str()),
    )
    .await?;
    attach::run(
        &s.db,
        &s.bus,
        &s.volumes,
        ctx,
        attach::DETACH,
        bdm,
        &host,
        Inject::default(),
    )
    .await
}
