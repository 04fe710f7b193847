//! stratus-metadata-api: what the compute metadata API (`stratus-metadata`)
//! shares with the services around it, without its HTTP server:
//!
//! - [`model`]: the instance as the metadata API sees it
//!   ([`InstanceMetadata`]) and the [`InstanceSource`] trait through which
//!   compute hands it over;
//! - [`signature`]: the one `X-Instance-ID-Signature` HMAC, made by the
//!   Neutron metadata proxy ([`sign_instance_id`]) and checked by the
//!   metadata API ([`verify_instance_id`]).

pub mod model;
pub mod signature;

pub use model::{InstanceMetadata, InstanceSource, SourceError, Vif, VifFixedIp, VifSubnet};
pub use signature::{sign_instance_id, verify_instance_id};
