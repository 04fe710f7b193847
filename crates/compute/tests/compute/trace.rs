//! Seed-step events (what `stratus trace` reads): a fake-driver launch
//! records its steps under the POST's request id, the agent's arriving
//! through the conductor; a failed build records its failing step; the
//! events API is for cloud admins.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::Value;
use stratus_compute::bus::Bus;
use stratus_compute::saga::Inject;

use super::harness::*;

/// The POST's request id (`x-openstack-request-id`) and the server id.
async fn launch(c: &Cloud, flavor: &str) -> (String, String) {
    let (s, v, h) = c
        .call(
            Method::POST,
            "/v2.1/servers",
            ALICE,
            Some(server_body("vm", flavor)),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let rid = h
        .get("x-openstack-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("request id")
        .to_owned();
    let id = v["server"]["id"].as_str().expect("server id").to_owned();
    (rid, id)
}

/// The events of `query` once there is one of each of `steps` (they are
/// written in the background, in batches that may land out of order).
pub(super) async fn events_until(c: &Cloud, query: &str, steps: &[u64]) -> Vec<Value> {
    let mut got = Vec::new();
    for _ in 0..500 {
        let (s, v) = c.get(&format!("/stratus/events?{query}"), ADMIN).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        got = v["events"].as_array().cloned().unwrap_or_default();
        if steps.iter().all(|s| got.iter().any(|e| e["step"] == *s)) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not every step of {steps:?} for {query}: {got:#?}");
}

pub(super) fn of_step(events: &[Value], step: u64) -> Vec<&Value> {
    events.iter().filter(|e| e["step"] == step).collect()
}

fn start_of(events: &[Value], step: u64) -> String {
    of_step(events, step)
        .first()
        .and_then(|e| e["started_at"].as_str())
        .unwrap_or_else(|| panic!("no event of step {step}: {events:#?}"))
        .to_owned()
}

#[tokio::test]
async fn a_fake_driver_launch_records_its_seed_steps_under_the_posts_request_id() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let began = Instant::now();
        let (rid, id) = launch(&c, &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let wall = began.elapsed();
        let ran = [
            4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19, 21, 39, 43, 44, 47, 48,
        ];
        let events = events_until(&c, &format!("request_id={rid}"), &ran).await;

        // Every event is the launch's, about the server.
        for e in &events {
            assert_eq!(e["request_id"], rid.as_str(), "{e}");
            assert_eq!(e["resource_id"], id.as_str(), "{e}");
        }
        // API, scheduler and agent; the agent's through the conductor
        // (agents have no database).
        for service in ["compute-api", "scheduler", "compute-agent"] {
            assert!(
                events.iter().any(|e| e["service"] == service),
                "{service}: {events:#?}"
            );
        }
        let ok = [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19, 43, 47];
        for step in ok {
            assert!(
                of_step(&events, step).iter().any(|e| e["outcome"] == "ok"),
                "step {step}: {events:#?}"
            );
        }
        // In the order of the seed (RFC 3339 with microseconds sorts).
        let order = [4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 19, 43, 47];
        for w in order.windows(2) {
            assert!(
                start_of(&events, w[0]) <= start_of(&events, w[1]),
                "step {} after step {}: {events:#?}",
                w[0],
                w[1]
            );
        }
        // The steps that do not apply say why.
        for (step, reason) in [
            (39, "no volume"),
            (48, "no volume"),
            (21, "no image cache on this host"),
        ] {
            let e = of_step(&events, step);
            assert!(
                e.iter()
                    .any(|e| e["outcome"] == "skipped" && e["detail"] == reason),
                "step {step}: {events:#?}"
            );
        }
        assert!(
            events
                .iter()
                .any(|e| e["step"] == 43 && e["what"].as_str().is_some_and(|w| w.contains("fake"))),
            "the fake driver is named: {events:#?}"
        );
        // Nothing is counted twice: the launch's steps add up to no more
        // than the client waited (with the small overlap of the API's
        // answer and the scheduler's start).
        let sum_us: i64 = events
            .iter()
            .filter(|e| (4..=47).contains(&e["step"].as_u64().unwrap_or(0)))
            .map(|e| e["duration_us"].as_i64().unwrap_or(0))
            .sum();
        let wall_us = i64::try_from(wall.as_micros()).unwrap_or(i64::MAX);
        eprintln!("{engine:?}: steps 4-47 sum {sum_us} us, POST to ACTIVE seen {wall_us} us");
        assert!(
            sum_us <= wall_us + wall_us / 4 + 100_000,
            "{sum_us} us of steps in {wall_us} us: {events:#?}"
        );

        // A poll has its own request id, and is found by the server id.
        let by_server = events_until(&c, &format!("resource_id={id}"), &[56]).await;
        assert!(by_server
            .iter()
            .any(|e| e["step"] == 56 && e["request_id"] != rid.as_str()));
        c.stop().await;
    }
}

#[tokio::test]
async fn a_failed_build_records_the_failing_step_with_its_error() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 1;
        // Before `fetch_image`, on every host: the server ends in ERROR.
        let ext = Ext {
            inject: Inject {
                fail_before: Some(1),
                ..Inject::default()
            },
            ..Ext::accept_all(Bus::in_memory())
        };
        let c = Cloud::start_custom(engine, cfg, None, ext).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let (rid, id) = launch(&c, &flavor).await;
        c.wait_status(&id, "ERROR").await;
        // The failing step as an error, and the steps before it undone,
        // each recorded.
        let undone = |e: &&Value| {
            e["what"]
                .as_str()
                .is_some_and(|w| w.starts_with("saga undo"))
        };
        let mut events = Vec::new();
        for _ in 0..500 {
            events = events_until(&c, &format!("request_id={rid}"), &[19]).await;
            if events.iter().filter(undone).count() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let failed = of_step(&events, 19);
        assert!(
            failed.iter().any(|e| e["outcome"] == "error"
                && e["service"] == "compute-agent"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("injected failure"))),
            "{events:#?}"
        );
        assert!(events.iter().filter(undone).count() >= 2, "{events:#?}");
        c.stop().await;
    }
}

#[tokio::test]
async fn the_events_api_is_for_cloud_admins() {
    let c = Cloud::start(Engine::Sqlite, base_cfg()).await;
    let path = "/stratus/events?request_id=req-x";
    assert_eq!(c.get(path, "").await.0, StatusCode::UNAUTHORIZED);
    for token in [ALICE, READER, SYSTEM_READER] {
        let (s, v) = c.get(path, token).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{token}: {v}");
        assert!(v["forbidden"]["message"].is_string(), "{v}");
    }
    for token in [ADMIN, SYSTEM_ADMIN] {
        let (s, v) = c.get(path, token).await;
        assert_eq!(s, StatusCode::OK, "{token}: {v}");
        assert_eq!(v["events"], serde_json::json!([]));
    }
    c.stop().await;
}
