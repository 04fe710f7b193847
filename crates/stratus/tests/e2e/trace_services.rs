//! The seed-step events identity, network, image and volume record, read
//! back through each service's `GET /stratus/events` on a real `stratus up`
//! (noop network driver): a token issue (steps 1–3, for the user) and a
//! port bound for a server with the `openstack` CLI (26–38, the dataplane
//! steps 27–36 skipped).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::harness::{field, Cloud};

/// The events a service answers for `query`, once at least `n` arrived.
fn events(cloud: &Cloud, port_key: &str, token: &str, query: &str, n: usize) -> Vec<Value> {
    let url = format!(
        "http://127.0.0.1:{}/stratus/events?{query}",
        cloud.port(port_key)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = cloud.http(Method::GET, &url, &[("x-auth-token", token)], None);
        assert_eq!(status, 200, "{url}: {body}");
        let got = body["events"].as_array().cloned().unwrap_or_default();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn steps(events: &[Value]) -> Vec<u64> {
    let mut s: Vec<u64> = events.iter().filter_map(|e| e["step"].as_u64()).collect();
    s.sort_unstable();
    s
}

#[test]
fn token_and_port_events_are_served_by_their_services() {
    let cloud = Cloud::start();
    let admin = cloud.admin_token();

    // --- a token issued under the caller's request id: steps 1–3.
    let rid = "req-9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a500";
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": cloud.admin_password()}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}
    }});
    let url = format!("{}/auth/tokens", cloud.identity_url());
    let (status, headers, token) = cloud.http(
        Method::POST,
        &url,
        &[("x-openstack-request-id", rid)],
        Some(&body),
    );
    assert_eq!(status, 201);
    assert_eq!(headers["x-openstack-request-id"], rid);
    let user = token["token"]["user"]["id"].as_str().expect("user id");
    let got = events(&cloud, "IDENTITY", &admin, &format!("request_id={rid}"), 3);
    assert_eq!(steps(&got), [1, 2, 3], "{got:?}");
    assert!(got
        .iter()
        .all(|e| e["service"] == "identity" && e["resource_id"] == user && e["outcome"] == "ok"));

    // --- a port bound to a host for a server: steps 26–38.
    cloud.openstack_json(&["network", "create", "traced-net"]);
    cloud.openstack_json(&[
        "subnet",
        "create",
        "--network",
        "traced-net",
        "--subnet-range",
        "10.61.0.0/24",
        "traced-sub",
    ]);
    let server = "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b";
    let port = cloud.openstack_json(&[
        "port",
        "create",
        "--network",
        "traced-net",
        "--device-owner",
        "compute:nova",
        "--device",
        server,
        "--host",
        "trace-host",
        "traced-port",
    ]);
    assert_eq!(field(&port, "status"), "ACTIVE", "{port}");
    let got = events(
        &cloud,
        "NETWORK",
        &admin,
        &format!("resource_id={server}"),
        13,
    );
    assert_eq!(steps(&got), (26..=38).collect::<Vec<_>>(), "{got:?}");
    for e in &got {
        assert_eq!(e["service"], "network", "{e}");
        let step = e["step"].as_u64().unwrap_or(0);
        if (27..=36).contains(&step) {
            assert_eq!(e["outcome"], "skipped", "{e}");
            assert_eq!(e["detail"], "noop network driver", "{e}");
        } else if step != 38 {
            // (38 tells compute of a server it does not have.)
            assert_eq!(e["outcome"], "ok", "{e}");
        }
    }
    // One request's events share its id.
    let rid = got[0]["request_id"].as_str().expect("request id");
    assert!(got.iter().all(|e| e["request_id"] == rid), "{got:?}");

    // --- every service answers its events to admins only.
    cloud.project_with_member("trace-p", "trace-u", "trace-pw");
    let member = cloud.token_of("trace-u", "trace-pw", "trace-p");
    for key in ["IDENTITY", "IMAGE", "NETWORK", "VOLUME"] {
        let url = format!(
            "http://127.0.0.1:{}/stratus/events?request_id={rid}",
            cloud.port(key)
        );
        let (status, _, _) = cloud.http(Method::GET, &url, &[], None);
        assert_eq!(status, 401, "{key}");
        let (status, _, body) = cloud.http(Method::GET, &url, &[("x-auth-token", &member)], None);
        assert_eq!(status, 403, "{key}: {body}");
        let (status, _, body) = cloud.http(Method::GET, &url, &[("x-auth-token", &admin)], None);
        assert_eq!(status, 200, "{key}: {body}");
        assert!(body["events"].is_array(), "{key}: {body}");
    }
}
