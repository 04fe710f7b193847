//! Listing: visibility rules, filters, sorting and paging with `next`.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::harness::*;

fn ids(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn filters_sorting_and_paging() {
    each_engine(|env| async move {
        let a = env.create(ALICE, json!({"name": "alpha", "tags": ["t1", "t2"], "os_distro": "debian", "min_ram": 3})).await;
        let b = env.create(ALICE, json!({"name": "bravo", "tags": ["t1"], "os_distro": "fedora", "disk_format": "raw", "min_ram": 1})).await;
        let c = env.create(ALICE, json!({"name": "charlie", "visibility": "private", "min_ram": 2})).await;
        let d = env.create(ALICE, json!({"name": "delta", "os_hidden": true})).await;
        let e = env.create(ALICE, json!({"name": "echo", "disk_format": "qcow2", "container_format": "bare"})).await;
        let id = |v: &Value| v["id"].as_str().expect("id").to_owned();
        env.upload(&id(&e), ALICE, b"12345".to_vec()).await;

        // Default: newest first, hidden images left out.
        let all = env.get("/v2/images", ALICE).await.json();
        assert_eq!(names(&all), vec!["echo", "charlie", "bravo", "alpha"]);
        assert_eq!(all["first"], "/v2/images");
        assert!(all.get("next").is_none());

        let q = |s: &str| format!("/v2/images?{s}");
        assert_eq!(names(&env.get(&q("name=bravo"), ALICE).await.json()), vec!["bravo"]);
        assert_eq!(names(&env.get(&q("name=in:alpha,echo&sort_key=name&sort_dir=asc"), ALICE).await.json()), vec!["alpha", "echo"]);
        assert_eq!(names(&env.get(&q("tag=t1&sort_key=name&sort_dir=asc"), ALICE).await.json()), vec!["alpha", "bravo"]);
        assert_eq!(names(&env.get(&q("tag=t1&tag=t2"), ALICE).await.json()), vec!["alpha"]);
        assert_eq!(names(&env.get(&q("os_distro=fedora"), ALICE).await.json()), vec!["bravo"]);
        assert_eq!(names(&env.get(&q("status=active"), ALICE).await.json()), vec!["echo"]);
        assert_eq!(names(&env.get(&q("disk_format=raw"), ALICE).await.json()), vec!["bravo"]);
        assert_eq!(names(&env.get(&q("visibility=private"), ALICE).await.json()), vec!["charlie"]);
        assert_eq!(names(&env.get(&q("os_hidden=true"), ALICE).await.json()), vec!["delta"]);
        assert_eq!(names(&env.get(&q("size_min=5&size_max=5"), ALICE).await.json()), vec!["echo"]);
        assert_eq!(names(&env.get(&q(&format!("owner={P_ALICE}&name=alpha")), ALICE).await.json()), vec!["alpha"]);
        let in_ids = env.get(&q(&format!("id=in%3A{},{}&sort_key=name&sort_dir=asc", id(&a), id(&c))), ALICE).await.json();
        assert_eq!(names(&in_ids), vec!["alpha", "charlie"]);
        assert_eq!(names(&env.get(&q("sort=min_ram:asc,name:asc"), ALICE).await.json()), vec!["echo", "bravo", "charlie", "alpha"]);
        assert_eq!(names(&env.get(&q("sort_key=name&sort_dir=desc"), ALICE).await.json()), vec!["echo", "charlie", "bravo", "alpha"]);
        // Other projects see none of these (shared without membership, private).
        assert_eq!(ids(&env.get("/v2/images", BOB).await.json()), Vec::<String>::new());
        // The admin sees everything, hidden ones on request.
        assert_eq!(ids(&env.get(&q("os_hidden=true"), ADMIN).await.json()), vec![id(&d)]);

        // Paging: follow `next` until it runs out; every image exactly once.
        let mut seen = Vec::new();
        let mut url = q("limit=2&sort_key=name&sort_dir=asc");
        let mut pages = 0;
        loop {
            let page = env.get(&url, ALICE).await.json();
            seen.extend(names(&page));
            pages += 1;
            match page.get("next").and_then(Value::as_str) {
                Some(next) => {
                    assert!(next.contains("marker="), "{next}");
                    url = next.to_owned();
                }
                None => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(seen, vec!["alpha", "bravo", "charlie", "echo"]);
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len());
        let page = env.get(&q(&format!("limit=1&marker={}&sort_key=name&sort_dir=asc", id(&b))), ALICE).await.json();
        assert_eq!(names(&page), vec!["charlie"]);
        assert_eq!(page["first"], "/v2/images?limit=1&sort_key=name&sort_dir=asc");

        for bad in [
            "limit=x", "limit=-1", "sort_key=color", "sort_dir=sideways", "visibility=everyone",
            "member_status=maybe", "status=flying", "protected=perhaps", "size_min=-1",
            "created_at=gt:yesterday", "sort=name:asc&sort_key=name",
        ] {
            let r = env.get(&q(bad), ALICE).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
            r.error_message();
        }
        let r = env.get(&q(&format!("marker={}", uuid::Uuid::new_v4())), ALICE).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = env.get(&q(&format!("marker={}", id(&c))), BOB).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "a marker the caller cannot see");
        let _ = b;
    })
    .await;
}

#[tokio::test]
async fn visibility_rules_for_listing_and_showing() {
    each_engine(|env| async move {
        let private = env
            .create(ALICE, json!({"name": "private", "visibility": "private"}))
            .await;
        let community = env
            .create(
                ALICE,
                json!({"name": "community", "visibility": "community"}),
            )
            .await;
        let public = env
            .create(ADMIN, json!({"name": "public", "visibility": "public"}))
            .await;
        let id = |v: &Value| v["id"].as_str().expect("id").to_owned();

        assert_eq!(
            env.get(&format!("/v2/images/{}", id(&private)), BOB)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            env.get(&format!("/v2/images/{}/file", id(&private)), BOB)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            env.get(&format!("/v2/images/{}", id(&community)), BOB)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            env.get(&format!("/v2/images/{}", id(&public)), BOB)
                .await
                .status,
            StatusCode::OK
        );

        // Community images are listed only on request.
        assert_eq!(
            names(&env.get("/v2/images", BOB).await.json()),
            vec!["public"]
        );
        assert_eq!(
            names(&env.get("/v2/images?visibility=community", BOB).await.json()),
            vec!["community"]
        );
        assert_eq!(
            names(
                &env.get("/v2/images?visibility=all&sort_key=name&sort_dir=asc", BOB)
                    .await
                    .json()
            ),
            vec!["community", "public"]
        );
        assert_eq!(
            names(
                &env.get("/v2/images?sort_key=name&sort_dir=asc", ALICE)
                    .await
                    .json()
            ),
            vec!["community", "private", "public"]
        );
        assert_eq!(
            names(&env.get("/v2/images?visibility=public", ALICE).await.json()),
            vec!["public"]
        );
    })
    .await;
}
