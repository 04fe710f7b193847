//! Neutron v2.0 over HTTP: the router, shared request helpers and policy.
//!
//! Handlers are thin: they parse, check policy, and call the plain functions
//! of their resource module; list handlers hand their visible rows, as JSON
//! views, to [`query`] for Neutron's filters, `fields`, sorting and
//! pagination.

pub mod address_scopes;
pub mod agents;
pub mod availability_zones;
pub mod bulk;
pub mod events;
pub mod extensions;
pub mod ip_availability;
pub mod networks;
pub mod ports;
pub mod query;
pub mod quotas;
pub mod rbac;
pub mod security_groups;
pub mod service_providers;
pub mod subnet_pools;
pub mod subnets;
pub mod tags;

use std::sync::Arc;

use axum::extract::Request;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use stratus_auth::routes::{get, Route, Routes};
use stratus_auth::TokenValidator;
use stratus_common::ids::ProjectId;
use stratus_common::RequestContext;
use stratus_db::Db;

use crate::agents::Agents;
use crate::config::NetworkConfig;
use crate::error::{NetworkError, Result};

/// What every handler shares.
pub struct AppState {
    pub db: Db,
    pub config: NetworkConfig,
    pub agents: Agents,
}

pub type State = Arc<AppState>;

/// The whole API: `GET /` without a token, `/v2.0/...` behind the token check.
pub fn router(state: State, validator: Arc<dyn TokenValidator>) -> Router {
    let v2 = v2_routes()
        .into_router()
        .fallback(not_found)
        .with_state(state);
    let v2 = stratus_auth::require_token(v2, validator);
    let app = open_routes().into_router().merge(v2).fallback(not_found);
    stratus_auth::with_request_id(app)
}

/// Every route of the API, as [`router`] mounts it (the authorisation
/// coverage test holds an expectation for each).
pub fn route_table() -> Vec<Route> {
    let mut t = open_routes().table().to_vec();
    t.extend_from_slice(v2_routes().table());
    t
}

/// Version discovery, open to anyone.
fn open_routes() -> Routes {
    Routes::new().route("/", get(extensions::versions))
}

/// `/v2.0/...`, behind the token check.
fn v2_routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0", get(extensions::resources))
        .route("/v2.0/", get(extensions::resources))
        .route("/v2.0/extensions", get(extensions::list))
        .route("/v2.0/extensions/{alias}", get(extensions::show))
        .merge(networks::routes())
        .merge(subnets::routes())
        .merge(ports::routes())
        .merge(security_groups::routes())
        .merge(tags::routes())
        .merge(quotas::routes())
        .merge(agents::routes())
        // Issue 12 (net-a): RBAC policies, availability zones.
        .merge(rbac::routes())
        .merge(availability_zones::routes())
        // Subnet pools, address scopes, IP availability, service providers.
        .merge(subnet_pools::routes())
        .merge(address_scopes::routes())
        .merge(ip_availability::routes())
        .merge(service_providers::routes())
        .merge(events::routes())
}

async fn not_found(req: Request) -> NetworkError {
    tracing::debug!(path = %req.uri().path(), "no route");
    NetworkError::RouteNotFound
}

/// `{"<key>": {...}}` -> the typed body; Neutron's 400s otherwise.
pub fn resource_body<T: DeserializeOwned>(mut body: Value, key: &str) -> Result<T> {
    let inner = body
        .get_mut(key)
        .map(Value::take)
        .filter(Value::is_object)
        .ok_or_else(|| {
            NetworkError::BadRequest(format!("Unable to find '{key}' in request body"))
        })?;
    serde_json::from_value(inner)
        .map_err(|e| NetworkError::BadRequest(format!("Invalid input for operation: {e}.")))
}

/// For attributes where "absent" and "null" differ (`gateway_ip: null`).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Rows a caller may see ([`stratus_auth::project_scope`]): `None` is
/// everything (Neutron's admins see every project), else the caller's
/// project; a token without a project is Neutron's 403.
pub fn visible_scope(ctx: &RequestContext, action: &str) -> Result<Option<ProjectId>> {
    stratus_auth::project_scope(ctx, ctx.is_admin())
        .map(|scope| scope.filter().cloned())
        .map_err(|_| NetworkError::PolicyNotAuthorized(action.to_owned()))
}

/// Readers of a project (and admins); a token without a project gets
/// nothing.
pub fn require_read(ctx: &RequestContext, action: &str) -> Result<()> {
    visible_scope(ctx, action)?;
    Ok(())
}

/// Members of a project (and admins).
pub fn require_write(ctx: &RequestContext, action: &str) -> Result<()> {
    visible_scope(ctx, action)?;
    if ctx.can_write() {
        Ok(())
    } else {
        Err(NetworkError::PolicyNotAuthorized(action.to_owned()))
    }
}

pub fn require_admin(ctx: &RequestContext, action: &str) -> Result<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(NetworkError::PolicyNotAuthorized(action.to_owned()))
    }
}

/// The owner of a new resource: the caller's project, or (admin only) the
/// `project_id`/`tenant_id` of the body.
pub fn owner_for_create(
    ctx: &RequestContext,
    project_id: Option<String>,
    tenant_id: Option<String>,
) -> Result<ProjectId> {
    let asked = match (project_id, tenant_id) {
        (Some(p), Some(t)) if p != t => {
            return Err(NetworkError::BadRequest(
                "'project_id' and 'tenant_id' do not match".to_owned(),
            ))
        }
        (Some(p), _) | (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    let own = ctx.project_id.clone();
    match (asked, own) {
        (Some(a), own) if own.as_ref().map(ProjectId::as_str) != Some(a.as_str()) => {
            if ctx.is_admin() {
                Ok(ProjectId(a))
            } else {
                Err(NetworkError::BadRequest(
                    "Specifying 'project_id' or 'tenant_id' other than the authenticated project \
                     in request requires admin privileges"
                        .to_owned(),
                ))
            }
        }
        (Some(a), _) => Ok(ProjectId(a)),
        (None, Some(own)) => Ok(own),
        (None, None) => Err(NetworkError::BadRequest(
            "'project_id' is required for a request without a project scope".to_owned(),
        )),
    }
}

/// Neutron's timestamp form.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    stratus_common::time::iso_seconds(t)
}

/// A path id that is not a UUID names nothing: the resource's 404.
pub fn parse_path_id<T: std::str::FromStr>(
    s: &str,
    not_found: impl FnOnce(String) -> NetworkError,
) -> Result<T> {
    s.parse().map_err(|_| not_found(s.to_owned()))
}
