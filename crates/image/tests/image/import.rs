//! glance-direct interoperable import: discovery, stage, import as a
//! background task, the 409s and 400s Glance gives, broken stages, deletes
//! while uploading or importing, failed and abandoned imports.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

#[tokio::test]
async fn discovery_and_create_headers() {
    each_engine(|env| async move {
        let r = env.get("/v2/info/import", ALICE).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.json(),
            json!({"import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": ["glance-direct"]
            }})
        );
        let r = env.get("/v2/info/stores", ALICE).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.json(),
            json!({"stores": [{"id": "file", "default": "true"}]})
        );
        // Behind the token like the rest of /v2.
        let r = env.call(Method::GET, "/v2/info/import", None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let r = env
            .call(
                Method::POST,
                "/v2/images",
                Some(ALICE),
                Some(json!({"name": "h"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.headers["openstack-image-import-methods"], "glance-direct");
        assert_eq!(r.headers["openstack-image-store-ids"], "file");
    })
    .await;
}

#[tokio::test]
async fn stage_then_import_makes_the_image_active() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "imported").await;
        let data = pseudo_random(3 << 20, 11);

        env.stage(&id, ALICE, data.clone())
            .await
            .assert_status(StatusCode::NO_CONTENT);
        let v = env.show(&id, ALICE).await;
        assert_eq!(v["status"], "uploading", "{v}");
        assert_eq!(v["size"], data.len() as u64, "{v}");
        assert_eq!(v["checksum"], Value::Null);
        assert_eq!(env.staging_files(), [id.as_str()]);
        assert!(env.store_files().is_empty());
        // Staged data is not downloadable yet (Glance: 204, no data).
        let r = env.download(&id, ALICE).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        // Listed and filtered by the new status.
        let l = env.get("/v2/images?status=uploading", ALICE).await.json();
        assert_eq!(l["images"][0]["id"], id.as_str(), "{l}");

        let r = env.import(&id, ALICE, glance_direct()).await;
        r.assert_status(StatusCode::ACCEPTED);
        assert!(r.bytes.is_empty(), "202 has no body");
        let v = env.wait_status(&id, "active").await;
        assert_eq!(v["size"], data.len() as u64, "{v}");
        assert_eq!(v["virtual_size"], data.len() as u64, "{v}");
        assert_eq!(v["checksum"], md5_hex(&data), "{v}");
        assert_eq!(v["os_hash_algo"], "sha512", "{v}");
        assert_eq!(v["os_hash_value"], sha512_hex(&data), "{v}");
        // Glance's import bookkeeping once done: the lock dropped, nothing
        // importing, nothing failed.
        assert_eq!(v["os_glance_importing_to_stores"], "", "{v}");
        assert_eq!(v["os_glance_failed_import"], "", "{v}");
        assert!(v.get("os_glance_import_task").is_none(), "{v}");
        assert_eq!(
            v["direct_url"],
            format!("file://{}/{id}", env.store_dir.display())
        );

        env.wait_until("staged data removed", |e| e.staging_files().is_empty())
            .await;
        assert_eq!(env.store_files(), [id.as_str()]);
        let r = env.download(&id, ALICE).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.bytes.as_ref() == data.as_slice(),
            "downloaded bytes differ"
        );

        // A direct upload still works next to it.
        let direct = env.raw_image(ALICE, "direct").await;
        let r = env.upload(&direct, ALICE, b"direct bits".to_vec()).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(env.status(&direct).await, "active");
    })
    .await;
}

#[tokio::test]
async fn wrong_states_methods_and_callers() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "states").await;

        // Import before staging.
        let r = env.import(&id, ALICE, glance_direct()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.error_message(),
            "Image needs to be staged before 'glance-direct' method can be used"
        );
        // Unknown and malformed bodies: 400 with Glance's messages.
        for (body, msg) in [
            (
                json!({"method": {"name": "web-download", "uri": "http://x/y"}}),
                "Unknown import method name 'web-download'.",
            ),
            (
                json!({"method": {"name": "copy-image"}}),
                "Unknown import method name 'copy-image'.",
            ),
            (json!({}), "Import request requires a 'method' field."),
            (
                json!({"method": {}}),
                "Import request requires a 'name' field.",
            ),
            (
                json!({"method": {"name": "glance-direct"}, "all_stores_must_succeed": "no"}),
                "'all_stores_must_succeed' must be boolean value only",
            ),
        ] {
            let r = env.import(&id, ALICE, body.clone()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(r.error_message(), msg, "{body}");
        }

        // Only the owner stages; others do not see a private image at all.
        let r = env.stage(&id, BOB, b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = env.stage(&id, READER, b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let stage = format!("/v2/images/{id}/stage");
        let r = env
            .send_as(Method::PUT, &stage, ALICE, "application/json", "{}")
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

        assert_eq!(
            env.stage(&id, ALICE, b"staged".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
        // Staged: no second stage, no direct upload, no unknown store.
        let r = env.stage(&id, ALICE, b"again".to_vec()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.error_message(),
            "Image status transition from uploading to uploading is not allowed"
        );
        let r = env.upload(&id, ALICE, b"direct".to_vec()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = env
            .import(
                &id,
                ALICE,
                json!({"method": {"name": "glance-direct"}, "stores": ["cheap"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.error_message(), "Unknown scheme 'cheap' found in URI");
        assert_eq!(env.status(&id).await, "uploading");

        // The real store, named, is fine.
        let r = env
            .import(
                &id,
                ALICE,
                json!({"method": {"name": "glance-direct"}, "stores": ["file"],
                       "all_stores_must_succeed": false}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        env.wait_status(&id, "active").await;

        // Active: no stage, no import.
        let r = env.stage(&id, ALICE, b"x".to_vec()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.error_message(),
            "Image status transition from active to uploading is not allowed"
        );
        let r = env.import(&id, ALICE, glance_direct()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.error_message(),
            "Image with status active cannot be target for import"
        );

        // A community image of another project: bob sees it but may not stage
        // or import into it.
        let public = env
            .create_id(
                ALICE,
                json!({"name": "pub", "visibility": "community",
                       "disk_format": "raw", "container_format": "bare"}),
            )
            .await;
        assert_eq!(
            env.stage(&public, BOB, b"x".to_vec()).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            env.stage(&public, ALICE, b"x".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            env.import(&public, BOB, glance_direct()).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(env.status(&public).await, "uploading");

        // Formats are needed before import (Glance: 409).
        let bare = env.create_id(ALICE, json!({"name": "bare"})).await;
        assert_eq!(
            env.stage(&bare, ALICE, b"x".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
        let r = env.import(&bare, ALICE, glance_direct()).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.error_message(),
            "'container_format' needs to be set before import"
        );
    })
    .await;
}

#[tokio::test]
async fn broken_stage_leaves_nothing_and_image_queued() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "broken").await;
        let body = broken_off(vec![vec![1u8; 300_000], vec![2u8; 300_000]]);
        let r = env.put_stream(&id, ALICE, "stage", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        r.error_message();
        let v = env.show(&id, ALICE).await;
        assert_eq!(v["status"], "queued", "{v}");
        assert_eq!(v["size"], Value::Null, "{v}");
        assert!(
            env.staging_files().is_empty(),
            "partial staged data left: {:?}",
            env.staging_files()
        );
        // It can be staged again afterwards.
        assert_eq!(
            env.stage(&id, ALICE, b"good".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.status(&id).await, "uploading");
    })
    .await;
}

#[tokio::test]
async fn stages_over_the_size_cap_are_refused() {
    let t = stratus_db::testing::sqlite("image").await.expect("sqlite");
    let env = Env::with_size_cap(&t.db, 1000).await;
    let id = env.raw_image(ALICE, "big").await;
    // Declared too large: refused before reading.
    let r = env.stage(&id, ALICE, vec![0u8; 1001]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    r.error_message();
    // Chunked, found too large while streaming.
    let body = chunked(vec![vec![3u8; 400]; 4]);
    let r = env.put_stream(&id, ALICE, "stage", body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(env.status(&id).await, "queued");
    assert!(env.staging_files().is_empty(), "{:?}", env.staging_files());
    t.cleanup().await;
}

#[tokio::test]
async fn delete_while_uploading_or_importing_removes_staged_data() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "staged").await;
        assert_eq!(
            env.stage(&id, ALICE, b"staged bits".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(env.staging_files(), [id.as_str()]);
        assert_eq!(env.delete(&id, ALICE).await.status, StatusCode::NO_CONTENT);
        assert!(env.staging_files().is_empty());
        let r = env.get(&format!("/v2/images/{id}"), ALICE).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Deleted right after the import starts: whichever ends first, no
        // data is left behind in the staging folder or the store.
        let id = env.raw_image(ALICE, "importing").await;
        let data = pseudo_random(8 << 20, 5);
        assert_eq!(
            env.stage(&id, ALICE, data).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            env.import(&id, ALICE, glance_direct()).await.status,
            StatusCode::ACCEPTED
        );
        assert_eq!(env.delete(&id, ALICE).await.status, StatusCode::NO_CONTENT);
        env.wait_until("staging and store empty", |e| {
            e.staging_files().is_empty() && e.store_files().is_empty()
        })
        .await;
        let r = env.get(&format!("/v2/images/{id}"), ALICE).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn failed_import_goes_back_to_queued() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "lost").await;
        assert_eq!(
            env.stage(&id, ALICE, b"to be lost".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
        // The staged data disappears (a wiped /tmp): the import fails.
        std::fs::remove_file(env.staging_dir.join(&id)).expect("remove staged");
        assert_eq!(
            env.import(&id, ALICE, glance_direct()).await.status,
            StatusCode::ACCEPTED
        );
        let v = env.wait_status(&id, "queued").await;
        assert_eq!(v["os_glance_failed_import"], "file", "{v}");
        assert_eq!(v["os_glance_importing_to_stores"], "", "{v}");
        assert!(v.get("os_glance_import_task").is_none(), "{v}");
        assert!(env.store_files().is_empty(), "{:?}", env.store_files());

        // Staged and imported again, it works and the failure is cleared.
        assert_eq!(
            env.stage(&id, ALICE, b"second try".to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            env.import(&id, ALICE, glance_direct()).await.status,
            StatusCode::ACCEPTED
        );
        let v = env.wait_status(&id, "active").await;
        assert_eq!(v["os_glance_failed_import"], "", "{v}");
        assert_eq!(v["checksum"], md5_hex(b"second try"), "{v}");
    })
    .await;
}

#[tokio::test]
async fn abandoned_stages_and_imports_are_reset() {
    each_engine(|env| async move {
        let importing = env.raw_image(ALICE, "importing").await;
        let half_staged = env.raw_image(ALICE, "half-staged").await;
        let staged = env.raw_image(ALICE, "staged").await;
        let live = env.raw_image(ALICE, "live").await;
        // As if a process died long ago mid-import (partial object, staged
        // file), mid-stage (no size), and after a complete stage; and
        // another import is running right now.
        std::fs::write(env.store_dir.join(&importing), b"partial").expect("write");
        std::fs::create_dir_all(&env.staging_dir).expect("staging dir");
        std::fs::write(env.staging_dir.join(&importing), b"staged").expect("write");
        std::fs::write(env.staging_dir.join(&staged), b"staged").expect("write");
        let old = "2000-01-01T00:00:00.000000Z";
        for (id, status, size) in [
            (&importing, "importing", Some(6i64)),
            (&half_staged, "uploading", None),
            (&staged, "uploading", Some(6)),
        ] {
            stratus_db::sqlx::query(
                "UPDATE images SET status = $1, size = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(status)
            .bind(size)
            .bind(old)
            .bind(id)
            .execute(env.db.pool())
            .await
            .expect("update");
        }
        stratus_db::sqlx::query("UPDATE images SET status = 'importing' WHERE id = $1")
            .bind(&live)
            .execute(env.db.pool())
            .await
            .expect("update");
        let staging: std::sync::Arc<dyn stratus_image::Store> = std::sync::Arc::new(
            stratus_image::store::FileStore::new(env.staging_dir.clone())
                .await
                .expect("staging store"),
        );
        let reset =
            || stratus_image::data::reset_stale_imports(&env.db, &env.store, &staging, "file");
        assert_eq!(reset().await.expect("reset"), 2);
        let v = env.show(&importing, ALICE).await;
        assert_eq!(v["status"], "queued", "{v}");
        assert_eq!(v["os_glance_failed_import"], "file", "{v}");
        assert_eq!(env.status(&half_staged).await, "queued");
        // A completed stage waits for its import, as in Glance.
        assert_eq!(env.status(&staged).await, "uploading");
        assert_eq!(env.status(&live).await, "importing");
        assert!(env.store_files().is_empty(), "{:?}", env.store_files());
        assert_eq!(env.staging_files(), [staged.as_str()]);
        assert_eq!(reset().await.expect("again"), 0);
    })
    .await;
}
