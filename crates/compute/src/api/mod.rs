//! The Nova v2.1 API: routes, shared state, microversion negotiation and the
//! version documents. Handlers are thin; their logic is in plain functions
//! beside them.

pub mod admin_actions;
pub mod aggregates;
pub mod events;
pub mod external_events;
pub mod flavors;
pub mod floating_ip_pools;
pub mod hosts;
pub mod instance_actions;
pub mod keypairs;
pub mod microversion;
pub mod params;
pub mod quotas;
pub mod server_actions;
pub mod server_create;
pub mod server_groups;
pub mod server_ips;
pub mod server_metadata;
pub mod server_rebuild;
pub mod server_security_groups;
pub mod server_tags;
pub mod servers;
pub mod servers_query;
pub mod usage;
pub mod versions;
pub mod views;
pub mod volume_attachments;

use std::sync::Arc;

use axum::Router;
use stratus_auth::routes::{get, post, put, Route, Routes};
use stratus_auth::{ProjectScope, ScopeDenied, TokenValidator};
use stratus_db::Db;

use crate::bus::Bus;
use crate::clients::{ImageApi, NetworkApi};
use crate::config::ComputeConfig;
use crate::error::{ComputeError, Result};

pub use microversion::ApiVersion;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// The API's trace events (`compute-api`), in scope for every request.
    pub recorder: stratus_telemetry::Recorder,
    pub bus: Bus,
    pub cfg: ComputeConfig,
    /// `http://host:8774`, for links.
    pub base_url: String,
    pub images: Arc<dyn ImageApi>,
    pub networks: Arc<dyn NetworkApi>,
    pub volumes: crate::clients::Volumes,
}

impl AppState {
    pub fn link(&self, path: &str) -> String {
        format!("{}/v2.1{path}", self.base_url)
    }

    pub fn bookmark(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Whose resources a request may see ([`stratus_auth::project_scope`]),
/// with Nova's 403 (`Policy doesn't allow <rule> to be performed.`) when it
/// may see none; asking for every project without admin is `<rule>:get_all_tenants`.
pub fn project_scope(
    ctx: &stratus_common::RequestContext,
    all_projects: bool,
    rule: &str,
) -> Result<ProjectScope> {
    stratus_auth::project_scope(ctx, all_projects).map_err(|e| {
        let rule = match e {
            ScopeDenied::NotAdmin => format!("{rule}:get_all_tenants"),
            ScopeDenied::NoProject | ScopeDenied::NoRole => rule.to_owned(),
        };
        ComputeError::Forbidden(format!("Policy doesn't allow {rule} to be performed."))
    })
}

/// Admin-only operations answer 403 with Nova's policy message.
pub fn require_admin(ctx: &stratus_common::RequestContext, rule: &str) -> Result<()> {
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(ComputeError::Forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

pub fn require_member(ctx: &stratus_common::RequestContext, rule: &str) -> Result<()> {
    if ctx.can_write() {
        Ok(())
    } else {
        Err(ComputeError::Forbidden(format!(
            "Policy doesn't allow {rule} to be performed."
        )))
    }
}

/// The whole API: version documents open, everything under `/v2.1` behind
/// the token check, microversions and request ids on every response.
pub fn router(state: AppState, validator: Arc<dyn TokenValidator>) -> Router {
    let api = api_routes()
        .into_router()
        .fallback(not_found)
        .with_state(state.clone());
    let api = stratus_auth::require_token(api, validator.clone());
    let recorder = state.recorder.clone();
    let events = events_routes().into_router().with_state(state.clone());
    let events = stratus_auth::require_token(events, validator);
    let open = open_routes().into_router().with_state(state);
    let app = open
        .nest("/v2.1", api)
        .merge(events)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                crate::trace::scope(recorder.clone(), next.run(req))
            },
        ));
    stratus_auth::with_request_id(microversion::layer(app))
        .layer(axum::middleware::from_fn(compute_request_id))
}

/// `GET /stratus/events` (what `stratus trace` reads), at the root of
/// the API port, behind the token check.
fn events_routes() -> Routes<AppState> {
    Routes::new().route("/stratus/events", get(events::list))
}

/// Nova's own name of the request id, which older clients read:
/// `x-compute-request-id`, the same value as `x-openstack-request-id`.
async fn compute_request_id(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut resp = next.run(req).await;
    if let Some(id) = resp
        .headers()
        .get(stratus_auth::request_id::HEADER)
        .cloned()
    {
        resp.headers_mut().insert("x-compute-request-id", id);
    }
    resp
}

/// Every route of the API, as [`router`] mounts it (the authorisation
/// coverage test holds an expectation for each).
pub fn route_table() -> Vec<Route> {
    let mut t = open_routes().table().to_vec();
    t.extend(api_routes().table_under("/v2.1"));
    t.extend(events_routes().table().to_vec());
    t
}

/// The version documents, open to anyone.
fn open_routes() -> Routes<AppState> {
    Routes::new()
        .route("/", get(versions::index))
        .route("/v2.1", get(versions::v21))
        .route("/v2.1/", get(versions::v21))
        .route("/v2", get(versions::v2))
        .route("/v2/", get(versions::v2))
}

/// Everything under `/v2.1`, behind the token check.
fn api_routes() -> Routes<AppState> {
    Routes::new()
        .route("/flavors", get(flavors::list).post(flavors::create))
        .route("/flavors/detail", get(flavors::list_detail))
        .route(
            "/flavors/{id}",
            get(flavors::show)
                .delete(flavors::delete)
                .put(flavors::update),
        )
        .route(
            "/flavors/{id}/os-extra_specs",
            get(flavors::extra_specs_list).post(flavors::extra_specs_create),
        )
        .route(
            "/flavors/{id}/os-extra_specs/{key}",
            get(flavors::extra_spec_show)
                .put(flavors::extra_spec_update)
                .delete(flavors::extra_spec_delete),
        )
        .route("/flavors/{id}/os-flavor-access", get(flavors::access_list))
        .route("/flavors/{id}/action", post(flavors::action))
        .route("/servers", get(servers::list).post(server_create::create))
        .route("/servers/detail", get(servers::list_detail))
        .route(
            "/servers/{id}",
            get(servers::show)
                .put(servers::update)
                .delete(servers::delete),
        )
        .route("/servers/{id}/action", post(server_actions::action))
        .route(
            "/servers/{id}/os-volume_attachments",
            get(volume_attachments::list).post(volume_attachments::attach),
        )
        .route(
            "/servers/{id}/os-volume_attachments/{volume}",
            get(volume_attachments::show).delete(volume_attachments::detach),
        )
        .route(
            "/servers/{id}/metadata",
            get(server_metadata::list)
                .post(server_metadata::update)
                .put(server_metadata::replace),
        )
        .route(
            "/servers/{id}/metadata/{key}",
            get(server_metadata::show)
                .put(server_metadata::set)
                .delete(server_metadata::delete),
        )
        .route(
            "/servers/{id}/os-instance-actions",
            get(instance_actions::list),
        )
        .route(
            "/servers/{id}/os-instance-actions/{req}",
            get(instance_actions::show),
        )
        // Issue 12: server tags (2.26+), security groups, addresses by network.
        .route(
            "/servers/{id}/tags",
            get(server_tags::index)
                .put(server_tags::update_all)
                .delete(server_tags::delete_all),
        )
        .route(
            "/servers/{id}/tags/{tag}",
            get(server_tags::show)
                .put(server_tags::update)
                .delete(server_tags::delete),
        )
        .route(
            "/servers/{id}/os-security-groups",
            get(server_security_groups::index),
        )
        .route("/servers/{id}/ips", get(server_ips::index))
        .route("/servers/{id}/ips/{network}", get(server_ips::show))
        .route("/os-server-external-events", post(external_events::create))
        .route("/os-keypairs", get(keypairs::list).post(keypairs::create))
        .route(
            "/os-keypairs/{name}",
            get(keypairs::show).delete(keypairs::delete),
        )
        .route("/limits", get(quotas::limits))
        .route(
            "/os-quota-sets/{project}",
            get(quotas::show).put(quotas::update).delete(quotas::reset),
        )
        .route("/os-quota-sets/{project}/defaults", get(quotas::defaults))
        .route("/os-quota-sets/{project}/detail", get(quotas::detail))
        .route("/os-hypervisors", get(hosts::hypervisors))
        .route("/os-hypervisors/detail", get(hosts::hypervisors_detail))
        .route(
            "/os-hypervisors/statistics",
            get(hosts::hypervisor_statistics),
        )
        .route("/os-hypervisors/{id}", get(hosts::hypervisor_show))
        .route("/os-services", get(hosts::services))
        .route(
            "/os-services/{id}",
            put(hosts::service_update).delete(hosts::service_delete),
        )
        .route("/os-availability-zone", get(hosts::availability_zones))
        .route(
            "/os-availability-zone/detail",
            get(hosts::availability_zones_detail),
        )
        .route(
            "/os-server-groups",
            get(server_groups::list).post(server_groups::create),
        )
        .route(
            "/os-server-groups/{id}",
            get(server_groups::show).delete(server_groups::delete),
        )
        .merge(misc_routes())
}

/// Issue 12: aggregates, tenant usage and floating IP pools.
fn misc_routes() -> Routes<AppState> {
    Routes::new()
        .route(
            "/os-aggregates",
            get(aggregates::list).post(aggregates::create),
        )
        .route(
            "/os-aggregates/{id}",
            get(aggregates::show)
                .put(aggregates::update)
                .delete(aggregates::delete),
        )
        .route("/os-aggregates/{id}/action", post(aggregates::action))
        .route("/os-simple-tenant-usage", get(usage::list))
        .route("/os-simple-tenant-usage/{tenant}", get(usage::show))
        .route("/os-floating-ip-pools", get(floating_ip_pools::list))
}

async fn not_found() -> ComputeError {
    ComputeError::NotFound("The resource could not be found.".to_owned())
}
