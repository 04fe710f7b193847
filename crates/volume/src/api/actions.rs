//! `POST /volumes/{id}/action`: one action per body, named by its key
//! (`{"os-extend": {"new_size": 2}}`). Each is a compare-and-swap of the
//! volume's status from the states Cinder allows it in.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;
use stratus_common::ids::AttachmentId;
use stratus_common::{time, RequestContext};

use super::{cast, id_scope, load_volume, upload_image, write_scope, AppState, Microversion};
use crate::db;
use crate::domain::list::parse_bool;
use crate::domain::quota::{self, Limits};
use crate::domain::volume::parse_size;
use crate::domain::{AttachStatus, Attachment, Volume, VolumeStatus};
use crate::error::{CinderJson, PathParams, VolumeError};
use crate::manager;

pub async fn action(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Response, VolumeError> {
    let Value::Object(body) = body else {
        return Err(VolumeError::bad(
            "Invalid request body: an action object is required.",
        ));
    };
    let Some((name, arg)) = body.into_iter().next() else {
        return Err(VolumeError::bad(
            "Invalid request body: an action object is required.",
        ));
    };
    write_scope(&ctx, &format!("volume_extension:volume_actions:{name}"))?;
    let scope = id_scope(&ctx, "volume:get")?;
    let mut conn = state.db.conn().await?;
    let vol = load_volume(&mut conn, &scope, params.get("id")).await?;
    drop(conn);
    let arg = match arg {
        Value::Object(o) => o,
        Value::Null => Map::new(),
        other => {
            return Err(VolumeError::bad(format!(
                "Invalid input for {name}: {other} is not an object"
            )))
        }
    };
    let s = &*state;
    match name.as_str() {
        "os-extend" => extend(s, &ctx, version, &vol, &arg).await,
        "os-set_bootable" => set_flag(s, vol, &arg, "bootable")
            .await
            .map(|()| StatusCode::OK),
        "os-update_readonly_flag" => set_flag(s, vol, &arg, "readonly")
            .await
            .map(|()| StatusCode::ACCEPTED),
        "os-reserve" => {
            transition(
                s,
                &vol,
                &[VolumeStatus::Available],
                VolumeStatus::Attaching,
                "os-reserve",
            )
            .await
        }
        "os-unreserve" => unreserve(s, &vol).await,
        "os-begin_detaching" => {
            transition(
                s,
                &vol,
                &[VolumeStatus::InUse],
                VolumeStatus::Detaching,
                "os-begin_detaching",
            )
            .await
        }
        "os-roll_detaching" => roll_detaching(s, &vol).await,
        "os-attach" => attach(s, &vol, &arg).await,
        "os-detach" => detach(s, &vol, &arg).await,
        "os-reset_status" => reset_status(s, &ctx, &vol, &arg).await,
        "os-initialize_connection" => {
            let connector = arg.get("connector").cloned().unwrap_or(Value::Null);
            let info: Value = s
                .bus
                .call(
                    &manager::topic(&vol.backend),
                    manager::INITIALIZE_CONNECTION,
                    &ctx,
                    &manager::ConnectionArgs {
                        volume_id: vol.id,
                        connector,
                    },
                )
                .await?;
            return Ok(Json(json!({"connection_info": info})).into_response());
        }
        "os-terminate_connection" => Ok(StatusCode::ACCEPTED),
        "os-volume_upload_image" => {
            let body = upload_image::upload_image(s, &ctx, version, &vol, &arg).await?;
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        other => Err(VolumeError::bad(format!(
            "There is no such action: {other}"
        ))),
    }
    .map(IntoResponse::into_response)
}

async fn extend(
    s: &AppState,
    ctx: &RequestContext,
    version: Microversion,
    vol: &Volume,
    arg: &Map<String, Value>,
) -> Result<StatusCode, VolumeError> {
    let new_size = parse_size(arg.get("new_size").unwrap_or(&Value::Null))?;
    if new_size <= vol.size {
        return Err(VolumeError::bad(format!(
            "Invalid input received: New size for extend must be greater than current size. (current: {}, extended: {new_size}).", vol.size
        )));
    }
    // Extending an attached volume came with 3.42.
    let from: &[VolumeStatus] = if version.at_least(42) {
        &[VolumeStatus::Available, VolumeStatus::InUse]
    } else {
        &[VolumeStatus::Available]
    };
    if !from.contains(&vol.status) {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} status must be {}, but current status is: {}.",
            vol.id,
            if version.at_least(42) {
                "available or in-use"
            } else {
                "available"
            },
            vol.status
        )));
    }
    let mut tx =
        s.db.begin_serialized(&format!("quota:{}", vol.project_id))
            .await?;
    let limits =
        db::quota_limits(&mut tx, &vol.project_id, &Limits::defaults(&s.config.quota)).await?;
    let usage = db::usage_get(&mut tx, &vol.project_id).await?;
    quota::check_volume(&limits, &usage, new_size, false)?;
    quota::check_gigabytes(&limits, &usage, new_size - vol.size)?;
    if !db::volume_set_status(&mut tx, &vol.id, from, VolumeStatus::Extending).await? {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} changed status meanwhile.",
            vol.id
        )));
    }
    tx.commit().await?;
    let args = manager::ExtendArgs {
        volume_id: vol.id,
        new_size,
    };
    if let Err(e) = cast(s, ctx, &vol.backend, manager::EXTEND_VOLUME, &args).await {
        db::volume_set_status(
            &mut *s.db.conn().await?,
            &vol.id,
            &[VolumeStatus::Extending],
            vol.status,
        )
        .await?;
        return Err(e);
    }
    Ok(StatusCode::ACCEPTED)
}

fn bool_arg(arg: &Map<String, Value>, key: &str) -> Result<bool, VolumeError> {
    match arg.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => parse_bool(s),
        _ => Err(VolumeError::bad(format!(
            "Invalid input received: '{key}' must be a boolean."
        ))),
    }
}

async fn set_flag(
    s: &AppState,
    mut vol: Volume,
    arg: &Map<String, Value>,
    flag: &str,
) -> Result<(), VolumeError> {
    match flag {
        "bootable" => vol.bootable = bool_arg(arg, "bootable")?,
        _ => {
            if !matches!(vol.status, VolumeStatus::Available | VolumeStatus::InUse) {
                return Err(VolumeError::bad(format!(
                    "Invalid volume: Volume status must be available or in-use, not {}.",
                    vol.status
                )));
            }
            vol.readonly = bool_arg(arg, "readonly")?;
        }
    }
    db::volume_update(&mut *s.db.conn().await?, &vol).await
}

async fn transition(
    s: &AppState,
    vol: &Volume,
    from: &[VolumeStatus],
    to: VolumeStatus,
    action: &str,
) -> Result<StatusCode, VolumeError> {
    if db::volume_set_status(&mut *s.db.conn().await?, &vol.id, from, to).await? {
        Ok(StatusCode::ACCEPTED)
    } else {
        let want: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        Err(VolumeError::bad(format!(
            "Invalid volume: {action}: volume status must be {}, not {}.",
            want.join(" or "),
            vol.status
        )))
    }
}

async fn unreserve(s: &AppState, vol: &Volume) -> Result<StatusCode, VolumeError> {
    let attached = vol.attachments.iter().any(db::is_attached);
    let to = if attached {
        VolumeStatus::InUse
    } else {
        VolumeStatus::Available
    };
    transition(
        s,
        vol,
        &[VolumeStatus::Attaching, VolumeStatus::Reserved],
        to,
        "os-unreserve",
    )
    .await
}

async fn roll_detaching(s: &AppState, vol: &Volume) -> Result<StatusCode, VolumeError> {
    // Cinder ignores a roll back of a volume that is not detaching.
    db::volume_set_status(
        &mut *s.db.conn().await?,
        &vol.id,
        &[VolumeStatus::Detaching],
        VolumeStatus::InUse,
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// The legacy attach: records an attached attachment and marks the volume
/// `in-use`, in one transaction.
async fn attach(
    s: &AppState,
    vol: &Volume,
    arg: &Map<String, Value>,
) -> Result<StatusCode, VolumeError> {
    let str_arg = |k: &str| arg.get(k).and_then(Value::as_str).map(str::to_owned);
    let instance = str_arg("instance_uuid");
    let host = str_arg("host_name");
    if instance.is_none() && host.is_none() {
        return Err(VolumeError::bad(
            "Invalid request to attach volume to an invalid target",
        ));
    }
    let mode = str_arg("mode").unwrap_or_else(|| "rw".to_owned());
    if mode != "rw" && mode != "ro" {
        return Err(VolumeError::bad("Invalid request to attach volume with an invalid mode. Attaching mode should be 'rw' or 'ro'"));
    }
    if vol.readonly && mode == "rw" {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} is read-only; attach it with mode 'ro'.",
            vol.id
        )));
    }
    let now = time::now();
    let a = Attachment {
        id: AttachmentId::new(),
        volume_id: vol.id,
        project_id: vol.project_id.clone(),
        instance_uuid: instance,
        attached_host: host,
        mountpoint: str_arg("mountpoint"),
        attach_mode: mode,
        status: AttachStatus::Attached,
        connector: None,
        connection_info: None,
        attach_time: Some(now),
        detach_time: None,
        created_at: now,
    };
    let mut tx = s.db.begin().await?;
    let from = [
        VolumeStatus::Available,
        VolumeStatus::Attaching,
        VolumeStatus::Reserved,
    ];
    if !db::volume_set_attach(&mut tx, &vol.id, &from, VolumeStatus::InUse, "attached").await? {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} status must be available or attaching, not {}.",
            vol.id, vol.status
        )));
    }
    db::attachment_insert(&mut tx, &a).await?;
    tx.commit().await?;
    Ok(StatusCode::ACCEPTED)
}

/// Removes one attachment (the given one, or the only one); the volume is
/// `available` again when it was the last.
pub(super) async fn detach(
    s: &AppState,
    vol: &Volume,
    arg: &Map<String, Value>,
) -> Result<StatusCode, VolumeError> {
    let attached: Vec<&Attachment> = vol.attachments.iter().collect();
    let target = match arg.get("attachment_id").and_then(Value::as_str) {
        Some(id) => attached
            .iter()
            .find(|a| a.id.to_string() == id)
            .copied()
            .ok_or_else(|| VolumeError::attachment_not_found(id))?,
        None => match attached.as_slice() {
            [one] => *one,
            [] => {
                return Err(VolumeError::bad(format!(
                    "Invalid volume: Volume {} is not attached.",
                    vol.id
                )))
            }
            _ => {
                return Err(VolumeError::bad(
                    "Invalid volume: Volume has more than one attachment; give attachment_id.",
                ))
            }
        },
    };
    remove_attachment(s, vol, &target.id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Deletes an attachment and settles the volume's status, in one
/// transaction.
pub(super) async fn remove_attachment(
    s: &AppState,
    vol: &Volume,
    id: &AttachmentId,
) -> Result<(), VolumeError> {
    let mut tx = s.db.begin().await?;
    db::attachment_delete(&mut tx, id).await?;
    let left = db::attachment_list_of_volume(&mut tx, &vol.id).await?;
    let (to, attach) = if left.iter().any(db::is_attached) {
        (VolumeStatus::InUse, "attached")
    } else if left.is_empty() {
        (VolumeStatus::Available, "detached")
    } else {
        (VolumeStatus::Reserved, "detached")
    };
    let from = [
        VolumeStatus::InUse,
        VolumeStatus::Detaching,
        VolumeStatus::Attaching,
        VolumeStatus::Reserved,
        VolumeStatus::Available,
    ];
    db::volume_set_attach(&mut tx, &vol.id, &from, to, attach).await?;
    tx.commit().await?;
    Ok(())
}

async fn reset_status(
    s: &AppState,
    ctx: &RequestContext,
    vol: &Volume,
    arg: &Map<String, Value>,
) -> Result<StatusCode, VolumeError> {
    if !ctx.is_admin() {
        return Err(super::forbidden(
            "volume_extension:volume_admin_actions:reset_status",
        ));
    }
    let status = match arg.get("status").and_then(Value::as_str) {
        Some(st) => Some(st.parse::<VolumeStatus>().map_err(|()| {
            VolumeError::bad(format!(
                "Invalid input received: Status '{st}' is not a volume status."
            ))
        })?),
        None => None,
    };
    let attach = match arg.get("attach_status").and_then(Value::as_str) {
        Some(a @ ("attached" | "detached")) => Some(a),
        Some(a) => {
            return Err(VolumeError::bad(format!(
                "Invalid input received: Attach status '{a}' is not valid."
            )))
        }
        None => None,
    };
    if status.is_none() && attach.is_none() {
        return Err(VolumeError::bad(
            "Must specify 'status', 'attach_status' or 'migration_status' for update.",
        ));
    }
    db::volume_force_status(
        &mut *s.db.conn().await?,
        &vol.id,
        status.unwrap_or(vol.status),
        attach,
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}
