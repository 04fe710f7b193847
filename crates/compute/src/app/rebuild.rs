//! `rebuild` apart from HTTP, as Nova's `compute_api.rebuild`: the checks
//! (lock, state, image, flavor fit, key pair, volume-backed servers), then
//! the task claimed and the new attributes written in one transaction
//! (`db::rebuild`), the `rebuild` instance action recorded, and
//! `rebuild_instance` cast to the server's host, whose agent makes the
//! guest again from the new image (`agent::rebuild`).

use std::collections::BTreeMap;

use stratus_common::RequestContext;

use crate::api::AppState;
use crate::db;
use crate::db::bdms::BdmStatus;
use crate::db::instances::{Instance, InstanceUpdate};
use crate::db::rebuild::RebuildChanges;
use crate::error::{ComputeError, Result};
use crate::model::bdm::BdmSource;
use crate::model::state::{TaskState, VmState};
use crate::model::{DiskSource, DiskSpec};
use crate::rpc;
use crate::rpc::image_actions::{RebuildArgs, REBUILD};

/// A rebuild request as the microversion's schema allowed it; `None`
/// leaves an attribute as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RebuildRequest {
    pub image_ref: String,
    pub name: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    pub preserve_ephemeral: bool,
    /// 2.54+: `Some(None)` unsets the key pair.
    pub key_name: Option<Option<String>>,
    /// 2.57+: `Some(None)` unsets the user data.
    pub user_data: Option<Option<String>>,
    /// 2.63+ (`Some(None)`: reset them).
    pub trusted_image_certificates: Option<Option<Vec<String>>>,
    /// 2.19+.
    pub description: Option<Option<String>>,
    /// 2.90+.
    pub hostname: Option<String>,
}

fn wrong_state(i: &Instance) -> ComputeError {
    match i.task_state {
        Some(t) => ComputeError::Conflict(format!(
            "Cannot 'rebuild' instance {} while it is in task_state {t}",
            i.id
        )),
        None => ComputeError::Conflict(format!(
            "Cannot 'rebuild' instance {} while it is in vm_state {}",
            i.id, i.vm_state
        )),
    }
}

/// The image a volume-backed server's root volume was made from, as far
/// as the launch recorded it (`None`: the user's own volume, whose image
/// this cloud does not track).
fn volume_image(i: &Instance) -> Option<String> {
    let m = crate::agent::build::boot_mapping(i)?;
    match m.source_type {
        BdmSource::Image => m.uuid.clone(),
        _ => None,
    }
}

/// Whether the server boots from a volume (Nova's
/// `is_volume_backed_instance`: no image, or a boot volume mapping).
pub fn is_volume_backed(i: &Instance) -> bool {
    i.image_ref.is_empty() || crate::agent::build::boot_mapping(i).is_some()
}

/// Checks the request and starts the rebuild; the instance as it now is
/// (`REBUILD`).
pub async fn rebuild(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
    req: &RebuildRequest,
) -> Result<Instance> {
    let id = i.id.to_string();
    if i.locked && !ctx.is_admin() {
        return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
    }
    if i.task_state.is_some() || !TaskState::Rebuilding.may_begin_in(i.vm_state) {
        return Err(wrong_state(i));
    }
    // A server that never reached a host (an ERROR build) has no guest to
    // make again here.
    let host = i.host.clone().ok_or_else(|| wrong_state(i))?;
    let token = ctx.auth_token.clone().unwrap_or_default();
    let image = s
        .images
        .image_get(&token, &req.image_ref)
        .await
        .map_err(|e| match e {
            ComputeError::BadRequest(_) => {
                ComputeError::BadRequest("Cannot find image for rebuild".into())
            }
            other => other,
        })?;
    image.require_active()?;
    let volume_backed = is_volume_backed(i);
    if volume_backed {
        if matches!(&req.trusted_image_certificates, Some(Some(c)) if !c.is_empty()) {
            return Err(ComputeError::bad(
                "Image certificate validation is not supported for volume-backed servers.",
            ));
        }
        // Nova reimages the root volume from 2.93 (Cinder's os-reimage);
        // this cloud's volume service cannot, so a different image is
        // refused at every version, as Nova refuses it below 2.93.
        if volume_image(i).as_deref() != Some(image.id.as_str()) {
            return Err(ComputeError::BadRequest(format!(
                "Image {} is unacceptable: Unable to rebuild with a different image for a \
                 volume-backed server.",
                req.image_ref
            )));
        }
    }
    if image.min_ram > i.flavor.ram {
        return Err(ComputeError::bad(
            "Flavor's memory is too small for requested image.",
        ));
    }
    if !volume_backed && image.min_disk > i.flavor.disk && i.flavor.disk > 0 {
        return Err(ComputeError::bad(
            "Flavor's disk is too small for requested image.",
        ));
    }
    // Key pairs are the caller's (another user of the project may rebuild
    // the server), as in Nova.
    let key = match &req.key_name {
        None => None,
        Some(None) => Some((None, None)),
        Some(Some(k)) => {
            let user = ctx
                .user_id
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default();
            let kp = db::keypairs::keypair_get(&mut *s.db.conn().await?, &user, k)
                .await
                .map_err(|_| ComputeError::bad("Invalid key_name provided."))?;
            Some((Some(kp.name), Some(kp.public_key)))
        }
    };
    let changes = RebuildChanges {
        image_ref: (!volume_backed).then(|| image.id.clone()),
        image_properties: Some(image.properties.clone()),
        name: req.name.clone(),
        description: req.description.clone(),
        access_ip_v4: req.access_ip_v4.clone(),
        access_ip_v6: req.access_ip_v6.clone(),
        key,
        user_data: req.user_data.clone(),
        hostname: req.hostname.clone(),
        metadata: req.metadata.clone(),
    };
    let volumes = kept_volumes(s, i).await?;
    let updated = db::rebuild::instance_rebuild_begin(
        &mut *s.db.conn().await?,
        &id,
        TaskState::Rebuilding.allowed_from(),
        &changes,
    )
    .await
    .map_err(|e| match e {
        ComputeError::Conflict(_) => wrong_state(i),
        other => other,
    })?;
    db::actions::action_start(
        &mut *s.db.conn().await?,
        &id,
        "rebuild",
        &ctx.request_id.0,
        ctx.user_id.as_ref().map(|u| u.as_str()),
        ctx.project_id.as_ref().map(|p| p.as_str()),
    )
    .await?;
    let args = RebuildArgs {
        instance_id: i.id,
        orig_image_ref: i.image_ref.clone(),
        volumes,
        preserve_ephemeral: req.preserve_ephemeral,
    };
    if let Err(e) = s
        .bus
        .cast(&rpc::compute_topic(&host), REBUILD, ctx, &args)
        .await
    {
        // No agent will rebuild it: the server must not stay REBUILD. Its
        // record names the new image, which its guest does not run: ERROR,
        // as Nova leaves a rebuild that failed.
        let u = InstanceUpdate {
            vm_state: Some(VmState::Error),
            task_state: Some(None),
            ..InstanceUpdate::default()
        };
        if let Ok(mut conn) = s.db.conn().await {
            let expected = Some(vec![Some(TaskState::Rebuilding)]);
            if let Err(e) = db::instances::instance_update(&mut conn, &id, &expected, &u).await {
                tracing::warn!(instance = %id, error = %e, "cannot give back a rebuild that was never sent");
            }
        }
        return Err(e.into());
    }
    Ok(updated)
}

/// The volumes attached to the server, as the guest's disks: the agent
/// gives them to the rebuilt guest (the boot volume at `vda` first).
async fn kept_volumes(s: &AppState, i: &Instance) -> Result<Vec<DiskSpec>> {
    let bdms = db::bdms::bdm_list(&mut *s.db.conn().await?, &i.id).await?;
    let mut disks: Vec<DiskSpec> = bdms
        .into_iter()
        .filter(|b| b.status == BdmStatus::Attached)
        .filter_map(|b| {
            let device = b
                .device_name
                .strip_prefix("/dev/")
                .unwrap_or(&b.device_name)
                .to_owned();
            let boot = device == "vda";
            Some(DiskSpec {
                source: DiskSource::Volume {
                    volume_id: b.volume_id.to_string(),
                    connection_info: b.connection_info?,
                },
                device,
                size_gb: 0,
                boot_index: boot.then_some(0),
            })
        })
        .collect();
    disks.sort_by(|a, b| a.device.cmp(&b.device));
    Ok(disks)
}
