//! `GET /stratus/events`: the seed-step events the network server recorded
//! and those its agents sent it, for `stratus trace`; cloud admins only.

use axum::extract::{Query, State as AxState};
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_telemetry::EventQuery;

use super::{require_admin, State};
use crate::error::Result;

pub fn routes() -> Routes<State> {
    Routes::new().route("/stratus/events", get(list))
}

/// `?request_id=ID1,ID2&resource_id=X` → `{"events": [...]}`.
async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Query(q): Query<EventQuery>,
) -> Result<axum::Json<Value>> {
    require_admin(&ctx, "list_trace_events")?;
    let events = stratus_telemetry::events::list(&state.db, &q).await?;
    Ok(axum::Json(json!({ "events": events })))
}
