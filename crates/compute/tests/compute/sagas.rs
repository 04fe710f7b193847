//! The standard saga tests for launch and delete: every step twice is
//! harmless; a failure injected before each step in turn leaves nothing
//! behind; an interrupted saga resumes after a restart (or unwinds, when
//! what is left needs the user's token); the instances of one request are
//! launched all or none (the quota recheck). Launches boot from the image
//! and from a volume the launch makes from it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratus_common::RequestContext;
use stratus_compute::bus::{handler_fn, Bus, ServeOptions};
use stratus_compute::clients::{FakeVolumes, StaticToken, Volumes};
use stratus_compute::config::{ComputeConfig, QuotaDefaults};
use stratus_compute::db;
use stratus_compute::db::hosts::Claim;
use stratus_compute::db::instances::Instance;
use stratus_compute::db::sagas::{SagaRecord, SagaState, StepRecord, StepStatus};
use stratus_compute::model::bdm::{BdmDestination, BdmSource, BlockDeviceMapping};
use stratus_compute::model::state::TaskState;
use stratus_compute::saga::{self, launch, Inject, Outputs};
use stratus_compute::ComputeError;
use stratus_db::Db;

use super::harness::conn;
use super::store::{drop_db, instance, two_stores};

/// The user's token as the request carries it.
const USER_TOKEN: &str = "user-token";
const SERVICE_TOKEN: &str = "service-token";

/// The context a saga logs (never a token).
fn ctx() -> RequestContext {
    RequestContext {
        project_id: Some("p".into()),
        user_id: Some("u".into()),
        roles: vec!["member".into()],
        ..RequestContext::internal()
    }
}

/// The request's own context, with the user's token.
fn live() -> RequestContext {
    RequestContext {
        auth_token: Some(USER_TOKEN.into()),
        ..ctx()
    }
}

/// A server booting from a volume the launch makes from the image.
fn from_new_volume(mut inst: Instance) -> Instance {
    inst.bdm = vec![BlockDeviceMapping {
        source_type: BdmSource::Image,
        destination_type: BdmDestination::Volume,
        uuid: Some(super::harness::IMAGE.into()),
        boot_index: Some(0),
        volume_size: Some(1),
        delete_on_termination: true,
        device_name: None,
        disk_bus: None,
        volume_type: None,
        tag: None,
        volume_id: None,
    }];
    inst
}

/// Both kinds of launch: from the image, from a new volume.
fn both_kinds(project: &str) -> [Instance; 2] {
    [instance(project), from_new_volume(instance(project))]
}

/// An in-memory volume service as the API reaches it, and a handle on it.
fn volume_service() -> (Arc<FakeVolumes>, Volumes) {
    let fake = Arc::new(FakeVolumes::default());
    let volumes = Volumes {
        api: fake.clone(),
        tokens: Arc::new(StaticToken(SERVICE_TOKEN.into())),
    };
    (fake, volumes)
}

fn deps<'a>(
    db: &'a Db,
    bus: &'a Bus,
    quota: &'a QuotaDefaults,
    v: &'a Volumes,
) -> launch::Deps<'a> {
    launch::Deps {
        db,
        bus,
        quota,
        volumes: v,
    }
}

/// The volume recorded in the instance's boot mapping.
async fn recorded_volume(db: &Db, id: &str) -> Option<stratus_common::ids::VolumeId> {
    db::instances::instance_get(&mut *conn(db).await, id)
        .await
        .expect("instance")
        .bdm
        .first()
        .and_then(|m| m.volume_id)
}

/// Nothing of a launch is left: no instance, action, metadata, unfinished
/// saga or volume.
async fn launch_left_nothing(db: &Db, fake: &FakeVolumes, id: &str, what: &str) {
    assert!(
        matches!(
            db::instances::instance_get_any(&mut *conn(db).await, id).await,
            Err(ComputeError::NotFound(_))
        ),
        "{what}: instance left"
    );
    assert!(
        db::actions::action_list(&mut *conn(db).await, id)
            .await
            .expect("actions")
            .is_empty(),
        "{what}: action left"
    );
    assert!(
        db::instances::instance_metadata(&mut *conn(db).await, id)
            .await
            .expect("meta")
            .is_empty(),
        "{what}: metadata left"
    );
    assert!(
        db::sagas::saga_unfinished(&mut *conn(db).await)
            .await
            .expect("sagas")
            .is_empty(),
        "{what}: saga left"
    );
    assert_eq!(fake.volume_count(), 0, "{what}: volume left");
}

#[tokio::test]
async fn launch_saga_unwinds_at_every_step_and_repeats_harmlessly() {
    for engine in super::harness::engines().await {
        let (db, _b, name, _dir) = two_stores(engine).await;
        let bus = Bus::in_memory();
        let quota = QuotaDefaults::default();
        let (fake, volumes) = volume_service();
        let d = deps(&db, &bus, &quota, &volumes);
        let steps = launch::steps().len();
        for k in 0..steps {
            for inst in both_kinds("p") {
                let id = inst.id.to_string();
                let what = format!("step {k}, bdm {:?}", inst.bdm);
                let fail = Inject {
                    fail_before: Some(k),
                    ..Inject::default()
                };
                let r = launch::run_with(d, &live(), &inst, fail).await;
                assert!(matches!(r, Err(ComputeError::Internal(_))), "{what}: {r:?}");
                launch_left_nothing(&db, &fake, &id, &what).await;
            }
        }

        // Each step run twice, as a redelivery or a resume would.
        for inst in both_kinds("p") {
            let id = inst.id.to_string();
            let bfv = !inst.bdm.is_empty();
            let c = launch::Launch {
                db: &db,
                bus: &bus,
                quota: &quota,
                volumes: &volumes,
                p: launch::Params {
                    context: ctx(),
                    instance: inst.clone(),
                    count: 1,
                },
                live: live(),
            };
            let none = Outputs::default();
            for step in launch::steps() {
                step.run(&c, &none).await.expect("once");
                step.run(&c, &none).await.expect("twice");
            }
            assert_eq!(
                db::instances::instance_get(&mut *conn(&db).await, &id)
                    .await
                    .expect("instance")
                    .name,
                "vm"
            );
            assert_eq!(
                db::actions::action_list(&mut *conn(&db).await, &id)
                    .await
                    .expect("actions")
                    .len(),
                1
            );
            assert_eq!(
                db::instances::instance_usage(&mut *conn(&db).await, "p")
                    .await
                    .expect("usage")
                    .0,
                1
            );
            // One volume for a server booting from a new volume, made with
            // the user's token (so in the user's project) and recorded in
            // the server's mapping for the build to attach.
            assert_eq!(fake.volume_count(), usize::from(bfv));
            let recorded = recorded_volume(&db, &id).await;
            if bfv {
                let v = recorded.expect("volume recorded in the mapping");
                assert_eq!(fake.status(&v).as_deref(), Some("available"));
                assert_eq!(fake.creator(&v).as_deref(), Some(USER_TOKEN));
            } else {
                assert_eq!(recorded, None);
            }
            // And every undo twice.
            for step in launch::steps().iter().rev() {
                step.undo(&c, &none).await.expect("undo once");
                step.undo(&c, &none).await.expect("undo twice");
            }
            launch_left_nothing(&db, &fake, &id, "undone").await;
        }
        db.close().await;
        drop_db(name).await;
    }
}

/// A launch the API's crash stopped before each step: recovery resumes
/// it, with no user token (none is ever kept), so one that has still to
/// make its boot volume unwinds instead (its request never got an answer),
/// and one past it finishes with the volume it made.
#[tokio::test]
async fn an_interrupted_launch_resumes_or_unwinds_on_recovery() {
    for engine in super::harness::engines().await {
        let (db, _b, name, _dir) = two_stores(engine).await;
        let bus = Bus::in_memory();
        let quota = QuotaDefaults::default();
        let cfg = ComputeConfig::default();
        let steps = launch::steps().len();
        let volume_step = launch::steps()
            .iter()
            .position(|s| s.name() == "create_boot_volume")
            .expect("the boot volume step");
        for k in 0..steps {
            for inst in both_kinds("p") {
                let (fake, volumes) = volume_service();
                let d = deps(&db, &bus, &quota, &volumes);
                let id = inst.id.to_string();
                let bfv = !inst.bdm.is_empty();
                let what = format!("crash before step {k}, bdm {:?}", inst.bdm);
                let crash = Inject {
                    crash_before: Some(k),
                    ..Inject::default()
                };
                launch::run_with(d, &live(), &inst, crash)
                    .await
                    .expect("stopped");
                saga::recover(&db, &bus, &cfg, &volumes)
                    .await
                    .expect("recover");
                if bfv && k <= volume_step {
                    launch_left_nothing(&db, &fake, &id, &what).await;
                    continue;
                }
                assert!(
                    db::sagas::saga_unfinished(&mut *conn(&db).await)
                        .await
                        .expect("sagas")
                        .is_empty(),
                    "{what}"
                );
                let done = db::sagas::saga_steps(&mut *conn(&db).await, &format!("launch-{id}"))
                    .await
                    .expect("steps");
                assert!(
                    done.len() == steps && done.iter().all(|s| s.status == StepStatus::Done),
                    "{what}: {done:?}"
                );
                assert_eq!(fake.volume_count(), usize::from(bfv), "{what}");
                if bfv {
                    let v = recorded_volume(&db, &id).await.expect("recorded");
                    assert_eq!(fake.creator(&v).as_deref(), Some(USER_TOKEN), "{what}");
                }
                db::instances::instance_purge(&mut *conn(&db).await, &id)
                    .await
                    .expect("purge");
            }
        }
        db.close().await;
        drop_db(name).await;
    }
}

#[tokio::test]
async fn delete_saga_unwinds_and_releases() {
    for engine in super::harness::engines().await {
        let (db, _b, name, _dir) = two_stores(engine).await;
        db::hosts::node_report(&mut *conn(&db).await, &super::store::node("h1", 4096))
            .await
            .expect("node");
        let bus = Bus::in_memory();
        let cfg = ComputeConfig::default();
        let inst = instance("p");
        let id = inst.id.to_string();
        db::instances::instance_create(&mut *conn(&db).await, &inst)
            .await
            .expect("create");
        let claim = Claim {
            host: "h1".into(),
            vcpus: 1,
            memory_mb: 512,
            disk_gb: 1,
        };
        assert!(
            db::hosts::allocation_claim(&mut *conn(&db).await, &id, &claim)
                .await
                .expect("claim")
        );

        for k in 0..2 {
            let r = saga::delete::run_with(
                &db,
                &bus,
                &cfg,
                None,
                &ctx(),
                &inst,
                Inject {
                    fail_before: Some(k),
                    ..Inject::default()
                },
            )
            .await;
            assert!(r.is_err(), "step {k}");
            let now = db::instances::instance_get(&mut *conn(&db).await, &id)
                .await
                .expect("still there");
            assert_eq!(
                now.task_state,
                Some(TaskState::Scheduling),
                "step {k}: task state restored"
            );
            assert!(
                db::hosts::allocation_get(&mut *conn(&db).await, &id)
                    .await
                    .expect("alloc")
                    .is_some(),
                "step {k}"
            );
        }
        // Never scheduled (no host): deleted locally, claim released.
        saga::delete::run(&db, &bus, &cfg, None, &ctx(), &inst)
            .await
            .expect("delete");
        assert!(matches!(
            db::instances::instance_get(&mut *conn(&db).await, &id).await,
            Err(ComputeError::NotFound(_))
        ));
        assert!(db::hosts::allocation_get(&mut *conn(&db).await, &id)
            .await
            .expect("alloc")
            .is_none());
        assert_eq!(
            db::hosts::node_get(&mut *conn(&db).await, "h1")
                .await
                .expect("node")
                .memory_mb_used,
            0
        );
        db.close().await;
        drop_db(name).await;
    }
}

#[tokio::test]
async fn interrupted_launch_resumes_on_recovery() {
    for engine in super::harness::engines().await {
        let (db, _b, name, _dir) = two_stores(engine).await;
        let bus = Bus::in_memory();
        let inst = instance("p");
        let id = inst.id.to_string();
        // A crash after the first step: the row exists, the saga is running.
        let params = launch::Params {
            context: ctx(),
            instance: inst.clone(),
            count: 1,
        };
        let saga_id = format!("launch-{id}");
        db::sagas::saga_open(
            &mut *conn(&db).await,
            &SagaRecord {
                id: saga_id.clone(),
                kind: launch::KIND.into(),
                instance_id: id.clone(),
                state: SagaState::Running,
                params: serde_json::to_value(&params).expect("params"),
            },
        )
        .await
        .expect("saga");
        db::instances::instance_create(&mut *conn(&db).await, &inst)
            .await
            .expect("step 0");
        let step = StepRecord {
            step: 0,
            name: "write_instance".into(),
            status: StepStatus::Done,
            output: None,
        };
        db::sagas::saga_step_record(&mut *conn(&db).await, &saga_id, &step)
            .await
            .expect("log");

        saga::recover(
            &db,
            &bus,
            &ComputeConfig::default(),
            &super::harness::volumes(),
        )
        .await
        .expect("recover");
        assert!(db::sagas::saga_unfinished(&mut *conn(&db).await)
            .await
            .expect("sagas")
            .is_empty());
        assert_eq!(
            db::actions::action_list(&mut *conn(&db).await, &id)
                .await
                .expect("actions")
                .len(),
            1
        );
        let steps = db::sagas::saga_steps(&mut *conn(&db).await, &saga_id)
            .await
            .expect("steps");
        assert!(
            steps.iter().all(|s| s.status == StepStatus::Done)
                && steps.len() == launch::steps().len(),
            "{steps:?}"
        );
        db.close().await;
        drop_db(name).await;
    }
}

/// The instances the scheduler was asked to build: serves `scheduler` on
/// `bus` and collects what arrives (casts wait in the queue until then).
async fn scheduled(bus: &Bus) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let h = handler_fn(move |env| {
        let s = s.clone();
        async move {
            if let Some(id) = env.args["instance_id"].as_str() {
                s.lock().expect("lock").push(id.to_owned());
            }
            Ok(serde_json::Value::Null)
        }
    });
    let c = bus
        .serve("scheduler", h, ServeOptions::default())
        .await
        .expect("serve");
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.stop().await;
    let v = seen.lock().expect("lock").clone();
    v
}

/// The instances of one request go together: a failure at any step of
/// any of them before the casts (the quota recheck included) leaves none
/// of them nor their boot volumes, and none reaches the scheduler.
#[tokio::test]
async fn a_request_over_quota_on_recheck_leaves_nothing() {
    for engine in super::harness::engines().await {
        let (db, _b, name, _dir) = two_stores(engine).await;
        let quota = QuotaDefaults {
            instances: 4,
            ..QuotaDefaults::default()
        };
        let bus = Bus::in_memory();
        let (fake, volumes) = volume_service();
        let d = deps(&db, &bus, &quota, &volumes);
        // Booting from volumes the launch makes: each has one to remove.
        let request = || {
            (0..3)
                .map(|_| from_new_volume(instance("p")))
                .collect::<Vec<_>>()
        };
        let gone = |insts: Vec<Instance>, volumes_left: usize| {
            let db = db.clone();
            let fake = fake.clone();
            async move {
                assert_eq!(fake.volume_count(), volumes_left, "volumes");
                for i in &insts {
                    let id = i.id.to_string();
                    assert!(matches!(
                        db::instances::instance_get_any(&mut *conn(&db).await, &id).await,
                        Err(ComputeError::NotFound(_))
                    ));
                    assert!(db::actions::action_list(&mut *conn(&db).await, &id)
                        .await
                        .expect("actions")
                        .is_empty());
                    assert!(db::hosts::allocation_get(&mut *conn(&db).await, &id)
                        .await
                        .expect("alloc")
                        .is_none());
                }
                assert!(db::sagas::saga_unfinished(&mut *conn(&db).await)
                    .await
                    .expect("sagas")
                    .is_empty());
            }
        };

        // A failure before each step that precedes the casts, in each of
        // the three instances' sagas: nothing of the request remains.
        for k in 0..launch::steps().len() {
            let insts = request();
            let fail = Inject {
                fail_before: Some(k),
                ..Inject::default()
            };
            let r = launch::run_all_with(d, &live(), &insts, fail).await;
            assert!(
                matches!(r, Err(ComputeError::Internal(_))),
                "step {k}: {r:?}"
            );
            gone(insts, 0).await;
        }
        assert!(scheduled(&bus).await.is_empty());

        // Two instances exist; another request (written while the API's
        // first check passed) takes the project to 5 of 4: it goes again.
        let first = request();
        launch::run_all(d, &live(), &first[..2])
            .await
            .expect("within quota");
        assert_eq!(fake.volume_count(), 2);
        assert_eq!(scheduled(&bus).await.len(), 2);
        let over = request();
        let r = launch::run_all(d, &live(), &over).await;
        match r {
            Err(ComputeError::OverQuota(m)) => assert_eq!(
                m,
                "Quota exceeded for instances: Requested 3, but already used 4 of 4 instances"
            ),
            other => panic!("{other:?}"),
        }
        gone(over, 2).await;
        assert!(scheduled(&bus).await.is_empty());
        assert_eq!(
            db::instances::instance_usage(&mut *conn(&db).await, "p")
                .await
                .expect("usage")
                .0,
            2
        );
        // Cores too: Nova lists every resource over its limit.
        let quota = QuotaDefaults {
            instances: 2,
            cores: 2,
            ..QuotaDefaults::default()
        };
        let r = launch::run(
            deps(&db, &bus, &quota, &volumes),
            &live(),
            &from_new_volume(instance("p")),
        )
        .await;
        match r {
            Err(ComputeError::OverQuota(m)) => assert_eq!(
                m,
                "Quota exceeded for instances, cores: Requested 1, 1, but already used 2, 2 of 2, 2 instances, cores"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            db::instances::instance_usage(&mut *conn(&db).await, "p")
                .await
                .expect("usage")
                .0,
            2
        );
        // Refused on recheck, before any volume was made for it.
        assert_eq!(fake.volume_count(), 2);
        db.close().await;
        drop_db(name).await;
    }
}
