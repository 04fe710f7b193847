//! The validated-token cache never answers for a token after a change that
//! makes it fail or changes what it stands for: each case validates first
//! (twice, so that the answer comes from memory), changes something, and
//! expects the very next validation to see it, over HTTP and in-process.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{clouds, Cloud, ADMIN_PW};

/// Validated twice over HTTP and once in-process: all OK.
async fn warm(c: &Cloud, token: &str) {
    for _ in 0..2 {
        assert_eq!(c.check(token).await, StatusCode::OK, "{}", c.name);
    }
    assert!(c.identity.validator().validate(token).await.is_ok());
}

/// Refused everywhere: as subject, as caller, in-process.
async fn assert_refused(c: &Cloud, token: &str, why: &str) {
    assert_eq!(
        c.check(token).await,
        StatusCode::NOT_FOUND,
        "{}: {why}",
        c.name
    );
    assert_eq!(
        c.get("/v3/auth/projects", token).await.status,
        StatusCode::UNAUTHORIZED,
        "{}: {why}",
        c.name
    );
    assert!(
        c.identity.validator().validate(token).await.is_err(),
        "{}: {why}",
        c.name
    );
}

async fn roles_of(c: &Cloud, token: &str) -> Vec<String> {
    let r = c
        .on_subject(
            Method::GET,
            "/v3/auth/tokens?nocatalog",
            Some(&c.admin),
            token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut names: Vec<String> = r.body["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn revoked_token_fails_at_once() {
    for c in clouds().await {
        let (_, _, t) = c.project_member("ann", "pw-ann", "pann").await;
        warm(&c, &t).await;
        let r = c
            .on_subject(Method::DELETE, "/v3/auth/tokens", Some(&c.admin), &t)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_refused(&c, &t, "revoked").await;
        // The caller's own token stays cached and valid.
        assert_eq!(c.check(&c.admin).await, StatusCode::OK);
        c.cleanup().await;
    }
}

#[tokio::test]
async fn removed_role_is_gone_from_the_next_validation() {
    for c in clouds().await {
        let (u, p, _) = c.project_member("bo", "pw-bo", "pbo").await;
        let extra = c.create("role", json!({"name": "observer"})).await;
        c.grant(&p, &u, "observer").await;
        let t = c.login("bo", "pw-bo", Some("pbo")).await.token();
        warm(&c, &t).await;
        assert!(roles_of(&c, &t).await.contains(&"observer".to_owned()));
        let r = c
            .delete(
                &format!("/v3/projects/{p}/users/{u}/roles/{extra}"),
                &c.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert!(!roles_of(&c, &t).await.contains(&"observer".to_owned()));
        let ctx = c.identity.validator().validate(&t).await.expect("valid");
        assert!(!ctx.context.roles.contains(&"observer".to_owned()));

        // The last role gone: the token is refused.
        let member = c.role_id("member").await;
        c.delete(
            &format!("/v3/projects/{p}/users/{u}/roles/{member}"),
            &c.admin,
        )
        .await;
        assert_refused(&c, &t, "no role left").await;
        c.cleanup().await;
    }
}

#[tokio::test]
async fn disabled_user_and_project_fail_at_once() {
    for c in clouds().await {
        let (u, _, t) = c.project_member("cy", "pw-cy", "pcy").await;
        warm(&c, &t).await;
        let r = c
            .patch(
                &format!("/v3/users/{u}"),
                &c.admin,
                json!({"user": {"enabled": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_refused(&c, &t, "user disabled").await;

        let (_, p, t) = c.project_member("dee", "pw-dee", "pdee").await;
        warm(&c, &t).await;
        let r = c
            .patch(
                &format!("/v3/projects/{p}"),
                &c.admin,
                json!({"project": {"enabled": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_refused(&c, &t, "project disabled").await;
        c.cleanup().await;
    }
}

#[tokio::test]
async fn password_change_and_user_delete_fail_at_once() {
    for c in clouds().await {
        let (u, _, t) = c.project_member("eve", "pw-eve", "peve").await;
        warm(&c, &t).await;
        let r = c
            .post(
                &format!("/v3/users/{u}/password"),
                &t,
                json!({"user": {"password": "pw-eve-2", "original_password": "pw-eve"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_refused(&c, &t, "password changed").await;

        let t = c.login("eve", "pw-eve-2", Some("peve")).await.token();
        warm(&c, &t).await;
        let r = c.delete(&format!("/v3/users/{u}"), &c.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_refused(&c, &t, "user deleted").await;
        c.cleanup().await;
    }
}

#[tokio::test]
async fn leaving_a_group_drops_its_roles_at_once() {
    for c in clouds().await {
        let u = c.user("fay", "pw-fay").await;
        let p = c.project("pfay").await;
        let g = c
            .create("group", json!({"name": "gfay", "domain_id": "default"}))
            .await;
        let member = c.role_id("member").await;
        let r = c
            .put(
                &format!("/v3/projects/{p}/groups/{g}/roles/{member}"),
                &c.admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let r = c.put(&format!("/v3/groups/{g}/users/{u}"), &c.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let t = c.login("fay", "pw-fay", Some("pfay")).await.token();
        warm(&c, &t).await;
        let r = c
            .delete(&format!("/v3/groups/{g}/users/{u}"), &c.admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_refused(&c, &t, "left the group").await;
        c.cleanup().await;
    }
}

#[tokio::test]
async fn another_process_changes_are_seen_within_the_ttl() {
    for c in clouds().await {
        // A second identity process on the same database and keys.
        let mut cfg = c.config.clone();
        cfg.set_section(
            "identity",
            &stratus_identity::IdentityConfig {
                password_hash_cost: stratus_identity::HashCost::Fast,
                key_repository: Some(c.identity.key_repository()),
                token_cache_secs: 1,
                ..Default::default()
            },
        )
        .expect("section");
        let other = stratus_identity::Identity::with_db(&cfg, c.db())
            .await
            .expect("identity");
        let t = c.login("admin", ADMIN_PW, Some("admin")).await.token();
        assert!(other.validator().validate(&t).await.is_ok());
        // Revoked through the first process: the second may answer from
        // memory for at most its time-to-live.
        let r = c
            .on_subject(Method::DELETE, "/v3/auth/tokens", Some(&c.admin), &t)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert!(other.validator().validate(&t).await.is_err());
        c.cleanup().await;
    }
}

#[tokio::test]
async fn answers_from_memory_until_something_changes() {
    for c in clouds().await {
        let (u, _, t) = c.project_member("gus", "pw-gus", "pgus").await;
        warm(&c, &t).await;
        // Behind the service's back: the cache does not read the database...
        sqlx::query("DELETE FROM assignments WHERE actor_id = $1")
            .bind(&u)
            .execute(c.db().pool())
            .await
            .expect("delete");
        assert_eq!(c.check(&t).await, StatusCode::OK, "{}", c.name);
        // ...until any change through the API drops it.
        let r = c
            .post(
                "/v3/regions",
                &c.admin,
                json!({"region": {"id": "Elsewhere"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_refused(&c, &t, "no assignment left").await;
        c.cleanup().await;
    }
}
