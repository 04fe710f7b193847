//! The scheduler's host cache on both engines: every kind of host change
//! made elsewhere (agents, the API, another scheduler with its own cache)
//! is seen by the next decision, and two schedulers with separate caches
//! racing for one small host never overcommit it.

use std::sync::Arc;
use std::time::Duration;

use stratus_common::RequestContext;
use stratus_compute::bus::{Bus, Envelope, Handler};
use stratus_compute::db;
use stratus_compute::db::hosts::Claim;
use stratus_compute::scheduler::select::Request;
use stratus_compute::scheduler::Scheduler;
use stratus_compute::ComputeConfig;
use stratus_db::Db;

use super::harness::conn;
use super::store::{drop_db, instance, node, two_stores};

fn scheduler(db: &Db, down_after_secs: u64) -> Scheduler {
    Scheduler::new(
        db.clone(),
        Bus::in_memory(),
        ComputeConfig {
            service_down_time_secs: down_after_secs,
            ram_weight_multiplier: 1.0,
            cpu_weight_multiplier: 0.0,
            ..ComputeConfig::default()
        },
    )
}

fn req() -> Request {
    Request {
        vcpus: 1,
        memory_mb: 512,
        disk_gb: 1,
        ..Request::default()
    }
}

async fn decide(s: &Scheduler) -> Vec<String> {
    s.candidates(&req()).await.expect("candidates")
}

async fn service_id(db: &Db, host: &str) -> String {
    db::hosts::service_list(&mut *conn(db).await)
        .await
        .expect("services")
        .into_iter()
        .find(|s| s.host == host && s.binary == "nova-compute")
        .expect("service")
        .id
}

async fn add_host(db: &Db, host: &str, ram: i64) {
    db::hosts::node_report(&mut *conn(db).await, &node(host, ram))
        .await
        .expect("node");
    db::hosts::service_heartbeat(&mut *conn(db).await, host, "nova-compute", "compute")
        .await
        .expect("heartbeat");
}

#[tokio::test]
async fn the_next_decision_sees_every_host_change() {
    for engine in super::harness::engines().await {
        // `a` is the scheduler's database handle, `b` everyone else's.
        let (a, b, name, _dir) = two_stores(engine).await;
        let sched = scheduler(&a, 60);
        assert!(decide(&sched).await.is_empty(), "{engine:?}");

        // Added.
        add_host(&b, "h1", 4096).await;
        assert_eq!(decide(&sched).await, ["h1"], "{engine:?}");
        add_host(&b, "h2", 8192).await;
        assert_eq!(decide(&sched).await, ["h2", "h1"], "{engine:?}");

        // Resources taken and given back by another scheduler.
        let other = Claim {
            host: "h2".into(),
            vcpus: 1,
            memory_mb: 7936,
            disk_gb: 1,
        };
        assert!(
            db::hosts::allocation_claim(&mut *conn(&b).await, "other-1", &other)
                .await
                .expect("claim")
        );
        assert_eq!(decide(&sched).await, ["h1"], "{engine:?}");
        db::hosts::allocation_release(&mut *conn(&b).await, "other-1")
            .await
            .expect("release");
        assert_eq!(decide(&sched).await, ["h2", "h1"], "{engine:?}");

        // The scheduler's own claim: the next decision reads it back with
        // the other changes (the claim stamps the node).
        let ours = Claim {
            host: "h2".into(),
            ..other
        };
        assert!(
            db::hosts::allocation_claim(&mut *conn(&a).await, "ours-1", &ours)
                .await
                .expect("claim")
        );
        assert_eq!(decide(&sched).await, ["h1"], "{engine:?}");
        db::hosts::allocation_release(&mut *conn(&a).await, "ours-1")
            .await
            .expect("release");
        assert_eq!(decide(&sched).await, ["h2", "h1"], "{engine:?}");

        // Reported totals changed by the agent.
        db::hosts::node_report(&mut *conn(&b).await, &node("h2", 2048))
            .await
            .expect("report");
        assert_eq!(decide(&sched).await, ["h1", "h2"], "{engine:?}");

        // Disabled, then enabled.
        let h2 = service_id(&b, "h2").await;
        db::hosts::service_update(
            &mut *conn(&b).await,
            &h2,
            Some(true),
            Some(Some("maintenance".into())),
            None,
        )
        .await
        .expect("disable");
        assert_eq!(decide(&sched).await, ["h1"], "{engine:?}");
        db::hosts::service_update(&mut *conn(&b).await, &h2, Some(false), Some(None), None)
            .await
            .expect("enable");
        assert_eq!(decide(&sched).await, ["h1", "h2"], "{engine:?}");

        // Forced down, then back.
        let h1 = service_id(&b, "h1").await;
        db::hosts::service_update(&mut *conn(&b).await, &h1, None, None, Some(true))
            .await
            .expect("force down");
        assert_eq!(decide(&sched).await, ["h2"], "{engine:?}");
        db::hosts::service_update(&mut *conn(&b).await, &h1, None, None, Some(false))
            .await
            .expect("force up");
        assert_eq!(decide(&sched).await, ["h1", "h2"], "{engine:?}");

        // All of that from the first load on, by reading changes only.
        let stats = sched.cache_stats().await;
        assert_eq!(stats.full_loads, 1, "{engine:?} {stats:?}");
        assert!(stats.delta_reads >= 11, "{engine:?} {stats:?}");

        // Deleted (its node row goes with the service).
        db::hosts::service_delete(&mut *conn(&b).await, &h2)
            .await
            .expect("delete");
        assert_eq!(decide(&sched).await, ["h1"], "{engine:?}");
        assert!(
            sched
                .host_states()
                .await
                .expect("hosts")
                .iter()
                .all(|h| h.node.host == "h1"),
            "{engine:?}"
        );

        a.close().await;
        b.close().await;
        drop_db(name).await;
    }
}

#[tokio::test]
async fn a_silent_service_goes_down_at_decision_time() {
    for engine in super::harness::engines().await {
        let (a, b, name, _dir) = two_stores(engine).await;
        let sched = scheduler(&a, 2);
        add_host(&b, "h1", 4096).await;
        add_host(&b, "h2", 4096).await;
        assert_eq!(decide(&sched).await, ["h1", "h2"], "{engine:?}");
        // h2 keeps heartbeating, h1 falls silent: no row of h1 changes,
        // its cached heartbeat just grows too old.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        db::hosts::service_heartbeat(&mut *conn(&b).await, "h2", "nova-compute", "compute")
            .await
            .expect("heartbeat");
        assert_eq!(decide(&sched).await, ["h2"], "{engine:?}");
        db::hosts::service_heartbeat(&mut *conn(&b).await, "h1", "nova-compute", "compute")
            .await
            .expect("heartbeat");
        assert_eq!(decide(&sched).await, ["h1", "h2"], "{engine:?}");
        a.close().await;
        b.close().await;
        drop_db(name).await;
    }
}

#[tokio::test]
async fn two_schedulers_with_their_own_caches_never_overcommit_a_host() {
    for engine in super::harness::engines().await {
        let (a, b, name, _dir) = two_stores(engine).await;
        // Room for exactly 8 builds of 512 MB.
        add_host(&a, "h1", 4096).await;
        let scheds = [Arc::new(scheduler(&a, 60)), Arc::new(scheduler(&b, 60))];
        // Both snapshots say the host is empty before the race starts.
        for s in &scheds {
            assert_eq!(decide(s).await, ["h1"], "{engine:?}");
        }
        let mut ids = Vec::new();
        for _ in 0..24 {
            let i = instance("p");
            db::instances::instance_create(&mut *conn(&a).await, &i)
                .await
                .expect("instance");
            ids.push(i.id.to_string());
        }
        let mut tasks = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let s = scheds[n % 2].clone();
            let env = Envelope::new(
                stratus_compute::rpc::SELECT_AND_BUILD,
                &RequestContext::internal(),
                serde_json::json!({ "instance_id": id }),
            );
            tasks.push(tokio::spawn(async move { s.handle(env).await }));
        }
        for t in tasks {
            t.await.expect("join").expect("select_and_build");
        }
        let mut placed = 0;
        for id in &ids {
            let i = db::instances::instance_get(&mut *conn(&a).await, id)
                .await
                .expect("instance");
            match i.host.as_deref() {
                Some("h1") => placed += 1,
                None => assert_eq!(i.vm_state.as_str(), "error", "{engine:?}"),
                Some(other) => panic!("{engine:?}: placed on {other}"),
            }
        }
        assert_eq!(placed, 8, "{engine:?}");
        let n = db::hosts::node_get(&mut *conn(&a).await, "h1")
            .await
            .expect("node");
        assert_eq!(
            (n.memory_mb_used, n.vcpus_used, n.running_vms),
            (4096, 8, 8),
            "{engine:?}"
        );
        // Each cache ends with the truth, and neither needed a reload.
        for s in &scheds {
            let hs = s.host_states().await.expect("hosts");
            assert_eq!(hs[0].node.memory_mb_used, 4096, "{engine:?}");
            assert_eq!(s.cache_stats().await.full_loads, 1, "{engine:?}");
        }
        a.close().await;
        b.close().await;
        drop_db(name).await;
    }
}
