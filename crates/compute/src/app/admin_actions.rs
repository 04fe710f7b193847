//! Nova's admin actions on a server (`os-resetState`, `injectNetworkInfo`)
//! apart from HTTP.

use stratus_common::RequestContext;

use crate::api::AppState;
use crate::db;
use crate::db::instances::{Instance, InstanceUpdate};
use crate::error::Result;
use crate::model::state::VmState;

/// `os-resetState`: the vm_state the admin says, no task, whatever the
/// server was doing (no compare-and-swap: that is the point), recorded as
/// the instance action `resetState`.
pub async fn reset_state(
    s: &AppState,
    ctx: &RequestContext,
    i: &Instance,
    state: VmState,
) -> Result<()> {
    let id = i.id.to_string();
    let mut conn = s.db.conn().await?;
    db::actions::action_start(
        &mut conn,
        &id,
        "resetState",
        &ctx.request_id.0,
        ctx.user_id.as_ref().map(|u| u.as_str()),
        ctx.project_id.as_ref().map(|p| p.as_str()),
    )
    .await?;
    let u = InstanceUpdate {
        vm_state: Some(state),
        task_state: Some(None),
        ..InstanceUpdate::default()
    };
    db::instances::instance_update(&mut conn, &id, &None, &u).await?;
    db::actions::action_finish(&mut conn, &id, &ctx.request_id.0).await
}

/// `injectNetworkInfo`: Nova casts it to the host, whose driver rewrites
/// the guest's network files; Stratus's drivers give guests their network
/// through DHCP and the metadata service, so there is nothing to inject.
/// Nova records no instance action for it either.
pub async fn inject_network_info(
    _s: &AppState,
    _ctx: &RequestContext,
    _i: &Instance,
) -> Result<()> {
    Ok(())
}
