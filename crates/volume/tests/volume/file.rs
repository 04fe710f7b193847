//! The file backend with real qemu-img: through the API and manager (blank,
//! snapshot, from snapshot, clone, extend, delete, connection info), and
//! from an image file directly.

use std::sync::Arc;

use axum::http::Method;
use serde_json::json;
use stratus_common::ids::VolumeId;
use stratus_volume::config::FileFormat;
use stratus_volume::manager::fake::FakeBackend;
use stratus_volume::manager::file::FileBackend;
use stratus_volume::manager::Backend;

use crate::harness::*;

const GIB: u64 = 1 << 30;

fn info(path: &std::path::Path) -> serde_json::Value {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path)
        .output()
        .expect("qemu-img");
    serde_json::from_slice(&out.stdout).expect("qemu-img json")
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn file_volumes_through_the_api() {
    for format in [FileFormat::Raw, FileFormat::Qcow2] {
        for t in stratus_db::testing::test_dbs("volume").await.expect("dbs") {
            let dir = tempfile::tempdir().expect("tempdir");
            let backend = Arc::new(
                FileBackend::new(dir.path().to_owned(), format)
                    .await
                    .expect("backend"),
            );
            let env = Env::with_backend(&t.db, backend.clone(), Arc::new(FakeBackend::new())).await;
            let u = format!("/v3/{P_ALICE}/volumes");
            let id = env.volume(ALICE, P_ALICE, json!({"size": 1})).await;
            let vid: VolumeId = id.parse().expect("id");
            let i = info(&backend.volume_path(&vid));
            assert_eq!(i["format"], format.as_str());
            assert_eq!(i["virtual-size"], GIB);

            env.post(
                &format!("{u}/{id}/action"),
                ALICE,
                json!({"os-extend": {"new_size": 2}}),
            )
            .await
            .ok(202);
            env.wait(ALICE, P_ALICE, "volumes", &id, "available").await;
            assert_eq!(info(&backend.volume_path(&vid))["virtual-size"], 2 * GIB);

            let s = env
                .post(
                    &format!("/v3/{P_ALICE}/snapshots"),
                    ALICE,
                    json!({"snapshot": {"volume_id": id}}),
                )
                .await
                .ok(202);
            let sid = s["snapshot"]["id"].as_str().expect("id").to_owned();
            env.wait(ALICE, P_ALICE, "snapshots", &sid, "available")
                .await;
            let from_snap = env
                .volume(ALICE, P_ALICE, json!({"snapshot_id": sid, "size": 3}))
                .await;
            let clone = env
                .volume(ALICE, P_ALICE, json!({"source_volid": id}))
                .await;
            let fs: VolumeId = from_snap.parse().expect("id");
            assert_eq!(info(&backend.volume_path(&fs))["virtual-size"], 3 * GIB);
            let cl: VolumeId = clone.parse().expect("id");
            assert_eq!(info(&backend.volume_path(&cl))["virtual-size"], 2 * GIB);
            assert_eq!(files(dir.path()).len(), 4, "{:?}", files(dir.path()));

            // The attachment's connection info names the file.
            let a = env.call_v(Method::POST, &format!("/v3/{P_ALICE}/attachments"), Some(ALICE), Some("3.44"),
                Some(json!({"attachment": {"volume_uuid": id, "instance_uuid": uuid::Uuid::new_v4().to_string(), "connector": {"host": "h"}}}))).await.ok(200);
            let ci = &a["attachment"]["connection_info"];
            assert_eq!(ci["driver_volume_type"], "file");
            assert_eq!(
                ci["data"]["device_path"],
                backend.volume_path(&vid).to_string_lossy().as_ref()
            );
            assert_eq!(ci["data"]["format"], format.as_str());
            let aid = a["attachment"]["id"].as_str().expect("id").to_owned();
            env.call_v(
                Method::DELETE,
                &format!("/v3/{P_ALICE}/attachments/{aid}"),
                Some(ALICE),
                Some("3.44"),
                None,
            )
            .await
            .ok(200);

            // Cascade delete and the others: no file left.
            env.call(
                Method::DELETE,
                &format!("{u}/{id}?cascade=true"),
                ALICE,
                None,
            )
            .await
            .ok(202);
            env.call(Method::DELETE, &format!("{u}/{from_snap}"), ALICE, None)
                .await
                .ok(202);
            env.call(Method::DELETE, &format!("{u}/{clone}"), ALICE, None)
                .await
                .ok(202);
            for v in [&id, &from_snap, &clone] {
                env.wait_gone(ALICE, P_ALICE, "volumes", v).await;
            }
            assert_eq!(files(dir.path()), Vec::<String>::new());
            t.cleanup().await;
        }
    }
}

#[tokio::test]
async fn a_volume_from_an_image_file_is_converted_and_grown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("image.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg("100M")
        .status()
        .expect("qemu-img");
    assert!(st.success());
    let vols = dir.path().join("vols");
    let b = FileBackend::new(vols.clone(), FileFormat::Raw)
        .await
        .expect("backend");
    let id = VolumeId::new();
    b.create_from_image(&id, 1, &image, "qcow2")
        .await
        .expect("from image");
    let i = info(&b.volume_path(&id));
    assert_eq!(i["format"], "raw");
    assert_eq!(i["virtual-size"], GIB);
    // An image larger than the volume is refused, and leaves no file.
    let big = dir.path().join("big.qcow2");
    let st = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&big)
        .arg("2G")
        .status()
        .expect("qemu-img");
    assert!(st.success());
    let id2 = VolumeId::new();
    assert!(b.create_from_image(&id2, 1, &big, "qcow2").await.is_err());
    assert!(!b.volume_path(&id2).exists());
    // Unknown formats are refused; deleting twice is fine.
    assert!(b
        .create_from_image(&id2, 1, &image, "nonsense")
        .await
        .is_err());
    b.delete(&id).await.expect("delete");
    b.delete(&id).await.expect("delete again");
    assert_eq!(files(&vols), Vec::<String>::new());
}
