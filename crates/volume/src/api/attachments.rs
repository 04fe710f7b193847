//! `/attachments` (3.27 and later): a server reserves a volume (create),
//! gives its connector and gets the connection info (update, or create with
//! a connector), marks it attached (`os-complete`, 3.44) and lets it go
//! (delete).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{json, Map, Value};
use stratus_auth::{Ctx, ProjectScope, RequestContext};
use stratus_common::ids::AttachmentId;
use stratus_common::time;

use super::view;
use super::volumes::object;
use super::{id_scope, load_volume, read_scope, wants_all, write_scope, AppState, Microversion};
use crate::db;
use crate::domain::{AttachStatus, Attachment, Volume, VolumeStatus};
use crate::error::{CinderJson, CinderQuery, PathParams, VolumeError};
use crate::manager;

fn require_version(v: Microversion, minor: u32) -> Result<(), VolumeError> {
    if v.at_least(minor) {
        Ok(())
    } else {
        Err(VolumeError::NotFound(format!(
            "The attachments API needs microversion 3.{minor} or later."
        )))
    }
}

async fn load(state: &AppState, scope: &ProjectScope, id: &str) -> Result<Attachment, VolumeError> {
    let aid: AttachmentId = id
        .parse()
        .map_err(|_| VolumeError::attachment_not_found(id))?;
    db::attachment_get(&mut *state.db.conn().await?, &aid)
        .await?
        .filter(|a| scope.permits(&a.project_id))
        .ok_or_else(|| VolumeError::attachment_not_found(id))
}

/// The connection info for `connector`, from the volume's manager.
async fn connect(
    state: &AppState,
    ctx: &RequestContext,
    vol: &Volume,
    connector: &Value,
) -> Result<Value, VolumeError> {
    let mut info: Value = state
        .bus
        .call(
            &manager::topic(&vol.backend),
            manager::INITIALIZE_CONNECTION,
            ctx,
            &manager::ConnectionArgs {
                volume_id: vol.id,
                connector: connector.clone(),
            },
        )
        .await?;
    if let Some(data) = info.get_mut("data").and_then(Value::as_object_mut) {
        data.insert(
            "access_mode".to_owned(),
            json!(if vol.readonly { "ro" } else { "rw" }),
        );
    }
    Ok(info)
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    // Seed steps 39–42, for the server the volume is attached to.
    let resource = body
        .get("attachment")
        .and_then(|a| a.get("instance_uuid").or_else(|| a.get("volume_uuid")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    super::trace::received(&state.recorder, "attachment create", &resource);
    let answer = create_attachment(&state, ctx, version, body);
    state
        .recorder
        .time(42, "attachment answered", Some(&resource), answer)
        .await
}

async fn create_attachment(
    state: &Arc<AppState>,
    ctx: stratus_common::RequestContext,
    version: Microversion,
    body: Value,
) -> Result<Json<Value>, VolumeError> {
    require_version(version, 27)?;
    write_scope(&ctx, "volume:attachment_create")?;
    let scope = id_scope(&ctx, "volume:attachment_create")?;
    let body = object(body, "attachment")?;
    let volume_id = body
        .get("volume_uuid")
        .and_then(Value::as_str)
        .ok_or_else(|| VolumeError::bad("'volume_uuid' must be specified"))?;
    let instance = body
        .get("instance_uuid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let connector = body.get("connector").filter(|c| !c.is_null()).cloned();
    let mode = match body.get("mode").and_then(Value::as_str) {
        None => "rw".to_owned(),
        Some(m @ ("rw" | "ro")) => m.to_owned(),
        Some(m) => {
            return Err(VolumeError::bad(format!(
                "Invalid attach mode '{m}': must be 'rw' or 'ro'."
            )))
        }
    };
    let vol = load_volume(&mut *state.db.conn().await?, &scope, volume_id).await?;
    let connection_info = match &connector {
        Some(c) => Some(connect(state, &ctx, &vol, c).await?),
        None => None,
    };
    let now = time::now();
    let a = Attachment {
        id: AttachmentId::new(),
        volume_id: vol.id,
        project_id: vol.project_id.clone(),
        instance_uuid: instance,
        attached_host: connector
            .as_ref()
            .and_then(|c| c.get("host"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        mountpoint: connector
            .as_ref()
            .and_then(|c| c.get("mountpoint"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        attach_mode: mode,
        status: if connector.is_some() {
            AttachStatus::Attaching
        } else {
            AttachStatus::Reserved
        },
        connector,
        connection_info,
        attach_time: None,
        detach_time: None,
        created_at: now,
    };
    // Reserve the volume and record the attachment together. One attachment
    // at a time: volumes here are not multiattach.
    let mut tx = state.db.begin().await?;
    let to = if a.status == AttachStatus::Attaching {
        VolumeStatus::Attaching
    } else {
        VolumeStatus::Reserved
    };
    if !db::volume_set_status(&mut tx, &vol.id, &[VolumeStatus::Available], to).await? {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} status must be available to reserve, but the current status is: {}.", vol.id, vol.status
        )));
    }
    db::attachment_insert(&mut tx, &a).await?;
    tx.commit().await?;
    Ok(Json(json!({"attachment": view::attachment(&a)})))
}

async fn select(
    state: &AppState,
    ctx: &RequestContext,
    q: &CinderQuery,
) -> Result<Vec<Attachment>, VolumeError> {
    let scope = read_scope(ctx, wants_all(q), "volume:attachment_get_all")?;
    let rows = db::attachment_list(
        &mut *state.db.conn().await?,
        scope.filter().map(|p| p.as_str()),
    )
    .await?;
    Ok(rows
        .into_iter()
        .filter(|a| {
            q.get("volume_id")
                .is_none_or(|v| a.volume_id.to_string() == v)
        })
        .filter(|a| {
            q.get("instance_id")
                .is_none_or(|i| a.instance_uuid.as_deref() == Some(i))
        })
        .filter(|a| q.get("status").is_none_or(|s| a.status.as_str() == s))
        .collect())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    require_version(version, 27)?;
    let rows = select(&state, &ctx, &q).await?;
    Ok(Json(
        json!({"attachments": rows.iter().map(view::attachment_summary).collect::<Vec<_>>()}),
    ))
}

pub async fn list_detail(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    require_version(version, 27)?;
    let rows = select(&state, &ctx, &q).await?;
    Ok(Json(
        json!({"attachments": rows.iter().map(view::attachment).collect::<Vec<_>>()}),
    ))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    require_version(version, 27)?;
    let scope = id_scope(&ctx, "volume:attachment_get")?;
    let a = load(&state, &scope, params.get("id")).await?;
    Ok(Json(json!({"attachment": view::attachment(&a)})))
}

/// `PUT` with a connector: the connection info.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    require_version(version, 27)?;
    write_scope(&ctx, "volume:attachment_update")?;
    let scope = id_scope(&ctx, "volume:attachment_update")?;
    let body = object(body, "attachment")?;
    let connector = body
        .get("connector")
        .filter(|c| c.is_object())
        .cloned()
        .ok_or_else(|| VolumeError::bad("'connector' must be specified"))?;
    let mut a = load(&state, &scope, params.get("id")).await?;
    let vol = load_volume(
        &mut *state.db.conn().await?,
        &scope,
        &a.volume_id.to_string(),
    )
    .await?;
    a.connection_info = Some(connect(&state, &ctx, &vol, &connector).await?);
    a.attached_host = connector
        .get("host")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(a.attached_host);
    a.mountpoint = connector
        .get("mountpoint")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(a.mountpoint);
    a.connector = Some(connector);
    if a.status == AttachStatus::Reserved {
        a.status = AttachStatus::Attaching;
    }
    let mut tx = state.db.begin().await?;
    db::attachment_update(&mut tx, &a).await?;
    db::volume_set_status(
        &mut tx,
        &vol.id,
        &[VolumeStatus::Reserved],
        VolumeStatus::Attaching,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({"attachment": view::attachment(&a)})))
}

/// `POST /attachments/{id}/action` `{"os-complete": null}` (3.44).
pub async fn action(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    params: PathParams,
    CinderJson(body): CinderJson<Map<String, Value>>,
) -> Result<StatusCode, VolumeError> {
    require_version(version, 44)?;
    write_scope(&ctx, "volume:attachment_complete")?;
    if !body.contains_key("os-complete") {
        let name = body.keys().next().cloned().unwrap_or_default();
        return Err(VolumeError::bad(format!("There is no such action: {name}")));
    }
    let scope = id_scope(&ctx, "volume:attachment_complete")?;
    let mut a = load(&state, &scope, params.get("id")).await?;
    if a.connection_info.is_none() {
        return Err(VolumeError::bad(
            "Invalid input received: The attachment has no connector yet; update it first.",
        ));
    }
    a.status = AttachStatus::Attached;
    a.attach_time = Some(time::now());
    let mut tx = state.db.begin().await?;
    db::attachment_update(&mut tx, &a).await?;
    let from = [
        VolumeStatus::Attaching,
        VolumeStatus::Reserved,
        VolumeStatus::InUse,
    ];
    db::volume_set_attach(
        &mut tx,
        &a.volume_id,
        &from,
        VolumeStatus::InUse,
        "attached",
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    require_version(version, 27)?;
    write_scope(&ctx, "volume:attachment_delete")?;
    let scope = id_scope(&ctx, "volume:attachment_delete")?;
    let a = load(&state, &scope, params.get("id")).await?;
    let vol = load_volume(
        &mut *state.db.conn().await?,
        &scope,
        &a.volume_id.to_string(),
    )
    .await?;
    super::actions::remove_attachment(&state, &vol, &a.id).await?;
    Ok(Json(json!({})))
}
