//! The Cinder v3 API with the fake backend: discovery and microversions,
//! volumes, snapshots, types, actions, attachments, quotas and the bad
//! input Cinder rejects.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

fn vols(p: &str) -> String {
    format!("/v3/{p}/volumes")
}

#[tokio::test]
async fn discovery_and_microversions() {
    each_engine(|env| async move {
        let r = env.call_v(Method::GET, "/", None, None, None).await;
        let v = r.ok(300);
        assert_eq!(v["versions"][0]["id"], "v3.0");
        assert_eq!(v["versions"][0]["version"], "3.70");
        assert_eq!(v["versions"][0]["min_version"], "3.0");
        let v = env
            .call_v(Method::GET, "/v3/", None, None, None)
            .await
            .ok(200);
        assert_eq!(
            v["versions"][0]["links"][1]["href"],
            "http://127.0.0.1:8776/v3/"
        );
        assert!(r.headers.get("x-openstack-request-id").is_some());

        // Every other route needs a token.
        let r = env
            .call_v(Method::GET, &vols(P_ALICE), None, None, None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let r = env
            .call_v(Method::GET, &vols(P_ALICE), Some(ALICE), Some("3.27"), None)
            .await;
        r.ok(200);
        assert_eq!(r.headers["openstack-api-version"], "volume 3.27");
        let r = env
            .call_v(
                Method::GET,
                &vols(P_ALICE),
                Some(ALICE),
                Some("latest"),
                None,
            )
            .await;
        assert_eq!(r.headers["openstack-api-version"], "volume 3.70");
        let (fault, _) = env
            .call_v(Method::GET, &vols(P_ALICE), Some(ALICE), Some("3.71"), None)
            .await
            .fault(406);
        assert_eq!(fault, "notAcceptable");
        env.call_v(Method::GET, &vols(P_ALICE), Some(ALICE), Some("x.y"), None)
            .await
            .fault(400);
        // Project-less URLs from 3.67 only.
        env.call_v(Method::GET, "/v3/volumes", Some(ALICE), Some("3.66"), None)
            .await
            .fault(404);
        env.call_v(Method::GET, "/v3/volumes", Some(ALICE), Some("3.67"), None)
            .await
            .ok(200);
        // Another project's URL: Cinder's "Malformed request url".
        let (fault, msg) = env.get(&vols(P_BOB), ALICE).await.fault(400);
        assert_eq!(fault, "badRequest");
        assert!(msg.contains("Malformed request url"), "{msg}");
        env.get("/v3/nothing/here/at/all", ALICE).await.fault(404);
        let r = env.call(Method::PATCH, &vols(P_ALICE), ALICE, None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    })
    .await;
}

#[tokio::test]
async fn volume_lifecycle_and_scoping() {
    each_engine(|env| async move {
        let id = env.volume(ALICE, P_ALICE, json!({"size": 1, "name": "v1", "metadata": {"k": "v"},
            "consistencygroup_id": null, "snapshot_id": null, "volume_type": null, "imageRef": null,
            "availability_zone": null, "source_volid": null, "backup_id": null, "description": null})).await;
        let v = env.get(&format!("{}/{id}", vols(P_ALICE)), ALICE).await.ok(200);
        let v = &v["volume"];
        assert_eq!(v["size"], 1);
        assert_eq!(v["status"], "available");
        assert_eq!(v["volume_type"], "__DEFAULT__");
        assert_eq!(v["bootable"], "false");
        assert_eq!(v["metadata"]["k"], "v");
        assert_eq!(v["os-vol-tenant-attr:tenant_id"], P_ALICE);
        assert!(v.get("os-vol-host-attr:host").is_none(), "admin-only field shown: {v}");
        assert_eq!(env.fake.volume_ids().len(), 1);

        // Bob and readers of other projects see nothing; the unscoped 403.
        env.get(&format!("{}/{id}", vols(P_BOB)), BOB).await.fault(404);
        assert_eq!(env.get(&format!("{}/detail", vols(P_BOB)), BOB).await.ok(200)["volumes"], json!([]));
        env.get(&format!("{}/detail", vols(P_ALICE)), UNSCOPED).await.fault(403);
        env.get(&format!("{}/detail?all_tenants=1", vols(P_ALICE)), ALICE).await.fault(403);
        // Admins see it with all_tenants, and by id.
        let all = env.get(&format!("{}/detail?all_tenants=1", vols(P_ADMIN)), ADMIN).await.ok(200);
        assert_eq!(all["volumes"].as_array().map(Vec::len), Some(1));
        let v = env.get(&format!("{}/{id}", vols(P_ADMIN)), ADMIN).await.ok(200);
        assert_eq!(v["volume"]["os-vol-host-attr:host"], "stratus@file#file");
        assert_eq!(env.get(&format!("{}/detail", vols(P_ADMIN)), ADMIN).await.ok(200)["volumes"], json!([]));

        // Readers read, but do not write.
        env.get(&format!("{}/{id}", vols(P_ALICE)), READER).await.ok(200);
        env.call(Method::DELETE, &format!("{}/{id}", vols(P_ALICE)), READER, None).await.fault(403);
        env.post(&vols(P_ALICE), READER, json!({"volume": {"size": 1}})).await.fault(403);

        // Update and metadata.
        let v = env.call(Method::PUT, &format!("{}/{id}", vols(P_ALICE)), ALICE,
            Some(json!({"volume": {"name": "renamed", "description": "d"}}))).await.ok(200);
        assert_eq!(v["volume"]["name"], "renamed");
        let m = env.post(&format!("{}/{id}/metadata", vols(P_ALICE)), ALICE, json!({"metadata": {"a": "b"}})).await.ok(200);
        assert_eq!(m["metadata"], json!({"k": "v", "a": "b"}));
        let m = env.call(Method::PUT, &format!("{}/{id}/metadata/a", vols(P_ALICE)), ALICE, Some(json!({"meta": {"a": "c"}}))).await.ok(200);
        assert_eq!(m["meta"]["a"], "c");
        env.call(Method::DELETE, &format!("{}/{id}/metadata/k", vols(P_ALICE)), ALICE, None).await.ok(200);
        env.call(Method::DELETE, &format!("{}/{id}/metadata/k", vols(P_ALICE)), ALICE, None).await.fault(404);
        let m = env.get(&format!("{}/{id}/metadata", vols(P_ALICE)), ALICE).await.ok(200);
        assert_eq!(m["metadata"], json!({"a": "c"}));

        // Summary (3.12).
        let s = env.call_v(Method::GET, &format!("{}/summary", vols(P_ALICE)), Some(ALICE), Some("3.36"), None).await.ok(200);
        assert_eq!(s["volume-summary"]["total_count"], 1);
        assert_eq!(s["volume-summary"]["total_size"], 1);
        assert_eq!(s["volume-summary"]["metadata"]["a"], json!(["c"]));

        // Delete: gone from the backend and the API.
        env.call(Method::DELETE, &format!("{}/{id}", vols(P_ALICE)), ALICE, None).await.ok(202);
        env.wait_gone(ALICE, P_ALICE, "volumes", &id).await;
        assert!(env.fake.volume_ids().is_empty());
        env.call(Method::DELETE, &format!("{}/{id}", vols(P_ALICE)), ALICE, None).await.fault(404);
    })
    .await;
}

#[tokio::test]
async fn list_filters_sort_and_paging() {
    each_engine(|env| async move {
        let mut ids = Vec::new();
        for (i, name) in ["c", "a", "b"].iter().enumerate() {
            let md = if i == 1 {
                json!({"tier": "gold"})
            } else {
                json!({})
            };
            ids.push(
                env.volume(
                    ALICE,
                    P_ALICE,
                    json!({"size": i + 1, "name": name, "metadata": md}),
                )
                .await,
            );
        }
        let names = |v: &serde_json::Value| -> Vec<String> {
            v["volumes"]
                .as_array()
                .expect("list")
                .iter()
                .map(|x| x["name"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        let v = env
            .get(&format!("{}/detail?sort=name:asc", vols(P_ALICE)), ALICE)
            .await
            .ok(200);
        assert_eq!(names(&v), ["a", "b", "c"]);
        let v = env
            .get(
                &format!("{}?sort_key=size&sort_dir=desc", vols(P_ALICE)),
                ALICE,
            )
            .await
            .ok(200);
        assert_eq!(names(&v), ["b", "a", "c"]);
        let v = env
            .get(&format!("{}/detail?name=b", vols(P_ALICE)), ALICE)
            .await
            .ok(200);
        assert_eq!(names(&v), ["b"]);
        // cinderclient sends a Python dict's repr.
        let v = env
            .get(
                &format!(
                    "{}/detail?metadata=%7B%27tier%27%3A+%27gold%27%7D",
                    vols(P_ALICE)
                ),
                ALICE,
            )
            .await
            .ok(200);
        assert_eq!(names(&v), ["a"]);
        let v = env
            .get(&format!("{}/detail?status=error", vols(P_ALICE)), ALICE)
            .await
            .ok(200);
        assert_eq!(names(&v), Vec::<String>::new());
        // Paging with a next link that carries the marker.
        let v = env
            .get(
                &format!("{}/detail?sort=name:asc&limit=2", vols(P_ALICE)),
                ALICE,
            )
            .await
            .ok(200);
        assert_eq!(names(&v), ["a", "b"]);
        let next = v["volumes_links"][0]["href"]
            .as_str()
            .expect("next link")
            .to_owned();
        let path = next.trim_start_matches("http://127.0.0.1:8776");
        let v = env.get(path, ALICE).await.ok(200);
        assert_eq!(names(&v), ["c"]);
        assert!(v.get("volumes_links").is_none());
        // Bad paging and sorting.
        env.get(&format!("{}?limit=-1", vols(P_ALICE)), ALICE)
            .await
            .fault(400);
        env.get(&format!("{}?sort=nope", vols(P_ALICE)), ALICE)
            .await
            .fault(400);
        env.get(&format!("{}?sort=name:sideways", vols(P_ALICE)), ALICE)
            .await
            .fault(400);
        env.get(
            &format!("{}?marker={}", vols(P_ALICE), uuid::Uuid::new_v4()),
            ALICE,
        )
        .await
        .fault(404);
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_cinder_errors_and_leaves_nothing() {
    each_engine(|env| async move {
        let u = vols(P_ALICE);
        for size in [json!(0), json!(-1), json!("x"), json!(1.5)] {
            let (fault, _) = env
                .post(&u, ALICE, json!({"volume": {"size": size}}))
                .await
                .fault(400);
            assert_eq!(fault, "badRequest");
        }
        env.post(&u, ALICE, json!({"volume": {}})).await.fault(400);
        env.post(&u, ALICE, json!({"nothing": {}})).await.fault(400);
        let r = env
            .send(
                axum::http::Request::builder()
                    .method(Method::POST)
                    .uri(&u)
                    .header("x-auth-token", ALICE)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from("{not json"))
                    .expect("req"),
            )
            .await;
        r.fault(400);
        env.post(
            &u,
            ALICE,
            json!({"volume": {"size": 1, "volume_type": "nope"}}),
        )
        .await
        .fault(404);
        env.post(
            &u,
            ALICE,
            json!({"volume": {"size": 1, "availability_zone": "elsewhere"}}),
        )
        .await
        .fault(400);
        env.post(
            &u,
            ALICE,
            json!({"volume": {"size": 1, "metadata": {"k": 1}}}),
        )
        .await
        .fault(400);
        env.post(
            &u,
            ALICE,
            json!({"volume": {"size": 1, "name": "x".repeat(256)}}),
        )
        .await
        .fault(400);
        env.post(
            &u,
            ALICE,
            json!({"volume": {"size": 1, "snapshot_id": uuid::Uuid::new_v4().to_string()}}),
        )
        .await
        .fault(404);
        env.post(
            &u,
            ALICE,
            json!({"volume": {"size": 1, "source_volid": "not-a-uuid"}}),
        )
        .await
        .fault(404);
        assert_eq!(
            env.get(&format!("{u}/detail"), ALICE).await.ok(200)["volumes"],
            json!([])
        );

        // Over quota: 413 overLimit, and no row.
        env.call(
            Method::PUT,
            &format!("/v3/{P_ADMIN}/os-quota-sets/{P_ALICE}"),
            ADMIN,
            Some(json!({"quota_set": {"gigabytes": 2, "volumes": 1}})),
        )
        .await
        .ok(200);
        let (fault, msg) = env
            .post(&u, ALICE, json!({"volume": {"size": 3}}))
            .await
            .fault(413);
        assert_eq!(fault, "overLimit");
        assert!(msg.contains("gigabytes"), "{msg}");
        let id = env.volume(ALICE, P_ALICE, json!({"size": 1})).await;
        let (_, msg) = env
            .post(&u, ALICE, json!({"volume": {"size": 1}}))
            .await
            .fault(413);
        assert!(msg.contains("volumes"), "{msg}");
        // Extend to a smaller size, beyond quota.
        let act = format!("{u}/{id}/action");
        env.post(&act, ALICE, json!({"os-extend": {"new_size": 1}}))
            .await
            .fault(400);
        env.post(&act, ALICE, json!({"os-extend": {"new_size": 5}}))
            .await
            .fault(413);
        env.post(&act, ALICE, json!({"os-nothing": {}}))
            .await
            .fault(400);
        assert_eq!(
            env.get(&format!("{u}/{id}"), ALICE).await.ok(200)["volume"]["status"],
            "available"
        );
        let q = env
            .get(
                &format!("/v3/{P_ALICE}/os-quota-sets/{P_ALICE}?usage=true"),
                ALICE,
            )
            .await
            .ok(200);
        assert_eq!(q["quota_set"]["volumes"]["in_use"], 1);
        assert_eq!(q["quota_set"]["gigabytes"]["limit"], 2);
        // Members may not change quotas or see another project's.
        env.call(
            Method::PUT,
            &format!("/v3/{P_ALICE}/os-quota-sets/{P_ALICE}"),
            ALICE,
            Some(json!({"quota_set": {"volumes": 100}})),
        )
        .await
        .fault(403);
        env.get(&format!("/v3/{P_ALICE}/os-quota-sets/{P_BOB}"), ALICE)
            .await
            .fault(403);
        env.call(
            Method::PUT,
            &format!("/v3/{P_ADMIN}/os-quota-sets/{P_ALICE}"),
            ADMIN,
            Some(json!({"quota_set": {"bogus": 1}})),
        )
        .await
        .fault(400);
        env.call(
            Method::DELETE,
            &format!("/v3/{P_ADMIN}/os-quota-sets/{P_ALICE}"),
            ADMIN,
            None,
        )
        .await
        .ok(200);
        let d = env
            .get(
                &format!("/v3/{P_ALICE}/os-quota-sets/{P_ALICE}/defaults"),
                ALICE,
            )
            .await
            .ok(200);
        assert_eq!(d["quota_set"]["volumes"], 10);
        let l = env
            .get(&format!("/v3/{P_ALICE}/limits"), ALICE)
            .await
            .ok(200);
        assert_eq!(l["limits"]["absolute"]["totalVolumesUsed"], 1);
        assert_eq!(l["limits"]["absolute"]["maxTotalVolumes"], 10);
    })
    .await;
}

#[tokio::test]
async fn a_failing_backend_leaves_an_error_volume_and_no_bits() {
    each_engine(|env| async move {
        env.fake.fail_next();
        let v = env
            .post(&vols(P_ALICE), ALICE, json!({"volume": {"size": 1}}))
            .await
            .ok(202);
        let id = v["volume"]["id"].as_str().expect("id").to_owned();
        assert_eq!(v["volume"]["status"], "creating");
        env.wait(ALICE, P_ALICE, "volumes", &id, "error").await;
        assert!(env.fake.volume_ids().is_empty());
        // An error volume may be deleted.
        env.call(
            Method::DELETE,
            &format!("{}/{id}", vols(P_ALICE)),
            ALICE,
            None,
        )
        .await
        .ok(202);
        env.wait_gone(ALICE, P_ALICE, "volumes", &id).await;
    })
    .await;
}

/// Creates racing for the quota take exactly what it allows, on either
/// engine (the check and the insert run alone per project).
#[tokio::test]
async fn concurrent_creates_never_exceed_the_quota() {
    each_engine(|env| async move {
        env.call(
            Method::PUT,
            &format!("/v3/{P_ADMIN}/os-quota-sets/{P_ALICE}"),
            ADMIN,
            Some(json!({"quota_set": {"volumes": 3}})),
        )
        .await
        .ok(200);
        let u = vols(P_ALICE);
        let tries = (0..12).map(|_| env.post(&u, ALICE, json!({"volume": {"size": 1}})));
        let results = futures::future::join_all(tries).await;
        let made = results
            .iter()
            .filter(|r| r.status == StatusCode::ACCEPTED)
            .count();
        assert_eq!(made, 3, "volumes made with a quota of 3");
        for r in &results {
            assert!(
                r.status == StatusCode::ACCEPTED || r.status == StatusCode::PAYLOAD_TOO_LARGE,
                "{}",
                r.status
            );
        }
        let list = env.get(&format!("{u}/detail"), ALICE).await.ok(200);
        assert_eq!(list["volumes"].as_array().map(Vec::len), Some(made));
    })
    .await;
}

/// A manager that starts again finds what the last one left unfinished
/// and settles it as Cinder's `init_host` does, on both engines.
#[tokio::test]
async fn a_restarted_manager_settles_what_was_left_unfinished() {
    use std::sync::Arc;
    use stratus_volume::db;
    use stratus_volume::domain::{SnapshotStatus, VolumeStatus};
    use stratus_volume::manager::fake::FakeBackend;
    use stratus_volume::manager::images::NoImages;
    use stratus_volume::manager::Manager;

    for t in stratus_db::testing::test_dbs("volume").await.expect("dbs") {
        let fake = Arc::new(FakeBackend::new());
        let env = Env::with_backend(&t.db, fake.clone(), fake.clone()).await;
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(env.volume(ALICE, P_ALICE, json!({"size": 1})).await);
        }
        let s = env
            .post(
                &format!("/v3/{P_ALICE}/snapshots"),
                ALICE,
                json!({"snapshot": {"volume_id": ids[3]}}),
            )
            .await
            .ok(202);
        let sid = s["snapshot"]["id"].as_str().expect("id").to_owned();
        env.wait(ALICE, P_ALICE, "snapshots", &sid, "available")
            .await;
        // As a crash would leave them: mid-create, mid-delete, mid-upload,
        // and a snapshot mid-create.
        let mut conn = t.db.conn().await.expect("conn");
        for (id, status) in [
            (&ids[0], VolumeStatus::Creating),
            (&ids[1], VolumeStatus::Deleting),
            (&ids[2], VolumeStatus::Uploading),
        ] {
            let id = id.parse().expect("id");
            assert!(db::volume_force_status(&mut conn, &id, status, None)
                .await
                .expect("force"));
        }
        let snap_id = sid.parse().expect("id");
        db::snapshot_set_status(
            &mut conn,
            &snap_id,
            &[SnapshotStatus::Available],
            SnapshotStatus::Creating,
        )
        .await
        .expect("snapshot status");
        drop(conn);

        let scratch = std::env::temp_dir().join("stratus-volume-test-scratch");
        Manager::new(t.db.clone(), fake.clone(), Arc::new(NoImages), scratch)
            .recover()
            .await
            .expect("recover");
        let status = |id: &str| {
            let env = &env;
            let u = format!("/v3/{P_ALICE}/volumes/{id}");
            async move { env.get(&u, ALICE).await.ok(200)["volume"]["status"].clone() }
        };
        assert_eq!(status(&ids[0]).await, "error");
        env.get(&format!("/v3/{P_ALICE}/volumes/{}", ids[1]), ALICE)
            .await
            .fault(404);
        assert_eq!(status(&ids[2]).await, "available");
        assert_eq!(status(&ids[3]).await, "available");
        let snap = env
            .get(&format!("/v3/{P_ALICE}/snapshots/{sid}"), ALICE)
            .await
            .ok(200);
        assert_eq!(snap["snapshot"]["status"], "error");
        let left = fake.volume_ids();
        assert!(!left.contains(&ids[0].parse().expect("id")), "{left:?}");
        assert!(!left.contains(&ids[1].parse().expect("id")), "{left:?}");
        assert!(fake.snapshot_ids().is_empty());
        t.cleanup().await;
    }
}

#[tokio::test]
async fn types_and_extra_specs() {
    each_engine(|env| async move {
        let t = format!("/v3/{P_ADMIN}/types");
        let list = env
            .get(&format!("/v3/{P_ALICE}/types"), ALICE)
            .await
            .ok(200);
        assert_eq!(list["volume_types"][0]["name"], "__DEFAULT__");
        env.post(
            &format!("/v3/{P_ALICE}/types"),
            ALICE,
            json!({"volume_type": {"name": "fast"}}),
        )
        .await
        .fault(403);
        let ty = env
            .post(
                &t,
                ADMIN,
                json!({"volume_type": {"name": "fast", "os-volume-type-access:is_public": true}}),
            )
            .await
            .ok(200);
        let tid = ty["volume_type"]["id"].as_str().expect("id").to_owned();
        env.post(&t, ADMIN, json!({"volume_type": {"name": "fast"}}))
            .await
            .fault(409);
        env.post(&t, ADMIN, json!({"volume_type": {"name": ""}}))
            .await
            .fault(400);
        let s = env
            .post(
                &format!("{t}/{tid}/extra_specs"),
                ADMIN,
                json!({"extra_specs": {"volume_backend_name": "file"}}),
            )
            .await
            .ok(200);
        assert_eq!(s["extra_specs"]["volume_backend_name"], "file");
        let s = env
            .get(&format!("{t}/{tid}/extra_specs/volume_backend_name"), ADMIN)
            .await
            .ok(200);
        assert_eq!(s["volume_backend_name"], "file");
        // Anyone reads extra specs, non-admins only the user-visible ones
        // (Cinder's read_sensitive policy).
        env.post(
            &format!("{t}/{tid}/extra_specs"),
            ADMIN,
            json!({"extra_specs": {"multiattach": "<is> False"}}),
        )
        .await
        .ok(200);
        let a = format!("/v3/{P_ALICE}/types/{tid}/extra_specs");
        let s = env.get(&a, ALICE).await.ok(200);
        assert_eq!(s["extra_specs"], json!({"multiattach": "<is> False"}));
        let s = env.get(&format!("{a}/multiattach"), ALICE).await.ok(200);
        assert_eq!(s["multiattach"], "<is> False");
        env.get(&format!("{a}/volume_backend_name"), ALICE)
            .await
            .fault(404);
        env.call(Method::DELETE, &format!("{a}/multiattach"), ALICE, None)
            .await
            .fault(403);
        let ty = env
            .call(
                Method::PUT,
                &format!("{t}/{tid}"),
                ADMIN,
                Some(json!({"volume_type": {"name": "faster", "description": "d"}})),
            )
            .await
            .ok(200);
        assert_eq!(ty["volume_type"]["name"], "faster");
        // A volume of the type, by name; the type cannot go while it is used.
        let id = env
            .volume(ALICE, P_ALICE, json!({"size": 1, "volume_type": "faster"}))
            .await;
        let v = env
            .call_v(
                Method::GET,
                &format!("{}/{id}", vols(P_ALICE)),
                Some(ALICE),
                Some("3.63"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(v["volume"]["volume_type"], "faster");
        assert_eq!(v["volume"]["volume_type_id"], tid.as_str());
        env.call(Method::DELETE, &format!("{t}/{tid}"), ADMIN, None)
            .await
            .fault(400);
        let default_id = list["volume_types"][0]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        env.call(Method::DELETE, &format!("{t}/{default_id}"), ADMIN, None)
            .await
            .fault(400);
        env.call(
            Method::DELETE,
            &format!("{}/{id}", vols(P_ALICE)),
            ALICE,
            None,
        )
        .await
        .ok(202);
        env.wait_gone(ALICE, P_ALICE, "volumes", &id).await;
        env.call(
            Method::DELETE,
            &format!("{t}/{tid}/extra_specs/volume_backend_name"),
            ADMIN,
            None,
        )
        .await
        .ok(202);
        env.call(Method::DELETE, &format!("{t}/{tid}"), ADMIN, None)
            .await
            .ok(202);
        env.get(&format!("{t}/{tid}"), ADMIN).await.fault(404);
    })
    .await;
}

#[tokio::test]
async fn snapshots_clones_and_cascade() {
    each_engine(|env| async move {
        let u = vols(P_ALICE);
        let s = format!("/v3/{P_ALICE}/snapshots");
        let vid = env.volume(ALICE, P_ALICE, json!({"size": 1, "name": "src"})).await;
        let snap = env.post(&s, ALICE, json!({"snapshot": {"volume_id": vid, "name": "s1", "force": false, "description": null, "metadata": {}}})).await.ok(202);
        let sid = snap["snapshot"]["id"].as_str().expect("id").to_owned();
        env.wait(ALICE, P_ALICE, "snapshots", &sid, "available").await;
        let list = env.get(&format!("{s}/detail"), ALICE).await.ok(200);
        assert_eq!(list["snapshots"][0]["name"], "s1");
        assert_eq!(env.get(&format!("{s}/detail"), BOB).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(env.get(&format!("/v3/{P_BOB}/snapshots/detail"), BOB).await.ok(200)["snapshots"], json!([]));
        env.get(&format!("/v3/{P_BOB}/snapshots/{sid}"), BOB).await.fault(404);

        // Volumes from the snapshot (smaller than it is refused) and from
        // the volume.
        env.post(&u, ALICE, json!({"volume": {"snapshot_id": sid, "size": 0}})).await.fault(400);
        let from_snap = env.volume(ALICE, P_ALICE, json!({"snapshot_id": sid, "size": 2})).await;
        let v = env.get(&format!("{u}/{from_snap}"), ALICE).await.ok(200);
        assert_eq!(v["volume"]["snapshot_id"], sid.as_str());
        assert_eq!(v["volume"]["size"], 2);
        let clone = env.volume(ALICE, P_ALICE, json!({"source_volid": vid})).await;
        assert_eq!(env.get(&format!("{u}/{clone}"), ALICE).await.ok(200)["volume"]["source_volid"], vid.as_str());

        // A volume with snapshots goes only with cascade.
        let (_, msg) = env.call(Method::DELETE, &format!("{u}/{vid}"), ALICE, None).await.fault(400);
        assert!(msg.contains("dependent snapshots"), "{msg}");
        env.call(Method::DELETE, &format!("{u}/{vid}?cascade=true"), ALICE, None).await.ok(202);
        env.wait_gone(ALICE, P_ALICE, "volumes", &vid).await;
        env.get(&format!("{s}/{sid}"), ALICE).await.fault(404);
        assert!(env.fake.snapshot_ids().is_empty());

        // A snapshot of an in-use volume needs force.
        let act = format!("{u}/{clone}/action");
        env.post(&act, ALICE, json!({"os-attach": {"instance_uuid": uuid::Uuid::new_v4().to_string(), "mountpoint": "/dev/vdb", "mode": "rw"}})).await.ok(202);
        env.post(&s, ALICE, json!({"snapshot": {"volume_id": clone}})).await.fault(400);
        let forced = env.post(&s, ALICE, json!({"snapshot": {"volume_id": clone, "force": true}})).await.ok(202);
        let fid = forced["snapshot"]["id"].as_str().expect("id").to_owned();
        env.wait(ALICE, P_ALICE, "snapshots", &fid, "available").await;
        env.call(Method::DELETE, &format!("{s}/{fid}"), ALICE, None).await.ok(202);
        env.wait_gone(ALICE, P_ALICE, "snapshots", &fid).await;
    })
    .await;
}

#[tokio::test]
async fn volume_actions() {
    each_engine(|env| async move {
        let u = vols(P_ALICE);
        let id = env.volume(ALICE, P_ALICE, json!({"size": 1})).await;
        let act = format!("{u}/{id}/action");
        let status = |v: serde_json::Value| v["volume"]["status"].as_str().unwrap_or("").to_owned();
        env.post(&act, ALICE, json!({"os-extend": {"new_size": 3}}))
            .await
            .ok(202);
        let v = env.wait(ALICE, P_ALICE, "volumes", &id, "available").await;
        assert_eq!(v["volume"]["size"], 3);
        assert_eq!(
            env.fake
                .volumes
                .lock()
                .expect("lock")
                .values()
                .copied()
                .collect::<Vec<_>>(),
            [3]
        );
        env.post(&act, ALICE, json!({"os-set_bootable": {"bootable": true}}))
            .await
            .ok(200);
        assert_eq!(
            env.get(&format!("{u}/{id}"), ALICE).await.ok(200)["volume"]["bootable"],
            "true"
        );
        env.post(
            &act,
            ALICE,
            json!({"os-update_readonly_flag": {"readonly": false}}),
        )
        .await
        .ok(202);
        env.post(
            &act,
            ALICE,
            json!({"os-set_bootable": {"bootable": "maybe"}}),
        )
        .await
        .fault(400);

        env.post(&act, ALICE, json!({"os-reserve": null}))
            .await
            .ok(202);
        assert_eq!(
            status(env.get(&format!("{u}/{id}"), ALICE).await.json()),
            "attaching"
        );
        env.post(&act, ALICE, json!({"os-reserve": null}))
            .await
            .fault(400);
        env.post(&act, ALICE, json!({"os-unreserve": null}))
            .await
            .ok(202);
        assert_eq!(
            status(env.get(&format!("{u}/{id}"), ALICE).await.json()),
            "available"
        );

        let server = uuid::Uuid::new_v4().to_string();
        env.post(
            &act,
            ALICE,
            json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}),
        )
        .await
        .ok(202);
        let v = env.get(&format!("{u}/{id}"), ALICE).await.ok(200);
        assert_eq!(v["volume"]["status"], "in-use");
        assert_eq!(v["volume"]["attachments"][0]["server_id"], server.as_str());
        // An attached volume cannot be deleted or attached again.
        env.call(Method::DELETE, &format!("{u}/{id}"), ALICE, None)
            .await
            .fault(400);
        env.post(
            &act,
            ALICE,
            json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdc"}}),
        )
        .await
        .fault(400);
        // Extend while attached needs 3.42.
        env.post(&act, ALICE, json!({"os-extend": {"new_size": 4}}))
            .await
            .fault(400);
        env.call_v(
            Method::POST,
            &act,
            Some(ALICE),
            Some("3.42"),
            Some(json!({"os-extend": {"new_size": 4}})),
        )
        .await
        .ok(202);
        env.wait(ALICE, P_ALICE, "volumes", &id, "in-use").await;
        env.post(&act, ALICE, json!({"os-begin_detaching": null}))
            .await
            .ok(202);
        env.post(&act, ALICE, json!({"os-roll_detaching": null}))
            .await
            .ok(202);
        assert_eq!(
            status(env.get(&format!("{u}/{id}"), ALICE).await.json()),
            "in-use"
        );
        env.post(&act, ALICE, json!({"os-begin_detaching": null}))
            .await
            .ok(202);
        env.post(&act, ALICE, json!({"os-detach": {}}))
            .await
            .ok(202);
        let v = env.get(&format!("{u}/{id}"), ALICE).await.ok(200);
        assert_eq!(v["volume"]["status"], "available");
        assert_eq!(v["volume"]["attachments"], json!([]));

        // Upload to an image: a name is needed, the formats must be known,
        // and only an available volume goes (no image service here: the
        // checks come first, then a 503).
        for bad in [
            json!({"os-volume_upload_image": {}}),
            json!({"os-volume_upload_image": {"image_name": "i", "disk_format": "iso"}}),
            json!({"os-volume_upload_image": {"image_name": "i", "container_format": "zip"}}),
        ] {
            env.post(&act, ALICE, bad).await.fault(400);
        }
        env.post(
            &act,
            ALICE,
            json!({"os-volume_upload_image": {"image_name": "i"}}),
        )
        .await
        .fault(503);
        assert_eq!(
            status(env.get(&format!("{u}/{id}"), ALICE).await.json()),
            "available"
        );

        // Reset status: admins only.
        env.post(&act, ALICE, json!({"os-reset_status": {"status": "error"}}))
            .await
            .fault(403);
        env.post(
            &format!("/v3/{P_ADMIN}/volumes/{id}/action"),
            ADMIN,
            json!({"os-reset_status": {"status": "bogus"}}),
        )
        .await
        .fault(400);
        env.post(
            &format!("/v3/{P_ADMIN}/volumes/{id}/action"),
            ADMIN,
            json!({"os-reset_status": {"status": "error"}}),
        )
        .await
        .ok(202);
        assert_eq!(
            status(env.get(&format!("{u}/{id}"), ALICE).await.json()),
            "error"
        );
        let (_, msg) = env
            .post(
                &act,
                ALICE,
                json!({"os-volume_upload_image": {"image_name": "i"}}),
            )
            .await
            .fault(400);
        assert!(msg.contains("must be available"), "{msg}");
    })
    .await;
}

#[tokio::test]
async fn attachments_api() {
    each_engine(|env| async move {
        let id = env.volume(ALICE, P_ALICE, json!({"size": 1})).await;
        let a = format!("/v3/{P_ALICE}/attachments");
        let server = uuid::Uuid::new_v4().to_string();
        // Before 3.27 there is no such API.
        env.post(
            &a,
            ALICE,
            json!({"attachment": {"volume_uuid": id, "instance_uuid": server}}),
        )
        .await
        .fault(404);
        let r = env
            .call_v(
                Method::POST,
                &a,
                Some(ALICE),
                Some("3.44"),
                Some(json!({"attachment": {"volume_uuid": id, "instance_uuid": server}})),
            )
            .await
            .ok(200);
        let aid = r["attachment"]["id"].as_str().expect("id").to_owned();
        assert_eq!(r["attachment"]["status"], "reserved");
        assert_eq!(
            env.get(&format!("{}/{id}", vols(P_ALICE)), ALICE)
                .await
                .ok(200)["volume"]["status"],
            "reserved"
        );
        // A second reservation of the same volume is refused.
        env.call_v(
            Method::POST,
            &a,
            Some(ALICE),
            Some("3.44"),
            Some(json!({"attachment": {"volume_uuid": id, "instance_uuid": server}})),
        )
        .await
        .fault(400);
        env.call_v(
            Method::GET,
            &format!("{a}/{aid}"),
            Some(BOB),
            Some("3.44"),
            None,
        )
        .await
        .fault(400);
        env.call_v(
            Method::GET,
            &format!("/v3/{P_BOB}/attachments/{aid}"),
            Some(BOB),
            Some("3.44"),
            None,
        )
        .await
        .fault(404);
        let connector =
            json!({"host": "compute-1", "initiator": "iqn.x", "mountpoint": "/dev/vdb"});
        let r = env
            .call_v(
                Method::PUT,
                &format!("{a}/{aid}"),
                Some(ALICE),
                Some("3.44"),
                Some(json!({"attachment": {"connector": connector}})),
            )
            .await
            .ok(200);
        assert_eq!(
            r["attachment"]["connection_info"]["driver_volume_type"],
            "file"
        );
        assert_eq!(
            r["attachment"]["connection_info"]["data"]["device_path"],
            format!("/fake/{id}")
        );
        env.call_v(
            Method::POST,
            &format!("{a}/{aid}/action"),
            Some(ALICE),
            Some("3.44"),
            Some(json!({"os-complete": null})),
        )
        .await
        .ok(204);
        let v = env
            .get(&format!("{}/{id}", vols(P_ALICE)), ALICE)
            .await
            .ok(200);
        assert_eq!(v["volume"]["status"], "in-use");
        assert_eq!(v["volume"]["attachments"][0]["attachment_id"], aid.as_str());
        let l = env
            .call_v(
                Method::GET,
                &format!("{a}/detail?volume_id={id}"),
                Some(ALICE),
                Some("3.44"),
                None,
            )
            .await
            .ok(200);
        assert_eq!(l["attachments"][0]["status"], "attached");
        env.call_v(
            Method::DELETE,
            &format!("{a}/{aid}"),
            Some(ALICE),
            Some("3.44"),
            None,
        )
        .await
        .ok(200);
        assert_eq!(
            env.get(&format!("{}/{id}", vols(P_ALICE)), ALICE)
                .await
                .ok(200)["volume"]["status"],
            "available"
        );
        env.call_v(
            Method::GET,
            &format!("{a}/{aid}"),
            Some(ALICE),
            Some("3.44"),
            None,
        )
        .await
        .fault(404);
    })
    .await;
}

#[tokio::test]
async fn zones_and_extensions() {
    each_engine(|env| async move {
        let z = env
            .get(&format!("/v3/{P_ALICE}/os-availability-zone"), ALICE)
            .await
            .ok(200);
        assert_eq!(z["availabilityZoneInfo"][0]["zoneName"], "nova");
        let e = env
            .get(&format!("/v3/{P_ALICE}/extensions"), ALICE)
            .await
            .ok(200);
        let aliases: Vec<&str> = e["extensions"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|x| x["alias"].as_str())
            .collect();
        assert!(aliases.contains(&"os-volume-actions"));
        assert!(
            !aliases.contains(&"backups"),
            "no backups API, so no such extension"
        );
    })
    .await;
}
