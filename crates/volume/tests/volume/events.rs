//! A volume read under the caller's request id is recorded as seed steps
//! 39–42 (received, token validated, roles put in the request, answered)
//! and served back by `GET /stratus/events` to cloud admins.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

const RID: &str = "req-3c9d1e2f-4a5b-4c6d-8e7f-000000000039";

async fn events(env: &Env, query: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let got = env
            .get(&format!("/stratus/events?{query}"), ADMIN)
            .await
            .ok(200)["events"]
            .as_array()
            .expect("events")
            .clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} events never arrived for {query}");
}

#[tokio::test]
async fn a_volume_read_is_recorded_as_steps_39_to_42() {
    each_engine(|env| async move {
        let id = env.volume(ALICE, P_ALICE, json!({"size": 1})).await;
        let req = Request::builder()
            .method(Method::GET)
            .uri(format!("/v3/{P_ALICE}/volumes/{id}"))
            .header("x-auth-token", ALICE)
            .header("x-openstack-request-id", RID)
            .body(Body::empty())
            .expect("request");
        let r = env.send(req).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-openstack-request-id"], RID);
        let got = events(&env, &format!("request_id={RID}"), 4).await;
        let steps: Vec<u64> = got.iter().filter_map(|e| e["step"].as_u64()).collect();
        assert_eq!(steps, [39, 40, 41, 42], "{got:?}");
        for e in &got {
            assert_eq!(e["service"], "volume");
            assert_eq!(e["outcome"], "ok", "{e}");
            assert_eq!(e["resource_id"], json!(id));
        }
        assert!(got[2]["what"].as_str().unwrap_or("").contains("member"));
    })
    .await;
}

#[tokio::test]
async fn events_are_for_cloud_admins_only() {
    each_engine(|env| async move {
        let path = "/stratus/events?request_id=req-x";
        let r = env.call_v(Method::GET, path, None, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        for who in [ALICE, READER] {
            let r = env.get(path, who).await;
            r.fault(403);
        }
        assert_eq!(env.get(path, ADMIN).await.ok(200), json!({"events": []}));
    })
    .await;
}
