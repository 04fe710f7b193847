//! Issue 12: bulk create (all or nothing), provider networks,
//! `router:external`, `shared`, RBAC policies and availability zones.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use stratus_bus::{handler_fn, Bus, Envelope, ServeOptions};
use stratus_network::{DriverKind, NetworkConfig};
use tokio::sync::mpsc;

use crate::common::*;

async fn ids_of(c: &Cloud, token: &str, path: &str, coll: &str) -> Vec<String> {
    let (st, b) = c.call("GET", path, Some(token), None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    b[coll]
        .as_array()
        .unwrap_or_else(|| panic!("{coll} in {b}"))
        .iter()
        .map(|x| s(&x["id"]))
        .collect()
}

#[tokio::test]
async fn bulk_create_is_all_or_nothing() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        // Networks: a list in, a list out.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"networks": [{"name": "n1"}, {"name": "n2"}]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let nets = b["networks"].as_array().expect("networks").clone();
        assert_eq!(nets.len(), 2);
        assert_eq!(nets[0]["name"], "n1");
        assert_eq!(nets[1]["name"], "n2");
        let net = s(&nets[0]["id"]);
        // One bad item: nothing is created, and its error is the answer.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"networks": [{"name": "n3"}, {"name": "n4", "mtu": 10}]})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        let names: Vec<String> = {
            let (_, b) = c.call("GET", "/v2.0/networks", Some(ALICE), None).await;
            b["networks"]
                .as_array()
                .expect("list")
                .iter()
                .map(|n| s(&n["name"]))
                .collect()
        };
        assert_eq!(names, vec!["n1", "n2"]);
        // Over quota as a whole (2 used, limit 3, 2 asked): nothing.
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/quotas/{PROJECT_A}"),
                Some(ADMIN),
                Some(json!({"quota": {"network": 3}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"networks": [{"name": "q1"}, {"name": "q2"}]})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "OverQuota");
        assert_eq!(
            ids_of(&c, ALICE, "/v2.0/networks", "networks").await.len(),
            2
        );
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"networks": []})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");

        // Subnets: two that overlap each other leave none.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(ALICE),
                Some(json!({"subnets": [
                    {"network_id": net, "cidr": "10.1.0.0/24", "ip_version": 4},
                    {"network_id": net, "cidr": "10.1.0.0/25", "ip_version": 4}]})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
        assert!(ids_of(&c, ALICE, "/v2.0/subnets", "subnets")
            .await
            .is_empty());
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(ALICE),
                Some(json!({"subnets": [
                    {"network_id": net, "cidr": "10.1.0.0/24", "ip_version": 4},
                    {"network_id": net, "cidr": "fd00:1::/64", "ip_version": 6}]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["subnets"].as_array().map(Vec::len), Some(2));
        let sub4 = s(&b["subnets"][0]["id"]);

        // Ports: the second asks for the address the first holds: 409, and
        // neither port nor address is left.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"ports": [
                    {"network_id": net, "name": "p1",
                     "fixed_ips": [{"subnet_id": sub4, "ip_address": "10.1.0.10"}]},
                    {"network_id": net, "name": "p2",
                     "fixed_ips": [{"subnet_id": sub4, "ip_address": "10.1.0.10"}]}]})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "IpAddressInUse");
        assert!(ids_of(&c, ALICE, "/v2.0/ports", "ports").await.is_empty());
        // A bad item after good ones (an unknown network): nothing.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"ports": [
                    {"network_id": net},
                    {"network_id": "00000000-0000-0000-0000-000000000000"}]})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "NetworkNotFound");
        assert!(ids_of(&c, ALICE, "/v2.0/ports", "ports").await.is_empty());
        // Bound ports made in bulk each go ACTIVE and compute hears of each,
        // as of single creates (noop driver).
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ADMIN),
                Some(json!({"ports": [
                    {"network_id": net, "project_id": PROJECT_A, "binding:host_id": "h1",
                     "device_id": "vm-1", "device_owner": "compute:nova", "tags": ["a"]},
                    {"network_id": net, "project_id": PROJECT_A, "binding:host_id": "h1",
                     "device_id": "vm-2", "device_owner": "compute:nova",
                     "fixed_ips": [{"subnet_id": sub4, "ip_address": "10.1.0.10"}]}]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let ports = b["ports"].as_array().expect("ports").clone();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0]["status"], "ACTIVE");
        assert_eq!(ports[0]["tags"], json!(["a"]));
        assert_eq!(ports[1]["fixed_ips"][0]["ip_address"], "10.1.0.10");
        // One IPv4 and one IPv6 address each for the first.
        assert_eq!(ports[0]["fixed_ips"].as_array().map(Vec::len), Some(2));
        let events = c.compute.wait_for(2).await;
        let mut servers: Vec<String> = events.iter().map(|e| e.0.clone()).collect();
        servers.sort();
        assert_eq!(servers, vec!["vm-1", "vm-2"]);
        c.stop().await;
    }
}

async fn listen(
    bus: &Bus,
    topic: &str,
) -> (stratus_bus::Consumer, mpsc::UnboundedReceiver<Envelope>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(tx);
    let consumer = bus
        .serve(
            topic,
            handler_fn(move |env: Envelope| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(env);
                    Ok(Value::Null)
                }
            }),
            ServeOptions::default(),
        )
        .await
        .expect("serve");
    (consumer, rx)
}

#[tokio::test]
async fn bulk_ports_reach_the_agents_one_by_one() {
    for t in dbs().await {
        let bus = Bus::in_memory();
        let (_l2, mut l2) = listen(&bus, "l2.hostA").await;
        let (_dhcp, _dhcp_rx) = listen(&bus, "dhcp.hostA").await;
        let config = NetworkConfig {
            driver: DriverKind::Linuxbridge,
            dhcp_host: "hostA".into(),
            ..NetworkConfig::default()
        };
        let c = Cloud::start_on(&t.db, config, bus.clone()).await;
        let (net, _) = net_with_subnet(&c, ALICE, "lb", Some("10.61.0.0/24")).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ADMIN),
                Some(json!({"ports": [
                    {"network_id": net, "project_id": PROJECT_A, "binding:host_id": "hostA"},
                    {"network_id": net, "project_id": PROJECT_A, "binding:host_id": "hostA"}]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let mut want: Vec<String> = b["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|p| s(&p["id"]))
            .collect();
        want.sort();
        let mut bound = Vec::new();
        while bound.len() < 2 {
            let env = tokio::time::timeout(Duration::from_secs(20), l2.recv())
                .await
                .expect("an L2 message")
                .expect("open");
            if env.method == "port_bind" {
                bound.push(s(&env.args["port"]["id"]));
            }
        }
        bound.sort();
        assert_eq!(bound, want);
        c.stop().await;
    }
}

#[tokio::test]
async fn provider_attributes_admin_only_validated_and_exclusive() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let vlan = json!({"network": {"name": "v100", "provider:network_type": "vlan",
            "provider:physical_network": "physnet1", "provider:segmentation_id": 100}});
        let (st, b) = c
            .call("POST", "/v2.0/networks", Some(ALICE), Some(vlan.clone()))
            .await;
        assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        assert!(s(&b["NeutronError"]["message"]).contains("create_network:provider:network_type"));
        let (st, b) = c
            .call("POST", "/v2.0/networks", Some(ADMIN), Some(vlan.clone()))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let n = &b["network"];
        assert_eq!(n["provider:network_type"], "vlan");
        assert_eq!(n["provider:physical_network"], "physnet1");
        assert_eq!(n["provider:segmentation_id"], 100);
        let vid = s(&n["id"]);
        // The segment is taken.
        let (st, b) = c
            .call("POST", "/v2.0/networks", Some(ADMIN), Some(vlan))
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "VlanIdInUse");
        // Two flat networks on one physnet in one bulk: neither.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"networks": [
                    {"name": "f1", "provider:network_type": "flat", "provider:physical_network": "physnet2"},
                    {"name": "f2", "provider:network_type": "flat", "provider:physical_network": "physnet2"}]})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "FlatNetworkInUse");
        let (_, b) = c
            .call("GET", "/v2.0/networks?name=f1", Some(ADMIN), None)
            .await;
        assert_eq!(b["networks"], json!([]));
        for (body, kind) in [
            (json!({"provider:network_type": "gre"}), "InvalidInput"),
            (
                json!({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                    "provider:segmentation_id": 5000}),
                "InvalidInput",
            ),
            (
                json!({"provider:network_type": "vxlan", "provider:physical_network": "physnet1",
                    "provider:segmentation_id": 5}),
                "InvalidInput",
            ),
            (
                json!({"provider:physical_network": "physnet1"}),
                "InvalidInput",
            ),
            (json!({"segments": []}), "HTTPBadRequest"),
        ] {
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/networks",
                    Some(ADMIN),
                    Some(json!({"network": body})),
                )
                .await;
            assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, kind);
        }
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(
                    json!({"network": {"name": "vx", "provider:network_type": "vxlan",
                    "provider:segmentation_id": "5000"}}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["network"]["provider:segmentation_id"], 5000);
        // A tenant network is local; members do not see provider attributes.
        let (alice_net, _) = net_with_subnet(&c, ALICE, "mine", None).await;
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/networks/{alice_net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert!(b["network"].get("provider:network_type").is_none(), "{b}");
        assert_eq!(b["network"]["router:external"], false);
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/networks/{alice_net}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(b["network"]["provider:network_type"], "local");
        assert_eq!(b["network"]["provider:segmentation_id"], Value::Null);
        // Filters on provider attributes.
        let ids = ids_of(
            &c,
            ADMIN,
            "/v2.0/networks?provider:network_type=vlan",
            "networks",
        )
        .await;
        assert_eq!(ids, vec![vid.clone()]);
        let ids = ids_of(
            &c,
            ADMIN,
            "/v2.0/networks?provider:segmentation_id=100&provider:physical_network=physnet1",
            "networks",
        )
        .await;
        assert_eq!(ids, vec![vid.clone()]);
        // Not changeable.
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{vid}"),
                Some(ADMIN),
                Some(json!({"network": {"provider:segmentation_id": 101}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "InvalidInput");
        // The segment is free again once its network is gone.
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{vid}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"provider:network_type": "vlan",
                    "provider:physical_network": "physnet1", "provider:segmentation_id": 100}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        c.stop().await;
    }
}

#[tokio::test]
async fn linuxbridge_rejects_types_it_cannot_realise() {
    for t in dbs().await {
        let config = NetworkConfig {
            driver: DriverKind::Linuxbridge,
            ..NetworkConfig::default()
        };
        let c = Cloud::start(&t.db, config).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"provider:network_type": "vlan",
                    "provider:physical_network": "physnet1", "provider:segmentation_id": 7}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, "InvalidInput");
        assert_eq!(
            b["NeutronError"]["message"],
            "Invalid input for operation: network_type value 'vlan' not supported."
        );
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"provider:network_type": "local"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        // Without a DHCP agent yet, no zone.
        let (_, b) = c
            .call("GET", "/v2.0/availability_zones", Some(BOB), None)
            .await;
        assert_eq!(b["availability_zones"], json!([]));
        c.stop().await;
    }
}

#[tokio::test]
async fn external_and_shared_networks() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        for body in [
            json!({"network": {"router:external": true}}),
            json!({"network": {"shared": true}}),
        ] {
            let (st, b) = c
                .call("POST", "/v2.0/networks", Some(ALICE), Some(body))
                .await;
            assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        }
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"name": "public", "router:external": true}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["network"]["router:external"], true);
        assert_eq!(b["network"]["shared"], false);
        let ext = s(&b["network"]["id"]);
        // Visible to every project, and found by the filter.
        let ids = ids_of(&c, BOB, "/v2.0/networks?router:external=true", "networks").await;
        assert_eq!(ids, vec![ext.clone()]);
        let ids = ids_of(&c, BOB, "/v2.0/networks?router:external=false", "networks").await;
        assert!(ids.is_empty());
        // Its '*' policy is there (Neutron's access_as_external).
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/rbac-policies?object_id={ext}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(b["rbac_policies"][0]["action"], "access_as_external");
        assert_eq!(b["rbac_policies"][0]["target_tenant"], "*");
        // A member may not change it; an admin makes it internal: gone for Bob.
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{ext}"),
                Some(ADMIN),
                Some(json!({"network": {"router:external": false}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["network"]["router:external"], false);
        assert!(ids_of(&c, BOB, "/v2.0/networks", "networks")
            .await
            .is_empty());

        // Shared: the '*' policy; Bob sees and uses it; unsharing while
        // Bob's port is on it is refused.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"name": "sh", "shared": true}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let sh = s(&b["network"]["id"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(BOB),
                Some(json!({"port": {"network_id": sh}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let port = s(&b["port"]["id"]);
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{sh}"),
                Some(ADMIN),
                Some(json!({"network": {"shared": false}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "InvalidSharedSetting");
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/rbac-policies?object_id={sh}"),
                Some(ADMIN),
                None,
            )
            .await;
        let pid = s(&b["rbac_policies"][0]["id"]);
        assert_eq!(b["rbac_policies"][0]["action"], "access_as_shared");
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "RbacPolicyInUse");
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{port}"), Some(BOB), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        let (_, b) = c
            .call("GET", &format!("/v2.0/networks/{sh}"), Some(ADMIN), None)
            .await;
        assert_eq!(b["network"]["shared"], false);
        let (st, _) = c
            .call("GET", &format!("/v2.0/networks/{sh}"), Some(BOB), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        c.stop().await;
    }
}

#[tokio::test]
async fn rbac_policies_share_a_network_with_one_project() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, sub) = net_with_subnet(&c, ALICE, "private", Some("10.9.0.0/24")).await;
        let policy = |target: &str| {
            json!({"rbac_policy": {"object_type": "network", "object_id": net,
                "action": "access_as_shared", "target_tenant": target}})
        };
        // Only an admin shares with everyone; Bob cannot share Alice's network.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/rbac-policies",
                Some(ALICE),
                Some(policy("*")),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/rbac-policies",
                Some(BOB),
                Some(policy(PROJECT_B)),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "NetworkNotFound");
        for (body, kind) in [
            (
                json!({"rbac_policy": {"object_type": "port", "object_id": net,
                "action": "access_as_shared", "target_tenant": PROJECT_B}}),
                "HTTPBadRequest",
            ),
            (
                json!({"rbac_policy": {"object_type": "network", "object_id": net,
                "action": "access_as_owner", "target_tenant": PROJECT_B}}),
                "HTTPBadRequest",
            ),
            (
                json!({"rbac_policy": {"object_type": "network", "object_id": net,
                "action": "access_as_shared"}}),
                "HTTPBadRequest",
            ),
        ] {
            let (st, b) = c
                .call("POST", "/v2.0/rbac-policies", Some(ALICE), Some(body))
                .await;
            assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, kind);
        }
        assert_eq!(
            c.call("GET", &format!("/v2.0/networks/{net}"), Some(BOB), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/rbac-policies",
                Some(ALICE),
                Some(policy(PROJECT_B)),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let p = &b["rbac_policy"];
        assert_eq!(p["object_id"], json!(net));
        assert_eq!(p["target_tenant"], PROJECT_B);
        assert_eq!(p["project_id"], PROJECT_A);
        let pid = s(&p["id"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/rbac-policies",
                Some(ALICE),
                Some(policy(PROJECT_B)),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "DuplicateRbacPolicy");
        // Bob sees the network as shared (to him), its subnet, and makes a port.
        let (st, b) = c
            .call("GET", &format!("/v2.0/networks/{net}"), Some(BOB), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["network"]["shared"], true);
        let (_, b) = c
            .call("GET", &format!("/v2.0/networks/{net}"), Some(ALICE), None)
            .await;
        assert_eq!(b["network"]["shared"], false);
        assert_eq!(
            ids_of(&c, BOB, "/v2.0/networks", "networks").await,
            vec![net.clone()]
        );
        assert_eq!(
            ids_of(&c, BOB, "/v2.0/subnets", "subnets").await,
            vec![sub.clone()]
        );
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(BOB),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["port"]["project_id"], PROJECT_B);
        let port = s(&b["port"]["id"]);
        // Bob does not see Alice's policy; Alice and the admin do.
        assert!(ids_of(&c, BOB, "/v2.0/rbac-policies", "rbac_policies")
            .await
            .is_empty());
        assert_eq!(
            c.call(
                "GET",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(BOB),
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ids_of(&c, ALICE, "/v2.0/rbac-policies", "rbac_policies").await,
            vec![pid.clone()]
        );
        let (st, b) = c
            .call(
                "GET",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        // In use by Bob's port: neither deleted nor retargeted.
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "RbacPolicyInUse");
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(ALICE),
                Some(json!({"rbac_policy": {"target_tenant": "cccccccccccccccccccccccccccccccc"}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "RbacPolicyInUse");
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{port}"), Some(BOB), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        assert!(ids_of(&c, BOB, "/v2.0/networks", "networks")
            .await
            .is_empty());
        assert_eq!(
            c.call(
                "GET",
                &format!("/v2.0/rbac-policies/{pid}"),
                Some(ALICE),
                None
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        // A '*' policy by the admin is `shared`.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/rbac-policies",
                Some(ADMIN),
                Some(policy("*")),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let (_, b) = c
            .call("GET", &format!("/v2.0/networks/{net}"), Some(ALICE), None)
            .await;
        assert_eq!(b["network"]["shared"], true);
        // Policies go with their network.
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert!(ids_of(&c, ADMIN, "/v2.0/rbac-policies", "rbac_policies")
            .await
            .is_empty());
        c.stop().await;
    }
}

#[tokio::test]
async fn availability_zones_and_hints() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (st, b) = c
            .call("GET", "/v2.0/availability_zones", Some(BOB), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(
            b["availability_zones"],
            json!([{"name": "nova", "resource": "network", "state": "available"}])
        );
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"network": {"name": "z", "availability_zone_hints": ["nova"]}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["network"]["availability_zone_hints"], json!(["nova"]));
        assert_eq!(b["network"]["availability_zones"], json!(["nova"]));
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"network": {"availability_zone_hints": ["az9"]}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "AvailabilityZoneNotFound");
        c.stop().await;
    }
}

#[tokio::test]
async fn extensions_are_listed() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        for alias in [
            "provider",
            "external-net",
            "rbac-policies",
            "availability_zone",
            "network_availability_zone",
        ] {
            let (st, b) = c
                .call("GET", &format!("/v2.0/extensions/{alias}"), Some(BOB), None)
                .await;
            assert_eq!(st, StatusCode::OK, "{alias}: {b}");
        }
        let (st, _) = c
            .call("GET", "/v2.0/extensions/multi-provider", Some(BOB), None)
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        c.stop().await;
    }
}
