//! `snapshot_instance` on the server's host (Nova's `snapshot_instance`
//! with the libvirt driver's `snapshot`): the guest's root disk exported
//! as qcow2 (`qemu-img convert`, flattening the overlay onto its base) and
//! uploaded as the data of the image the API made, with the service
//! user's token; the task walks Nova's states:
//!
//! ```text
//!  image_snapshot_pending -> image_snapshot (export)
//!    -> image_pending_upload -> image_uploading (upload) -> no task
//! ```
//!
//! A guest with no local disk of its own (the fake driver without
//! `fake_disks`) is exported from what it would boot from: its image as
//! the host's cache holds it, or, with no cache, a blank disk of the
//! flavor's size. A failure deletes the image and gives the server back
//! its state (Nova's `_snapshot_instance` error handling); the server
//! itself never changes, so there is nothing else to undo, and one agent
//! call does it (a restart in the middle clears the task, see
//! `Agent::reconcile`, and the `queued` image stays for its owner to
//! delete, as Nova leaves it).

use std::path::Path;

use stratus_common::RequestContext;

use super::{build, exp, Agent};
use crate::db::instances::{Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::model::state::TaskState;
use crate::rpc::image_actions::SnapshotArgs;

/// Uploads a snapshot of the instance of `args`, if it still waits for one.
pub async fn snapshot(a: &Agent, ctx: &RequestContext, args: SnapshotArgs) -> Result<()> {
    let id = args.instance_id;
    let image = args.image_id.to_string();
    let token = a.service_token().await?;
    let inst = match a.instance(ctx, id).await {
        Ok(i) if !i.deleted => i,
        Ok(_) | Err(ComputeError::NotFound(_)) => {
            // Deleted before its snapshot began: the image goes with it.
            forget(a, &token, &image).await;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if inst.host.as_deref() != Some(a.host.as_str())
        || inst.task_state != Some(TaskState::ImageSnapshotPending)
    {
        // A repeated cast of a snapshot that ran already.
        return Ok(());
    }
    let r = a
        .with_event(ctx, id, "compute_snapshot_instance", || {
            export_and_upload(a, ctx, &inst, &image, &token)
        })
        .await;
    let Err(e) = r else {
        return Ok(());
    };
    forget(a, &token, &image).await;
    let u = InstanceUpdate {
        task_state: Some(None),
        ..InstanceUpdate::default()
    };
    let snapshotting: Vec<Option<TaskState>> = TaskState::SNAPSHOT.into_iter().map(Some).collect();
    match a.update(ctx, id, exp(&snapshotting), u).await {
        Ok(_) | Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => {}
        Err(e) => {
            tracing::warn!(instance = %id, error = %e, "cannot clear a failed snapshot's task")
        }
    }
    Err(e)
}

async fn forget(a: &Agent, token: &str, image: &str) {
    if let Err(e) = a.services.images.image_delete(token, image).await {
        tracing::warn!(%image, error = %e, "cannot delete the image of a failed snapshot");
    }
}

/// Moves the task from `from` to `to` (`None`: done).
async fn step(
    a: &Agent,
    ctx: &RequestContext,
    inst: &Instance,
    from: TaskState,
    to: Option<TaskState>,
) -> Result<()> {
    let u = InstanceUpdate {
        task_state: Some(to),
        ..InstanceUpdate::default()
    };
    a.update(ctx, inst.id, exp(&[Some(from)]), u).await?;
    Ok(())
}

async fn export_and_upload(
    a: &Agent,
    ctx: &RequestContext,
    inst: &Instance,
    image: &str,
    token: &str,
) -> Result<()> {
    step(
        a,
        ctx,
        inst,
        TaskState::ImageSnapshotPending,
        Some(TaskState::ImageSnapshot),
    )
    .await?;
    let dir = build::instance_dir(a, &inst.id.to_string());
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ComputeError::Internal(format!("{}: {e}", dir.display())))?;
    let out = dir.join(format!("snapshot-{image}.qcow2"));
    let r = async {
        export(a, inst, &out, token).await?;
        step(
            a,
            ctx,
            inst,
            TaskState::ImageSnapshot,
            Some(TaskState::ImagePendingUpload),
        )
        .await?;
        step(
            a,
            ctx,
            inst,
            TaskState::ImagePendingUpload,
            Some(TaskState::ImageUploading),
        )
        .await?;
        a.services.images.image_upload(token, image, &out).await
    }
    .await;
    if let Err(e) = tokio::fs::remove_file(&out).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %out.display(), error = %e, "cannot remove a snapshot's export");
        }
    }
    r?;
    step(a, ctx, inst, TaskState::ImageUploading, None).await
}

/// Writes the guest's root disk to `out` as a standalone qcow2.
async fn export(a: &Agent, inst: &Instance, out: &Path, token: &str) -> Result<()> {
    let disk = build::instance_dir(a, &inst.id.to_string()).join("disk");
    if tokio::fs::try_exists(&disk).await.unwrap_or(false) {
        // `-U`: a running guest's QEMU holds the disk's write lock; the
        // copy is what the disk holds now (crash-consistent).
        return qemu_img(&[
            "convert".as_ref(),
            "-U".as_ref(),
            "-f".as_ref(),
            "qcow2".as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            disk.as_os_str(),
            out.as_os_str(),
        ])
        .await;
    }
    if let (Some(cache), Ok(image)) = (&a.services.cache, inst.image_ref.parse()) {
        let cached = cache
            .ensure(image, token)
            .await
            .map_err(|e| ComputeError::Internal(format!("image {}: {e}", inst.image_ref)))?;
        let fmt = match cached.disk_format.as_str() {
            "qcow2" => "qcow2",
            "raw" | "iso" => "raw",
            other => {
                return Err(ComputeError::Internal(format!(
                    "cannot export a disk of format {other}"
                )))
            }
        };
        return qemu_img(&[
            "convert".as_ref(),
            "-f".as_ref(),
            fmt.as_ref(),
            "-O".as_ref(),
            "qcow2".as_ref(),
            cached.path.as_os_str(),
            out.as_os_str(),
        ])
        .await;
    }
    let size = format!("{}G", inst.flavor.disk.max(1));
    qemu_img(&[
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        out.as_os_str(),
        size.as_ref(),
    ])
    .await
}

async fn qemu_img(args: &[&std::ffi::OsStr]) -> Result<()> {
    let o = tokio::process::Command::new("qemu-img")
        .args(args)
        .output()
        .await
        .map_err(|e| ComputeError::Internal(format!("qemu-img: {e}")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(ComputeError::Internal(format!(
            "qemu-img {}: {}",
            args.first()
                .map(|a| a.to_string_lossy())
                .unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).trim()
        )))
    }
}
