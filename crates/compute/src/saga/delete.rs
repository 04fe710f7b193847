//! The delete saga: record the `delete` action and set task_state
//! `deleting`, then either delete locally (never scheduled, or its host is
//! down: release the claim and mark the row deleted) or cast
//! `terminate_instance` to the host's agent, which destroys the guest and
//! asks the conductor to finish. In between, the server's volumes are
//! detached (and those marked `delete_on_termination` deleted). Works in
//! every state, BUILD and ERROR included.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stratus_common::RequestContext;
use stratus_db::Db;

use super::{execute, loggable, Inject, Outputs, Step};
use crate::bus::Bus;
use crate::clients::volume::{volume_settled, VOLUME_WAIT};
use crate::clients::Volumes;
use crate::config::ComputeConfig;
use crate::db::instances::{Instance, InstanceUpdate};
use crate::db::sagas::{SagaRecord, SagaState};
use crate::db::{actions, bdms, hosts, instances};
use crate::error::{ComputeError, Result};
use crate::model::state::TaskState;
use crate::rpc;
use serde_json::Value;
use stratus_common::ids::VolumeId;

pub const KIND: &str = "delete";

#[derive(Clone, Serialize, Deserialize)]
pub struct Params {
    pub context: RequestContext,
    pub instance_id: String,
    pub previous_task_state: Option<TaskState>,
    /// The agent that must destroy the guest; `None` deletes locally.
    pub host: Option<String>,
}

pub struct Delete<'a> {
    pub db: &'a Db,
    pub bus: &'a Bus,
    /// `None`: no volume service (nothing can be attached).
    pub volumes: Option<&'a Volumes>,
    /// The request's context with its token while the request runs.
    pub ctx: RequestContext,
    pub p: Params,
}

struct MarkDeleting;
struct DetachVolumes;
struct Finish;

#[async_trait]
impl<'a> Step<Delete<'a>> for MarkDeleting {
    fn name(&self) -> &'static str {
        "mark_deleting"
    }
    fn seed_step(&self) -> u16 {
        5
    }
    async fn run(&self, c: &Delete<'a>, _done: &Outputs) -> Result<Value> {
        let ctx = &c.p.context;
        let mut conn = c.db.conn().await?;
        actions::action_start(
            &mut conn,
            &c.p.instance_id,
            "delete",
            &ctx.request_id.0,
            ctx.user_id.as_ref().map(|u| u.as_str()),
            ctx.project_id.as_ref().map(|p| p.as_str()),
        )
        .await?;
        let u = InstanceUpdate {
            task_state: Some(Some(TaskState::Deleting)),
            ..InstanceUpdate::default()
        };
        match instances::instance_update(&mut conn, &c.p.instance_id, &None, &u).await {
            Ok(_) | Err(ComputeError::NotFound(_)) => Ok(Value::Null),
            Err(e) => Err(e),
        }
    }
    async fn undo(&self, c: &Delete<'a>, _done: &Outputs) -> Result<()> {
        let u = InstanceUpdate {
            task_state: Some(c.p.previous_task_state),
            ..InstanceUpdate::default()
        };
        let expected = Some(vec![Some(TaskState::Deleting)]);
        let r =
            instances::instance_update(&mut *c.db.conn().await?, &c.p.instance_id, &expected, &u)
                .await;
        match r {
            Ok(_) | Err(ComputeError::NotFound(_)) | Err(ComputeError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Nova's `_shutdown_instance` for volumes: each attached volume is taken
/// from the guest (when its host is up), its attachment deleted (the
/// volume is `available` again) and, when it was asked at boot, the
/// volume deleted; then its mapping is forgotten. A boot volume the
/// launch made from the image goes too (when asked) though no build
/// attached it (the server never reached a host, or every build failed).
/// Run again, it finds only what is not yet done.
#[async_trait]
impl<'a> Step<Delete<'a>> for DetachVolumes {
    fn name(&self) -> &'static str {
        "detach_volumes"
    }
    fn seed_step(&self) -> u16 {
        39
    }
    async fn run(&self, c: &Delete<'a>, _done: &Outputs) -> Result<Value> {
        let Ok(iid) = c.p.instance_id.parse::<stratus_common::ids::InstanceId>() else {
            return Ok(Value::Null);
        };
        let mapped = bdms::bdm_list(&mut *c.db.conn().await?, &iid).await?;
        let made = launch_made_volumes(c).await?;
        if mapped.is_empty() && made.is_empty() {
            return Ok(Value::Null);
        }
        let Some(volumes) = c.volumes else {
            return Err(ComputeError::Unavailable(
                "no volume service to detach the server's volumes from".into(),
            ));
        };
        let user = volumes.token(&c.ctx).await?;
        let is_root = |b: &bdms::VolumeBdm| b.device_name == crate::agent::build::ROOT_DEVICE;
        // A boot volume's attachment is the service user's (the agent made
        // it): the user's token would not find it. With no service user
        // to ask (the tests' stand-ins), the user's.
        let service = if mapped.iter().any(is_root) {
            match volumes.tokens.token().await {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "no service token; the boot volume is released with the user's");
                    None
                }
            }
        } else {
            None
        };
        for b in mapped {
            // A boot volume goes with the guest (no hot-unplug of its root).
            let root = is_root(&b);
            let token = match (&service, root) {
                (Some(t), true) => t.clone(),
                _ => user.clone(),
            };
            if let (Some(host), Some(a), false) = (&c.p.host, b.attachment_id, root) {
                let args = rpc::VolumeArgs {
                    instance_id: iid,
                    volume_id: b.volume_id,
                    attachment_id: a,
                    device: b.device_name.clone(),
                };
                rpc::AgentApi::new(c.bus.clone())
                    .detach_volume(&c.ctx, host, &args)
                    .await?;
            }
            if let Some(a) = b.attachment_id {
                volumes.api.attachment_delete(&token, &a).await?;
            }
            if b.delete_on_termination {
                volumes.api.volume_delete(&token, &b.volume_id).await?;
            }
            bdms::bdm_delete(&mut *c.db.conn().await?, &b.id).await?;
        }
        for v in made {
            // Deleted above when a build had attached it; one still being
            // made from the image cannot be deleted before it is done.
            let r = match volume_settled(volumes.api.as_ref(), &user, &v, VOLUME_WAIT).await {
                Ok(_) => volumes.api.volume_delete(&user, &v).await,
                Err(ComputeError::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            };
            match r {
                Ok(()) => {}
                // Attached by a build this delete interrupts: that build's
                // undo deletes it as it unwinds.
                Err(ComputeError::BadRequest(e)) => {
                    tracing::info!(volume = %v, error = %e, "the boot volume is in a build's hands; its undo deletes it")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Value::Null)
    }
    async fn undo(&self, _c: &Delete<'a>, _done: &Outputs) -> Result<()> {
        // What was detached stays detached: the server is being deleted.
        Ok(())
    }
}

#[async_trait]
impl<'a> Step<Delete<'a>> for Finish {
    fn name(&self) -> &'static str {
        "destroy"
    }
    fn seed_step(&self) -> u16 {
        6
    }
    async fn run(&self, c: &Delete<'a>, _done: &Outputs) -> Result<Value> {
        match &c.p.host {
            Some(host) => {
                let id = c.p.instance_id.parse().map_err(|_| {
                    ComputeError::Internal(format!("bad instance id {}", c.p.instance_id))
                })?;
                rpc::AgentApi::new(c.bus.clone())
                    .terminate(&c.p.context, host, id)
                    .await?;
                Ok(Value::Null)
            }
            None => {
                let rid = c.p.context.request_id.0.as_str();
                let mut conn = c.db.conn().await?;
                actions::action_event_start(
                    &mut conn,
                    &c.p.instance_id,
                    rid,
                    "api_local_delete",
                    None,
                )
                .await?;
                hosts::allocation_release(&mut conn, &c.p.instance_id).await?;
                instances::instance_mark_deleted(&mut conn, &c.p.instance_id).await?;
                actions::action_event_finish(
                    &mut conn,
                    &c.p.instance_id,
                    rid,
                    "api_local_delete",
                    None,
                )
                .await?;
                Ok(Value::Null)
            }
        }
    }
    async fn undo(&self, _c: &Delete<'a>, _done: &Outputs) -> Result<()> {
        Ok(())
    }
}

/// The boot volumes the launch made for the server that go with it
/// (`delete_on_termination`); none once its row is gone.
async fn launch_made_volumes(c: &Delete<'_>) -> Result<Vec<VolumeId>> {
    let inst = match instances::instance_get_any(&mut *c.db.conn().await?, &c.p.instance_id).await {
        Ok(i) => i,
        Err(ComputeError::NotFound(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(inst
        .bdm
        .iter()
        .filter(|m| m.boots_from_new_volume() && m.delete_on_termination)
        .filter_map(|m| m.volume_id)
        .collect())
}

pub fn steps<'a>() -> Vec<Box<dyn Step<Delete<'a>>>> {
    vec![
        Box::new(MarkDeleting),
        Box::new(DetachVolumes),
        Box::new(Finish),
    ]
}

/// Where the delete must happen: on the agent if its host is up.
pub async fn destroy_host(db: &Db, cfg: &ComputeConfig, inst: &Instance) -> Result<Option<String>> {
    let Some(host) = &inst.host else {
        return Ok(None);
    };
    let up = hosts::service_list(&mut *db.conn().await?)
        .await?
        .iter()
        .any(|s| {
            s.binary == "nova-compute"
                && &s.host == host
                && crate::scheduler::service_is_up(s, cfg.service_down_time_secs)
        });
    Ok(up.then(|| host.clone()))
}

pub async fn run(
    db: &Db,
    bus: &Bus,
    cfg: &ComputeConfig,
    volumes: Option<&Volumes>,
    ctx: &RequestContext,
    inst: &Instance,
) -> Result<()> {
    run_with(db, bus, cfg, volumes, ctx, inst, Inject::default()).await
}

pub async fn run_with(
    db: &Db,
    bus: &Bus,
    cfg: &ComputeConfig,
    volumes: Option<&Volumes>,
    ctx: &RequestContext,
    inst: &Instance,
    inject: Inject,
) -> Result<()> {
    let c = Delete {
        db,
        bus,
        volumes,
        ctx: ctx.clone(),
        p: Params {
            context: loggable(ctx),
            instance_id: inst.id.to_string(),
            previous_task_state: inst.task_state,
            host: destroy_host(db, cfg, inst).await?,
        },
    };
    let id = format!("delete-{}-{}", inst.id, ctx.request_id);
    let rec = SagaRecord {
        id,
        kind: KIND.to_owned(),
        instance_id: inst.id.to_string(),
        state: SagaState::Running,
        params: serde_json::to_value(&c.p)?,
    };
    execute(db, &rec, &steps(), &c, inject).await?;
    Ok(())
}

pub async fn resume(
    db: &Db,
    bus: &Bus,
    _cfg: &ComputeConfig,
    volumes: &Volumes,
    rec: &SagaRecord,
) -> Result<()> {
    let p: Params = serde_json::from_value(rec.params.clone())?;
    let c = Delete {
        db,
        bus,
        volumes: Some(volumes),
        ctx: p.context.clone(),
        p,
    };
    if rec.state == SagaState::Unwinding {
        return super::unwind(db, &rec.id, &steps(), &c).await;
    }
    execute(db, rec, &steps(), &c, Inject::default()).await?;
    Ok(())
}
