//! The placement saga (seed steps 11–12): claim room on the first candidate
//! host that fits ↔ release it, save the host on the instance ↔ clear it,
//! cast `build_and_run_instance` to that host's agent (the agent's build
//! saga makes a repeated cast harmless). Placement `k` of an instance is
//! saga `place-<id>-<k>`: the scheduler runs placement 0; when the build
//! on a host fails, the conductor unwinds that placement and runs the next
//! over the alternates (Nova's reschedule), up to `max_attempts`.
//!
//! A redelivered `select_and_build` resumes placement 0 where it stopped,
//! so a crash between saving the host and the cast no longer strands the
//! server in BUILD with its claim held.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_common::ids::InstanceId;
use stratus_common::RequestContext;
use stratus_db::Db;

use super::{execute, loggable, output, unwind, Ended, Inject, Outputs, Step};
use crate::bus::Bus;
use crate::db::hosts::Claim;
use crate::db::instances::{Fault, Instance, InstanceUpdate};
use crate::db::sagas::{SagaRecord, SagaState};
use crate::db::{hosts, instances, sagas};
use crate::error::{ComputeError, Result};
use crate::model::state::{TaskState, VmState};
use crate::rpc;

pub const KIND: &str = "place";
pub const NO_VALID_HOST: &str = "No valid host was found. ";

/// Where fresh candidates come from when every claim of a decision lost
/// (the scheduler's snapshot was behind).
#[async_trait]
pub trait Candidates: Send + Sync {
    async fn fresh(&self, inst: &Instance) -> Result<Vec<String>>;
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Params {
    pub context: RequestContext,
    pub instance_id: InstanceId,
    /// Which placement of the instance this is (0 the first).
    pub attempt: u32,
    /// Hosts to try, best first.
    pub candidates: Vec<String>,
    /// How many of the remaining candidates go with the build as
    /// alternates.
    pub max_alternates: usize,
    /// The instance's tried hosts before this placement.
    pub tried_before: Vec<String>,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// The zone asked for (the landing host's zone is filled in otherwise).
    pub availability_zone: Option<String>,
}

/// The `claim` step's output.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claimed {
    pub host: String,
    pub alternates: Vec<String>,
}

pub struct Place<'a> {
    pub db: &'a Db,
    pub bus: &'a Bus,
    pub p: Params,
    /// The context the cast carries (the request's own, with its token).
    pub live: RequestContext,
    pub refresh: Option<&'a dyn Candidates>,
}

impl Place<'_> {
    fn id(&self) -> String {
        self.p.instance_id.to_string()
    }

    fn claim_of(&self, host: &str) -> Claim {
        Claim {
            host: host.to_owned(),
            vcpus: self.p.vcpus,
            memory_mb: self.p.memory_mb,
            disk_gb: self.p.disk_gb,
        }
    }

    /// Claims on the first of `hosts` that fits.
    async fn claim_first(&self, candidates: &[String]) -> Result<Option<Claimed>> {
        let mut conn = self.db.conn().await?;
        for (i, host) in candidates.iter().enumerate() {
            if hosts::allocation_claim(&mut conn, &self.id(), &self.claim_of(host)).await? {
                let alternates = candidates[i + 1..]
                    .iter()
                    .take(self.p.max_alternates)
                    .cloned()
                    .collect();
                return Ok(Some(Claimed {
                    host: host.clone(),
                    alternates,
                }));
            }
        }
        Ok(None)
    }
}

pub fn saga_id(instance: InstanceId, attempt: u32) -> String {
    format!("place-{instance}-{attempt}")
}

struct ClaimHost;
struct SetHost;
struct CastBuild;

#[async_trait]
impl<'a> Step<Place<'a>> for ClaimHost {
    fn name(&self) -> &'static str {
        "claim"
    }
    fn seed_step(&self) -> u16 {
        11
    }
    async fn run(&self, c: &Place<'a>, _done: &Outputs) -> Result<Value> {
        // A claim this placement already holds (a crash came before the
        // step was recorded) is kept.
        let held = hosts::allocation_host(&mut *c.db.conn().await?, &c.id()).await?;
        if let Some(host) = held {
            if c.p.candidates.contains(&host) {
                let alternates =
                    c.p.candidates
                        .iter()
                        .filter(|h| **h != host)
                        .take(c.p.max_alternates)
                        .cloned()
                        .collect();
                return output(&Claimed { host, alternates });
            }
        }
        if let Some(got) = c.claim_first(&c.p.candidates).await? {
            return output(&got);
        }
        if let (Some(refresh), false) = (c.refresh, c.p.candidates.is_empty()) {
            // Every claim lost: other schedulers took the room. Once more
            // over a fresh snapshot.
            let inst = instances::instance_get(&mut *c.db.conn().await?, &c.id()).await?;
            let again = refresh.fresh(&inst).await?;
            if let Some(got) = c.claim_first(&again).await? {
                return output(&got);
            }
        }
        Err(ComputeError::NoValidHost(NO_VALID_HOST.to_owned()))
    }
    async fn undo(&self, c: &Place<'a>, _done: &Outputs) -> Result<()> {
        hosts::allocation_release(&mut *c.db.conn().await?, &c.id()).await?;
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<Place<'a>> for SetHost {
    fn name(&self) -> &'static str {
        "set_host"
    }
    fn seed_step(&self) -> u16 {
        11
    }
    async fn run(&self, c: &Place<'a>, done: &Outputs) -> Result<Value> {
        let claimed: Claimed = done.require("claim")?;
        let host = claimed.host;
        let mut conn = c.db.conn().await?;
        let (node, zone) = match hosts::node_get(&mut conn, &host).await {
            Ok(n) => (n.node, n.availability_zone),
            Err(_) => (host.clone(), String::new()),
        };
        let mut tried = c.p.tried_before.clone();
        tried.push(host.clone());
        let u = InstanceUpdate {
            host: Some(Some(host)),
            node: Some(Some(node)),
            attempts: Some(i64::from(c.p.attempt) + 1),
            tried_hosts: Some(tried),
            task_state: Some(Some(TaskState::Scheduling)),
            // Nova fills in the zone a server landed in when none was asked.
            availability_zone: match &c.p.availability_zone {
                None if !zone.is_empty() => Some(Some(zone)),
                _ => None,
            },
            ..InstanceUpdate::default()
        };
        let expected = Some(vec![Some(TaskState::Scheduling), Some(TaskState::Spawning)]);
        // Deleted or taken by another task meanwhile: the saga unwinds and
        // gives the room back.
        instances::instance_update(&mut conn, &c.id(), &expected, &u).await?;
        Ok(Value::Null)
    }
    async fn undo(&self, c: &Place<'a>, _done: &Outputs) -> Result<()> {
        let u = InstanceUpdate {
            host: Some(None),
            node: Some(None),
            ..InstanceUpdate::default()
        };
        // Only while still being placed; a gone or failed server keeps its
        // row as it is.
        let expected = Some(vec![Some(TaskState::Scheduling)]);
        let r = instances::instance_update(&mut *c.db.conn().await?, &c.id(), &expected, &u).await;
        match r {
            Ok(_) | Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl<'a> Step<Place<'a>> for CastBuild {
    fn name(&self) -> &'static str {
        "cast_build"
    }
    fn seed_step(&self) -> u16 {
        12
    }
    fn hands_off(&self) -> bool {
        true
    }
    async fn run(&self, c: &Place<'a>, done: &Outputs) -> Result<Value> {
        let claimed: Claimed = done.require("claim")?;
        let args = rpc::BuildArgs {
            instance_id: c.p.instance_id,
            alternates: claimed.alternates,
            attempt: Some(c.p.attempt),
        };
        rpc::AgentApi::new(c.bus.clone())
            .build_and_run(&c.live, &claimed.host, &args)
            .await?;
        Ok(Value::Null)
    }
    async fn undo(&self, _c: &Place<'a>, _done: &Outputs) -> Result<()> {
        // The agent's build unwinds itself; a cast cannot be taken back.
        Ok(())
    }
}

pub fn steps<'a>() -> Vec<Box<dyn Step<Place<'a>>>> {
    vec![Box::new(ClaimHost), Box::new(SetHost), Box::new(CastBuild)]
}

/// The params of placement `attempt` of `inst` over `candidates`.
pub fn params(
    ctx: &RequestContext,
    inst: &Instance,
    attempt: u32,
    candidates: Vec<String>,
    max_alternates: usize,
) -> Params {
    Params {
        context: loggable(ctx),
        instance_id: inst.id,
        attempt,
        candidates,
        max_alternates,
        tried_before: inst.tried_hosts.clone(),
        vcpus: inst.flavor.vcpus,
        memory_mb: inst.flavor.ram,
        disk_gb: inst.flavor.disk + inst.flavor.ephemeral,
        availability_zone: inst.availability_zone.clone(),
    }
}

/// Runs (or resumes) a placement. `Ok(true)` when the build was cast
/// (now or by an earlier run), `Ok(false)` when no candidate had room
/// (nothing is left held) or the placement had failed before.
pub async fn run(
    db: &Db,
    bus: &Bus,
    ctx: &RequestContext,
    p: Params,
    refresh: Option<&dyn Candidates>,
    inject: Inject,
) -> Result<bool> {
    let id = saga_id(p.instance_id, p.attempt);
    // A placement that began before goes on with what it began with.
    let stored = sagas::saga_get(&mut *db.conn().await?, &id).await;
    let p = match stored {
        Ok(rec) => serde_json::from_value(rec.params)?,
        Err(ComputeError::NotFound(_)) => p,
        Err(e) => return Err(e),
    };
    let rec = SagaRecord {
        id,
        kind: KIND.to_owned(),
        instance_id: p.instance_id.to_string(),
        state: SagaState::Running,
        params: serde_json::to_value(&p)?,
    };
    let c = Place {
        db,
        bus,
        p,
        live: ctx.clone(),
        refresh,
    };
    match execute(db, &rec, &steps(), &c, inject).await {
        Ok(Ended::Done) => Ok(true),
        Ok(Ended::AlreadyFailed | Ended::Crashed) => Ok(false),
        Err(ComputeError::NoValidHost(_)) => Ok(false),
        // Deleted or taken meanwhile (already unwound): nothing to place.
        Err(ComputeError::NotFound(_) | ComputeError::Conflict(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Unwinds placement `attempt` of an instance (its claim released, its
/// host cleared), for a reschedule or a failed build. A placement that
/// never ran, or has unwound already, is fine.
pub async fn unwind_attempt(db: &Db, bus: &Bus, instance: InstanceId, attempt: u32) -> Result<()> {
    let id = saga_id(instance, attempt);
    let stored = sagas::saga_get(&mut *db.conn().await?, &id).await;
    let rec = match stored {
        Ok(r) => r,
        Err(ComputeError::NotFound(_)) => {
            // Placed before placements were sagas: give the room back.
            hosts::allocation_release(&mut *db.conn().await?, &instance.to_string()).await?;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if rec.state == SagaState::Failed {
        return Ok(());
    }
    let p: Params = serde_json::from_value(rec.params.clone())?;
    let c = Place {
        db,
        bus,
        live: p.context.clone(),
        p,
        refresh: None,
    };
    unwind(db, &id, &steps(), &c).await
}

/// Puts the instance in ERROR with a fault and gives back every claim.
/// Does nothing to a deleted instance, nor to one that left BUILD.
pub async fn fail_build(db: &Db, id: &str, message: &str, details: &str) -> Result<()> {
    let mut conn = db.conn().await?;
    hosts::allocation_release(&mut conn, id).await?;
    let fault = Fault {
        code: 500,
        message: message.to_owned(),
        details: details.to_owned(),
        created: stratus_common::time::iso_seconds(stratus_common::time::now()),
    };
    let u = InstanceUpdate {
        vm_state: Some(VmState::Error),
        task_state: Some(None),
        fault: Some(Some(fault)),
        ..InstanceUpdate::default()
    };
    let building = Some(vec![Some(TaskState::Scheduling), Some(TaskState::Spawning)]);
    match instances::instance_update(&mut conn, id, &building, &u).await {
        Ok(_) | Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
