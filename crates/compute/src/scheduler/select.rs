//! Host selection: a pure function over a snapshot of hosts. Filters are
//! predicates; weighers give a score; ties end in the host name so results
//! are deterministic.

use std::collections::BTreeMap;

use crate::db::hosts::ComputeNode;

#[derive(Clone, Debug)]
pub struct HostState {
    pub node: ComputeNode,
    /// Heartbeat within `service_down_time` and not forced down.
    pub up: bool,
    /// Service not disabled by an operator.
    pub enabled: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Request {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub availability_zone: Option<String>,
    /// `affinity`, `anti-affinity`, `soft-affinity`, `soft-anti-affinity`.
    pub group_policy: Option<String>,
    /// Hosts the group's other members run on.
    pub group_hosts: Vec<String>,
    /// Hosts already tried for this instance.
    pub ignore_hosts: Vec<String>,
    /// Image properties (`hypervisor_type`, `img_hv_type`).
    pub image_properties: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug)]
pub struct Weights {
    /// > 0 spreads by free RAM, < 0 stacks.
    pub ram: f64,
    pub cpu: f64,
}

fn free_ram(n: &ComputeNode) -> f64 {
    n.memory_mb as f64 * n.ram_allocation_ratio - n.memory_mb_used as f64
}

fn free_vcpus(n: &ComputeNode) -> f64 {
    n.vcpus as f64 * n.cpu_allocation_ratio - n.vcpus_used as f64
}

fn free_disk(n: &ComputeNode) -> f64 {
    n.local_gb as f64 * n.disk_allocation_ratio - n.local_gb_used as f64
}

/// What a request asks of every host, worked out once per decision rather
/// than once per host (the image's hypervisor type is two map lookups).
struct Asks<'r> {
    r: &'r Request,
    hypervisor: Option<&'r str>,
}

impl<'r> Asks<'r> {
    fn of(r: &'r Request) -> Self {
        let hypervisor = r
            .image_properties
            .get("img_hv_type")
            .or_else(|| r.image_properties.get("hypervisor_type"))
            .map(String::as_str);
        Self { r, hypervisor }
    }

    /// Whether a host passes every filter, and if not, which one failed.
    fn check(&self, h: &HostState) -> Result<(), &'static str> {
        let (n, r) = (&h.node, self.r);
        if !h.enabled || !h.up {
            return Err("ComputeFilter");
        }
        if r.ignore_hosts.contains(&n.host) {
            return Err("RetryFilter");
        }
        if free_ram(n) < r.memory_mb as f64 {
            return Err("RamFilter");
        }
        if free_vcpus(n) < r.vcpus as f64 {
            return Err("VCPUFilter");
        }
        if free_disk(n) < r.disk_gb as f64 {
            return Err("DiskFilter");
        }
        if let Some(az) = &r.availability_zone {
            if &n.availability_zone != az {
                return Err("AvailabilityZoneFilter");
            }
        }
        match r.group_policy.as_deref() {
            Some("affinity") if !r.group_hosts.is_empty() && !r.group_hosts.contains(&n.host) => {
                return Err("ServerGroupAffinityFilter")
            }
            Some("anti-affinity") if r.group_hosts.contains(&n.host) => {
                return Err("ServerGroupAntiAffinityFilter")
            }
            _ => {}
        }
        if let Some(hv) = self.hypervisor {
            if !hv.eq_ignore_ascii_case(&n.hypervisor_type) {
                return Err("ImagePropertiesFilter");
            }
        }
        Ok(())
    }
}

/// Whether a host passes every filter, and if not, which one failed.
pub fn filter(h: &HostState, r: &Request) -> Result<(), &'static str> {
    Asks::of(r).check(h)
}

/// The smallest and largest of `values` (`(inf, -inf)` when none).
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// `v` normalised to [0, 1] over `(min, max)`, as Nova's weighers do.
fn normalise(v: f64, (min, max): (f64, f64)) -> f64 {
    if max > min {
        (v - min) / (max - min)
    } else {
        0.0
    }
}

/// The hosts that pass the filters, best first.
pub fn select(hosts: &[HostState], r: &Request, w: Weights) -> Vec<String> {
    select_top(hosts, r, w, usize::MAX)
}

/// The best `keep` hosts that pass the filters, best first: what a
/// placement tries (the chosen host and its alternates, with a margin for
/// claims lost to other schedulers).
///
/// One pass filters (into one vector of what the weighers read), one finds
/// the ranges they normalise over, and only the best `keep` are sorted and
/// named: no per-host allocation, and no full sort over thousands of hosts.
pub fn select_top(hosts: &[HostState], r: &Request, w: Weights, keep: usize) -> Vec<String> {
    let asks = Asks::of(r);
    // The passing hosts with what the weighers read, side by side: the later
    // passes walk this rather than the hosts' whole records.
    let ok: Vec<(f64, f64, &str)> = hosts
        .iter()
        .filter(|h| asks.check(h).is_ok())
        .map(|h| (free_ram(&h.node), free_vcpus(&h.node), h.node.host.as_str()))
        .collect();
    let ram = range(ok.iter().map(|h| h.0));
    let cpu = range(ok.iter().map(|h| h.1));
    let soft = match r.group_policy.as_deref() {
        Some("soft-affinity") => 10.0,
        Some("soft-anti-affinity") => -10.0,
        _ => 0.0,
    };
    let mut scored: Vec<(f64, &str)> = ok
        .into_iter()
        .map(|(free_ram, free_vcpus, host)| {
            let mut score = w.ram * normalise(free_ram, ram) + w.cpu * normalise(free_vcpus, cpu);
            if soft != 0.0 && r.group_hosts.iter().any(|g| g == host) {
                score += soft;
            }
            (score, host)
        })
        .collect();
    let best_first =
        |a: &(f64, &str), b: &(f64, &str)| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1));
    if keep < scored.len() {
        if keep == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(keep - 1, best_first);
        scored.truncate(keep);
    }
    scored.sort_unstable_by(best_first);
    scored.into_iter().map(|(_, h)| h.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, ram_used: i64) -> HostState {
        HostState {
            node: ComputeNode {
                host: name.into(),
                id: name.into(),
                node: name.into(),
                hypervisor_type: "fake".into(),
                host_ip: "127.0.0.1".into(),
                availability_zone: "nova".into(),
                vcpus: 4,
                memory_mb: 4096,
                local_gb: 100,
                vcpus_used: 0,
                memory_mb_used: ram_used,
                local_gb_used: 0,
                running_vms: 0,
                cpu_allocation_ratio: 1.0,
                ram_allocation_ratio: 1.0,
                disk_allocation_ratio: 1.0,
                updated_at: String::new(),
            },
            up: true,
            enabled: true,
        }
    }

    fn req(ram: i64) -> Request {
        Request {
            vcpus: 1,
            memory_mb: ram,
            disk_gb: 1,
            ..Request::default()
        }
    }

    const SPREAD: Weights = Weights { ram: 1.0, cpu: 0.0 };

    #[test]
    fn spreads_by_free_ram_and_breaks_ties_by_name() {
        let hosts = vec![host("c", 0), host("a", 0), host("b", 2048)];
        assert_eq!(select(&hosts, &req(512), SPREAD), vec!["a", "c", "b"]);
        let stack = Weights {
            ram: -1.0,
            cpu: 0.0,
        };
        assert_eq!(select(&hosts, &req(512), stack), vec!["b", "a", "c"]);
    }

    #[test]
    fn the_top_few_are_the_head_of_the_full_order() {
        let hosts: Vec<HostState> = (0..200)
            .map(|i| host(&format!("h{i:03}"), (i * 37 % 11) * 256))
            .collect();
        let all = select(&hosts, &req(512), SPREAD);
        assert_eq!(all.len(), 200);
        for k in [0, 1, 3, 16, 199, 200, 500] {
            let top = select_top(&hosts, &req(512), SPREAD, k);
            assert_eq!(top, all[..k.min(200)].to_vec(), "keep {k}");
        }
    }

    #[test]
    fn filters_drop_full_down_disabled_and_tried_hosts() {
        let mut down = host("down", 0);
        down.up = false;
        let mut off = host("off", 0);
        off.enabled = false;
        let hosts = vec![
            host("full", 4000),
            down,
            off,
            host("tried", 0),
            host("ok", 0),
        ];
        let mut r = req(512);
        r.ignore_hosts = vec!["tried".into()];
        assert_eq!(select(&hosts, &r, SPREAD), vec!["ok"]);
        assert_eq!(filter(&hosts[0], &r), Err("RamFilter"));
        r.memory_mb = 1;
        r.vcpus = 5;
        assert!(select(&hosts, &r, SPREAD).is_empty());
    }

    #[test]
    fn availability_zone_and_image_properties() {
        let mut other = host("x", 0);
        other.node.availability_zone = "az2".into();
        let hosts = vec![host("a", 0), other];
        let mut r = req(1);
        r.availability_zone = Some("az2".into());
        assert_eq!(select(&hosts, &r, SPREAD), vec!["x"]);
        r.availability_zone = None;
        r.image_properties
            .insert("img_hv_type".into(), "qemu".into());
        assert!(select(&hosts, &r, SPREAD).is_empty());
    }

    #[test]
    fn server_group_policies() {
        let hosts = vec![host("a", 0), host("b", 0), host("c", 0)];
        let mut r = req(1);
        r.group_hosts = vec!["b".into()];
        r.group_policy = Some("affinity".into());
        assert_eq!(select(&hosts, &r, SPREAD), vec!["b"]);
        r.group_policy = Some("anti-affinity".into());
        assert_eq!(select(&hosts, &r, SPREAD), vec!["a", "c"]);
        r.group_policy = Some("soft-affinity".into());
        assert_eq!(select(&hosts, &r, SPREAD)[0], "b");
        r.group_policy = Some("soft-anti-affinity".into());
        assert_eq!(select(&hosts, &r, SPREAD), vec!["a", "c", "b"]);
    }
}
