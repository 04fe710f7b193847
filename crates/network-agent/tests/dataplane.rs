//! Integration tests of the network agents.
//!
//! `linux_bridge_network_end_to_end` builds a real network — bridge, DHCP
//! namespace with dnsmasq and the metadata proxy, and two namespaces standing
//! in for guests, each attached by a veth (playing the tap) to the bridge —
//! and checks DHCP, ping, metadata, security groups, dnsmasq supervision and
//! teardown; `linux_bridge_dhcp_releases_a_deleted_ports_lease` gives a
//! deleted port's address to a new MAC at once. They need root and `ip
//! netns`, and skip with a message otherwise. Everything they make has a
//! unique name and is removed by a Drop guard, also on panic. Nothing
//! touches eth0; traffic stays in the namespaces and on loopback.
//!
//! The other tests run anywhere: the bus wiring with the noop driver.

#[path = "dataplane/support.rs"]
mod support;

#[path = "dataplane/e2e.rs"]
mod e2e;

#[path = "dataplane/bus_wiring.rs"]
mod bus_wiring;

#[path = "dataplane/proxy.rs"]
mod proxy;
