//! `virtual_size` from format inspection while the data streams in: a real
//! qcow2 made by `qemu-img`, raw, formats without inspection, and data that
//! does not match its `disk_format` (the upload still succeeds).

use std::process::Command;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::*;

/// `qemu-img create -f qcow2 X 16M`, read back.
fn qcow2_16m() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("disk.qcow2");
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("16M")
        .status()
        .expect("qemu-img is installed");
    assert!(status.success(), "qemu-img create failed");
    std::fs::read(&path).expect("qcow2 file")
}

async fn upload_as(env: &Env, disk_format: &str, data: Vec<u8>) -> Value {
    let id = env
        .create_id(
            ALICE,
            json!({"name": disk_format, "disk_format": disk_format, "container_format": "bare"}),
        )
        .await;
    let r = env.upload(&id, ALICE, data).await;
    r.assert_status(StatusCode::NO_CONTENT);
    env.show(&id, ALICE).await
}

#[tokio::test]
async fn virtual_size_of_qcow2_raw_and_others() {
    let qcow2 = qcow2_16m();
    each_engine(|env| {
        let qcow2 = qcow2.clone();
        async move {
            // Before any data: null, as Glance shows it.
            let fresh = env.create(ALICE, json!({"name": "fresh"})).await;
            assert_eq!(fresh["virtual_size"], Value::Null, "{fresh}");

            let v = upload_as(&env, "qcow2", qcow2.clone()).await;
            assert_eq!(v["virtual_size"], 16 * 1024 * 1024, "{v}");
            assert_eq!(v["size"], qcow2.len() as u64, "{v}");

            let raw = pseudo_random(70_000, 9);
            let v = upload_as(&env, "raw", raw).await;
            assert_eq!(v["virtual_size"], 70_000, "{v}");
            let v = upload_as(&env, "iso", vec![0u8; 4096]).await;
            assert_eq!(v["virtual_size"], 4096, "{v}");

            // No inspection for vhdx; data that is not what its format says
            // gives no virtual size but never fails the upload.
            let v = upload_as(&env, "vhdx", vec![1u8; 1000]).await;
            assert_eq!(v["virtual_size"], Value::Null, "{v}");
            let v = upload_as(&env, "qcow2", b"not a qcow2 at all".to_vec()).await;
            assert_eq!(v["status"], "active", "{v}");
            assert_eq!(v["virtual_size"], Value::Null, "{v}");
            let v = upload_as(&env, "qcow2", Vec::new()).await;
            assert_eq!(v["status"], "active", "{v}");
            assert_eq!(v["virtual_size"], Value::Null, "{v}");

            // The same through a glance-direct import.
            let id = env
                .create_id(
                    ALICE,
                    json!({"name": "imported", "disk_format": "qcow2", "container_format": "bare"}),
                )
                .await;
            assert_eq!(
                env.stage(&id, ALICE, qcow2.clone()).await.status.as_u16(),
                204
            );
            let r = env.import(&id, ALICE, glance_direct()).await;
            assert_eq!(r.status.as_u16(), 202);
            let v = env.wait_status(&id, "active").await;
            assert_eq!(v["virtual_size"], 16 * 1024 * 1024, "{v}");
        }
    })
    .await;
}
