//! Volumes attached to and detached from servers through
//! `/servers/{id}/os-volume_attachments`, and the standard saga tests of
//! the attach and detach sagas: every step run twice is harmless; a
//! failure at each step of an attach leaves nothing attached or reserved,
//! and at each step of a detach leaves the volume attached as it was.
//! The volume service is the in-memory one (`FakeVolumes`), which keeps
//! Cinder's status rules.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use stratus_common::ids::{InstanceId, VolumeId};
use stratus_common::RequestContext;
use stratus_compute::bus::Bus;
use stratus_compute::clients::{FakeVolumes, StaticToken, Volumes};
use stratus_compute::db;
use stratus_compute::saga::{attach, Inject};
use stratus_compute::virt::fake::FakeDriver;
use stratus_compute::virt::VirtDriver;

use super::harness::{base_cfg, conn, engines, Cloud, Engine, Ext, ALICE};

const ATTACH_STEPS: usize = 4;
const DETACH_STEPS: usize = 4;

struct Setup {
    c: Cloud,
    fake: Arc<FakeDriver>,
    volumes: Arc<FakeVolumes>,
    server: String,
}

async fn setup(engine: Engine) -> Setup {
    let fake = Arc::new(FakeDriver::new("compute", 8, 8192, 100, false));
    let d: Arc<dyn VirtDriver> = fake.clone();
    let mut cfg = base_cfg();
    cfg.fake_hosts = 1;
    let ext = Ext::accept_all(Bus::in_memory());
    let volumes = ext.volumes.clone();
    let c = Cloud::start_custom(engine, cfg, Some(vec![("compute".to_owned(), d)]), ext).await;
    let flavor = c.flavor("small", 1, 512, 1).await;
    let server = c.server(ALICE, "vm", &flavor).await;
    c.wait_status(&server, "ACTIVE").await;
    Setup {
        c,
        fake,
        volumes,
        server,
    }
}

fn has_disk(s: &Setup, device: &str) -> bool {
    let id: InstanceId = s.server.parse().expect("id");
    s.fake
        .spec(id)
        .is_some_and(|g| g.disks.iter().any(|d| d.device == device))
}

fn path(s: &Setup) -> String {
    format!("/v2.1/servers/{}/os-volume_attachments", s.server)
}

async fn attach_api(s: &Setup, v: &VolumeId) -> (StatusCode, serde_json::Value) {
    s.c.post(
        &path(s),
        ALICE,
        json!({"volumeAttachment": {"volumeId": v.to_string()}}),
    )
    .await
}

#[tokio::test]
async fn attach_and_detach_through_the_api() {
    for engine in engines().await {
        let s = setup(engine).await;
        let v = s.volumes.create();
        let (st, body) = attach_api(&s, &v).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        assert_eq!(body["volumeAttachment"]["device"], "/dev/vdb");
        assert_eq!(body["volumeAttachment"]["volumeId"], v.to_string());
        assert_eq!(s.volumes.status(&v).as_deref(), Some("in-use"));
        assert!(has_disk(&s, "vdb"));

        let (_, server) = s.c.get(&format!("/v2.1/servers/{}", s.server), ALICE).await;
        assert_eq!(
            server["server"]["os-extended-volumes:volumes_attached"],
            json!([{"id": v.to_string()}])
        );
        let (st, list) = s.c.get(&path(&s), ALICE).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(list["volumeAttachments"].as_array().map(Vec::len), Some(1));

        // Nova's InvalidVolume (400) for a volume the server has already,
        // Cinder's for one in use, 404 for one that does not exist.
        let (st, _) = attach_api(&s, &v).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = attach_api(&s, &VolumeId::new()).await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        let st = s.c.delete(&format!("{}/{v}", path(&s)), ALICE).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        assert_eq!(s.volumes.status(&v).as_deref(), Some("available"));
        assert_eq!(s.volumes.attachment_count(), 0);
        assert!(!has_disk(&s, "vdb"));
        let st = s.c.delete(&format!("{}/{v}", path(&s)), ALICE).await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // Deleting the server lets its volumes go.
        let (st, _) = attach_api(&s, &v).await;
        assert_eq!(st, StatusCode::OK);
        let st =
            s.c.delete(&format!("/v2.1/servers/{}", s.server), ALICE)
                .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        s.c.wait_gone(&s.server).await;
        assert_eq!(s.volumes.status(&v).as_deref(), Some("available"));
        assert_eq!(s.volumes.attachment_count(), 0);
        s.c.stop().await;
    }
}

#[tokio::test]
async fn attaching_to_a_server_in_a_wrong_state_is_409() {
    for engine in engines().await {
        let s = setup(engine).await;
        let (st, _) =
            s.c.post(
                &format!("/v2.1/servers/{}/action", s.server),
                ALICE,
                json!({"lock": null}),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
        let v = s.volumes.create();
        let (st, _) = attach_api(&s, &v).await;
        assert_eq!(st, StatusCode::CONFLICT);
        assert_eq!(s.volumes.status(&v).as_deref(), Some("available"));
        s.c.stop().await;
    }
}

fn saga_ctx() -> RequestContext {
    RequestContext::internal()
}

fn volumes_of(s: &Setup) -> Volumes {
    Volumes {
        api: s.volumes.clone(),
        tokens: Arc::new(StaticToken(String::new())),
    }
}

async fn bdms_of(s: &Setup) -> Vec<db::bdms::VolumeBdm> {
    let id: InstanceId = s.server.parse().expect("id");
    db::bdms::bdm_list(&mut *conn(&s.c.db).await, &id)
        .await
        .expect("bdms")
}

async fn run_attach(s: &Setup, v: VolumeId, inject: Inject) -> stratus_compute::error::Result<()> {
    let id: InstanceId = s.server.parse().expect("id");
    let existing = bdms_of(s).await;
    let bdm = attach::new_bdm(id, v, &existing, None, false);
    attach::run(
        &s.c.db,
        &s.c.bus,
        &volumes_of(s),
        &saga_ctx(),
        attach::ATTACH,
        bdm,
        "compute",
        inject,
    )
    .await
}

#[tokio::test]
async fn an_attach_failing_at_each_step_leaves_nothing_attached_or_reserved() {
    for engine in engines().await {
        let s = setup(engine).await;
        for k in 0..ATTACH_STEPS {
            let v = s.volumes.create();
            let inject = Inject {
                fail_before: Some(k),
                ..Inject::default()
            };
            assert!(run_attach(&s, v, inject).await.is_err(), "step {k}");
            assert_eq!(
                s.volumes.status(&v).as_deref(),
                Some("available"),
                "step {k}"
            );
            assert_eq!(s.volumes.attachment_count(), 0, "step {k}");
            assert!(bdms_of(&s).await.is_empty(), "step {k}");
            assert!(!has_disk(&s, "vdb"), "step {k}");
        }
        // Every step twice: attached once.
        let v = s.volumes.create();
        let twice = Inject {
            twice: true,
            ..Inject::default()
        };
        run_attach(&s, v, twice).await.expect("attach twice");
        assert_eq!(s.volumes.status(&v).as_deref(), Some("in-use"));
        assert_eq!(s.volumes.attachment_count(), 1);
        assert!(has_disk(&s, "vdb"));
        s.c.stop().await;
    }
}

/// The volume service reserved the volume but its reply never came: the
/// retried step finds that reservation instead of making a second, and a
/// saga that unwinds anyway removes it.
#[tokio::test]
async fn a_reservation_whose_reply_was_lost_is_found_again() {
    for engine in engines().await {
        let s = setup(engine).await;
        let v = s.volumes.create();
        s.volumes.lose_next_reserve_reply();
        run_attach(&s, v, Inject::default())
            .await
            .expect("attach after a lost reply");
        assert_eq!(s.volumes.status(&v).as_deref(), Some("in-use"));
        assert_eq!(s.volumes.attachment_count(), 1);
        assert!(has_disk(&s, "vdb"));

        // Lost, and the saga fails at the next step: nothing stays reserved.
        let w = s.volumes.create();
        s.volumes.lose_next_reserve_reply();
        let inject = Inject {
            fail_before: Some(2),
            ..Inject::default()
        };
        assert!(run_attach(&s, w, inject).await.is_err());
        assert_eq!(s.volumes.status(&w).as_deref(), Some("available"));
        assert_eq!(s.volumes.attachment_count(), 1);
        s.c.stop().await;
    }
}

#[tokio::test]
async fn a_detach_failing_at_each_step_leaves_the_volume_attached() {
    for engine in engines().await {
        let s = setup(engine).await;
        let v = s.volumes.create();
        run_attach(&s, v, Inject::default()).await.expect("attach");
        for k in 0..DETACH_STEPS {
            let bdm = bdms_of(&s).await.pop().expect("bdm");
            let inject = Inject {
                fail_before: Some(k),
                ..Inject::default()
            };
            let r = attach::run(
                &s.c.db,
                &s.c.bus,
                &volumes_of(&s),
                &saga_ctx(),
                attach::DETACH,
                bdm,
                "compute",
                inject,
            )
            .await;
            assert!(r.is_err(), "step {k}");
            let now = bdms_of(&s).await;
            assert_eq!(now.len(), 1, "step {k}");
            assert_eq!(now[0].status, db::bdms::BdmStatus::Attached, "step {k}");
            assert_eq!(s.volumes.status(&v).as_deref(), Some("in-use"), "step {k}");
            assert_eq!(s.volumes.attachment_count(), 1, "step {k}");
            assert!(has_disk(&s, "vdb"), "step {k}");
        }
        let bdm = bdms_of(&s).await.pop().expect("bdm");
        let twice = Inject {
            twice: true,
            ..Inject::default()
        };
        attach::run(
            &s.c.db,
            &s.c.bus,
            &volumes_of(&s),
            &saga_ctx(),
            attach::DETACH,
            bdm,
            "compute",
            twice,
        )
        .await
        .expect("detach twice");
        assert!(bdms_of(&s).await.is_empty());
        assert_eq!(s.volumes.status(&v).as_deref(), Some("available"));
        assert_eq!(s.volumes.attachment_count(), 0);
        assert!(!has_disk(&s, "vdb"));
        s.c.stop().await;
    }
}

#[tokio::test]
async fn deleting_a_server_deletes_its_delete_on_termination_volumes() {
    for engine in engines().await {
        let s = setup(engine).await;
        let keep = s.volumes.create();
        let gone = s.volumes.create();
        for (v, dot) in [(keep, false), (gone, true)] {
            let body = json!({"volumeAttachment": {"volumeId": v.to_string(),
                "delete_on_termination": dot}});
            let (st, b, _) =
                s.c.call(
                    axum::http::Method::POST,
                    &path(&s),
                    ALICE,
                    Some(body),
                    Some("2.79"),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{b}");
            assert_eq!(b["volumeAttachment"]["delete_on_termination"], dot);
        }
        let (_, server) =
            s.c.get_v(&format!("/v2.1/servers/{}", s.server), ALICE, "2.79")
                .await;
        assert_eq!(
            server["server"]["os-extended-volumes:volumes_attached"],
            json!([{"id": keep.to_string(), "delete_on_termination": false},
                   {"id": gone.to_string(), "delete_on_termination": true}])
        );
        let st =
            s.c.delete(&format!("/v2.1/servers/{}", s.server), ALICE)
                .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        s.c.wait_gone(&s.server).await;
        assert_eq!(s.volumes.status(&keep).as_deref(), Some("available"));
        assert_eq!(s.volumes.status(&gone), None);
        assert_eq!(s.volumes.attachment_count(), 0);
        assert!(bdms_of(&s).await.is_empty());
        s.c.stop().await;
    }
}
