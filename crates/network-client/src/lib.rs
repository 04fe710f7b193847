//! stratus-network-client: the Neutron v2.0 API as compute calls it, with
//! no dependency on the network server crate.
//!
//! - [`model`]: the wire types (networks, subnets, ports and port updates);
//! - [`client`]: [`NetworkClient`] and its [`ClientError`];
//! - [`vif`]: the one [`Vif`] type: a port bound to a server as compute
//!   saves it (Nova's network info cache), plugs it and shows it to the
//!   metadata service;
//! - [`ifname`]: the Linux interface names of the linuxbridge driver
//!   (`brq<11>`, `tap<11>`), shared by the L2 agent, the server's
//!   `binding:vif_details` and compute's virt drivers.

pub mod client;
pub mod ifname;
pub mod model;
pub mod vif;

pub use client::{ClientError, NetworkClient};
pub use model::{
    FixedIp, HostRoute, Network, Port, PortUpdate, SecurityGroup, SecurityGroupRule, Subnet,
};
pub use vif::{Vif, VifFixedIp, VifSubnet};
