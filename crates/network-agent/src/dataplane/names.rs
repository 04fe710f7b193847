//! Kernel object names. Linux interface names are at most 15 characters, so,
//! as Neutron does, they carry the first 11 characters of the id.

use stratus_common::ids::{NetworkId, PortId};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

fn short(id: &impl ToString) -> String {
    let mut s = id.to_string();
    s.truncate(11);
    s
}

/// The bridge of a network: `brq<11>`.
pub fn bridge(network: &NetworkId) -> String {
    format!("brq{}", short(network))
}

/// The host side of a port: `tap<11>` (a tap for a guest, the bridge end of a
/// veth for the DHCP port).
pub fn tap(port: &PortId) -> String {
    format!("tap{}", short(port))
}

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
