//! Discovery, the CLI's network/subnet/port flows, bad input, binding and
//! quotas.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use stratus_network::NetworkConfig;

use crate::common::*;

#[tokio::test]
async fn discovery_and_auth() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (st, b) = c.call("GET", "/", None, None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(b["versions"][0]["id"], "v2.0");
        assert_eq!(
            b["versions"][0]["links"][0]["href"],
            "http://net.test:9696/v2.0/"
        );
        let (st, b) = c.call("GET", "/v2.0/", Some(ALICE), None).await;
        assert_eq!(st, StatusCode::OK);
        assert!(b["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .any(|r| r["collection"] == "ports"));
        let (st, b) = c.call("GET", "/v2.0/extensions", Some(ALICE), None).await;
        assert_eq!(st, StatusCode::OK);
        let aliases: Vec<String> = b["extensions"]
            .as_array()
            .expect("list")
            .iter()
            .map(|e| s(&e["alias"]))
            .collect();
        for a in [
            "binding",
            "security-group",
            "quotas",
            "port-security",
            "net-mtu",
            "pagination",
            "sorting",
        ] {
            assert!(aliases.contains(&a.to_owned()), "{a} missing");
        }
        assert!(!aliases.contains(&"router".to_owned()));
        let e = &b["extensions"][0];
        for k in ["alias", "name", "description", "updated", "links"] {
            assert!(e.get(k).is_some(), "{k}");
        }
        let (st, b) = c
            .call("GET", "/v2.0/extensions/binding", Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(b["extension"]["name"], "Port Binding");
        let (st, _) = c
            .call("GET", "/v2.0/extensions/router", Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        // No token, a bad token: keystonemiddleware's 401.
        let (st, _) = c.call("GET", "/v2.0/networks", None, None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _) = c.call("GET", "/v2.0/networks", Some("nope"), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, b) = c.call("GET", "/v2.0/routers", Some(ALICE), None).await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "HTTPNotFound");
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn cli_network_subnet_port_flow() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        // openstack network create N
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"network": {"admin_state_up": true, "name": "N"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let n = &b["network"];
        assert_eq!(n["status"], "ACTIVE");
        assert_eq!(n["mtu"], 1500);
        assert_eq!(n["shared"], false);
        assert_eq!(n["project_id"], PROJECT_A);
        assert_eq!(n["tenant_id"], PROJECT_A);
        assert_eq!(n["subnets"], json!([]));
        assert!(s(&n["created_at"]).ends_with('Z'));
        let net = s(&n["id"]);
        // openstack subnet create --network N --subnet-range 10.0.0.0/24 S
        let (st, b) = c.call("GET", "/v2.0/networks/N", Some(ALICE), None).await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "NetworkNotFound");
        let (st, b) = c
            .call("GET", "/v2.0/networks?name=N", Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(b["networks"][0]["id"], net.as_str());
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(ALICE),
                Some(json!({"subnet": {
                "cidr": "10.0.0.0/24", "network_id": net, "ip_version": 4, "name": "S"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let sub = &b["subnet"];
        assert_eq!(sub["gateway_ip"], "10.0.0.1");
        assert_eq!(
            sub["allocation_pools"],
            json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
        );
        assert_eq!(sub["dns_nameservers"], json!([]));
        assert_eq!(sub["host_routes"], json!([]));
        assert_eq!(sub["enable_dhcp"], true);
        assert_eq!(sub["ip_version"], 4);
        let subnet = s(&sub["id"]);
        let (_, b) = c
            .call("GET", &format!("/v2.0/networks/{net}"), Some(ALICE), None)
            .await;
        assert_eq!(b["network"]["subnets"], json!([subnet]));

        // Ports: lowest free address, generated MAC, default group.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let p1 = b["port"].clone();
        assert_eq!(
            p1["fixed_ips"],
            json!([{"subnet_id": subnet, "ip_address": "10.0.0.2"}])
        );
        assert!(s(&p1["mac_address"]).starts_with("fa:16:3e:"));
        assert_eq!(p1["status"], "DOWN");
        assert_eq!(p1["port_security_enabled"], true);
        assert_eq!(p1["security_groups"].as_array().map(Vec::len), Some(1));
        assert!(p1.get("binding:host_id").is_none(), "binding is admin-only");
        let (_, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_eq!(b["port"]["fixed_ips"][0]["ip_address"], "10.0.0.3");
        assert_ne!(b["port"]["mac_address"], p1["mac_address"]);
        let p2 = s(&b["port"]["id"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net,
                "fixed_ips": [{"ip_address": "10.0.0.50"}], "name": "fifty"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["port"]["fixed_ips"][0]["subnet_id"], subnet.as_str());
        let p50 = s(&b["port"]["id"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net,
                "fixed_ips": [{"subnet_id": subnet, "ip_address": "10.0.0.50"}]}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "IpAddressInUse");
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net,
                "fixed_ips": [{"subnet_id": subnet, "ip_address": "10.9.0.5"}]}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "InvalidIpForSubnet");
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net,
                "fixed_ips": [{"subnet_id": subnet, "ip_address": "10.0.0.255"}]}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "InvalidIpForSubnet");
        let mac = s(&p1["mac_address"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net, "mac_address": mac}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "MacAddressInUse");
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net, "mac_address": "zz:16"}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        // Failed creates left nothing behind: the next port gets .4.
        let (_, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_eq!(b["port"]["fixed_ips"][0]["ip_address"], "10.0.0.4");
        let p4 = s(&b["port"]["id"]);

        // Update: name and a different address.
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{p50}"),
                Some(ALICE),
                Some(json!({"port": {"name": "renamed",
                "fixed_ips": [{"ip_address": "10.0.0.60"}]}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["port"]["name"], "renamed");
        assert_eq!(b["port"]["fixed_ips"][0]["ip_address"], "10.0.0.60");
        assert_eq!(b["port"]["revision_number"], 2);
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{p50}"),
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        // .50 is free again.
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net,
                "fixed_ips": [{"ip_address": "10.0.0.50"}]}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);

        // In use: the network and the subnet cannot go.
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "NetworkInUse");
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/subnets/{subnet}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "SubnetInUse");
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/ports?network_id={net}"),
                Some(ALICE),
                None,
            )
            .await;
        for p in b["ports"].as_array().expect("ports") {
            let (st, _) = c
                .call(
                    "DELETE",
                    &format!("/v2.0/ports/{}", s(&p["id"])),
                    Some(ALICE),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT);
        }
        let (st, b) = c
            .call("GET", &format!("/v2.0/ports/{p2}"), Some(ALICE), None)
            .await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "PortNotFound");
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{p4}"), Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, b) = c
            .call("GET", &format!("/v2.0/subnets/{subnet}"), Some(ALICE), None)
            .await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "SubnetNotFound");
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn bad_input_gets_neutron_errors() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, _) = net_with_subnet(&c, ALICE, "n", Some("10.1.0.0/24")).await;
        let sub = |body: serde_json::Value| {
            let mut b = json!({"network_id": net, "ip_version": 4});
            if let (Some(m), Some(extra)) = (b.as_object_mut(), body.as_object()) {
                m.extend(extra.clone());
            }
            json!({"subnet": b})
        };
        let cases = [
            (sub(json!({"cidr": "banana"})), StatusCode::BAD_REQUEST),
            (sub(json!({"cidr": "10.2.0.5/24"})), StatusCode::BAD_REQUEST),
            (sub(json!({"cidr": "10.2.0.0/33"})), StatusCode::BAD_REQUEST),
            (
                sub(json!({"cidr": "10.1.0.128/25"})),
                StatusCode::BAD_REQUEST,
            ), // overlaps
            (sub(json!({"cidr": "10.0.0.0/8"})), StatusCode::BAD_REQUEST), // overlaps
            (sub(json!({"cidr": "fd00::/64"})), StatusCode::BAD_REQUEST),  // version mismatch
            (
                json!({"subnet": {"network_id": net, "cidr": "10.3.0.0/24"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(
                    json!({"cidr": "10.3.0.0/24", "allocation_pools": [{"start": "10.3.0.9", "end": "10.3.0.2"}]}),
                ),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(
                    json!({"cidr": "10.3.0.0/24", "allocation_pools": [{"start": "10.3.0.2", "end": "10.4.0.2"}]}),
                ),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(
                    json!({"cidr": "10.3.0.0/24", "allocation_pools": [{"start": "10.3.0.1", "end": "10.3.0.20"}]}),
                ),
                StatusCode::CONFLICT,
            ),
            (
                sub(json!({"cidr": "10.3.0.0/24", "gateway_ip": "10.9.9.9"})),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(json!({"cidr": "10.3.0.0/24", "dns_nameservers": ["8.8.8.8", "8.8.8.8"]})),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(json!({"cidr": "10.3.0.0/24", "dns_nameservers": ["not-an-ip"]})),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(
                    json!({"cidr": "10.3.0.0/24", "host_routes": [{"destination": "x", "nexthop": "10.3.0.1"}]}),
                ),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(json!({"cidr": "10.3.0.0/24", "bogus": 1})),
                StatusCode::BAD_REQUEST,
            ),
            (
                sub(json!({"cidr": "10.3.0.0/24", "ip_version": 5})),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"subnet": {"network_id": "nope", "cidr": "10.3.0.0/24", "ip_version": 4}}),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"network": {}}), StatusCode::BAD_REQUEST),
        ];
        for (body, want) in cases {
            let (st, b) = c
                .call("POST", "/v2.0/subnets", Some(ALICE), Some(body.clone()))
                .await;
            assert_eq!(st, want, "{body} -> {b}");
            assert!(b["NeutronError"]["type"].is_string(), "{b}");
        }
        // Malformed JSON through the custom extractor.
        let req = Request::builder()
            .method("POST")
            .uri("/v2.0/networks")
            .header("x-auth-token", ALICE)
            .header("content-type", "application/json")
            .body(Body::from("{\"network\": "))
            .expect("request");
        let (st, b) = raw(&c.router, req).await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        for (body, want) in [
            (
                json!({"network": {"name": "x", "unknown": 1}}),
                StatusCode::BAD_REQUEST,
            ),
            (json!({"network": {"mtu": 9000}}), StatusCode::BAD_REQUEST),
            (json!({"network": {"mtu": 10}}), StatusCode::BAD_REQUEST),
            (json!({"network": {"name": 5}}), StatusCode::BAD_REQUEST),
            (json!({"network": {"shared": true}}), StatusCode::FORBIDDEN),
            (
                json!({"network": {"project_id": PROJECT_B}}),
                StatusCode::BAD_REQUEST,
            ),
            (json!([1, 2]), StatusCode::BAD_REQUEST),
        ] {
            let (st, b) = c
                .call("POST", "/v2.0/networks", Some(ALICE), Some(body.clone()))
                .await;
            assert_eq!(st, want, "{body} -> {b}");
            assert!(b["NeutronError"]["type"].is_string(), "{b}");
        }
        for (body, want) in [
            (json!({"port": {}}), StatusCode::BAD_REQUEST),
            (
                json!({"port": {"network_id": net, "fixed_ips": [{"subnet_id": "zzz"}]}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.1.0.1"}]}}),
                StatusCode::CONFLICT,
            ), // gateway
            (
                json!({"port": {"network_id": net, "binding:host_id": "h"}}),
                StatusCode::FORBIDDEN,
            ),
            (
                json!({"port": {"network_id": net, "binding:vnic_type": "direct"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"port": {"network_id": net, "security_groups": ["nope"]}}),
                StatusCode::NOT_FOUND,
            ),
            (
                json!({"port": {"network_id": net, "port_security_enabled": false, "security_groups": [net]}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"port": {"network_id": uuid::Uuid::new_v4()}}),
                StatusCode::NOT_FOUND,
            ),
        ] {
            let (st, b) = c
                .call("POST", "/v2.0/ports", Some(ALICE), Some(body.clone()))
                .await;
            assert_eq!(st, want, "{body} -> {b}");
            assert!(b["NeutronError"]["type"].is_string(), "{b}");
        }
        // A non-UUID in the path is that resource's 404.
        let (st, b) = c.call("GET", "/v2.0/ports/xyz", Some(ALICE), None).await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "PortNotFound");
        // Read-only subnet attributes.
        let (_, b) = c.call("GET", "/v2.0/subnets", Some(ALICE), None).await;
        let sid = s(&b["subnets"][0]["id"]);
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/subnets/{sid}"),
                Some(ALICE),
                Some(json!({"subnet": {"cidr": "10.9.0.0/24"}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn subnet_options_and_exhaustion() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, _) = net_with_subnet(&c, ALICE, "n", None).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(ALICE),
                Some(json!({"subnet": {
                "network_id": net, "ip_version": 4, "cidr": "192.168.5.0/29", "gateway_ip": null,
                "allocation_pools": [{"start": "192.168.5.4", "end": "192.168.5.5"}],
                "dns_nameservers": ["1.1.1.1", "8.8.8.8"],
                "host_routes": [{"destination": "172.16.0.0/16", "nexthop": "192.168.5.1"}],
                "enable_dhcp": false}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let sub = b["subnet"].clone();
        assert_eq!(sub["gateway_ip"], serde_json::Value::Null);
        assert_eq!(sub["dns_nameservers"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(
            sub["host_routes"],
            json!([{"destination": "172.16.0.0/16", "nexthop": "192.168.5.1"}])
        );
        assert_eq!(sub["enable_dhcp"], false);
        let mut ips = Vec::new();
        for _ in 0..2 {
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/ports",
                    Some(ALICE),
                    Some(json!({"port": {"network_id": net}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
            ips.push(s(&b["port"]["fixed_ips"][0]["ip_address"]));
        }
        assert_eq!(ips, ["192.168.5.4", "192.168.5.5"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "IpAddressGenerationFailure");
        // Outside the pools but inside the subnet, on request: allowed.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net,
                "fixed_ips": [{"ip_address": "192.168.5.2"}]}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        // Update DNS and routes; the rest stays.
        let sid = s(&sub["id"]);
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/subnets/{sid}"),
                Some(ALICE),
                Some(json!({"subnet": {
                "dns_nameservers": ["9.9.9.9"], "host_routes": [], "name": "renamed"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["subnet"]["dns_nameservers"], json!(["9.9.9.9"]));
        assert_eq!(b["subnet"]["host_routes"], json!([]));
        assert_eq!(b["subnet"]["allocation_pools"], sub["allocation_pools"]);
        assert_eq!(b["subnet"]["name"], "renamed");
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn binding_and_noop_status() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, _) = net_with_subnet(&c, ALICE, "n", Some("10.5.0.0/24")).await;
        let server = uuid::Uuid::new_v4().to_string();
        // Nova: the user creates the port, the service (admin) binds it.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net,
                "device_id": server, "device_owner": "compute:nova"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let port = s(&b["port"]["id"]);
        let (_, b) = c
            .call("GET", &format!("/v2.0/ports/{port}"), Some(ADMIN), None)
            .await;
        assert_eq!(b["port"]["binding:vif_type"], "unbound");
        assert_eq!(b["port"]["binding:host_id"], "");
        assert_eq!(b["port"]["binding:vnic_type"], "normal");
        assert_eq!(b["port"]["status"], "DOWN");
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ALICE),
                Some(json!({"port": {"binding:host_id": "h1"}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ADMIN),
                Some(json!({"port": {"binding:host_id": "h1"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let p = &b["port"];
        assert_eq!(p["binding:host_id"], "h1");
        assert_eq!(p["binding:vif_type"], "bridge");
        assert_eq!(
            p["binding:vif_details"]["bridge_name"],
            format!("brq{}", &net[..11])
        );
        // noop: ACTIVE as soon as bound, and compute hears about it.
        assert_eq!(p["status"], "ACTIVE");
        let events = c.compute.wait_for(1).await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, server);
        assert_eq!(events[0].1.to_string(), port);
        // The member sees the status but not the binding.
        let (_, b) = c
            .call("GET", &format!("/v2.0/ports/{port}"), Some(ALICE), None)
            .await;
        assert_eq!(b["port"]["status"], "ACTIVE");
        assert!(b["port"].get("binding:vif_type").is_none());
        // Administratively down: DOWN; up again: ACTIVE.
        let (_, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ALICE),
                Some(json!({"port": {"admin_state_up": false}})),
            )
            .await;
        assert_eq!(b["port"]["status"], "DOWN");
        let (_, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ALICE),
                Some(json!({"port": {"admin_state_up": true}})),
            )
            .await;
        assert_eq!(b["port"]["status"], "ACTIVE");
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ADMIN),
                Some(json!({"port": {"binding:profile": "x"}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        // Unbinding: DOWN again.
        let (_, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ADMIN),
                Some(json!({"port": {"binding:host_id": ""}})),
            )
            .await;
        assert_eq!(b["port"]["status"], "DOWN");
        assert_eq!(b["port"]["binding:vif_type"], "unbound");
        // Created bound by admin: ACTIVE in the create answer.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ADMIN),
                Some(json!({"port": {"network_id": net,
                "binding:host_id": "h2", "project_id": PROJECT_A}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["port"]["status"], "ACTIVE");
        assert_eq!(b["port"]["project_id"], PROJECT_A);
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn quotas() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (st, b) = c
            .call(
                "GET",
                &format!("/v2.0/quotas/{PROJECT_A}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(
            b["quota"],
            json!({"network": 100, "subnet": 100, "port": 500, "security_group": 10, "security_group_rule": 100})
        );
        let (st, b) = c
            .call(
                "GET",
                &format!("/v2.0/quotas/{PROJECT_B}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/quotas/{PROJECT_A}"),
                Some(ALICE),
                Some(json!({"quota": {"network": 1}})),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/quotas/{PROJECT_A}"),
                Some(ADMIN),
                Some(json!({"quota": {"network": 1, "port": 2}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["quota"]["network"], 1);
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/quotas/{PROJECT_A}"),
                Some(ADMIN),
                Some(json!({"quota": {"routers": 1}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "HTTPBadRequest");
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/quotas/{PROJECT_A}"),
                Some(ADMIN),
                Some(json!({"quota": {"port": -5}})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        let (net, _) = net_with_subnet(&c, ALICE, "one", Some("10.7.0.0/24")).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"network": {"name": "two"}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "OverQuota");
        for _ in 0..2 {
            let (st, _) = c
                .call(
                    "POST",
                    "/v2.0/ports",
                    Some(ALICE),
                    Some(json!({"port": {"network_id": net}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED);
        }
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "OverQuota");
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/quotas/{PROJECT_A}/details"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(
            b["quota"]["port"],
            json!({"limit": 2, "used": 2, "reserved": 0})
        );
        let (st, b) = c.call("GET", "/v2.0/quotas", Some(ADMIN), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(b["quotas"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["quotas"][0]["project_id"], PROJECT_A);
        let (st, _) = c.call("GET", "/v2.0/quotas", Some(ALICE), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/quotas/{PROJECT_A}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"network": {"name": "two"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        c.stop().await;
        t.cleanup().await;
    }
}
