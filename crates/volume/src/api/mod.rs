//! Cinder v3 over HTTP: the router, the microversion layer and the helpers
//! every handler shares. Handlers stay thin: they parse, check who may do
//! what, call the domain and db modules, cast to the manager and shape the
//! response ([`view`]).
//!
//! Every route is mounted twice: under `/v3/{project_id}` (the catalog's
//! URL) and, as Cinder does from 3.67, under `/v3`.

mod actions;
mod attachments;
mod events;
mod info;
mod metadata;
mod quotas;
mod snapshots;
mod trace;
mod types;
mod upload_image;
mod versions;
mod view;
mod volumes;

use std::sync::Arc;

use axum::extract::{RawPathParams, Request};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use stratus_auth::routes::{get, post, Route, Routes};
use stratus_auth::{require_token, with_request_id, ProjectScope, TokenValidator};
use stratus_bus::Bus;
use stratus_common::ids::VolumeId;
use stratus_common::RequestContext;
use stratus_db::Db;
use stratus_image_client::ImageClient;

use crate::config::VolumeConfig;
use crate::db;
use crate::domain::Volume;
use crate::error::VolumeError;

/// The microversions this API speaks (Cinder Zed's range).
pub const MIN_VERSION: Microversion = Microversion(0);
pub const MAX_VERSION: Microversion = Microversion(70);

/// `3.<minor>`, from `OpenStack-API-Version: volume 3.<minor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion(pub u32);

impl Microversion {
    pub fn at_least(self, minor: u32) -> bool {
        self.0 >= minor
    }
}

impl std::fmt::Display for Microversion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "3.{}", self.0)
    }
}

/// What every handler works with.
pub struct AppState {
    pub db: Db,
    pub bus: Bus,
    pub config: VolumeConfig,
    /// `http://host:port` used when the request has no `Host` header.
    pub base_url: String,
    /// The image API, to check an image a volume is made from (with the
    /// user's token); `None` when this deployment has none (tests).
    pub images: Option<ImageClient>,
    /// Seed steps 39–42 (a volume read or attached for a server).
    pub recorder: stratus_telemetry::Recorder,
}

/// The whole volume API: version discovery without a token, the rest behind
/// `X-Auth-Token`, every response with a request id and (past discovery)
/// the microversion it was served at.
pub fn router(state: Arc<AppState>, validator: Arc<dyn TokenValidator>) -> Router {
    let open = open_routes().into_router().with_state(state.clone());
    let api = api_routes()
        .into_router()
        .route_layer(axum::middleware::from_fn(microversion))
        .merge(stratus_routes().into_router())
        .with_state(state);
    let api = require_token(api, Arc::new(trace::TimedValidator(validator)))
        .layer(axum::middleware::from_fn(trace::validation_slot));
    with_request_id(
        open.merge(api)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed),
    )
}

/// Every route of the API, as [`router`] mounts it (the authorisation
/// coverage test holds an expectation for each).
pub fn route_table() -> Vec<Route> {
    open_routes()
        .merge(api_routes())
        .merge(stratus_routes())
        .table()
        .to_vec()
}

fn open_routes() -> Routes<Arc<AppState>> {
    Routes::new()
        .route("/", get(versions::root))
        .route("/v3", get(versions::v3))
        .route("/v3/", get(versions::v3))
}

fn api_routes() -> Routes<Arc<AppState>> {
    project_routes("/v3/{project_id}").merge(project_routes("/v3"))
}

/// Behind the token check but outside Cinder's microversions.
fn stratus_routes() -> Routes<Arc<AppState>> {
    Routes::new().route("/stratus/events", get(events::list))
}

fn project_routes(p: &str) -> Routes<Arc<AppState>> {
    Routes::new()
        .route(
            &format!("{p}/volumes"),
            get(volumes::list).post(volumes::create),
        )
        .route(&format!("{p}/volumes/detail"), get(volumes::list_detail))
        .route(&format!("{p}/volumes/summary"), get(volumes::summary))
        .route(
            &format!("{p}/volumes/{{id}}"),
            get(volumes::show)
                .put(volumes::update)
                .delete(volumes::delete),
        )
        .route(&format!("{p}/volumes/{{id}}/action"), post(actions::action))
        .route(
            &format!("{p}/volumes/{{id}}/metadata"),
            get(metadata::list)
                .post(metadata::merge)
                .put(metadata::replace),
        )
        .route(
            &format!("{p}/volumes/{{id}}/metadata/{{key}}"),
            get(metadata::show)
                .put(metadata::set)
                .delete(metadata::delete),
        )
        .route(&format!("{p}/types"), get(types::list).post(types::create))
        .route(
            &format!("{p}/types/{{id}}"),
            get(types::show).put(types::update).delete(types::delete),
        )
        .route(
            &format!("{p}/types/{{id}}/extra_specs"),
            get(types::specs_list).post(types::specs_merge),
        )
        .route(
            &format!("{p}/types/{{id}}/extra_specs/{{key}}"),
            get(types::spec_show)
                .put(types::spec_set)
                .delete(types::spec_delete),
        )
        .route(
            &format!("{p}/snapshots"),
            get(snapshots::list).post(snapshots::create),
        )
        .route(
            &format!("{p}/snapshots/detail"),
            get(snapshots::list_detail),
        )
        .route(
            &format!("{p}/snapshots/{{id}}"),
            get(snapshots::show)
                .put(snapshots::update)
                .delete(snapshots::delete),
        )
        .route(
            &format!("{p}/attachments"),
            get(attachments::list).post(attachments::create),
        )
        .route(
            &format!("{p}/attachments/detail"),
            get(attachments::list_detail),
        )
        .route(
            &format!("{p}/attachments/{{id}}"),
            get(attachments::show)
                .put(attachments::update)
                .delete(attachments::delete),
        )
        .route(
            &format!("{p}/attachments/{{id}}/action"),
            post(attachments::action),
        )
        .route(
            &format!("{p}/os-quota-sets/{{id}}"),
            get(quotas::show).put(quotas::update).delete(quotas::delete),
        )
        .route(
            &format!("{p}/os-quota-sets/{{id}}/defaults"),
            get(quotas::defaults),
        )
        .route(&format!("{p}/limits"), get(info::limits))
        .route(
            &format!("{p}/os-availability-zone"),
            get(info::availability_zones),
        )
        .route(&format!("{p}/extensions"), get(info::extensions))
}

async fn not_found() -> VolumeError {
    VolumeError::NotFound("The resource could not be found.".to_owned())
}

async fn method_not_allowed() -> VolumeError {
    VolumeError::MethodNotAllowed("The method is not allowed for this resource.".to_owned())
}

/// The requested microversion: none is 3.0, `latest` the newest; anything
/// else outside 3.0..=3.70 is Cinder's 406 (400 when it is not a version).
pub fn parse_version(headers: &HeaderMap) -> Result<Microversion, VolumeError> {
    let mut requested = None;
    for v in headers.get_all("openstack-api-version") {
        let s = v
            .to_str()
            .map_err(|_| VolumeError::bad("Invalid OpenStack-API-Version header."))?;
        for part in s.split(',') {
            let mut it = part.split_whitespace();
            if let (Some(service), Some(ver)) = (it.next(), it.next()) {
                if service.eq_ignore_ascii_case("volume") {
                    requested = Some(ver.to_owned());
                }
            }
        }
    }
    let Some(ver) = requested else {
        return Ok(MIN_VERSION);
    };
    if ver == "latest" {
        return Ok(MAX_VERSION);
    }
    let bad = || {
        VolumeError::bad(format!(
            "API Version String {ver} is of invalid format. Must be of format MajorNum.MinorNum."
        ))
    };
    let (major, minor) = ver.split_once('.').ok_or_else(bad)?;
    let major: u32 = major.parse().map_err(|_| bad())?;
    let minor: u32 = minor.parse().map_err(|_| bad())?;
    if major != 3 || minor > MAX_VERSION.0 {
        return Err(VolumeError::NotAcceptable(format!(
            "Version {ver} is not supported by the API. Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."
        )));
    }
    Ok(Microversion(minor))
}

/// Parses the microversion, checks the URL's project against the token's
/// (Cinder's "Malformed request url"), and says which version answered.
async fn microversion(params: RawPathParams, mut req: Request, next: Next) -> Response {
    let version = match parse_version(req.headers()) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let url_project = params
        .iter()
        .find(|(k, _)| *k == "project_id")
        .map(|(_, v)| v.to_owned());
    match url_project {
        Some(p) => {
            let token_project = req
                .extensions()
                .get::<RequestContext>()
                .and_then(|c| c.project_id.as_ref())
                .map(|p| p.as_str().to_owned());
            if let Some(t) = token_project.filter(|t| *t != p) {
                return VolumeError::bad(format!(
                    "Malformed request url: URL's project_id '{p}' doesn't match Context's project_id '{t}'"
                ))
                .into_response();
            }
        }
        // Project-less URLs came with 3.67.
        None if !version.at_least(67) => return not_found().await.into_response(),
        None => {}
    }
    req.extensions_mut().insert(version);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("volume {version}")) {
        h.insert("openstack-api-version", v);
    }
    h.insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
    resp
}

/// `http://host:port` as the client reached us.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ']))
        .map(|h| format!("http://{h}"))
        .unwrap_or_else(|| state.base_url.clone())
}

fn forbidden(action: &str) -> VolumeError {
    VolumeError::Forbidden(format!("Policy doesn't allow {action} to be performed."))
}

/// The caller's scope for a read; `all_tenants` asks for every project
/// (admins only).
fn read_scope(
    ctx: &RequestContext,
    all_tenants: bool,
    action: &str,
) -> Result<ProjectScope, VolumeError> {
    stratus_auth::project_scope(ctx, all_tenants).map_err(|_| forbidden(action))
}

/// The caller's project, for a write (members and admins).
fn write_scope(ctx: &RequestContext, action: &str) -> Result<String, VolumeError> {
    let scope = read_scope(ctx, false, action)?;
    if !ctx.can_write() {
        return Err(forbidden(action));
    }
    match scope {
        ProjectScope::Project(p) => Ok(p.as_str().to_owned()),
        ProjectScope::All => Err(forbidden(action)),
    }
}

/// Admins act on every project's volumes by id, as in Cinder; others on
/// their own project's.
fn id_scope(ctx: &RequestContext, action: &str) -> Result<ProjectScope, VolumeError> {
    let scope = read_scope(ctx, false, action)?;
    Ok(if ctx.is_admin() {
        ProjectScope::All
    } else {
        scope
    })
}

/// `all_tenants` given at all (any value but false-ish), as Cinder reads it.
fn wants_all(q: &crate::error::CinderQuery) -> bool {
    q.get("all_tenants").is_some_and(|v| {
        !matches!(
            v.to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off" | "f" | "n"
        )
    })
}

/// A volume inside `scope`, else 404 (also for ids that are not UUIDs, as
/// clients' name lookups rely on).
async fn load_volume(
    conn: &mut db::Conn,
    scope: &ProjectScope,
    id: &str,
) -> Result<Volume, VolumeError> {
    let parsed: VolumeId = id.parse().map_err(|_| VolumeError::volume_not_found(id))?;
    let mut v = db::volume_get(conn, &parsed)
        .await?
        .filter(|v| scope.permits(&v.project_id))
        .ok_or_else(|| VolumeError::volume_not_found(id))?;
    v.attachments = db::attachment_list_of_volume(conn, &v.id).await?;
    Ok(v)
}

/// Tells the volume's manager to do `method`; on failure the caller undoes
/// its row change.
async fn cast(
    state: &AppState,
    ctx: &RequestContext,
    backend: &str,
    method: &str,
    args: &impl serde::Serialize,
) -> Result<(), VolumeError> {
    state
        .bus
        .cast(&crate::manager::topic(backend), method, ctx, args)
        .await
        .map_err(|e| VolumeError::Unavailable(format!("The volume manager cannot be reached: {e}")))
}

pub use versions::version_document;
