//! The conductor: the database's voice for compute agents, which never open
//! it themselves. Reads and compare-and-swap writes of instances, action
//! events, node reports and heartbeats, rescheduling a failed build to an
//! alternate host, finishing a delete, and the stop an agent's power-state
//! sync asks for.

pub mod reconcile;

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stratus_db::Db;

use crate::bus::{Bus, Envelope, Handler, RemoteError};
use crate::config::ComputeConfig;
use crate::db::instances::InstanceUpdate;
use crate::db::{actions, hosts, instances, sagas};
use crate::error::{ComputeError, Result};
use crate::model::state::{TaskState, VmState};
use crate::rpc;
use crate::saga::{place, Inject};

pub struct Conductor {
    pub db: Db,
    pub bus: Bus,
    pub cfg: ComputeConfig,
}

fn args<T: DeserializeOwned>(env: &Envelope) -> Result<T> {
    serde_json::from_value(env.args.clone())
        .map_err(|e| ComputeError::BadRequest(format!("bad arguments: {e}")))
}

fn out<T: Serialize>(v: T) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(v)?)
}

impl Conductor {
    async fn dispatch(&self, env: &Envelope) -> Result<serde_json::Value> {
        let rid = env.context.request_id.0.as_str();
        match env.method.as_str() {
            rpc::INSTANCE_GET => {
                let a: rpc::InstanceArgs = args(env)?;
                out(instances::instance_get_any(
                    &mut *self.db.conn().await?,
                    &a.instance_id.to_string(),
                )
                .await?)
            }
            rpc::INSTANCE_UPDATE => {
                let a: rpc::UpdateArgs = args(env)?;
                let updated = instances::instance_update(
                    &mut *self.db.conn().await?,
                    &a.instance_id.to_string(),
                    &a.expected_task_state,
                    &a.updates,
                )
                .await?;
                if crate::metrics::ends_launch(&a.expected_task_state, a.updates.vm_state) {
                    stratus_telemetry::metrics::launch("active");
                }
                out(updated)
            }
            rpc::EVENT_START => {
                let a: rpc::EventArgs = args(env)?;
                actions::action_event_start(
                    &mut *self.db.conn().await?,
                    &a.instance_id.to_string(),
                    rid,
                    &a.event,
                    a.host.as_deref(),
                )
                .await?;
                out(())
            }
            rpc::EVENT_FINISH => {
                let a: rpc::EventArgs = args(env)?;
                actions::action_event_finish(
                    &mut *self.db.conn().await?,
                    &a.instance_id.to_string(),
                    rid,
                    &a.event,
                    a.error.as_deref(),
                )
                .await?;
                out(())
            }
            rpc::NODE_REPORT => {
                let a: rpc::NodeReportArgs = args(env)?;
                let mut conn = self.db.conn().await?;
                hosts::node_report(&mut conn, &a.report).await?;
                hosts::service_heartbeat(&mut conn, &a.report.host, "nova-compute", "compute")
                    .await?;
                out(())
            }
            rpc::RESCHEDULE => {
                let a: rpc::RescheduleArgs = args(env)?;
                self.reschedule(env, &a).await?;
                out(())
            }
            rpc::INSTANCE_DESTROYED => {
                let a: rpc::InstanceArgs = args(env)?;
                // Release first so that "gone" always means "nothing held".
                let mut conn = self.db.conn().await?;
                hosts::allocation_release(&mut conn, &a.instance_id.to_string()).await?;
                instances::instance_mark_deleted(&mut conn, &a.instance_id.to_string()).await?;
                out(())
            }
            rpc::INSTANCES_ON_HOST => {
                let a: rpc::HostArgs = args(env)?;
                let mut conn = self.db.conn().await?;
                let ids = instances::instance_ids_on_host(&mut conn, &a.host).await?;
                out(instances::instance_get_many(&mut conn, &ids).await?)
            }
            rpc::BUILDS_ON_HOST => {
                let a: rpc::HostArgs = args(env)?;
                let mut builds = Vec::new();
                let unfinished = sagas::saga_unfinished(&mut *self.db.conn().await?).await?;
                for rec in unfinished {
                    let p = &rec.params;
                    if rec.kind != "build" || p["host"].as_str() != Some(a.host.as_str()) {
                        continue;
                    }
                    let Ok(instance_id) = rec.instance_id.parse() else {
                        continue;
                    };
                    builds.push(rpc::BuildArgs {
                        instance_id,
                        alternates: serde_json::from_value(p["alternates"].clone())
                            .unwrap_or_default(),
                        attempt: p["attempt"].as_u64().and_then(|n| u32::try_from(n).ok()),
                    });
                }
                out(builds)
            }
            rpc::SAGA_OPEN => {
                let a: rpc::SagaOpenArgs = args(env)?;
                let (saga, steps) = sagas::saga_open(&mut *self.db.conn().await?, &a.saga).await?;
                out(rpc::SagaOpened { saga, steps })
            }
            rpc::SAGA_RECORD => {
                let a: rpc::SagaRecordArgs = args(env)?;
                sagas::saga_step_record(&mut *self.db.conn().await?, &a.saga_id, &a.step).await?;
                out(())
            }
            rpc::BDM_SAVE => {
                let a: rpc::BdmSaveArgs = args(env)?;
                let b: crate::db::bdms::VolumeBdm = serde_json::from_value(a.bdm)
                    .map_err(|e| ComputeError::BadRequest(format!("bad mapping: {e}")))?;
                let mut conn = self.db.conn().await?;
                if let Some(old) =
                    crate::db::bdms::bdm_get(&mut conn, &b.instance_id, &b.volume_id).await?
                {
                    crate::db::bdms::bdm_delete(&mut conn, &old.id).await?;
                }
                crate::db::bdms::bdm_create(&mut conn, &b).await?;
                out(())
            }
            rpc::BDM_DELETE => {
                let a: rpc::BdmDeleteArgs = args(env)?;
                let mut conn = self.db.conn().await?;
                if let Some(old) =
                    crate::db::bdms::bdm_get(&mut conn, &a.instance_id, &a.volume_id).await?
                {
                    crate::db::bdms::bdm_delete(&mut conn, &old.id).await?;
                }
                out(())
            }
            rpc::SAGA_STATE => {
                let a: rpc::SagaStateArgs = args(env)?;
                sagas::saga_set_state(&mut *self.db.conn().await?, &a.saga_id, a.state).await?;
                out(())
            }
            rpc::RECORD_EVENTS => {
                crate::trace::store(&self.db, args(env)?).await?;
                out(())
            }
            rpc::INSTANCE_STOP => {
                let a: rpc::StopArgs = args(env)?;
                self.stop(env, &a).await?;
                out(())
            }
            other => Err(ComputeError::BadRequest(format!(
                "unknown conductor method {other}"
            ))),
        }
    }

    /// Nova's `compute_api.stop` / `force_stop` for the power-state sync
    /// (which runs in the agent, away from the database): the state check,
    /// the `powering-off` claim (only from no task) and the `stop` action
    /// under the caller's request, whose context carries no user (Nova's
    /// periodic tasks run with an admin context without one).
    async fn stop(&self, env: &Envelope, a: &rpc::StopArgs) -> Result<()> {
        let mut conn = self.db.conn().await?;
        let inst = instances::instance_get(&mut conn, &a.instance_id.to_string()).await?;
        let wrong = || {
            ComputeError::Conflict(format!(
                "Cannot 'stop' instance {} while it is in vm_state {}",
                inst.id, inst.vm_state
            ))
        };
        if inst.host.as_deref() != Some(a.host.as_str()) {
            return Err(ComputeError::Conflict(format!(
                "Instance {} is no longer on host {}",
                inst.id, a.host
            )));
        }
        // `force_stop` also stops a STOPPED instance whose guest runs.
        let may = TaskState::PoweringOff.may_begin_in(inst.vm_state)
            || (a.force && inst.vm_state == VmState::Stopped);
        if !may {
            return Err(wrong());
        }
        let u = InstanceUpdate {
            task_state: Some(Some(TaskState::PoweringOff)),
            ..InstanceUpdate::default()
        };
        instances::instance_update(&mut conn, &a.instance_id.to_string(), &Some(vec![None]), &u)
            .await?;
        let ctx = &env.context;
        actions::action_start(
            &mut conn,
            &a.instance_id.to_string(),
            "stop",
            &ctx.request_id.0,
            ctx.user_id.as_ref().map(|u| u.as_str()),
            ctx.project_id.as_ref().map(|p| p.as_str()),
        )
        .await
    }

    /// A build failed on `failed_host` (its build saga has unwound): unwind
    /// its placement (claim released, host cleared) and run the next one
    /// over the alternates; after `max_attempts` hosts, ERROR with a fault.
    async fn reschedule(&self, env: &Envelope, a: &rpc::RescheduleArgs) -> Result<()> {
        const EV: &str = "conductor_reschedule";
        let rid = env.context.request_id.0.as_str();
        let mut conn = self.db.conn().await?;
        let inst = match instances::instance_get(&mut conn, &a.instance_id.to_string()).await {
            Ok(i) => i,
            Err(ComputeError::NotFound(_)) => {
                hosts::allocation_release(&mut conn, &a.instance_id.to_string()).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if inst.host.as_deref() != Some(a.failed_host.as_str())
            || inst.vm_state != VmState::Building
        {
            // A duplicate report for a host we already moved away from, or
            // a build that was failed meanwhile (timed out, deleted).
            return Ok(());
        }
        let attempt = a
            .attempt
            .unwrap_or_else(|| u32::try_from(inst.attempts.max(1) - 1).unwrap_or(0));
        actions::action_event_start(&mut conn, &a.instance_id.to_string(), rid, EV, None).await?;
        // The placement sagas borrow connections of their own.
        drop(conn);
        place::unwind_attempt(&self.db, &self.bus, inst.id, attempt).await?;
        let left = (self.cfg.max_attempts as i64 - inst.attempts).max(0) as usize;
        let candidates: Vec<String> = a
            .alternates
            .iter()
            .filter(|h| !inst.tried_hosts.contains(h))
            .take(left)
            .cloned()
            .collect();
        let placed = !candidates.is_empty() && {
            let p = place::params(
                &env.context,
                &inst,
                attempt + 1,
                candidates,
                left.saturating_sub(1),
            );
            place::run(
                &self.db,
                &self.bus,
                &env.context,
                p,
                None,
                Inject::default(),
            )
            .await?
        };
        if placed {
            actions::action_event_finish(
                &mut *self.db.conn().await?,
                &a.instance_id.to_string(),
                rid,
                EV,
                None,
            )
            .await?;
            return Ok(());
        }
        let msg = format!(
            "{}Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures \
             for instance {}.",
            place::NO_VALID_HOST,
            a.instance_id
        );
        place::fail_build(&self.db, &a.instance_id.to_string(), &msg, &a.error).await?;
        actions::action_event_finish(
            &mut *self.db.conn().await?,
            &a.instance_id.to_string(),
            rid,
            EV,
            Some(&msg),
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Handler for Conductor {
    async fn handle(&self, env: Envelope) -> std::result::Result<serde_json::Value, RemoteError> {
        self.dispatch(&env).await.map_err(|e| {
            if matches!(e, ComputeError::Internal(_)) {
                tracing::error!(method = %env.method, error = %e, "conductor");
            }
            e.to_remote()
        })
    }
}

pub fn handler(db: Db, bus: Bus, cfg: ComputeConfig) -> Arc<Conductor> {
    Arc::new(Conductor { db, bus, cfg })
}
