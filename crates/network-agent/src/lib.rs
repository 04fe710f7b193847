//! Stratus network agents: the DHCP agent, the L2 (Linux bridge) agent, the
//! metadata proxy and the dataplane primitives they drive.
//!
//! - [`rpc`]: the bus contract with the Neutron server
//!   (`stratus-network-rpc`, re-exported), and [`server`]: the server as
//!   the agents call it.
//! - [`dataplane`]: namespaces, bridges, veths, taps, addresses.
//! - [`dhcp`]: the DHCP agent and its dnsmasq supervisor.
//! - [`metadata_proxy`]: 169.254.169.254 inside each DHCP namespace.
//! - [`l2`]: the L2 agent and the nftables security groups.
//! - [`events`]: the agents' seed-step events, sent to the server.
//! - [`agent`]: bus wiring; [`start_dhcp_agent`] and [`start_l2_agent`] are
//!   what the binary calls.

pub mod agent;
pub mod config;
pub mod dataplane;
pub mod dhcp;
pub mod error;
pub mod events;
pub mod l2;
pub mod metadata_proxy;
pub mod server;

pub use stratus_network_rpc as rpc;

pub use agent::{start_dhcp_agent, start_l2_agent, Agent, AgentKind};
pub use config::{AgentSettings, Driver, HostNames};
pub use error::AgentError;
