//! A port bound under the caller's request id is recorded as seed steps
//! 26–38 (27–36 skipped with the noop driver; with linuxbridge the casts,
//! and the agents' events arrive through `record_events`), served back by
//! `GET /stratus/events` to cloud admins.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use stratus_bus::Bus;
use stratus_common::ids::RequestId;
use stratus_common::RequestContext;
use stratus_network::{DriverKind, NetworkConfig};
use stratus_network_rpc::{methods, RecordEvents, SERVER_TOPIC};
use stratus_telemetry::{Event, Outcome};

use crate::common::*;

const SERVER: &str = "5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

/// `POST /v2.0/ports` as admin for server [`SERVER`] on `host`, under `rid`.
async fn bound_port(c: &Cloud, net: &str, rid: &str) -> String {
    let body = json!({"port": {"network_id": net, "device_owner": "compute:nova",
        "device_id": SERVER, "binding:host_id": "host1"}});
    let req = Request::builder()
        .method("POST")
        .uri("/v2.0/ports")
        .header("x-auth-token", ADMIN)
        .header("x-openstack-request-id", rid)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let (st, b) = raw(&c.router, req).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    s(&b["port"]["id"])
}

/// The events of `query` as admin, once `n` have been written.
async fn events(c: &Cloud, query: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let (st, b) = c
            .call(
                "GET",
                &format!("/stratus/events?{query}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let got = b["events"].as_array().expect("events").clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} events never arrived for {query}");
}

fn steps(events: &[Value]) -> Vec<u64> {
    let mut s: Vec<u64> = events.iter().filter_map(|e| e["step"].as_u64()).collect();
    s.sort_unstable();
    s
}

#[tokio::test]
async fn a_port_bound_with_noop_records_26_to_38() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, _) = net_with_subnet(&c, ADMIN, "traced", Some("10.7.0.0/24")).await;
        let rid = "req-0a1b2c3d-4e5f-4a6b-8c7d-000000000026";
        bound_port(&c, &net, rid).await;
        let got = events(&c, &format!("request_id={rid}"), 13).await;
        assert_eq!(steps(&got), (26..=38).collect::<Vec<_>>(), "{got:?}");
        for e in &got {
            assert_eq!(e["service"], "network");
            assert_eq!(e["resource_id"], SERVER, "{e}");
            let step = e["step"].as_u64().unwrap_or(0);
            if (27..=36).contains(&step) {
                assert_eq!(e["outcome"], "skipped", "{e}");
                assert_eq!(e["detail"], "noop network driver");
            } else {
                assert_eq!(e["outcome"], "ok", "{e}");
            }
        }
        assert_eq!(c.compute.wait_for(1).await.len(), 1);
        let by_server = events(&c, &format!("resource_id={SERVER}"), 13).await;
        assert_eq!(by_server.len(), 13);
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn with_linuxbridge_the_casts_and_the_agents_events_are_recorded() {
    for t in dbs().await {
        let config = NetworkConfig {
            driver: DriverKind::Linuxbridge,
            ..NetworkConfig::default()
        };
        let bus = Bus::in_memory();
        let c = Cloud::start_on(&t.db, config, bus.clone()).await;
        let (net, _) = net_with_subnet(&c, ADMIN, "traced-lb", Some("10.8.0.0/24")).await;
        let rid = "req-0a1b2c3d-4e5f-4a6b-8c7d-000000000027";
        bound_port(&c, &net, rid).await;
        let got = events(&c, &format!("request_id={rid}"), 3).await;
        assert_eq!(steps(&got), [26, 27, 28], "{got:?}");

        // The DHCP agent's events, as it casts them back.
        let agent_event = |step: u16| Event {
            request_id: rid.to_owned(),
            service: "dhcp-agent".to_owned(),
            step,
            what: "test".to_owned(),
            resource_id: Some(SERVER.to_owned()),
            started_at: chrono::Utc::now(),
            duration_us: 5,
            outcome: Outcome::Ok,
            detail: None,
        };
        let ctx = RequestContext {
            request_id: rid.parse::<RequestId>().expect("request id"),
            ..RequestContext::internal()
        };
        let args = RecordEvents {
            events: (29..=32).map(agent_event).collect(),
        };
        bus.cast(SERVER_TOPIC, methods::RECORD_EVENTS, &ctx, &args)
            .await
            .expect("cast");
        let got = events(&c, &format!("request_id={rid}"), 8).await;
        assert_eq!(steps(&got), [26, 27, 28, 29, 30, 31, 32, 33], "{got:?}");
        let read = got.iter().find(|e| e["step"] == 33).expect("33");
        assert_eq!(read["service"], "network");
        assert_eq!(read["resource_id"], SERVER);
        assert!(got
            .iter()
            .filter(|e| (29..=32).contains(&e["step"].as_u64().unwrap_or(0)))
            .all(|e| e["service"] == "dhcp-agent"));
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn events_are_for_cloud_admins_only() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let path = "/stratus/events?request_id=req-x";
        let (st, _) = c.call("GET", path, None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        for who in [ALICE, READER] {
            let (st, b) = c.call("GET", path, Some(who), None).await;
            assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        }
        let (st, b) = c.call("GET", path, Some(ADMIN), None).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b, json!({"events": []}));
        c.stop().await;
        t.cleanup().await;
    }
}
