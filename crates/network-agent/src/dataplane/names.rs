//! Kernel object names. Linux interface names are at most 15 characters, so,
//! as Neutron does, they carry the first 11 characters of the id. The
//! bridge and tap names are shared with compute, which plugs guests into
//! them, and so are defined in `stratus_network_client::ifname`; the DHCP
//! namespace and its veth end are the DHCP agent's own.

use stratus_common::ids::{NetworkId, PortId};
use stratus_network_client::ifname::short_id as short;
pub use stratus_network_client::ifname::{bridge, tap, IFNAME_MAX};

/// The namespace end of the DHCP port's veth: `ns-<11>`.
pub fn ns_end(port: &PortId) -> String {
    format!("ns-{}", short(port))
}

/// The DHCP namespace of a network: `qdhcp-<network id>` (namespace names are
/// not limited to 15 characters).
pub fn dhcp_namespace(network: &NetworkId) -> String {
    format!("qdhcp-{network}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_ifnamsiz_and_follow_neutron() {
        let n: NetworkId = "3f1c2a9e-1b2c-4d5e-8f90-0123456789ab"
            .parse()
            .expect("uuid");
        let p: PortId = "aabbccdd-eeff-4011-8223-344556677889"
            .parse()
            .expect("uuid");
        assert_eq!(bridge(&n), "brq3f1c2a9e-1b");
        assert_eq!(tap(&p), "tapaabbccdd-ee");
        assert_eq!(ns_end(&p), "ns-aabbccdd-ee");
        assert_eq!(
            dhcp_namespace(&n),
            "qdhcp-3f1c2a9e-1b2c-4d5e-8f90-0123456789ab"
        );
        for name in [bridge(&n), tap(&p), ns_end(&p)] {
            assert!(name.len() <= IFNAME_MAX, "{name}");
        }
    }
}
