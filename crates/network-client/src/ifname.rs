//! Linux interface names of the linuxbridge driver, defined once for the
//! L2 agent (which makes them), the network server (which names the bridge
//! in `binding:vif_details`) and compute (whose virt driver plugs guests
//! into them). Linux interface names are at most 15 characters, so, as
//! Neutron and Nova do, they carry the first 11 characters of the id.

use stratus_common::ids::{NetworkId, PortId};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// How many characters of an id an interface name carries.
pub const ID_CHARS: usize = 11;

/// The first [`ID_CHARS`] characters of an id.
pub fn short_id(id: &impl ToString) -> String {
    let mut s = id.to_string();
    s.truncate(ID_CHARS);
    s
}

/// The bridge of a network: `brq<11>`.
pub fn bridge(network: &NetworkId) -> String {
    format!("brq{}", short_id(network))
}

/// The host side of a port: `tap<11>` (a guest's tap, or the bridge end of
/// the DHCP port's veth). Nova's `VIF.devname` is the same name.
pub fn tap(port: &PortId) -> String {
    format!("tap{}", short_id(port))
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
        for name in [bridge(&n), tap(&p)] {
            assert!(name.len() <= IFNAME_MAX, "{name}");
        }
    }
}
