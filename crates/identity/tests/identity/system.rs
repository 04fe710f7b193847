//! System scope as Keystone has it: role grants on the system for users and
//! groups, system-scoped tokens, `scope.system` in role assignment lists,
//! and the admin's system role from bootstrap.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_auth::TokenValidator;

use super::common::{clouds, names, Cloud, ADMIN_PW};

fn system_login(user: &str, password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"system": {"all": true}}}})
}

impl Cloud {
    async fn role_names_on_system(&self, kind: &str, actor: &str) -> Vec<String> {
        let r = self
            .get(&format!("/v3/system/{kind}/{actor}/roles"), &self.admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let mut n: Vec<String> = names(&r.body["roles"])
            .into_iter()
            .map(str::to_owned)
            .collect();
        n.sort();
        n
    }
}

#[tokio::test]
async fn system_grants_for_users_and_groups() {
    for c in clouds().await {
        let a = &c.admin;
        let u = c.user("sys-op", "sys-op-pw").await;
        let g = c.create("group", json!({"name": "sys-ops"})).await;
        let reader = c.role_id("reader").await;
        for (kind, actor) in [("users", &u), ("groups", &g)] {
            let path = format!("/v3/system/{kind}/{actor}/roles/{reader}");
            assert_eq!(c.head(&path, a).await.status, StatusCode::NOT_FOUND);
            let r = c.put(&path, a).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}: {}", c.name, r.body);
            // Idempotent, as Keystone's grant.
            assert_eq!(c.put(&path, a).await.status, StatusCode::NO_CONTENT);
            assert_eq!(c.head(&path, a).await.status, StatusCode::NO_CONTENT);
            assert_eq!(c.get(&path, a).await.status, StatusCode::NO_CONTENT);
            assert_eq!(c.role_names_on_system(kind, actor).await, vec!["reader"]);
            let r = c.get(&format!("/v3/system/{kind}/{actor}/roles"), a).await;
            assert_eq!(
                r.body["links"]["self"],
                format!("http://keystone.test:5000/v3/system/{kind}/{actor}/roles")
            );
            assert_eq!(r.body["roles"][0]["id"], json!(reader));
            assert_eq!(c.delete(&path, a).await.status, StatusCode::NO_CONTENT);
            c.delete(&path, a).await.assert_error(StatusCode::NOT_FOUND);
            assert_eq!(c.head(&path, a).await.status, StatusCode::NOT_FOUND);
            assert!(c.role_names_on_system(kind, actor).await.is_empty());
            // Unknown actor or role: 404.
            for bad in [
                format!("/v3/system/{kind}/nope/roles/{reader}"),
                format!("/v3/system/{kind}/{actor}/roles/nope"),
            ] {
                c.put(&bad, a).await.assert_error(StatusCode::NOT_FOUND);
                assert_eq!(c.head(&bad, a).await.status, StatusCode::NOT_FOUND);
                c.get(&bad, a).await.assert_error(StatusCode::NOT_FOUND);
                c.delete(&bad, a).await.assert_error(StatusCode::NOT_FOUND);
            }
            c.get(&format!("/v3/system/{kind}/nope/roles"), a)
                .await
                .assert_error(StatusCode::NOT_FOUND);
        }
        // Only an admin may grant: a member of a project gets 403.
        let (_, _, member) = c.project_member("sys-m", "sys-m-pw", "sys-m-p").await;
        c.put(&format!("/v3/system/users/{u}/roles/{reader}"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.get(&format!("/v3/system/users/{u}/roles"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // A deleted user or group takes its system grants with it.
        c.put(&format!("/v3/system/users/{u}/roles/{reader}"), a)
            .await;
        c.delete(&format!("/v3/users/{u}"), a).await;
        let r = c.get(&format!("/v3/role_assignments?user.id={u}"), a).await;
        assert_eq!(r.body["role_assignments"], json!([]), "{}", c.name);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn system_scoped_tokens() {
    for c in clouds().await {
        let a = &c.admin;
        // Bootstrap made the admin an admin of the system, as keystone-manage does.
        let admin_id = c.boot.admin_user_id.as_str().to_owned();
        assert_eq!(
            c.role_names_on_system("users", &admin_id).await,
            vec!["admin"]
        );
        let r = c.auth(system_login("admin", ADMIN_PW)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", c.name, r.body);
        let token = r.token();
        // Keystone's SystemScopedPayload (version 8) is as long as a domain one.
        assert_eq!(token.len(), 162);
        let t = &r.body["token"];
        assert_eq!(t["system"], json!({"all": true}));
        assert!(t.get("project").is_none() && t.get("domain").is_none());
        let mut roles = names(&t["roles"]);
        roles.sort_unstable();
        assert_eq!(roles, vec!["admin", "member", "reader"]);
        // The catalog, without endpoints that need a project.
        let catalog = t["catalog"].as_array().expect("catalog");
        assert!(catalog.iter().any(|s| s["type"] == "compute"));
        let cinder = catalog
            .iter()
            .find(|s| s["type"] == "block-storage")
            .expect("cinder");
        assert_eq!(cinder["endpoints"], json!([]));
        // Validation gives the same body.
        let v = c
            .on_subject(Method::GET, "/v3/auth/tokens", Some(a), &token)
            .await;
        assert_eq!(v.status, StatusCode::OK, "{}", v.body);
        assert_eq!(v.body["token"]["system"], json!({"all": true}));
        assert_eq!(v.body["token"]["roles"], t["roles"]);
        // The system admin administers identity.
        assert_eq!(c.get("/v3/users", &token).await.status, StatusCode::OK);
        let r = c.get("/v3/auth/system", &token).await;
        assert_eq!(r.body["system"], json!([{"all": true}]));
        // Services see a system-scoped admin.
        let ctx = c
            .identity
            .validator()
            .validate(&token)
            .await
            .expect("valid")
            .context;
        assert!(ctx.is_system_scoped() && ctx.is_admin() && ctx.project_id.is_none());

        // A user without a system role: 401, as Keystone.
        let u = c.user("plain", "plain-pw").await;
        c.auth(system_login("plain", "plain-pw"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        let r = c
            .auth(
                json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "plain", "domain": {"id": "default"}, "password": "plain-pw"}}}}}),
            )
            .await;
        let unscoped = r.token();
        assert_eq!(
            c.get("/v3/auth/system", &unscoped).await.body["system"],
            json!([])
        );
        // Through a group, and by rescoping with the token method.
        let g = c.create("group", json!({"name": "sys-readers"})).await;
        c.put(&format!("/v3/groups/{g}/users/{u}"), a).await;
        let reader = c.role_id("reader").await;
        c.put(&format!("/v3/system/groups/{g}/roles/{reader}"), a)
            .await;
        let r = c
            .auth(
                json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
                "scope": {"system": {"all": true}}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(names(&r.body["token"]["roles"]), vec!["reader"]);
        assert_eq!(r.body["token"]["methods"], json!(["password", "token"]));
        let sys_reader = r.token();
        // A system reader is not an admin.
        c.get("/v3/users", &sys_reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Losing the role ends the token.
        c.delete(&format!("/v3/system/groups/{g}/roles/{reader}"), a)
            .await;
        assert_eq!(c.check(&sys_reader).await, StatusCode::NOT_FOUND);
        // Bad scope bodies.
        let mut bad = system_login("admin", ADMIN_PW);
        bad["auth"]["scope"]["project"] = json!({"name": "admin", "domain": {"id": "default"}});
        c.auth(bad).await.assert_error(StatusCode::BAD_REQUEST);
        let mut bad = system_login("admin", ADMIN_PW);
        bad["auth"]["scope"]["system"] = json!("all");
        c.auth(bad).await.assert_error(StatusCode::BAD_REQUEST);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn role_assignments_on_the_system() {
    for c in clouds().await {
        let a = &c.admin;
        let u = c.user("sys-ra", "sys-ra-pw").await;
        let g = c.create("group", json!({"name": "sys-ra-g"})).await;
        let member = c.role_id("member").await;
        c.put(&format!("/v3/system/users/{u}/roles/{member}"), a)
            .await;
        c.put(&format!("/v3/system/groups/{g}/roles/{member}"), a)
            .await;
        let r = c.get("/v3/role_assignments?scope.system=all", a).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let list = r.body["role_assignments"].as_array().expect("list");
        // The bootstrap admin's, the user's and the group's.
        assert_eq!(list.len(), 3, "{}: {}", c.name, r.body);
        assert!(list
            .iter()
            .all(|x| x["scope"] == json!({"system": {"all": true}})));
        let mine = list
            .iter()
            .find(|x| x["user"]["id"] == json!(u))
            .expect("user's");
        assert_eq!(mine["role"], json!({"id": member}));
        assert_eq!(
            mine["links"]["assignment"],
            format!("http://keystone.test:5000/v3/system/users/{u}/roles/{member}")
        );
        assert!(list.iter().any(|x| x["group"]["id"] == json!(g)));

        // With names, and filtered by user.
        let r = c
            .get(
                &format!("/v3/role_assignments?scope.system=all&user.id={u}&include_names"),
                a,
            )
            .await;
        let list = r.body["role_assignments"].as_array().expect("list");
        assert_eq!(list.len(), 1, "{}", r.body);
        assert_eq!(list[0]["role"]["name"], "member");
        assert_eq!(list[0]["user"]["name"], "sys-ra");
        assert_eq!(list[0]["user"]["domain"]["name"], "Default");
        assert_eq!(list[0]["scope"], json!({"system": {"all": true}}));

        // Unfiltered lists show them too; project filters do not.
        let r = c.get(&format!("/v3/role_assignments?user.id={u}"), a).await;
        assert_eq!(r.body["role_assignments"].as_array().map(Vec::len), Some(1));
        let p = c.project("sys-ra-p").await;
        let r = c
            .get(&format!("/v3/role_assignments?scope.project.id={p}"), a)
            .await;
        assert_eq!(r.body["role_assignments"], json!([]));
        // Keystone's effective mode lists no system grant.
        let r = c
            .get(&format!("/v3/role_assignments?user.id={u}&effective"), a)
            .await;
        assert_eq!(r.body["role_assignments"], json!([]), "{}", r.body);
        // System and project or domain together: 400.
        for q in [
            format!("scope.system=all&scope.project.id={p}"),
            "scope.system=all&scope.domain.id=default".to_owned(),
        ] {
            c.get(&format!("/v3/role_assignments?{q}"), a)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        c.cleanup().await;
    }
}

/// Keystone's schema limits (`resource/schema.py`, `identity/schema.py`,
/// `assignment/schema.py`).
#[tokio::test]
async fn names_and_ids_as_keystones_schemas_limit_them() {
    for c in clouds().await {
        let a = &c.admin;
        let long = |n: usize| "n".repeat(n);
        for (kind, max) in [
            ("project", 64),
            ("domain", 64),
            ("user", 255),
            ("group", 255),
            ("role", 255),
        ] {
            let r = c
                .post(
                    &format!("/v3/{kind}s"),
                    a,
                    json!({ kind: {"name": long(max + 1)} }),
                )
                .await;
            r.assert_error(StatusCode::BAD_REQUEST);
            assert_eq!(
                r.body["error"]["message"],
                format!(
                    "Invalid input for field 'name': '{}' is too long",
                    long(max + 1)
                ),
                "{kind}"
            );
            c.post(&format!("/v3/{kind}s"), a, json!({ kind: {"name": "   "} }))
                .await
                .assert_error(StatusCode::BAD_REQUEST);
            let id = c.create(kind, json!({"name": long(max)})).await;
            // The same limit on update.
            c.patch(
                &format!("/v3/{kind}s/{id}"),
                a,
                json!({ kind: {"name": long(max + 1)} }),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        }
        for body in [
            json!({"project": {"name": "x", "domain_id": "a b"}}),
            json!({"project": {"name": "x", "parent_id": "a/b"}}),
            json!({"project": {"name": "x", "tags": ["a", "a"]}}),
            json!({"project": {"name": "x", "tags": ["a,b"]}}),
        ] {
            c.post("/v3/projects", a, body)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        c.post(
            "/v3/users",
            a,
            json!({"user": {"name": "x", "default_project_id": long(65)}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        c.post(
            "/v3/groups",
            a,
            json!({"group": {"name": "x", "domain_id": "dom ain"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        // Nothing was written by the refused calls.
        let r = c.get("/v3/projects?name=x", a).await;
        assert_eq!(r.body["projects"], json!([]));
        c.cleanup().await;
    }
}
