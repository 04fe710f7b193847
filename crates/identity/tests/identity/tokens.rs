//! Discovery, issuing, validating, revoking and rescoping tokens; revocation
//! through the database; key rotation.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::common::{call, clouds, names, ADMIN_PW};

#[tokio::test]
async fn version_discovery() {
    for c in clouds().await {
        let r = c.call(Method::GET, "/", None, None).await;
        assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES);
        let v = &r.body["versions"]["values"][0];
        assert_eq!(v["id"], "v3.14");
        assert_eq!(v["links"][0]["href"], "http://keystone.test:5000/v3/");
        for path in ["/v3", "/v3/"] {
            let r = c.call(Method::GET, path, None, None).await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.body["version"]["status"], "stable");
            assert_eq!(
                r.body["version"]["media-types"][0]["type"],
                "application/vnd.openstack.identity-v3+json"
            );
            assert!(r.headers.contains_key("x-openstack-request-id"));
        }
        c.call(Method::GET, "/v3/nothing-here", None, None)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn password_token_has_keystones_body() {
    for c in clouds().await {
        // Exactly what keystoneauth sends for OSC.
        let r = c.login("admin", ADMIN_PW, Some("admin")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let token = r.token();
        assert!(token.starts_with("gAAAAA"), "{token}");
        assert_eq!(token.len(), 183);
        let t = &r.body["token"];
        assert_eq!(t["methods"], json!(["password"]));
        assert_eq!(t["user"]["name"], "admin");
        assert_eq!(
            t["user"]["domain"],
            json!({"id": "default", "name": "Default"})
        );
        assert_eq!(t["project"]["name"], "admin");
        assert_eq!(t["project"]["domain"]["id"], "default");
        assert_eq!(t["is_domain"], false);
        assert_eq!(t["audit_ids"].as_array().map(Vec::len), Some(1));
        assert!(t["expires_at"]
            .as_str()
            .is_some_and(|s| s.ends_with(".000000Z")));
        assert!(t["issued_at"].is_string());
        let mut roles = names(&t["roles"]);
        roles.sort_unstable();
        assert_eq!(
            roles,
            vec!["admin", "member", "reader"],
            "implied roles are included"
        );
        let catalog = t["catalog"].as_array().expect("catalog");
        let identity = catalog
            .iter()
            .find(|s| s["type"] == "identity")
            .expect("identity in catalog");
        assert_eq!(identity["endpoints"].as_array().map(Vec::len), Some(3));
        let ep = &identity["endpoints"][0];
        for k in ["id", "interface", "region_id", "region", "url"] {
            assert!(ep[k].is_string(), "endpoint {k}: {ep}");
        }
        let cinder = catalog
            .iter()
            .find(|s| s["type"] == "block-storage")
            .expect("cinder");
        let project = t["project"]["id"].as_str().expect("project id");
        assert_eq!(
            cinder["endpoints"][0]["url"],
            format!("http://127.0.0.1:8776/v3/{project}")
        );

        // By user id and project id, without a catalog.
        let user_id = t["user"]["id"].as_str().expect("id");
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": ADMIN_PW}}},
            "scope": {"project": {"id": project}}}});
        let r = c
            .call(Method::POST, "/v3/auth/tokens?nocatalog", None, Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert!(r.body["token"].get("catalog").is_none());

        // Domain scope and unscoped.
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": ADMIN_PW}}}}});
        let r = c.auth(body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert!(
            r.body["token"].get("project").is_none() && r.body["token"].get("catalog").is_none()
        );
        let mut scoped = body;
        scoped["auth"]["scope"] = json!({"domain": {"name": "Default"}});
        c.grant_on("domains/default", c.boot.admin_user_id.as_str(), "admin")
            .await;
        let r = c.auth(scoped).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["token"]["domain"]["id"], "default");
        assert_eq!(r.token().len(), 162);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    for c in clouds().await {
        let wrong = c.login("admin", "nope", Some("admin")).await;
        wrong.assert_error(StatusCode::UNAUTHORIZED);
        let unknown = c.login("nobody", "nope", Some("admin")).await;
        unknown.assert_error(StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.body, unknown.body);
        assert!(!wrong.headers.contains_key("x-subject-token"));
        // A project that does not exist, or one without a role, is 401 too.
        c.login("admin", ADMIN_PW, Some("no-such-project"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        c.project("empty").await;
        c.login("admin", ADMIN_PW, Some("empty"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn malformed_auth_requests_are_400() {
    for c in clouds().await {
        let raw = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/v3/auth/tokens")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{\"auth\": "))
            .expect("req");
        super::common::raw(&c.router, raw)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        for body in [
            json!({}),
            json!({"auth": {}}),
            json!({"auth": {"identity": {"methods": ["password"]}}}),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": 5}}}}}),
            json!({"auth": {"identity": {"methods": "password"}}}),
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "password": "x"}}}}}),
        ] {
            let r = c.auth(body.clone()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} -> {}", r.body);
            assert_eq!(r.body["error"]["title"], "Bad Request");
        }
        c.cleanup().await;
    }
}

#[tokio::test]
async fn validate_check_and_revoke() {
    for c in clouds().await {
        let subject = c.login("admin", ADMIN_PW, Some("admin")).await.token();
        let r = c
            .on_subject(Method::GET, "/v3/auth/tokens", Some(&c.admin), &subject)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.token(), subject);
        assert_eq!(r.body["token"]["user"]["name"], "admin");
        assert!(r.body["token"]["catalog"].is_array());
        let r = c
            .on_subject(
                Method::GET,
                "/v3/auth/tokens?nocatalog",
                Some(&c.admin),
                &subject,
            )
            .await;
        assert!(r.body["token"].get("catalog").is_none());
        let r = c
            .on_subject(Method::HEAD, "/v3/auth/tokens", Some(&c.admin), &subject)
            .await;
        assert_eq!(r.status, StatusCode::OK);

        // Garbage subject: 404; bad caller: 401.
        c.on_subject(
            Method::GET,
            "/v3/auth/tokens",
            Some(&c.admin),
            "gAAAAABnotatoken",
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        c.on_subject(Method::GET, "/v3/auth/tokens", Some("garbage"), &subject)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        c.on_subject(Method::GET, "/v3/auth/tokens", None, &subject)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);

        // Revocation by audit id.
        let r = c
            .on_subject(Method::DELETE, "/v3/auth/tokens", Some(&c.admin), &subject)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_eq!(c.check(&subject).await, StatusCode::NOT_FOUND);
        c.get("/v3/users", &subject)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        // Other tokens of the same user are untouched.
        assert_eq!(c.check(&c.admin).await, StatusCode::OK);

        // The in-process validator agrees.
        let v = c.identity.validator();
        assert!(v.validate(&subject).await.is_err());
        let ctx = v.validate(&c.admin).await.expect("valid").context;
        assert_eq!(ctx.user_name.as_deref(), Some("admin"));
        assert_eq!(ctx.project_name.as_deref(), Some("admin"));
        assert!(ctx.is_admin() && ctx.has_role("reader"));
        c.cleanup().await;
    }
}

#[tokio::test]
async fn rescope_with_the_token_method() {
    for c in clouds().await {
        let r = c.login("admin", ADMIN_PW, None).await;
        let unscoped = r.token();
        assert!(r.body["token"].get("roles").is_none());
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": unscoped}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let r = c.auth(body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let t = &r.body["token"];
        assert_eq!(t["methods"], json!(["password", "token"]));
        assert_eq!(t["audit_ids"].as_array().map(Vec::len), Some(2));
        assert_eq!(t["audit_ids"][1], c.login_audit(&unscoped).await);
        assert_eq!(t["project"]["name"], "admin");
        let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "bogus"}}}});
        c.auth(body).await.assert_error(StatusCode::UNAUTHORIZED);
        c.cleanup().await;
    }
}

impl super::common::Cloud {
    async fn login_audit(&self, token: &str) -> serde_json::Value {
        let r = self
            .on_subject(Method::GET, "/v3/auth/tokens", Some(&self.admin), token)
            .await;
        r.body["token"]["audit_ids"][0].clone()
    }
}

#[tokio::test]
async fn tokens_die_with_their_user_project_or_role() {
    for c in clouds().await {
        let alice = c.user("alice", "pw-a").await;
        let pa = c.project("pa").await;
        let pb = c.project("pb").await;
        c.grant(&pa, &alice, "member").await;
        c.grant(&pb, &alice, "member").await;
        let ta = c.login("alice", "pw-a", Some("pa")).await.token();
        let tb = c.login("alice", "pw-a", Some("pb")).await.token();
        assert_eq!(c.check(&ta).await, StatusCode::OK);

        // Removing the only role on pb kills the pb token, not the pa one.
        let member = c.role_id("member").await;
        let r = c
            .delete(
                &format!("/v3/projects/{pb}/users/{alice}/roles/{member}"),
                &c.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(c.check(&tb).await, StatusCode::NOT_FOUND);
        assert_eq!(c.check(&ta).await, StatusCode::OK);

        // Disabling the project, then the user.
        let r = c
            .patch(
                &format!("/v3/projects/{pa}"),
                &c.admin,
                json!({"project": {"enabled": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(c.check(&ta).await, StatusCode::NOT_FOUND);
        c.patch(
            &format!("/v3/projects/{pa}"),
            &c.admin,
            json!({"project": {"enabled": true}}),
        )
        .await;
        assert_eq!(c.check(&ta).await, StatusCode::OK);

        let r = c
            .patch(
                &format!("/v3/users/{alice}"),
                &c.admin,
                json!({"user": {"enabled": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["user"]["enabled"], false);
        assert_eq!(c.check(&ta).await, StatusCode::NOT_FOUND);
        c.login("alice", "pw-a", Some("pa"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        c.patch(
            &format!("/v3/users/{alice}"),
            &c.admin,
            json!({"user": {"enabled": true}}),
        )
        .await;
        // Disabling wrote a revocation event: the old token stays dead, a new one works.
        assert_eq!(c.check(&ta).await, StatusCode::NOT_FOUND);
        let ta2 = c.login("alice", "pw-a", Some("pa")).await.token();
        assert_eq!(c.check(&ta2).await, StatusCode::OK);

        // Deleting the project, and the user.
        let r = c.delete(&format!("/v3/projects/{pa}"), &c.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(c.check(&ta2).await, StatusCode::NOT_FOUND);
        let unscoped = c.login("alice", "pw-a", None).await.token();
        assert_eq!(c.check(&unscoped).await, StatusCode::OK);
        let r = c.delete(&format!("/v3/users/{alice}"), &c.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(c.check(&unscoped).await, StatusCode::NOT_FOUND);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn password_changes_revoke_old_tokens() {
    for c in clouds().await {
        let (bob, _, old) = c.project_member("bob", "old-pw", "pbob").await;

        let body = json!({"user": {"original_password": "wrong", "password": "new-pw"}});
        c.call(
            Method::POST,
            &format!("/v3/users/{bob}/password"),
            None,
            Some(body),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
        let body = json!({"user": {"password": "new-pw"}});
        c.call(
            Method::POST,
            &format!("/v3/users/{bob}/password"),
            None,
            Some(body),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        let body = json!({"user": {"original_password": "old-pw", "password": "new-pw"}});
        let r = c
            .post(&format!("/v3/users/{bob}/password"), &old, body)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_eq!(c.check(&old).await, StatusCode::NOT_FOUND);
        c.login("bob", "old-pw", Some("pbob"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        // Right after the change (even in the same second) the new password works.
        let new = c.login("bob", "new-pw", Some("pbob")).await;
        assert_eq!(new.status, StatusCode::CREATED, "{}", new.body);
        assert_eq!(c.check(&new.token()).await, StatusCode::OK);

        // An admin reset revokes too.
        let r = c
            .patch(
                &format!("/v3/users/{bob}"),
                &c.admin,
                json!({"user": {"password": "third"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body["user"].get("password").is_none());
        assert_eq!(c.check(&new.token()).await, StatusCode::NOT_FOUND);
        assert_eq!(
            c.login("bob", "third", Some("pbob")).await.status,
            StatusCode::CREATED
        );
        c.cleanup().await;
    }
}

#[tokio::test]
async fn key_rotation_keeps_tokens_valid() {
    for c in clouds().await {
        let before = c.login("admin", ADMIN_PW, Some("admin")).await.token();
        c.identity.rotate_keys().await.expect("rotate");
        // Made with the old primary, now a secondary key: still valid.
        assert_eq!(c.check(&before).await, StatusCode::OK);
        let after = c.login("admin", ADMIN_PW, Some("admin")).await.token();
        assert_eq!(c.check(&after).await, StatusCode::OK);
        // Rotating with the standalone function (`stratus identity fernet-rotate`)
        // from "another process": the service picks the new keys up.
        stratus_identity::rotate_key_repository(&c.identity.key_repository(), 3)
            .await
            .expect("rotate");
        let newest = c.login("admin", ADMIN_PW, Some("admin")).await.token();
        assert_eq!(c.check_as(&newest, &after).await, StatusCode::OK);
        assert_eq!(c.check_as(&newest, &newest).await, StatusCode::OK);
        // With 3 active keys, the key of `before` is gone after two rotations.
        assert_eq!(c.check_as(&newest, &before).await, StatusCode::NOT_FOUND);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn expired_tokens_fail_unless_allowed() {
    for c in clouds().await {
        // A second service on the same database and keys whose tokens expire at once.
        let mut cfg = c.config.clone();
        cfg.set_section(
            "identity",
            &stratus_identity::IdentityConfig {
                token_expiration_secs: 0,
                password_hash_cost: stratus_identity::HashCost::Fast,
                key_repository: Some(c.identity.key_repository()),
                ..Default::default()
            },
        )
        .expect("section");
        let short = stratus_identity::Identity::with_db(&cfg, c.db())
            .await
            .expect("identity");
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PW}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let r = call(
            &short.router(),
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(body),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let expired = r.token();
        assert_eq!(c.check(&expired).await, StatusCode::NOT_FOUND);
        assert!(c.identity.validator().validate(&expired).await.is_err());
        c.get("/v3/projects", &expired)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        let r = c
            .on_subject(
                Method::GET,
                "/v3/auth/tokens?allow_expired=1",
                Some(&c.admin),
                &expired,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn application_credentials() {
    for c in clouds().await {
        let (frank, p, t) = c.project_member("frank", "pw", "pf").await;
        let path = format!("/v3/users/{frank}/application_credentials");

        // Only roles the token holds; only the user themself.
        let r = c
            .post(
                &path,
                &t,
                json!({"application_credential": {"name": "x", "roles": [{"name": "admin"}]}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        c.post(
            &path,
            &c.admin,
            json!({"application_credential": {"name": "x"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        c.post(
            &path,
            &t,
            json!({"application_credential": {"name": "x", "expires_at": "2001-01-01T00:00:00"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        let r = c
            .post(
                &path,
                &t,
                json!({"application_credential": {"name": "ci", "roles": [{"name": "reader"}]}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let cred = &r.body["application_credential"];
        let id = cred["id"].as_str().expect("id").to_owned();
        let secret = cred["secret"].as_str().expect("secret").to_owned();
        assert_eq!(cred["project_id"], p);
        assert_eq!(cred["roles"].as_array().map(Vec::len), Some(1));
        c.post(&path, &t, json!({"application_credential": {"name": "ci"}}))
            .await
            .assert_error(StatusCode::CONFLICT);

        let r = c.get(&path, &t).await;
        assert_eq!(
            r.body["application_credentials"].as_array().map(Vec::len),
            Some(1)
        );
        assert!(r.body["application_credentials"][0].get("secret").is_none());
        let other = c.user("other", "pw").await;
        c.grant(&p, &other, "member").await;
        let to = c.login("other", "pw", Some("pf")).await.token();
        c.get(&path, &to).await.assert_error(StatusCode::FORBIDDEN);

        // Log in with it, by id and by name: only its own roles.
        let by_id = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret}}}});
        let r = c.auth(by_id.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let at = r.token();
        let tb = &r.body["token"];
        assert_eq!(tb["methods"], json!(["application_credential"]));
        assert_eq!(tb["project"]["id"], p);
        assert_eq!(tb["application_credential"]["id"], id);
        let roles = names(&tb["roles"]);
        assert_eq!(roles, vec!["reader"]);
        assert_eq!(c.check(&at).await, StatusCode::OK);
        let by_name = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"name": "ci", "secret": secret, "user": {"name": "frank", "domain": {"id": "default"}}}}}});
        assert_eq!(c.auth(by_name).await.status, StatusCode::CREATED);

        // Wrong secret and unknown id read the same; no scope may be asked.
        let wrong = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": "nope"}}}});
        let w = c.auth(wrong).await;
        w.assert_error(StatusCode::UNAUTHORIZED);
        let unknown = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": "0123", "secret": "nope"}}}});
        assert_eq!(c.auth(unknown).await.body, w.body);
        let mut scoped = by_id.clone();
        scoped["auth"]["scope"] = json!({"project": {"id": p}});
        c.auth(scoped).await.assert_error(StatusCode::UNAUTHORIZED);

        // Its token can neither be rescoped nor make more credentials.
        let rescope = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": at}}, "scope": {"project": {"id": p}}}});
        c.auth(rescope).await.assert_error(StatusCode::FORBIDDEN);
        c.post(
            &path,
            &at,
            json!({"application_credential": {"name": "more"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // Losing the role on the project ends it.
        let member = c.role_id("member").await;
        c.delete(
            &format!("/v3/projects/{p}/users/{frank}/roles/{member}"),
            &c.admin,
        )
        .await;
        assert_eq!(c.check(&at).await, StatusCode::NOT_FOUND);
        c.auth(by_id.clone())
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        c.grant(&p, &frank, "member").await;
        assert_eq!(c.auth(by_id.clone()).await.status, StatusCode::CREATED);

        // Deleting it ends it too.
        let t = c.login("frank", "pw", Some("pf")).await.token();
        let r = c.delete(&format!("{path}/{id}"), &t).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        c.auth(by_id).await.assert_error(StatusCode::UNAUTHORIZED);
        c.get(&format!("{path}/{id}"), &t)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        c.cleanup().await;
    }
}
