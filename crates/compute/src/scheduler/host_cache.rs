//! The scheduler's host cache: host states kept in memory between decisions
//! (as Nova's HostManager keeps its HostState objects) and brought up to
//! date before each decision by reading only what changed.
//!
//! How changes are found:
//! - Every write to a compute node (agent report, claim, release) or a
//!   service (heartbeat, enable/disable, force down) stamps `updated_at`.
//!   Each decision reads the rows stamped at or after the newest stamp seen
//!   so far: the watermark, never later than our own clock, so that a writer
//!   with a fast clock cannot blind the cache.
//! - Stamps come from the writers' clocks, and a write can commit after a
//!   later-stamped one was already read. So at most every `catch_up_every`
//!   the read reaches `overlap` further back than the watermark.
//! - A deletion leaves no row to read: each read also reads the counter of
//!   host deletions (one row) and reloads the snapshot whole when it moved;
//!   each catch-up read compares the counts of nodes and compute services
//!   with the snapshot's too (counting reads every row, too dear for every
//!   decision over thousands of hosts), and a snapshot holding more than the
//!   database is reloaded whole. A whole reload also
//!   happens every `full_every`, as the safety net for anything else missed
//!   (a writer whose clock is behind by more than `overlap`).
//! - Up/down is judged at decision time from the cached heartbeat stamp
//!   ([`super::is_up`]), so a service that stops heartbeating goes down in
//!   the snapshot without any row changing.
//!
//! The snapshot is only a hint: the claim is the transaction that checks
//! capacity, so a decision on a stale snapshot can only lose its claim and
//! move on to the next candidate. Every read of the database happens under
//! one lock, so a later read never reflects an older database state than an
//! earlier one, and the newest read of a row simply replaces the cached row.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use stratus_common::time;
use stratus_db::Db;
use tokio::sync::Mutex;

use super::select::HostState;
use crate::db::hosts::{ComputeNode, Service};
use crate::db::{hosts, Conn};
use crate::error::Result;

/// How far back reads reach and how often everything is reloaded.
#[derive(Clone, Copy, Debug)]
pub struct CacheOptions {
    /// How far before the watermark a catch-up read starts: covers commit
    /// latency and clock differences between the writers and us.
    pub overlap: Duration,
    /// How often a read is a catch-up read.
    pub catch_up_every: Duration,
    /// How often the whole snapshot is reloaded regardless.
    pub full_every: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            overlap: Duration::from_secs(2),
            catch_up_every: Duration::from_secs(1),
            full_every: Duration::from_secs(300),
        }
    }
}

/// What the cache has done so far (for tests and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Whole reloads (the first load included).
    pub full_loads: u64,
    /// Reads of the rows changed since the last read.
    pub delta_reads: u64,
    /// Rows those reads returned.
    pub delta_rows: u64,
}

/// What the scheduler needs of a `nova-compute` service.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct ServiceState {
    disabled: bool,
    forced_down: bool,
    last_seen_up: Option<DateTime<Utc>>,
}

impl ServiceState {
    fn of(s: &Service) -> Self {
        Self {
            disabled: s.disabled,
            forced_down: s.forced_down,
            last_seen_up: s.last_seen_up.as_deref().and_then(time::from_db),
        }
    }
}

/// The pure part: nodes and services by host, and the newest stamps seen.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// One per compute node, in the order they were first seen.
    hosts: Vec<HostState>,
    /// The node's `nova-compute` service, parallel to `hosts`.
    service_of: Vec<Option<ServiceState>>,
    /// Host name → position in `hosts`.
    index: HashMap<String, usize>,
    /// Every `nova-compute` service, with or without a node.
    services: HashMap<String, ServiceState>,
    nodes_seen: Option<DateTime<Utc>>,
    services_seen: Option<DateTime<Utc>>,
}

fn newer(seen: &mut Option<DateTime<Utc>>, stamp: &str) {
    if let Some(t) = time::from_db(stamp) {
        if seen.is_none_or(|s| t > s) {
            *seen = Some(t);
        }
    }
}

impl Snapshot {
    /// A snapshot of exactly these rows.
    pub fn load(nodes: Vec<ComputeNode>, services: Vec<Service>) -> Self {
        let mut s = Self::default();
        s.apply_services(services);
        s.apply_nodes(nodes);
        s
    }

    /// Takes in node rows read from the database (newer than what is held).
    pub fn apply_nodes(&mut self, nodes: Vec<ComputeNode>) {
        for n in nodes {
            newer(&mut self.nodes_seen, &n.updated_at);
            self.put_node(n);
        }
    }

    fn put_node(&mut self, node: ComputeNode) {
        if let Some(&i) = self.index.get(&node.host) {
            self.hosts[i].node = node;
            return;
        }
        let svc = self.services.get(&node.host).copied();
        self.index.insert(node.host.clone(), self.hosts.len());
        self.hosts.push(HostState {
            enabled: svc.is_some_and(|s| !s.disabled),
            up: false,
            node,
        });
        self.service_of.push(svc);
    }

    /// Takes in service rows read from the database; other binaries than
    /// `nova-compute` are ignored.
    pub fn apply_services(&mut self, services: Vec<Service>) {
        for s in services.iter().filter(|s| s.binary == "nova-compute") {
            newer(&mut self.services_seen, &s.updated_at);
            let st = ServiceState::of(s);
            self.services.insert(s.host.clone(), st);
            if let Some(&i) = self.index.get(&s.host) {
                self.service_of[i] = Some(st);
                self.hosts[i].enabled = !st.disabled;
            }
        }
    }

    /// (nodes, `nova-compute` services) held.
    pub fn counts(&self) -> (usize, usize) {
        (self.hosts.len(), self.services.len())
    }

    /// Where the next node and service reads start: `back` before the
    /// newest stamp seen, itself no later than `now`; `""` (everything)
    /// when nothing was seen.
    pub fn since(&self, now: DateTime<Utc>, back: Duration) -> (String, String) {
        let back = chrono::Duration::from_std(back).unwrap_or(chrono::Duration::zero());
        let from = |seen: Option<DateTime<Utc>>| {
            seen.map_or_else(String::new, |t| time::to_db(t.min(now) - back))
        };
        (from(self.nodes_seen), from(self.services_seen))
    }

    /// The host states with up/down judged at `now`.
    pub fn judge(&mut self, now: DateTime<Utc>, down_after_secs: u64) -> &[HostState] {
        let since = super::up_since(now, down_after_secs);
        for (h, svc) in self.hosts.iter_mut().zip(&self.service_of) {
            h.up = svc.is_some_and(|s| super::is_up(s.forced_down, s.last_seen_up, since));
        }
        &self.hosts
    }
}

#[derive(Debug, Default)]
struct Inner {
    snap: Snapshot,
    /// The host deletion counter as of the last whole load.
    deletions: i64,
    last_full: Option<Instant>,
    last_catch_up: Option<Instant>,
    stats: CacheStats,
}

/// The snapshot behind its lock, with the reads that keep it current.
#[derive(Debug, Default)]
pub struct HostCache {
    opts: CacheOptions,
    inner: Mutex<Inner>,
}

impl HostCache {
    pub fn new(opts: CacheOptions) -> Self {
        Self {
            opts,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Brings the snapshot up to date and runs `f` over the host states,
    /// up/down judged now. `f` runs under the lock: keep it a pure function
    /// (the filters and weighers).
    pub async fn with_hosts<R>(
        &self,
        db: &Db,
        down_after_secs: u64,
        f: impl FnOnce(&[HostState]) -> R,
    ) -> Result<R> {
        let mut inner = self.inner.lock().await;
        inner.refresh(&mut *db.conn().await?, &self.opts).await?;
        Ok(f(inner.snap.judge(time::now(), down_after_secs)))
    }

    pub async fn stats(&self) -> CacheStats {
        self.inner.lock().await.stats
    }
}

impl Inner {
    async fn load_all(&mut self, conn: &mut Conn) -> Result<()> {
        self.deletions = hosts::host_deletions(&mut *conn).await?;
        let services = hosts::compute_service_changes(&mut *conn, "").await?;
        let nodes = hosts::node_list(&mut *conn).await?;
        self.snap = Snapshot::load(nodes, services);
        let now = Instant::now();
        self.last_full = Some(now);
        self.last_catch_up = Some(now);
        self.stats.full_loads += 1;
        Ok(())
    }

    async fn refresh(&mut self, conn: &mut Conn, opts: &CacheOptions) -> Result<()> {
        let due =
            |last: Option<Instant>, every: Duration| last.is_none_or(|t| t.elapsed() >= every);
        if due(self.last_full, opts.full_every) {
            return self.load_all(conn).await;
        }
        let catch_up = due(self.last_catch_up, opts.catch_up_every);
        let back = if catch_up {
            opts.overlap
        } else {
            Duration::ZERO
        };
        let (nodes_since, services_since) = self.snap.since(time::now(), back);
        let services = hosts::compute_service_changes(&mut *conn, &services_since).await?;
        let nodes = hosts::node_changes(&mut *conn, &nodes_since).await?;
        self.stats.delta_reads += 1;
        self.stats.delta_rows += (services.len() + nodes.len()) as u64;
        self.snap.apply_services(services);
        self.snap.apply_nodes(nodes);
        if hosts::host_deletions(&mut *conn).await? != self.deletions {
            return self.load_all(conn).await;
        }
        if !catch_up {
            return Ok(());
        }
        self.last_catch_up = Some(Instant::now());
        // More held than exists: something was deleted. (Fewer held means
        // rows added after the reads above; the next read brings them.)
        let (nodes, services) = hosts::host_counts(&mut *conn).await?;
        let (held_nodes, held_services) = self.snap.counts();
        if held_nodes as i64 > nodes || held_services as i64 > services {
            return self.load_all(conn).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs_ago: i64) -> String {
        time::to_db(time::now() - chrono::Duration::seconds(secs_ago))
    }

    fn node(host: &str, ram_used: i64, stamp: &str) -> ComputeNode {
        ComputeNode {
            host: host.into(),
            id: host.into(),
            node: host.into(),
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
            updated_at: stamp.into(),
        }
    }

    fn service(host: &str, seen_secs_ago: i64, stamp: &str) -> Service {
        Service {
            id: host.into(),
            host: host.into(),
            binary: "nova-compute".into(),
            topic: "compute".into(),
            disabled: false,
            disabled_reason: None,
            forced_down: false,
            last_seen_up: Some(at(seen_secs_ago)),
            updated_at: stamp.into(),
        }
    }

    fn view(s: &mut Snapshot) -> Vec<(String, i64, bool, bool)> {
        let mut v: Vec<_> = s
            .judge(time::now(), 60)
            .iter()
            .map(|h| (h.node.host.clone(), h.node.memory_mb_used, h.up, h.enabled))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn changed_rows_replace_held_ones_and_new_hosts_are_added() {
        let t = at(10);
        let mut s = Snapshot::load(
            vec![node("a", 0, &t), node("b", 0, &t)],
            vec![service("a", 1, &t), service("b", 1, &t)],
        );
        let t2 = at(5);
        s.apply_nodes(vec![node("b", 512, &t2), node("c", 0, &t2)]);
        // c has no service yet: down and disabled until its service shows.
        assert_eq!(
            view(&mut s),
            vec![
                ("a".into(), 0, true, true),
                ("b".into(), 512, true, true),
                ("c".into(), 0, false, false),
            ]
        );
        s.apply_services(vec![service("c", 1, &t2)]);
        assert_eq!(view(&mut s)[2], ("c".into(), 0, true, true));
        assert_eq!(s.counts(), (3, 3));
    }

    #[test]
    fn disabled_forced_down_and_silent_services_are_judged_at_decision_time() {
        let t = at(10);
        let mut s = Snapshot::load(
            vec![node("a", 0, &t), node("b", 0, &t), node("c", 0, &t)],
            vec![
                service("a", 1, &t),
                service("b", 1, &t),
                service("c", 30, &t),
            ],
        );
        let mut off = service("a", 1, &t);
        off.disabled = true;
        let mut forced = service("b", 1, &t);
        forced.forced_down = true;
        s.apply_services(vec![off, forced]);
        let hs = s.judge(time::now(), 60).to_vec();
        assert_eq!(
            hs.iter().map(|h| (h.up, h.enabled)).collect::<Vec<_>>(),
            vec![(true, false), (false, true), (true, true)]
        );
        // Nothing read in between: c's last heartbeat is simply too old now.
        let later = time::now() + chrono::Duration::seconds(40);
        assert!(!s.judge(later, 60)[2].up);
    }

    #[test]
    fn other_binaries_are_ignored() {
        let t = at(1);
        let mut sched = service("a", 1, &t);
        sched.binary = "nova-scheduler".into();
        let s = Snapshot::load(vec![], vec![sched]);
        assert_eq!(s.counts(), (0, 0));
        assert_eq!(
            s.since(time::now(), Duration::ZERO),
            (String::new(), String::new())
        );
    }

    #[test]
    fn reads_start_at_the_newest_stamp_never_past_our_clock() {
        let now = time::now();
        let old = time::to_db(now - chrono::Duration::seconds(30));
        let new = time::to_db(now - chrono::Duration::seconds(3));
        let future = time::to_db(now + chrono::Duration::hours(1));
        let s = Snapshot::load(
            vec![node("a", 0, &old), node("b", 0, &new)],
            vec![service("a", 1, &old), service("b", 1, &future)],
        );
        assert_eq!(
            s.since(now, Duration::ZERO),
            (new.clone(), time::to_db(now))
        );
        let back = time::to_db(now - chrono::Duration::seconds(5));
        assert_eq!(s.since(now, Duration::from_secs(2)).0, back);
    }
}
