//! The scheduler worker: consumes `scheduler.select_and_build`, brings its
//! host cache up to date (`host_cache`), filters and weighs the hosts
//! (`select`), claims on the best host in one transaction and casts the
//! build to that host's agent with alternates.

pub mod host_cache;
pub mod select;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use stratus_db::Db;

use crate::bus::{Bus, Envelope, Handler, RemoteError};
use crate::config::ComputeConfig;
use crate::db::hosts::Service;
use crate::db::instances::Instance;
use crate::db::sagas::SagaState;
use crate::db::{actions, hosts, instances, sagas, server_groups};
use crate::error::{ComputeError, Result};
use crate::model::state::{TaskState, VmState};
use crate::rpc;
use crate::saga::{place, Inject};
use crate::trace;
use host_cache::{CacheOptions, CacheStats, HostCache};
use select::{HostState, Request, Weights};

pub struct Scheduler {
    pub db: Db,
    pub bus: Bus,
    pub cfg: ComputeConfig,
    /// This scheduler's own snapshot of the hosts; other schedulers keep
    /// theirs, and the claim transaction settles any disagreement.
    cache: HostCache,
}

/// The oldest heartbeat that still counts as up at `now`.
pub fn up_since(now: DateTime<Utc>, down_after_secs: u64) -> DateTime<Utc> {
    let limit = Duration::seconds(i64::try_from(down_after_secs).unwrap_or(i64::MAX / 1000));
    now.checked_sub_signed(limit)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether a service with this heartbeat counts as up, given `up_since`.
pub fn is_up(forced_down: bool, last_seen_up: Option<DateTime<Utc>>, since: DateTime<Utc>) -> bool {
    !forced_down && last_seen_up.is_some_and(|seen| seen >= since)
}

/// Whether a service's last heartbeat is recent enough.
pub fn service_is_up(s: &Service, down_after_secs: u64) -> bool {
    let seen = s
        .last_seen_up
        .as_deref()
        .and_then(stratus_common::time::from_db);
    is_up(
        s.forced_down,
        seen,
        up_since(stratus_common::time::now(), down_after_secs),
    )
}

/// Every host read from the database now (no cache): what the scheduler
/// did per decision before it kept a snapshot.
pub async fn read_host_states(db: &Db, down_after_secs: u64) -> Result<Vec<HostState>> {
    let mut conn = db.conn().await?;
    let services = hosts::service_list(&mut conn).await?;
    // Indexed by host: a linear search per node was quadratic at 10,000 hosts.
    let by_host: std::collections::HashMap<&str, _> = services
        .iter()
        .filter(|s| s.binary == "nova-compute")
        .map(|s| (s.host.as_str(), s))
        .collect();
    let nodes = hosts::node_list(&mut conn).await?;
    drop(conn);
    Ok(nodes
        .into_iter()
        .map(|node| {
            let svc = by_host.get(node.host.as_str()).copied();
            HostState {
                up: svc.is_some_and(|s| service_is_up(s, down_after_secs)),
                enabled: svc.is_some_and(|s| !s.disabled),
                node,
            }
        })
        .collect())
}

/// How many candidates a decision names ([`Scheduler::candidates`]).
pub fn candidates_kept(max_attempts: u32) -> usize {
    (max_attempts as usize).max(1).saturating_mul(4).max(16)
}

impl Scheduler {
    pub fn new(db: Db, bus: Bus, cfg: ComputeConfig) -> Self {
        Self::with_cache_options(db, bus, cfg, CacheOptions::default())
    }

    pub fn with_cache_options(db: Db, bus: Bus, cfg: ComputeConfig, opts: CacheOptions) -> Self {
        Self {
            db,
            bus,
            cfg,
            cache: HostCache::new(opts),
        }
    }

    /// The current host snapshot (brought up to date first).
    pub async fn host_states(&self) -> Result<Vec<HostState>> {
        self.cache
            .with_hosts(&self.db, self.cfg.service_down_time_secs, <[_]>::to_vec)
            .await
    }

    /// The hosts that fit a request, best first, over the snapshot brought
    /// up to date.
    pub async fn candidates(&self, req: &Request) -> Result<Vec<String>> {
        let weights = Weights {
            ram: self.cfg.ram_weight_multiplier,
            cpu: self.cfg.cpu_weight_multiplier,
        };
        // A placement tries the first host and its alternates; a margin
        // covers claims lost to other schedulers (and when all of them are
        // lost, the placement asks again over a fresh snapshot).
        let keep = candidates_kept(self.cfg.max_attempts);
        self.cache
            .with_hosts(&self.db, self.cfg.service_down_time_secs, |hosts| {
                select::select_top(hosts, req, weights, keep)
            })
            .await
    }

    pub async fn cache_stats(&self) -> CacheStats {
        self.cache.stats().await
    }

    /// The scheduler's request for an instance.
    async fn request_for(&self, inst: &Instance) -> Result<Request> {
        let mut req = Request {
            vcpus: inst.flavor.vcpus,
            memory_mb: inst.flavor.ram,
            disk_gb: inst.flavor.disk + inst.flavor.ephemeral,
            availability_zone: inst.availability_zone.clone(),
            ignore_hosts: inst.tried_hosts.clone(),
            image_properties: inst.image_properties.clone(),
            ..Request::default()
        };
        if let Some(g) = &inst.server_group_id {
            let mut conn = self.db.conn().await?;
            if let Ok(group) = server_groups::server_group_get(&mut conn, g).await {
                req.group_policy = Some(group.policy);
                req.group_hosts =
                    server_groups::server_group_hosts(&mut conn, g, &inst.id.to_string()).await?;
            }
        }
        Ok(req)
    }

    async fn select_and_build(&self, env: &Envelope, instance_id: &str) -> Result<()> {
        let ctx = &env.context;
        let rid = ctx.request_id.0.as_str();
        let res = Some(instance_id);
        trace::queued(8, env, res);
        let read = trace::start(9, "read the instance and its placement", res);
        let mut conn = self.db.conn().await?;
        let inst = match instances::instance_get(&mut conn, instance_id).await {
            Ok(i) => i,
            // Deleted before we got to it: nothing to do.
            Err(ComputeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let placement = place::saga_id(inst.id, 0);
        let started = match sagas::saga_get(&mut conn, &placement).await {
            Ok(rec) => rec.state != SagaState::Running,
            Err(ComputeError::NotFound(_)) => false,
            Err(e) => return Err(e),
        };
        if started
            || inst.vm_state != VmState::Building
            || inst.task_state != Some(TaskState::Scheduling)
        {
            // A redelivered cast for a placement that finished (or a
            // server that left BUILD): nothing to do. An unfinished
            // placement resumes below.
            return Ok(());
        }
        const EV: &str = "conductor_schedule_and_build_instances";
        actions::action_event_start(&mut conn, instance_id, rid, EV, None).await?;
        actions::action_event_start(
            &mut conn,
            instance_id,
            rid,
            "scheduler_select_destinations",
            None,
        )
        .await?;
        // The host cache and the placement borrow connections of their own.
        drop(conn);
        let req = self.request_for(&inst).await?;
        read.ok();
        let alternates = (self.cfg.max_attempts as usize).saturating_sub(1);
        let what = "filter and weigh the hosts (host cache)";
        let deciding = std::time::Instant::now();
        let candidates = trace::time(10, what, res, self.candidates(&req)).await?;
        let p = place::params(ctx, &inst, 0, candidates, alternates);
        let placed = place::run(&self.db, &self.bus, ctx, p, Some(self), Inject::default()).await?;
        let decided = if placed { "selected" } else { "no_valid_host" };
        stratus_telemetry::metrics::scheduler_decision(decided, deciding.elapsed());
        let failed = (!placed).then_some(place::NO_VALID_HOST);
        actions::action_event_finish(
            &mut *self.db.conn().await?,
            instance_id,
            rid,
            "scheduler_select_destinations",
            failed,
        )
        .await?;
        if let Some(msg) = failed {
            place::fail_build(
                &self.db,
                instance_id,
                msg,
                "There are not enough hosts available.",
            )
            .await?;
        }
        actions::action_event_finish(&mut *self.db.conn().await?, instance_id, rid, EV, failed)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl place::Candidates for Scheduler {
    async fn fresh(&self, inst: &Instance) -> Result<Vec<String>> {
        self.candidates(&self.request_for(inst).await?).await
    }
}

#[async_trait]
impl Handler for Scheduler {
    async fn handle(&self, env: Envelope) -> std::result::Result<serde_json::Value, RemoteError> {
        let r = match env.method.as_str() {
            rpc::SELECT_AND_BUILD => {
                match serde_json::from_value::<rpc::InstanceArgs>(env.args.clone()) {
                    Ok(a) => {
                        self.select_and_build(&env, &a.instance_id.to_string())
                            .await
                    }
                    Err(e) => Err(ComputeError::BadRequest(e.to_string())),
                }
            }
            other => Err(ComputeError::BadRequest(format!(
                "unknown scheduler method {other}"
            ))),
        };
        match r {
            Ok(()) => Ok(serde_json::Value::Null),
            Err(e) => {
                tracing::error!(method = %env.method, error = %e, "scheduler");
                Err(e.to_remote())
            }
        }
    }
}

pub fn handler(db: Db, bus: Bus, cfg: ComputeConfig) -> Arc<Scheduler> {
    Arc::new(Scheduler::new(db, bus, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(seen_secs_ago: i64, forced_down: bool) -> Service {
        let seen = stratus_common::time::now() - Duration::seconds(seen_secs_ago);
        Service {
            id: "s".into(),
            host: "h".into(),
            binary: "nova-compute".into(),
            topic: "compute".into(),
            disabled: false,
            disabled_reason: None,
            forced_down,
            last_seen_up: Some(stratus_common::time::to_db(seen)),
            updated_at: String::new(),
        }
    }

    #[test]
    fn a_silent_or_forced_down_service_is_down() {
        assert!(service_is_up(&svc(5, false), 60));
        assert!(!service_is_up(&svc(120, false), 60));
        assert!(!service_is_up(&svc(0, true), 60));
        let mut never = svc(0, false);
        never.last_seen_up = None;
        assert!(!service_is_up(&never, 60));
        // A down time too long to subtract from now: every heartbeat counts.
        assert!(service_is_up(&svc(5, false), u64::MAX));
    }
}
