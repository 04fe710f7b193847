//! The image record and data served under the caller's request id are
//! recorded as seed steps 20 and 23–25, and served back by
//! `GET /stratus/events` to cloud admins.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::*;

const RID: &str = "req-2b8f0c7e-9a41-4d0e-8f1a-6c3d5e7f9a10";

async fn events(env: &Env, query: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let r = env.get(&format!("/stratus/events?{query}"), ADMIN).await;
        r.assert_status(StatusCode::OK);
        let got = r.json()["events"].as_array().expect("events").clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} events never arrived for {query}");
}

#[tokio::test]
async fn show_and_download_are_recorded_under_the_callers_request_id() {
    each_engine(|env| async move {
        let id = env.raw_image(ALICE, "traced").await;
        env.upload(&id, ALICE, b"bits".to_vec())
            .await
            .assert_status(StatusCode::NO_CONTENT);
        for path in [format!("/v2/images/{id}"), format!("/v2/images/{id}/file")] {
            let req = Env::request(Method::GET, &path, Some(SERVICE))
                .header("x-openstack-request-id", RID)
                .body(axum::body::Body::empty())
                .expect("request");
            let r = env.send(req).await;
            assert!(r.status.is_success(), "{path}: {}", r.status);
            assert_eq!(r.headers["x-openstack-request-id"], RID);
        }
        let got = events(&env, &format!("request_id={RID}"), 4).await;
        let steps: Vec<u64> = got.iter().filter_map(|e| e["step"].as_u64()).collect();
        assert_eq!(steps, [20, 23, 24, 25], "{got:?}");
        for e in &got {
            assert_eq!(e["service"], "image");
            assert_eq!(e["resource_id"], json!(id));
        }
        assert_eq!(got[1]["outcome"], "ok");
        assert_eq!(got[2]["outcome"], "skipped");
        assert_eq!(got[2]["detail"], "file store");
        assert_eq!(got[3]["outcome"], "ok");
        let by_image = events(&env, &format!("resource_id={id}"), 4).await;
        assert_eq!(by_image.len(), 4);
    })
    .await;
}

#[tokio::test]
async fn events_are_for_cloud_admins_only() {
    each_engine(|env| async move {
        let path = "/stratus/events?request_id=req-x";
        let r = env.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        for who in [ALICE, READER] {
            let r = env.get(path, who).await;
            r.assert_status(StatusCode::FORBIDDEN);
            r.error_message();
        }
        let r = env.get(path, ADMIN).await;
        r.assert_status(StatusCode::OK);
        assert_eq!(r.json(), json!({"events": []}));
    })
    .await;
}
