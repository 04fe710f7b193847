//! `GET /stratus/events`: the seed-step events the volume service recorded,
//! for `stratus trace`; cloud admins only.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_telemetry::EventQuery;

use super::{forbidden, AppState};
use crate::error::VolumeError;

/// `?request_id=ID1,ID2&resource_id=X` → `{"events": [...]}`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    Query(q): Query<EventQuery>,
) -> Result<Json<Value>, VolumeError> {
    if !ctx.is_admin() {
        return Err(forbidden("stratus:list_trace_events"));
    }
    let events = stratus_telemetry::events::list(&state.db, &q).await?;
    Ok(Json(json!({ "events": events })))
}
