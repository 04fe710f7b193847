//! Token issue is recorded as seed steps 1–3 under the caller's request id
//! and served back by `GET /stratus/events` to cloud admins.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{call, clouds, Cloud, ADMIN_PW};

/// The events of `query` as admin, once at least `n` have been written
/// (the recorder writes in the background).
async fn events(c: &Cloud, query: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let r = c.get(&format!("/stratus/events?{query}"), &c.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", c.name, r.body);
        let got = r.body["events"].as_array().expect("events").clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{}: {n} events never arrived for {query}", c.name);
}

#[tokio::test]
async fn token_issue_is_recorded_as_steps_1_to_3_for_the_user() {
    for c in clouds().await {
        let rid = "req-7d4b1a52-0c1e-4a8e-9a57-5b0f3c1d2e01";
        let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PW}}}}});
        let r = call(
            &c.router,
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(auth),
            &[("x-openstack-request-id", rid)],
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.headers["x-openstack-request-id"], rid);
        let user = r.body["token"]["user"]["id"]
            .as_str()
            .expect("user")
            .to_owned();

        let got = events(&c, &format!("request_id={rid}"), 3).await;
        let steps: Vec<u64> = got.iter().filter_map(|e| e["step"].as_u64()).collect();
        assert_eq!(steps, [1, 2, 3], "{}: {got:?}", c.name);
        for e in &got {
            assert_eq!(e["service"], "identity");
            assert_eq!(e["outcome"], "ok");
            assert_eq!(e["resource_id"], json!(user));
            assert_eq!(e["request_id"], rid);
        }
        // Found by the user too (how a trace finds the launch's token).
        let by_user = events(&c, &format!("resource_id={user}"), 3).await;
        assert!(by_user.iter().any(|e| e["request_id"] == rid));

        // A wrong password is step 1 failed, for no user.
        let bad = "req-7d4b1a52-0c1e-4a8e-9a57-5b0f3c1d2e02";
        let auth = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": "wrong"}}}}});
        let r = call(
            &c.router,
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(auth),
            &[("x-openstack-request-id", bad)],
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let got = events(&c, &format!("request_id={bad}"), 1).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["step"], 1);
        assert_eq!(got[0]["outcome"], "error");
        assert!(got[0].get("resource_id").is_none());
        c.cleanup().await;
    }
}

#[tokio::test]
async fn events_are_for_cloud_admins_only() {
    for c in clouds().await {
        let path = "/stratus/events?request_id=req-x";
        c.call(Method::GET, path, None, None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        let (_, _, member) = c.project_member("ev-member", "pw-ev", "ev-project").await;
        c.get(path, &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = c.get(path, &c.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body, json!({"events": []}));
        c.cleanup().await;
    }
}
