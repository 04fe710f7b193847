//! `/servers/{id}/tags` and `/servers/{id}/tags/{tag}` (microversion 2.26+;
//! below it they are not there: 404), as Nova's `server_tags.py`; the rules
//! are in `app::server_tags`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::{require_member, servers, ApiVersion, AppState};
use crate::app::server_tags::{self, Added};
use crate::error::{ComputeError, NovaJson, Result};

/// Tags came with 2.26.
fn since_2_26(v: ApiVersion) -> Result<()> {
    if v.at_least(26) {
        Ok(())
    } else {
        Err(ComputeError::NotFound(
            "The resource could not be found.".to_owned(),
        ))
    }
}

pub async fn index(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    since_2_26(v)?;
    let i = servers::visible(&s, &ctx, &id).await?;
    Ok(Json(json!({"tags": server_tags::list(&s, &i).await?})))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    since_2_26(v)?;
    let i = servers::visible(&s, &ctx, &id).await?;
    server_tags::check(&s, &i, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn update(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    since_2_26(v)?;
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:os-server-tags:update")?;
    Ok(match server_tags::add(&s, &i, &tag).await? {
        Added::Existed => StatusCode::NO_CONTENT.into_response(),
        Added::Created => {
            let mut resp = StatusCode::CREATED.into_response();
            let location = s.link(&format!("/servers/{id}/tags/{tag}"));
            if let Ok(h) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, h);
            }
            resp
        }
    })
}

pub async fn update_all(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    since_2_26(v)?;
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:os-server-tags:update_all")?;
    let tags = server_tags::parse_update_all(&body)?;
    Ok(Json(
        json!({"tags": server_tags::replace(&s, &i, &tags).await?}),
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    since_2_26(v)?;
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:os-server-tags:delete")?;
    server_tags::delete(&s, &i, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_all(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    since_2_26(v)?;
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:os-server-tags:delete_all")?;
    server_tags::delete_all(&s, &i).await?;
    Ok(StatusCode::NO_CONTENT)
}
