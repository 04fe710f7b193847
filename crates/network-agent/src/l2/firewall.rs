//! Security groups on taps with nftables.
//!
//! Why two tables: this kernel has no connection tracking in the `bridge`
//! family (no `nf_conntrack_bridge`), and in the `inet` family bridged frames
//! (seen through `br_netfilter`) carry the bridge, not the tap, as their
//! in/out interface. So a `bridge stratus` chain, which sees the taps, tags
//! each frame's mark with the index of its source and destination port, and
//! an `inet stratus` forward chain, which has conntrack, filters by those
//! tags:
//!
//! ```text
//! bridge stratus / tag_ports (forward, prio -200) inet stratus / port_filter (forward, prio 0)
//!   frame from/to a port: mark = 0x8000_0000        mark bit 31 clear -> accept (not ours)
//!   from port k:  mark |= k << 16                   established,related -> accept
//!   to port k:    mark |= k                         (mark>>16) -> jump port<k>_out (return/drop)
//!   MAC of port k enforced on frames from it        (mark&0xffff) -> jump port<k>_in (accept/drop)
//! ```
//!
//! Each port chain allows DHCP (and IPv6 neighbour discovery), enforces the
//! port's own IPv4 source addresses on egress, applies its rules (remote IP
//! prefix, or remote group as a set of the group's member addresses) and
//! ends in drop. ARP is not IP and passes. The whole ruleset is rendered
//! from the agent's state and applied atomically (`nft -f`), so applying it
//! is idempotent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use stratus_common::ids::{NetworkId, PortId, SecurityGroupId};
use tokio::sync::Mutex;

use crate::dataplane::{cmd, names};
use crate::error::{AgentError, Result};
use crate::rpc::{PortInfo, SecurityGroupRuleInfo};

/// The default table name (both families).
pub const DEFAULT_TABLE: &str = "stratus";
const MAX_PORTS: usize = 0x7fff;

/// What the firewall knows about one port.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortFirewall {
    pub port: PortInfo,
    pub rules: Vec<SecurityGroupRuleInfo>,
    pub members: BTreeMap<SecurityGroupId, Vec<IpAddr>>,
}

fn is_v6(ethertype: &str) -> bool {
    ethertype.eq_ignore_ascii_case("ipv6")
}

/// Protocol names are passed to nft; only harmless spellings get through.
fn clean_proto(p: &str) -> Option<String> {
    let p = p.trim().to_ascii_lowercase();
    if p.is_empty() || p.len() > 16 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    Some(p)
}

/// The match part of one rule, or None if it can never match (wrong
/// address family, empty remote group) or cannot be expressed.
pub fn rule_match(
    rule: &SecurityGroupRuleInfo,
    members: &BTreeMap<SecurityGroupId, Vec<IpAddr>>,
) -> Option<String> {
    let v6 = is_v6(&rule.ethertype);
    let (fam, ipkw) = if v6 { ("ipv6", "ip6") } else { ("ipv4", "ip") };
    let dir = if rule.direction == "egress" {
        "daddr"
    } else {
        "saddr"
    };
    let mut m = vec![format!("meta nfproto {fam}")];
    if let Some(prefix) = rule.remote_ip_prefix {
        if prefix.addr().is_ipv6() != v6 {
            return None;
        }
        if prefix.prefix_len() > 0 {
            m.push(format!("{ipkw} {dir} {}", prefix.trunc()));
        }
    } else if let Some(group) = rule.remote_group_id {
        let ips: Vec<String> = members
            .get(&group)
            .map(|v| {
                v.iter()
                    .filter(|ip| ip.is_ipv6() == v6)
                    .map(ToString::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if ips.is_empty() {
            return None;
        }
        m.push(format!("{ipkw} {dir} {{ {} }}", ips.join(", ")));
    }
    let proto = match rule.protocol.as_deref().map(clean_proto) {
        None => None,
        Some(None) => return None,
        Some(Some(p)) if p == "any" => None,
        Some(Some(p)) => Some(p),
    };
    if let Some(p) = proto {
        let p = match p.as_str() {
            "icmp" | "1" if v6 => "ipv6-icmp".to_owned(),
            "icmpv6" | "ipv6-icmp" | "58" => "ipv6-icmp".to_owned(),
            "6" => "tcp".to_owned(),
            "17" => "udp".to_owned(),
            "132" => "sctp".to_owned(),
            "1" => "icmp".to_owned(),
            _ => p,
        };
        m.push(format!("meta l4proto {p}"));
        match p.as_str() {
            "tcp" | "udp" | "sctp" | "udplite" | "dccp" => {
                match (rule.port_range_min, rule.port_range_max) {
                    (Some(lo), Some(hi)) if lo == hi => m.push(format!("th dport {lo}")),
                    (Some(lo), Some(hi)) if lo < hi => m.push(format!("th dport {lo}-{hi}")),
                    (Some(_), Some(_)) => return None,
                    (Some(lo), None) => m.push(format!("th dport {lo}")),
                    _ => {}
                }
            }
            // For ICMP, Neutron's port_range_min is the type, max the code.
            "icmp" | "ipv6-icmp" => {
                let kw = if p == "icmp" { "icmp" } else { "icmpv6" };
                if let Some(t) = rule.port_range_min {
                    m.push(format!("{kw} type {t}"));
                    if let Some(c) = rule.port_range_max {
                        m.push(format!("{kw} code {c}"));
                    }
                }
            }
            _ => {}
        }
    }
    Some(m.join(" "))
}

/// The complete nft script: drops both tables and, if there are ports,
/// recreates them; one transaction.
pub fn render(table: &str, ports: &BTreeMap<PortId, PortFirewall>) -> Result<String> {
    if ports.len() > MAX_PORTS {
        return Err(AgentError::BadRequest(format!(
            "more than {MAX_PORTS} ports on one host"
        )));
    }
    let mut s = String::new();
    for fam in ["bridge", "inet"] {
        let _ = writeln!(s, "table {fam} {table} {{}}\ndelete table {fam} {table}");
    }
    if ports.is_empty() {
        return Ok(s);
    }
    let taps: Vec<String> = ports
        .keys()
        .map(|p| format!("\"{}\"", names::tap(p)))
        .collect();
    let _ = writeln!(s, "table bridge {table} {{");
    let _ = writeln!(
        s,
        "  set ports {{ type ifname; elements = {{ {} }} }}",
        taps.join(", ")
    );
    let _ = writeln!(
        s,
        "  chain tag_ports {{\n    type filter hook forward priority -200; policy accept;"
    );
    let _ = writeln!(s, "    iifname @ports meta mark set 0x80000000");
    let _ = writeln!(
        s,
        "    iifname != @ports oifname @ports meta mark set 0x80000000"
    );
    for (i, (id, pf)) in ports.iter().enumerate() {
        let k = i + 1;
        let tap = names::tap(id);
        let mac = pf.port.mac_address.to_ascii_lowercase();
        if crate::dataplane::link::parse_mac(&mac).is_ok() {
            let _ = writeln!(s, "    iifname \"{tap}\" ether saddr != {mac} drop");
        }
        let _ = writeln!(
            s,
            "    iifname \"{tap}\" meta mark set meta mark or {:#010x}",
            k << 16
        );
        let _ = writeln!(
            s,
            "    oifname \"{tap}\" meta mark set meta mark or {k:#010x}"
        );
    }
    let _ = writeln!(s, "  }}\n}}");

    let _ = writeln!(s, "table inet {table} {{");
    let _ = writeln!(
        s,
        "  chain port_filter {{\n    type filter hook forward priority 0; policy accept;"
    );
    let _ = writeln!(s, "    meta mark and 0x80000000 == 0 accept");
    let _ = writeln!(s, "    ct state established,related accept");
    let _ = writeln!(s, "    ct state invalid drop");
    let egress: Vec<String> = (1..=ports.len())
        .map(|k| format!("{:#010x} : jump port{k}_out", k << 16))
        .collect();
    let ingress: Vec<String> = (1..=ports.len())
        .map(|k| format!("{k:#010x} : jump port{k}_in"))
        .collect();
    let _ = writeln!(
        s,
        "    meta mark and 0x7fff0000 vmap {{ {} }}",
        egress.join(", ")
    );
    let _ = writeln!(
        s,
        "    meta mark and 0x0000ffff vmap {{ {} }}",
        ingress.join(", ")
    );
    let _ = writeln!(s, "    accept\n  }}");
    let nd = "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }";
    for (i, pf) in ports.values().enumerate() {
        let k = i + 1;
        let groups = &pf.port.security_group_ids;
        let rules: Vec<&SecurityGroupRuleInfo> = pf
            .rules
            .iter()
            .filter(|r| groups.contains(&r.security_group_id))
            .collect();
        // egress: return = allowed (go on to the destination's ingress)
        let _ = writeln!(s, "  chain port{k}_out {{");
        let _ = writeln!(s, "    meta nfproto ipv4 udp sport 68 udp dport 67 return");
        let _ = writeln!(s, "    {nd} return");
        let v4: Vec<String> = pf
            .port
            .fixed_ips
            .iter()
            .filter(|f| f.ip_address.is_ipv4())
            .map(|f| f.ip_address.to_string())
            .collect();
        if !v4.is_empty() {
            let _ = writeln!(
                s,
                "    meta nfproto ipv4 ip saddr != {{ {} }} drop",
                v4.join(", ")
            );
        }
        for r in rules.iter().filter(|r| r.direction == "egress") {
            if let Some(m) = rule_match(r, &pf.members) {
                let _ = writeln!(s, "    {m} return");
            }
        }
        let _ = writeln!(s, "    drop\n  }}");
        let _ = writeln!(s, "  chain port{k}_in {{");
        let _ = writeln!(s, "    meta nfproto ipv4 udp sport 67 udp dport 68 accept");
        let _ = writeln!(s, "    {nd} accept");
        for r in rules.iter().filter(|r| r.direction == "ingress") {
            if let Some(m) = rule_match(r, &pf.members) {
                let _ = writeln!(s, "    {m} accept");
            }
        }
        let _ = writeln!(s, "    drop\n  }}");
    }
    let _ = writeln!(s, "}}");
    Ok(s)
}

/// Bridged IP traffic reaches the `inet` table only through `br_netfilter`
/// with `bridge-nf-call-ip{,6}tables` on (Neutron's Linux bridge agent sets
/// the same switches). Without it security groups would silently not apply,
/// so that is an error.
fn enable_bridge_netfilter() -> Result<()> {
    let dir = std::path::Path::new("/proc/sys/net/bridge");
    if !dir.exists() {
        return Err(AgentError::Dataplane(
            "br_netfilter is not loaded: security groups cannot be enforced".into(),
        ));
    }
    for knob in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
        let path = dir.join(knob);
        if std::fs::read_to_string(&path)?.trim() != "1" {
            std::fs::write(&path, "1")?;
        }
    }
    Ok(())
}

/// The host's security group state; every change re-applies the ruleset.
pub struct Firewall {
    table: String,
    ports: Mutex<BTreeMap<PortId, PortFirewall>>,
    /// `false` for the noop driver: state is kept, the kernel is not touched.
    apply: bool,
}

impl Firewall {
    pub fn new(table: &str, apply: bool) -> Self {
        Self {
            table: table.to_owned(),
            ports: Mutex::new(BTreeMap::new()),
            apply,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn commit(&self, ports: &BTreeMap<PortId, PortFirewall>) -> Result<()> {
        if !self.apply {
            return Ok(());
        }
        if !ports.is_empty() {
            enable_bridge_netfilter()?;
        }
        let script = render(&self.table, ports)?;
        cmd::run_with_input("nft", &["-f", "-"], Some(&script)).await?;
        Ok(())
    }

    /// Sets (or replaces) a port's rules.
    pub async fn set_port(&self, pf: PortFirewall) -> Result<()> {
        let mut ports = self.ports.lock().await;
        let id = pf.port.id;
        let old = ports.insert(id, pf);
        if let Err(e) = self.commit(&ports).await {
            // Keep memory equal to what the kernel has.
            match old {
                Some(o) => ports.insert(id, o),
                None => ports.remove(&id),
            };
            return Err(e);
        }
        Ok(())
    }

    pub async fn remove_port(&self, port: &PortId) -> Result<()> {
        let mut ports = self.ports.lock().await;
        if ports.remove(port).is_some() {
            self.commit(&ports).await?;
        }
        Ok(())
    }

    pub async fn remove_network(&self, network: &NetworkId) -> Result<()> {
        let mut ports = self.ports.lock().await;
        let before = ports.len();
        ports.retain(|_, pf| pf.port.network_id != *network);
        if ports.len() != before {
            self.commit(&ports).await?;
        }
        Ok(())
    }

    pub async fn ports(&self) -> BTreeMap<PortId, PortFirewall> {
        self.ports.lock().await.clone()
    }

    /// Removes both tables.
    pub async fn clear(&self) -> Result<()> {
        let mut ports = self.ports.lock().await;
        ports.clear();
        self.commit(&ports).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::FixedIp;
    use stratus_common::ids::SubnetId;

    fn rule(dir: &str, eth: &str, proto: Option<&str>) -> SecurityGroupRuleInfo {
        SecurityGroupRuleInfo {
            id: uuid::Uuid::new_v4(),
            security_group_id: SecurityGroupId::new(),
            direction: dir.into(),
            ethertype: eth.into(),
            protocol: proto.map(Into::into),
            port_range_min: None,
            port_range_max: None,
            remote_ip_prefix: None,
            remote_group_id: None,
        }
    }

    #[test]
    fn tcp_port_range_from_prefix() {
        let mut r = rule("ingress", "IPv4", Some("tcp"));
        r.port_range_min = Some(20);
        r.port_range_max = Some(22);
        r.remote_ip_prefix = Some("192.0.2.7/24".parse().expect("net"));
        assert_eq!(
            rule_match(&r, &BTreeMap::new()).as_deref(),
            Some("meta nfproto ipv4 ip saddr 192.0.2.0/24 meta l4proto tcp th dport 20-22")
        );
    }

    #[test]
    fn egress_icmp_type_code_and_v6_icmp() {
        let mut r = rule("egress", "IPv4", Some("icmp"));
        r.port_range_min = Some(8);
        r.port_range_max = Some(0);
        assert_eq!(
            rule_match(&r, &BTreeMap::new()).as_deref(),
            Some("meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0")
        );
        let r6 = rule("ingress", "IPv6", Some("icmp"));
        assert_eq!(
            rule_match(&r6, &BTreeMap::new()).as_deref(),
            Some("meta nfproto ipv6 meta l4proto ipv6-icmp")
        );
    }

    #[test]
    fn remote_group_uses_member_set_and_empty_group_never_matches() {
        let g = SecurityGroupId::new();
        let mut r = rule("ingress", "IPv4", None);
        r.remote_group_id = Some(g);
        let members = BTreeMap::from([(
            g,
            vec![
                "10.0.0.5".parse().expect("ip"),
                "fd00::5".parse().expect("ip"),
            ],
        )]);
        assert_eq!(
            rule_match(&r, &members).as_deref(),
            Some("meta nfproto ipv4 ip saddr { 10.0.0.5 }")
        );
        assert_eq!(rule_match(&r, &BTreeMap::new()), None);
    }

    #[test]
    fn family_mismatch_and_hostile_protocol_are_dropped() {
        let mut r = rule("ingress", "IPv4", None);
        r.remote_ip_prefix = Some("fd00::/64".parse().expect("net"));
        assert_eq!(rule_match(&r, &BTreeMap::new()), None);
        let r = rule("ingress", "IPv4", Some("tcp; flush ruleset"));
        assert_eq!(rule_match(&r, &BTreeMap::new()), None);
    }

    #[test]
    fn render_tags_ports_and_ends_each_chain_in_drop() {
        let sg = SecurityGroupId::new();
        let port = PortInfo {
            id: "aabbccdd-eeff-4011-8223-344556677889".parse().expect("id"),
            network_id: NetworkId::new(),
            mac_address: "FA:16:3E:00:00:05".into(),
            fixed_ips: vec![FixedIp {
                subnet_id: SubnetId::new(),
                ip_address: "10.0.0.5".parse().expect("ip"),
            }],
            device_owner: "compute:nova".into(),
            device_id: "i".into(),
            project_id: "p".into(),
            admin_state_up: true,
            host: None,
            security_group_ids: vec![sg],
        };
        let mut r = rule("ingress", "IPv4", Some("tcp"));
        r.security_group_id = sg;
        r.port_range_min = Some(22);
        r.port_range_max = Some(22);
        let mut other = rule("ingress", "IPv4", Some("udp"));
        other.port_range_min = Some(53);
        let ports = BTreeMap::from([(
            port.id,
            PortFirewall {
                port,
                rules: vec![r, other],
                members: BTreeMap::new(),
            },
        )]);
        let s = render("t", &ports).expect("render");
        assert!(s.starts_with(
            "table bridge t {}\ndelete table bridge t\ntable inet t {}\ndelete table inet t\n"
        ));
        assert!(s.contains("iifname \"tapaabbccdd-ee\" ether saddr != fa:16:3e:00:00:05 drop"));
        assert!(s.contains("iifname \"tapaabbccdd-ee\" meta mark set meta mark or 0x00010000"));
        assert!(s.contains("oifname \"tapaabbccdd-ee\" meta mark set meta mark or 0x00000001"));
        assert!(s.contains("meta nfproto ipv4 ip saddr != { 10.0.0.5 } drop"));
        assert!(s.contains("meta nfproto ipv4 meta l4proto tcp th dport 22 accept"));
        // A rule of a group the port is not in is not applied.
        assert!(!s.contains("dport 53"));
        assert_eq!(s.matches("    drop\n  }").count(), 2);
        // No ports: only the deletions.
        assert_eq!(
            render("t", &BTreeMap::new())
                .expect("render")
                .lines()
                .count(),
            4
        );
    }
}
