//! `/servers/{id}/ips` and `/servers/{id}/ips/{network_label}`, as Nova's
//! `ips.py`: the server's addresses by network name from its saved network
//! info, each as `{"version", "addr"}` (Nova's `IPsController` builds them
//! without the `OS-EXT-IPS` keys the server view adds).

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;

use super::{servers, views, AppState};
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};

/// The server's addresses by network name, in the `ips` shape.
pub fn addresses(i: &Instance) -> Map<String, Value> {
    let Value::Object(full) = views::addresses(i) else {
        return Map::new();
    };
    full.into_iter()
        .map(|(net, list)| {
            let basic: Vec<Value> = list
                .as_array()
                .map(|l| {
                    l.iter()
                        .map(|a| json!({"version": a["version"], "addr": a["addr"]}))
                        .collect()
                })
                .unwrap_or_default();
            (net, Value::Array(basic))
        })
        .collect()
}

pub async fn index(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    Ok(Json(json!({"addresses": addresses(&i)})))
}

pub async fn show(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    let mut all = addresses(&i);
    let list = all.remove(&label).ok_or_else(|| {
        ComputeError::NotFound("Instance is not a member of specified network".to_owned())
    })?;
    let mut body = Map::new();
    body.insert(label, list);
    Ok(Json(Value::Object(body)))
}
