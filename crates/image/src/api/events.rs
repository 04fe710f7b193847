//! `GET /stratus/events`: the seed-step events the image service recorded,
//! for `stratus trace`; cloud admins only.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_telemetry::EventQuery;

use super::AppState;
use crate::error::ImageError;

/// `?request_id=ID1,ID2&resource_id=X` → `{"events": [...]}`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Query(q): Query<EventQuery>,
) -> Result<Json<Value>, ImageError> {
    if !ctx.is_admin() {
        return Err(ImageError::Forbidden(
            "You are not authorized to complete list_trace_events action.".to_owned(),
        ));
    }
    let events = stratus_telemetry::events::list(&state.db, &q).await?;
    Ok(Json(json!({ "events": events })))
}
