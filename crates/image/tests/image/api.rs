//! Discovery, create/show/patch/delete, tags and schemas, with the bad input
//! Glance rejects.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn version_discovery_needs_no_token() {
    each_engine(|env| async move {
        let r = env.call(Method::GET, "/", None, None).await;
        assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
        let v = r.json();
        assert_eq!(v["versions"][0]["id"], "v2.17");
        assert_eq!(v["versions"][0]["status"], "CURRENT");
        assert_eq!(v["versions"][0]["links"][0]["rel"], "self");
        assert_eq!(
            v["versions"][0]["links"][0]["href"],
            "http://127.0.0.1:9292/v2/"
        );
        assert!(r.headers.get("x-openstack-request-id").is_some());

        let r = env
            .send(
                Env::request(Method::GET, "/", None)
                    .header("host", "img.example:9292")
                    .body(Body::empty())
                    .expect("req"),
            )
            .await;
        assert_eq!(
            r.json()["versions"][0]["links"][0]["href"],
            "http://img.example:9292/v2/"
        );

        let r = env.call(Method::GET, "/v2/", None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["versions"][0]["id"], "v2.17");

        let r = env.call(Method::GET, "/v2/images", None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = env
            .call(Method::GET, "/v2/images", Some("bogus"), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        let r = env.get("/v3/nothing", ALICE).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        r.error_message();
        // Every client mistake gets Glance's error body, not a framework text.
        let r = env
            .call(Method::DELETE, "/v2/images", Some(ALICE), None)
            .await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        r.error_message();
        let r = env.get("/v2/images?limit=%FF%FE", ALICE).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        r.error_message();
        let r = env.get("/v2/images/%FF%FE", ALICE).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        r.error_message();
    })
    .await;
}

#[tokio::test]
async fn create_and_show_like_the_openstack_cli() {
    each_engine(|env| async move {
        // The exact body `openstack image create` sends (captures/).
        let body = json!({"disk_format": "qcow2", "container_format": "bare", "name": "img",
            "owner_specified.openstack.md5": "", "owner_specified.openstack.sha256": "",
            "owner_specified.openstack.object": "images/img"});
        let r = env
            .call(Method::POST, "/v2/images", Some(ALICE), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let img = r.json();
        let id = img["id"].as_str().expect("id").to_owned();
        assert_eq!(
            r.headers.get("location").and_then(|v| v.to_str().ok()),
            Some(format!("http://127.0.0.1:9292/v2/images/{id}").as_str())
        );
        assert_eq!(img["status"], "queued");
        assert_eq!(img["visibility"], "shared");
        assert_eq!(img["protected"], false);
        assert_eq!(img["os_hidden"], false);
        assert_eq!(img["tags"], json!([]));
        assert_eq!(img["min_ram"], 0);
        assert_eq!(img["min_disk"], 0);
        assert_eq!(img["size"], json!(null));
        assert_eq!(img["checksum"], json!(null));
        assert_eq!(img["owner"], P_ALICE);
        assert_eq!(img["self"], format!("/v2/images/{id}"));
        assert_eq!(img["file"], format!("/v2/images/{id}/file"));
        assert_eq!(img["schema"], "/v2/schemas/image");
        assert_eq!(img["owner_specified.openstack.object"], "images/img");
        assert!(img["created_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z') && s.len() == 20));
        assert!(img.get("locations").is_none() && img.get("direct_url").is_none());

        let r = env.get(&format!("/v2/images/{id}"), ALICE).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json(), img);

        // The CLI's lookup by name: a 404 on the name, then a filtered list.
        let r = env.get("/v2/images/img", ALICE).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.error_message(), "No image found with ID img");
        let r = env.get("/v2/images?name=img", ALICE).await;
        let v = r.json();
        assert_eq!(v["images"][0]["id"], id.as_str());
        assert_eq!(v["schema"], "/v2/schemas/images");
        assert_eq!(v["first"], "/v2/images?name=img");

        // A caller-chosen id is kept; reusing it is a conflict.
        let chosen = "0b7a8b2e-6f0c-4f8e-9a53-2b1f1c9d7e10";
        let img = env.create(ALICE, json!({"id": chosen, "name": "x"})).await;
        assert_eq!(img["id"], chosen);
        let r = env
            .call(
                Method::POST,
                "/v2/images",
                Some(BOB),
                Some(json!({"id": chosen})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        r.error_message();
    })
    .await;
}

#[tokio::test]
async fn create_rejects_bad_input_with_glance_errors() {
    each_engine(|env| async move {
        let cases = [
            (json!({"status": "active"}), StatusCode::FORBIDDEN),
            (json!({"checksum": "x"}), StatusCode::FORBIDDEN),
            (json!({"self": "x"}), StatusCode::FORBIDDEN),
            (json!({"deleted": "x"}), StatusCode::FORBIDDEN),
            (json!({"os_glance_import": "x"}), StatusCode::FORBIDDEN),
            (json!({"disk_format": "floppy"}), StatusCode::BAD_REQUEST),
            (
                json!({"container_format": "crate"}),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"min_disk": -1}), StatusCode::BAD_REQUEST),
            (json!({"min_ram": "lots"}), StatusCode::BAD_REQUEST),
            (json!({"protected": "no"}), StatusCode::BAD_REQUEST),
            (json!({"name": "n".repeat(256)}), StatusCode::BAD_REQUEST),
            (json!({"custom": 5}), StatusCode::BAD_REQUEST),
            (json!({"tags": "notalist"}), StatusCode::BAD_REQUEST),
            (json!({"id": "not-a-uuid"}), StatusCode::BAD_REQUEST),
            (json!({"visibility": "public"}), StatusCode::FORBIDDEN),
            (json!({"visibility": "world"}), StatusCode::BAD_REQUEST),
            (json!({"owner": P_BOB}), StatusCode::FORBIDDEN),
            (json!(["a"]), StatusCode::BAD_REQUEST),
        ];
        for (body, status) in cases {
            let r = env
                .call(Method::POST, "/v2/images", Some(ALICE), Some(body.clone()))
                .await;
            assert_eq!(
                r.status,
                status,
                "{body}: {}",
                String::from_utf8_lossy(&r.bytes)
            );
            r.error_message();
        }
        for raw in ["{not json", "", "   "] {
            let r = env
                .send_as(Method::POST, "/v2/images", ALICE, "application/json", raw)
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{raw:?}");
            r.error_message();
        }
        // A reader may look but not create.
        let r = env
            .call(
                Method::POST,
                "/v2/images",
                Some(READER),
                Some(json!({"name": "r"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // Nothing above was half-written.
        let r = env.get("/v2/images?visibility=all", ADMIN).await;
        assert_eq!(r.json()["images"], json!([]));
        // An admin may publicise and create for another project.
        let img = env
            .create(
                ADMIN,
                json!({"name": "pub", "visibility": "public", "owner": P_BOB}),
            )
            .await;
        assert_eq!(img["visibility"], "public");
        assert_eq!(img["owner"], P_BOB);
    })
    .await;
}

#[tokio::test]
async fn json_patch_changes_core_and_custom_properties() {
    each_engine(|env| async move {
        let img = env
            .create(
                ALICE,
                json!({"name": "a", "hw_disk_bus": "virtio", "tags": ["x"]}),
            )
            .await;
        let id = img["id"].as_str().expect("id").to_owned();
        let r = env
            .patch(
                &id,
                ALICE,
                json!([
                    {"op": "replace", "path": "/name", "value": "b"},
                    {"op": "add", "path": "/os_distro", "value": "debian"},
                    {"op": "replace", "path": "/hw_disk_bus", "value": "scsi"},
                    {"op": "add", "path": "/min_ram", "value": 512},
                    {"op": "replace", "path": "/tags", "value": ["y", "z"]},
                    {"op": "replace", "path": "/visibility", "value": "private"},
                    {"op": "add", "path": "/protected", "value": true}
                ]),
            )
            .await;
        r.assert_status(StatusCode::OK);
        let v = r.json();
        assert_eq!(v["name"], "b");
        assert_eq!(v["os_distro"], "debian");
        assert_eq!(v["hw_disk_bus"], "scsi");
        assert_eq!(v["min_ram"], 512);
        assert_eq!(v["tags"], json!(["y", "z"]));
        assert_eq!(v["visibility"], "private");
        assert_eq!(v["protected"], true);
        assert_eq!(env.show(&id, ALICE).await, v);

        let r = env
            .patch(&id, ALICE, json!([{"op": "remove", "path": "/os_distro"}]))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json().get("os_distro").is_none());

        let cases = [
            (
                json!([{"op": "replace", "path": "/status", "value": "active"}]),
                StatusCode::FORBIDDEN,
            ),
            (
                json!([{"op": "replace", "path": "/size", "value": 1}]),
                StatusCode::FORBIDDEN,
            ),
            (
                json!([{"op": "add", "path": "/deleted_at", "value": "x"}]),
                StatusCode::FORBIDDEN,
            ),
            (
                json!([{"op": "remove", "path": "/name"}]),
                StatusCode::FORBIDDEN,
            ),
            (
                json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
                StatusCode::FORBIDDEN,
            ),
            (
                json!([{"op": "replace", "path": "/nope", "value": "x"}]),
                StatusCode::CONFLICT,
            ),
            (
                json!([{"op": "remove", "path": "/nope"}]),
                StatusCode::CONFLICT,
            ),
            (
                json!([{"op": "move", "path": "/name", "from": "/x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"op": "add", "path": "/x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"op": "add", "path": "/x", "value": 3}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"op": "add", "path": "/min_disk", "value": -2}]),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"op": "add"}), StatusCode::BAD_REQUEST),
            // A failing op after a good one leaves nothing changed.
            (
                json!([{"op": "replace", "path": "/name", "value": "c"},
                    {"op": "replace", "path": "/id", "value": "x"}]),
                StatusCode::FORBIDDEN,
            ),
        ];
        for (ops, status) in cases {
            let r = env.patch(&id, ALICE, ops.clone()).await;
            assert_eq!(
                r.status,
                status,
                "{ops}: {}",
                String::from_utf8_lossy(&r.bytes)
            );
            r.error_message();
        }
        assert_eq!(env.show(&id, ALICE).await["name"], "b");

        // Plain JSON is not a patch document.
        let path = format!("/v2/images/{id}");
        let r = env
            .send_as(Method::PATCH, &path, ALICE, "application/json", "[]")
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        r.error_message();
        // Others cannot see a private image at all; a reader may not write.
        let rename = json!([{"op": "replace", "path": "/name", "value": "z"}]);
        let r = env.patch(&id, BOB, rename.clone()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = env.patch(&id, READER, rename.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // The admin may publicise; then others see it but may not change it.
        let publicise = json!([{"op": "replace", "path": "/visibility", "value": "public"}]);
        let r = env.patch(&id, ADMIN, publicise).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = env.patch(&id, BOB, rename).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        r.error_message();
    })
    .await;
}

/// The older media type takes the draft-4 form (`{"replace": "/name", ..}`),
/// as Glance's deserializer does; its `add` does not overwrite.
#[tokio::test]
async fn json_patch_draft4_form() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "a").await;
        let path = format!("/v2/images/{id}");
        let v20 = "application/openstack-images-v2.0-json-patch";
        let r = env
            .send_as(
                Method::PATCH,
                &path,
                ALICE,
                v20,
                r#"[{"replace": "/name", "value": "b"}, {"add": "/color", "value": "red"},
                    {"add": "/size_hint", "value": "1"}, {"remove": "/size_hint"}]"#,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.bytes)
        );
        let v = r.json();
        assert_eq!(v["name"], "b");
        assert_eq!(v["color"], "red");
        assert!(v.get("size_hint").is_none());

        let cases: [(&'static str, StatusCode); 4] = [
            (
                r#"[{"add": "/color", "value": "blue"}]"#,
                StatusCode::CONFLICT,
            ),
            (
                r#"[{"op": "replace", "path": "/name", "value": "c"}]"#,
                StatusCode::BAD_REQUEST,
            ),
            (
                r#"[{"replace": "/name", "add": "/x", "value": "c"}]"#,
                StatusCode::BAD_REQUEST,
            ),
            (
                r#"[{"replace": "/status", "value": "active"}]"#,
                StatusCode::FORBIDDEN,
            ),
        ];
        for (body, status) in cases {
            let r = env.send_as(Method::PATCH, &path, ALICE, v20, body).await;
            assert_eq!(r.status, status, "{body}");
            r.error_message();
        }
        let r = env
            .send_as(
                Method::PATCH,
                &path,
                READER,
                v20,
                r#"[{"replace": "/name", "value": "r"}]"#,
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let v = env.show(&id, ALICE).await;
        assert_eq!(v["name"], "b");
        assert_eq!(v["color"], "red");
    })
    .await;
}

#[tokio::test]
async fn delete_respects_protection_and_ownership() {
    each_engine(|env| async move {
        let img = env
            .create(ALICE, json!({"name": "p", "protected": true, "disk_format": "raw", "container_format": "bare"}))
            .await;
        let id = img["id"].as_str().expect("id").to_owned();
        let path = format!("/v2/images/{id}");
        let r = env.call(Method::DELETE, &path, Some(ALICE), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.error_message().contains("protected"));
        env.patch(
            &id,
            ALICE,
            json!([{"op": "replace", "path": "/protected", "value": false}]),
        )
        .await;
        let r = env.upload(&id, ALICE, b"some data".to_vec()).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(env.store_files(), vec![id.clone()]);

        let r = env.call(Method::DELETE, &path, Some(BOB), None).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "shared, not a member: invisible"
        );
        let r = env.call(Method::DELETE, &path, Some(READER), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = env.call(Method::DELETE, &path, Some(ALICE), None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(
            env.store_files().is_empty(),
            "data removed: {:?}",
            env.store_files()
        );
        assert_eq!(env.get(&path, ALICE).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            env.call(Method::DELETE, &path, Some(ALICE), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Glance never reuses the id of a deleted image.
        let r = env
            .call(
                Method::POST,
                "/v2/images",
                Some(ALICE),
                Some(json!({"id": id})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            env.call(Method::DELETE, "/v2/images/zzz", Some(ALICE), None)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    })
    .await;
}

/// `method` on `/v2/images/{id}/tags/{tag}` as `token`.
async fn tag(env: &Env, method: Method, id: &str, tag: &str, token: &str) -> Resp {
    let uri = format!("/v2/images/{id}/tags/{tag}");
    env.call(method, &uri, Some(token), None).await
}

#[tokio::test]
async fn tags_can_be_added_and_removed() {
    each_engine(|env| async move {
        let img = env.create(ALICE, json!({"name": "t"})).await;
        let id = img["id"].as_str().expect("id").to_owned();
        for t in ["one", "two", "one"] {
            let r = tag(&env, Method::PUT, &id, t, ALICE).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
        assert_eq!(env.show(&id, ALICE).await["tags"], json!(["one", "two"]));
        let r = tag(&env, Method::DELETE, &id, "one", ALICE).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = tag(&env, Method::DELETE, &id, "one", ALICE).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        r.error_message();
        let r = tag(&env, Method::PUT, &id, &"x".repeat(256), ALICE).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = tag(&env, Method::PUT, &id, "x", BOB).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(env.show(&id, ALICE).await["tags"], json!(["two"]));
    })
    .await;
}

#[tokio::test]
async fn quotas_give_413() {
    each_engine(|env| async move {
        let mut body = serde_json::Map::new();
        for i in 0..129 {
            body.insert(format!("p{i}"), json!("v"));
        }
        let r = env
            .call(
                Method::POST,
                "/v2/images",
                Some(ALICE),
                Some(serde_json::Value::Object(body)),
            )
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        r.error_message();
    })
    .await;
}

#[tokio::test]
async fn schemas_are_served() {
    each_engine(|env| async move {
        let r = env.get("/v2/schemas/image", ALICE).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["name"], "image");
        assert_eq!(r.json()["additionalProperties"]["type"], "string");
        assert_eq!(
            env.get("/v2/schemas/images", ALICE).await.json()["name"],
            "images"
        );
        assert_eq!(
            env.get("/v2/schemas/member", ALICE).await.json()["name"],
            "member"
        );
        assert_eq!(
            env.get("/v2/schemas/members", ALICE).await.json()["name"],
            "members"
        );
    })
    .await;
}

/// A token without a project gets Glance's 403 on images, never "no
/// project filter" (issue 9), even with the admin role (domain-scoped).
#[tokio::test]
async fn tokens_without_a_project_get_403() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "mine").await;
        for token in [UNSCOPED, DOMAIN_ADMIN] {
            for uri in [
                "/v2/images".to_owned(),
                format!("/v2/images/{id}"),
                format!("/v2/images/{id}/members"),
            ] {
                let r = env.get(&uri, token).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{token} {uri}");
                assert_eq!(r.json()["error"]["code"], 403);
                assert!(!r.json().to_string().contains(&id));
            }
            env.delete(&id, token)
                .await
                .assert_status(StatusCode::FORBIDDEN);
            env.call(
                Method::POST,
                "/v2/images",
                Some(token),
                Some(json!({"name": "x", "disk_format": "raw", "container_format": "bare"})),
            )
            .await
            .assert_status(StatusCode::FORBIDDEN);
        }
        // Discovery is open to any token, as in Glance.
        env.get("/v2/info/import", UNSCOPED)
            .await
            .assert_status(StatusCode::OK);
    })
    .await;
}
