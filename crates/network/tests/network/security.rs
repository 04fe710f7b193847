//! Security groups and rules.

use axum::http::StatusCode;
use serde_json::json;
use stratus_network::NetworkConfig;

use crate::common::*;

#[tokio::test]
async fn default_group_and_rules() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (st, b) = c
            .call("GET", "/v2.0/security-groups", Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::OK);
        let groups = b["security_groups"].as_array().expect("list").clone();
        assert_eq!(groups.len(), 1, "{b}");
        let def = &groups[0];
        assert_eq!(def["name"], "default");
        let id = s(&def["id"]);
        let rules = def["security_group_rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 4);
        for eth in ["IPv4", "IPv6"] {
            assert!(rules.iter().any(|r| r["direction"] == "ingress"
                && r["ethertype"] == eth
                && r["remote_group_id"] == id.as_str()));
            assert!(rules.iter().any(|r| r["direction"] == "egress"
                && r["ethertype"] == eth
                && r["remote_group_id"].is_null()
                && r["remote_ip_prefix"].is_null()));
        }
        // Listing again makes no second default group.
        let (_, b) = c
            .call(
                "GET",
                "/v2.0/security-groups?name=default",
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(b["security_groups"].as_array().map(Vec::len), Some(1));
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/security-groups/{id}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(
            st,
            &b,
            StatusCode::CONFLICT,
            "SecurityGroupCannotRemoveDefault",
        );
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/security-groups",
                Some(ALICE),
                Some(json!({"security_group": {"name": "default"}})),
            )
            .await;
        assert_neutron_error(
            st,
            &b,
            StatusCode::CONFLICT,
            "SecurityGroupDefaultAlreadyExists",
        );

        let (st, b) = c
            .call(
                "POST",
                "/v2.0/security-groups",
                Some(ALICE),
                Some(json!({"security_group": {"name": "web", "description": "w"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let web = s(&b["security_group"]["id"]);
        assert_eq!(
            b["security_group"]["security_group_rules"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let rule = |extra: serde_json::Value| {
            let mut r = json!({"security_group_id": web, "direction": "ingress"});
            if let (Some(m), Some(e)) = (r.as_object_mut(), extra.as_object()) {
                m.extend(e.clone());
            }
            json!({"security_group_rule": r})
        };
        let (st, b) = c
            .call("POST", "/v2.0/security-group-rules", Some(ALICE), Some(rule(json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}))))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let r = b["security_group_rule"].clone();
        assert_eq!(r["ethertype"], "IPv4");
        assert_eq!(r["port_range_min"], 80);
        let (st, b) = c
            .call("POST", "/v2.0/security-group-rules", Some(ALICE), Some(rule(json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"}))))
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "SecurityGroupRuleExists");
        for bad in [
            json!({"protocol": "bogus"}),
            json!({"direction": "sideways"}),
            json!({"port_range_min": 22}),
            json!({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}),
            json!({"protocol": "tcp", "port_range_min": 0, "port_range_max": 80}),
            json!({"protocol": "icmp", "port_range_min": 300}),
            json!({"remote_ip_prefix": "::/0"}),
            json!({"ethertype": "IPv5"}),
            json!({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": web}),
        ] {
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/security-group-rules",
                    Some(ALICE),
                    Some(rule(bad.clone())),
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{bad} -> {b}");
        }
        // Port ranges: Neutron's checks, messages and exception names.
        for (bad, kind) in [
            (
                json!({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}),
                "SecurityGroupInvalidPortValue",
            ),
            (
                json!({"protocol": "icmp", "port_range_min": -1}),
                "SecurityGroupInvalidPortValue",
            ),
            (
                json!({"port_range_min": 99999}),
                "SecurityGroupInvalidPortValue",
            ),
            (
                json!({"protocol": "udp", "port_range_min": 0, "port_range_max": 0}),
                "SecurityGroupInvalidPortValue",
            ),
            (
                json!({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}),
                "SecurityGroupInvalidPortRange",
            ),
            (
                json!({"protocol": "tcp", "port_range_min": 90}),
                "SecurityGroupInvalidPortRange",
            ),
            (
                json!({"port_range_min": 22, "port_range_max": 22}),
                "SecurityGroupProtocolRequiredWithPorts",
            ),
            (
                json!({"protocol": "icmp", "port_range_min": 8, "port_range_max": 256}),
                "SecurityGroupInvalidIcmpValue",
            ),
            (
                json!({"protocol": "icmp", "port_range_max": 0}),
                "SecurityGroupMissingIcmpType",
            ),
            (
                json!({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}),
                "SecurityGroupInvalidProtocolForPort",
            ),
        ] {
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/security-group-rules",
                    Some(ALICE),
                    Some(rule(bad.clone())),
                )
                .await;
            assert_neutron_error(st, &b, StatusCode::BAD_REQUEST, kind);
        }
        // Ports given as strings are read as Neutron reads them.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/security-group-rules",
                Some(ALICE),
                Some(rule(
                    json!({"protocol": "udp", "port_range_min": "53", "port_range_max": "53"}),
                )),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["security_group_rule"]["port_range_max"], 53);
        let dns = s(&b["security_group_rule"]["id"]);
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/security-group-rules/{dns}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/security-group-rules",
                Some(BOB),
                Some(rule(json!({"protocol": "udp"}))),
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/security-group-rules?security_group_id={web}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(b["security_group_rules"].as_array().map(Vec::len), Some(3));
        let rid = s(&r["id"]);
        let (st, _) = c
            .call(
                "GET",
                &format!("/v2.0/security-group-rules/{rid}"),
                Some(BOB),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/security-group-rules/{rid}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);

        // A group in use by a port cannot go; the port's groups can change.
        let (net, _) = net_with_subnet(&c, ALICE, "n", Some("10.50.0.0/24")).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net, "security_groups": [web]}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["port"]["security_groups"], json!([web]));
        let port = s(&b["port"]["id"]);
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/security-groups/{web}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::CONFLICT, "SecurityGroupInUse");
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ALICE),
                Some(json!({"port": {"security_groups": [], "port_security_enabled": false}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!(b["port"]["security_groups"], json!([]));
        assert_eq!(b["port"]["port_security_enabled"], false);
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/security-groups/{web}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        // A port without port security has no groups.
        let (_, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net, "port_security_enabled": false}})),
            )
            .await;
        assert_eq!(b["port"]["security_groups"], json!([]));
        c.stop().await;
        t.cleanup().await;
    }
}
