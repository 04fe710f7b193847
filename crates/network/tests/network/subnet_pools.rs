//! Subnet pools, address scopes, network IP availability and service
//! providers, as Neutron answers them.

use axum::http::StatusCode;
use serde_json::{json, Value};
use stratus_network::NetworkConfig;

use crate::common::*;

async fn pool(c: &Cloud, token: &str, body: Value) -> Value {
    let (st, b) = c
        .call(
            "POST",
            "/v2.0/subnetpools",
            Some(token),
            Some(json!({ "subnetpool": body })),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    b["subnetpool"].clone()
}

async fn subnet(c: &Cloud, token: &str, body: Value) -> (StatusCode, Value) {
    c.call(
        "POST",
        "/v2.0/subnets",
        Some(token),
        Some(json!({ "subnet": body })),
    )
    .await
}

#[tokio::test]
async fn pools_hand_out_cidrs_as_neutron_does() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let p = pool(
            &c,
            ALICE,
            json!({"name": "p1", "prefixes": ["10.100.0.0/16"], "default_prefixlen": 24}),
        )
        .await;
        let pid = s(&p["id"]);
        assert_eq!(p["ip_version"], 4, "{p}");
        assert_eq!(p["default_prefixlen"], "24", "{p}");
        assert_eq!(p["min_prefixlen"], "8", "{p}");
        assert_eq!(p["max_prefixlen"], "32", "{p}");
        assert_eq!(p["prefixes"], json!(["10.100.0.0/16"]));
        assert_eq!(p["shared"], false);
        assert_eq!(p["is_default"], false);
        assert_eq!(p["address_scope_id"], Value::Null);

        let (net, _) = net_with_subnet(&c, ALICE, "n1", None).await;
        let (st, a) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4, "subnetpool_id": pid}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        assert_eq!(a["subnet"]["cidr"], "10.100.0.0/24");
        assert_eq!(a["subnet"]["subnetpool_id"], pid.as_str());
        assert_eq!(a["subnet"]["gateway_ip"], "10.100.0.1");
        let (st, b) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "subnetpool_id": pid, "prefixlen": 26}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["subnet"]["cidr"], "10.100.1.0/26");
        // A CIDR of its own, inside the pool and free.
        let (st, d) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "subnetpool_id": pid, "cidr": "10.100.9.0/24"}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{d}");
        // Outside the pool, or taken: Neutron's SubnetAllocationError.
        for cidr in ["10.200.0.0/24", "10.100.0.0/25"] {
            let (st, e) = subnet(
                &c,
                ALICE,
                json!({"network_id": net, "ip_version": 4,
                "subnetpool_id": pid, "cidr": cidr}),
            )
            .await;
            assert_neutron_error(st, &e, StatusCode::BAD_REQUEST, "SubnetAllocationError");
        }
        let (st, e) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "subnetpool_id": pid, "prefixlen": 4}),
        )
        .await;
        assert_neutron_error(
            st,
            &e,
            StatusCode::BAD_REQUEST,
            "MinPrefixSubnetAllocationError",
        );
        let (st, e) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "subnetpool_id": pid, "cidr": "10.100.20.0/24", "prefixlen": 24}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        // Nothing half-made: three subnets on the network.
        let (_, n) = c
            .call("GET", &format!("/v2.0/networks/{net}"), Some(ALICE), None)
            .await;
        assert_eq!(
            n["network"]["subnets"].as_array().map(Vec::len),
            Some(3),
            "{n}"
        );
        // A plain subnet beside pool subnets of the same version.
        let (st, e) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "cidr": "192.168.5.0/24"}),
        )
        .await;
        assert_neutron_error(
            st,
            &e,
            StatusCode::BAD_REQUEST,
            "NetworkSubnetPoolAffinityError",
        );

        // Prefixes only grow.
        let (st, e) = c
            .call(
                "PUT",
                &format!("/v2.0/subnetpools/{pid}"),
                Some(ALICE),
                Some(json!({"subnetpool": {"prefixes": ["10.100.0.0/17"]}})),
            )
            .await;
        assert_neutron_error(
            st,
            &e,
            StatusCode::BAD_REQUEST,
            "IllegalSubnetPoolPrefixUpdate",
        );
        let (st, u) = c
            .call(
                "PUT",
                &format!("/v2.0/subnetpools/{pid}"),
                Some(ALICE),
                Some(
                    json!({"subnetpool": {"prefixes": ["10.100.0.0/16", "10.101.0.0/16"],
                "name": "p1b"}}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{u}");
        assert_eq!(
            u["subnetpool"]["prefixes"],
            json!(["10.100.0.0/15"]),
            "compacted"
        );
        assert_eq!(u["subnetpool"]["name"], "p1b");
        // Prefix actions.
        let (st, r) = c
            .call(
                "PUT",
                &format!("/v2.0/subnetpools/{pid}/add_prefixes"),
                Some(ALICE),
                Some(json!({"prefixes": ["10.102.0.0/16"]})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["prefixes"], json!(["10.100.0.0/15", "10.102.0.0/16"]));
        let (st, e) = c
            .call(
                "PUT",
                &format!("/v2.0/subnetpools/{pid}/remove_prefixes"),
                Some(ALICE),
                Some(json!({"prefixes": ["10.100.0.0/16"]})),
            )
            .await;
        assert_neutron_error(
            st,
            &e,
            StatusCode::BAD_REQUEST,
            "IllegalSubnetPoolPrefixUpdate",
        );
        let (st, r) = c
            .call(
                "PUT",
                &format!("/v2.0/subnetpools/{pid}/remove_prefixes"),
                Some(ALICE),
                Some(json!({"prefixes": ["10.102.0.0/16", "10.101.0.0/16"]})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        assert_eq!(r["prefixes"], json!(["10.100.0.0/16"]));

        // Others do not see it; readers may not change it.
        let (st, e) = c
            .call("GET", &format!("/v2.0/subnetpools/{pid}"), Some(BOB), None)
            .await;
        assert_neutron_error(st, &e, StatusCode::NOT_FOUND, "SubnetPoolNotFound");
        let (_, l) = c.call("GET", "/v2.0/subnetpools", Some(BOB), None).await;
        assert_eq!(l["subnetpools"], json!([]));
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/subnetpools/{pid}"),
                Some(READER),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, e) = subnet(
            &c,
            BOB,
            json!({"network_id": net, "ip_version": 4, "subnetpool_id": pid}),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{e}");

        // In use: Neutron's SubnetPoolDeleteError (a 400); free again once
        // its subnets are gone.
        let (st, e) = c
            .call(
                "DELETE",
                &format!("/v2.0/subnetpools/{pid}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::BAD_REQUEST, "SubnetPoolDeleteError");
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/subnetpools/{pid}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.stop().await;
    }
}

#[tokio::test]
async fn pool_attributes_are_checked() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let post = |body: Value| {
            let c = &c;
            async move {
                c.call(
                    "POST",
                    "/v2.0/subnetpools",
                    Some(ALICE),
                    Some(json!({ "subnetpool": body })),
                )
                .await
            }
        };
        let (st, e) = post(json!({"name": "x", "prefixes": []})).await;
        assert_neutron_error(st, &e, StatusCode::BAD_REQUEST, "EmptySubnetPoolPrefixList");
        let (st, e) = post(json!({"name": "x", "prefixes": ["10.0.0.0/8", "fd00::/48"]})).await;
        assert_neutron_error(st, &e, StatusCode::BAD_REQUEST, "PrefixVersionMismatch");
        let (st, e) = post(json!({"name": "x", "prefixes": ["10.0.0.0/8"],
            "min_prefixlen": 28, "max_prefixlen": 24}))
        .await;
        assert_neutron_error(
            st,
            &e,
            StatusCode::BAD_REQUEST,
            "IllegalSubnetPoolPrefixBounds",
        );
        let (st, e) =
            post(json!({"name": "x", "prefixes": ["10.0.0.0/8"], "max_prefixlen": 33})).await;
        assert_neutron_error(
            st,
            &e,
            StatusCode::BAD_REQUEST,
            "IllegalSubnetPoolPrefixBounds",
        );
        let (st, e) = post(json!({"name": "x", "prefixes": ["banana"]})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        let (st, e) = post(json!({"prefixes": ["10.0.0.0/8"]})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        let (st, e) = post(json!({"name": "x", "prefixes": ["10.0.0.0/8"], "shared": true})).await;
        assert_neutron_error(st, &e, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, e) =
            post(json!({"name": "x", "prefixes": ["10.0.0.0/8"], "is_default": true})).await;
        assert_neutron_error(st, &e, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        // IPv6 defaults; prefix lengths as strings are taken.
        let (st, p) =
            post(json!({"name": "v6", "prefixes": ["fd00::/48"], "default_prefixlen": "64"})).await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
        assert_eq!(p["subnetpool"]["ip_version"], 6);
        assert_eq!(p["subnetpool"]["min_prefixlen"], "64");
        assert_eq!(p["subnetpool"]["max_prefixlen"], "128");
        let (st, e) = c
            .call(
                "PUT",
                &format!("/v2.0/subnetpools/{}", s(&p["subnetpool"]["id"])),
                Some(ALICE),
                Some(json!({"subnetpool": {"shared": true}})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        c.stop().await;
    }
}

#[tokio::test]
async fn default_pools_and_quotas() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let p = pool(
            &c,
            ADMIN,
            json!({"name": "default4", "prefixes": ["172.16.0.0/12"],
            "default_prefixlen": 26, "is_default": true, "shared": true, "default_quota": 128}),
        )
        .await;
        let (st, e) = c
            .call(
                "POST",
                "/v2.0/subnetpools",
                Some(ADMIN),
                Some(json!({"subnetpool":
            {"name": "default4b", "prefixes": ["192.168.0.0/16"], "is_default": true}})),
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::BAD_REQUEST, "InvalidInput");
        // Alice sees the shared default pool and cuts from it.
        let (_, l) = c
            .call(
                "GET",
                "/v2.0/subnetpools?is_default=True",
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(l["subnetpools"][0]["id"], p["id"], "{l}");
        let (net, _) = net_with_subnet(&c, ALICE, "n", None).await;
        let (st, a) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "use_default_subnetpool": true}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        assert_eq!(a["subnet"]["cidr"], "172.16.0.0/26");
        let (st, a) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "subnetpool_id": s(&p["id"])}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        // 128 addresses a project: a third /26 is over the pool's quota.
        let (st, e) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "use_default_subnetpool": true}),
        )
        .await;
        assert_neutron_error(st, &e, StatusCode::CONFLICT, "SubnetPoolQuotaExceeded");
        let (st, e) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 6,
            "use_default_subnetpool": true}),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            s(&e["NeutronError"]["message"]).contains("No default subnetpool found for IPv6"),
            "{e}"
        );
        // Alice may not change the admin's pool she only shares.
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/subnetpools/{}", s(&p["id"])),
                Some(ALICE),
                Some(json!({"subnetpool": {"name": "mine"}})),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        c.stop().await;
    }
}

#[tokio::test]
async fn address_scopes_keep_pools_apart() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (st, a) = c
            .call(
                "POST",
                "/v2.0/address-scopes",
                Some(ALICE),
                Some(json!({"address_scope": {"name": "as1", "ip_version": 4}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        let scope = s(&a["address_scope"]["id"]);
        assert_eq!(a["address_scope"]["shared"], false);
        assert_eq!(a["address_scope"]["ip_version"], 4);
        assert_eq!(a["address_scope"]["project_id"], PROJECT_A);
        let (st, e) = c
            .call(
                "POST",
                "/v2.0/address-scopes",
                Some(ALICE),
                Some(json!({"address_scope": {"name": "s", "ip_version": 4, "shared": true}})),
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, e) = c
            .call(
                "POST",
                "/v2.0/address-scopes",
                Some(ALICE),
                Some(json!({"address_scope": {"name": "s", "ip_version": 5}})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");

        let p1 = pool(
            &c,
            ALICE,
            json!({"name": "p1", "prefixes": ["10.100.0.0/16"],
            "default_prefixlen": 24, "address_scope_id": scope}),
        )
        .await;
        assert_eq!(p1["address_scope_id"], scope.as_str());
        let (st, e) = c
            .call(
                "POST",
                "/v2.0/subnetpools",
                Some(ALICE),
                Some(json!({"subnetpool":
            {"name": "p2", "prefixes": ["10.100.128.0/20"], "address_scope_id": scope}})),
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::CONFLICT, "AddressScopePrefixConflict");
        let (st, e) = c
            .call(
                "POST",
                "/v2.0/subnetpools",
                Some(ALICE),
                Some(json!({"subnetpool":
            {"name": "p6", "prefixes": ["fd00::/48"], "address_scope_id": scope}})),
            )
            .await;
        assert_neutron_error(
            st,
            &e,
            StatusCode::BAD_REQUEST,
            "IllegalSubnetPoolIpVersionAssociationToAddressScope",
        );
        let (st, e) = c
            .call(
                "POST",
                "/v2.0/subnetpools",
                Some(BOB),
                Some(json!({"subnetpool":
            {"name": "pb", "prefixes": ["10.9.0.0/16"], "address_scope_id": scope}})),
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::NOT_FOUND, "AddressScopeNotFound");
        // A second pool of the scope, apart from the first.
        let p2 = pool(
            &c,
            ALICE,
            json!({"name": "p2", "prefixes": ["10.101.0.0/16"],
            "default_prefixlen": 24, "address_scope_id": scope}),
        )
        .await;

        // The network shows the scope of its pool's subnets.
        let (net, _) = net_with_subnet(&c, ALICE, "n1", None).await;
        let (st, sub) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "subnetpool_id": s(&p1["id"])}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{sub}");
        let (_, n) = c
            .call("GET", &format!("/v2.0/networks/{net}"), Some(ALICE), None)
            .await;
        assert_eq!(n["network"]["ipv4_address_scope"], scope.as_str(), "{n}");
        assert_eq!(n["network"]["ipv6_address_scope"], Value::Null, "{n}");
        let (_, l) = c
            .call(
                "GET",
                &format!("/v2.0/networks?ipv4_address_scope={scope}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(l["networks"].as_array().map(Vec::len), Some(1), "{l}");
        // Pools of one scope may share a network.
        let (st, sub2) = subnet(
            &c,
            ALICE,
            json!({"network_id": net, "ip_version": 4,
            "subnetpool_id": s(&p2["id"])}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{sub2}");

        // In use by pools: 409; not yours: hidden.
        let (st, e) = c
            .call(
                "DELETE",
                &format!("/v2.0/address-scopes/{scope}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::CONFLICT, "AddressScopeInUse");
        let (st, e) = c
            .call(
                "GET",
                &format!("/v2.0/address-scopes/{scope}"),
                Some(BOB),
                None,
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::NOT_FOUND, "AddressScopeNotFound");
        let (st, u) = c
            .call(
                "PUT",
                &format!("/v2.0/address-scopes/{scope}"),
                Some(ALICE),
                Some(json!({"address_scope": {"name": "as1b"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{u}");
        assert_eq!(u["address_scope"]["name"], "as1b");
        // Shared by an admin, never unshared.
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/address-scopes/{scope}"),
                Some(ADMIN),
                Some(json!({"address_scope": {"shared": true}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, e) = c
            .call(
                "PUT",
                &format!("/v2.0/address-scopes/{scope}"),
                Some(ADMIN),
                Some(json!({"address_scope": {"shared": false}})),
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::BAD_REQUEST, "AddressScopeUpdateError");
        let (_, l) = c.call("GET", "/v2.0/address-scopes", Some(BOB), None).await;
        assert_eq!(l["address_scopes"].as_array().map(Vec::len), Some(1), "{l}");

        // Free once the pools leave it.
        for p in [&p1, &p2] {
            let (st, u) = c
                .call(
                    "PUT",
                    &format!("/v2.0/subnetpools/{}", s(&p["id"])),
                    Some(ALICE),
                    Some(json!({"subnetpool": {"address_scope_id": null}})),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{u}");
        }
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/address-scopes/{scope}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        c.stop().await;
    }
}

#[tokio::test]
async fn ip_availability_counts_pools_and_allocations() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, sub) = net_with_subnet(&c, ALICE, "avail", Some("10.60.0.0/24")).await;
        for _ in 0..3 {
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/ports",
                    Some(ALICE),
                    Some(json!({"port": {"network_id": net}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
        }
        let (st, b) = c
            .call(
                "GET",
                &format!("/v2.0/network-ip-availabilities/{net}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        let a = &b["network_ip_availability"];
        assert_eq!(a["network_id"], net.as_str());
        assert_eq!(a["network_name"], "avail");
        assert_eq!(a["project_id"], PROJECT_A);
        assert_eq!(a["total_ips"], 253, "{a}");
        assert_eq!(a["used_ips"], 3, "{a}");
        assert_eq!(
            a["subnet_ip_availability"],
            json!([{"subnet_id": sub, "subnet_name": "avail-sub",
            "cidr": "10.60.0.0/24", "ip_version": 4, "total_ips": 253, "used_ips": 3}])
        );
        let (_, l) = c
            .call(
                "GET",
                &format!("/v2.0/network-ip-availabilities?network_id={net}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(
            l["network_ip_availabilities"].as_array().map(Vec::len),
            Some(1),
            "{l}"
        );
        let (_, l) = c
            .call(
                "GET",
                &format!("/v2.0/network-ip-availabilities?network_id={net}&ip_version=6"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(l["network_ip_availabilities"], json!([]), "{l}");
        // Admin-only: others list none, find none.
        let (st, l) = c
            .call("GET", "/v2.0/network-ip-availabilities", Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(l["network_ip_availabilities"], json!([]));
        let (st, _) = c
            .call(
                "GET",
                &format!("/v2.0/network-ip-availabilities/{net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, e) = c
            .call(
                "GET",
                "/v2.0/network-ip-availabilities/00000000-0000-4000-8000-000000000000",
                Some(ADMIN),
                None,
            )
            .await;
        assert_neutron_error(st, &e, StatusCode::NOT_FOUND, "NetworkNotFound");

        // No service plugins: no service providers.
        let (st, b) = c
            .call("GET", "/v2.0/service-providers", Some(READER), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b, json!({"service_providers": []}));
        let (st, _) = c
            .call("GET", "/v2.0/service-providers", Some(UNSCOPED), None)
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (_, x) = c.call("GET", "/v2.0/extensions", Some(READER), None).await;
        let aliases: Vec<String> = x["extensions"]
            .as_array()
            .expect("list")
            .iter()
            .map(|e| s(&e["alias"]))
            .collect();
        for a in [
            "subnet_allocation",
            "default-subnetpools",
            "subnetpool-prefix-ops",
            "address-scope",
            "network-ip-availability",
            "service-type",
        ] {
            assert!(aliases.contains(&a.to_owned()), "{a}: {aliases:?}");
        }
        c.stop().await;
    }
}

#[tokio::test]
async fn bulk_subnets_from_one_pool_get_distinct_cidrs() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let p = pool(
            &c,
            ALICE,
            json!({"name": "bp", "prefixes": ["10.110.0.0/22"],
            "default_prefixlen": 24}),
        )
        .await;
        let (n1, _) = net_with_subnet(&c, ALICE, "b1", None).await;
        let (n2, _) = net_with_subnet(&c, ALICE, "b2", None).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(ALICE),
                Some(json!({"subnets": [
                    {"network_id": n1, "ip_version": 4, "subnetpool_id": s(&p["id"])},
                    {"network_id": n2, "ip_version": 4, "subnetpool_id": s(&p["id"])},
                ]})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let cidrs: Vec<String> = b["subnets"]
            .as_array()
            .expect("list")
            .iter()
            .map(|x| s(&x["cidr"]))
            .collect();
        assert_eq!(cidrs, ["10.110.0.0/24", "10.110.1.0/24"]);
        // All or nothing: the second does not fit, the first is not kept.
        let (st, e) = c.call("POST", "/v2.0/subnets", Some(ALICE), Some(json!({"subnets": [
            {"network_id": n1, "ip_version": 4, "subnetpool_id": s(&p["id"]), "prefixlen": 24},
            {"network_id": n2, "ip_version": 4, "subnetpool_id": s(&p["id"]), "prefixlen": 23},
        ]}))).await;
        assert_neutron_error(st, &e, StatusCode::BAD_REQUEST, "SubnetAllocationError");
        let (_, l) = c.call("GET", "/v2.0/subnets", Some(ALICE), None).await;
        assert_eq!(l["subnets"].as_array().map(Vec::len), Some(2), "{l}");
        c.stop().await;
    }
}
