//! Glance v2 over HTTP: the router and the helpers every handler shares.
//! Handlers stay thin: they parse, call the domain, database and store
//! modules, and shape the response.

mod data;
mod events;
mod images;
mod import;
mod list_params;
mod members;
mod metadefs;
mod schemas;
mod tasks;
mod versions;
mod view;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::Router;
use stratus_auth::routes::{get, post, put, Route, Routes};
use stratus_auth::{require_token, with_request_id, ProjectScope, TokenValidator};
use stratus_common::ids::ImageId;
use stratus_common::RequestContext;
use stratus_db::Db;

use crate::config::ImageConfig;
use crate::db;
use crate::domain::access::{can_see, project};
use crate::domain::{Image, Visibility};
use crate::error::ImageError;
use crate::store::Store;

pub use list_params::{parse_list_query, ListQuery, SortDir, SortKey};

/// What every handler works with.
pub struct AppState {
    pub db: Db,
    pub store: Arc<dyn Store>,
    /// Where glance-direct stages data (a file store on this node).
    pub staging: Arc<dyn Store>,
    pub config: ImageConfig,
    /// `http://host:port` used when the request has no `Host` header.
    pub base_url: String,
    /// Seed steps 20 and 23–25 (image record and data served to compute).
    pub recorder: stratus_telemetry::Recorder,
}

/// The whole image API: version discovery without a token, the rest behind
/// `X-Auth-Token`, and a request id on every response.
pub fn router(state: Arc<AppState>, validator: Arc<dyn TokenValidator>) -> Router {
    let open = open_routes().into_router().with_state(state.clone());
    let api = require_token(api_routes().into_router().with_state(state), validator);
    with_request_id(
        open.merge(api)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed),
    )
}

/// Every route of the API, as [`router`] mounts it (the authorisation
/// coverage test holds an expectation for each).
pub fn route_table() -> Vec<Route> {
    open_routes().merge(api_routes()).table().to_vec()
}

/// Version discovery, open to anyone.
fn open_routes() -> Routes<Arc<AppState>> {
    Routes::new()
        .route("/", get(versions::root))
        .route("/versions", get(versions::list))
        .route("/v2", get(versions::list))
        .route("/v2/", get(versions::list))
}

/// The API behind `X-Auth-Token`.
fn api_routes() -> Routes<Arc<AppState>> {
    Routes::new()
        .route("/v2/images", get(images::list).post(images::create))
        .route(
            "/v2/images/{id}",
            get(images::show)
                .patch(images::update)
                .delete(images::delete),
        )
        .route(
            "/v2/images/{id}/file",
            put(data::upload).get(data::download),
        )
        .route("/v2/images/{id}/stage", put(import::stage))
        .route("/v2/images/{id}/import", post(import::import))
        .route("/v2/info/import", get(import::info_import))
        .route("/v2/info/stores", get(import::info_stores))
        .route(
            "/v2/images/{id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            post(images::reactivate),
        )
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(images::add_tag).delete(images::delete_tag),
        )
        .route(
            "/v2/images/{id}/members",
            get(members::list).post(members::create),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/v2/schemas/image", get(schemas::image))
        .route("/v2/schemas/images", get(schemas::images))
        .route("/v2/schemas/member", get(schemas::member))
        .route("/v2/schemas/members", get(schemas::members))
        .route("/stratus/events", get(events::list))
        .merge(metadefs::routes())
        .merge(tasks::routes())
}

async fn not_found() -> ImageError {
    ImageError::NotFound("The resource could not be found.".to_owned())
}

async fn method_not_allowed() -> ImageError {
    ImageError::MethodNotAllowed("The method is not allowed for this resource.".to_owned())
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

/// The caller's scope: its project's images, every project's for an admin
/// (Glance's admins see all); a token without a project gets Glance's 403.
fn image_scope(ctx: &RequestContext, action: &str) -> Result<ProjectScope, ImageError> {
    stratus_auth::project_scope(ctx, ctx.is_admin()).map_err(|_| {
        ImageError::Forbidden(format!(
            "You are not authorized to complete {action} action."
        ))
    })
}

/// Readers of a project, and services acting for themselves (the compute
/// agent).
fn require_read(ctx: &RequestContext) -> Result<(), ImageError> {
    image_scope(ctx, "get_image")?;
    Ok(())
}

/// Members of a project (and admins).
fn require_write(ctx: &RequestContext, action: &str) -> Result<(), ImageError> {
    image_scope(ctx, action)?;
    if ctx.can_write() {
        Ok(())
    } else {
        Err(ImageError::Forbidden(format!(
            "You are not authorized to complete {action} action."
        )))
    }
}

/// An image the caller may see, else Glance's 404 (also for ids that are not
/// UUIDs, as the CLI's name lookup relies on).
async fn load_visible(
    state: &AppState,
    ctx: &RequestContext,
    id: &str,
) -> Result<Image, ImageError> {
    image_scope(ctx, "get_image")?;
    let parsed: ImageId = id.parse().map_err(|_| ImageError::image_not_found(id))?;
    let mut conn = state.db.conn().await?;
    let image = db::image_get(&mut conn, &parsed)
        .await?
        .ok_or_else(|| ImageError::image_not_found(id))?;
    let is_member = match (image.visibility, project(ctx)) {
        (Visibility::Shared, Some(p)) => db::member_get(&mut conn, &parsed, p).await?.is_some(),
        _ => false,
    };
    if can_see(ctx, &image, is_member) {
        Ok(image)
    } else {
        Err(ImageError::image_not_found(id))
    }
}
