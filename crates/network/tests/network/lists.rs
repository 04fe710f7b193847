//! Neutron's list conventions on real collections.

use axum::http::StatusCode;
use serde_json::json;
use stratus_network::NetworkConfig;

use crate::common::*;

#[tokio::test]
async fn filters_fields_sorting_and_pages() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let mut ids = Vec::new();
        for name in ["delta", "alpha", "charlie", "bravo"] {
            let (_, b) = c
                .call(
                    "POST",
                    "/v2.0/networks",
                    Some(ALICE),
                    Some(json!({"network": {"name": name, "admin_state_up": name != "charlie"}})),
                )
                .await;
            ids.push(s(&b["network"]["id"]));
        }
        let names = |b: &serde_json::Value| -> Vec<String> {
            b["networks"]
                .as_array()
                .expect("list")
                .iter()
                .map(|n| s(&n["name"]))
                .collect()
        };
        let (_, b) = c
            .call(
                "GET",
                "/v2.0/networks?name=alpha&name=bravo&sort_key=name",
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(names(&b), ["alpha", "bravo"]);
        let (_, b) = c
            .call(
                "GET",
                "/v2.0/networks?admin_state_up=False",
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(names(&b), ["charlie"]);
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/networks?tenant_id={PROJECT_A}&sort_key=name&sort_dir=desc"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(names(&b), ["delta", "charlie", "bravo", "alpha"]);
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/networks?id={}&fields=id&fields=name", ids[0]),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(b["networks"], json!([{"id": ids[0], "name": "delta"}]));
        // Pages of two, following the next link.
        let (_, b) = c
            .call(
                "GET",
                "/v2.0/networks?limit=2&sort_key=name",
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(names(&b), ["alpha", "bravo"]);
        let next = s(&b["networks_links"][0]["href"]);
        assert_eq!(b["networks_links"][0]["rel"], "next");
        let path = next.trim_start_matches("http://net.test:9696");
        let (_, b) = c.call("GET", path, Some(ALICE), None).await;
        assert_eq!(names(&b), ["charlie", "delta"]);
        assert!(b["networks_links"]
            .as_array()
            .expect("links")
            .iter()
            .all(|l| l["rel"] != "next"));
        let (st, b) = c
            .call("GET", "/v2.0/networks?limit=-1", Some(ALICE), None)
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        let (st, _) = c
            .call("GET", "/v2.0/networks?sort_key=nope", Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (st, _) = c
            .call(
                "GET",
                "/v2.0/networks?sort_key=name&sort_dir=sideways",
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        // fields on a single resource
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/networks/{}?fields=name", ids[1]),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(b["network"], json!({"name": "alpha"}));
        // Ports by fixed address and by device.
        let (net, _) = net_with_subnet(&c, ALICE, "p", Some("10.40.0.0/24")).await;
        for dev in ["d1", "d2"] {
            let (st, _) = c
                .call(
                    "POST",
                    "/v2.0/ports",
                    Some(ALICE),
                    Some(json!({"port": {"network_id": net, "device_id": dev}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED);
        }
        let (_, b) = c
            .call("GET", "/v2.0/ports?device_id=d2", Some(ALICE), None)
            .await;
        assert_eq!(b["ports"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["ports"][0]["fixed_ips"][0]["ip_address"], "10.40.0.3");
        let (_, b) = c
            .call(
                "GET",
                "/v2.0/ports?fixed_ips=ip_address%3D10.40.0.2",
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(b["ports"][0]["device_id"], "d1");
        c.stop().await;
        t.cleanup().await;
    }
}
