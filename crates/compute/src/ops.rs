//! Steps the scheduler and the conductor share: putting a build on a host
//! (claim, save the host, cast to the agent) and failing a build cleanly.

use stratus_common::RequestContext;

use crate::bus::Bus;
use crate::db::hosts::Claim;
use crate::db::instances::{Fault, Instance, InstanceUpdate};
use crate::db::Store;
use crate::error::{ComputeError, Result};
use crate::rpc;
use crate::state::{task, vm};

pub const NO_VALID_HOST: &str = "No valid host was found. ";

/// Puts the instance in ERROR with a fault and gives back every claim.
/// Does nothing to a deleted instance.
pub async fn fail_build(store: &Store, id: &str, message: &str, details: &str) -> Result<()> {
    store.release(id).await?;
    let fault = Fault {
        code: 500,
        message: message.to_owned(),
        details: details.to_owned(),
        created: stratus_common::time::iso_seconds(stratus_common::time::now()),
    };
    let u = InstanceUpdate {
        vm_state: Some(vm::ERROR.to_owned()),
        task_state: Some(None),
        fault: Some(Some(fault)),
        ..InstanceUpdate::default()
    };
    match store.instance_update(id, &None, &u).await {
        Ok(_) | Err(ComputeError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Claims the first candidate that fits, records it on the instance and
/// casts the build to its agent with the rest as alternates. `Ok(false)`
/// when no candidate fits.
pub async fn place(
    store: &Store,
    bus: &Bus,
    ctx: &RequestContext,
    inst: &Instance,
    candidates: &[String],
    max_alternates: usize,
) -> Result<bool> {
    let id = inst.id.to_string();
    for (i, host) in candidates.iter().enumerate() {
        let claim = Claim {
            host: host.clone(),
            vcpus: inst.flavor.vcpus,
            memory_mb: inst.flavor.ram,
            disk_gb: inst.flavor.disk + inst.flavor.ephemeral,
        };
        if !store.claim(&id, &claim).await? {
            continue;
        }
        let mut tried = inst.tried_hosts.clone();
        tried.push(host.clone());
        let (node, zone) = match store.node_get(host).await {
            Ok(n) => (n.node, n.availability_zone),
            Err(_) => (host.clone(), String::new()),
        };
        let u = InstanceUpdate {
            host: Some(Some(host.clone())),
            node: Some(Some(node)),
            attempts: Some(inst.attempts + 1),
            tried_hosts: Some(tried),
            task_state: Some(Some(task::SCHEDULING.to_owned())),
            // Nova fills in the zone a server landed in when none was asked.
            availability_zone: match &inst.availability_zone {
                None if !zone.is_empty() => Some(Some(zone)),
                _ => None,
            },
            ..InstanceUpdate::default()
        };
        let expected = Some(vec![
            Some(task::SCHEDULING.to_owned()),
            Some(task::SPAWNING.to_owned()),
        ]);
        match store.instance_update(&id, &expected, &u).await {
            Ok(_) => {}
            // Deleted or changed while we chose: give the room back.
            Err(e) => {
                store.release(&id).await?;
                return match e {
                    ComputeError::NotFound(_) | ComputeError::Conflict(_) => Ok(true),
                    other => Err(other),
                };
            }
        }
        let alternates: Vec<String> = candidates[i + 1..]
            .iter()
            .take(max_alternates)
            .cloned()
            .collect();
        let args = rpc::BuildArgs {
            instance_id: id.clone(),
            alternates,
        };
        bus.cast(&rpc::compute_topic(host), rpc::BUILD_AND_RUN, ctx, &args)
            .await?;
        return Ok(true);
    }
    Ok(false)
}
