//! `createImage` apart from HTTP, as Nova's `compute_api.snapshot`: the
//! image record is made with the caller's token (so that it is the
//! caller's project's), carrying Nova's snapshot properties; then the task
//! `image_snapshot_pending` is claimed, the `createImage` instance action
//! recorded and `snapshot_instance` cast to the server's host, whose agent
//! exports the guest's disk and uploads it (`agent::snapshot`). A snapshot
//! that cannot start deletes the image it made.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use stratus_common::ids::ImageId;
use stratus_common::RequestContext;

use crate::api::AppState;
use crate::db;
use crate::db::instances::{Instance, InstanceUpdate};
use crate::error::{ComputeError, Result};
use crate::model::state::TaskState;
use crate::rpc;
use crate::rpc::image_actions::{SnapshotArgs, SNAPSHOT};

/// Image properties a snapshot never inherits (Nova's
/// `NON_INHERITABLE_IMAGE_PROPERTIES` and the default
/// `[DEFAULT] non_inheritable_image_properties`).
const NON_INHERITABLE: &[&str] = &[
    "cinder_encryption_key_id",
    "cinder_encryption_key_deletion_policy",
    "img_signature",
    "img_signature_hash_method",
    "img_signature_key_type",
    "img_signature_certificate_uuid",
    "cache_in_nova",
    "bittorrent",
];

fn wrong_state(i: &Instance) -> ComputeError {
    match i.task_state {
        Some(t) => ComputeError::Conflict(format!(
            "Cannot 'createImage' instance {} while it is in task_state {t}",
            i.id
        )),
        None => ComputeError::Conflict(format!(
            "Cannot 'createImage' instance {} while it is in vm_state {}",
            i.id, i.vm_state
        )),
    }
}

/// Glance's create body for a snapshot of `i` (Nova's
/// `initialize_instance_snapshot_metadata` and `create_image`): the source
/// image's inheritable properties, `min_ram`/`min_disk`, then
/// `instance_uuid`, `user_id`, `image_type=snapshot`, `base_image_ref`
/// and the request's metadata, which win. The agent uploads a qcow2 disk,
/// hence the formats.
pub fn snapshot_body(
    ctx: &RequestContext,
    i: &Instance,
    source: Option<&crate::clients::ImageInfo>,
    name: &str,
    metadata: &BTreeMap<String, String>,
) -> Value {
    let mut props: BTreeMap<String, String> = source
        .map(|s| s.properties.clone())
        .unwrap_or_else(|| i.image_properties.clone());
    props.retain(|k, _| !NON_INHERITABLE.contains(&k.as_str()) && !k.starts_with("os_glance"));
    props.insert("instance_uuid".into(), i.id.to_string());
    props.insert(
        "user_id".into(),
        ctx.user_id
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
    );
    props.insert("image_type".into(), "snapshot".into());
    props.insert("base_image_ref".into(), i.image_ref.clone());
    let mut body = Map::new();
    let caller = ctx.project_id.as_ref().map(|p| p.as_str());
    if caller == Some(i.project_id.as_str()) {
        body.insert("visibility".into(), json!("private"));
    } else {
        // An admin's snapshot of another project's server: shared, and
        // the owner named (Nova adds the owner as a member).
        body.insert("visibility".into(), json!("shared"));
        props.insert("instance_owner".into(), i.project_id.clone());
    }
    props.extend(metadata.clone());
    for (k, v) in props {
        body.insert(k, json!(v));
    }
    body.insert("name".into(), json!(name));
    body.insert("disk_format".into(), json!("qcow2"));
    body.insert("container_format".into(), json!("bare"));
    body.insert(
        "min_ram".into(),
        json!(source.map(|s| s.min_ram).unwrap_or(0).max(0)),
    );
    body.insert(
        "min_disk".into(),
        json!(source
            .map(|s| s.min_disk)
            .unwrap_or(0)
            .max(i.flavor.disk)
            .max(0)),
    );
    Value::Object(body)
}

/// Starts a snapshot of `i` named `name`; the new image's id.
pub async fn create_image(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
    name: &str,
    metadata: &BTreeMap<String, String>,
) -> Result<String> {
    let id = i.id.to_string();
    // Not checking the lock, as Nova: a lock keeps a server from being
    // changed, and a snapshot does not change it.
    if i.task_state.is_some() || !TaskState::ImageSnapshotPending.may_begin_in(i.vm_state) {
        return Err(wrong_state(i));
    }
    if crate::app::rebuild::is_volume_backed(i) {
        return Err(ComputeError::BadRequest(format!(
            "Snapshots of volume-backed servers are not supported by this cloud (instance {id} \
             boots from a volume); snapshot its volume with the volume API instead."
        )));
    }
    let host = i.host.clone().ok_or_else(|| wrong_state(i))?;
    let token = ctx.auth_token.clone().unwrap_or_default();
    // The source image may be gone since the launch: the properties the
    // instance kept stand in for it.
    let source = match s.images.image_get(&token, &i.image_ref).await {
        Ok(img) => Some(img),
        Err(ComputeError::BadRequest(_)) => None,
        Err(e) => return Err(e),
    };
    let body = snapshot_body(ctx, i, source.as_ref(), name, metadata);
    let image_id = s.images.image_create(&token, &body).await?;
    let parsed: ImageId = image_id.parse().map_err(|_| {
        ComputeError::Internal(format!(
            "the image service made an image with id {image_id}"
        ))
    })?;
    let forget = || async {
        if let Err(e) = s.images.image_delete(&token, &image_id).await {
            tracing::warn!(image = %image_id, error = %e, "cannot delete the image of a snapshot that did not start");
        }
    };
    let claim = InstanceUpdate {
        task_state: Some(Some(TaskState::ImageSnapshotPending)),
        ..InstanceUpdate::default()
    };
    let claimed = async {
        db::instances::instance_update(&mut *s.db.conn().await?, &id, &Some(vec![None]), &claim)
            .await
    }
    .await;
    if let Err(e) = claimed {
        forget().await;
        return Err(match e {
            ComputeError::Conflict(_) => wrong_state(i),
            other => other,
        });
    }
    let started = async {
        db::actions::action_start(
            &mut *s.db.conn().await?,
            &id,
            "createImage",
            &ctx.request_id.0,
            ctx.user_id.as_ref().map(|u| u.as_str()),
            ctx.project_id.as_ref().map(|p| p.as_str()),
        )
        .await?;
        let args = SnapshotArgs {
            instance_id: i.id,
            image_id: parsed,
        };
        s.bus
            .cast(&rpc::compute_topic(&host), SNAPSHOT, ctx, &args)
            .await
            .map_err(ComputeError::from)
    }
    .await;
    if let Err(e) = started {
        let give_back = InstanceUpdate {
            task_state: Some(None),
            ..InstanceUpdate::default()
        };
        if let Ok(mut conn) = s.db.conn().await {
            let expected = Some(vec![Some(TaskState::ImageSnapshotPending)]);
            let _ = db::instances::instance_update(&mut conn, &id, &expected, &give_back).await;
        }
        forget().await;
        return Err(e);
    }
    Ok(image_id)
}
