//! `rebuild` and `createImage` through the API, the bus and a fake host:
//! the guest is made again from the new image (stopped servers stay
//! stopped), the request's attributes per microversion, Nova's 400s and
//! 409s; a snapshot's image carries Nova's properties, gets the guest's
//! disk, and is deleted when the upload fails.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_common::ids::InstanceId;
use stratus_compute::bus::Bus;
use stratus_compute::clients::{AcceptAll, ImageApi, ImageInfo};
use stratus_compute::error::{ComputeError, Result};
use stratus_compute::model::state::PowerState;
use stratus_compute::virt::fake::FakeDriver;
use stratus_compute::virt::VirtDriver;
use stratus_compute::AgentServices;

use super::harness::*;

const NEW_IMAGE: &str = "0c1d6a3e-5b8f-4f3e-9a44-7a2f6f1c9e01";
const BIG_IMAGE: &str = "0c1d6a3e-5b8f-4f3e-9a44-7a2f6f1c9e02";
const MISSING: &str = "0c1d6a3e-5b8f-4f3e-9a44-7a2f6f1c9e03";

/// An image service that knows a few images and records what compute
/// makes of it: created records, uploads (their size) and deletes.
#[derive(Default)]
struct Images {
    created: Mutex<Vec<(String, Value)>>,
    uploaded: Mutex<Vec<(String, u64)>>,
    deleted: Mutex<Vec<String>>,
    fail_upload: bool,
}

#[async_trait]
impl ImageApi for Images {
    async fn image_get(&self, _token: &str, id: &str) -> Result<ImageInfo> {
        let props = BTreeMap::from([
            ("hw_disk_bus".to_owned(), "virtio".to_owned()),
            ("img_signature".to_owned(), "sig".to_owned()),
        ]);
        match id {
            MISSING => Err(ComputeError::BadRequest(format!(
                "Image {id} could not be found."
            ))),
            _ => Ok(ImageInfo {
                id: id.to_owned(),
                name: "img".into(),
                status: "active".into(),
                min_disk: 0,
                min_ram: if id == BIG_IMAGE { 100_000 } else { 64 },
                properties: props,
                disk_format: Some("qcow2".into()),
                container_format: Some("bare".into()),
            }),
        }
    }
    async fn image_create(&self, _token: &str, body: &Value) -> Result<String> {
        let id = uuid::Uuid::new_v4().to_string();
        self.created
            .lock()
            .expect("lock")
            .push((id.clone(), body.clone()));
        Ok(id)
    }
    async fn image_upload(&self, _token: &str, id: &str, path: &std::path::Path) -> Result<()> {
        if self.fail_upload {
            return Err(ComputeError::Internal("injected upload failure".into()));
        }
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.uploaded
            .lock()
            .expect("lock")
            .push((id.to_owned(), len));
        Ok(())
    }
    async fn image_delete(&self, _token: &str, id: &str) -> Result<()> {
        self.deleted.lock().expect("lock").push(id.to_owned());
        Ok(())
    }
    fn image_url(&self, id: &str) -> String {
        format!("http://image.test:9292/images/{id}")
    }
}

/// A cloud of one fake host over `images` (the API's and the agent's).
async fn cloud(engine: Engine, images: Arc<Images>) -> (Cloud, Arc<FakeDriver>, tempfile::TempDir) {
    let mut cfg = base_cfg();
    cfg.fake_hosts = 1;
    let fake = Arc::new(FakeDriver::new("compute", 8, 8192, 100, false));
    let driver: Arc<dyn VirtDriver> = fake.clone();
    let mut ext = Ext::accept_all(Bus::in_memory());
    ext.images = images.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    ext.agent = Some(AgentServices {
        images,
        volumes: ext.volumes.clone(),
        ..AgentServices::accept_all(dir.path().join("instances"))
    });
    let c = Cloud::start_custom(engine, cfg, Some(vec![("compute".into(), driver)]), ext).await;
    (c, fake, dir)
}

async fn action(c: &Cloud, id: &str, token: &str, v: &str, body: Value) -> (StatusCode, Value) {
    let (s, b, _) = c
        .call(
            Method::POST,
            &format!("/v2.1/servers/{id}/action"),
            token,
            Some(body),
            Some(v),
        )
        .await;
    (s, b)
}

fn iid(s: &str) -> InstanceId {
    s.parse().expect("instance id")
}

#[tokio::test]
async fn rebuild_makes_the_guest_again_from_the_new_image() {
    for engine in engines().await {
        let (c, fake, _dir) = cloud(engine, Arc::new(Images::default())).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "web", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let (s, v) = c
            .post(
                "/v2.1/os-keypairs",
                ALICE,
                json!({"keypair": {"name": "k2", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGc1 e2e"}}),
            )
            .await;
        assert!(s.is_success(), "{v}");

        // 2.1: the short view, adminPass, REBUILD.
        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.1",
            json!({"rebuild": {"imageRef": NEW_IMAGE, "name": "web2", "metadata": {"role": "db"},
                "adminPass": "secret", "accessIPv4": "192.0.2.7"}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let srv = &v["server"];
        assert_eq!(srv["adminPass"], "secret");
        assert_eq!(srv["status"], "REBUILD", "{v}");
        assert_eq!(srv["progress"], 0, "{v}");
        assert_eq!(srv["name"], "web2");
        assert_eq!(srv["image"]["id"], NEW_IMAGE);
        assert_eq!(srv["accessIPv4"], "192.0.2.7");
        assert!(srv.get("OS-EXT-STS:task_state").is_none(), "{v}");
        assert!(srv.get("key_name").is_none(), "{v}");
        let done = c.wait_status(&id, "ACTIVE").await;
        assert_eq!(done["image"]["id"], NEW_IMAGE);
        assert_eq!(done["metadata"], json!({"role": "db"}));
        let spec = fake.spec(iid(&id)).expect("guest");
        assert_eq!(
            spec.image.map(|i| i.id.to_string()).as_deref(),
            Some(NEW_IMAGE)
        );
        assert_eq!(spec.name, "web2");
        assert_eq!(fake.power_state(iid(&id)), Some(PowerState::Running));
        let (_, acts) = c
            .get(&format!("/v2.1/servers/{id}/os-instance-actions"), ALICE)
            .await;
        let names: Vec<&str> = acts["instanceActions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter_map(|a| a["action"].as_str())
            .collect();
        assert!(names.contains(&"rebuild"), "{acts}");

        // 2.57: key pair set, user data replaced; 2.75: the full view.
        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.75",
            json!({"rebuild": {"imageRef": IMAGE, "key_name": "k2", "user_data": "aGVsbG8="}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["server"]["key_name"], "k2", "{v}");
        assert_eq!(v["server"]["user_data"], "aGVsbG8=", "{v}");
        assert_eq!(v["server"]["OS-EXT-STS:task_state"], "rebuilding", "{v}");
        assert!(v["server"]["adminPass"].is_string());
        c.wait_status(&id, "ACTIVE").await;
        let spec = fake.spec(iid(&id)).expect("guest");
        assert_eq!(spec.user_data.as_deref(), Some("aGVsbG8="));
        assert!(spec.key_data.is_some_and(|k| k.contains("AAAAC3")));
        // 2.54: key_name null unsets it.
        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.54",
            json!({"rebuild": {"imageRef": IMAGE, "key_name": null}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v["server"]["key_name"], Value::Null, "{v}");
        c.wait_status(&id, "ACTIVE").await;

        // Nova's 400s.
        for (body, want) in [
            (
                json!({"rebuild": {"imageRef": MISSING}}),
                "Cannot find image for rebuild",
            ),
            (
                json!({"rebuild": {"imageRef": BIG_IMAGE}}),
                "memory is too small",
            ),
            (
                json!({"rebuild": {"imageRef": IMAGE, "key_name": "nope"}}),
                "Invalid key_name",
            ),
        ] {
            let (s, v) = action(&c, &id, ALICE, "2.54", body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
            assert!(v.to_string().contains(want), "{v}");
        }

        // A stopped server is rebuilt stopped.
        let (s, _) = action(&c, &id, ALICE, "2.1", json!({"os-stop": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        c.wait_status(&id, "SHUTOFF").await;
        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.1",
            json!({"rebuild": {"imageRef": NEW_IMAGE}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let srv = c.wait_status(&id, "SHUTOFF").await;
        assert_eq!(srv["image"]["id"], NEW_IMAGE);
        assert_eq!(fake.power_state(iid(&id)), Some(PowerState::Shutdown));

        // 409: locked (for its owner), and a task in progress.
        let (s, _) = action(&c, &id, ADMIN, "2.1", json!({"lock": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.1",
            json!({"rebuild": {"imageRef": IMAGE}}),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        let (s, _) = action(&c, &id, ADMIN, "2.1", json!({"unlock": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, _) = action(&c, &id, ALICE, "2.1", json!({"os-start": null})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.1",
            json!({"rebuild": {"imageRef": IMAGE}}),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        c.wait_status(&id, "ACTIVE").await;
        // A reader may not.
        let (s, _) = action(
            &c,
            &id,
            READER,
            "2.1",
            json!({"rebuild": {"imageRef": IMAGE}}),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        c.stop().await;
    }
}

#[tokio::test]
async fn create_image_uploads_the_guest_disk_with_novas_properties() {
    for engine in engines().await {
        let images = Arc::new(Images::default());
        let (c, _fake, _dir) = cloud(engine, images.clone()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "web", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;

        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.45",
            json!({"createImage": {"name": "snap", "metadata": {"purpose": "backup"}}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let image = v["image_id"].as_str().expect("image_id").to_owned();
        c.wait_status(&id, "ACTIVE").await;
        let created = images.created.lock().expect("lock").clone();
        let (cid, body) = created.last().expect("a created image").clone();
        assert_eq!(cid, image);
        assert_eq!(body["name"], "snap");
        assert_eq!(body["image_type"], "snapshot");
        assert_eq!(body["instance_uuid"], id.as_str());
        assert_eq!(body["base_image_ref"], IMAGE);
        assert_eq!(body["user_id"], "u-alice");
        assert_eq!(body["purpose"], "backup");
        assert_eq!(body["hw_disk_bus"], "virtio");
        assert!(body.get("img_signature").is_none(), "{body}");
        assert_eq!(body["visibility"], "private");
        assert_eq!(body["min_ram"], 64);
        assert_eq!(body["min_disk"], 1);
        assert_eq!(body["disk_format"], "qcow2");
        let uploaded = images.uploaded.lock().expect("lock").clone();
        assert!(
            uploaded.iter().any(|(u, len)| *u == image && *len > 0),
            "{uploaded:?}"
        );

        // Below 2.45: no body, the image's Location.
        let (s, v, h) = c
            .call(
                Method::POST,
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                Some(json!({"createImage": {"name": "old"}})),
                Some("2.44"),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        assert_eq!(v, Value::Null);
        let loc = h
            .get("location")
            .and_then(|l| l.to_str().ok())
            .expect("Location");
        assert!(loc.starts_with("http://image.test:9292/images/"), "{loc}");
        c.wait_status(&id, "ACTIVE").await;

        // Bad bodies.
        for bad in [
            json!({"createImage": {}}),
            json!({"createImage": {"name": "s", "x": 1}}),
        ] {
            let (s, v) = action(&c, &id, ALICE, "2.45", bad).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        }
        c.stop().await;
    }
}

#[tokio::test]
async fn a_failed_snapshot_upload_deletes_its_image() {
    for engine in engines().await {
        let images = Arc::new(Images {
            fail_upload: true,
            ..Images::default()
        });
        let (c, _fake, _dir) = cloud(engine, images.clone()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "web", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let (s, v) = action(
            &c,
            &id,
            ALICE,
            "2.45",
            json!({"createImage": {"name": "snap"}}),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let image = v["image_id"].as_str().expect("image_id").to_owned();
        let mut gone = false;
        for _ in 0..500 {
            if images.deleted.lock().expect("lock").contains(&image) {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(gone, "the image of a failed snapshot stays");
        let srv = c.wait_status(&id, "ACTIVE").await;
        assert_eq!(srv["OS-EXT-STS:task_state"], Value::Null);
        c.stop().await;
    }
}

/// `AcceptAll` stays a complete image API for tests that snapshot nothing.
#[test]
fn accept_all_makes_images() {
    let _: &dyn ImageApi = &AcceptAll;
}
