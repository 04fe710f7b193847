//! CRUD with Keystone's bodies, filters, links, conflicts and bad input.

use axum::http::{Method, StatusCode};
use serde_json::json;
use stratus_identity::BootstrapSpec;

use super::common::{clouds, names, ADMIN_PW};

#[tokio::test]
async fn projects_and_users_crud() {
    for c in clouds().await {
        let a = &c.admin;
        let r = c
            .post(
                "/v3/projects",
                a,
                json!({"project": {"name": "web", "description": null, "enabled": true}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let p = &r.body["project"];
        let pid = p["id"].as_str().expect("id").to_owned();
        assert_eq!(pid.len(), 32);
        assert_eq!(p["domain_id"], "default");
        assert_eq!(p["parent_id"], "default");
        assert_eq!(
            p["links"]["self"],
            format!("http://keystone.test:5000/v3/projects/{pid}")
        );

        // Duplicate name: 409, nothing written.
        c.post("/v3/projects", a, json!({"project": {"name": "web"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let r = c.get("/v3/projects?name=web", a).await;
        assert_eq!(r.body["projects"].as_array().map(Vec::len), Some(1));
        assert!(r.body["links"]["self"].is_string());

        // Bad bodies.
        c.post("/v3/projects", a, json!({"project": {"name": ""}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        c.post(
            "/v3/projects",
            a,
            json!({"project": {"name": "x", "enabled": "yes"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        c.post("/v3/projects", a, json!({"name": "x"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        c.post(
            "/v3/projects",
            a,
            json!({"project": {"name": "x", "domain_id": "nope"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        c.get("/v3/projects?enabled=maybe", a)
            .await
            .assert_error(StatusCode::BAD_REQUEST);

        // Update, show, filters.
        let r = c
            .patch(
                &format!("/v3/projects/{pid}"),
                a,
                json!({"project": {"description": "d", "enabled": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["project"]["description"], "d");
        let r = c.get("/v3/projects?enabled=false", a).await;
        assert_eq!(r.names("projects"), vec!["web"]);
        c.get("/v3/projects/does-not-exist", a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.patch("/v3/projects/nope", a, json!({"project": {}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Tags are kept; bad tags are 400.
        let r = c
            .post(
                "/v3/projects",
                a,
                json!({"project": {"name": "tagged", "tags": ["x", "y"]}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["project"]["tags"], json!(["x", "y"]));
        c.post(
            "/v3/projects",
            a,
            json!({"project": {"name": "badtags", "tags": "x"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        // Users: email kept as an extra attribute, password never shown.
        let r = c.post("/v3/users", a, json!({"user": {"name": "carol", "password": "pw", "email": "c@example.org", "default_project_id": pid}})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let u = &r.body["user"];
        let uid = u["id"].as_str().expect("id").to_owned();
        assert_eq!(u["email"], "c@example.org");
        assert_eq!(u["domain_id"], "default");
        assert!(u.get("password").is_none());
        c.post("/v3/users", a, json!({"user": {"name": "carol"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let r = c.get("/v3/users?name=carol", a).await;
        assert_eq!(r.body["users"].as_array().map(Vec::len), Some(1));
        let r = c.get(&format!("/v3/users/{uid}"), a).await;
        assert_eq!(r.body["user"]["default_project_id"], pid);
        // Rename onto an existing name: 409 and the user keeps its name.
        c.patch(
            &format!("/v3/users/{uid}"),
            a,
            json!({"user": {"name": "admin"}}),
        )
        .await
        .assert_error(StatusCode::CONFLICT);
        assert_eq!(
            c.get(&format!("/v3/users/{uid}"), a).await.body["user"]["name"],
            "carol"
        );

        // A user's projects.
        c.grant(&pid, &uid, "reader").await;
        let r = c
            .get(&format!("/v3/projects/{pid}/users/{uid}/roles"), a)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.names("roles"),
            vec!["reader"],
            "direct grants only, no implied roles"
        );
        let reader = c.role_id("reader").await;
        let r = c
            .head(&format!("/v3/projects/{pid}/users/{uid}/roles/{reader}"), a)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .head(
                &format!("/v3/domains/default/users/{uid}/roles/{reader}"),
                a,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c.get(&format!("/v3/users/{uid}/projects"), a).await;
        assert_eq!(r.body["projects"][0]["id"], pid);

        let r = c.delete(&format!("/v3/users/{uid}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        c.get(&format!("/v3/users/{uid}"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.delete(&format!("/v3/users/{uid}"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = c.delete(&format!("/v3/projects/{pid}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn domains_groups_and_effective_assignments() {
    for c in clouds().await {
        let a = &c.admin;
        let did = c.create("domain", json!({"name": "acme"})).await;
        c.post("/v3/domains", a, json!({"domain": {"name": "acme"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let dave = c
            .create(
                "user",
                json!({"name": "dave", "password": "pw", "domain_id": did}),
            )
            .await;
        let ops = c
            .create("project", json!({"name": "ops", "domain_id": did}))
            .await;

        // A group grant reaches the member.
        let gid = c
            .create("group", json!({"name": "devs", "domain_id": did}))
            .await;
        let r = c.put(&format!("/v3/groups/{gid}/users/{dave}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c.head(&format!("/v3/groups/{gid}/users/{dave}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let member = c.role_id("member").await;
        let r = c
            .put(
                &format!("/v3/projects/{ops}/groups/{gid}/roles/{member}"),
                a,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let r = c
            .head(
                &format!("/v3/projects/{ops}/groups/{gid}/roles/{member}"),
                a,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "dave", "domain": {"name": "acme"}, "password": "pw"}}},
            "scope": {"project": {"name": "ops", "domain": {"id": did}}}}});
        let r = c.auth(body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let mut roles = names(&r.body["token"]["roles"]);
        roles.sort_unstable();
        assert_eq!(roles, vec!["member", "reader"]);

        // Direct listing shows the group grant; effective shows dave's roles.
        let r = c
            .get(&format!("/v3/role_assignments?scope.project.id={ops}"), a)
            .await;
        let list = r.body["role_assignments"].as_array().expect("list");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["group"]["id"], gid);
        let r = c
            .get(
                &format!("/v3/role_assignments?effective&include_names&user.id={dave}"),
                a,
            )
            .await;
        let list = r.body["role_assignments"].as_array().expect("list");
        assert_eq!(list.len(), 2, "{}", r.body);
        assert!(list
            .iter()
            .all(|x| x["user"]["name"] == "dave" && x["scope"]["project"]["name"] == "ops"));
        let r = c
            .get(
                &format!("/v3/role_assignments?effective&role.id={member}&user.id={dave}"),
                a,
            )
            .await;
        assert_eq!(r.body["role_assignments"].as_array().map(Vec::len), Some(1));

        // Leaving the group takes the role away.
        let r = c.delete(&format!("/v3/groups/{gid}/users/{dave}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .get(&format!("/v3/role_assignments?effective&user.id={dave}"), a)
            .await;
        assert_eq!(r.body["role_assignments"].as_array().map(Vec::len), Some(0));

        // Grants on unknown things are 404; revoking twice is 404.
        c.put(&format!("/v3/projects/nope/users/{dave}/roles/{member}"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.put(&format!("/v3/projects/{ops}/users/{dave}/roles/nope"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.delete(
            &format!("/v3/projects/{ops}/users/{dave}/roles/{member}"),
            a,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // An enabled domain cannot be deleted; a disabled one goes with its contents.
        c.delete(&format!("/v3/domains/{did}"), a)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.patch(
            &format!("/v3/domains/{did}"),
            a,
            json!({"domain": {"enabled": false}}),
        )
        .await;
        let r = c.delete(&format!("/v3/domains/{did}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        c.get(&format!("/v3/users/{dave}"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.get(&format!("/v3/projects/{ops}"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn roles_and_implications() {
    for c in clouds().await {
        let a = &c.admin;
        let aud = c.create("role", json!({"name": "auditor"})).await;
        c.post("/v3/roles", a, json!({"role": {"name": "auditor"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let reader = c.role_id("reader").await;
        let r = c.put(&format!("/v3/roles/{aud}/implies/{reader}"), a).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = c.get("/v3/role_inferences", a).await;
        assert!(r.body["role_inferences"].as_array().expect("list").len() >= 3);
        let r = c.get(&format!("/v3/roles/{aud}/implies"), a).await;
        assert_eq!(r.body["role_inference"]["implies"][0]["name"], "reader");

        let eve = c.user("eve", "pw").await;
        let p = c.project("audit").await;
        c.grant(&p, &eve, "auditor").await;
        let r = c.login("eve", "pw", Some("audit")).await;
        let mut roles = names(&r.body["token"]["roles"]);
        roles.sort_unstable();
        assert_eq!(roles, vec!["auditor", "reader"]);
        let token = r.token();
        // Deleting the role removes the grant and so the token's access.
        let r = c.delete(&format!("/v3/roles/{aud}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(c.check(&token).await, StatusCode::NOT_FOUND);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn catalog_crud_and_registration() {
    for c in clouds().await {
        let a = &c.admin;
        // register_service is idempotent and updates the URL.
        c.identity
            .register_service("image", "glance", "http://127.0.0.1:9292", "RegionOne")
            .await
            .expect("register");
        c.identity
            .register_service("image", "glance", "http://10.0.0.1:9292", "RegionOne")
            .await
            .expect("register");
        let r = c.get("/v3/services?type=image", a).await;
        let services = r.body["services"].as_array().expect("list");
        assert_eq!(services.len(), 1);
        let sid = services[0]["id"].as_str().expect("id").to_owned();
        let r = c.get(&format!("/v3/endpoints?service_id={sid}"), a).await;
        let eps = r.body["endpoints"].as_array().expect("list");
        assert_eq!(eps.len(), 3);
        assert!(eps.iter().all(|e| e["url"] == "http://10.0.0.1:9292"));

        let r = c
            .post(
                "/v3/regions",
                a,
                json!({"region": {"id": "RegionTwo", "description": "second"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        c.post("/v3/regions", a, json!({"region": {"id": "RegionTwo"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let vid = c
            .create("service", json!({"type": "volumev3", "name": "cinderv3"}))
            .await;
        c.post("/v3/services", a, json!({"service": {"name": "typeless"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let eid = c
            .create(
                "endpoint",
                json!({"service_id": vid, "interface": "public", "region_id": "RegionTwo",
            "url": "http://127.0.0.1:8776/v3/$(project_id)s"}),
            )
            .await;
        c.post(
            "/v3/endpoints",
            a,
            json!({"endpoint": {"service_id": vid, "interface": "sideways", "url": "http://x"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        c.post(
            "/v3/endpoints",
            a,
            json!({"endpoint": {"service_id": "nope", "interface": "public", "url": "http://x"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        // The region is in use.
        c.delete("/v3/regions/RegionTwo", a)
            .await
            .assert_error(StatusCode::CONFLICT);

        let r = c.get("/v3/auth/catalog", a).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body["catalog"]
            .as_array()
            .expect("catalog")
            .iter()
            .any(|s| s["type"] == "volumev3"));

        let r = c.delete(&format!("/v3/endpoints/{eid}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c.delete(&format!("/v3/services/{vid}"), a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c.delete("/v3/regions/RegionTwo", a).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn bootstrap_is_idempotent() {
    for c in clouds().await {
        let again = c
            .identity
            .bootstrap(&BootstrapSpec::from_config(&c.config, "other"))
            .await
            .expect("bootstrap");
        assert_eq!(again.admin_user_id, c.boot.admin_user_id);
        assert_eq!(again.admin_project_id, c.boot.admin_project_id);
        assert!(!again.admin_created);
        assert_eq!(again.service_user_password, c.boot.service_user_password);
        // Without reset the password stays.
        assert_eq!(
            c.login("admin", ADMIN_PW, Some("admin")).await.status,
            StatusCode::CREATED
        );
        let mut spec = BootstrapSpec::from_config(&c.config, "other");
        spec.reset = true;
        c.identity.bootstrap(&spec).await.expect("bootstrap");
        assert_eq!(
            c.login("admin", "other", Some("admin")).await.status,
            StatusCode::CREATED
        );
        // One of each role, one identity service.
        let r = c.get("/v3/roles?name=admin", &c.admin).await;
        assert_eq!(r.body["roles"].as_array().map(Vec::len), Some(1));
        let r = c.get("/v3/services?type=identity", &c.admin).await;
        assert_eq!(r.body["services"].as_array().map(Vec::len), Some(1));
        // The service user can log in to its project with the kept password.
        let svc = c
            .login("stratus", &c.boot.service_user_password, Some("service"))
            .await;
        assert_eq!(svc.status, StatusCode::CREATED, "{}", svc.body);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_writes_do_not_fail() {
    for c in clouds().await {
        // Many writers at once: SQLite must not answer "database is locked"
        // (a 500); duplicates must be 409, not two rows.
        let mut set = tokio::task::JoinSet::new();
        for i in 0..16 {
            let router = c.router.clone();
            let token = c.admin.clone();
            set.spawn(async move {
                let name = format!("p{}", i % 8);
                let body = json!({"project": {"name": name}});
                super::common::call(
                    &router,
                    Method::POST,
                    "/v3/projects",
                    Some(&token),
                    Some(body),
                    &[],
                )
                .await
                .status
            });
        }
        let mut created = 0;
        while let Some(status) = set.join_next().await {
            match status.expect("task") {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => {}
                other => panic!("{}: unexpected {other}", c.name),
            }
        }
        assert_eq!(created, 8, "{}", c.name);
        let r = c.get("/v3/projects", &c.admin).await;
        assert_eq!(r.body["projects"].as_array().map(Vec::len), Some(8 + 2));
        c.cleanup().await;
    }
}
