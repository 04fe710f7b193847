//! Prefix arithmetic of subnet pools, as neutron/ipam/subnet_alloc.py does
//! it with netaddr's IPSet: compacting prefix lists, what is left of a pool
//! once its subnets are cut, and which CIDR a request gets.

use ipnet::IpNet;

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Merges overlapping and adjacent prefixes (netaddr's `IPSet.compact`),
/// sorted by address.
pub fn compact(prefixes: &[IpNet]) -> Vec<IpNet> {
    IpNet::aggregate(&prefixes.iter().map(IpNet::trunc).collect::<Vec<_>>())
}

/// `n` minus `t`, as the largest CIDRs left.
fn subtract_one(n: IpNet, t: &IpNet) -> Vec<IpNet> {
    if !overlaps(&n, t) {
        return vec![n];
    }
    if t.prefix_len() <= n.prefix_len() {
        return Vec::new();
    }
    // `t` lies strictly inside `n`: keep the half without it, recurse into
    // the other.
    let Ok(halves) = n.subnets(n.prefix_len() + 1) else {
        return Vec::new();
    };
    halves.flat_map(|h| subtract_one(h, t)).collect()
}

/// The addresses of `prefixes` outside every CIDR of `taken`, compacted.
pub fn subtract(prefixes: &[IpNet], taken: &[IpNet]) -> Vec<IpNet> {
    let mut left = compact(prefixes);
    for t in taken {
        left = left.into_iter().flat_map(|n| subtract_one(n, t)).collect();
    }
    compact(&left)
}

/// Whether every address of `inner` is in `outer`.
pub fn covers(outer: &[IpNet], inner: &[IpNet]) -> bool {
    subtract(inner, outer).is_empty()
}

/// Whether any address is in both lists.
pub fn intersects(a: &[IpNet], b: &[IpNet]) -> bool {
    a.iter().any(|x| b.iter().any(|y| overlaps(x, y)))
}

/// The CIDR of `prefixlen` an "any subnet" request gets: the first one of
/// the smallest free block that can hold it (Neutron sorts the free blocks
/// by descending prefix length, so the pool fragments least).
pub fn allocate_any(available: &[IpNet], prefixlen: u8) -> Option<IpNet> {
    let mut blocks = available.to_vec();
    // Stable: blocks of one size stay in address order.
    blocks.sort_by_key(|b| std::cmp::Reverse(b.prefix_len()));
    blocks
        .iter()
        .find(|b| b.prefix_len() <= prefixlen)
        .and_then(|b| IpNet::new(b.network(), prefixlen).ok())
        .map(|n| n.trunc())
}

/// Whether a requested CIDR lies wholly in one free block.
pub fn fits(available: &[IpNet], cidr: &IpNet) -> bool {
    available
        .iter()
        .any(|b| b.prefix_len() <= cidr.prefix_len() && b.contains(&cidr.network()))
}

/// The addresses a CIDR holds, in units of `2^(bits - quota_unit)`: how
/// Neutron charges a subnet against a pool's `default_quota` (IPv4 in
/// addresses, IPv6 in /64s).
pub fn quota_units(cidr: &IpNet) -> u128 {
    let unit: u8 = if cidr.addr().is_ipv4() { 32 } else { 64 };
    let bits = unit.saturating_sub(cidr.prefix_len());
    1u128.checked_shl(u32::from(bits)).unwrap_or(u128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().expect("net")).collect()
    }

    #[test]
    fn compacting_merges_adjacent_and_contained() {
        assert_eq!(
            compact(&nets(&["10.0.1.0/24", "10.0.0.0/24", "10.0.0.128/25"])),
            nets(&["10.0.0.0/23"])
        );
    }

    #[test]
    fn subtracting_leaves_the_largest_blocks() {
        assert_eq!(
            subtract(&nets(&["10.0.0.0/22"]), &nets(&["10.0.1.0/24"])),
            nets(&["10.0.0.0/24", "10.0.2.0/23"])
        );
        assert!(subtract(&nets(&["10.0.0.0/24"]), &nets(&["10.0.0.0/16"])).is_empty());
        assert!(covers(&nets(&["10.0.0.0/16"]), &nets(&["10.0.3.0/24"])));
        assert!(!covers(&nets(&["10.0.0.0/24"]), &nets(&["10.0.0.0/23"])));
    }

    #[test]
    fn allocation_prefers_the_smallest_free_block() {
        let pool = nets(&["10.100.0.0/16"]);
        let first = allocate_any(&subtract(&pool, &[]), 24).expect("a /24");
        assert_eq!(first, "10.100.0.0/24".parse::<IpNet>().expect("net"));
        let left = subtract(&pool, &[first]);
        assert_eq!(
            allocate_any(&left, 26),
            Some("10.100.1.0/26".parse().expect("net"))
        );
        let left = subtract(&pool, &nets(&["10.100.0.0/24", "10.100.1.0/26"]));
        // The /26 comes from the /26 block left beside the first one, not
        // from the big block.
        assert_eq!(
            allocate_any(&left, 26),
            Some("10.100.1.64/26".parse().expect("net"))
        );
        assert_eq!(allocate_any(&left, 8), None);
        assert!(fits(&left, &"10.100.9.0/24".parse().expect("net")));
        assert!(!fits(&left, &"10.100.0.0/25".parse().expect("net")));
        assert!(!fits(&left, &"10.101.0.0/24".parse().expect("net")));
    }

    #[test]
    fn quota_units_count_addresses_or_slash_64s() {
        assert_eq!(quota_units(&"10.0.0.0/24".parse().expect("net")), 256);
        assert_eq!(quota_units(&"fd00::/60".parse().expect("net")), 16);
    }
}
