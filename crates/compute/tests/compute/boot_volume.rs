//! Boot from volume (`block_device_mapping_v2` with a volume as the boot
//! disk): the API's checks with Nova's errors, the guest's root disk is
//! the volume (the fake driver records the `GuestSpec`), the server lists
//! it, and its delete lets the user's volume go and deletes the one made
//! from the image, which the API made with the user's token (so in the
//! user's project). The volume service is the in-memory one.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use stratus_common::ids::VolumeId;
use stratus_compute::clients::{FakeVolumes, VolumeApi};
use stratus_compute::model::DiskSource;
use stratus_compute::virt::fake::FakeDriver;
use stratus_compute::virt::VirtDriver;

use super::harness::{base_cfg, engines, Cloud, Ext, ALICE, IMAGE, NETWORK};

struct Setup {
    c: Cloud,
    fake: Arc<FakeDriver>,
    volumes: Arc<FakeVolumes>,
    flavor: String,
}

async fn setup(engine: super::harness::Engine) -> Setup {
    let mut cfg = base_cfg();
    cfg.fake_hosts = 1;
    let fake = Arc::new(FakeDriver::new("compute", 8, 8192, 100, false));
    let d: Arc<dyn VirtDriver> = fake.clone();
    let ext = Ext::accept_all(stratus_compute::bus::Bus::in_memory());
    let volumes = ext.volumes.clone();
    let c = Cloud::start_custom(engine, cfg, Some(vec![("compute".to_owned(), d)]), ext).await;
    let flavor = c.flavor("small", 1, 512, 1).await;
    Setup {
        c,
        fake,
        volumes,
        flavor,
    }
}

fn from_volume(flavor: &str, v: &str) -> Value {
    json!({"server": {"name": "vm", "flavorRef": flavor, "networks": [{"uuid": NETWORK}],
        "block_device_mapping_v2": [{"uuid": v, "boot_index": 0,
            "source_type": "volume", "destination_type": "volume"}]}})
}

fn from_image(flavor: &str, size: Option<i64>) -> Value {
    let mut m = json!({"uuid": IMAGE, "boot_index": 0, "source_type": "image",
        "destination_type": "volume"});
    if let Some(n) = size {
        m["volume_size"] = json!(n);
    }
    json!({"server": {"name": "vm", "flavorRef": flavor, "networks": [{"uuid": NETWORK}],
        "block_device_mapping_v2": [m]}})
}

/// The volume of the guest's root disk.
fn root_volume(s: &Setup, id: &str) -> VolumeId {
    let spec = s.fake.spec(id.parse().expect("id")).expect("spec");
    assert_eq!(spec.disks.len(), 1, "{spec:?}");
    assert_eq!(spec.disks[0].device, "vda");
    assert_eq!(spec.disks[0].boot_index, Some(0));
    let DiskSource::Volume { volume_id, .. } = &spec.disks[0].source else {
        panic!("the root disk is not a volume: {spec:?}");
    };
    volume_id.parse().expect("volume id")
}

async fn create(s: &Setup, body: Value) -> (StatusCode, Value) {
    s.c.post("/v2.1/servers", ALICE, body).await
}

#[tokio::test]
async fn boot_from_the_users_volume_keeps_it() {
    for engine in engines().await {
        let s = setup(engine).await;
        let v = s.volumes.create();
        let (st, body) = create(&s, from_volume(&s.flavor, &v.to_string())).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let id = body["server"]["id"].as_str().expect("id").to_owned();
        s.c.wait_status(&id, "ACTIVE").await;
        assert_eq!(root_volume(&s, &id), v);
        assert_eq!(s.volumes.status(&v).as_deref(), Some("in-use"));
        let (_, srv) =
            s.c.get_v(&format!("/v2.1/servers/{id}"), ALICE, "2.79")
                .await;
        assert_eq!(
            srv["server"]["os-extended-volumes:volumes_attached"],
            json!([{"id": v.to_string(), "delete_on_termination": false}])
        );
        // In use now: a second server cannot boot from it.
        let (st, body) = create(&s, from_volume(&s.flavor, &v.to_string())).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["badRequest"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("status must be 'available'")),
            "{body}"
        );
        let st = s.c.delete(&format!("/v2.1/servers/{id}"), ALICE).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        s.c.wait_gone(&id).await;
        assert_eq!(s.volumes.status(&v).as_deref(), Some("available"));
        assert_eq!(s.volumes.attachment_count(), 0);
        s.c.stop().await;
    }
}

#[tokio::test]
async fn boot_from_a_volume_made_from_the_image_deletes_it_with_the_server() {
    for engine in engines().await {
        let s = setup(engine).await;
        // A mapping naming a volume of its own is not taken at its word:
        // the launch makes the volume, and this one is left alone.
        let other = s.volumes.create();
        let mut body = from_image(&s.flavor, Some(1));
        body["server"]["block_device_mapping_v2"][0]["volume_id"] = json!(other.to_string());
        let (st, body) = create(&s, body).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let id = body["server"]["id"].as_str().expect("id").to_owned();
        s.c.wait_status(&id, "ACTIVE").await;
        let v = root_volume(&s, &id);
        assert_ne!(v, other);
        assert_eq!(s.volumes.status(&other).as_deref(), Some("available"));
        s.volumes
            .volume_delete(ALICE, &other)
            .await
            .expect("the other volume goes");
        assert_eq!(s.volumes.status(&v).as_deref(), Some("in-use"));
        assert_eq!(s.volumes.volume_count(), 1);
        // Made by the API with the user's token: the user's volume, in
        // the user's project, not the service's.
        assert_eq!(s.volumes.creator(&v).as_deref(), Some(ALICE));
        let (_, srv) =
            s.c.get_v(&format!("/v2.1/servers/{id}"), ALICE, "2.79")
                .await;
        // Nova's default for a volume made at boot: deleted with the server.
        assert_eq!(
            srv["server"]["os-extended-volumes:volumes_attached"],
            json!([{"id": v.to_string(), "delete_on_termination": true}])
        );
        let st = s.c.delete(&format!("/v2.1/servers/{id}"), ALICE).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        s.c.wait_gone(&id).await;
        assert_eq!(s.volumes.status(&v), None);
        assert_eq!(s.volumes.volume_count(), 0);
        assert_eq!(s.volumes.attachment_count(), 0);
        s.c.stop().await;
    }
}

#[tokio::test]
async fn boot_from_volume_requests_are_checked_with_novas_errors() {
    for engine in engines().await {
        let s = setup(engine).await;
        let bad = |body: &Value, want: &str| {
            assert!(
                body["badRequest"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(want)),
                "{want}: {body}"
            );
        };
        // No size for the volume to make from the image.
        let (st, body) = create(&s, from_image(&s.flavor, None)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        bad(
            &body,
            "Block Device Mapping is Invalid: Images with destination_type 'volume' need to have a non-zero size specified",
        );
        let (st, body) = create(&s, from_image(&s.flavor, Some(0))).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        // A volume that does not exist (or is another project's).
        let missing = VolumeId::new().to_string();
        let (st, body) = create(&s, from_volume(&s.flavor, &missing)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        bad(
            &body,
            &format!("Block Device Mapping is Invalid: failed to get volume {missing}."),
        );
        let (st, body) = create(&s, from_volume(&s.flavor, "not-a-uuid")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        // Nothing was made for any of them.
        assert_eq!(s.volumes.volume_count(), 0);
        let (_, list) = s.c.get("/v2.1/servers", ALICE).await;
        assert_eq!(list["servers"].as_array().map(Vec::len), Some(0), "{list}");
        s.c.stop().await;
    }
}

/// A server that never reached a host (the scheduler is down) still owns
/// the volume the launch made for it: its delete takes it.
#[tokio::test]
async fn a_volume_made_for_a_server_never_built_goes_with_its_delete() {
    for engine in engines().await {
        let mut s = setup(engine).await;
        if let Some(w) = s.c.scheduler.take() {
            w.stop().await;
        }
        let (st, body) = create(&s, from_image(&s.flavor, Some(1))).await;
        assert_eq!(st, StatusCode::ACCEPTED, "{body}");
        let id = body["server"]["id"].as_str().expect("id").to_owned();
        assert_eq!(s.volumes.volume_count(), 1);
        let st = s.c.delete(&format!("/v2.1/servers/{id}"), ALICE).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        s.c.wait_gone(&id).await;
        assert_eq!(s.volumes.volume_count(), 0);
        assert_eq!(s.volumes.attachment_count(), 0);
        s.c.stop().await;
    }
}
