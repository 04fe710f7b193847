//! The launch saga (API side, steps 5–6): write the instance, record the
//! `create` action, count the project's usage again with the instance in
//! (Nova's `[quota] recheck_quota`), make the boot volume from the image
//! when the server boots from a new volume, cast
//! `scheduler.select_and_build`. A failure at any step removes the
//! instance rows and the volume again, so nothing is left behind.
//!
//! The boot volume is made here, with the user's token, so that it is the
//! user's volume in the user's project (Nova's compute makes it with the
//! user's context); agents only ever hold the service user's token, and no
//! token is ever written down. Its id goes into the instance's mapping,
//! where the build finds it to attach; from then on it is the server's,
//! deleted with it when `delete_on_termination` says so.
//!
//! The API's first quota check and the instance rows are not one
//! transaction, so concurrent creates can all pass the check; the recheck
//! after the write catches that (whoever counts last sees every row
//! written before, so the rows that survive never exceed the limit). The
//! instances of one request go together ([`run_all`]): all are written,
//! then all rechecked, then their boot volumes made, and only then is any
//! of them cast, so a request over the limit leaves nothing: no instance,
//! no action, no volume, no claim, no build.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stratus_common::ids::{InstanceId, VolumeId};
use stratus_common::RequestContext;
use stratus_db::Db;

use super::{execute, execute_until, loggable, output, unwind, Inject, Outputs, Step};
use crate::bus::Bus;
use crate::clients::volume::{volume_settled, NewVolumeSource, VOLUME_WAIT};
use crate::clients::Volumes;
use crate::config::QuotaDefaults;
use crate::db::instances::Instance;
use crate::db::sagas::{SagaRecord, SagaState};
use crate::db::{actions, instances, quotas};
use crate::error::{ComputeError, Result};
use crate::model::bdm::BdmSource;
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
    /// The volume service, for a boot volume made from an image.
    pub volumes: &'a Volumes,
    pub p: Params,
    /// The request's own context, with its token, for the boot volume and
    /// the cast (the log keeps `p.context`, which has none).
    pub live: RequestContext,
}

struct WriteInstance;
struct RecordAction;
struct RecheckQuota;
struct CreateBootVolume;
struct CastScheduler;

/// Index of [`RecheckQuota`] in [`steps`].
const RECHECK: usize = 2;
/// Index of [`CreateBootVolume`] in [`steps`].
const BOOT_VOLUME: usize = 3;
/// Index of [`CastScheduler`] in [`steps`]: the first step others see.
const CAST: usize = 4;
/// The name of [`CreateBootVolume`], whose output is the volume's id.
const BOOT_VOLUME_STEP: &str = "create_boot_volume";

#[async_trait]
impl<'a> Step<Launch<'a>> for WriteInstance {
    fn name(&self) -> &'static str {
        "write_instance"
    }
    fn seed_step(&self) -> u16 {
        5
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
    fn seed_step(&self) -> u16 {
        5
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
    fn seed_step(&self) -> u16 {
        5
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

/// The name of the volume the launch makes from the image for `instance`
/// (how a repeated or resumed step finds it again).
pub fn boot_volume_name(instance: &InstanceId) -> String {
    format!("boot-volume-{instance}")
}

/// The boot volume this launch made, if it made one: the step's output,
/// else (a crash came before the step was recorded) the volume of the
/// instance's name in its project. A resumed launch has no user token and
/// looks with the service user's, which sees every project.
async fn made_boot_volume(c: &Launch<'_>, done: &Outputs) -> Result<Option<VolumeId>> {
    if let Some(v) = done.get::<VolumeId>(BOOT_VOLUME_STEP)? {
        return Ok(Some(v));
    }
    let inst = &c.p.instance;
    let (token, project) = match &c.live.auth_token {
        Some(t) => (t.clone(), None),
        None => (
            c.volumes.tokens.token().await?,
            Some(inst.project_id.as_str()),
        ),
    };
    let named = c
        .volumes
        .api
        .volumes_named(&token, &boot_volume_name(&inst.id), project)
        .await?;
    Ok(named.into_iter().next())
}

#[async_trait]
impl<'a> Step<Launch<'a>> for CreateBootVolume {
    fn name(&self) -> &'static str {
        BOOT_VOLUME_STEP
    }
    fn seed_step(&self) -> u16 {
        39
    }
    fn traces_itself(&self) -> bool {
        true
    }
    async fn run(&self, c: &Launch<'a>, done: &Outputs) -> Result<Value> {
        let inst = &c.p.instance;
        let id = inst.id.to_string();
        let what = "boot volume from the image";
        let Some(i) = inst.bdm.iter().position(|m| m.boots_from_new_volume()) else {
            crate::trace::skipped(39, what, Some(&id), "no volume");
            return Ok(Value::Null);
        };
        let t = crate::trace::start(39, what, Some(&id));
        let r = self.make(c, done, i).await;
        t.finish(&r);
        r
    }
    async fn undo(&self, c: &Launch<'a>, done: &Outputs) -> Result<()> {
        self.unmake(c, done).await
    }
}

impl CreateBootVolume {
    async fn make(&self, c: &Launch<'_>, done: &Outputs, i: usize) -> Result<Value> {
        let inst = &c.p.instance;
        let volume = match made_boot_volume(c, done).await? {
            Some(v) => v,
            None => {
                // Only the user's token makes the volume the user's; a
                // launch resumed after a crash has none, and unwinds (its
                // request never got an answer).
                let Some(token) = c.live.auth_token.as_deref() else {
                    return Err(ComputeError::Forbidden(
                        "The boot volume is made with the user's token, which a resumed launch does not have."
                            .into(),
                    ));
                };
                let m = &inst.bdm[i];
                let (source, size) = if m.source_type == BdmSource::Snapshot {
                    let snap = m.uuid.clone().unwrap_or_default();
                    (NewVolumeSource::Snapshot(snap), m.volume_size)
                } else {
                    let image = m.uuid.clone().unwrap_or_else(|| inst.image_ref.clone());
                    (
                        NewVolumeSource::Image(image),
                        Some(m.volume_size.unwrap_or(0)),
                    )
                };
                let made = c
                    .volumes
                    .api
                    .volume_create_from(token, &source, size, &boot_volume_name(&inst.id))
                    .await;
                match (made, &source) {
                    (Err(ComputeError::NotFound(_)), NewVolumeSource::Snapshot(snap)) => {
                        return Err(ComputeError::BadRequest(format!(
                            "Block Device Mapping is Invalid: failed to get snapshot {snap}."
                        )))
                    }
                    (made, _) => made?,
                }
            }
        };
        let mut bdm = inst.bdm.clone();
        bdm[i].volume_id = Some(volume);
        instances::instance_bdm_set(&mut *c.db.conn().await?, &inst.id.to_string(), &bdm).await?;
        output(&volume)
    }

    async fn unmake(&self, c: &Launch<'_>, done: &Outputs) -> Result<()> {
        if !c.p.instance.bdm.iter().any(|m| m.boots_from_new_volume()) {
            return Ok(());
        }
        let Some(volume) = made_boot_volume(c, done).await? else {
            return Ok(());
        };
        let token = c.volumes.token(&c.live).await?;
        // A volume still being made from the image cannot be deleted yet.
        match volume_settled(c.volumes.api.as_ref(), &token, &volume, VOLUME_WAIT).await {
            Ok(_) => c.volumes.api.volume_delete(&token, &volume).await,
            Err(ComputeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl<'a> Step<Launch<'a>> for CastScheduler {
    fn name(&self) -> &'static str {
        "cast_scheduler"
    }
    fn seed_step(&self) -> u16 {
        6
    }
    fn hands_off(&self) -> bool {
        true
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
        Box::new(CreateBootVolume),
        Box::new(CastScheduler),
    ]
}

/// What every launch of this API uses.
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub db: &'a Db,
    pub bus: &'a Bus,
    pub quota: &'a QuotaDefaults,
    pub volumes: &'a Volumes,
}

/// Launches one instance; on failure nothing of it remains.
pub async fn run(d: Deps<'_>, ctx: &RequestContext, inst: &Instance) -> Result<()> {
    run_with(d, ctx, inst, Inject::default()).await
}

pub async fn run_with(
    d: Deps<'_>,
    ctx: &RequestContext,
    inst: &Instance,
    inject: Inject,
) -> Result<()> {
    run_all_with(d, ctx, std::slice::from_ref(inst), inject).await
}

/// Launches the instances of one request, all or nothing up to the
/// scheduler: every instance is written, then the quota is rechecked for
/// each, then their boot volumes are made, and only when all that passed
/// is any cast. A failure before the casts removes every instance of the
/// request and its volume. (A cast that fails, the bus being gone, leaves
/// those cast before it: they are launched already.)
pub async fn run_all(d: Deps<'_>, ctx: &RequestContext, insts: &[Instance]) -> Result<()> {
    run_all_with(d, ctx, insts, Inject::default()).await
}

pub async fn run_all_with(
    d: Deps<'_>,
    ctx: &RequestContext,
    insts: &[Instance],
    inject: Inject,
) -> Result<()> {
    let Deps {
        db,
        bus,
        quota,
        volumes,
    } = d;
    let count = i64::try_from(insts.len()).unwrap_or(i64::MAX);
    let sagas: Vec<(SagaRecord, Launch<'_>)> = insts
        .iter()
        .map(|inst| {
            let c = Launch {
                db,
                bus,
                quota,
                volumes,
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
    // Write them all, recheck them all, make their volumes, then cast
    // them all. A failing saga has unwound itself; before the casts, the
    // others of the request go too. One instance alone runs in one pass
    // (each pass opens the saga again).
    let all = steps.len();
    let passes = if sagas.len() == 1 {
        vec![all]
    } else {
        vec![RECHECK, BOOT_VOLUME, CAST, all]
    };
    for end in passes {
        for (i, (rec, c)) in sagas.iter().enumerate() {
            if let Err(e) = execute_until(db, rec, &steps, c, inject, end).await {
                // The others not cast yet: in the first pass the earlier
                // ones (the later ones have no saga yet), in the two next
                // all of them, in the last the later ones.
                let pending = |j: usize| match end {
                    RECHECK => j < i,
                    BOOT_VOLUME | CAST => j != i,
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

pub async fn resume(d: Deps<'_>, rec: &SagaRecord) -> Result<()> {
    let Deps {
        db,
        bus,
        quota,
        volumes,
    } = d;
    let p: Params = serde_json::from_value(rec.params.clone())?;
    let c = Launch {
        db,
        bus,
        quota,
        volumes,
        live: p.context.clone(),
        p,
    };
    if rec.state == SagaState::Unwinding {
        return unwind(db, &rec.id, &steps(), &c).await;
    }
    execute(db, rec, &steps(), &c, Inject::default()).await?;
    Ok(())
}
