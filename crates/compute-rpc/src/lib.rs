//! stratus-compute-rpc: the contract between the compute services (API,
//! scheduler, conductor, agents), so that an agent, or another service
//! that drives compute, needs no compute server code:
//!
//! - [`model`]: the domain types (the instance state machine, block device
//!   mappings, requested networks, the `GuestSpec` a virt driver is given);
//! - [`instance`], [`flavor`], [`node`], [`saga`]: the records that travel;
//! - [`messages`] (re-exported here): topics, methods and argument shapes;
//! - [`ConductorApi`] (what agents ask of the conductor) and [`AgentApi`]
//!   (what the API, scheduler and conductor ask of a host's agent), typed
//!   callers that answer [`RpcError`].
//!
//! No database, HTTP server or hypervisor code lives here.

mod agent_api;
mod conductor_api;
pub mod error;
pub mod flavor;
pub mod image_actions;
pub mod instance;
pub mod messages;
pub mod model;
pub mod node;
pub mod saga;

pub use agent_api::AgentApi;
pub use conductor_api::ConductorApi;
pub use error::RpcError;
pub use messages::*;
