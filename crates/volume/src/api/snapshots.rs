//! `/snapshots`: create (of an available volume, or an in-use one with
//! `force`), list, detail, show, update, delete.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use stratus_auth::{Ctx, ProjectScope, RequestContext};
use stratus_common::ids::SnapshotId;
use stratus_common::time;

use super::view::{self, Viewer};
use super::volumes::{object, opt_str};
use super::{
    cast, id_scope, load_volume, read_scope, wants_all, write_scope, AppState, Microversion,
};
use crate::db;
use crate::domain::list::{self, parse_bool, parse_metadata_filter, Key, Listed};
use crate::domain::quota::{self, Limits};
use crate::domain::{metadata_of, validate_name, Snapshot, SnapshotStatus, VolumeStatus};
use crate::error::{CinderJson, CinderQuery, PathParams, VolumeError};
use crate::manager;

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "size",
    "created_at",
    "updated_at",
    "volume_id",
];

impl Listed for Snapshot {
    fn id(&self) -> String {
        self.id.to_string()
    }

    fn key(&self, key: &str) -> Option<Key> {
        Some(match key {
            "id" => Key::Text(self.id.to_string()),
            "name" => self.name.clone().map(Key::Text).unwrap_or(Key::Null),
            "status" => Key::Text(self.status.as_str().to_owned()),
            "size" => Key::Int(self.size),
            "created_at" => Key::Text(time::to_db(self.created_at)),
            "updated_at" => Key::Text(time::to_db(self.updated_at)),
            "volume_id" => Key::Text(self.volume_id.to_string()),
            _ => return None,
        })
    }
}

async fn load(state: &AppState, scope: &ProjectScope, id: &str) -> Result<Snapshot, VolumeError> {
    let sid: SnapshotId = id
        .parse()
        .map_err(|_| VolumeError::snapshot_not_found(id))?;
    db::snapshot_get(&mut *state.db.conn().await?, &sid)
        .await?
        .filter(|s| scope.permits(&s.project_id))
        .ok_or_else(|| VolumeError::snapshot_not_found(id))
}

async fn select(
    state: &AppState,
    ctx: &RequestContext,
    q: &CinderQuery,
) -> Result<(Vec<Snapshot>, bool), VolumeError> {
    let scope = read_scope(ctx, wants_all(q), "volume:get_all_snapshots")?;
    let page = list::page(q, SORT_KEYS, state.config.limit_max)?;
    let metadata = q.get("metadata").map(parse_metadata_filter).transpose()?;
    let rows = db::snapshot_list(
        &mut *state.db.conn().await?,
        scope.filter().map(|p| p.as_str()),
    )
    .await?;
    let rows = rows
        .into_iter()
        .filter(|s| q.get("name").is_none_or(|n| s.name.as_deref() == Some(n)))
        .filter(|s| q.get("status").is_none_or(|st| s.status.as_str() == st))
        .filter(|s| {
            q.get("volume_id")
                .is_none_or(|v| s.volume_id.to_string() == v)
        })
        .filter(|s| {
            metadata
                .as_ref()
                .is_none_or(|m| m.iter().all(|(k, v)| s.metadata.get(k) == Some(v)))
        })
        .collect();
    list::apply(rows, &page, "snapshots")
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    list_detail(State(state), Ctx(ctx), Extension(version), q).await
}

pub async fn list_detail(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    let (rows, _more) = select(&state, &ctx, &q).await?;
    let who = Viewer {
        admin: ctx.is_admin(),
        version,
    };
    Ok(Json(
        json!({"snapshots": rows.iter().map(|s| view::snapshot(s, &who)).collect::<Vec<_>>()}),
    ))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    let scope = id_scope(&ctx, "volume:get_snapshot")?;
    let s = load(&state, &scope, params.get("id")).await?;
    let who = Viewer {
        admin: ctx.is_admin(),
        version,
    };
    Ok(Json(json!({"snapshot": view::snapshot(&s, &who)})))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    CinderJson(body): CinderJson<Value>,
) -> Result<Response, VolumeError> {
    let project = write_scope(&ctx, "volume:create_snapshot")?;
    let body = object(body, "snapshot")?;
    let volume_id = opt_str(&body, "volume_id")?
        .ok_or_else(|| VolumeError::bad("'volume_id' must be specified"))?;
    let name = opt_str(&body, "name")?.or(opt_str(&body, "display_name")?);
    let description = opt_str(&body, "description")?.or(opt_str(&body, "display_description")?);
    validate_name(name.as_deref(), "name")?;
    validate_name(description.as_deref(), "description")?;
    let force = match body.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => parse_bool(s)?,
        Some(other) => {
            return Err(VolumeError::bad(format!(
                "Invalid value '{other}' for force."
            )))
        }
    };
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => Default::default(),
        Some(m) => metadata_of(m, "metadata")?,
    };
    let scope = ProjectScope::Project(project.clone().into());
    let vol = load_volume(&mut *state.db.conn().await?, &scope, &volume_id).await?;
    let ok = vol.status == VolumeStatus::Available || (force && vol.status == VolumeStatus::InUse);
    if !ok {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} status must be available{}, but current status is: {}.",
            vol.id,
            if force { " or in-use" } else { "" },
            vol.status
        )));
    }
    let now = time::now();
    let snap = Snapshot {
        id: SnapshotId::new(),
        project_id: project.clone(),
        user_id: ctx.user_id.as_ref().map(|u| u.as_str().to_owned()),
        volume_id: vol.id,
        name,
        description,
        size: vol.size,
        status: SnapshotStatus::Creating,
        metadata,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state
        .db
        .begin_serialized(&format!("quota:{project}"))
        .await?;
    let limits =
        db::quota_limits(&mut tx, &project, &Limits::defaults(&state.config.quota)).await?;
    let usage = db::usage_get(&mut tx, &project).await?;
    quota::check_snapshot(&limits, &usage, snap.size)?;
    // The volume must still be there and snapshot-able (not deleting).
    let still = db::volume_get(&mut tx, &vol.id).await?;
    if !still.is_some_and(|v| matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse)) {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} changed status meanwhile.",
            vol.id
        )));
    }
    db::snapshot_insert(&mut tx, &snap).await?;
    tx.commit().await?;
    if let Err(e) = cast(
        &state,
        &ctx,
        &vol.backend,
        manager::CREATE_SNAPSHOT,
        &manager::SnapshotArgs {
            snapshot_id: snap.id,
        },
    )
    .await
    {
        db::snapshot_delete(&mut *state.db.conn().await?, &snap.id).await?;
        return Err(e);
    }
    let who = Viewer {
        admin: ctx.is_admin(),
        version,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"snapshot": view::snapshot(&snap, &who)})),
    )
        .into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    write_scope(&ctx, "volume:update_snapshot")?;
    let scope = id_scope(&ctx, "volume:update_snapshot")?;
    let body = object(body, "snapshot")?;
    let mut s = load(&state, &scope, params.get("id")).await?;
    if body.contains_key("name") || body.contains_key("display_name") {
        s.name = opt_str(&body, "name")?.or(opt_str(&body, "display_name")?);
    }
    if body.contains_key("description") || body.contains_key("display_description") {
        s.description = opt_str(&body, "description")?.or(opt_str(&body, "display_description")?);
    }
    validate_name(s.name.as_deref(), "name")?;
    validate_name(s.description.as_deref(), "description")?;
    db::snapshot_update(&mut *state.db.conn().await?, &s).await?;
    let s = load(&state, &scope, params.get("id")).await?;
    let who = Viewer {
        admin: ctx.is_admin(),
        version,
    };
    Ok(Json(json!({"snapshot": view::snapshot(&s, &who)})))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
) -> Result<StatusCode, VolumeError> {
    write_scope(&ctx, "volume:delete_snapshot")?;
    let scope = id_scope(&ctx, "volume:delete_snapshot")?;
    let s = load(&state, &scope, params.get("id")).await?;
    let from = [SnapshotStatus::Available, SnapshotStatus::Error];
    if !db::snapshot_set_status(
        &mut *state.db.conn().await?,
        &s.id,
        &from,
        SnapshotStatus::Deleting,
    )
    .await?
    {
        return Err(VolumeError::bad(format!(
            "Invalid snapshot: Snapshot status must be available or error and must not be part of a group, not {}.", s.status
        )));
    }
    let backend = db::volume_get(&mut *state.db.conn().await?, &s.volume_id)
        .await?
        .map(|v| v.backend)
        .unwrap_or_else(|| state.config.backend.name().to_owned());
    if let Err(e) = cast(
        &state,
        &ctx,
        &backend,
        manager::DELETE_SNAPSHOT,
        &manager::SnapshotArgs { snapshot_id: s.id },
    )
    .await
    {
        db::snapshot_set_status(
            &mut *state.db.conn().await?,
            &s.id,
            &[SnapshotStatus::Deleting],
            s.status,
        )
        .await?;
        return Err(e);
    }
    Ok(StatusCode::ACCEPTED)
}
