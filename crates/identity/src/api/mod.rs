//! Keystone v3 over HTTP: the router, and one module per resource with its
//! handlers (thin: parse, check policy, call `db`/domain functions, render)
//! and its views (Keystone's JSON shapes).

pub mod access_rules;
pub mod application_credentials;
pub mod assignments;
pub mod auth;
pub mod catalog;
pub(crate) mod crud;
pub mod discovery;
pub mod domain_configs;
pub mod domains;
pub mod endpoint_filter;
pub mod events;
pub mod extract;
pub mod groups;
pub mod limits;
pub mod projects;
pub mod roles;
pub mod schema;
pub mod system;
pub mod users;

use std::sync::Arc;

use axum::Router;
use serde_json::{json, Map, Value};
use stratus_auth::routes::{get, post, put, Methods, Route, Routes};

use crate::error::{IdentityError, Result};
use crate::Inner;
use extract::BaseUrl;

/// Every route of the API, as [`router`] mounts it (the authorisation
/// coverage test holds an expectation for each).
pub fn route_table() -> Vec<Route> {
    routes().table().to_vec()
}

pub fn router(inner: Arc<Inner>) -> Router {
    let r = routes()
        .into_router()
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            inner.clone(),
            invalidate_after_change,
        ))
        .with_state(inner);
    stratus_auth::with_request_id("identity", r)
}

/// Drops the validated-token cache after every request that may have
/// changed what a token stands for (see `token::cache`): anything but a
/// read or a token issue. After the handler, so that the next validation
/// reads what it wrote; whatever the outcome, as a failed request may
/// still have written.
async fn invalidate_after_change(
    axum::extract::State(inner): axum::extract::State<Arc<Inner>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method();
    let changes = !(method.is_safe()
        || (method == axum::http::Method::POST && req.uri().path() == "/v3/auth/tokens"));
    let resp = next.run(req).await;
    if changes {
        inner.tokens.invalidate();
    }
    resp
}

fn routes() -> Routes<Arc<Inner>> {
    Routes::new()
        .route("/", get(discovery::versions))
        .route("/metrics", get(stratus_auth::metrics::scrape))
        .route("/v3", get(discovery::v3))
        .route("/v3/", get(discovery::v3))
        .route(
            "/v3/auth/tokens",
            post(auth::issue).get(auth::validate).delete(auth::revoke),
        )
        .route("/v3/auth/catalog", get(auth::catalog))
        .route("/stratus/events", get(events::list))
        .route("/v3/auth/projects", get(auth::projects))
        .route("/v3/auth/domains", get(auth::domains))
        .route("/v3/auth/system", get(auth::system))
        .route("/v3/domains", get(domains::list).post(domains::create))
        .route(
            "/v3/domains/{id}",
            get(domains::show)
                .patch(domains::update)
                .delete(domains::remove),
        )
        .route("/v3/projects", get(projects::list).post(projects::create))
        .route(
            "/v3/projects/{id}",
            get(projects::show)
                .patch(projects::update)
                .delete(projects::remove),
        )
        .route("/v3/users", get(users::list).post(users::create))
        .route(
            "/v3/users/{id}",
            get(users::show).patch(users::update).delete(users::remove),
        )
        .route("/v3/users/{id}/projects", get(users::projects))
        .route("/v3/users/{id}/groups", get(users::groups))
        .route("/v3/users/{id}/password", post(users::change_password))
        .route(
            "/v3/users/{id}/application_credentials",
            get(application_credentials::list).post(application_credentials::create),
        )
        .route(
            "/v3/users/{id}/application_credentials/{cred}",
            get(application_credentials::show).delete(application_credentials::remove),
        )
        .route("/v3/groups", get(groups::list).post(groups::create))
        .route(
            "/v3/groups/{id}",
            get(groups::show)
                .patch(groups::update)
                .delete(groups::remove),
        )
        .route("/v3/groups/{id}/users", get(groups::members))
        .route(
            "/v3/groups/{id}/users/{user}",
            put(groups::add_member)
                .head(groups::check_member)
                .delete(groups::remove_member),
        )
        .route("/v3/roles", get(roles::list).post(roles::create))
        .route(
            "/v3/roles/{id}",
            get(roles::show).patch(roles::update).delete(roles::remove),
        )
        .route("/v3/roles/{id}/implies", get(roles::list_implied))
        .route(
            "/v3/roles/{id}/implies/{implied}",
            put(roles::add_implied)
                .get(roles::check_implied)
                .delete(roles::remove_implied),
        )
        .route("/v3/role_inferences", get(roles::inferences))
        .route("/v3/role_assignments", get(assignments::list))
        .route(
            "/v3/projects/{id}/users/{actor}/roles",
            get(assignments::list_grants),
        )
        .route(
            "/v3/projects/{id}/groups/{actor}/roles",
            get(assignments::list_grants),
        )
        .route(
            "/v3/domains/{id}/users/{actor}/roles",
            get(assignments::list_grants),
        )
        .route(
            "/v3/domains/{id}/groups/{actor}/roles",
            get(assignments::list_grants),
        )
        .route(
            "/v3/projects/{id}/users/{actor}/roles/{role}",
            grant_routes(),
        )
        .route(
            "/v3/projects/{id}/groups/{actor}/roles/{role}",
            grant_routes(),
        )
        .route(
            "/v3/domains/{id}/users/{actor}/roles/{role}",
            grant_routes(),
        )
        .route(
            "/v3/domains/{id}/groups/{actor}/roles/{role}",
            grant_routes(),
        )
        .route("/v3/system/users/{actor}/roles", get(system::list))
        .route("/v3/system/groups/{actor}/roles", get(system::list))
        .route(
            "/v3/system/users/{actor}/roles/{role}",
            system_grant_routes(),
        )
        .route(
            "/v3/system/groups/{actor}/roles/{role}",
            system_grant_routes(),
        )
        .route(
            "/v3/regions",
            get(catalog::list_regions).post(catalog::create_region),
        )
        .route(
            "/v3/regions/{id}",
            get(catalog::show_region)
                .patch(catalog::update_region)
                .delete(catalog::delete_region)
                .put(catalog::create_region_with_id),
        )
        .route(
            "/v3/services",
            get(catalog::list_services).post(catalog::create_service),
        )
        .route(
            "/v3/services/{id}",
            get(catalog::show_service)
                .patch(catalog::update_service)
                .delete(catalog::delete_service),
        )
        .route(
            "/v3/endpoints",
            get(catalog::list_endpoints).post(catalog::create_endpoint),
        )
        .route(
            "/v3/endpoints/{id}",
            get(catalog::show_endpoint)
                .patch(catalog::update_endpoint)
                .delete(catalog::delete_endpoint),
        )
        .merge(extras_routes())
}

/// Unified limits, endpoint filters, domain configuration and access rules
/// (Keystone's extensions of issue 12).
fn extras_routes() -> Routes<Arc<Inner>> {
    Routes::new()
        .route(
            "/v3/registered_limits",
            get(limits::list_registered_limits).post(limits::create_registered_limits),
        )
        .route(
            "/v3/registered_limits/{id}",
            get(limits::show_registered_limit)
                .patch(limits::update_registered_limit)
                .delete(limits::delete_registered_limit),
        )
        .route(
            "/v3/limits",
            get(limits::list_limits).post(limits::create_limits),
        )
        .route("/v3/limits/model", get(limits::model))
        .route(
            "/v3/limits/{id}",
            get(limits::show_limit)
                .patch(limits::update_limit)
                .delete(limits::delete_limit),
        )
        .route("/v3/users/{id}/access_rules", get(access_rules::list))
        .route(
            "/v3/users/{id}/access_rules/{rule}",
            get(access_rules::show).delete(access_rules::remove),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups",
            get(endpoint_filter::list_groups).post(endpoint_filter::create_group),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}",
            get(endpoint_filter::show_group)
                .patch(endpoint_filter::update_group)
                .delete(endpoint_filter::delete_group),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects",
            get(endpoint_filter::group_projects),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}/endpoints",
            get(endpoint_filter::group_endpoints),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoint_groups/{id}/projects/{project}",
            get(endpoint_filter::show_group_project)
                .put(endpoint_filter::add_group_project)
                .delete(endpoint_filter::remove_group_project),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{id}/endpoint_groups",
            get(endpoint_filter::project_groups),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{id}/endpoints",
            get(endpoint_filter::project_endpoints),
        )
        .route(
            "/v3/OS-EP-FILTER/projects/{id}/endpoints/{endpoint}",
            get(endpoint_filter::check_project_endpoint)
                .head(endpoint_filter::check_project_endpoint)
                .put(endpoint_filter::add_project_endpoint)
                .delete(endpoint_filter::remove_project_endpoint),
        )
        .route(
            "/v3/OS-EP-FILTER/endpoints/{id}/projects",
            get(endpoint_filter::endpoint_projects),
        )
        .route(
            "/v3/domains/{id}/config",
            get(domain_configs::show)
                .put(domain_configs::create)
                .patch(domain_configs::update)
                .delete(domain_configs::remove),
        )
        .route(
            "/v3/domains/{id}/config/{group}",
            get(domain_configs::show_group)
                .patch(domain_configs::update_group)
                .delete(domain_configs::remove_group),
        )
        .route(
            "/v3/domains/{id}/config/{group}/{option}",
            get(domain_configs::show_option)
                .patch(domain_configs::update_option)
                .delete(domain_configs::remove_option),
        )
        .route(
            "/v3/domains/config/default",
            get(domain_configs::default_config),
        )
        .route(
            "/v3/domains/config/{group}/default",
            get(domain_configs::default_group),
        )
        .route(
            "/v3/domains/config/{group}/{option}/default",
            get(domain_configs::default_option),
        )
}

fn grant_routes() -> Methods<Arc<Inner>> {
    put(assignments::grant)
        .get(assignments::check)
        .delete(assignments::revoke)
}

fn system_grant_routes() -> Methods<Arc<Inner>> {
    put(system::grant).get(system::check).delete(system::revoke)
}

async fn not_found(uri: axum::http::Uri) -> IdentityError {
    IdentityError::validation_404(uri.path())
}

impl IdentityError {
    fn validation_404(path: &str) -> Self {
        IdentityError::NotFound {
            kind: "resource",
            id: path.to_owned(),
        }
    }
}

/// Keystone keeps unknown attributes and returns them beside the known ones.
pub(crate) fn with_extra(extra: &Map<String, Value>, known: Value) -> Value {
    let mut out = extra.clone();
    if let Value::Object(k) = known {
        out.extend(k);
    }
    Value::Object(out)
}

/// A list response: `{"<key>": [...], "links": {"self", "previous", "next"}}`.
pub(crate) fn list_body(key: &str, items: Vec<Value>, base: &BaseUrl, path: &str) -> Value {
    json!({ key: items, "links": {"self": base.v3(path), "previous": null, "next": null} })
}

/// Names as Keystone's schemas limit them: 64 characters for projects and
/// domains, 255 for the rest, never only blanks ([`schema::name`]).
pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
    let max = match kind {
        "project" | "domain" => schema::RESOURCE_NAME_MAX,
        _ => schema::NAME_MAX,
    };
    schema::name(name, max)
}

/// Ids in paths are short printable strings; anything else cannot exist.
pub(crate) fn check_id(kind: &'static str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 255 || id.chars().any(|c| c.is_control()) {
        return Err(IdentityError::not_found(kind, id));
    }
    Ok(())
}

/// A fresh Keystone id (32 hex digits).
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
