//! Sagas: a multi-step operation as a list of steps, each an action and its
//! undo. The log records every step's outcome and its typed output (later
//! steps read the outputs of earlier ones), so that a restarted service
//! resumes at the first unfinished step or unwinds. Every action and undo
//! is idempotent: running one twice is harmless, and an undo tolerates
//! work that was only partly done or never done.
//!
//! ```text
//!  running --all steps done--> done
//!     |
//!     +--step k fails--> unwinding --undo k..0--> failed
//! ```
//!
//! The launch is four sagas over one log, each run where its work is:
//! `launch` in the API (seed steps 5–6, and the boot volume made from an
//! image, with the user's token), `place` in the scheduler or the
//! conductor (8–12; a reschedule unwinds one placement and runs the next),
//! `build` in the host's agent (13–47), whose log goes through the
//! conductor because agents never open the database ([`SagaLog`] has
//! both). `delete` is a saga too.

pub mod attach;
pub mod build_log;
pub mod delete;
pub mod launch;
pub mod place;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_db::Db;

use crate::db::sagas;
use crate::db::sagas::{SagaRecord, SagaState, StepRecord, StepStatus};
use crate::error::{ComputeError, Result};
use crate::trace;

/// The outputs of the steps done so far, by step name.
#[derive(Clone, Debug, Default)]
pub struct Outputs(BTreeMap<String, Value>);

impl Outputs {
    /// The output of step `name`, or `None` when it has not run (or
    /// output nothing).
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => Ok(Some(serde_json::from_value(v.clone())?)),
        }
    }

    /// Records `v` as the output of step `name` (for work that runs steps
    /// outside a saga's executor: a rebuild runs the build's own).
    pub fn insert(&mut self, name: &str, v: Value) {
        self.0.insert(name.to_owned(), v);
    }

    /// The output of step `name`, which must have run.
    pub fn require<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        self.get(name)?.ok_or_else(|| {
            ComputeError::Internal(format!("saga step {name} has no recorded output"))
        })
    }
}

/// The output a step records (`Value::Null` for none).
pub fn output<T: Serialize>(v: &T) -> Result<Value> {
    Ok(serde_json::to_value(v)?)
}

#[async_trait]
pub trait Step<C: Sync>: Send + Sync {
    fn name(&self) -> &'static str;
    /// The seed step this step is (DESIGN.md "The request flow, mapped"),
    /// under which the executor records each run and undo of it.
    fn seed_step(&self) -> u16 {
        0
    }
    /// Whether the step records its own finer events (the image record and
    /// its bits apart): the executor then records only its failure, so
    /// that a trace never counts the same time twice.
    fn traces_itself(&self) -> bool {
        false
    }
    /// Whether the step hands the request on (a cast to the next service,
    /// or the server shown ACTIVE): the log writes after it run beside the
    /// next service's work, off the request's path, and are not timed (a
    /// trace's steps would add up to more than the client waited).
    fn hands_off(&self) -> bool {
        false
    }
    /// Does the step's work and returns its output, which later steps (and
    /// this step's undo) read from the log.
    async fn run(&self, c: &C, done: &Outputs) -> Result<Value>;
    async fn undo(&self, c: &C, done: &Outputs) -> Result<()>;
}

/// Where a saga's log is kept: the compute database itself, or the
/// conductor in front of it (for agents).
#[async_trait]
pub trait SagaLog: Send + Sync {
    /// Creates the saga unless it exists; returns it as stored (its state
    /// and params those of the first creation) with the steps recorded.
    async fn open(&self, rec: &SagaRecord) -> Result<(SagaRecord, Vec<StepRecord>)>;
    async fn record(&self, saga: &str, step: &StepRecord) -> Result<()>;
    async fn set_state(&self, saga: &str, state: SagaState) -> Result<()>;
    /// Waits until every record written so far is stored (a log may send
    /// a record on and confirm it later; its other writes confirm first).
    async fn flush(&self) -> Result<()> {
        Ok(())
    }
    /// The seed step the log's own reads and writes are (through the
    /// conductor: its calls); `None`: part of the step they record.
    fn seed_step(&self) -> Option<u16> {
        None
    }
}

#[async_trait]
impl SagaLog for Db {
    async fn open(&self, rec: &SagaRecord) -> Result<(SagaRecord, Vec<StepRecord>)> {
        sagas::saga_open(&mut *self.conn().await?, rec).await
    }
    async fn record(&self, saga: &str, step: &StepRecord) -> Result<()> {
        sagas::saga_step_record(&mut *self.conn().await?, saga, step).await
    }
    async fn set_state(&self, saga: &str, state: SagaState) -> Result<()> {
        sagas::saga_set_state(&mut *self.conn().await?, saga, state).await
    }
}

/// Where to make a saga fail, for the standard failure tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inject {
    /// Fail instead of running step `n` (0-based).
    pub fail_before: Option<usize>,
    /// Stop (as a crash would: no undo, the saga stays `running`) instead
    /// of running step `n`.
    pub crash_before: Option<usize>,
    /// Run every step twice (idempotence).
    pub twice: bool,
    /// Lose the reply of step `n` once after it did its work (its caller
    /// sees the service as unavailable, as a bus timeout looks).
    pub lose_reply: Option<usize>,
}

/// How often a step whose service was unavailable (a bus timeout, a
/// refused connection) is tried again before the saga unwinds: steps are
/// idempotent, and a reply lost after the work committed must not undo it.
const RETRIES: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// How a run ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every step (up to the end asked for) is done.
    Done,
    /// The saga had failed before this run: nothing was run.
    AlreadyFailed,
    /// An injected crash stopped it (tests only).
    Crashed,
}

/// Runs (or resumes) the saga `rec`.
pub async fn execute<C: Sync>(
    log: &dyn SagaLog,
    rec: &SagaRecord,
    steps: &[Box<dyn Step<C>>],
    c: &C,
    inject: Inject,
) -> Result<Ended> {
    execute_until(log, rec, steps, c, inject, steps.len()).await
}

fn outputs_of(recorded: &[StepRecord]) -> Outputs {
    Outputs(
        recorded
            .iter()
            .filter(|s| s.status == StepStatus::Done)
            .map(|s| (s.name.clone(), s.output.clone().unwrap_or(Value::Null)))
            .collect(),
    )
}

/// Runs (or resumes) the saga `rec` up to, not including, step `end`; the
/// saga stays `running` until a run reaches its last step, so that a
/// later call (or recovery after a crash) goes on from there. For work
/// that must pass a point together, as the instances of one request do.
///
/// A step that fails is undone too (it may have done part of its work),
/// then every step before it. A resumed saga first undoes the step it
/// stopped at, which a crash may have left half done.
pub async fn execute_until<C: Sync>(
    log: &dyn SagaLog,
    rec: &SagaRecord,
    steps: &[Box<dyn Step<C>>],
    c: &C,
    inject: Inject,
    end: usize,
) -> Result<Ended> {
    let res = Some(rec.instance_id.as_str());
    let opened_at = chrono::Utc::now();
    let (stored, recorded) = log.open(rec).await?;
    let first_seed = steps
        .iter()
        .enumerate()
        .find(|(i, _)| {
            !recorded
                .iter()
                .any(|s| s.step == *i as i64 && s.status == StepStatus::Done)
        })
        .map_or(0, |(_, s)| s.seed_step());
    let seed = log.seed_step().unwrap_or(first_seed);
    trace::start(seed, format!("saga {} open", rec.kind), res)
        .started(opened_at)
        .ok();
    match stored.state {
        SagaState::Done => return Ok(Ended::Done),
        SagaState::Failed => return Ok(Ended::AlreadyFailed),
        SagaState::Unwinding => {
            unwind(log, &rec.id, steps, c).await?;
            return Ok(Ended::AlreadyFailed);
        }
        SagaState::Running => {}
    }
    let mut done = outputs_of(&recorded);
    let resumed = !recorded.is_empty();
    let mut first = true;
    let mut handed_off = false;
    for (i, step) in steps.iter().enumerate().take(end) {
        let n = i as i64;
        if recorded
            .iter()
            .any(|s| s.step == n && s.status == StepStatus::Done)
        {
            continue;
        }
        if inject.crash_before == Some(i) {
            // The crash comes after the steps before it were recorded.
            log.flush().await?;
            return Ok(Ended::Crashed);
        }
        if first && resumed {
            // The step a crash interrupted may be half done.
            step.undo(c, &done).await?;
        }
        first = false;
        let timer = trace::start(
            step.seed_step(),
            format!("saga {} {}", rec.kind, step.name()),
            res,
        );
        let mut r = run_step(step.as_ref(), i, c, &done, inject).await;
        for wait in RETRIES {
            match &r {
                Err(ComputeError::Unavailable(e)) => {
                    tracing::info!(saga = %rec.id, step = step.name(), error = %e, "saga step's service unavailable; trying it again");
                    tokio::time::sleep(wait).await;
                    r = run_step(step.as_ref(), i, c, &done, Inject::default()).await;
                }
                _ => break,
            }
        }
        match &r {
            Ok(_) if step.traces_itself() => {}
            r => timer.finish(r),
        }
        stratus_telemetry::metrics::saga_step(&rec.kind, step.name(), false, r.is_ok());
        match r {
            Ok(out) => {
                let s = StepRecord {
                    step: n,
                    name: step.name().to_owned(),
                    status: StepStatus::Done,
                    output: Some(out.clone()),
                };
                handed_off |= step.hands_off();
                let recorded = log.record(&rec.id, &s);
                if handed_off {
                    recorded.await?;
                } else {
                    let what = format!("saga {} record {}", rec.kind, step.name());
                    let seed = log.seed_step().unwrap_or(step.seed_step());
                    trace::time(seed, what, res, recorded).await?;
                }
                done.0.insert(step.name().to_owned(), out);
            }
            Err(e) => {
                tracing::warn!(saga = %rec.id, kind = %rec.kind, step = step.name(), error = %e, "saga step failed; unwinding");
                unwind(log, &rec.id, &steps[..=i], c).await?;
                return Err(e);
            }
        }
    }
    if end >= steps.len() {
        let last = steps.last();
        let state = log.set_state(&rec.id, SagaState::Done);
        if handed_off || last.is_some_and(|s| s.hands_off()) {
            state.await?;
        } else {
            let what = format!("saga {} done", rec.kind);
            let seed = log.seed_step().unwrap_or(last.map_or(0, |s| s.seed_step()));
            trace::time(seed, what, res, state).await?;
        }
    } else {
        log.flush().await?;
    }
    Ok(Ended::Done)
}

/// One run of a step, with what `inject` asks for.
async fn run_step<C: Sync>(
    step: &dyn Step<C>,
    i: usize,
    c: &C,
    done: &Outputs,
    inject: Inject,
) -> Result<Value> {
    if inject.fail_before == Some(i) {
        return Err(ComputeError::Internal(format!(
            "injected failure before step {}",
            step.name()
        )));
    }
    let out = step.run(c, done).await?;
    if inject.twice {
        return step.run(c, done).await;
    }
    if inject.lose_reply == Some(i) {
        return Err(ComputeError::Unavailable(format!(
            "injected lost reply of step {}",
            step.name()
        )));
    }
    Ok(out)
}

/// Undoes the given steps in reverse order, skipping those already undone,
/// and marks the saga failed. An undo that fails leaves the saga
/// `unwinding` (the first error is returned), so that a later run finishes
/// it; the steps before it are still undone now, so that one unreachable
/// dependency (libvirtd down: the guest cannot be destroyed) does not keep
/// the ports, disks and claims of the others.
pub async fn unwind<C: Sync>(
    log: &dyn SagaLog,
    id: &str,
    steps: &[Box<dyn Step<C>>],
    c: &C,
) -> Result<()> {
    let probe = SagaRecord {
        id: id.to_owned(),
        kind: String::new(),
        instance_id: String::new(),
        state: SagaState::Unwinding,
        params: Value::Null,
    };
    let (stored, recorded) = log.open(&probe).await?;
    let res = Some(stored.instance_id.as_str()).filter(|s| !s.is_empty());
    log.set_state(id, SagaState::Unwinding).await?;
    let done = outputs_of(&recorded);
    let mut first_error = None;
    for (i, step) in steps.iter().enumerate().rev() {
        let n = i as i64;
        if recorded
            .iter()
            .any(|s| s.step == n && s.status == StepStatus::Undone)
        {
            continue;
        }
        let what = format!("saga undo {}", step.name());
        let undone = trace::time(step.seed_step(), what, res, step.undo(c, &done)).await;
        stratus_telemetry::metrics::saga_step(&stored.kind, step.name(), true, undone.is_ok());
        if let Err(e) = undone {
            tracing::warn!(saga = id, step = step.name(), error = %e, "undo failed; the saga stays unwinding");
            first_error.get_or_insert(e);
            continue;
        }
        let s = StepRecord {
            step: n,
            name: step.name().to_owned(),
            status: StepStatus::Undone,
            output: None,
        };
        log.record(id, &s).await?;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    log.set_state(id, SagaState::Failed).await?;
    Ok(())
}

/// Finishes what a crash of the API interrupted: running `launch` and
/// `delete` sagas resume, unwinding ones finish unwinding. (Placements
/// resume when the scheduler's message comes back, builds when the agent
/// starts or its message comes back.)
pub async fn recover(
    db: &Db,
    bus: &crate::bus::Bus,
    cfg: &crate::config::ComputeConfig,
    volumes: &crate::clients::Volumes,
) -> Result<()> {
    let unfinished = sagas::saga_unfinished(&mut *db.conn().await?).await?;
    for rec in unfinished {
        let r = match rec.kind.as_str() {
            launch::KIND => {
                let d = launch::Deps {
                    db,
                    bus,
                    quota: &cfg.quota,
                    volumes,
                };
                launch::resume(d, &rec).await
            }
            delete::KIND => delete::resume(db, bus, cfg, volumes, &rec).await,
            attach::ATTACH | attach::DETACH => attach::resume(db, bus, volumes, &rec).await,
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!(saga = %rec.id, error = %e, "saga recovery failed");
        }
    }
    Ok(())
}

/// A request context fit for a saga log: everything but the bearer token,
/// which is never written down (steps that call other services use the
/// service user, with this context's request id).
pub fn loggable(ctx: &stratus_common::RequestContext) -> stratus_common::RequestContext {
    let mut c = ctx.clone();
    c.auth_token = None;
    c
}
