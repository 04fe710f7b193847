//! The conductor's reconcilers, run on a timer (and callable on demand):
//! a server still in BUILD past `[compute] build_timeout_secs` goes to
//! ERROR with a fault and its claim released (Nova's
//! `_check_instance_build_time`), and a claim with no live instance behind
//! it is released. Both are idempotent, so several conductors may run
//! them at once. Each run logs what it changed.
//!
//! A build that timed out stays failed: its agent's next step through the
//! conductor is a compare-and-swap on `spawning`, which now fails, so the
//! agent unwinds what it made instead of bringing the server back.

use std::time::Duration;

use stratus_db::Db;

use crate::db::{hosts, instances};
use crate::error::Result;
use crate::saga::place;

/// What one run changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Servers put in ERROR for building too long.
    pub timed_out: Vec<String>,
    /// Instances whose orphaned claim was released.
    pub released: Vec<String>,
}

fn before(secs: u64) -> String {
    let ago = chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000));
    let now = stratus_common::time::now();
    stratus_common::time::to_db(now.checked_sub_signed(ago).unwrap_or(now))
}

/// One run of both reconcilers.
pub async fn run_once(
    db: &Db,
    build_timeout_secs: u64,
    claim_grace_secs: u64,
) -> Result<Reconciled> {
    let mut r = Reconciled::default();
    if build_timeout_secs > 0 {
        let building = instances::instance_ids_building_before(
            &mut *db.conn().await?,
            &before(build_timeout_secs),
        )
        .await?;
        for id in building {
            let msg = format!(
                "Build of instance {id} aborted: instance build timed out after {build_timeout_secs} seconds."
            );
            place::fail_build(
                db,
                &id,
                &msg,
                "Instance build timed out. Set to error state.",
            )
            .await?;
            tracing::warn!(instance = %id, timeout_secs = build_timeout_secs, "reconciler: build timed out; instance set to ERROR and its claim released");
            r.timed_out.push(id);
        }
    }
    let orphaned =
        hosts::allocations_orphaned(&mut *db.conn().await?, &before(claim_grace_secs)).await?;
    for id in orphaned {
        let released = hosts::allocation_release(&mut *db.conn().await?, &id).await?;
        if let Some(c) = released {
            tracing::warn!(instance = %id, host = %c.host, "reconciler: released a claim with no live instance on its host");
            r.released.push(id);
        }
    }
    if r != Reconciled::default() {
        tracing::info!(
            timed_out = r.timed_out.len(),
            released = r.released.len(),
            "reconciler run changed state"
        );
    }
    Ok(r)
}

/// Runs the reconcilers every `every` until the task is aborted.
pub async fn reconcile_loop(db: Db, build_timeout_secs: u64, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        // A claim gets as long as a reconciler period to see its host saved.
        let grace = every.as_secs().max(30);
        if let Err(e) = run_once(&db, build_timeout_secs, grace).await {
            tracing::warn!(error = %e, "conductor reconciler run failed");
        }
    }
}
