//! The launch saga (API side, steps 5–6): write the instance, record the
//! `create` action, cast `scheduler.select_and_build`. A failure at any step
//! removes the instance rows again, so nothing is left behind.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stratus_common::RequestContext;

use super::{execute, Inject, Step};
use crate::bus::Bus;
use crate::db::instances::Instance;
use crate::db::sagas::SagaRecord;
use crate::db::Store;
use crate::error::{ComputeError, Result};
use crate::rpc;

pub const KIND: &str = "launch";

#[derive(Clone, Serialize, Deserialize)]
pub struct Params {
    pub context: RequestContext,
    pub instance: Instance,
}

pub struct Launch<'a> {
    pub store: &'a Store,
    pub bus: &'a Bus,
    pub p: Params,
}

struct WriteInstance;
struct RecordAction;
struct CastScheduler;

#[async_trait]
impl<'a> Step<Launch<'a>> for WriteInstance {
    fn name(&self) -> &'static str {
        "write_instance"
    }
    async fn run(&self, c: &Launch<'a>) -> Result<()> {
        match c.store.instance_create(&c.p.instance).await {
            // Already written by an earlier run of this step.
            Err(ComputeError::Conflict(_))
                if c.store
                    .instance_get_any(&c.p.instance.id.to_string())
                    .await
                    .is_ok() =>
            {
                Ok(())
            }
            other => other,
        }
    }
    async fn undo(&self, c: &Launch<'a>) -> Result<()> {
        c.store.instance_purge(&c.p.instance.id.to_string()).await
    }
}

#[async_trait]
impl<'a> Step<Launch<'a>> for RecordAction {
    fn name(&self) -> &'static str {
        "record_action"
    }
    async fn run(&self, c: &Launch<'a>) -> Result<()> {
        let ctx = &c.p.context;
        c.store
            .action_start(
                &c.p.instance.id.to_string(),
                "create",
                &ctx.request_id.0,
                ctx.user_id.as_ref().map(|u| u.as_str()),
                ctx.project_id.as_ref().map(|p| p.as_str()),
            )
            .await
    }
    async fn undo(&self, c: &Launch<'a>) -> Result<()> {
        c.store
            .action_delete_all(&c.p.instance.id.to_string())
            .await
    }
}

#[async_trait]
impl<'a> Step<Launch<'a>> for CastScheduler {
    fn name(&self) -> &'static str {
        "cast_scheduler"
    }
    async fn run(&self, c: &Launch<'a>) -> Result<()> {
        let args = rpc::InstanceArgs {
            instance_id: c.p.instance.id.to_string(),
        };
        Ok(c.bus
            .cast(rpc::SCHEDULER, rpc::SELECT_AND_BUILD, &c.p.context, &args)
            .await?)
    }
    async fn undo(&self, _c: &Launch<'a>) -> Result<()> {
        // The last step: nothing after it can fail.
        Ok(())
    }
}

pub fn steps<'a>() -> Vec<Box<dyn Step<Launch<'a>>>> {
    vec![
        Box::new(WriteInstance),
        Box::new(RecordAction),
        Box::new(CastScheduler),
    ]
}

/// Launches one instance; on failure nothing of it remains.
pub async fn run(store: &Store, bus: &Bus, ctx: &RequestContext, inst: &Instance) -> Result<()> {
    run_with(store, bus, ctx, inst, Inject::default()).await
}

pub async fn run_with(
    store: &Store,
    bus: &Bus,
    ctx: &RequestContext,
    inst: &Instance,
    inject: Inject,
) -> Result<()> {
    let c = Launch {
        store,
        bus,
        p: Params {
            context: ctx.clone(),
            instance: inst.clone(),
        },
    };
    let id = format!("launch-{}", inst.id);
    let rec = SagaRecord {
        id,
        kind: KIND.to_owned(),
        instance_id: inst.id.to_string(),
        state: "running".to_owned(),
        params: serde_json::to_value(&c.p)?,
    };
    execute(store, &rec, &steps(), &c, inject).await
}

pub async fn resume(store: &Store, bus: &Bus, rec: &SagaRecord) -> Result<()> {
    let p: Params = serde_json::from_value(rec.params.clone())?;
    let c = Launch { store, bus, p };
    if rec.state == "unwinding" {
        return super::unwind(store, &rec.id, &steps(), &c).await;
    }
    execute(store, rec, &steps(), &c, Inject::default()).await
}
