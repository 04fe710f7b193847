//! Authorisation: a member of project A sees only what is theirs.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::common::clouds;

#[tokio::test]
async fn member_of_a_cannot_see_b() {
    for c in clouds().await {
        let alice = c.user("alice", "pw").await;
        let bob = c.user("bob", "pw").await;
        let pa = c.project("A").await;
        let pb = c.project("B").await;
        c.grant(&pa, &alice, "member").await;
        c.grant(&pb, &bob, "member").await;
        let t = c.login("alice", "pw", Some("A")).await.token();

        // Her own things.
        assert_eq!(
            c.get(&format!("/v3/projects/{pa}"), &t).await.status,
            StatusCode::OK
        );
        assert_eq!(
            c.get(&format!("/v3/users/{alice}"), &t).await.status,
            StatusCode::OK
        );
        let r = c.get("/v3/auth/projects", &t).await;
        let ids: Vec<&str> = r.body["projects"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|p| p["id"].as_str())
            .collect();
        assert_eq!(ids, vec![pa.as_str()]);
        let r = c.get(&format!("/v3/users/{alice}/projects"), &t).await;
        assert_eq!(r.body["projects"].as_array().map(Vec::len), Some(1));
        let r = c.get("/v3/auth/catalog", &t).await;
        assert_eq!(r.status, StatusCode::OK);
        // Her own token validates with her own token.
        let r = c
            .on_subject(Method::GET, "/v3/auth/tokens", Some(&t), &t)
            .await;
        assert_eq!(r.status, StatusCode::OK);

        // Not B, not Bob, no lists, no changes: 403 with Keystone's body.
        for path in [
            format!("/v3/projects/{pb}"),
            format!("/v3/users/{bob}"),
            format!("/v3/users/{bob}/projects"),
            "/v3/users".into(),
            "/v3/projects".into(),
            "/v3/role_assignments".into(),
            "/v3/roles".into(),
            "/v3/services".into(),
        ] {
            let r = c.get(&path, &t).await;
            r.assert_error(StatusCode::FORBIDDEN);
            assert_eq!(r.body["error"]["title"], "Forbidden");
        }
        c.post("/v3/projects", &t, json!({"project": {"name": "mine"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.put(&format!("/v3/projects/{pb}/users/{alice}/roles/x"), &t)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.on_subject(Method::GET, "/v3/auth/tokens", Some(&t), &c.admin)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        c.on_subject(Method::DELETE, "/v3/auth/tokens", Some(&t), &c.admin)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(c.check(&c.admin).await, StatusCode::OK);
        // She cannot scope to B at all.
        c.login("alice", "pw", Some("B"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);

        // No token at all: 401.
        c.call(Method::GET, "/v3/projects", None, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);

        // A reader (implied only) still reads her own project.
        let carl = c.user("carl", "pw").await;
        c.grant(&pa, &carl, "reader").await;
        let tc = c.login("carl", "pw", Some("A")).await.token();
        assert_eq!(
            c.get(&format!("/v3/projects/{pa}"), &tc).await.status,
            StatusCode::OK
        );
        c.cleanup().await;
    }
}
