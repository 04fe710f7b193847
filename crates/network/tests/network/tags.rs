//! `standard-attr-tag`: the tag routes of networks, subnets, ports and
//! security groups, tags in bodies, the list filters, the limits, and who
//! may read and change them.

use axum::http::StatusCode;
use serde_json::{json, Value};
use stratus_network::NetworkConfig;

use crate::common::*;

fn tags(b: &Value) -> Vec<String> {
    b["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("tags in {b}"))
        .iter()
        .map(s)
        .collect()
}

fn ids(b: &Value, coll: &str) -> Vec<String> {
    let mut v: Vec<String> = b[coll]
        .as_array()
        .unwrap_or_else(|| panic!("{coll} in {b}"))
        .iter()
        .map(|x| s(&x["id"]))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn tag_routes_on_every_tagged_resource() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, sub) = net_with_subnet(&c, ALICE, "tagged", Some("10.60.0.0/24")).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["port"]["tags"], json!([]));
        let port = s(&b["port"]["id"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/security-groups",
                Some(ALICE),
                Some(json!({"security_group": {"name": "t"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let sg = s(&b["security_group"]["id"]);

        for (coll, member, id) in [
            ("networks", "network", &net),
            ("subnets", "subnet", &sub),
            ("ports", "port", &port),
            ("security-groups", "security_group", &sg),
        ] {
            let base = format!("/v2.0/{coll}/{id}/tags");
            let (st, b) = c.call("GET", &base, Some(ALICE), None).await;
            assert_eq!((st, tags(&b)), (StatusCode::OK, vec![]), "{coll}");
            // PUT replaces all and answers the list.
            let (st, b) = c
                .call(
                    "PUT",
                    &base,
                    Some(ALICE),
                    Some(json!({"tags": ["red", "blue"]})),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{coll}: {b}");
            assert_eq!(tags(&b), ["red", "blue"]);
            // One tag: added (201, again too), checked (204/404), removed.
            let (st, _) = c
                .call("PUT", &format!("{base}/green"), Some(ALICE), None)
                .await;
            assert_eq!(st, StatusCode::CREATED, "{coll}");
            let (st, _) = c
                .call("PUT", &format!("{base}/green"), Some(ALICE), None)
                .await;
            assert_eq!(st, StatusCode::CREATED, "{coll}");
            let (st, _) = c
                .call("GET", &format!("{base}/green"), Some(READER), None)
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{coll}");
            let (st, b) = c
                .call("GET", &format!("{base}/pink"), Some(ALICE), None)
                .await;
            assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "TagNotFound");
            let (st, _) = c
                .call("DELETE", &format!("{base}/red"), Some(ALICE), None)
                .await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{coll}");
            let (st, b) = c
                .call("DELETE", &format!("{base}/red"), Some(ALICE), None)
                .await;
            assert_neutron_error(st, &b, StatusCode::NOT_FOUND, "TagNotFound");
            // The resource's own body shows them (sorted).
            let (st, b) = c
                .call("GET", &format!("/v2.0/{coll}/{id}"), Some(ALICE), None)
                .await;
            assert_eq!(st, StatusCode::OK);
            assert_eq!(tags(&b[member]), ["blue", "green"], "{coll}: {b}");
            let (_, b) = c
                .call("GET", &format!("/v2.0/{coll}"), Some(ALICE), None)
                .await;
            let key = member.to_owned() + "s";
            let listed = b[&key].as_array().expect("list");
            let me = listed
                .iter()
                .find(|x| x["id"] == id.as_str())
                .expect("listed");
            assert_eq!(tags(me), ["blue", "green"], "{coll}");

            // Readers read but do not write; another project sees nothing.
            let (st, _) = c.call("GET", &base, Some(READER), None).await;
            assert_eq!(st, StatusCode::OK);
            for (m, p, body) in [
                ("PUT", base.clone(), Some(json!({"tags": []}))),
                ("DELETE", base.clone(), None),
                ("PUT", format!("{base}/x"), None),
                ("DELETE", format!("{base}/blue"), None),
            ] {
                let (st, b) = c.call(m, &p, Some(READER), body.clone()).await;
                assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
                let (st, _) = c.call(m, &p, Some(BOB), body).await;
                assert_eq!(st, StatusCode::NOT_FOUND, "{m} {p} as bob");
            }
            let (st, _) = c.call("GET", &base, Some(BOB), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND);
            let (st, _) = c
                .call("GET", &format!("{base}/blue"), Some(UNSCOPED), None)
                .await;
            assert_eq!(st, StatusCode::FORBIDDEN);

            // Bad input is a 400, nothing changed.
            let long = "x".repeat(256);
            for bad in [
                json!({"tags": ["a", "a"]}),
                json!({"tags": "a"}),
                json!({"tags": [7]}),
                json!({"labels": []}),
                json!({"tags": [long]}),
                json!({"tags": (0..51).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            ] {
                let (st, b) = c.call("PUT", &base, Some(ALICE), Some(bad.clone())).await;
                assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {b}");
            }
            let (st, _) = c
                .call(
                    "PUT",
                    &format!("{base}/{}", "y".repeat(256)),
                    Some(ALICE),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST);
            let (_, b) = c.call("GET", &base, Some(ALICE), None).await;
            assert_eq!(tags(&b), ["blue", "green"]);

            // At most 50, whichever way they come.
            let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
            let (st, _) = c
                .call("PUT", &base, Some(ALICE), Some(json!({"tags": fifty})))
                .await;
            assert_eq!(st, StatusCode::OK);
            let (st, _) = c
                .call("PUT", &format!("{base}/t7"), Some(ALICE), None)
                .await;
            assert_eq!(st, StatusCode::CREATED, "a tag it has");
            let (st, b) = c
                .call("PUT", &format!("{base}/t50"), Some(ALICE), None)
                .await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");

            let (st, _) = c.call("DELETE", &base, Some(ALICE), None).await;
            assert_eq!(st, StatusCode::NO_CONTENT);
            let (_, b) = c.call("GET", &base, Some(ALICE), None).await;
            assert_eq!(tags(&b), Vec::<String>::new());
            // A resource that does not exist is its 404.
            let missing = format!("/v2.0/{coll}/{}/tags", uuid::Uuid::new_v4());
            let (st, _) = c.call("GET", &missing, Some(ALICE), None).await;
            assert_eq!(st, StatusCode::NOT_FOUND);
            let (st, _) = c
                .call("PUT", &format!("{missing}/a"), Some(ADMIN), None)
                .await;
            assert_eq!(st, StatusCode::NOT_FOUND);
        }
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn tag_filters_ports_with_tags_and_cascade() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let mut nets = Vec::new();
        for (name, tags) in [
            ("n0", vec![]),
            ("n1", vec!["a"]),
            ("n2", vec!["a", "b"]),
            ("n3", vec!["b", "c"]),
        ] {
            let (net, _) = net_with_subnet(&c, ALICE, name, None).await;
            let (st, _) = c
                .call(
                    "PUT",
                    &format!("/v2.0/networks/{net}/tags"),
                    Some(ALICE),
                    Some(json!({"tags": tags})),
                )
                .await;
            assert_eq!(st, StatusCode::OK);
            nets.push(net);
        }
        let want = |idx: &[usize]| {
            let mut v: Vec<String> = idx.iter().map(|i| nets[*i].clone()).collect();
            v.sort();
            v
        };
        for (q, expect) in [
            ("tags=a,b", want(&[2])),
            ("tags=a&tags=b", want(&[2])),
            ("tags-any=a,c", want(&[1, 2, 3])),
            ("not-tags=a,b", want(&[0, 1, 3])),
            ("not-tags-any=a", want(&[0, 3])),
        ] {
            let (st, b) = c
                .call("GET", &format!("/v2.0/networks?{q}"), Some(ALICE), None)
                .await;
            assert_eq!(st, StatusCode::OK);
            assert_eq!(ids(&b, "networks"), expect, "{q}");
        }
        // Bob's lists never show Alice's tagged networks.
        let (_, b) = c
            .call("GET", "/v2.0/networks?tags-any=a,b,c", Some(BOB), None)
            .await;
        assert_eq!(ids(&b, "networks"), Vec::<String>::new());

        // Ports take tags when created (tag-ports-during-bulk-creation).
        let (_, sub) = net_with_subnet(&c, ALICE, "pnet", Some("10.61.0.0/24")).await;
        let (_, b) = c
            .call("GET", &format!("/v2.0/subnets/{sub}"), Some(ALICE), None)
            .await;
        let pnet = s(&b["subnet"]["network_id"]);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": pnet, "tags": ["web", "prod"]}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(tags(&b["port"]), ["prod", "web"]);
        let port = s(&b["port"]["id"]);
        let (_, b) = c
            .call("GET", "/v2.0/ports?tags=web", Some(ALICE), None)
            .await;
        assert_eq!(ids(&b, "ports"), vec![port.clone()]);
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": pnet, "tags": ["x", "x"]}})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        // Networks, subnets and groups take no tags on create, as in Neutron.
        let (st, _) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ALICE),
                Some(json!({"network": {"name": "x", "tags": ["a"]}})),
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);

        // Tags go with their resource.
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{port}"), Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{}", nets[2]),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let mut conn = t.db.conn().await.expect("conn");
        for table in ["port_tags", "network_tags"] {
            let n: i64 = stratus_db::sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE resource_id = $1 OR resource_id = $2"
            ))
            .bind(&port)
            .bind(&nets[2])
            .fetch_one(&mut *conn)
            .await
            .expect("count");
            assert_eq!(n, 0, "{table}");
        }
        drop(conn);

        // A shared network of another project: its tags are readable, not changeable.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/networks",
                Some(ADMIN),
                Some(json!({"network": {"name": "pub", "shared": true}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let shared = s(&b["network"]["id"]);
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{shared}/tags/ext"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, b) = c
            .call(
                "GET",
                &format!("/v2.0/networks/{shared}/tags"),
                Some(BOB),
                None,
            )
            .await;
        assert_eq!((st, tags(&b)), (StatusCode::OK, vec!["ext".to_owned()]));
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/networks/{shared}/tags/mine"),
                Some(BOB),
                None,
            )
            .await;
        assert_neutron_error(st, &b, StatusCode::FORBIDDEN, "PolicyNotAuthorized");
        c.stop().await;
        t.cleanup().await;
    }
}
