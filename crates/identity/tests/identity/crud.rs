//! CRUD with Keystone's bodies, filters, links, conflicts and bad input.

use axum::http::{Method, StatusCode};
use serde_json::json;
use stratus_identity::BootstrapSpec;

use super::common::{clouds, ADMIN_PW};

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
            .call(
                Method::PATCH,
                &format!("/v3/projects/{pid}"),
                Some(a),
                Some(json!({"project": {"description": "d", "enabled": false}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["project"]["description"], "d");
        let r = c.get("/v3/projects?enabled=false", a).await;
        let names: Vec<&str> = r.body["projects"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, vec!["web"]);
        c.get("/v3/projects/does-not-exist", a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.call(
            Method::PATCH,
            "/v3/projects/nope",
            Some(a),
            Some(json!({"project": {}})),
        )
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
        c.call(
            Method::PATCH,
            &format!("/v3/users/{uid}"),
            Some(a),
            Some(json!({"user": {"name": "admin"}})),
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
        let names: Vec<&str> = r.body["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(
            names,
            vec!["reader"],
            "direct grants only, no implied roles"
        );
        let reader = c.role_id("reader").await;
        let r = c
            .call(
                Method::HEAD,
                &format!("/v3/projects/{pid}/users/{uid}/roles/{reader}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::HEAD,
                &format!("/v3/domains/default/users/{uid}/roles/{reader}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = c.get(&format!("/v3/users/{uid}/projects"), a).await;
        assert_eq!(r.body["projects"][0]["id"], pid);

        let r = c
            .call(Method::DELETE, &format!("/v3/users/{uid}"), Some(a), None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        c.get(&format!("/v3/users/{uid}"), a)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.call(Method::DELETE, &format!("/v3/users/{uid}"), Some(a), None)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/projects/{pid}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn domains_groups_and_effective_assignments() {
    for c in clouds().await {
        let a = &c.admin;
        let r = c
            .post("/v3/domains", a, json!({"domain": {"name": "acme"}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let did = r.body["domain"]["id"].as_str().expect("id").to_owned();
        c.post("/v3/domains", a, json!({"domain": {"name": "acme"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let r = c
            .post(
                "/v3/users",
                a,
                json!({"user": {"name": "dave", "password": "pw", "domain_id": did}}),
            )
            .await;
        let dave = r.body["user"]["id"].as_str().expect("id").to_owned();
        let r = c
            .post(
                "/v3/projects",
                a,
                json!({"project": {"name": "ops", "domain_id": did}}),
            )
            .await;
        let ops = r.body["project"]["id"].as_str().expect("id").to_owned();

        // A group grant reaches the member.
        let r = c
            .post(
                "/v3/groups",
                a,
                json!({"group": {"name": "devs", "domain_id": did}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let gid = r.body["group"]["id"].as_str().expect("id").to_owned();
        let r = c
            .call(
                Method::PUT,
                &format!("/v3/groups/{gid}/users/{dave}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::HEAD,
                &format!("/v3/groups/{gid}/users/{dave}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let member = c.role_id("member").await;
        let r = c
            .call(
                Method::PUT,
                &format!("/v3/projects/{ops}/groups/{gid}/roles/{member}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let r = c
            .call(
                Method::HEAD,
                &format!("/v3/projects/{ops}/groups/{gid}/roles/{member}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "dave", "domain": {"name": "acme"}, "password": "pw"}}},
            "scope": {"project": {"name": "ops", "domain": {"id": did}}}}});
        let r = c
            .call(Method::POST, "/v3/auth/tokens", None, Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let mut roles: Vec<&str> = r.body["token"]["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
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
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/groups/{gid}/users/{dave}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .get(&format!("/v3/role_assignments?effective&user.id={dave}"), a)
            .await;
        assert_eq!(r.body["role_assignments"].as_array().map(Vec::len), Some(0));

        // Grants on unknown things are 404; revoking twice is 404.
        c.call(
            Method::PUT,
            &format!("/v3/projects/nope/users/{dave}/roles/{member}"),
            Some(a),
            None,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        c.call(
            Method::PUT,
            &format!("/v3/projects/{ops}/users/{dave}/roles/nope"),
            Some(a),
            None,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        c.call(
            Method::DELETE,
            &format!("/v3/projects/{ops}/users/{dave}/roles/{member}"),
            Some(a),
            None,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // An enabled domain cannot be deleted; a disabled one goes with its contents.
        c.call(Method::DELETE, &format!("/v3/domains/{did}"), Some(a), None)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.call(
            Method::PATCH,
            &format!("/v3/domains/{did}"),
            Some(a),
            Some(json!({"domain": {"enabled": false}})),
        )
        .await;
        let r = c
            .call(Method::DELETE, &format!("/v3/domains/{did}"), Some(a), None)
            .await;
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
        let r = c
            .post("/v3/roles", a, json!({"role": {"name": "auditor"}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let aud = r.body["role"]["id"].as_str().expect("id").to_owned();
        c.post("/v3/roles", a, json!({"role": {"name": "auditor"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let reader = c.role_id("reader").await;
        let r = c
            .call(
                Method::PUT,
                &format!("/v3/roles/{aud}/implies/{reader}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = c.get("/v3/role_inferences", a).await;
        assert!(r.body["role_inferences"].as_array().expect("list").len() >= 3);
        let r = c.get(&format!("/v3/roles/{aud}/implies"), a).await;
        assert_eq!(r.body["role_inference"]["implies"][0]["name"], "reader");

        let eve = c.user("eve", "pw").await;
        let p = c.project("audit").await;
        c.grant(&p, &eve, "auditor").await;
        let r = c.login("eve", "pw", Some("audit")).await;
        let mut roles: Vec<&str> = r.body["token"]["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        roles.sort_unstable();
        assert_eq!(roles, vec!["auditor", "reader"]);
        let token = r.token();
        // Deleting the role removes the grant and so the token's access.
        let r = c
            .call(Method::DELETE, &format!("/v3/roles/{aud}"), Some(a), None)
            .await;
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
        let r = c
            .post(
                "/v3/services",
                a,
                json!({"service": {"type": "volumev3", "name": "cinderv3"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let vid = r.body["service"]["id"].as_str().expect("id").to_owned();
        c.post("/v3/services", a, json!({"service": {"name": "typeless"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let r = c.post("/v3/endpoints", a, json!({"endpoint": {"service_id": vid, "interface": "public", "region_id": "RegionTwo",
            "url": "http://127.0.0.1:8776/v3/$(project_id)s"}})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let eid = r.body["endpoint"]["id"].as_str().expect("id").to_owned();
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
        c.call(Method::DELETE, "/v3/regions/RegionTwo", Some(a), None)
            .await
            .assert_error(StatusCode::CONFLICT);

        let r = c.get("/v3/auth/catalog", a).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body["catalog"]
            .as_array()
            .expect("catalog")
            .iter()
            .any(|s| s["type"] == "volumev3"));

        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/endpoints/{eid}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(
                Method::DELETE,
                &format!("/v3/services/{vid}"),
                Some(a),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = c
            .call(Method::DELETE, "/v3/regions/RegionTwo", Some(a), None)
            .await;
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
