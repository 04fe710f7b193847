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
//! prefix, or remote group) and ends in drop. ARP is not IP and passes.
//!
//! Remote groups are named sets of the `inet` table, one per group and
//! family (`m4_<group>` of `ipv4_addr`, `m6_<group>` of `ipv6_addr`), that
//! the port chains match with `ip saddr @m4_<group>`. The member addresses
//! of a group are host state, not port state: every port whose rules name
//! the group shares its set. So a member change (`sg_members_update`) is one
//! set update — flush and add elements, in one `nft -f` transaction — and no
//! chain is rewritten; a port change re-renders the whole ruleset from the
//! agent's state and applies it atomically (`nft -f`), so applying it is
//! idempotent. The sets of groups no port refers to are forgotten.
//!
//! Which member list wins: the latest to arrive. `port_bind` carries the
//! members of the groups the port's rules name and `sg_members_update` the
//! members of changed groups; both are computed by the server after its
//! commit and cast in the order computed (one server serialises them), and
//! the bus delivers a topic's messages in order to this agent's single
//! consumer, so the latest to arrive is the latest computed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use stratus_common::ids::{NetworkId, PortId, SecurityGroupId};
use tokio::sync::Mutex;

use crate::dataplane::{cmd, names};
use crate::error::{AgentError, Result};
use crate::rpc::{PortInfo, SecurityGroupRuleInfo};

/// The default table name (both families).
pub const DEFAULT_TABLE: &str = "stratus";
const MAX_PORTS: usize = 0x7fff;

/// What the firewall knows about one port (the member addresses of remote
/// groups are kept per host, see [`Members`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortFirewall {
    pub port: PortInfo,
    pub rules: Vec<SecurityGroupRuleInfo>,
}

/// The member addresses of each remote group the host's rules name.
pub type Members = BTreeMap<SecurityGroupId, BTreeSet<IpAddr>>;

/// The name of the set holding a group's IPv4 (`v6` false) or IPv6 members.
pub fn member_set_name(group: &SecurityGroupId, v6: bool) -> String {
    let fam = if v6 { 6 } else { 4 };
    format!("m{fam}_{}", group.0.simple())
}

/// The rules of a port that apply to it (those of the groups it is in).
fn port_rules(pf: &PortFirewall) -> impl Iterator<Item = &SecurityGroupRuleInfo> {
    pf.rules
        .iter()
        .filter(|r| pf.port.security_group_ids.contains(&r.security_group_id))
}

/// The groups the ports' rules name as remote group.
pub fn referenced_groups(ports: &BTreeMap<PortId, PortFirewall>) -> BTreeSet<SecurityGroupId> {
    ports
        .values()
        .flat_map(port_rules)
        .filter_map(|r| r.remote_group_id)
        .collect()
}

fn elements(ips: Option<&BTreeSet<IpAddr>>, v6: bool) -> Vec<String> {
    ips.into_iter()
        .flatten()
        .filter(|ip| ip.is_ipv6() == v6)
        .map(ToString::to_string)
        .collect()
}

/// The nft script that replaces the member sets of `groups` (which must
/// exist: the groups are referenced) with `members`, in one transaction.
pub fn render_member_update(
    table: &str,
    groups: &BTreeSet<SecurityGroupId>,
    members: &Members,
) -> String {
    let mut s = String::new();
    for g in groups {
        for v6 in [false, true] {
            let set = member_set_name(g, v6);
            let _ = writeln!(s, "flush set inet {table} {set}");
            let el = elements(members.get(g), v6);
            if !el.is_empty() {
                let _ = writeln!(s, "add element inet {table} {set} {{ {} }}", el.join(", "));
            }
        }
    }
    s
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
/// address family) or cannot be expressed. A remote group matches its
/// member set, which may be empty now and filled later.
pub fn rule_match(rule: &SecurityGroupRuleInfo) -> Option<String> {
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
        m.push(format!("{ipkw} {dir} @{}", member_set_name(&group, v6)));
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
/// recreates them with the member sets of the groups their rules name;
/// one transaction.
pub fn render(
    table: &str,
    ports: &BTreeMap<PortId, PortFirewall>,
    members: &Members,
) -> Result<String> {
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
    for g in referenced_groups(ports) {
        for (v6, ty) in [(false, "ipv4_addr"), (true, "ipv6_addr")] {
            let set = member_set_name(&g, v6);
            let el = elements(members.get(&g), v6);
            if el.is_empty() {
                let _ = writeln!(s, "  set {set} {{ type {ty}; }}");
            } else {
                let _ = writeln!(
                    s,
                    "  set {set} {{ type {ty}; elements = {{ {} }} }}",
                    el.join(", ")
                );
            }
        }
    }
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
        let rules: Vec<&SecurityGroupRuleInfo> = port_rules(pf).collect();
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
            if let Some(m) = rule_match(r) {
                let _ = writeln!(s, "    {m} return");
            }
        }
        let _ = writeln!(s, "    drop\n  }}");
        let _ = writeln!(s, "  chain port{k}_in {{");
        let _ = writeln!(s, "    meta nfproto ipv4 udp sport 67 udp dport 68 accept");
        let _ = writeln!(s, "    {nd} accept");
        for r in rules.iter().filter(|r| r.direction == "ingress") {
            if let Some(m) = rule_match(r) {
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

/// The host's security group state: the ports with their rules, and the
/// member sets of the remote groups those rules name.
#[derive(Default)]
struct State {
    ports: BTreeMap<PortId, PortFirewall>,
    members: Members,
}

impl State {
    /// Forgets the member sets no port refers to any more.
    fn prune(&mut self) {
        let referenced = referenced_groups(&self.ports);
        self.members.retain(|g, _| referenced.contains(g));
    }
}

/// The host's security group state; a port change re-applies the ruleset,
/// a member change only the member sets.
pub struct Firewall {
    table: String,
    state: Mutex<State>,
    /// `false` for the noop driver: state is kept, the kernel is not touched.
    apply: bool,
    /// Whole rulesets rendered and member-set updates made (also with the
    /// noop driver), for tests and diagnostics.
    full_commits: AtomicU64,
    set_updates: AtomicU64,
}

impl Firewall {
    pub fn new(table: &str, apply: bool) -> Self {
        Self {
            table: table.to_owned(),
            state: Mutex::new(State::default()),
            apply,
            full_commits: AtomicU64::new(0),
            set_updates: AtomicU64::new(0),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// (whole rulesets rendered, member-set updates made) so far.
    pub fn commit_counts(&self) -> (u64, u64) {
        (
            self.full_commits.load(Ordering::Relaxed),
            self.set_updates.load(Ordering::Relaxed),
        )
    }

    async fn commit(&self, st: &State) -> Result<()> {
        self.full_commits.fetch_add(1, Ordering::Relaxed);
        if !self.apply {
            return Ok(());
        }
        if !st.ports.is_empty() {
            enable_bridge_netfilter()?;
        }
        let script = render(&self.table, &st.ports, &st.members)?;
        cmd::run_with_input("nft", &["-f", "-"], Some(&script)).await?;
        Ok(())
    }

    /// Sets (or replaces) a port's rules; `members` (the `port_bind`'s,
    /// newer than what the host had) replace the sets of those groups.
    pub async fn set_port(
        &self,
        pf: PortFirewall,
        members: &BTreeMap<SecurityGroupId, Vec<IpAddr>>,
    ) -> Result<()> {
        let mut st = self.state.lock().await;
        let id = pf.port.id;
        let old_port = st.ports.insert(id, pf);
        let old_members = st.members.clone();
        for (g, ips) in members {
            st.members.insert(*g, ips.iter().copied().collect());
        }
        st.prune();
        if let Err(e) = self.commit(&st).await {
            // Keep memory equal to what the kernel has.
            match old_port {
                Some(o) => st.ports.insert(id, o),
                None => st.ports.remove(&id),
            };
            st.members = old_members;
            return Err(e);
        }
        Ok(())
    }

    /// `sg_members_update`: replaces the member sets of the groups the
    /// host's rules name; other groups are ignored (a `port_bind` that
    /// names them brings their members). Returns how many sets changed.
    pub async fn update_members(
        &self,
        members: &BTreeMap<SecurityGroupId, Vec<IpAddr>>,
    ) -> Result<usize> {
        let mut st = self.state.lock().await;
        let referenced = referenced_groups(&st.ports);
        let mut changed = BTreeSet::new();
        let mut old: Vec<(SecurityGroupId, Option<BTreeSet<IpAddr>>)> = Vec::new();
        for (g, ips) in members {
            if !referenced.contains(g) {
                continue;
            }
            let new: BTreeSet<IpAddr> = ips.iter().copied().collect();
            if st.members.get(g) != Some(&new) {
                old.push((*g, st.members.insert(*g, new)));
                changed.insert(*g);
            }
        }
        if changed.is_empty() {
            return Ok(0);
        }
        self.set_updates.fetch_add(1, Ordering::Relaxed);
        if !self.apply {
            return Ok(changed.len());
        }
        let script = render_member_update(&self.table, &changed, &st.members);
        if let Err(e) = cmd::run_with_input("nft", &["-f", "-"], Some(&script)).await {
            // The sets should exist; if the kernel disagrees (someone
            // removed the table), the whole ruleset brings it back.
            tracing::warn!(error = %e, "member set update failed; re-applying the ruleset");
            if let Err(e) = self.commit(&st).await {
                for (g, o) in old {
                    match o {
                        Some(o) => st.members.insert(g, o),
                        None => st.members.remove(&g),
                    };
                }
                return Err(e);
            }
        }
        Ok(changed.len())
    }

    pub async fn remove_port(&self, port: &PortId) -> Result<()> {
        let mut st = self.state.lock().await;
        if st.ports.remove(port).is_some() {
            st.prune();
            self.commit(&st).await?;
        }
        Ok(())
    }

    pub async fn remove_network(&self, network: &NetworkId) -> Result<()> {
        let mut st = self.state.lock().await;
        let before = st.ports.len();
        st.ports.retain(|_, pf| pf.port.network_id != *network);
        if st.ports.len() != before {
            st.prune();
            self.commit(&st).await?;
        }
        Ok(())
    }

    pub async fn ports(&self) -> BTreeMap<PortId, PortFirewall> {
        self.state.lock().await.ports.clone()
    }

    /// The member sets of the groups the host's rules name.
    pub async fn members(&self) -> BTreeMap<SecurityGroupId, Vec<IpAddr>> {
        self.state
            .lock()
            .await
            .members
            .iter()
            .map(|(g, ips)| (*g, ips.iter().copied().collect()))
            .collect()
    }

    /// Removes both tables.
    pub async fn clear(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        st.ports.clear();
        st.members.clear();
        self.commit(&st).await
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
            rule_match(&r).as_deref(),
            Some("meta nfproto ipv4 ip saddr 192.0.2.0/24 meta l4proto tcp th dport 20-22")
        );
    }

    #[test]
    fn egress_icmp_type_code_and_v6_icmp() {
        let mut r = rule("egress", "IPv4", Some("icmp"));
        r.port_range_min = Some(8);
        r.port_range_max = Some(0);
        assert_eq!(
            rule_match(&r).as_deref(),
            Some("meta nfproto ipv4 meta l4proto icmp icmp type 8 icmp code 0")
        );
        let r6 = rule("ingress", "IPv6", Some("icmp"));
        assert_eq!(
            rule_match(&r6).as_deref(),
            Some("meta nfproto ipv6 meta l4proto ipv6-icmp")
        );
    }

    #[test]
    fn remote_group_matches_its_member_set_per_family() {
        let g: SecurityGroupId = "0a1b2c3d-0000-4000-8000-000000000001".parse().expect("id");
        let mut r = rule("ingress", "IPv4", None);
        r.remote_group_id = Some(g);
        assert_eq!(
            rule_match(&r).as_deref(),
            Some("meta nfproto ipv4 ip saddr @m4_0a1b2c3d000040008000000000000001")
        );
        let mut r6 = rule("egress", "IPv6", Some("tcp"));
        r6.remote_group_id = Some(g);
        assert_eq!(
            rule_match(&r6).as_deref(),
            Some(
                "meta nfproto ipv6 ip6 daddr @m6_0a1b2c3d000040008000000000000001 \
                 meta l4proto tcp"
            )
        );
    }

    #[test]
    fn family_mismatch_and_hostile_protocol_are_dropped() {
        let mut r = rule("ingress", "IPv4", None);
        r.remote_ip_prefix = Some("fd00::/64".parse().expect("net"));
        assert_eq!(rule_match(&r), None);
        let r = rule("ingress", "IPv4", Some("tcp; flush ruleset"));
        assert_eq!(rule_match(&r), None);
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
            },
        )]);
        let s = render("t", &ports, &Members::new()).expect("render");
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
            render("t", &BTreeMap::new(), &Members::new())
                .expect("render")
                .lines()
                .count(),
            4
        );
    }

    fn port_in(sg: SecurityGroupId, last: u8) -> PortInfo {
        PortInfo {
            id: PortId::new(),
            network_id: NetworkId::new(),
            mac_address: format!("fa:16:3e:00:00:{last:02x}"),
            fixed_ips: vec![FixedIp {
                subnet_id: SubnetId::new(),
                ip_address: IpAddr::from([10, 0, 0, last]),
            }],
            device_owner: "compute:nova".into(),
            device_id: "i".into(),
            project_id: "p".into(),
            admin_state_up: true,
            host: None,
            security_group_ids: vec![sg],
        }
    }

    /// A port in `sg` whose ingress rule names `remote` as remote group.
    fn port_fw(sg: SecurityGroupId, remote: SecurityGroupId, last: u8) -> PortFirewall {
        let mut r = rule("ingress", "IPv4", None);
        r.security_group_id = sg;
        r.remote_group_id = Some(remote);
        PortFirewall {
            port: port_in(sg, last),
            rules: vec![r],
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn render_declares_member_sets_once_and_chains_refer_to_them() {
        let sg = SecurityGroupId::new();
        let (a, b) = (port_fw(sg, sg, 5), port_fw(sg, sg, 6));
        let ports = BTreeMap::from([(a.port.id, a), (b.port.id, b)]);
        let v4 = member_set_name(&sg, false);
        let v6 = member_set_name(&sg, true);
        let members = Members::from([(
            sg,
            BTreeSet::from([ip(6), ip(5), "fd00::5".parse().expect("ip")]),
        )]);
        let s = render("t", &ports, &members).expect("render");
        assert_eq!(
            s.matches(&format!(
                "  set {v4} {{ type ipv4_addr; elements = {{ 10.0.0.5, 10.0.0.6 }} }}"
            ))
            .count(),
            1,
            "{s}"
        );
        assert_eq!(
            s.matches(&format!(
                "  set {v6} {{ type ipv6_addr; elements = {{ fd00::5 }} }}"
            ))
            .count(),
            1,
            "{s}"
        );
        assert_eq!(s.matches(&format!("ip saddr @{v4} accept")).count(), 2);
        // An empty group still has its (empty) set, so a member joining
        // later needs no chain change.
        let s = render("t", &ports, &Members::new()).expect("render");
        assert!(
            s.contains(&format!("  set {v4} {{ type ipv4_addr; }}")),
            "{s}"
        );
        assert_eq!(s.matches(&format!("ip saddr @{v4} accept")).count(), 2);
    }

    #[test]
    fn member_update_is_flush_and_add_per_set() {
        let sg = SecurityGroupId::new();
        let members = Members::from([(sg, BTreeSet::from([ip(7), ip(5)]))]);
        let s = render_member_update("t", &BTreeSet::from([sg]), &members);
        let v4 = member_set_name(&sg, false);
        let v6 = member_set_name(&sg, true);
        assert_eq!(
            s,
            format!(
                "flush set inet t {v4}\nadd element inet t {v4} {{ 10.0.0.5, 10.0.0.7 }}\n\
                 flush set inet t {v6}\n"
            )
        );
    }

    #[tokio::test]
    async fn member_updates_touch_only_known_groups_and_no_chain() {
        let fw = Firewall::new("t", false);
        let (sg, other) = (SecurityGroupId::new(), SecurityGroupId::new());
        let pf = port_fw(sg, sg, 5);
        let port = pf.port.id;
        let bind_members = BTreeMap::from([(sg, vec![ip(5)]), (other, vec![ip(9)])]);
        fw.set_port(pf, &bind_members).await.expect("bind");
        // Only groups that rules name are kept.
        assert_eq!(fw.members().await, BTreeMap::from([(sg, vec![ip(5)])]));
        assert_eq!(fw.commit_counts(), (1, 0));

        // A member joins: one set update, no ruleset render.
        let n = fw
            .update_members(&BTreeMap::from([(sg, vec![ip(5), ip(6)])]))
            .await
            .expect("update");
        assert_eq!(n, 1);
        assert_eq!(fw.commit_counts(), (1, 1));
        assert_eq!(fw.members().await[&sg], vec![ip(5), ip(6)]);
        // The same list again, or a group nobody here refers to: nothing.
        let same = BTreeMap::from([(sg, vec![ip(6), ip(5)])]);
        assert_eq!(fw.update_members(&same).await.expect("same"), 0);
        let unknown = BTreeMap::from([(other, vec![ip(9)])]);
        assert_eq!(fw.update_members(&unknown).await.expect("unknown"), 0);
        assert!(!fw.members().await.contains_key(&other));
        assert_eq!(fw.commit_counts(), (1, 1));
        // A member leaves.
        let left = BTreeMap::from([(sg, vec![ip(5)])]);
        assert_eq!(fw.update_members(&left).await.expect("left"), 1);
        assert_eq!(fw.members().await[&sg], vec![ip(5)]);

        // The last port referring to the group goes: its set goes too.
        fw.remove_port(&port).await.expect("remove");
        assert!(fw.members().await.is_empty());
    }
}
