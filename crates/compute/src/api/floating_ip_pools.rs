//! `/os-floating-ip-pools`: Nova's deprecated proxy to the network
//! service, up to 2.35 (404 from 2.36): the external networks the caller
//! sees, each named by its name or, without one, its id.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::{ApiVersion, AppState};
use crate::error::{ComputeError, Result};

pub async fn list(State(s): State<AppState>, v: ApiVersion, ctx: Ctx) -> Result<Json<Value>> {
    // MAX_PROXY_API_SUPPORT_VERSION.
    if v.at_least(36) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".to_owned(),
        ));
    }
    // Nova's policy is RULE_ANY, scoped to a project.
    if ctx.project_id.is_none() {
        return Err(ComputeError::Forbidden(
            "Policy doesn't allow os_compute_api:os-floating-ip-pools to be performed.".into(),
        ));
    }
    let pools: Vec<Value> = s
        .networks
        .external_networks(&ctx)
        .await?
        .into_iter()
        .map(|(id, name)| json!({"name": if name.is_empty() { id } else { name }}))
        .collect();
    Ok(Json(json!({ "floating_ip_pools": pools })))
}
