//! `/volumes`: create (blank, from an image, a snapshot or another volume),
//! list (with filters, sort and paging), detail, summary, show, update and
//! delete (with `cascade`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use stratus_auth::{Ctx, ProjectScope};
use stratus_common::ids::{ImageId, SnapshotId, VolumeId, VolumeTypeId};
use stratus_common::{time, RequestContext};

use super::view::{self, Viewer};
use super::{
    base_url, cast, id_scope, load_volume, read_scope, wants_all, write_scope, AppState,
    Microversion,
};
use crate::db;
use crate::domain::list::{self, parse_bool, parse_metadata_filter, Key, Listed};
use crate::domain::quota::{self, Limits};
use crate::domain::volume::{parse_size, VolumeSource};
use crate::domain::{
    metadata_of, validate_name, Snapshot, SnapshotStatus, Volume, VolumeStatus, VolumeType,
};
use crate::error::{CinderJson, CinderQuery, PathParams, VolumeError};
use crate::manager;

const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "size",
    "created_at",
    "updated_at",
    "availability_zone",
    "bootable",
    "project_id",
];

impl Listed for Volume {
    fn id(&self) -> String {
        self.id.to_string()
    }

    fn key(&self, key: &str) -> Option<Key> {
        let t = |s: Option<&str>| s.map(|s| Key::Text(s.to_owned())).unwrap_or(Key::Null);
        Some(match key {
            "id" => Key::Text(self.id.to_string()),
            "name" => t(self.name.as_deref()),
            "status" => Key::Text(self.status.as_str().to_owned()),
            "size" => Key::Int(self.size),
            "created_at" => Key::Text(time::to_db(self.created_at)),
            "updated_at" => Key::Text(time::to_db(self.updated_at)),
            "availability_zone" => Key::Text(self.availability_zone.clone()),
            "bootable" => Key::Int(i64::from(self.bootable)),
            "project_id" => Key::Text(self.project_id.clone()),
            _ => return None,
        })
    }
}

/// The volumes a list request returns, and whether more follow.
async fn select(
    state: &AppState,
    ctx: &RequestContext,
    q: &CinderQuery,
) -> Result<(Vec<Volume>, bool, ProjectScope), VolumeError> {
    let scope = read_scope(ctx, wants_all(q), "volume:get_all")?;
    let page = list::page(q, SORT_KEYS, state.config.limit_max)?;
    let metadata = q.get("metadata").map(parse_metadata_filter).transpose()?;
    let bootable = q.get("bootable").map(parse_bool).transpose()?;
    let mut conn = state.db.conn().await?;
    let project = match (&scope, q.get("project_id")) {
        (ProjectScope::All, Some(p)) => Some(p.to_owned()),
        (ProjectScope::All, None) => None,
        (ProjectScope::Project(p), _) => Some(p.as_str().to_owned()),
    };
    let rows = db::volume_list(&mut conn, project.as_deref()).await?;
    let rows: Vec<Volume> = rows
        .into_iter()
        .filter(|v| q.get("name").is_none_or(|n| v.name.as_deref() == Some(n)))
        .filter(|v| q.get("status").is_none_or(|s| v.status.as_str() == s))
        .filter(|v| {
            q.get("availability_zone")
                .is_none_or(|z| v.availability_zone == z)
        })
        .filter(|v| bootable.is_none_or(|b| v.bootable == b))
        .filter(|v| {
            metadata
                .as_ref()
                .is_none_or(|m| m.iter().all(|(k, want)| v.metadata.get(k) == Some(want)))
        })
        .collect();
    let (mut rows, more) = list::apply(rows, &page, "volumes")?;
    for v in &mut rows {
        v.attachments = db::attachment_list_of_volume(&mut conn, &v.id).await?;
    }
    Ok((rows, more, scope))
}

fn next_link(
    state: &AppState,
    headers: &HeaderMap,
    params: &PathParams,
    kind: &str,
    q: &CinderQuery,
    last: Option<String>,
) -> Value {
    let Some(last) = last else { return json!([]) };
    let mut query: Vec<(String, String)> =
        q.0.iter().filter(|(k, _)| k != "marker").cloned().collect();
    query.push(("marker".to_owned(), last));
    let qs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let project = params
        .0
        .get("project_id")
        .map(|p| format!("/{p}"))
        .unwrap_or_default();
    json!([{"rel": "next", "href": format!("{}/v3{project}/{kind}?{}", base_url(state, headers), qs.join("&"))}])
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    params: PathParams,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    let (rows, more, _) = select(&state, &ctx, &q).await?;
    let base = base_url(&state, &headers);
    let last = more
        .then(|| rows.last().map(|v| v.id.to_string()))
        .flatten();
    let mut body =
        json!({"volumes": rows.iter().map(|v| view::volume_summary(v, &base)).collect::<Vec<_>>()});
    if last.is_some() {
        body["volumes_links"] = next_link(&state, &headers, &params, "volumes", &q, last);
    }
    Ok(Json(body))
}

pub async fn list_detail(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    headers: HeaderMap,
    params: PathParams,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    let (rows, more, _) = select(&state, &ctx, &q).await?;
    let base = base_url(&state, &headers);
    let types = db::type_list(&mut *state.db.conn().await?).await?;
    let who = Viewer {
        admin: ctx.is_admin(),
        version,
    };
    let vols: Vec<Value> = rows
        .iter()
        .map(|v| {
            view::volume_detail(
                v,
                types.iter().find(|t| t.id == v.volume_type_id),
                &base,
                &who,
            )
        })
        .collect();
    let last = more
        .then(|| rows.last().map(|v| v.id.to_string()))
        .flatten();
    let mut body = json!({"volumes": vols});
    if last.is_some() {
        body["volumes_links"] = next_link(&state, &headers, &params, "volumes/detail", &q, last);
    }
    if version.at_least(45)
        && q.get("with_count")
            .is_some_and(|v| parse_bool(v).unwrap_or(false))
    {
        body["count"] = json!(rows.len());
    }
    Ok(Json(body))
}

/// `GET /volumes/summary` (3.12): count and total size; metadata from 3.36.
pub async fn summary(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    q: CinderQuery,
) -> Result<Json<Value>, VolumeError> {
    if !version.at_least(12) {
        return Err(VolumeError::volume_not_found("summary"));
    }
    let scope = read_scope(&ctx, wants_all(&q), "volume:get_all")?;
    let rows = db::volume_list(
        &mut *state.db.conn().await?,
        scope.filter().map(|p| p.as_str()),
    )
    .await?;
    let mut body =
        json!({"total_size": rows.iter().map(|v| v.size).sum::<i64>(), "total_count": rows.len()});
    if version.at_least(36) {
        let mut md: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for v in &rows {
            for (k, val) in &v.metadata {
                let e = md.entry(k.clone()).or_default();
                if !e.contains(val) {
                    e.push(val.clone());
                }
            }
        }
        body["metadata"] = json!(md);
    }
    Ok(Json(json!({"volume-summary": body})))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    headers: HeaderMap,
    params: PathParams,
) -> Result<Json<Value>, VolumeError> {
    // Seed steps 39–42, for the server the volume is attached to if any.
    let id = params.get("id");
    let mut attached_to = None;
    if let Ok(vid) = id.parse() {
        let mut conn = state.db.conn().await?;
        attached_to = db::attachment_list_of_volume(&mut conn, &vid)
            .await?
            .into_iter()
            .find_map(|a| a.instance_uuid);
    }
    let resource = attached_to.unwrap_or_else(|| id.to_owned());
    super::trace::received(&state.recorder, "GET volume", &resource);
    let answer = async {
        let scope = id_scope(&ctx, "volume:get")?;
        let mut conn = state.db.conn().await?;
        let v = load_volume(&mut conn, &scope, id).await?;
        let vt = db::type_get(&mut conn, &v.volume_type_id).await?;
        let who = Viewer {
            admin: ctx.is_admin(),
            version,
        };
        Ok(Json(
            json!({"volume": view::volume_detail(&v, vt.as_ref(), &base_url(&state, &headers), &who)}),
        ))
    };
    state
        .recorder
        .time(42, "volume answered", Some(&resource), answer)
        .await
}

/// An optional string field of a body (`null` is absent).
pub(super) fn opt_str(
    body: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, VolumeError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(VolumeError::bad(format!(
            "Invalid input for field/attribute {key}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

/// The object under `key` of a body, or Cinder's 400.
pub(super) fn object(
    body: Value,
    key: &str,
) -> Result<serde_json::Map<String, Value>, VolumeError> {
    match body {
        Value::Object(mut o) => match o.remove(key) {
            Some(Value::Object(inner)) => Ok(inner),
            _ => Err(VolumeError::bad(format!(
                "Missing required element '{key}' in request body."
            ))),
        },
        _ => Err(VolumeError::bad(format!(
            "Missing required element '{key}' in request body."
        ))),
    }
}

/// The type a create names (by id or name), or the default.
async fn resolve_type(
    conn: &mut db::Conn,
    requested: Option<&str>,
) -> Result<VolumeType, VolumeError> {
    let Some(name) = requested else {
        return db::type_ensure_default(conn).await;
    };
    if let Ok(id) = name.parse::<VolumeTypeId>() {
        if let Some(t) = db::type_get(conn, &id).await? {
            return Ok(t);
        }
    }
    db::type_get_by_name(conn, name)
        .await?
        .ok_or_else(|| VolumeError::type_not_found(name))
}

fn parse_id<T: std::str::FromStr>(v: &str, what: &str) -> Result<T, VolumeError> {
    v.parse()
        .map_err(|_| VolumeError::NotFound(format!("{what} {v} could not be found.")))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    headers: HeaderMap,
    CinderJson(body): CinderJson<Value>,
) -> Result<Response, VolumeError> {
    let project = write_scope(&ctx, "volume:create")?;
    let body = object(body, "volume")?;
    let name = opt_str(&body, "name")?.or(opt_str(&body, "display_name")?);
    let description = opt_str(&body, "description")?.or(opt_str(&body, "display_description")?);
    validate_name(name.as_deref(), "name")?;
    validate_name(description.as_deref(), "description")?;
    let metadata = match body.get("metadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(m) => metadata_of(m, "metadata")?,
    };
    let az = opt_str(&body, "availability_zone")?
        .unwrap_or_else(|| state.config.availability_zone.clone());
    if az != state.config.availability_zone {
        return Err(VolumeError::bad(format!(
            "Invalid input received: Availability zone '{az}' is invalid."
        )));
    }
    let snapshot_id = opt_str(&body, "snapshot_id")?;
    let source_volid = opt_str(&body, "source_volid")?;
    let image_ref = opt_str(&body, "imageRef")?.or(opt_str(&body, "image_id")?);
    if [
        snapshot_id.is_some(),
        source_volid.is_some(),
        image_ref.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
        > 1
    {
        return Err(VolumeError::bad(
            "Invalid input received: Only one of snapshot_id, source_volid and imageRef may be given.",
        ));
    }
    if opt_str(&body, "backup_id")?.is_some() {
        return Err(VolumeError::bad(
            "Invalid input received: Volume backups are not supported.",
        ));
    }
    let size = match body.get("size") {
        None | Some(Value::Null) => None,
        Some(s) => Some(parse_size(s)?),
    };

    let mut conn = state.db.conn().await?;
    let vtype = resolve_type(&mut conn, opt_str(&body, "volume_type")?.as_deref()).await?;
    let scope = ProjectScope::Project(project.clone().into());
    let (source, size, bootable) = if let Some(s) = &snapshot_id {
        let sid: SnapshotId = parse_id(s, "Snapshot")?;
        let snap = db::snapshot_get(&mut conn, &sid)
            .await?
            .filter(|x| scope.permits(&x.project_id))
            .ok_or_else(|| VolumeError::snapshot_not_found(s))?;
        if snap.status != SnapshotStatus::Available {
            return Err(VolumeError::bad(format!(
                "Invalid snapshot: Originating snapshot status must be one of 'available' values, not {}.", snap.status
            )));
        }
        let size = size.unwrap_or(snap.size);
        if size < snap.size {
            return Err(VolumeError::bad(format!(
                "Invalid input received: Volume size '{size}'GB cannot be smaller than the snapshot size {}GB. They must be >= original snapshot size.", snap.size
            )));
        }
        let src_boot = db::volume_get(&mut conn, &snap.volume_id)
            .await?
            .is_some_and(|v| v.bootable);
        (VolumeSource::Snapshot { snapshot_id: sid }, size, src_boot)
    } else if let Some(s) = &source_volid {
        let src = load_volume(&mut conn, &scope, s).await?;
        if !matches!(src.status, VolumeStatus::Available | VolumeStatus::InUse) {
            return Err(VolumeError::bad(format!(
                "Invalid volume: Source volume status must be available or in-use, not {}.",
                src.status
            )));
        }
        let size = size.unwrap_or(src.size);
        if size < src.size {
            return Err(VolumeError::bad(format!(
                "Invalid input received: Volume size '{size}'GB cannot be smaller than original volume size {}GB. They must be >= original volume size.", src.size
            )));
        }
        (
            VolumeSource::Volume { volume_id: src.id },
            size,
            src.bootable,
        )
    } else if let Some(i) = &image_ref {
        let image_id: ImageId = i.parse().map_err(|_| {
            VolumeError::bad(format!(
                "Invalid image identifier or unable to access requested image.: {i}"
            ))
        })?;
        let size = size.ok_or_else(|| {
            VolumeError::bad(
                "Invalid input received: Volume size must be given when creating from an image.",
            )
        })?;
        check_image(&state, &ctx, &image_id, size).await?;
        (VolumeSource::Image { image_id }, size, false)
    } else {
        let size = size.ok_or_else(|| {
            VolumeError::bad(
                "Invalid input received: Volume size must be an integer and greater than 0.",
            )
        })?;
        (VolumeSource::Blank, size, false)
    };

    let now = time::now();
    let vol = Volume {
        id: VolumeId::new(),
        project_id: project.clone(),
        user_id: ctx.user_id.as_ref().map(|u| u.as_str().to_owned()),
        name,
        description,
        size,
        status: VolumeStatus::Creating,
        attach_status: "detached".to_owned(),
        availability_zone: az,
        volume_type_id: vtype.id,
        bootable,
        readonly: false,
        snapshot_id: match &source {
            VolumeSource::Snapshot { snapshot_id } => Some(*snapshot_id),
            _ => None,
        },
        source_volid: match &source {
            VolumeSource::Volume { volume_id } => Some(*volume_id),
            _ => None,
        },
        image_id: match &source {
            VolumeSource::Image { image_id } => Some(*image_id),
            _ => None,
        },
        backend: state.config.backend.name().to_owned(),
        host: state.config.volume_host(),
        metadata,
        created_at: now,
        updated_at: now,
        attachments: Vec::new(),
    };
    // The quota check and the insert in one transaction, alone among the
    // project's (two creates racing for the last of the quota would both
    // see it free).
    drop(conn);
    let mut tx = state
        .db
        .begin_serialized(&format!("quota:{project}"))
        .await?;
    let limits =
        db::quota_limits(&mut tx, &project, &Limits::defaults(&state.config.quota)).await?;
    let usage = db::usage_get(&mut tx, &project).await?;
    quota::check_volume(&limits, &usage, size, true)?;
    quota::check_gigabytes(&limits, &usage, size)?;
    db::volume_insert(&mut tx, &vol).await?;
    tx.commit().await?;

    let args = manager::CreateVolumeArgs {
        volume_id: vol.id,
        source,
    };
    if let Err(e) = cast(&state, &ctx, &vol.backend, manager::CREATE_VOLUME, &args).await {
        // No manager will ever finish this row: take it back.
        db::volume_delete(&mut *state.db.conn().await?, &vol.id).await?;
        return Err(e);
    }
    let who = Viewer {
        admin: ctx.is_admin(),
        version,
    };
    let body = view::volume_detail(&vol, Some(&vtype), &base_url(&state, &headers), &who);
    Ok((StatusCode::ACCEPTED, Json(json!({"volume": body}))).into_response())
}

/// The image must exist for the caller, be active and fit in `size` GiB.
async fn check_image(
    state: &AppState,
    ctx: &RequestContext,
    id: &ImageId,
    size: i64,
) -> Result<(), VolumeError> {
    let Some(images) = &state.images else {
        return Ok(());
    };
    let token = ctx.auth_token.clone().unwrap_or_default();
    let image = images.image(id, &token).await.map_err(|e| match e {
        stratus_image_client::ClientError::NotFound(_) => {
            VolumeError::NotFound(format!("Image {id} could not be found."))
        }
        other => VolumeError::Unavailable(format!("The image service cannot be reached: {other}")),
    })?;
    if image.status.as_str() != "active" {
        return Err(VolumeError::bad(format!("Invalid image identifier or unable to access requested image.: image {id} is not active")));
    }
    let need = image
        .other
        .get("virtual_size")
        .and_then(Value::as_u64)
        .or(image.size)
        .unwrap_or(0);
    let need_gib = i64::try_from(need.div_ceil(1 << 30)).unwrap_or(i64::MAX);
    if need_gib > size {
        return Err(VolumeError::bad(format!(
            "Invalid input received: Size of specified image {need_gib} is larger than volume size {size}."
        )));
    }
    let min_disk = image.min_disk;
    if min_disk > size {
        return Err(VolumeError::bad(format!(
            "Invalid input received: Volume size {size}GB cannot be smaller than the image minDisk size {min_disk}GB."
        )));
    }
    Ok(())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Extension(version): Extension<Microversion>,
    headers: HeaderMap,
    params: PathParams,
    CinderJson(body): CinderJson<Value>,
) -> Result<Json<Value>, VolumeError> {
    write_scope(&ctx, "volume:update")?;
    let scope = id_scope(&ctx, "volume:update")?;
    let body = object(body, "volume")?;
    let mut conn = state.db.conn().await?;
    let mut v = load_volume(&mut conn, &scope, params.get("id")).await?;
    if body.contains_key("name") || body.contains_key("display_name") {
        v.name = opt_str(&body, "name")?.or(opt_str(&body, "display_name")?);
    }
    if body.contains_key("description") || body.contains_key("display_description") {
        v.description = opt_str(&body, "description")?.or(opt_str(&body, "display_description")?);
    }
    validate_name(v.name.as_deref(), "name")?;
    validate_name(v.description.as_deref(), "description")?;
    if let Some(m) = body.get("metadata") {
        v.metadata = metadata_of(m, "metadata")?;
    }
    db::volume_update(&mut conn, &v).await?;
    let v = load_volume(&mut conn, &scope, params.get("id")).await?;
    let vt = db::type_get(&mut conn, &v.volume_type_id).await?;
    let who = Viewer {
        admin: ctx.is_admin(),
        version,
    };
    Ok(Json(
        json!({"volume": view::volume_detail(&v, vt.as_ref(), &base_url(&state, &headers), &who)}),
    ))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    params: PathParams,
    q: CinderQuery,
) -> Result<StatusCode, VolumeError> {
    write_scope(&ctx, "volume:delete")?;
    let scope = id_scope(&ctx, "volume:delete")?;
    let cascade = q
        .get("cascade")
        .map(parse_bool)
        .transpose()?
        .unwrap_or(false);
    let mut conn = state.db.conn().await?;
    let v = load_volume(&mut conn, &scope, params.get("id")).await?;
    let refuse = || {
        VolumeError::bad(format!(
        "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer. (volume {} is {})", v.id, v.status
    ))
    };
    if !VolumeStatus::DELETABLE.contains(&v.status)
        || v.attach_status == "attached"
        || !v.attachments.is_empty()
    {
        return Err(refuse());
    }
    let snaps: Vec<Snapshot> = db::snapshot_list_of_volume(&mut conn, &v.id).await?;
    if !snaps.is_empty() && !cascade {
        return Err(VolumeError::bad(format!(
            "Invalid volume: Volume {} still has {} dependent snapshots.",
            v.id,
            snaps.len()
        )));
    }
    drop(conn);
    // The volume and its snapshots to `deleting` together, or none of them.
    let mut tx = state.db.begin().await?;
    if !db::volume_set_status(
        &mut tx,
        &v.id,
        VolumeStatus::DELETABLE,
        VolumeStatus::Deleting,
    )
    .await?
    {
        return Err(refuse());
    }
    for s in &snaps {
        let ok = db::snapshot_set_status(
            &mut tx,
            &s.id,
            &[SnapshotStatus::Available, SnapshotStatus::Error],
            SnapshotStatus::Deleting,
        )
        .await?;
        if !ok {
            return Err(VolumeError::bad(format!(
                "Invalid snapshot: Snapshot {} status must be available or error, not {}.",
                s.id, s.status
            )));
        }
    }
    // A snapshot made meanwhile would be orphaned by a cascade that did not
    // see it: refuse, the transaction rolls back.
    if db::snapshot_list_of_volume(&mut tx, &v.id).await?.len() != snaps.len() {
        return Err(VolumeError::Conflict(
            "A snapshot of the volume was created meanwhile.".to_owned(),
        ));
    }
    tx.commit().await?;
    if let Err(e) = cast(
        &state,
        &ctx,
        &v.backend,
        manager::DELETE_VOLUME,
        &manager::VolumeArgs { volume_id: v.id },
    )
    .await
    {
        let mut tx = state.db.begin().await?;
        db::volume_force_status(&mut tx, &v.id, v.status, None).await?;
        for s in &snaps {
            db::snapshot_set_status(&mut tx, &s.id, &[SnapshotStatus::Deleting], s.status).await?;
        }
        tx.commit().await?;
        return Err(e);
    }
    Ok(StatusCode::ACCEPTED)
}
