//! The L2 agent: per network a Linux bridge `brq<net>`, per port a tap on it,
//! and security groups on the taps (nftables).

pub mod agent;
pub mod firewall;
