//! `/v2/images` and `/v2/images/{id}`: create, list, show, patch, delete,
//! deactivate/reactivate and tags.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};
use stratus_auth::Ctx;
use stratus_common::time;

use super::list_params::{compare, parse_list_query};
use super::view::image_json;
use super::{base_url, load_visible, require_read, require_write, AppState};
use crate::db;
use crate::domain::access::{owns, project, sees_locations};
use crate::domain::patch::{self, Quotas};
use crate::domain::{Image, ImageStatus};
use crate::error::{parse_json, GlanceJson, GlancePath, GlanceQuery, ImageError};

fn quotas(state: &AppState) -> Quotas {
    Quotas {
        properties: state.config.property_quota,
        tags: state.config.tag_quota,
    }
}

/// The owner (or an admin) may change an image it can see; others get 403.
fn require_owner(
    ctx: &stratus_auth::RequestContext,
    image: &Image,
    action: &str,
) -> Result<(), ImageError> {
    require_write(ctx, action)?;
    if owns(ctx, image) {
        Ok(())
    } else {
        Err(ImageError::Forbidden(format!(
            "You are not authorized to complete {action} action."
        )))
    }
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    GlanceJson(body): GlanceJson<Value>,
) -> Result<Response, ImageError> {
    require_write(&ctx, "add_image")?;
    let Value::Object(body) = body else {
        return Err(ImageError::BadRequest(
            "Request body must be a JSON object.".to_owned(),
        ));
    };
    let id = patch::requested_id(&body)?.unwrap_or_default();
    let mut image = Image::new(id, project(&ctx).map(str::to_owned), time::now());
    patch::apply_create(&ctx, &mut image, &body, quotas(&state))?;
    db::image_insert(&mut *state.db.conn().await?, &image).await?;
    let location = format!("{}/v2/images/{}", base_url(&state, &headers), image.id);
    let mut resp = (
        StatusCode::CREATED,
        Json(image_json(&image, sees_locations(&ctx))),
    )
        .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = location.parse() {
        h.insert(header::LOCATION, v);
    }
    // Glance advertises interoperable import and the stores on create;
    // openstacksdk reads the import methods from this header.
    if let Ok(v) = super::import::IMPORT_METHODS.join(",").parse() {
        h.insert("openstack-image-import-methods", v);
    }
    if let Ok(v) = state.config.store_id().parse() {
        h.insert("openstack-image-store-ids", v);
    }
    Ok(resp)
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
) -> Result<Json<Value>, ImageError> {
    let answer = async {
        require_read(&ctx)?;
        let image = load_visible(&state, &ctx, &id).await?;
        Ok(Json(image_json(&image, sees_locations(&ctx))))
    };
    state
        .recorder
        .time(20, "image record answered", Some(&id), answer)
        .await
}

/// Query-string encoding as Python's `urlencode` does it.
fn encode_query(params: &[(String, String)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlanceQuery(params): GlanceQuery,
) -> Result<Json<Value>, ImageError> {
    require_read(&ctx)?;
    let q = parse_list_query(
        &ctx,
        &params,
        state.config.limit_default,
        state.config.limit_max,
    )?;
    let mut images = db::image_list(&mut *state.db.conn().await?, &q.filter).await?;
    images.sort_by(|a, b| compare(a, b, &q.sort));
    if let Some(marker) = &q.marker {
        let marker_image = load_visible(&state, &ctx, marker)
            .await
            .map_err(|_| ImageError::BadRequest(format!("Marker {marker} could not be found.")))?;
        images.retain(|i| compare(i, &marker_image, &q.sort) == std::cmp::Ordering::Greater);
    }
    images.truncate(q.limit);
    db::images_load_extras(&mut *state.db.conn().await?, &mut images).await?;

    let show_locations = sees_locations(&ctx);
    let mut rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "marker")
        .cloned()
        .collect();
    let mut body = Map::new();
    body.insert(
        "images".to_owned(),
        Value::Array(
            images
                .iter()
                .map(|i| image_json(i, show_locations))
                .collect(),
        ),
    );
    let first = if rest.is_empty() {
        "/v2/images".to_owned()
    } else {
        format!("/v2/images?{}", encode_query(&rest))
    };
    body.insert("first".to_owned(), Value::String(first));
    body.insert(
        "schema".to_owned(),
        Value::String("/v2/schemas/images".to_owned()),
    );
    if q.limit > 0 && images.len() == q.limit {
        if let Some(last) = images.last() {
            rest.push(("marker".to_owned(), last.id.to_string()));
            body.insert(
                "next".to_owned(),
                Value::String(format!("/v2/images?{}", encode_query(&rest))),
            );
        }
    }
    Ok(Json(Value::Object(body)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ImageError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut image = load_visible(&state, &ctx, &id).await?;
    let Some(form) = patch::patch_form(content_type) else {
        let types: Vec<&str> = patch::PATCH_MEDIA_TYPES.iter().map(|(m, _)| *m).collect();
        return Err(ImageError::UnsupportedMediaType(format!(
            "Unsupported Content-Type '{content_type}'; use one of {}",
            types.join(", ")
        )));
    };
    require_owner(&ctx, &image, "modify_image")?;
    let raw: Value = parse_json(&body)?;
    let changes = patch::parse_patch(&raw, form)?;
    patch::apply_patch(&ctx, &mut image, &changes, quotas(&state))?;
    image.updated_at = time::now();
    if !db::image_save(&mut *state.db.conn().await?, &image).await? {
        return Err(ImageError::Conflict(
            "The image was changed by another request; retry.".to_owned(),
        ));
    }
    image.generation += 1;
    Ok(Json(image_json(&image, sees_locations(&ctx))))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
) -> Result<StatusCode, ImageError> {
    let image = load_visible(&state, &ctx, &id).await?;
    require_owner(&ctx, &image, "delete_image")?;
    if image.protected {
        return Err(ImageError::Forbidden(format!(
            "Image {id} is protected and cannot be deleted."
        )));
    }
    let marked = db::image_mark_deleted(&mut *state.db.conn().await?, &image.id).await?;
    let Some(_locations) = marked else {
        // Deleted meanwhile, or protected meanwhile: look again to say which.
        let again = db::image_get(&mut *state.db.conn().await?, &image.id).await?;
        return match again {
            Some(i) if i.protected => Err(ImageError::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            ))),
            _ => Err(ImageError::image_not_found(&id)),
        };
    };
    // The row says deleted first, so nobody reads data we are removing. A
    // failure here leaves an orphan object, which is logged; the image is
    // gone for clients either way.
    if let Err(e) = state.store.delete(&image.id.to_string()).await {
        tracing::warn!(image = %image.id, error = %e, "deleting image data failed");
    }
    // Data staged for a glance-direct import goes too. A stage or import
    // still running finds the image deleted when it ends and removes what
    // it wrote itself.
    if matches!(
        image.status,
        ImageStatus::Uploading | ImageStatus::Importing | ImageStatus::Queued
    ) {
        if let Err(e) = state.staging.delete(&image.id.to_string()).await {
            tracing::warn!(image = %image.id, error = %e, "deleting staged data failed");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active_state(
    state: &AppState,
    ctx: &stratus_auth::RequestContext,
    id: &str,
    to: ImageStatus,
) -> Result<StatusCode, ImageError> {
    let image = load_visible(state, ctx, id).await?;
    let action = if to == ImageStatus::Deactivated {
        "deactivate"
    } else {
        "reactivate"
    };
    // Glance's default policy: admins or members of the owning project.
    require_owner(ctx, &image, action)?;
    if image.status == to {
        return Ok(StatusCode::NO_CONTENT);
    }
    let from = if to == ImageStatus::Deactivated {
        ImageStatus::Active
    } else {
        ImageStatus::Deactivated
    };
    if image.status != from || !image.status.can_become(to) {
        return Err(ImageError::Forbidden(format!(
            "Not allowed to {action} image in status '{}'",
            image.status
        )));
    }
    if !db::image_set_status(&mut *state.db.conn().await?, &image.id, from, to).await? {
        return Err(ImageError::Conflict(
            "The image status changed meanwhile; retry.".to_owned(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn deactivate(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
) -> Result<StatusCode, ImageError> {
    set_active_state(&state, &ctx, &id, ImageStatus::Deactivated).await
}

pub async fn reactivate(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
) -> Result<StatusCode, ImageError> {
    set_active_state(&state, &ctx, &id, ImageStatus::Active).await
}

/// Loads, changes and saves an image's tags (compare-and-swap on the generation).
async fn change_tags(
    state: &AppState,
    ctx: &stratus_auth::RequestContext,
    id: &str,
    tag: &str,
    add: bool,
) -> Result<StatusCode, ImageError> {
    let mut image = load_visible(state, ctx, id).await?;
    require_owner(ctx, &image, "modify_image")?;
    if add {
        patch::check_tag(tag)?;
        if image.tags.iter().any(|t| t == tag) {
            return Ok(StatusCode::NO_CONTENT);
        }
        image.add_tag(tag);
        patch::check_quotas(&image, quotas(state))?;
    } else {
        let before = image.tags.len();
        image.tags.retain(|t| t != tag);
        if image.tags.len() == before {
            return Err(ImageError::NotFound(format!("Tag {tag} not found.")));
        }
    }
    image.updated_at = time::now();
    if !db::image_save(&mut *state.db.conn().await?, &image).await? {
        return Err(ImageError::Conflict(
            "The image was changed by another request; retry.".to_owned(),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_tag(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((id, tag)): GlancePath<(String, String)>,
) -> Result<StatusCode, ImageError> {
    change_tags(&state, &ctx, &id, &tag, true).await
}

pub async fn delete_tag(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((id, tag)): GlancePath<(String, String)>,
) -> Result<StatusCode, ImageError> {
    change_tags(&state, &ctx, &id, &tag, false).await
}
