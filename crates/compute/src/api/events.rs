//! `GET /stratus/events?request_id=ID1,ID2&resource_id=X`: the trace
//! events compute recorded (API, scheduler, conductor and, through the
//! conductor, the agents), for `stratus trace`. Cloud admins only.

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_telemetry::EventQuery;

use super::{require_admin, AppState};
use crate::error::Result;

pub async fn list(
    State(s): State<AppState>,
    ctx: Ctx,
    Query(q): Query<EventQuery>,
) -> Result<Json<Value>> {
    require_admin(&ctx, "stratus:events:list")?;
    let events = crate::trace::list(&s.db, &q).await?;
    Ok(Json(json!({ "events": events })))
}
