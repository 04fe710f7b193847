//! `rebuild_instance` on the server's host (Nova's `_do_rebuild_instance`
//! with the default `_rebuild_default_impl`): the old guest is destroyed
//! with its local disks, the new image fetched into the cache, a new root
//! disk made on it, and the guest defined again with the same ports and
//! volumes; started unless the server was stopped (a stopped server
//! stays SHUTOFF, as in Nova). The image, disks and definition are the
//! build saga's own steps (`fetch_image`, `create_disks`), so that a
//! rebuilt guest is made as a built one is.
//!
//! ```text
//!  rebuilding        destroy the guest, drop the old disk and cache hold
//!  rebuild_spawning  fetch_image, create_disks, define, start
//!  -> active (or stopped); any failure -> error, with a fault
//! ```
//!
//! One agent call, not a saga: a rebuild has nothing to undo to. Once
//! the old guest and its disk are destroyed (the first thing it does, as
//! Nova), the way back is gone; Nova puts a failed rebuild in ERROR and so
//! does this. What a failure leaves (a new disk, a hold on the new image,
//! a half-defined guest) belongs to the server, whose `image_ref` already
//! names the new image: the next rebuild replaces it and a delete
//! removes it (`terminate`), so nothing leaks. An agent restarted in the
//! middle finds the server `rebuilding` and puts it in ERROR (Nova's
//! `_init_instance`); a redelivered cast finds it so and does nothing.

use stratus_common::RequestContext;

use super::build::{self, Build, CreateDisks, FetchImage};
use super::{exp, Agent};
use crate::db::instances::{Fault, Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::model::state::{PowerState, TaskState, VmState};
use crate::model::GuestSpec;
use crate::rpc::image_actions::RebuildArgs;
use crate::saga::{Outputs, Step};

/// The task states of a rebuild in progress.
const REBUILDING: [Option<TaskState>; 2] = [
    Some(TaskState::Rebuilding),
    Some(TaskState::RebuildSpawning),
];

/// Rebuilds the instance of `args`, if it is still waiting for it here.
pub async fn rebuild(a: &Agent, ctx: &RequestContext, args: RebuildArgs) -> Result<()> {
    // One thing at a time per guest (a build of the same instance cannot
    // run, but a repeated cast could).
    let gate = a.builds.gate(args.instance_id);
    let _held = gate.lock().await;
    let id = args.instance_id;
    let inst = match a.instance(ctx, id).await {
        Ok(i) => i,
        Err(ComputeError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if inst.deleted
        || inst.host.as_deref() != Some(a.host.as_str())
        || inst.task_state != Some(TaskState::Rebuilding)
    {
        // Deleted, moved, or done: a stale or repeated cast.
        return Ok(());
    }
    let r = a
        .with_event(ctx, id, "compute_rebuild_instance", || {
            remake(a, ctx, &inst, &args)
        })
        .await;
    let Err(e) = r else {
        return Ok(());
    };
    let fault = Fault {
        code: 500,
        message: format!("Rebuild of instance {id} failed: {e}"),
        details: e.to_string(),
        created: stratus_common::time::iso_seconds(stratus_common::time::now()),
    };
    let power = a
        .driver
        .list()
        .await
        .into_iter()
        .find(|(g, _)| *g == id)
        .map_or(PowerState::NoState, |(_, p)| p);
    let u = InstanceUpdate {
        vm_state: Some(VmState::Error),
        task_state: Some(None),
        power_state: Some(power),
        fault: Some(Some(fault)),
        ..InstanceUpdate::default()
    };
    match a.update(ctx, id, exp(&REBUILDING), u).await {
        // Deleted meanwhile: the delete cleans up.
        Ok(_) | Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => {}
        Err(e) => tracing::warn!(instance = %id, error = %e, "cannot record a failed rebuild"),
    }
    Err(e)
}

/// The rebuild itself; `inst` already names the new image.
async fn remake(
    a: &Agent,
    ctx: &RequestContext,
    inst: &Instance,
    args: &RebuildArgs,
) -> Result<()> {
    let id = inst.id;
    let stopped = inst.vm_state == VmState::Stopped;
    a.driver
        .destroy(id)
        .await
        .map_err(|e| ComputeError::Internal(e.to_string()))?;
    if let (Some(cache), Ok(old)) = (&a.services.cache, args.orig_image_ref.parse()) {
        cache.release(old, id).await;
    }
    build::remove_instance_dir(a, &id.to_string()).await;
    let u = InstanceUpdate {
        task_state: Some(Some(TaskState::RebuildSpawning)),
        power_state: Some(PowerState::NoState),
        ..InstanceUpdate::default()
    };
    a.update(ctx, id, exp(&[Some(TaskState::Rebuilding)]), u)
        .await?;

    let token = a.service_token().await?;
    let b = Build::new(a, ctx, inst, token);
    let mut done = Outputs::default();
    let fetch = FetchImage;
    let cached = fetch.run(&b, &done).await?;
    done.insert(fetch.name(), cached);
    let disks = CreateDisks;
    let made = disks.run(&b, &done).await?;
    done.insert(disks.name(), made);
    let spec = spec(&b, &done, args)?;
    a.driver
        .define(&spec)
        .await
        .map_err(|e| ComputeError::Internal(e.to_string()))?;
    if !stopped {
        a.driver
            .start(id)
            .await
            .map_err(|e| ComputeError::Internal(e.to_string()))?;
    }
    let console = a.driver.console_output(id).await.unwrap_or_default();
    let (vm, power) = if stopped {
        (VmState::Stopped, PowerState::Shutdown)
    } else {
        (VmState::Active, PowerState::Running)
    };
    let u = InstanceUpdate {
        vm_state: Some(vm),
        task_state: Some(None),
        power_state: Some(power),
        launched_at: Some(Some(stratus_common::time::to_db(
            stratus_common::time::now(),
        ))),
        fault: Some(None),
        console_log: Some(console),
        ..InstanceUpdate::default()
    };
    a.update(ctx, id, exp(&[Some(TaskState::RebuildSpawning)]), u)
        .await?;
    Ok(())
}

/// The rebuilt guest: the build's spec from the new image and disk, with
/// the ports the server has (already bound: nothing to wait for) and the
/// volumes the API listed (a boot volume first).
fn spec(b: &Build<'_>, done: &Outputs, args: &RebuildArgs) -> Result<GuestSpec> {
    let mut spec = build::guest_spec(b, done)?;
    spec.vifs = b.inst.network_info.clone();
    let (boot, data): (Vec<_>, Vec<_>) = args
        .volumes
        .iter()
        .cloned()
        .partition(|d| d.boot_index == Some(0));
    let local = std::mem::take(&mut spec.disks);
    spec.disks = boot.into_iter().chain(local).chain(data).collect();
    Ok(spec)
}
