//! Who sees and changes what: members of project A vs B, shared networks,
//! readers, admin.

use axum::http::StatusCode;
use serde_json::json;
use stratus_network::NetworkConfig;

use crate::common::*;

#[tokio::test]
async fn projects_are_isolated() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, sub) = net_with_subnet(&c, ALICE, "a-net", Some("10.10.0.0/24")).await;
        let (_, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        let port = s(&b["port"]["id"]);
        let sg = s(&b["port"]["security_groups"][0]);

        // Bob: everything of A is a 404, and absent from lists.
        for path in [
            format!("/v2.0/networks/{net}"),
            format!("/v2.0/subnets/{sub}"),
            format!("/v2.0/ports/{port}"),
            format!("/v2.0/security-groups/{sg}"),
        ] {
            let (st, b) = c.call("GET", &path, Some(BOB), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {b}");
            let (st, _) = c.call("DELETE", &path, Some(BOB), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND, "{path}");
        }
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{net}"),
                Some(BOB),
                Some(json!({"network": {"name": "x"}})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        for coll in ["networks", "subnets", "ports", "security_groups"] {
            let path = format!("/v2.0/{}", coll.replace('_', "-"));
            let (st, b) = c.call("GET", &path, Some(BOB), None).await;
            assert_eq!(st, StatusCode::OK);
            let items = b[coll].as_array().expect("list");
            assert!(
                items.iter().all(|i| i["project_id"] != PROJECT_A),
                "{coll}: {b}"
            );
        }
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(BOB),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(BOB),
                Some(
                    json!({"subnet": {"network_id": net, "cidr": "10.11.0.0/24", "ip_version": 4}}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        // Bob cannot put his port in Alice's group.
        let (bnet, _) = net_with_subnet(&c, BOB, "b-net", Some("10.20.0.0/24")).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(BOB),
                Some(json!({"port": {"network_id": bnet, "security_groups": [sg]}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "SecurityGroupNotFound");

        // A reader of A sees but cannot write.
        let (st, _) = c
            .call("GET", &format!("/v2.0/networks/{net}"), Some(READER), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(READER),
                Some(json!({"network": {}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{port}"), Some(READER), None)
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);

        // Admin sees all and may create for another project.
        let (_, b) = c.call("GET", "/v2.0/networks", Some(ADMIN), None).await;
        assert_eq!(b["networks"].as_array().map(Vec::len), Some(2));
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"name": "for-b", "tenant_id": PROJECT_B}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        assert_eq!(b["network"]["project_id"], PROJECT_B);
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn shared_networks() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"name": "public", "shared": true}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let net = s(&b["network"]["id"]);
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(ADMIN),
                Some(
                    json!({"subnet": {"network_id": net, "cidr": "10.30.0.0/24", "ip_version": 4}}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        // Members see it and its subnet, and may plug ports into it.
        for tok in [ALICE, BOB] {
            let (_, b) = c
                .call("GET", "/v2.0/networks?shared=true", Some(tok), None)
                .await;
            assert_eq!(b["networks"].as_array().map(Vec::len), Some(1));
            assert_eq!(
                b["networks"][0]["subnets"].as_array().map(Vec::len),
                Some(1)
            );
            let (_, b) = c.call("GET", "/v2.0/subnets", Some(tok), None).await;
            assert_eq!(b["subnets"].as_array().map(Vec::len), Some(1));
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/ports",
                    Some(tok),
                    Some(json!({"port": {"network_id": net}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
        }
        // ...but not change it, nor add subnets, nor pick addresses.
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                Some(json!({"network": {"name": "mine"}})),
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(ALICE),
                Some(
                    json!({"subnet": {"network_id": net, "cidr": "10.31.0.0/24", "ip_version": 4}}),
                ),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = c
            .call("POST", "/v2.0/ports", Some(ALICE), Some(json!({"port": {"network_id": net, "fixed_ips": [{"ip_address": "10.30.0.99"}]}})))
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net, "device_owner": "network:dhcp"}})),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        // Each sees only their own port on it.
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/ports?network_id={net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(b["ports"].as_array().map(Vec::len), Some(1));
        assert_eq!(b["ports"][0]["project_id"], PROJECT_A);
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                Some(json!({"network": {"shared": false}})),
            )
            .await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        c.stop().await;
        t.cleanup().await;
    }
}

/// A token without a project gets Neutron's 403 on every project resource,
/// never "no project filter" (issue 9).
#[tokio::test]
async fn tokens_without_a_project_get_403() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, sub) = net_with_subnet(&c, ALICE, "a-net", Some("10.40.0.0/24")).await;
        let (_, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        let port = s(&b["port"]["id"]);
        let sg = s(&b["port"]["security_groups"][0]);
        for tok in [UNSCOPED, DOMAIN_MEMBER] {
            for path in [
                "/v2.0/networks".to_owned(),
                "/v2.0/subnets".to_owned(),
                "/v2.0/ports".to_owned(),
                "/v2.0/security-groups".to_owned(),
                "/v2.0/security-group-rules".to_owned(),
                format!("/v2.0/networks/{net}"),
                format!("/v2.0/subnets/{sub}"),
                format!("/v2.0/ports/{port}"),
                format!("/v2.0/security-groups/{sg}"),
            ] {
                let (st, b) = c.call("GET", &path, Some(tok), None).await;
                assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
            }
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/networks",
                    Some(tok),
                    Some(json!({"network": {"name": "x", "tenant_id": PROJECT_A}})),
                )
                .await;
            assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
            let (st, _) = c
                .call("DELETE", &format!("/v2.0/ports/{port}"), Some(tok), None)
                .await;
            assert_eq!(st, StatusCode::FORBIDDEN);
        }
        c.stop().await;
        t.cleanup().await;
    }
}
