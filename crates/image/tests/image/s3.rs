//! The S3 store against a real radosgw (scripts/ceph/start.sh). Runs when
//! `STRATUS_TEST_S3` names an s3.env file, or when radosgw answers on
//! 127.0.0.1:7480 and `$TMPDIR/stratus-ceph/s3.env` exists; otherwise it is
//! skipped with a message, unless `STRATUS_TEST_REQUIRE_CEPH=1`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use futures::StreamExt;
use serde_json::json;
use stratus_image::config::{S3Config, StoreKind};
use stratus_image::store::{S3Store, Store, StoreError};
use stratus_image::ImageConfig;

use crate::harness::*;

fn s3_config() -> Option<S3Config> {
    let required = std::env::var("STRATUS_TEST_REQUIRE_CEPH").is_ok_and(|v| v == "1");
    let path = match std::env::var("STRATUS_TEST_S3") {
        Ok(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => {
            let answers = std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], 7480).into(),
                std::time::Duration::from_secs(1),
            )
            .is_ok();
            let default = std::env::temp_dir().join("stratus-ceph/s3.env");
            if !answers || !default.exists() {
                let msg = "no radosgw: set STRATUS_TEST_S3=DIR/s3.env (scripts/ceph/start.sh DIR)";
                assert!(!required, "{msg}");
                eprintln!("SKIPPED S3 store test: {msg}");
                return None;
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |k: &str| vars.get(k).map(|v| v.to_string()).unwrap_or_default();
    Some(S3Config {
        endpoint: get("S3_ENDPOINT"),
        // A bucket per run keeps runs apart.
        bucket: format!("stratus-test-{}", uuid::Uuid::new_v4().simple()),
        access_key: get("S3_ACCESS_KEY"),
        secret_key: get("S3_SECRET_KEY"),
        region: get("S3_REGION"),
    })
}

#[tokio::test]
async fn s3_store_through_the_api() {
    let Some(s3) = s3_config() else { return };
    let store = Arc::new(S3Store::new(&s3).await.expect("S3 store (bucket create)"));
    let t = stratus_db::testing::sqlite("image").await.expect("sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ImageConfig {
        store: StoreKind::S3,
        s3: s3.clone(),
        ..ImageConfig::default()
    };
    let env = Env::with_store(&t.db, cfg, store.clone(), dir.path().to_owned(), dir).await;

    // 20 MiB: several multipart parts.
    let data = pseudo_random(20 << 20, 3);
    let id = env.raw_image(ALICE, "s3").await;
    let r = env.upload(&id, ALICE, data.clone()).await;
    r.assert_status(StatusCode::NO_CONTENT);
    let v = env.show(&id, ADMIN).await;
    assert_eq!(v["checksum"], md5_hex(&data));
    assert_eq!(v["os_hash_value"], sha512_hex(&data));
    assert_eq!(v["direct_url"], format!("s3://{}/{id}", s3.bucket));
    assert_eq!(
        v["locations"][0]["metadata"]["endpoint"],
        s3.endpoint.as_str()
    );
    let r = env.download(&id, ALICE).await;
    assert_eq!(r.bytes.as_ref(), data.as_slice());

    let r = env.download_range(&id, ALICE, "bytes=-1000").await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes.as_ref(), &data[data.len() - 1000..]);

    // Straight from the store, as the compute agent reads it.
    let mut s = store.get(&id).await.expect("object");
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c.expect("chunk").len();
    }
    assert_eq!(n, data.len());

    // The location read straight from the store, as the image cache does.
    let mut s = crate::client::open_location(Some(&s3), v["direct_url"].as_str().expect("url"))
        .await
        .expect("open");
    let mut got = Vec::new();
    while let Some(c) = s.next().await {
        got.extend_from_slice(&c.expect("chunk"));
    }
    assert_eq!(md5_hex(&got), md5_hex(&data));

    // An empty image is valid in Glance (size 0, active).
    let empty = env.raw_image(ALICE, "empty").await;
    assert_eq!(
        env.upload(&empty, ALICE, Vec::new()).await.status,
        StatusCode::NO_CONTENT
    );
    let v = env.show(&empty, ALICE).await;
    assert_eq!(
        (v["status"].as_str(), v["size"].as_i64()),
        (Some("active"), Some(0))
    );
    assert_eq!(v["checksum"], md5_hex(b""));
    assert!(env.download(&empty, ALICE).await.bytes.is_empty());
    env.delete(&empty, ALICE).await;

    // A broken upload leaves no object and the image queued.
    let id2 = env.raw_image(ALICE, "broken").await;
    let body = broken_off(vec![vec![1u8; 9 << 20]]);
    let r = env.put_stream(&id2, ALICE, "file", body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(env.status(&id2).await, "queued");
    assert!(matches!(
        store.get(&id2).await,
        Err(StoreError::NotFound(_))
    ));

    // Deleting the image deletes the object.
    assert_eq!(env.delete(&id, ALICE).await.status, StatusCode::NO_CONTENT);
    assert!(matches!(store.get(&id).await, Err(StoreError::NotFound(_))));

    t.cleanup().await;
}

/// 200 MiB through multipart upload and streamed download.
#[tokio::test]
async fn s3_large_streaming_upload() {
    let Some(s3) = s3_config() else { return };
    let store = Arc::new(S3Store::new(&s3).await.expect("S3 store (bucket create)"));
    let t = stratus_db::testing::sqlite("image").await.expect("sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env::with_store(
        &t.db,
        ImageConfig::default(),
        store,
        dir.path().to_owned(),
        dir,
    )
    .await;
    crate::data::run_large_upload(&env, 200 << 20).await;
    t.cleanup().await;
}

/// glance-direct into S3: staged on local disk, imported into the bucket
/// (several multipart parts), staged data removed, `stores` named `s3`;
/// a failed import leaves no object; deleting an importing image leaves
/// nothing in the bucket.
#[tokio::test]
async fn s3_glance_direct_import() {
    let Some(s3) = s3_config() else { return };
    let store = Arc::new(S3Store::new(&s3).await.expect("S3 store (bucket create)"));
    let t = stratus_db::testing::sqlite("image").await.expect("sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ImageConfig {
        store: StoreKind::S3,
        s3: s3.clone(),
        ..ImageConfig::default()
    };
    let env = Env::with_store(&t.db, cfg, store.clone(), dir.path().to_owned(), dir).await;
    let r = env.get("/v2/info/stores", ALICE).await;
    assert_eq!(
        r.json(),
        json!({"stores": [{"id": "s3", "default": "true"}]})
    );

    let data = pseudo_random(20 << 20, 21);
    let id = env.raw_image(ALICE, "s3-import").await;
    assert_eq!(
        env.stage(&id, ALICE, data.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    assert!(matches!(store.get(&id).await, Err(StoreError::NotFound(_))));
    let r = env
        .import(
            &id,
            ALICE,
            json!({"method": {"name": "glance-direct"}, "stores": ["s3"]}),
        )
        .await;
    r.assert_status(StatusCode::ACCEPTED);
    let v = env.wait_status(&id, "active").await;
    assert_eq!(v["checksum"], md5_hex(&data), "{v}");
    assert_eq!(v["os_hash_value"], sha512_hex(&data), "{v}");
    assert_eq!(v["virtual_size"], data.len() as u64, "{v}");
    assert_eq!(v["direct_url"], format!("s3://{}/{id}", s3.bucket));
    assert_eq!(v["os_glance_failed_import"], "", "{v}");
    env.wait_until("staged data removed", |e| e.staging_files().is_empty())
        .await;
    let r = env.download(&id, ALICE).await;
    assert_eq!(md5_hex(&r.bytes), md5_hex(&data));

    // Lost staged data: the import fails, nothing lands in the bucket.
    let lost = env.raw_image(ALICE, "lost").await;
    assert_eq!(
        env.stage(&lost, ALICE, b"gone".to_vec()).await.status,
        StatusCode::NO_CONTENT
    );
    std::fs::remove_file(env.staging_dir.join(&lost)).expect("remove staged");
    let r = env.import(&lost, ALICE, glance_direct()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let v = env.wait_status(&lost, "queued").await;
    assert_eq!(v["os_glance_failed_import"], "s3", "{v}");
    assert!(matches!(
        store.get(&lost).await,
        Err(StoreError::NotFound(_))
    ));

    // Deleted while importing: neither the bucket nor the staging folder
    // keeps anything, whichever finishes first.
    let del = env.raw_image(ALICE, "del").await;
    assert_eq!(
        env.stage(&del, ALICE, pseudo_random(12 << 20, 4))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = env.import(&del, ALICE, glance_direct()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(env.delete(&del, ALICE).await.status, StatusCode::NO_CONTENT);
    env.wait_until("staging empty", |e| e.staging_files().is_empty())
        .await;
    let mut gone = false;
    for _ in 0..300 {
        if matches!(store.get(&del).await, Err(StoreError::NotFound(_))) {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gone, "object of the deleted image is left in the bucket");

    t.cleanup().await;
}
