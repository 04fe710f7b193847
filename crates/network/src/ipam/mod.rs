//! IP address management: the pure part (default gateway and pools, pool
//! validation, lowest free address) here; the part that claims addresses in
//! the database, with retry on conflict, in [`allocate`].

pub mod allocate;
pub mod subnet_alloc;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};

/// An inclusive range of addresses a subnet hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub start: IpAddr,
    pub end: IpAddr,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX))),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// The first and last address a port may hold: IPv4 leaves out the network
/// and broadcast addresses (except in /31 and /32), IPv6 the subnet-router
/// anycast address.
fn usable_range(cidr: &IpNet) -> Option<(u128, u128)> {
    let first = to_u128(cidr.network());
    let last = to_u128(cidr.broadcast());
    let (lo, hi) = match cidr {
        IpNet::V4(n) if n.prefix_len() >= 31 => (first, last),
        IpNet::V4(_) => (first + 1, last - 1),
        IpNet::V6(n) if n.prefix_len() == 128 => (first, last),
        IpNet::V6(_) => (first + 1, last),
    };
    (lo <= hi).then_some((lo, hi))
}

/// Parses a CIDR as Neutron does: the address must be the network address
/// (`10.0.0.5/24` is refused) and the version must match `ip_version`.
pub fn parse_cidr(s: &str, ip_version: u8) -> Result<IpNet> {
    let net: IpNet = s.parse().map_err(|_| {
        NetworkError::BadRequest(format!(
            "Invalid input for cidr. Reason: '{s}' is not a valid IP subnet."
        ))
    })?;
    if net.network() != net.addr() {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for cidr. Reason: '{s}' isn't a recognized IP subnet cidr, '{}' is recommended.",
            net.trunc()
        )));
    }
    let version = if net.addr().is_ipv4() { 4 } else { 6 };
    if version != ip_version {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for operation: Cidr {s} does not match ip_version {ip_version}."
        )));
    }
    if version == 4 && net.prefix_len() > 30 {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for operation: The prefix length of {s} leaves no address to allocate."
        )));
    }
    Ok(net)
}

/// Neutron's default gateway: the first usable address.
pub fn default_gateway(cidr: &IpNet) -> Option<IpAddr> {
    usable_range(cidr).map(|(lo, _)| from_u128(lo, cidr.addr()))
}

/// The usable range minus the gateway, as one or two pools.
pub fn default_pools(cidr: &IpNet, gateway: Option<IpAddr>) -> Vec<Pool> {
    let Some((lo, hi)) = usable_range(cidr) else {
        return Vec::new();
    };
    let like = cidr.addr();
    let mk = |a: u128, b: u128| Pool {
        start: from_u128(a, like),
        end: from_u128(b, like),
    };
    match gateway.map(to_u128) {
        Some(g) if g >= lo && g <= hi => {
            let mut v = Vec::new();
            if g > lo {
                v.push(mk(lo, g - 1));
            }
            if g < hi {
                v.push(mk(g + 1, hi));
            }
            v
        }
        _ => vec![mk(lo, hi)],
    }
}

/// Pools must lie in the subnet, be ordered start <= end, not overlap each
/// other, and not hold the gateway.
pub fn validate_pools(cidr: &IpNet, pools: &[Pool], gateway: Option<IpAddr>) -> Result<()> {
    let Some((lo, hi)) = usable_range(cidr) else {
        return Err(NetworkError::BadRequest(format!(
            "Subnet {cidr} has no usable addresses."
        )));
    };
    let mut ranges: Vec<(u128, u128)> = Vec::new();
    for p in pools {
        if p.start.is_ipv4() != cidr.addr().is_ipv4() || p.end.is_ipv4() != cidr.addr().is_ipv4() {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for operation: allocation pool {}-{} is not of the subnet's IP version.",
                p.start, p.end
            )));
        }
        let (a, b) = (to_u128(p.start), to_u128(p.end));
        if a > b {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for operation: The allocation pool {}-{} is not valid.",
                p.start, p.end
            )));
        }
        if a < lo || b > hi {
            return Err(NetworkError::BadRequest(format!(
                "The allocation pool {}-{} spans beyond the subnet cidr {cidr}.",
                p.start, p.end
            )));
        }
        if ranges.iter().any(|&(x, y)| a <= y && x <= b) {
            return Err(NetworkError::BadRequest(format!(
                "Found overlapping allocation pools: {}-{} overlaps another pool.",
                p.start, p.end
            )));
        }
        ranges.push((a, b));
    }
    if let Some(g) = gateway {
        let gv = to_u128(g);
        if let Some(p) = pools
            .iter()
            .find(|p| to_u128(p.start) <= gv && gv <= to_u128(p.end))
        {
            return Err(NetworkError::Conflict(format!(
                "Gateway ip {g} conflicts with allocation pool {}-{}.",
                p.start, p.end
            )));
        }
    }
    Ok(())
}

/// The lowest address in the pools (in pool order) that is not taken.
pub fn next_free(pools: &[Pool], taken: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    nth_free(pools, taken, 0)
}

/// The `n`-th (from 0) free address of the pools, in pool order; `None`
/// when fewer than `n + 1` are free.
pub fn nth_free(pools: &[Pool], taken: &BTreeSet<IpAddr>, mut n: u128) -> Option<IpAddr> {
    for p in pools {
        let (a, b) = (to_u128(p.start), to_u128(p.end));
        let mut candidate = a;
        // Taken addresses inside this pool, ascending: the free runs lie
        // between them.
        for t in taken.range(p.start..=p.end) {
            let tv = to_u128(*t);
            if tv < candidate {
                continue;
            }
            let run = tv - candidate;
            if n < run {
                return Some(from_u128(candidate + n, p.start));
            }
            n -= run;
            candidate = tv + 1;
        }
        if candidate <= b {
            let run = b - candidate + 1;
            if n < run {
                return Some(from_u128(candidate + n, p.start));
            }
            n -= run;
        }
    }
    None
}

/// A requested fixed address must be a usable address of the subnet.
pub fn check_in_subnet(cidr: &IpNet, ip: IpAddr) -> Result<()> {
    let ok = cidr.contains(&ip)
        && usable_range(cidr).is_some_and(|(lo, hi)| (lo..=hi).contains(&to_u128(ip)));
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidIpForSubnet { ip: ip.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn net(s: &str) -> IpNet {
        s.parse().expect("net")
    }

    #[test]
    fn defaults_for_a_slash_24() {
        let c = net("10.0.0.0/24");
        assert_eq!(default_gateway(&c), Some(ip("10.0.0.1")));
        assert_eq!(
            default_pools(&c, Some(ip("10.0.0.1"))),
            vec![Pool {
                start: ip("10.0.0.2"),
                end: ip("10.0.0.254")
            }]
        );
        // A gateway in the middle splits the range.
        assert_eq!(
            default_pools(&c, Some(ip("10.0.0.100"))),
            vec![
                Pool {
                    start: ip("10.0.0.1"),
                    end: ip("10.0.0.99")
                },
                Pool {
                    start: ip("10.0.0.101"),
                    end: ip("10.0.0.254")
                }
            ]
        );
    }

    #[test]
    fn cidr_parsing_is_strict() {
        assert!(parse_cidr("10.0.0.0/24", 4).is_ok());
        assert!(parse_cidr("10.0.0.5/24", 4).is_err());
        assert!(parse_cidr("10.0.0.0/33", 4).is_err());
        assert!(parse_cidr("banana", 4).is_err());
        assert!(parse_cidr("10.0.0.0/24", 6).is_err());
        assert!(parse_cidr("fd00::/64", 6).is_ok());
    }

    #[test]
    fn next_free_skips_taken_and_moves_to_the_next_pool() {
        let pools = [
            Pool {
                start: ip("10.0.0.2"),
                end: ip("10.0.0.4"),
            },
            Pool {
                start: ip("10.0.0.10"),
                end: ip("10.0.0.11"),
            },
        ];
        let mut taken = BTreeSet::new();
        assert_eq!(next_free(&pools, &taken), Some(ip("10.0.0.2")));
        taken.insert(ip("10.0.0.2"));
        taken.insert(ip("10.0.0.4"));
        assert_eq!(next_free(&pools, &taken), Some(ip("10.0.0.3")));
        taken.insert(ip("10.0.0.3"));
        assert_eq!(next_free(&pools, &taken), Some(ip("10.0.0.10")));
        taken.insert(ip("10.0.0.10"));
        taken.insert(ip("10.0.0.11"));
        assert_eq!(next_free(&pools, &taken), None);
    }

    #[test]
    fn nth_free_counts_across_gaps_and_pools() {
        let pools = [
            Pool {
                start: ip("10.0.0.2"),
                end: ip("10.0.0.6"),
            },
            Pool {
                start: ip("10.0.0.10"),
                end: ip("10.0.0.11"),
            },
        ];
        let taken: BTreeSet<IpAddr> = [ip("10.0.0.3"), ip("10.0.0.5")].into();
        let free: Vec<Option<IpAddr>> = (0..6).map(|n| nth_free(&pools, &taken, n)).collect();
        assert_eq!(
            free,
            vec![
                Some(ip("10.0.0.2")),
                Some(ip("10.0.0.4")),
                Some(ip("10.0.0.6")),
                Some(ip("10.0.0.10")),
                Some(ip("10.0.0.11")),
                None
            ]
        );
    }

    #[test]
    fn pools_are_validated() {
        let c = net("10.0.0.0/24");
        let p = |a: &str, b: &str| Pool {
            start: ip(a),
            end: ip(b),
        };
        assert!(validate_pools(&c, &[p("10.0.0.2", "10.0.0.9")], Some(ip("10.0.0.1"))).is_ok());
        assert!(validate_pools(&c, &[p("10.0.0.9", "10.0.0.2")], None).is_err());
        assert!(validate_pools(&c, &[p("10.0.0.2", "10.0.1.9")], None).is_err());
        assert!(validate_pools(
            &c,
            &[p("10.0.0.2", "10.0.0.9"), p("10.0.0.5", "10.0.0.20")],
            None
        )
        .is_err());
        assert!(validate_pools(&c, &[p("10.0.0.1", "10.0.0.9")], Some(ip("10.0.0.1"))).is_err());
    }

    #[test]
    fn requested_addresses_must_be_usable() {
        let c = net("10.0.0.0/24");
        assert!(check_in_subnet(&c, ip("10.0.0.7")).is_ok());
        assert!(check_in_subnet(&c, ip("10.0.0.0")).is_err());
        assert!(check_in_subnet(&c, ip("10.0.0.255")).is_err());
        assert!(check_in_subnet(&c, ip("10.0.1.7")).is_err());
    }
}
