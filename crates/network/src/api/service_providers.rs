//! `/v2.0/service-providers` (Neutron's `service-type`): the drivers of
//! the advanced services (L3, VPN, load balancing, ...). Stratus runs none
//! of those services, so the list is empty, as Neutron's is with no service
//! plugin configured. Any project reader may ask (`role:reader`).

use axum::extract::{OriginalUri, RawQuery};
use axum::http::HeaderMap;
use serde_json::Value;
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;

use super::query::{respond, ListQuery};
use super::{require_read, State};
use crate::error::Result;

pub fn routes() -> Routes<State> {
    Routes::new().route("/v2.0/service-providers", get(list))
}

async fn list(
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_service_provider")?;
    let q = ListQuery::parse(raw.as_deref())?;
    Ok(axum::Json(respond(
        Vec::new(),
        &q,
        "service_providers",
        uri.path(),
        &headers,
    )?))
}
