//! stratus-metadata: the compute metadata API (Nova's api-metadata, seed
//! steps 52–54). Guests reach it at 169.254.169.254 through the Neutron
//! metadata proxy (`stratus-network-agent`), which adds `X-Instance-ID`,
//! `X-Tenant-ID` and `X-Instance-ID-Signature`; it serves the OpenStack tree
//! (`/openstack/<ver>/meta_data.json`, `network_data.json`, `user_data`,
//! vendor data, `password`) and the EC2 tree (`/latest/meta-data/...`) that
//! cloud-init reads.
//!
//! The compute service implements [`InstanceSource`] over its database and
//! mounts [`router`] on the metadata port (8775). Layout: `api/` (HTTP and
//! proxy-header checks), `lookup` (path resolution), `content/` (the
//! documents, pure functions), `cache`, `password`, `versions`. The
//! instance model, [`InstanceSource`] and the signature are the contract
//! crate's (`stratus-metadata-api`), re-exported here.
//!
//! Wiring (in the compute service or the binary):
//!
//! ```text
//! let cfg = MetadataConfig {
//!     shared_secret: network_metadata_secret, // the proxy's key
//!     ..config.section::<MetadataConfig>("metadata")?
//! };
//! let app = stratus_metadata::router(cfg, Arc::new(ComputeInstanceSource { .. }));
//! let listener = TcpListener::bind(config.bind_addr(ServiceKind::Metadata)).await?;
//! axum::serve(listener, app).await?;
//! ```

mod api;
mod cache;
pub mod config;
pub mod content;
pub mod error;
pub mod lookup;
pub mod password;
pub mod versions;

/// The instance model and the source trait (`stratus-metadata-api`).
pub use stratus_metadata_api::model;
/// The proxy's request signature (`stratus-metadata-api`).
pub use stratus_metadata_api::signature;

use std::sync::Arc;

pub use config::MetadataConfig;
pub use error::MetadataError;
pub use model::{InstanceMetadata, InstanceSource, SourceError, Vif, VifFixedIp, VifSubnet};
pub use signature::{sign_instance_id, verify_instance_id};

/// The metadata API: every path, every method, with
/// `x-openstack-request-id` on each response.
pub fn router(cfg: MetadataConfig, source: Arc<dyn InstanceSource>) -> axum::Router {
    let state = Arc::new(api::AppState::new(cfg, source));
    // No `/metrics` here: guests reach this API through the metadata proxy.
    stratus_auth::with_request_id("metadata", api::routes().into_router().with_state(state))
}

/// Every route of the API, as [`router`] mounts it (the authorisation
/// coverage test holds an expectation for each): one handler resolves every
/// path of the metadata trees, for every method.
pub fn route_table() -> Vec<stratus_auth::Route> {
    api::routes().table().to_vec()
}
