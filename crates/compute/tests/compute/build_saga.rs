//! The standard saga tests for the build (`build-<id>-<attempt>`, run by
//! the agent with its log in the conductor) and the placement
//! (`place-<id>-<k>`), plus the reconcilers: every step run twice is
//! harmless; a failure at each step leaves nothing behind; the agent
//! dropped before each step and started again ends ACTIVE; a build that
//! outlives `build_timeout_secs` ends ERROR and stays there.

use std::sync::Arc;
use std::time::Duration;

use stratus_common::ids::InstanceId;
use stratus_compute::bus::Bus;
use stratus_compute::conductor::reconcile;
use stratus_compute::db;
use stratus_compute::db::hosts::Claim;
use stratus_compute::db::sagas::SagaState;
use stratus_compute::saga::{self, place, Inject};
use stratus_compute::virt::fake::FakeDriver;
use stratus_compute::virt::VirtDriver;
use stratus_compute::AgentServices;

use serde_json::json;
use stratus_common::ids::VolumeId;
use stratus_compute::clients::FakeVolumes;
use stratus_compute::model::DiskSource;

use super::harness::{base_cfg, conn, engines, server_body, Cloud, Ext, ALICE, IMAGE, NETWORK};

/// The build saga's steps, in order.
const BUILD_STEPS: usize = 8;

/// What a server of the standard tests boots from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Boot {
    /// Its image, on a local disk.
    Image,
    /// A volume the launch makes from the image (`--boot-from-volume 1`).
    NewVolume,
    /// The user's own volume (`--volume V`).
    Volume,
}

const BOOTS: [Boot; 3] = [Boot::Image, Boot::NewVolume, Boot::Volume];

/// Creates a server booting as `boot` asks; its id and the user's volume.
async fn server_booting(
    c: &Cloud,
    volumes: &FakeVolumes,
    boot: Boot,
    flavor: &str,
) -> (String, Option<VolumeId>) {
    let (body, volume) = match boot {
        Boot::Image => (server_body("vm", flavor), None),
        Boot::NewVolume => (
            json!({"server": {"name": "vm", "flavorRef": flavor,
                "networks": [{"uuid": NETWORK}],
                "block_device_mapping_v2": [{"uuid": IMAGE, "boot_index": 0, "source_type": "image",
                    "destination_type": "volume", "volume_size": 1}]}}),
            None,
        ),
        Boot::Volume => {
            let v = volumes.create();
            (
                json!({"server": {"name": "vm", "flavorRef": flavor,
                    "networks": [{"uuid": NETWORK}],
                    "block_device_mapping_v2": [{"uuid": v.to_string(), "boot_index": 0,
                        "source_type": "volume", "destination_type": "volume"}]}}),
                Some(v),
            )
        }
    };
    let (st, v) = c.post("/v2.1/servers", ALICE, body).await;
    assert_eq!(st.as_u16(), 202, "{boot:?}: {v}");
    (
        v["server"]["id"].as_str().expect("server id").to_owned(),
        volume,
    )
}

/// Nothing of a boot volume is left but the user's own volume, available.
async fn no_volume_left(
    c: &Cloud,
    volumes: &FakeVolumes,
    id: &str,
    own: Option<VolumeId>,
    what: &str,
) {
    assert_eq!(
        volumes.attachment_count(),
        0,
        "{what}: an attachment is left"
    );
    assert_eq!(
        volumes.volume_count(),
        usize::from(own.is_some()),
        "{what}: a volume made at boot is left"
    );
    if let Some(v) = own {
        assert_eq!(volumes.status(&v).as_deref(), Some("available"), "{what}");
    }
    let iid: InstanceId = id.parse().expect("id");
    let rows = db::bdms::bdm_list(&mut *conn(&c.db).await, &iid)
        .await
        .expect("bdms");
    assert!(rows.is_empty(), "{what}: a mapping is left: {rows:?}");
}

/// The guest's root disk is the boot volume (and there is no other disk).
fn assert_root_is_volume(fake: &FakeDriver, id: &str, volumes: &FakeVolumes, boot: Boot) {
    let spec = fake.spec(id.parse().expect("id")).expect("spec");
    match boot {
        Boot::Image => assert!(
            !matches!(spec.disks[0].source, DiskSource::Volume { .. }),
            "{spec:?}"
        ),
        _ => {
            assert_eq!(spec.disks.len(), 1, "{spec:?}");
            let DiskSource::Volume { volume_id, .. } = &spec.disks[0].source else {
                panic!("the root disk is not a volume: {spec:?}");
            };
            assert_eq!(spec.disks[0].device, "vda");
            assert_eq!(spec.disks[0].boot_index, Some(0));
            let v: VolumeId = volume_id.parse().expect("volume id");
            assert_eq!(volumes.status(&v).as_deref(), Some("in-use"));
            if boot == Boot::NewVolume {
                // Made with the user's token: the user's volume.
                assert_eq!(volumes.creator(&v).as_deref(), Some(ALICE));
            }
        }
    }
}

/// The volume the launch made for the server, as its mapping records it.
async fn launch_made_volume(c: &Cloud, id: &str) -> VolumeId {
    db::instances::instance_get(&mut *conn(&c.db).await, id)
        .await
        .expect("instance")
        .bdm
        .iter()
        .find_map(|m| m.volume_id)
        .expect("a volume recorded in the boot mapping")
}

fn one_host() -> (Arc<FakeDriver>, stratus_compute::HostDrivers) {
    let fake = Arc::new(FakeDriver::new("compute", 8, 8192, 100, false));
    let d: Arc<dyn VirtDriver> = fake.clone();
    (fake, vec![("compute".to_owned(), d)])
}

async fn cloud_injecting(
    engine: super::harness::Engine,
    cfg: stratus_compute::ComputeConfig,
    drivers: Vec<(String, Arc<dyn VirtDriver>)>,
    inject: Inject,
) -> Cloud {
    cloud_with_volumes(engine, cfg, drivers, inject, Arc::default()).await
}

async fn cloud_with_volumes(
    engine: super::harness::Engine,
    cfg: stratus_compute::ComputeConfig,
    drivers: Vec<(String, Arc<dyn VirtDriver>)>,
    inject: Inject,
    volumes: Arc<FakeVolumes>,
) -> Cloud {
    let ext = Ext {
        inject,
        volumes,
        ..Ext::accept_all(Bus::in_memory())
    };
    Cloud::start_custom(engine, cfg, Some(drivers), ext).await
}

/// A one-host cloud (agents injecting `inject`), its fake driver and a
/// 512 MiB flavor.
async fn one_host_cloud(
    engine: super::harness::Engine,
    cfg: stratus_compute::ComputeConfig,
    inject: Inject,
) -> (Cloud, Arc<FakeDriver>, stratus_compute::HostDrivers, String) {
    let (fake, drivers) = one_host();
    let c = cloud_injecting(engine, one_host_cfg(cfg), drivers.clone(), inject).await;
    let flavor = c.flavor("small", 1, 512, 1).await;
    (c, fake, drivers, flavor)
}

fn one_host_cfg(mut cfg: stratus_compute::ComputeConfig) -> stratus_compute::ComputeConfig {
    cfg.fake_hosts = 1;
    cfg
}

/// A server created while the scheduler is stopped (its cast waits).
async fn server_unscheduled(c: &mut Cloud, flavor: &str) -> String {
    if let Some(s) = c.scheduler.take() {
        s.stop().await;
    }
    c.server(ALICE, "vm", flavor).await
}

/// The agents stop and start again over the same hypervisor.
async fn restart_agents(c: &mut Cloud, drivers: stratus_compute::HostDrivers) {
    restart_agents_with(c, drivers, Arc::default()).await;
}

/// The same, with the volume service `volumes`.
async fn restart_agents_with(
    c: &mut Cloud,
    drivers: stratus_compute::HostDrivers,
    volumes: Arc<FakeVolumes>,
) {
    if let Some(a) = c.agents.take() {
        a.stop().await;
    }
    c.agents = Some(
        stratus_compute::start_agents_with(
            &c.config,
            &c.bus,
            drivers,
            AgentServices {
                volumes,
                ..AgentServices::accept_all(c.config.data_dir.join("instances"))
            },
        )
        .await
        .expect("agents again"),
    );
}

/// No saga of the instance is left running or unwinding (given a moment:
/// a saga is marked done just after its last step shows).
async fn no_saga_left(c: &Cloud, id: &str) {
    let settled = |s: &stratus_compute::db::sagas::SagaRecord| {
        matches!(s.state, SagaState::Done | SagaState::Failed)
    };
    for _ in 0..300 {
        let sagas = db::sagas::saga_list_for_instance(&mut *conn(&c.db).await, id)
            .await
            .expect("sagas");
        if sagas.iter().all(settled) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sagas = db::sagas::saga_list_for_instance(&mut *conn(&c.db).await, id)
        .await
        .expect("sagas");
    for s in sagas {
        assert!(
            matches!(s.state, SagaState::Done | SagaState::Failed),
            "{} left {:?}",
            s.id,
            s.state
        );
    }
}

#[tokio::test]
async fn a_build_failing_at_each_step_leaves_nothing_behind() {
    for engine in engines().await {
        for boot in BOOTS {
            for k in 0..BUILD_STEPS {
                let what = format!("{boot:?}, step {k}");
                let mut cfg = base_cfg();
                cfg.fake_hosts = 1;
                let (fake, drivers) = one_host();
                let inject = Inject {
                    fail_before: Some(k),
                    ..Inject::default()
                };
                let volumes = Arc::new(FakeVolumes::default());
                let c = cloud_with_volumes(engine, cfg, drivers, inject, volumes.clone()).await;
                let flavor = c.flavor("small", 1, 512, 1).await;
                let (id, own) = server_booting(&c, &volumes, boot, &flavor).await;
                // One host, no alternate: the reschedule ends in ERROR.
                let srv = c.wait_status(&id, "ERROR").await;
                assert!(
                    srv["fault"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("No valid host")),
                    "{what}: {srv}"
                );
                c.wait_ram_used(0).await;
                assert!(fake.list().await.is_empty(), "{what}: a guest is left");
                let inst = db::instances::instance_get(&mut *conn(&c.db).await, &id)
                    .await
                    .expect("instance");
                assert!(inst.network_info.is_empty(), "{what}");
                assert!(
                    !c.config.data_dir.join("instances").join(&id).exists(),
                    "{what}: the instance folder is left"
                );
                no_saga_left(&c, &id).await;
                if boot == Boot::NewVolume {
                    // The volume the launch made is the server's: the
                    // builds let go of it, and it waits, available, for
                    // the server's delete (Nova's ERROR server keeps its
                    // volumes too), which takes it.
                    let v = launch_made_volume(&c, &id).await;
                    assert_eq!(volumes.status(&v).as_deref(), Some("available"), "{what}");
                    assert_eq!(volumes.attachment_count(), 0, "{what}");
                    let st = c.delete(&format!("/v2.1/servers/{id}"), ALICE).await;
                    assert_eq!(st.as_u16(), 204, "{what}");
                    c.wait_gone(&id).await;
                }
                no_volume_left(&c, &volumes, &id, own, &what).await;
                c.stop().await;
            }
        }
    }
}

#[tokio::test]
async fn every_build_step_run_twice_is_harmless() {
    for engine in engines().await {
        for boot in BOOTS {
            let mut cfg = base_cfg();
            cfg.fake_hosts = 1;
            let (fake, drivers) = one_host();
            let inject = Inject {
                twice: true,
                ..Inject::default()
            };
            let volumes = Arc::new(FakeVolumes::default());
            let c = cloud_with_volumes(engine, cfg, drivers, inject, volumes.clone()).await;
            let flavor = c.flavor("small", 1, 512, 1).await;
            let (id, own) = server_booting(&c, &volumes, boot, &flavor).await;
            c.wait_status(&id, "ACTIVE").await;
            c.wait_ram_used(512).await;
            assert_eq!(fake.list().await.len(), 1);
            assert_root_is_volume(&fake, &id, &volumes, boot);
            if boot != Boot::Image {
                assert_eq!(volumes.volume_count(), 1, "{boot:?}");
                assert_eq!(volumes.attachment_count(), 1, "{boot:?}");
            }
            no_saga_left(&c, &id).await;
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE)
                    .await
                    .as_u16(),
                204
            );
            c.wait_gone(&id).await;
            c.wait_ram_used(0).await;
            assert!(fake.list().await.is_empty());
            no_volume_left(&c, &volumes, &id, own, &format!("{boot:?}")).await;
            c.stop().await;
        }
    }
}

#[tokio::test]
async fn an_agent_stopped_before_each_build_step_resumes_to_active() {
    for engine in engines().await {
        for boot in BOOTS {
            for k in 0..BUILD_STEPS {
                let what = format!("{boot:?}, step {k}");
                let mut cfg = base_cfg();
                cfg.fake_hosts = 1;
                let (fake, drivers) = one_host();
                let inject = Inject {
                    crash_before: Some(k),
                    ..Inject::default()
                };
                let volumes = Arc::new(FakeVolumes::default());
                let mut c =
                    cloud_with_volumes(engine, cfg, drivers.clone(), inject, volumes.clone()).await;
                let flavor = c.flavor("small", 1, 512, 1).await;
                let (id, own) = server_booting(&c, &volumes, boot, &flavor).await;
                // The build stops where the crash was injected.
                let saga = format!("build-{id}-0");
                for _ in 0..500 {
                    let steps = db::sagas::saga_steps(&mut *conn(&c.db).await, &saga)
                        .await
                        .expect("steps");
                    if steps.len() == k
                        && db::sagas::saga_get(&mut *conn(&c.db).await, &saga)
                            .await
                            .is_ok()
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let (_, srv) = c.get(&format!("/v2.1/servers/{id}"), ALICE).await;
                assert_eq!(srv["server"]["status"], "BUILD", "{what}");
                // The agent starts again over the same hypervisor.
                restart_agents_with(&mut c, drivers, volumes.clone()).await;
                c.wait_status(&id, "ACTIVE").await;
                c.wait_ram_used(512).await;
                let guests: Vec<InstanceId> =
                    fake.list().await.into_iter().map(|(g, _)| g).collect();
                assert_eq!(guests.len(), 1, "{what}");
                assert_eq!(guests[0].to_string(), id, "{what}");
                assert_root_is_volume(&fake, &id, &volumes, boot);
                if boot != Boot::Image {
                    assert_eq!(volumes.volume_count(), 1, "{what}");
                    assert_eq!(volumes.attachment_count(), 1, "{what}");
                }
                no_saga_left(&c, &id).await;
                let _ = own;
                c.stop().await;
            }
        }
    }
}

#[tokio::test]
async fn a_build_past_its_timeout_goes_to_error_and_stays_there() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 1;
        cfg.build_timeout_secs = 1;
        cfg.reconcile_interval_secs = 1;
        let (fake, drivers) = one_host();
        // The agent stops halfway (as a frozen one would): ports made, no guest.
        let inject = Inject {
            crash_before: Some(3),
            ..Inject::default()
        };
        let mut c = cloud_injecting(engine, cfg, drivers.clone(), inject).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        let srv = c.wait_status(&id, "ERROR").await;
        assert!(
            srv["fault"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("timed out")),
            "{srv}"
        );
        c.wait_ram_used(0).await;
        // The agent comes back and finds its build: it unwinds, the
        // server stays ERROR.
        restart_agents(&mut c, drivers).await;
        let saga = format!("build-{id}-0");
        for _ in 0..500 {
            if db::sagas::saga_get(&mut *conn(&c.db).await, &saga)
                .await
                .expect("saga")
                .state
                == SagaState::Failed
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        no_saga_left(&c, &id).await;
        let srv = c.wait_status(&id, "ERROR").await;
        assert_eq!(srv["status"], "ERROR");
        assert!(fake.list().await.is_empty());
        c.wait_ram_used(0).await;
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), ALICE)
                .await
                .as_u16(),
            204
        );
        c.wait_gone(&id).await;
        c.wait_ram_used(0).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn the_reconciler_releases_claims_with_no_instance() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 1;
        let (_fake, drivers) = one_host();
        let c = cloud_injecting(engine, cfg, drivers, Inject::default()).await;
        let ghost = InstanceId::new().to_string();
        let claim = Claim {
            host: "compute".into(),
            vcpus: 1,
            memory_mb: 256,
            disk_gb: 1,
        };
        assert!(
            db::hosts::allocation_claim(&mut *conn(&c.db).await, &ghost, &claim)
                .await
                .expect("claim")
        );
        c.wait_ram_used(256).await;
        let r = reconcile::run_once(&c.db, 600, 3600)
            .await
            .expect("reconcile");
        assert_eq!(r.released, vec![ghost.clone()]);
        assert!(r.timed_out.is_empty());
        c.wait_ram_used(0).await;
        // A second run finds nothing to do.
        let r = reconcile::run_once(&c.db, 600, 3600)
            .await
            .expect("reconcile");
        assert_eq!(r, reconcile::Reconciled::default());
        c.stop().await;
    }
}

#[tokio::test]
async fn the_agent_reconciler_destroys_guests_with_no_instance() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 1;
        cfg.reconcile_interval_secs = 1;
        let (fake, drivers) = one_host();
        let c = cloud_injecting(engine, cfg, drivers, Inject::default()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let keep: InstanceId = id.parse().expect("id");
        let spec = fake.spec(keep).expect("spec");
        let stray = stratus_compute::model::GuestSpec {
            id: InstanceId::new(),
            ..spec
        };
        fake.define(&stray).await.expect("stray");
        for _ in 0..500 {
            if fake.list().await.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let guests: Vec<InstanceId> = fake.list().await.into_iter().map(|(g, _)| g).collect();
        assert_eq!(guests, vec![keep]);
        c.stop().await;
    }
}

#[tokio::test]
async fn the_fake_driver_keeps_its_guests_across_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("compute.json");
    let a = FakeDriver::new("compute", 8, 8192, 100, false).with_state_file(file.clone());
    let spec = stratus_compute::model::GuestSpec {
        id: InstanceId::new(),
        name: "vm".into(),
        hostname: "vm".into(),
        project_id: "p".into(),
        vcpus: 1,
        memory_mb: 512,
        image: None,
        disks: Vec::new(),
        vifs: Vec::new(),
        user_data: None,
        key_data: None,
        metadata: Default::default(),
        dir: dir.path().join("vm"),
    };
    a.define(&spec).await.expect("define");
    a.start(spec.id).await.expect("start");
    drop(a);
    let b = FakeDriver::new("compute", 8, 8192, 100, false).with_state_file(file);
    assert_eq!(
        b.list().await,
        vec![(spec.id, stratus_compute::model::state::PowerState::Running)]
    );
    assert_eq!(b.spec(spec.id), Some(spec));
}

/// Puts the instance's placement through `place::run` by hand (the
/// scheduler is stopped, the API's cast waits for it in the queue).
async fn placement_by_hand(
    c: &Cloud,
    id: &str,
    inject: Inject,
) -> Result<bool, stratus_compute::ComputeError> {
    let inst = db::instances::instance_get(&mut *conn(&c.db).await, id)
        .await
        .expect("instance");
    let ctx = stratus_common::RequestContext::internal();
    let p = place::params(&ctx, &inst, 0, vec!["compute".to_owned()], 0);
    place::run(&c.db, &c.bus, &ctx, p, None, inject).await
}

#[tokio::test]
async fn a_redelivered_placement_resumes_after_each_step() {
    for engine in engines().await {
        for k in 0..3 {
            let (mut c, fake, _, flavor) =
                one_host_cloud(engine, base_cfg(), Inject::default()).await;
            let id = server_unscheduled(&mut c, &flavor).await;
            // A scheduler that died before step k (after the host was saved,
            // for k = 2: the cast that used to be lost).
            let crash = Inject {
                crash_before: Some(k),
                ..Inject::default()
            };
            assert!(!placement_by_hand(&c, &id, crash).await.expect("place"));
            // The API's cast comes back to a new scheduler: the placement
            // goes on from step k and the server builds.
            c.scheduler = Some(
                stratus_compute::start_scheduler(&c.config, &c.bus)
                    .await
                    .expect("scheduler"),
            );
            c.wait_status(&id, "ACTIVE").await;
            c.wait_ram_used(512).await;
            assert_eq!(fake.list().await.len(), 1, "step {k}");
            no_saga_left(&c, &id).await;
            c.stop().await;
        }
    }
}

#[tokio::test]
async fn a_placement_failing_at_each_step_leaves_nothing_held() {
    for engine in engines().await {
        for k in 0..3 {
            let (mut c, fake, _, flavor) =
                one_host_cloud(engine, base_cfg(), Inject::default()).await;
            let id = server_unscheduled(&mut c, &flavor).await;
            let fail = Inject {
                fail_before: Some(k),
                ..Inject::default()
            };
            let r = placement_by_hand(&c, &id, fail).await;
            assert!(matches!(r, Ok(false) | Err(_)), "step {k}: {r:?}");
            let inst = db::instances::instance_get(&mut *conn(&c.db).await, &id)
                .await
                .expect("instance");
            assert_eq!(inst.host, None, "step {k}: host left");
            assert!(
                db::hosts::allocation_get(&mut *conn(&c.db).await, &id)
                    .await
                    .expect("claim")
                    .is_none(),
                "step {k}: claim left"
            );
            c.wait_ram_used(0).await;
            assert!(fake.list().await.is_empty());
            no_saga_left(&c, &id).await;
            c.stop().await;
        }
    }
}

#[tokio::test]
async fn a_delete_stopped_before_each_step_finishes_on_recovery_and_twice_is_harmless() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 1;
        let (fake, drivers) = one_host();
        let c = cloud_injecting(engine, cfg.clone(), drivers, Inject::default()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let ctx = stratus_common::RequestContext::internal();
        let steps = saga::delete::steps().len();
        for k in 0..=steps {
            let id = c.server(ALICE, &format!("vm{k}"), &flavor).await;
            c.wait_status(&id, "ACTIVE").await;
            let inst = db::instances::instance_get(&mut *conn(&c.db).await, &id)
                .await
                .expect("instance");
            let inject = if k < steps {
                // The API went away before step k.
                Inject {
                    crash_before: Some(k),
                    ..Inject::default()
                }
            } else {
                Inject {
                    twice: true,
                    ..Inject::default()
                }
            };
            saga::delete::run_with(&c.db, &c.bus, &cfg, None, &ctx, &inst, inject)
                .await
                .expect("delete");
            // A restarted API finishes what it began.
            saga::recover(&c.db, &c.bus, &cfg, &super::harness::volumes())
                .await
                .expect("recover");
            c.wait_gone(&id).await;
            c.wait_ram_used(0).await;
            assert!(fake.list().await.is_empty(), "step {k}: a guest is left");
            no_saga_left(&c, &id).await;
        }
        c.stop().await;
    }
}

#[tokio::test]
async fn a_lost_reply_to_a_build_step_that_committed_is_not_undone() {
    for engine in engines().await {
        for k in 0..BUILD_STEPS {
            let mut cfg = base_cfg();
            cfg.fake_hosts = 1;
            let (fake, drivers) = one_host();
            let inject = Inject {
                lose_reply: Some(k),
                ..Inject::default()
            };
            let c = cloud_injecting(engine, cfg, drivers, inject).await;
            let flavor = c.flavor("small", 1, 512, 1).await;
            let id = c.server(ALICE, "vm", &flavor).await;
            c.wait_status(&id, "ACTIVE").await;
            c.wait_ram_used(512).await;
            assert_eq!(fake.list().await.len(), 1, "step {k}");
            no_saga_left(&c, &id).await;
            c.stop().await;
        }
    }
}
