//! The layer every Stratus API mounts, in the place keystonemiddleware holds in
//! OpenStack:
//!
//! - [`request_id`]: an `x-openstack-request-id` on every response, and a
//!   tracing span per request;
//! - [`middleware`]: reads `X-Auth-Token`, validates it with a
//!   [`TokenValidator`] (remote identity with a short cache, or in-process),
//!   and puts the [`RequestContext`] into the request; a bad token is 401 with
//!   Keystone's body, as keystonemiddleware answers for every service;
//! - [`Ctx`]: the extractor handlers use to get the context;
//! - [`remote`]: [`RemoteValidator`], validation against identity over HTTP
//!   with a short cache, for services in another process than identity;
//! - [`scope`]: [`project_scope`], the one rule that turns a caller (and
//!   whether it asks for every project) into a project filter or a 403;
//! - [`routes`]: [`Routes`], a router builder that records its route table
//!   for the authorisation coverage test;
//! - [`metrics`]: `GET /metrics`, the process's Prometheus metrics (the
//!   request counts and latencies are taken in [`request_id`]'s layer);
//! - [`service_auth`]: [`ServiceAuth`], the service user's own token for
//!   calls made without a user's token.
//!
//! Role checks (`admin`, `member`, `reader`) are on [`RequestContext`]; each
//! service turns a failed check into its own 403 body.

pub mod metrics;
pub mod middleware;
pub mod remote;
pub mod request_id;
pub mod routes;
pub mod scope;
pub mod service_auth;
pub mod validator;

pub use middleware::{require_token, Ctx};
pub use remote::{AuthConfig, RemoteValidator};
pub use request_id::with_request_id;
pub use routes::{Route, Routes};
pub use scope::{project_scope, ProjectScope, ScopeDenied};
pub use service_auth::ServiceAuth;
pub use stratus_common::RequestContext;
pub use validator::{AuthError, StaticValidator, TokenValidator, ValidatedToken};
