//! The DHCP agent: per network a `qdhcp-<net>` namespace holding the DHCP
//! port, a supervised dnsmasq and the metadata proxy.

pub mod agent;
pub mod dnsmasq;
