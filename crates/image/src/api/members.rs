//! `/v2/images/{id}/members`: the owner offers a shared image to projects;
//! each member project accepts or rejects it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::{Ctx, RequestContext};
use stratus_common::time;

use super::view::member_json;
use super::{load_visible, require_read, require_write, AppState};
use crate::db;
use crate::domain::access::{owns, project};
use crate::domain::{Image, Member, MemberStatus, Visibility};
use crate::error::{GlanceJson, GlancePath, ImageError};

fn require_shared(image: &Image) -> Result<(), ImageError> {
    if image.visibility == Visibility::Shared {
        Ok(())
    } else {
        Err(ImageError::Forbidden(
            "Only shared images have members.".to_owned(),
        ))
    }
}

fn member_not_found(member: &str, image: &Image) -> ImageError {
    ImageError::NotFound(format!("{member} is not a member of image {}.", image.id))
}

#[derive(Deserialize)]
pub struct CreateBody {
    member: Option<Value>,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
    GlanceJson(body): GlanceJson<CreateBody>,
) -> Result<Json<Value>, ImageError> {
    let image = load_visible(&state, &ctx, &id).await?;
    require_write(&ctx, "add_member")?;
    if !owns(&ctx, &image) {
        return Err(ImageError::Forbidden(
            "You are not permitted to add members to this image.".to_owned(),
        ));
    }
    require_shared(&image)?;
    let member_id = match body.member {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s,
        _ => {
            return Err(ImageError::BadRequest(
                "Member to be added not specified".to_owned(),
            ))
        }
    };
    let now = time::now();
    let member = Member {
        image_id: image.id,
        member_id,
        status: MemberStatus::Pending,
        created_at: now,
        updated_at: now,
    };
    db::member_insert(
        &mut *state.db.conn().await?,
        &member,
        state.config.member_quota,
    )
    .await?;
    Ok(Json(member_json(&member)))
}

/// The owner sees every member; a member project sees only itself.
fn may_see_member(ctx: &RequestContext, image: &Image, member: &str) -> bool {
    owns(ctx, image) || project(ctx) == Some(member)
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
) -> Result<Json<Value>, ImageError> {
    require_read(&ctx)?;
    let image = load_visible(&state, &ctx, &id).await?;
    require_shared(&image)?;
    let members: Vec<Value> = db::member_list(&mut *state.db.conn().await?, &image.id)
        .await?
        .iter()
        .filter(|m| may_see_member(&ctx, &image, &m.member_id))
        .map(member_json)
        .collect();
    Ok(Json(
        json!({"members": members, "schema": "/v2/schemas/members"}),
    ))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((id, member)): GlancePath<(String, String)>,
) -> Result<Json<Value>, ImageError> {
    require_read(&ctx)?;
    let image = load_visible(&state, &ctx, &id).await?;
    require_shared(&image)?;
    if !may_see_member(&ctx, &image, &member) {
        return Err(member_not_found(&member, &image));
    }
    let m = db::member_get(&mut *state.db.conn().await?, &image.id, &member)
        .await?
        .ok_or_else(|| member_not_found(&member, &image))?;
    Ok(Json(member_json(&m)))
}

#[derive(Deserialize)]
pub struct UpdateBody {
    status: Option<Value>,
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((id, member)): GlancePath<(String, String)>,
    GlanceJson(body): GlanceJson<UpdateBody>,
) -> Result<Json<Value>, ImageError> {
    let image = load_visible(&state, &ctx, &id).await?;
    require_write(&ctx, "modify_member")?;
    require_shared(&image)?;
    let status: MemberStatus = match body.status {
        Some(Value::String(s)) => s.parse().map_err(ImageError::BadRequest)?,
        _ => return Err(ImageError::BadRequest("Status not specified".to_owned())),
    };
    if !may_see_member(&ctx, &image, &member) {
        return Err(member_not_found(&member, &image));
    }
    // Only the member project decides (Glance: even the owner may not).
    if project(&ctx) != Some(member.as_str()) && !ctx.is_admin() {
        return Err(ImageError::Forbidden(
            "You are not permitted to modify 'status' on this image member.".to_owned(),
        ));
    }
    let m = db::member_update(&mut *state.db.conn().await?, &image.id, &member, status)
        .await?
        .ok_or_else(|| member_not_found(&member, &image))?;
    Ok(Json(member_json(&m)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath((id, member)): GlancePath<(String, String)>,
) -> Result<StatusCode, ImageError> {
    let image = load_visible(&state, &ctx, &id).await?;
    require_write(&ctx, "delete_member")?;
    require_shared(&image)?;
    if !owns(&ctx, &image) {
        if project(&ctx) == Some(member.as_str()) {
            return Err(ImageError::Forbidden(
                "You are not permitted to delete this image member.".to_owned(),
            ));
        }
        return Err(member_not_found(&member, &image));
    }
    if !db::member_delete(&mut *state.db.conn().await?, &image.id, &member).await? {
        return Err(member_not_found(&member, &image));
    }
    Ok(StatusCode::NO_CONTENT)
}
