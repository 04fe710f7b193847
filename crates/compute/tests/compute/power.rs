//! The agents' power-state sync (Nova's `_sync_power_states`): guests that
//! change state behind the cloud's back are reconciled through the
//! conductor; instances with a task in progress are left alone.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use stratus_common::ids::InstanceId;
use stratus_compute::db::instances::InstanceUpdate;
use stratus_compute::model::state::{PowerState, TaskState, VmState};

fn iid(s: &str) -> InstanceId {
    s.parse().expect("instance id")
}
use stratus_compute::virt::fake::FakeDriver;
use stratus_compute::virt::VirtDriver;

use super::harness::*;
use stratus_compute::db;

/// The `stop` actions of a server, newest first, with their events.
async fn stops(c: &Cloud, id: &str) -> Vec<Value> {
    let (_, v) = c
        .get_v(
            &format!("/v2.1/servers/{id}/os-instance-actions"),
            ADMIN,
            "2.51",
        )
        .await;
    let mut out = Vec::new();
    for a in v["instanceActions"].as_array().cloned().unwrap_or_default() {
        if a["action"] != "stop" {
            continue;
        }
        let rid = a["request_id"].as_str().unwrap_or_default().to_owned();
        let (_, d) = c
            .get_v(
                &format!("/v2.1/servers/{id}/os-instance-actions/{rid}"),
                ADMIN,
                "2.62",
            )
            .await;
        out.push(d["instanceAction"].clone());
    }
    out
}

async fn wait_stops(c: &Cloud, id: &str, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let s = stops(c, id).await;
        let done = s.len() >= n
            && s.iter().all(|a| {
                // An action is recorded before its event starts: an empty
                // list is not finished yet.
                a["events"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty() && e.iter().all(|e| e["result"] == "Success"))
            });
        if done {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "server {id} never got {n} stop actions: {:?}",
        stops(c, id).await
    );
}

#[tokio::test]
async fn power_state_sync_follows_the_hypervisor() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 1;
        cfg.sync_power_state_interval_secs = 1;
        let fake = Arc::new(FakeDriver::new("compute", 8, 8192, 100, false));
        let driver: Arc<dyn VirtDriver> = fake.clone();
        let c = Cloud::start_with(engine, cfg, Some(vec![("compute".into(), driver)])).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let gone = c.server(ALICE, "gone", &flavor).await;
        let woke = c.server(ALICE, "woke", &flavor).await;
        let busy = c.server(ALICE, "busy", &flavor).await;
        for id in [&gone, &woke, &busy] {
            c.wait_status(id, "ACTIVE").await;
        }

        // ACTIVE, but the guest shut itself off: Nova's `stop` (an action
        // without a user, its event on this host), SHUTOFF.
        fake.set_power_state(iid(&gone), PowerState::Shutdown)
            .expect("guest");
        let srv = c.wait_status(&gone, "SHUTOFF").await;
        assert_eq!(srv["OS-EXT-STS:power_state"], 4);
        assert_eq!(srv["OS-EXT-STS:vm_state"], "stopped");
        let s = wait_stops(&c, &gone, 1).await;
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0]["user_id"], Value::Null, "{s:?}");
        assert_eq!(s[0]["events"][0]["event"], "compute_stop_instance");
        assert_eq!(s[0]["events"][0]["host"], "compute");

        // STOPPED (by its owner), but the guest runs again: Nova powers it
        // off again (`force_stop`), the server stays SHUTOFF.
        let (st, v) = c
            .post(
                &format!("/v2.1/servers/{woke}/action"),
                ALICE,
                json!({"os-stop": null}),
            )
            .await;
        assert_eq!(st.as_u16(), 202, "{v}");
        c.wait_status(&woke, "SHUTOFF").await;
        assert_eq!(fake.power_state(iid(&woke)), Some(PowerState::Shutdown));
        fake.set_power_state(iid(&woke), PowerState::Running)
            .expect("guest");
        let s = wait_stops(&c, &woke, 2).await;
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(fake.power_state(iid(&woke)), Some(PowerState::Shutdown));
        let srv = c.wait_status(&woke, "SHUTOFF").await;
        assert_eq!(srv["OS-EXT-STS:power_state"], 4);

        // A task in progress: neither power_state nor vm_state touched.
        let mid = InstanceUpdate {
            task_state: Some(Some(TaskState::PoweringOn)),
            ..InstanceUpdate::default()
        };
        db::instances::instance_update(&mut *conn(&c.db).await, &busy, &Some(vec![None]), &mid)
            .await
            .expect("task");
        fake.set_power_state(iid(&busy), PowerState::Shutdown)
            .expect("guest");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let i = db::instances::instance_get(&mut *conn(&c.db).await, &busy)
            .await
            .expect("instance");
        assert_eq!(i.vm_state, VmState::Active);
        assert_eq!(i.power_state, PowerState::Running);
        assert_eq!(i.task_state, Some(TaskState::PoweringOn));
        assert!(stops(&c, &busy).await.is_empty());
        // Once the task is over, the sync catches up.
        let done = InstanceUpdate {
            task_state: Some(None),
            ..InstanceUpdate::default()
        };
        db::instances::instance_update(&mut *conn(&c.db).await, &busy, &None, &done)
            .await
            .expect("task over");
        c.wait_status(&busy, "SHUTOFF").await;

        // A guest the hypervisor lost while ACTIVE: Nova only records
        // NOSTATE ("unexpectedly not found"), it does not stop.
        let (st, _) = c
            .post(
                &format!("/v2.1/servers/{gone}/action"),
                ALICE,
                json!({"os-start": null}),
            )
            .await;
        assert_eq!(st.as_u16(), 202);
        c.wait_status(&gone, "ACTIVE").await;
        fake.destroy(iid(&gone)).await.expect("destroy");
        for _ in 0..300 {
            let i = db::instances::instance_get(&mut *conn(&c.db).await, &gone)
                .await
                .expect("instance");
            if i.power_state == PowerState::NoState {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let i = db::instances::instance_get(&mut *conn(&c.db).await, &gone)
            .await
            .expect("instance");
        assert_eq!(i.power_state, PowerState::NoState);
        assert_eq!(i.vm_state, VmState::Active);
        assert_eq!(stops(&c, &gone).await.len(), 1);
        c.stop().await;
    }
}
