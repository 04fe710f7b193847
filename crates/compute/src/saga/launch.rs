//! The launch saga (API side, steps 5–6): write the instance, record the
//! `create` action, count the project's usage again with the instance in
//! (Nova's `[quota] recheck_quota`), cast `scheduler.select_and_build`. A
//! failure at any step removes the instance rows again, so nothing is left
//! behind.
//!
//! The API's first quota check and the instance rows are not one
//! transaction, so concurrent creates can all pass the check; the recheck
//! after the write catches that (whoever counts last sees every row
//! written before, so the rows that survive never exceed the limit). The
//! instances of one request go together ([`run_all`]): all are written,
//! then all rechecked, and only then is any of them cast, so a request
//! over the limit leaves nothing: no instance, no action, no claim, no
//! build.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stratus_common::RequestContext;
use stratus_db::Db;

use super::{execute, execute_until, loggable, unwind, Inject, Outputs, Step};
use crate::bus::Bus;
use crate::config::QuotaDefaults;
use crate::db::instances::Instance;
use crate::db::sagas::{SagaRecord, SagaState};
use crate::db::{actions, instances, quotas};
use crate::error::{ComputeError, Result};
use crate::rpc;
use serde_json::Value;

pub const KIND: &str = "launch";

#[derive(Clone, Serialize, Deserialize)]
pub struct Params {
    pub context: RequestContext,
    pub instance: Instance,
    /// How many instances the request launches (for the over-quota
    /// message); logs written before this field have 1.
    #[serde(default = "one")]
    pub count: i64,
}

fn one() -> i64 {
    1
}

pub struct Launch<'a> {
    pub db: &'a Db,
    pub bus: &'a Bus,
    /// The `[compute] quota` defaults (projects without their own limits).
    pub quota: &'a QuotaDefaults,
    pub p: Params,
    /// The request's own context, with its token, for the cast (the log
    /// keeps `p.context`, which has none).
    pub live: RequestContext,
}

struct WriteInstance;
struct RecordAction;
struct RecheckQuota;
struct CastScheduler;

/// Index of [`RecheckQuota`] in [`steps`].
const RECHECK: usize = 2;
/// Index of [`CastScheduler`] in [`steps`]: the first step others see.
const CAST: usize = 3;

#[async_trait]
impl<'a> Step<Launch<'a>> for WriteInstance {
    fn name(&self) -> &'static str {
        "write_instance"
    }
    async fn run(&self, c: &Launch<'a>, _done: &Outputs) -> Result<Value> {
        let mut conn = c.db.conn().await?;
        match instances::instance_create(&mut conn, &c.p.instance).await {
            // Already written by an earlier run of this step.
            Err(ComputeError::Conflict(_))
                if instances::instance_get_any(&mut conn, &c.p.instance.id.to_string())
                    .await
                    .is_ok() =>
            {
                Ok(Value::Null)
            }
            other => other.map(|()| Value::Null),
        }
    }
    async fn undo(&self, c: &Launch<'a>, _done: &Outputs) -> Result<()> {
        instances::instance_purge(&mut *c.db.conn().await?, &c.p.instance.id.to_string()).await
    }
}

#[async_trait]
impl<'a> Step<Launch<'a>> for RecordAction {
    fn name(&self) -> &'static str {
        "record_action"
    }
    async fn run(&self, c: &Launch<'a>, _done: &Outputs) -> Result<Value> {
        let ctx = &c.p.context;
        actions::action_start(
            &mut *c.db.conn().await?,
            &c.p.instance.id.to_string(),
            "create",
            &ctx.request_id.0,
            ctx.user_id.as_ref().map(|u| u.as_str()),
            ctx.project_id.as_ref().map(|p| p.as_str()),
        )
        .await?;
        Ok(Value::Null)
    }
    async fn undo(&self, c: &Launch<'a>, _done: &Outputs) -> Result<()> {
        actions::action_delete_all(&mut *c.db.conn().await?, &c.p.instance.id.to_string()).await
    }
}

/// Nova's recheck message (`check_num_instances_quota` with a delta of 0):
/// `used` is the limit itself, `requested` the whole request.
pub fn recheck_message(overs: &[(&str, i64, i64)]) -> String {
    let join = |f: &dyn Fn(&(&str, i64, i64)) -> String| -> String {
        overs.iter().map(f).collect::<Vec<_>>().join(", ")
    };
    let names = join(&|o| o.0.to_owned());
    let limits = join(&|o| o.2.to_string());
    format!(
        "Quota exceeded for {names}: Requested {}, but already used {limits} of {limits} {names}",
        join(&|o| o.1.to_string())
    )
}

#[async_trait]
impl<'a> Step<Launch<'a>> for RecheckQuota {
    fn name(&self) -> &'static str {
        "recheck_quota"
    }
    async fn run(&self, c: &Launch<'a>, _done: &Outputs) -> Result<Value> {
        let inst = &c.p.instance;
        let project = inst.project_id.as_str();
        let mut conn = c.db.conn().await?;
        let limits = quotas::quota_get(&mut conn, project, c.quota).await?;
        let (n, cores, ram) = instances::instance_usage(&mut conn, project).await?;
        drop(conn);
        let count = c.p.count.max(1);
        let mut overs = Vec::new();
        for (res, used, each) in [
            ("instances", n, 1),
            ("cores", cores, inst.flavor.vcpus),
            ("ram", ram, inst.flavor.ram),
        ] {
            let limit = limits.get(res).copied().unwrap_or(-1);
            if limit >= 0 && used > limit {
                overs.push((res, each * count, limit));
            }
        }
        if overs.is_empty() {
            Ok(Value::Null)
        } else {
            tracing::info!(project, instance = %inst.id, "quota exceeded on recheck; removing the request's instances");
            Err(ComputeError::OverQuota(recheck_message(&overs)))
        }
    }
    async fn undo(&self, _c: &Launch<'a>, _done: &Outputs) -> Result<()> {
        // A count: nothing to undo.
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<Launch<'a>> for CastScheduler {
    fn name(&self) -> &'static str {
        "cast_scheduler"
    }
    async fn run(&self, c: &Launch<'a>, _done: &Outputs) -> Result<Value> {
        let args = rpc::InstanceArgs {
            instance_id: c.p.instance.id,
        };
        c.bus
            .cast(rpc::SCHEDULER, rpc::SELECT_AND_BUILD, &c.live, &args)
            .await?;
        Ok(Value::Null)
    }
    async fn undo(&self, _c: &Launch<'a>, _done: &Outputs) -> Result<()> {
        // The last step: nothing after it can fail.
        Ok(())
    }
}

pub fn steps<'a>() -> Vec<Box<dyn Step<Launch<'a>>>> {
    vec![
        Box::new(WriteInstance),
        Box::new(RecordAction),
        Box::new(RecheckQuota),
        Box::new(CastScheduler),
    ]
}

/// Launches one instance; on failure nothing of it remains.
pub async fn run(
    db: &Db,
    bus: &Bus,
    quota: &QuotaDefaults,
    ctx: &RequestContext,
    inst: &Instance,
) -> Result<()> {
    run_with(db, bus, quota, ctx, inst, Inject::default()).await
}

pub async fn run_with(
    db: &Db,
    bus: &Bus,
    quota: &QuotaDefaults,
    ctx: &RequestContext,
    inst: &Instance,
    inject: Inject,
) -> Result<()> {
    run_all_with(db, bus, quota, ctx, std::slice::from_ref(inst), inject).await
}

/// Launches the instances of one request, all or nothing up to the
/// scheduler: every instance is written, then the quota is rechecked for
/// each, and only when all passed is any cast. A failure before the casts
/// removes every instance of the request. (A cast that fails, the bus
/// being gone, leaves those cast before it: they are launched already.)
pub async fn run_all(
    db: &Db,
    bus: &Bus,
    quota: &QuotaDefaults,
    ctx: &RequestContext,
    insts: &[Instance],
) -> Result<()> {
    run_all_with(db, bus, quota, ctx, insts, Inject::default()).await
}

pub async fn run_all_with(
    db: &Db,
    bus: &Bus,
    quota: &QuotaDefaults,
    ctx: &RequestContext,
    insts: &[Instance],
    inject: Inject,
) -> Result<()> {
    let count = i64::try_from(insts.len()).unwrap_or(i64::MAX);
    let sagas: Vec<(SagaRecord, Launch<'_>)> = insts
        .iter()
        .map(|inst| {
            let c = Launch {
                db,
                bus,
                quota,
                p: Params {
                    context: loggable(ctx),
                    instance: inst.clone(),
                    count,
                },
                live: ctx.clone(),
            };
            let rec = SagaRecord {
                id: format!("launch-{}", inst.id),
                kind: KIND.to_owned(),
                instance_id: inst.id.to_string(),
                state: SagaState::Running,
                params: serde_json::to_value(&c.p)?,
            };
            Ok((rec, c))
        })
        .collect::<Result<_>>()?;
    let steps = steps();
    // Write them all, recheck them all, then cast them all. A failing
    // saga has unwound itself; before the casts, the others of the
    // request go too.
    for end in [RECHECK, CAST, steps.len()] {
        for (i, (rec, c)) in sagas.iter().enumerate() {
            if let Err(e) = execute_until(db, rec, &steps, c, inject, end).await {
                // The others not cast yet: in the first pass the earlier
                // ones (the later ones have no saga yet), in the second
                // all of them, in the last the later ones.
                let pending = |j: usize| match end {
                    RECHECK => j < i,
                    CAST => j != i,
                    _ => j > i,
                };
                let others = sagas.iter().enumerate().filter(|(j, _)| pending(*j));
                for (_, (rec, c)) in others {
                    if let Err(u) = unwind(db, &rec.id, &steps[..CAST], c).await {
                        tracing::warn!(saga = %rec.id, error = %u, "cannot unwind a launch of a failed request");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

pub async fn resume(db: &Db, bus: &Bus, quota: &QuotaDefaults, rec: &SagaRecord) -> Result<()> {
    let p: Params = serde_json::from_value(rec.params.clone())?;
    let c = Launch {
        db,
        bus,
        quota,
        live: p.context.clone(),
        p,
    };
    if rec.state == SagaState::Unwinding {
        return unwind(db, &rec.id, &steps(), &c).await;
    }
    execute(db, rec, &steps(), &c, Inject::default()).await?;
    Ok(())
}
