//! stratus-network-rpc: the bus contract between the Neutron server
//! (`stratus-network`) and its agents (`stratus-network-agent`), and the
//! typed callers of both directions, so that neither side depends on the
//! other's crate and no call site spells a topic or a method by hand.
//!
//! - [`messages`] (re-exported here): topics, method names, versions and
//!   the message shapes;
//! - [`server`]: agents -> server calls on `network` ([`ServerApi`],
//!   [`BusServer`]);
//! - [`agents`]: server -> agent casts on `dhcp.<host>` / `l2.<host>`
//!   ([`AgentNotifier`]).
//!
//! It holds no kernel, dnsmasq or database code: only serde shapes and the
//! bus.

pub mod agents;
pub mod messages;
pub mod server;

pub use agents::AgentNotifier;
pub use messages::*;
pub use server::{BusServer, RpcError, ServerApi};
