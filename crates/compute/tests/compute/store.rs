//! The compute database on both engines: claims that two schedulers race
//! for, compare-and-swap updates, and the pieces the API builds on.

use std::collections::BTreeMap;

use stratus_compute::model::state::{PowerState, TaskState, VmState};
use stratus_compute::model::RequestedNetworks;

use stratus_compute::db;
use stratus_compute::db::flavors::Flavor;
use stratus_compute::db::hosts::{Claim, NodeReport};
use stratus_compute::db::instances::{Instance, InstanceUpdate};
use stratus_compute::ComputeError;
use stratus_db::Db;

use super::harness::{conn, Engine};

/// Two independent connection pools on one fresh database (two schedulers).
pub async fn two_stores(engine: Engine) -> (Db, Db, Option<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, name) = match engine {
        Engine::Sqlite => (String::new(), None),
        Engine::Postgres => {
            let (u, n) = stratus_db::testing::create_postgres_database()
                .await
                .expect("postgres")
                .expect("url");
            (u, Some(n))
        }
    };
    let a = Db::connect(&url, dir.path(), "compute", Some(8))
        .await
        .expect("db a");
    db::open(&a).await.expect("migrate a");
    let b = Db::connect(&url, dir.path(), "compute", Some(8))
        .await
        .expect("db b");
    db::open(&b).await.expect("migrate b");
    (a, b, name, dir)
}

pub async fn drop_db(name: Option<String>) {
    if let Some(n) = name {
        stratus_db::testing::drop_postgres_database(&n).await;
    }
}

pub fn node(host: &str, ram: i64) -> NodeReport {
    NodeReport {
        host: host.into(),
        node: host.into(),
        hypervisor_type: "fake".into(),
        host_ip: "127.0.0.1".into(),
        availability_zone: "nova".into(),
        vcpus: 64,
        memory_mb: ram,
        local_gb: 1000,
        cpu_allocation_ratio: 1.0,
        ram_allocation_ratio: 1.0,
        disk_allocation_ratio: 1.0,
    }
}

pub fn flavor() -> Flavor {
    Flavor {
        id: "f1".into(),
        name: "f1".into(),
        ram: 512,
        vcpus: 1,
        disk: 1,
        ephemeral: 0,
        swap: 0,
        rxtx_factor: 1.0,
        is_public: true,
        disabled: false,
        description: None,
        extra_specs: BTreeMap::new(),
    }
}

pub fn instance(project: &str) -> Instance {
    let now = stratus_common::time::to_db(stratus_common::time::now());
    Instance {
        id: stratus_common::ids::InstanceId::new(),
        project_id: project.into(),
        user_id: "u".into(),
        name: "vm".into(),
        hostname: "vm".into(),
        description: None,
        vm_state: VmState::Building,
        task_state: Some(TaskState::Scheduling),
        power_state: PowerState::NoState,
        host: None,
        node: None,
        availability_zone: Some("nova".into()),
        flavor: flavor(),
        image_ref: super::harness::IMAGE.into(),
        image_properties: BTreeMap::new(),
        networks: RequestedNetworks::Auto,
        bdm: Vec::new(),
        security_groups: vec!["default".into()],
        scheduler_hints: serde_json::json!({}),
        key_name: None,
        key_data: None,
        user_data: None,
        config_drive: String::new(),
        access_ip_v4: None,
        access_ip_v6: None,
        reservation_id: "r-1".into(),
        launch_index: 0,
        server_group_id: None,
        locked: false,
        attempts: 0,
        tried_hosts: Vec::new(),
        fault: None,
        console_log: String::new(),
        launched_at: None,
        terminated_at: None,
        created_at: now.clone(),
        updated_at: now,
        deleted: false,
        metadata: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
        network_info: Vec::new(),
    }
}

#[tokio::test]
async fn two_schedulers_never_overcommit_a_host() {
    for engine in super::harness::engines().await {
        let (a, b, name, _dir) = two_stores(engine).await;
        // Room for exactly 8 claims of 512 MB.
        db::hosts::node_report(&mut *conn(&a).await, &node("h1", 4096))
            .await
            .expect("node");
        let mut tasks = Vec::new();
        for n in 0..24 {
            let db = if n % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let claim = Claim {
                    host: "h1".into(),
                    vcpus: 1,
                    memory_mb: 512,
                    disk_gb: 1,
                };
                db::hosts::allocation_claim(&mut *conn(&db).await, &format!("i-{n}"), &claim).await
            }));
        }
        let mut won = 0;
        for t in tasks {
            if t.await.expect("join").expect("claim") {
                won += 1;
            }
        }
        assert_eq!(won, 8, "{engine:?}");
        let n = db::hosts::node_get(&mut *conn(&a).await, "h1")
            .await
            .expect("node");
        assert_eq!(
            (n.memory_mb_used, n.vcpus_used, n.running_vms),
            (4096, 8, 8),
            "{engine:?}"
        );

        // Claims are idempotent per instance; release is too.
        let c = Claim {
            host: "h1".into(),
            vcpus: 1,
            memory_mb: 512,
            disk_gb: 1,
        };
        let holder = (0..24)
            .map(|n| format!("i-{n}"))
            .find(|_| true)
            .expect("id");
        let held = db::hosts::allocation_get(&mut *conn(&a).await, &holder)
            .await
            .expect("alloc")
            .is_some();
        if held {
            assert!(
                db::hosts::allocation_claim(&mut *conn(&a).await, &holder, &c)
                    .await
                    .expect("again")
            );
        }
        for n in 0..24 {
            db::hosts::allocation_release(&mut *conn(&a).await, &format!("i-{n}"))
                .await
                .expect("release");
            db::hosts::allocation_release(&mut *conn(&b).await, &format!("i-{n}"))
                .await
                .expect("release twice");
        }
        let n = db::hosts::node_get(&mut *conn(&a).await, "h1")
            .await
            .expect("node");
        assert_eq!(
            (n.memory_mb_used, n.vcpus_used, n.running_vms),
            (0, 0, 0),
            "{engine:?}"
        );
        a.close().await;
        b.close().await;
        drop_db(name).await;
    }
}

#[tokio::test]
async fn instance_updates_are_compare_and_swap() {
    for engine in super::harness::engines().await {
        let (a, _b, name, _dir) = two_stores(engine).await;
        let i = instance("p");
        let id = i.id.to_string();
        db::instances::instance_create(&mut *conn(&a).await, &i)
            .await
            .expect("create");
        let got = db::instances::instance_get(&mut *conn(&a).await, &id)
            .await
            .expect("get");
        assert_eq!(got.metadata.get("k").map(String::as_str), Some("v"));
        assert_eq!(got.flavor, flavor());

        let spawning = InstanceUpdate {
            task_state: Some(Some(TaskState::Spawning)),
            ..InstanceUpdate::default()
        };
        let expect_sched = Some(vec![Some(TaskState::Scheduling)]);
        db::instances::instance_update(&mut *conn(&a).await, &id, &expect_sched, &spawning)
            .await
            .expect("first swap wins");
        let again =
            db::instances::instance_update(&mut *conn(&a).await, &id, &expect_sched, &spawning)
                .await;
        assert!(matches!(again, Err(ComputeError::Conflict(_))), "{again:?}");
        let none_expected =
            db::instances::instance_update(&mut *conn(&a).await, &id, &Some(vec![None]), &spawning)
                .await;
        assert!(matches!(none_expected, Err(ComputeError::Conflict(_))));

        assert_eq!(
            db::instances::instance_usage(&mut *conn(&a).await, "p")
                .await
                .expect("usage"),
            (1, 1, 512)
        );
        assert!(
            db::instances::instance_mark_deleted(&mut *conn(&a).await, &id)
                .await
                .expect("delete")
        );
        assert!(
            !db::instances::instance_mark_deleted(&mut *conn(&a).await, &id)
                .await
                .expect("delete twice")
        );
        assert!(matches!(
            db::instances::instance_get(&mut *conn(&a).await, &id).await,
            Err(ComputeError::NotFound(_))
        ));
        assert!(
            db::instances::instance_get_any(&mut *conn(&a).await, &id)
                .await
                .expect("any")
                .deleted
        );
        let gone =
            db::instances::instance_update(&mut *conn(&a).await, &id, &None, &spawning).await;
        assert!(matches!(gone, Err(ComputeError::NotFound(_))));
        assert_eq!(
            db::instances::instance_usage(&mut *conn(&a).await, "p")
                .await
                .expect("usage"),
            (0, 0, 0)
        );

        // Action events record start, finish and result.
        db::actions::action_start(
            &mut *conn(&a).await,
            &id,
            "create",
            "req-1",
            Some("u"),
            Some("p"),
        )
        .await
        .expect("action");
        db::actions::action_start(
            &mut *conn(&a).await,
            &id,
            "create",
            "req-1",
            Some("u"),
            Some("p"),
        )
        .await
        .expect("action twice");
        db::actions::action_event_start(&mut *conn(&a).await, &id, "req-1", "ev", Some("h"))
            .await
            .expect("start");
        db::actions::action_event_finish(&mut *conn(&a).await, &id, "req-1", "ev", Some("boom"))
            .await
            .expect("finish");
        let (act, events) = db::actions::action_get(&mut *conn(&a).await, &id, "req-1")
            .await
            .expect("action");
        assert_eq!(act.message.as_deref(), Some("Error"));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].result.as_deref(), Some("Error"));
        a.close().await;
        drop_db(name).await;
    }
}

#[tokio::test]
async fn lists_leave_the_console_log_to_the_reads_of_one_instance() {
    for engine in super::harness::engines().await {
        let (a, _b, name, _dir) = two_stores(engine).await;
        let mut i = instance("p");
        i.console_log = "[    0.000000] Linux version 6.1".into();
        let id = i.id.to_string();
        db::instances::instance_create(&mut *conn(&a).await, &i)
            .await
            .expect("create");
        let f = db::instances::ListFilter {
            project_id: Some("p".into()),
            ..Default::default()
        };
        let listed = db::instances::instance_list(&mut *conn(&a).await, &f)
            .await
            .expect("list");
        assert_eq!(listed.len(), 1, "{engine:?}");
        assert_eq!(listed[0].console_log, "", "{engine:?}");
        assert_eq!(listed[0].metadata.get("k").map(String::as_str), Some("v"));
        let one = db::instances::instance_get(&mut *conn(&a).await, &id)
            .await
            .expect("get");
        assert_eq!(one.console_log, i.console_log, "{engine:?}");
        let many =
            db::instances::instance_get_many(&mut *conn(&a).await, std::slice::from_ref(&id))
                .await
                .expect("get many");
        assert_eq!(many[0].console_log, i.console_log, "{engine:?}");
        a.close().await;
        drop_db(name).await;
    }
}
