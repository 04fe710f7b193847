//! The network service's domain: what its API and its agents' RPC server
//! both do, apart from HTTP and the bus.

pub mod port;
pub mod security_group_rule;
pub mod segments;
pub mod tags;
