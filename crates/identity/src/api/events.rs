//! `GET /stratus/events`: the seed-step events identity recorded (token
//! issue), for `stratus trace`; cloud admins only.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use stratus_telemetry::EventQuery;

use super::extract::{Caller, Filters};
use crate::error::Result;
use crate::policy::{enforce, Action};
use crate::Inner;

/// `?request_id=ID1,ID2&resource_id=X` → `{"events": [...]}`.
pub async fn list(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    filters: Filters,
) -> Result<Json<Value>> {
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:list_trace_events"),
    )?;
    let q = EventQuery {
        request_id: filters.get("request_id").map(str::to_owned),
        resource_id: filters.get("resource_id").map(str::to_owned),
    };
    let events = stratus_telemetry::events::list(&inner.db, &q).await?;
    Ok(Json(json!({ "events": events })))
}
