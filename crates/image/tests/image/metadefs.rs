//! Metadata definitions (`/v2/metadefs/...`) on both engines: the catalog
//! is written by admins, read by projects (public namespaces and their
//! own), and refuses duplicates, bad bodies and deletes of protected
//! namespaces with Glance's statuses.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

const NS: &str = "/v2/metadefs/namespaces";

async fn post(env: &Env, uri: &str, token: &str, body: Value) -> Resp {
    env.call(Method::POST, uri, Some(token), Some(body)).await
}

async fn put(env: &Env, uri: &str, token: &str, body: Value) -> Resp {
    env.call(Method::PUT, uri, Some(token), Some(body)).await
}

async fn delete(env: &Env, uri: &str, token: &str) -> Resp {
    env.call(Method::DELETE, uri, Some(token), None).await
}

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {list}"))
        .iter()
        .map(|v| v[field].as_str().unwrap_or("").to_owned())
        .collect()
}

/// A namespace owned by `owner`, created by the admin.
async fn namespace(env: &Env, name: &str, owner: &str, visibility: &str) {
    post(
        env,
        NS,
        ADMIN,
        json!({"namespace": name, "owner": owner, "visibility": visibility}),
    )
    .await
    .assert_status(StatusCode::CREATED);
}

#[tokio::test]
async fn namespaces_crud_visibility_and_paging() {
    each_engine(|env| async move {
        // Empty catalog: nothing is seeded.
        let r = env.get(NS, ALICE).await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.json()["namespaces"], json!([]));
        assert_eq!(r.json()["schema"], "/v2/schemas/metadefs/namespaces");
        let r = env.get("/v2/metadefs/resource_types", ALICE).await;
        assert_eq!(r.json(), json!({"resource_types": []}));

        // The whole tree in one create.
        let body = json!({
            "namespace": "OS::Compute::Test",
            "display_name": "Test",
            "description": "d",
            "visibility": "public",
            "protected": true,
            "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "hw_"}],
            "properties": {"cpu": {"title": "CPU", "type": "integer", "minimum": 1}},
            "objects": [{"name": "Obj", "required": ["x"],
                         "properties": {"x": {"title": "X", "type": "string"}}}],
            "tags": [{"name": "t1"}, {"name": "t2"}],
        });
        let r = post(&env, NS, ADMIN, body.clone()).await;
        r.assert_status(StatusCode::CREATED);
        assert_eq!(
            r.headers.get("location").and_then(|v| v.to_str().ok()),
            Some("/v2/metadefs/namespaces/OS::Compute::Test")
        );
        let created = r.json();
        assert_eq!(created["owner"], P_ADMIN);
        assert_eq!(created["protected"], true);
        assert_eq!(created["self"], "/v2/metadefs/namespaces/OS::Compute::Test");
        assert_eq!(created["tags"], json!([{"name": "t1"}, {"name": "t2"}]));
        let r = post(&env, NS, ADMIN, body).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.error_message().contains("already exists"));

        // Show: its content, and property names as they apply to images.
        let shown = env
            .get(&format!("{NS}/OS::Compute::Test"), BOB)
            .await
            .json();
        assert_eq!(shown["properties"]["cpu"]["title"], "CPU");
        assert_eq!(shown["objects"][0]["name"], "Obj");
        assert_eq!(shown["objects"][0]["required"], json!(["x"]));
        assert_eq!(shown["resource_type_associations"][0]["prefix"], "hw_");
        assert_eq!(shown["tags"], json!([{"name": "t1"}, {"name": "t2"}]));
        let prefixed = env
            .get(
                &format!("{NS}/OS::Compute::Test?resource_type=OS::Glance::Image"),
                BOB,
            )
            .await
            .json();
        assert!(prefixed["properties"]["hw_cpu"].is_object(), "{prefixed}");
        assert_eq!(prefixed["objects"][0]["required"], json!(["hw_x"]));

        // Only admins write; a project that sees the namespace gets 403.
        let r = post(&env, NS, ALICE, json!({"namespace": "mine"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        r.error_message();
        let r = put(
            &env,
            &format!("{NS}/OS::Compute::Test"),
            ALICE,
            json!({"namespace": "x"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // Private namespaces: the owner's project and admins only.
        namespace(&env, "alice-private", P_ALICE, "private").await;
        namespace(&env, "bob-private", P_BOB, "private").await;
        assert_eq!(
            env.get(&format!("{NS}/alice-private"), BOB).await.status,
            StatusCode::NOT_FOUND
        );
        let r = put(
            &env,
            &format!("{NS}/alice-private"),
            BOB,
            json!({"namespace": "x"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            env.get(&format!("{NS}/alice-private"), READER).await.status,
            StatusCode::OK
        );
        let mut seen = names(&env.get(NS, ALICE).await.json(), "namespaces", "namespace");
        seen.sort();
        assert_eq!(seen, ["OS::Compute::Test", "alice-private"]);
        assert_eq!(
            names(&env.get(NS, ADMIN).await.json(), "namespaces", "namespace").len(),
            3
        );
        let public = env
            .get(&format!("{NS}?visibility=public"), ADMIN)
            .await
            .json();
        assert_eq!(
            names(&public, "namespaces", "namespace"),
            ["OS::Compute::Test"]
        );
        assert_eq!(
            env.get(&format!("{NS}?visibility=world"), ADMIN)
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        let by_type = env
            .get(&format!("{NS}?resource_types=OS::Glance::Image"), ADMIN)
            .await
            .json();
        assert_eq!(
            names(&by_type, "namespaces", "namespace"),
            ["OS::Compute::Test"]
        );
        assert_eq!(
            by_type["namespaces"][0]["resource_type_associations"][0]["name"],
            "OS::Glance::Image"
        );

        // Paging by name.
        let page = env
            .get(
                &format!("{NS}?limit=2&sort_key=namespace&sort_dir=asc"),
                ADMIN,
            )
            .await
            .json();
        assert_eq!(
            names(&page, "namespaces", "namespace"),
            ["OS::Compute::Test", "alice-private"]
        );
        let next = page["next"].as_str().expect("next").to_owned();
        assert!(next.contains("marker=alice-private"), "{next}");
        let page2 = env.get(&next, ADMIN).await.json();
        assert_eq!(names(&page2, "namespaces", "namespace"), ["bob-private"]);
        assert!(page2.get("next").is_none(), "{page2}");
        for bad in ["limit=x", "limit=-1", "sort_dir=up", "sort_key=colour"] {
            assert_eq!(
                env.get(&format!("{NS}?{bad}"), ADMIN).await.status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert_eq!(
            env.get(&format!("{NS}?marker=nope"), ADMIN).await.status,
            StatusCode::NOT_FOUND
        );

        // Update replaces; a rename onto another name is 409.
        let r = put(
            &env,
            &format!("{NS}/alice-private"),
            ADMIN,
            json!({"namespace": "alice-renamed", "owner": P_ALICE, "display_name": "A"}),
        )
        .await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.json()["visibility"], "private");
        assert_eq!(r.json()["display_name"], "A");
        let r = put(
            &env,
            &format!("{NS}/alice-renamed"),
            ADMIN,
            json!({"namespace": "bob-private"}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            env.get(&format!("{NS}/alice-private"), ADMIN).await.status,
            StatusCode::NOT_FOUND
        );

        // Bad bodies: 400 in Glance's body; read-only attributes 403.
        for (body, status) in [
            (json!({}), StatusCode::BAD_REQUEST),
            (
                json!({"namespace": "x".repeat(81)}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n", "visibility": "shared"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n", "protected": "yes"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n", "colour": "red"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n", "properties": {"p": {"title": "P"}}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"namespace": "n", "self": "/x"}),
                StatusCode::FORBIDDEN,
            ),
            (json!(["n"]), StatusCode::BAD_REQUEST),
        ] {
            let r = post(&env, NS, ADMIN, body.clone()).await;
            assert_eq!(r.status, status, "{body}");
            r.error_message();
        }
        let r = env
            .send_as(Method::POST, NS, ADMIN, "application/json", "{not json")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        // Protected: no delete of it or its content until unprotected.
        let test_ns = format!("{NS}/OS::Compute::Test");
        for uri in [
            test_ns.clone(),
            format!("{test_ns}/objects"),
            format!("{test_ns}/properties"),
            format!("{test_ns}/tags"),
            format!("{test_ns}/objects/Obj"),
            format!("{test_ns}/properties/cpu"),
            format!("{test_ns}/tags/t1"),
            format!("{test_ns}/resource_types/OS::Glance::Image"),
        ] {
            let r = delete(&env, &uri, ADMIN).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
            assert!(r.error_message().contains("protected"), "{uri}");
        }
        put(
            &env,
            &test_ns,
            ADMIN,
            json!({"namespace": "OS::Compute::Test", "visibility": "public"}),
        )
        .await
        .assert_status(StatusCode::OK);
        delete(&env, &format!("{test_ns}/objects"), ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        let shown = env.get(&test_ns, ADMIN).await.json();
        assert!(shown.get("objects").is_none(), "{shown}");
        assert!(shown["properties"].is_object(), "{shown}");
        delete(&env, &test_ns, ALICE)
            .await
            .assert_status(StatusCode::FORBIDDEN);
        delete(&env, &test_ns, ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        assert_eq!(env.get(&test_ns, ADMIN).await.status, StatusCode::NOT_FOUND);
        // The resource type it created stays (Glance keeps them).
        let types = env.get("/v2/metadefs/resource_types", ALICE).await.json();
        assert_eq!(
            names(&types, "resource_types", "name"),
            ["OS::Glance::Image"]
        );

        // Unscoped tokens have no project to read as.
        assert_eq!(env.get(NS, UNSCOPED).await.status, StatusCode::FORBIDDEN);
    })
    .await;
}

#[tokio::test]
async fn objects_properties_and_associations() {
    each_engine(|env| async move {
        namespace(&env, "ns", P_ALICE, "private").await;
        let objects = format!("{NS}/ns/objects");
        let obj = json!({"name": "CPU Limits", "description": "limits", "required": ["a"],
            "properties": {"a": {"title": "A", "type": "integer", "maximum": 5, "junk": 1}}});
        let r = post(&env, &objects, ADMIN, obj.clone()).await;
        r.assert_status(StatusCode::CREATED);
        let o = r.json();
        assert_eq!(o["self"], "/v2/metadefs/namespaces/ns/objects/CPU Limits");
        assert_eq!(o["schema"], "/v2/schemas/metadefs/object");
        // Attributes Glance does not know are dropped inside definitions.
        assert!(o["properties"]["a"].get("junk").is_none(), "{o}");
        assert_eq!(
            post(&env, &objects, ADMIN, obj).await.status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            post(&env, &objects, ALICE, json!({"name": "x"}))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post(&env, &objects, BOB, json!({"name": "x"})).await.status,
            StatusCode::NOT_FOUND
        );
        for bad in [
            json!({}),
            json!({"name": "x", "required": "a"}),
            json!({"name": "x", "properties": {"p": {"type": "string"}}}),
            json!({"name": "x", "extra": 1}),
        ] {
            assert_eq!(
                post(&env, &objects, ADMIN, bad.clone()).await.status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        let list = env.get(&objects, ALICE).await.json();
        assert_eq!(names(&list, "objects", "name"), ["CPU Limits"]);
        assert_eq!(list["schema"], "/v2/schemas/metadefs/objects");
        let one = format!("{objects}/CPU Limits").replace(' ', "%20");
        assert_eq!(env.get(&one, ALICE).await.json()["required"], json!(["a"]));
        assert_eq!(env.get(&one, BOB).await.status, StatusCode::NOT_FOUND);
        let r = put(&env, &one, ADMIN, json!({"name": "Renamed"})).await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.json()["required"], json!([]));
        assert_eq!(env.get(&one, ADMIN).await.status, StatusCode::NOT_FOUND);
        post(&env, &objects, ADMIN, json!({"name": "Other"}))
            .await
            .assert_status(StatusCode::CREATED);
        assert_eq!(
            put(
                &env,
                &format!("{objects}/Other"),
                ADMIN,
                json!({"name": "Renamed"})
            )
            .await
            .status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            put(
                &env,
                &format!("{objects}/Nope"),
                ADMIN,
                json!({"name": "N"})
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        delete(&env, &format!("{objects}/Other"), ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        assert_eq!(
            delete(&env, &format!("{objects}/Other"), ADMIN)
                .await
                .status,
            StatusCode::NOT_FOUND
        );

        // Properties.
        let props = format!("{NS}/ns/properties");
        let p = json!({"name": "hypervisor_type", "title": "Hypervisor", "type": "string",
            "enum": ["kvm", "qemu"]});
        let r = post(&env, &props, ADMIN, p.clone()).await;
        r.assert_status(StatusCode::CREATED);
        assert_eq!(r.json()["name"], "hypervisor_type");
        assert_eq!(
            post(&env, &props, ADMIN, p).await.status,
            StatusCode::CONFLICT
        );
        for (bad, status) in [
            (
                json!({"title": "T", "type": "string"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"name": "n", "title": "T", "type": "text"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"name": "n", "title": "T", "type": "string", "x": 1}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"name": "n", "title": "T", "type": "string", "created_at": "x"}),
                StatusCode::FORBIDDEN,
            ),
        ] {
            assert_eq!(
                post(&env, &props, ADMIN, bad.clone()).await.status,
                status,
                "{bad}"
            );
        }
        let list = env.get(&props, READER).await.json();
        assert_eq!(
            list["properties"]["hypervisor_type"]["enum"],
            json!(["kvm", "qemu"])
        );
        let shown = env
            .get(&format!("{props}/hypervisor_type"), ALICE)
            .await
            .json();
        assert_eq!(shown["title"], "Hypervisor");
        let r = put(
            &env,
            &format!("{props}/hypervisor_type"),
            ADMIN,
            json!({"name": "hv", "title": "HV", "type": "string"}),
        )
        .await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.json()["name"], "hv");

        // Associations, and properties looked up with their prefix.
        let rts = format!("{NS}/ns/resource_types");
        let r = post(
            &env,
            &rts,
            ADMIN,
            json!({"name": "OS::Nova::Flavor", "prefix": "hw:", "properties_target": "flavor"}),
        )
        .await;
        r.assert_status(StatusCode::CREATED);
        assert_eq!(r.json()["prefix"], "hw:");
        assert_eq!(
            post(&env, &rts, ADMIN, json!({"name": "OS::Nova::Flavor"}))
                .await
                .status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            post(&env, &rts, ADMIN, json!({"prefix": "x"})).await.status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            post(&env, &rts, ALICE, json!({"name": "OS::Cinder::Volume"}))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let list = env.get(&rts, ALICE).await.json();
        assert_eq!(
            names(&list, "resource_type_associations", "name"),
            ["OS::Nova::Flavor"]
        );
        let shown = env
            .get(
                &format!("{props}/hw:hv?resource_type=OS::Nova::Flavor"),
                ALICE,
            )
            .await;
        shown.assert_status(StatusCode::OK);
        assert_eq!(shown.json()["name"], "hv");
        assert_eq!(
            env.get(&format!("{props}/hv?resource_type=OS::Nova::Flavor"), ALICE)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let types = env.get("/v2/metadefs/resource_types", BOB).await.json();
        assert_eq!(
            names(&types, "resource_types", "name"),
            ["OS::Nova::Flavor"]
        );
        delete(&env, &format!("{rts}/OS::Nova::Flavor"), ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        assert_eq!(
            delete(&env, &format!("{rts}/OS::Nova::Flavor"), ADMIN)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        delete(&env, &format!("{props}/hv"), ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        assert_eq!(
            env.get(&format!("{props}/hv"), ADMIN).await.status,
            StatusCode::NOT_FOUND
        );
        delete(&env, &props, ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
    })
    .await;
}

#[tokio::test]
async fn tags() {
    each_engine(|env| async move {
        namespace(&env, "ns", P_ALICE, "public").await;
        let tags = format!("{NS}/ns/tags");
        let r = post(
            &env,
            &tags,
            ADMIN,
            json!({"tags": [{"name": "a"}, {"name": "b"}]}),
        )
        .await;
        r.assert_status(StatusCode::CREATED);
        assert_eq!(r.json(), json!({"tags": [{"name": "a"}, {"name": "b"}]}));
        // Without X-Openstack-Append the list replaces; with it, adds.
        post(&env, &tags, ADMIN, json!({"tags": [{"name": "c"}]}))
            .await
            .assert_status(StatusCode::CREATED);
        assert_eq!(
            names(&env.get(&tags, BOB).await.json(), "tags", "name"),
            ["c"]
        );
        let req = Env::request(Method::POST, &tags, Some(ADMIN))
            .header("content-type", "application/json")
            .header("x-openstack-append", "True")
            .body(Body::from(
                json!({"tags": [{"name": "d"}, {"name": "e"}]}).to_string(),
            ))
            .expect("request");
        env.send(req).await.assert_status(StatusCode::CREATED);
        let mut all = names(&env.get(&tags, BOB).await.json(), "tags", "name");
        all.sort();
        assert_eq!(all, ["c", "d", "e"]);
        // A duplicate changes nothing.
        let r = post(
            &env,
            &tags,
            ADMIN,
            json!({"tags": [{"name": "x"}, {"name": "x"}]}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.error_message().contains("already exists"));
        assert_eq!(
            names(&env.get(&tags, BOB).await.json(), "tags", "name").len(),
            3
        );
        for bad in [
            json!({"tags": "a"}),
            json!({"tags": [{"nom": "a"}]}),
            json!({"x": []}),
        ] {
            assert_eq!(
                post(&env, &tags, ADMIN, bad.clone()).await.status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
        assert_eq!(
            post(&env, &tags, ALICE, json!({"tags": []})).await.status,
            StatusCode::FORBIDDEN
        );

        // Paging by name.
        let page = env
            .get(&format!("{tags}?sort_key=name&sort_dir=asc&limit=2"), BOB)
            .await
            .json();
        assert_eq!(names(&page, "tags", "name"), ["c", "d"]);
        let page = env
            .get(&format!("{tags}?sort_key=name&sort_dir=asc&marker=d"), BOB)
            .await
            .json();
        assert_eq!(names(&page, "tags", "name"), ["e"]);

        // One tag at a time.
        let one = format!("{tags}/f");
        let r = post(&env, &one, ADMIN, json!(null)).await;
        r.assert_status(StatusCode::CREATED);
        assert_eq!(r.json()["name"], "f");
        assert!(r.json()["created_at"].is_string());
        assert_eq!(
            env.call(Method::POST, &one, Some(ADMIN), None).await.status,
            StatusCode::CONFLICT
        );
        assert_eq!(env.get(&one, BOB).await.json()["name"], "f");
        let r = put(&env, &one, ADMIN, json!({"name": "g"})).await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.json()["name"], "g");
        assert_eq!(
            put(&env, &format!("{tags}/g"), ADMIN, json!({"name": "c"}))
                .await
                .status,
            StatusCode::CONFLICT
        );
        assert_eq!(env.get(&one, BOB).await.status, StatusCode::NOT_FOUND);
        delete(&env, &format!("{tags}/g"), ALICE)
            .await
            .assert_status(StatusCode::FORBIDDEN);
        delete(&env, &format!("{tags}/g"), ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        delete(&env, &tags, ADMIN)
            .await
            .assert_status(StatusCode::NO_CONTENT);
        assert_eq!(env.get(&tags, BOB).await.json(), json!({"tags": []}));
    })
    .await;
}

#[tokio::test]
async fn metadef_schemas() {
    each_engine(|env| async move {
        for (path, name) in [
            ("namespace", "namespace"),
            ("namespaces", "namespaces"),
            ("object", "object"),
            ("objects", "objects"),
            ("property", "property"),
            ("properties", "properties"),
            ("resource_type", "resource_type_association"),
            ("resource_types", "resource_type_associations"),
            ("tag", "tag"),
            ("tags", "tags"),
        ] {
            let r = env
                .get(&format!("/v2/schemas/metadefs/{path}"), READER)
                .await;
            r.assert_status(StatusCode::OK);
            assert_eq!(r.json()["name"], name, "{path}");
        }
    })
    .await;
}
