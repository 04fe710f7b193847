//! Uploading and downloading image data: hashes, streaming, the status
//! machine, broken uploads, deactivation and store locations.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn upload_then_download_with_content_length() {
    each_engine(|env| async move {
        let id = env
            .create_id(
                ALICE,
                json!({"name": "img", "disk_format": "qcow2", "container_format": "bare"}),
            )
            .await;
        // No data yet: Glance answers 204.
        let r = env.download(&id, ALICE).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        let data = pseudo_random(1 << 20, 7);
        let r = env.upload(&id, ALICE, data.clone()).await;
        r.assert_status(StatusCode::NO_CONTENT);

        let v = env.show(&id, ALICE).await;
        assert_eq!(v["status"], "active");
        assert_eq!(v["size"], 1 << 20);
        assert_eq!(v["checksum"], md5_hex(&data));
        assert_eq!(v["os_hash_algo"], "sha512");
        assert_eq!(v["os_hash_value"], sha512_hex(&data));
        assert!(v.get("direct_url").is_none() && v.get("locations").is_none());

        let r = env.download(&id, ALICE).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.bytes.as_ref(), data.as_slice());
        assert_eq!(r.headers["content-md5"], md5_hex(&data).as_str());
        assert_eq!(r.headers["content-type"], "application/octet-stream");
        assert_eq!(r.headers["content-length"], (1 << 20).to_string().as_str());

        // Ranges, as Glance serves them.
        let r = env.download_range(&id, ALICE, "bytes=10-19").await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.bytes.as_ref(), &data[10..20]);
        assert_eq!(
            r.headers["content-range"],
            format!("bytes 10-19/{}", 1 << 20).as_str()
        );
        let r = env
            .download_range(&id, ALICE, &format!("bytes={}-", 1 << 20))
            .await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
        r.error_message();

        // A second upload is refused: the image is no longer queued.
        let r = env.upload(&id, ALICE, b"again".to_vec()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        r.error_message();
        // Formats are frozen once there is data.
        let r = env
            .patch(
                &id,
                ALICE,
                json!([{"op": "replace", "path": "/disk_format", "value": "raw"}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // Admins and services get the store location to read directly.
        for token in [ADMIN, SERVICE] {
            let v = env.show(&id, token).await;
            let url = v["direct_url"].as_str().expect("direct_url").to_owned();
            assert!(url.starts_with("file:///"), "{url}");
            assert_eq!(v["locations"][0]["url"], url.as_str());
            let on_disk = std::fs::read(url.trim_start_matches("file://")).expect("direct read");
            assert_eq!(on_disk, data);
        }
        // Others may not upload or even see it.
        let r = env.upload(&id, BOB, b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn empty_image_is_active_with_size_zero() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "e").await;
        assert_eq!(
            env.upload(&id, ALICE, Vec::new()).await.status,
            StatusCode::NO_CONTENT
        );
        let v = env.show(&id, ALICE).await;
        assert_eq!(
            (v["status"].as_str(), v["size"].as_i64()),
            (Some("active"), Some(0))
        );
        assert_eq!(v["checksum"], md5_hex(b""));
        assert_eq!(v["os_hash_value"], sha512_hex(b""));
        let r = env.download(&id, ALICE).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.bytes.is_empty());
    })
    .await;
}

#[tokio::test]
async fn chunked_upload_without_content_length() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "c").await;
        let chunks: Vec<Vec<u8>> = (0..10)
            .map(|i| pseudo_random(100_000 + i, i as u64 + 1))
            .collect();
        let all = chunks.concat();
        let r = env.put_stream(&id, ALICE, "file", chunked(chunks)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let v = env.show(&id, ALICE).await;
        assert_eq!(v["size"], all.len());
        assert_eq!(v["checksum"], md5_hex(&all));
        assert_eq!(v["os_hash_value"], sha512_hex(&all));
        assert_eq!(
            env.download(&id, ALICE).await.bytes.as_ref(),
            all.as_slice()
        );
    })
    .await;
}

#[tokio::test]
async fn broken_upload_leaves_nothing_and_image_queued() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "b").await;
        let body = broken_off(vec![vec![1u8; 300_000], vec![2u8; 300_000]]);
        let r = env.put_stream(&id, ALICE, "file", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        r.error_message();
        let v = env.show(&id, ALICE).await;
        assert_eq!(v["status"], "queued");
        assert_eq!(v["size"], json!(null));
        assert!(
            env.store_files().is_empty(),
            "partial data left: {:?}",
            env.store_files()
        );
        // Glance's preconditions: octet-stream data, formats set first.
        let file = format!("/v2/images/{id}/file");
        let r = env
            .send_as(Method::PUT, &file, ALICE, "application/json", "{}")
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        r.error_message();
        let bare = env.create_id(ALICE, json!({"name": "no formats"})).await;
        let r = env.upload(&bare, ALICE, b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.error_message(),
            "Properties disk_format, container_format must be set prior to saving data."
        );
        assert_eq!(env.status(&bare).await, "queued");
        // The image can still be uploaded properly.
        let r = env.upload(&id, ALICE, b"good".to_vec()).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(env.show(&id, ALICE).await["size"], 4);
    })
    .await;
}

#[tokio::test]
async fn uploads_over_the_size_cap_are_refused() {
    for t in stratus_db::testing::test_dbs("image").await.expect("dbs") {
        let env = Env::with_size_cap(&t.db, 1000).await;
        let id = env.raw_image(ALICE, "big").await;
        // Declared too large: refused before reading.
        let r = env.upload(&id, ALICE, vec![0u8; 1001]).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        r.error_message();
        // Chunked, found too large while streaming.
        let body = chunked(vec![vec![0u8; 400]; 4]);
        let r = env.put_stream(&id, ALICE, "file", body).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(env.status(&id).await, "queued");
        assert!(env.store_files().is_empty());
        t.cleanup().await;
    }
}

#[tokio::test]
async fn deactivate_and_reactivate() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "d").await;
        let deactivate = format!("/v2/images/{id}/actions/deactivate");
        let reactivate = format!("/v2/images/{id}/actions/reactivate");
        // Only active images can be deactivated.
        let r = env.call(Method::POST, &deactivate, Some(ADMIN), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        r.error_message();
        env.upload(&id, ALICE, b"bits".to_vec()).await;
        // Only the owner's members and admins; readers and others may not.
        let r = env
            .call(Method::POST, &deactivate, Some(READER), None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "reader");
        r.error_message();
        let r = env.call(Method::POST, &deactivate, Some(BOB), None).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "private to another project"
        );
        let r = env.call(Method::POST, &deactivate, Some(ADMIN), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            env.call(Method::POST, &deactivate, Some(ADMIN), None)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.status(&id).await, "deactivated");
        let r = env.download(&id, ALICE).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        r.error_message();
        let r = env.download(&id, ADMIN).await;
        assert_eq!(r.bytes.as_ref(), b"bits");
        let r = env.call(Method::POST, &reactivate, Some(ADMIN), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(env.download(&id, ALICE).await.bytes.as_ref(), b"bits");

        // The owner itself deactivates and reactivates.
        let r = env.call(Method::POST, &deactivate, Some(ALICE), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(env.status(&id).await, "deactivated");
        let r = env
            .call(Method::POST, &reactivate, Some(READER), None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "reader");
        let r = env.call(Method::POST, &reactivate, Some(ALICE), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(env.status(&id).await, "active");

        // A public image of another project: visible, still not Bob's to change.
        let public = env
            .create_id(
                ADMIN,
                json!({"name": "pub", "visibility": "public",
                "disk_format": "raw", "container_format": "bare"}),
            )
            .await;
        env.upload(&public, ADMIN, b"p".to_vec()).await;
        let uri = format!("/v2/images/{public}/actions/deactivate");
        let r = env.call(Method::POST, &uri, Some(BOB), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test]
async fn cancelled_upload_is_undone() {
    use futures::SinkExt;
    use tower::ServiceExt;
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "cancel").await;
        // A client that sends some data, then neither more nor an end.
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tx.send(Ok(Bytes::from(vec![7u8; 200_000])))
            .await
            .expect("send");
        let req = Env::data_request(&id, ALICE, "file", Body::from_stream(rx), None);
        let router = env.router.clone();
        let task = tokio::spawn(async move { router.oneshot(req).await });
        let mut saving = false;
        for _ in 0..1000 {
            if env.status(&id).await == "saving" && !env.store_files().is_empty() {
                saving = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(saving, "the upload never started");
        // The connection goes away: the handler's future is dropped.
        task.abort();
        let _ = task.await;
        let mut undone = false;
        for _ in 0..1000 {
            if env.status(&id).await == "queued" && env.store_files().is_empty() {
                undone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            undone,
            "status {} files {:?}",
            env.status(&id).await,
            env.store_files()
        );
        drop(tx);
        assert_eq!(
            env.upload(&id, ALICE, b"ok".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
    })
    .await;
}

#[tokio::test]
async fn abandoned_uploads_are_reset_on_start() {
    each_engine(|env| async move {
        let stale = env.create_id(ALICE, json!({"name": "stale"})).await;
        let live = env.create_id(ALICE, json!({"name": "live"})).await;
        // As if a service died mid-upload long ago (data renamed into place
        // but never recorded), and another upload is running right now.
        std::fs::write(env.store_dir.join(&stale), b"orphan").expect("write");
        stratus_db::sqlx::query(
            "UPDATE images SET status = 'saving', updated_at = $1 WHERE id = $2",
        )
        .bind("2000-01-01T00:00:00.000000Z")
        .bind(&stale)
        .execute(env.db.pool())
        .await
        .expect("update");
        stratus_db::sqlx::query("UPDATE images SET status = 'saving' WHERE id = $1")
            .bind(&live)
            .execute(env.db.pool())
            .await
            .expect("update");
        let n = stratus_image::data::reset_stale_uploads(&env.db, &env.store)
            .await
            .expect("reset");
        assert_eq!(n, 1);
        assert_eq!(env.status(&stale).await, "queued");
        assert_eq!(env.status(&live).await, "saving");
        assert!(env.store_files().is_empty());
        assert_eq!(
            stratus_image::data::reset_stale_uploads(&env.db, &env.store)
                .await
                .expect("again"),
            0
        );
    })
    .await;
}

/// Streams a large generated body in and out without either side holding it
/// (the test hashes on the fly); one engine is enough, the database sees
/// only the final row.
#[tokio::test]
async fn large_streaming_upload_keeps_hashes_right() {
    let t = stratus_db::testing::sqlite("image").await.expect("sqlite");
    let env = Env::new(&t.db).await;
    run_large_upload(&env, 200 << 20).await;
    t.cleanup().await;
}

/// 200 MiB (or `size`) of generated data through upload and download.
pub async fn run_large_upload(env: &Env, size: usize) {
    use md5::Digest;
    let id = env.raw_image(ALICE, "large").await;
    const CHUNK: usize = 1 << 20;
    let block = Bytes::from(pseudo_random(CHUNK, 99));
    let n = size / CHUNK;
    // Each chunk differs (its index in front) so that misordering shows.
    let make = move |i: usize| {
        let mut v = block.to_vec();
        v[..8].copy_from_slice(&(i as u64).to_le_bytes());
        Bytes::from(v)
    };
    let mut md5 = md5::Md5::new();
    let mut sha = sha2::Sha512::new();
    for i in 0..n {
        let c = make(i);
        md5.update(&c);
        sha2::Digest::update(&mut sha, &c);
    }
    let (md5, sha) = (
        hex::encode(md5.finalize()),
        hex::encode(sha2::Digest::finalize(sha)),
    );
    let body = futures::stream::iter((0..n).map(move |i| Ok::<_, std::io::Error>(make(i))));
    let body = Body::from_stream(body);
    let r = env
        .send(Env::data_request(&id, ALICE, "file", body, Some(n * CHUNK)))
        .await;
    r.assert_status(StatusCode::NO_CONTENT);
    let v = env.show(&id, ALICE).await;
    assert_eq!(v["size"], n * CHUNK);
    assert_eq!(v["checksum"], md5.as_str());
    assert_eq!(v["os_hash_value"], sha.as_str());

    // Download as a stream and hash it on the fly.
    use tower::ServiceExt;
    let req = Env::request(Method::GET, &format!("/v2/images/{id}/file"), Some(ALICE))
        .body(Body::empty())
        .expect("req");
    let resp = env.router.clone().oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.into_body().into_data_stream();
    let mut got = md5::Md5::new();
    let mut len = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        len += chunk.len();
        got.update(&chunk);
    }
    assert_eq!(len, n * CHUNK);
    assert_eq!(hex::encode(got.finalize()), md5);
    // Leave nothing behind (a shared test radosgw keeps objects in RAM).
    assert_eq!(env.delete(&id, ALICE).await.status, StatusCode::NO_CONTENT);
    assert!(matches!(
        env.store.get(&id).await,
        Err(stratus_image::store::StoreError::NotFound(_))
    ));
}
