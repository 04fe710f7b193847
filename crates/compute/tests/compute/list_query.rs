//! Issue 14: `GET /servers/detail` is one query per page plus one batch
//! read per kind of extra (metadata, volumes, tags). Each server in the
//! list must look exactly as `GET /servers/{id}` shows it (which still
//! reads per server): a server with tags, metadata and a volume, one with
//! several addresses on two networks, one in ERROR with a fault; with
//! paging, the status, name, ip and tag filters; on SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_compute::clients::{FixedIpInfo, VifInfo};
use stratus_compute::db;
use stratus_compute::db::bdms::{BdmStatus, VolumeBdm};
use stratus_compute::db::instances::{Fault, InstanceUpdate};
use stratus_compute::model::state::VmState;

use super::harness::*;

fn vif(port: &str, net: &str, name: &str, ips: &[&str]) -> VifInfo {
    VifInfo {
        port_id: port.into(),
        network_id: net.into(),
        network_name: name.into(),
        mac_address: format!("fa:16:3e:00:00:{}", &port[port.len() - 2..]),
        fixed_ips: ips
            .iter()
            .map(|a| FixedIpInfo {
                subnet_id: format!("sub-{name}"),
                address: (*a).to_owned(),
                floating_ips: Vec::new(),
            })
            .collect(),
        ..VifInfo::default()
    }
}

async fn update(c: &Cloud, id: &str, u: InstanceUpdate) {
    db::instances::instance_update(&mut *conn(&c.db).await, id, &None, &u)
        .await
        .expect("update");
}

fn ids(v: &Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Every server of the detail list equals its own `GET /servers/{id}`.
async fn same_as_show(c: &Cloud, query: &str, token: &str, version: &str) -> Vec<String> {
    let (s, list) = c
        .get_v(&format!("/v2.1/servers/detail{query}"), token, version)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    for server in list["servers"].as_array().expect("servers") {
        let id = server["id"].as_str().expect("id");
        let (s, shown) = c
            .get_v(&format!("/v2.1/servers/{id}"), token, version)
            .await;
        assert_eq!(s, StatusCode::OK, "{shown}");
        assert_eq!(
            server, &shown["server"],
            "list and show differ at {version} for {token}"
        );
    }
    ids(&list)
}

#[tokio::test]
async fn detail_list_shows_what_show_shows_in_one_query_per_page() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let f = c.flavor("f1", 1, 128, 1).await;
        let a = c.server(ALICE, "list-a", &f).await;
        let b = c.server(ALICE, "list-b", &f).await;
        let e = c.server(ALICE, "list-e", &f).await;
        for id in [&a, &b, &e] {
            c.wait_status(id, "ACTIVE").await;
        }

        // a: tags, metadata and an attached volume.
        let (s, v, _) = c
            .call(
                Method::PUT,
                &format!("/v2.1/servers/{a}/tags"),
                ALICE,
                Some(json!({"tags": ["red", "blue"]})),
                Some("2.26"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = c
            .post(
                &format!("/v2.1/servers/{a}/metadata"),
                ALICE,
                json!({"metadata": {"role": "web", "tier": "1"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        db::bdms::bdm_create(
            &mut *conn(&c.db).await,
            &VolumeBdm {
                id: "bdm-1".into(),
                instance_id: a.parse().expect("id"),
                volume_id: "0b2e6a9e-7c55-4f50-9d43-0d1a3a2f6a11".parse().expect("vol"),
                device_name: "/dev/vdb".into(),
                attachment_id: None,
                status: BdmStatus::Attached,
                delete_on_termination: false,
                connection_info: None,
                tag: None,
            },
        )
        .await
        .expect("bdm");

        // b: three addresses on two networks, v4 and v6.
        update(
            &c,
            &b,
            InstanceUpdate {
                network_info: Some(vec![
                    vif("port-01", NETWORK, "net1", &["10.1.0.5", "fd00::5"]),
                    vif("port-02", "net-2-id", "net2", &["192.168.7.9"]),
                ]),
                ..InstanceUpdate::default()
            },
        )
        .await;

        // e: in ERROR with a fault.
        update(
            &c,
            &e,
            InstanceUpdate {
                vm_state: Some(VmState::Error),
                task_state: Some(None),
                fault: Some(Some(Fault {
                    code: 500,
                    message: "No valid host was found.".into(),
                    details: "trace".into(),
                    created: "2026-12-07T20:00:00Z".into(),
                })),
                ..InstanceUpdate::default()
            },
        )
        .await;

        for version in ["2.1", "2.26", "2.73"] {
            for token in [ALICE, ADMIN] {
                let q = if token == ADMIN { "?all_tenants=1" } else { "" };
                let all = same_as_show(&c, q, token, version).await;
                assert_eq!(all, vec![e.clone(), b.clone(), a.clone()], "newest first");
            }
        }
        let (_, list) = c.get_v("/v2.1/servers/detail", ALICE, "2.26").await;
        let by_id = |id: &str| {
            list["servers"]
                .as_array()
                .expect("servers")
                .iter()
                .find(|s| s["id"] == id)
                .cloned()
                .expect("listed")
        };
        assert_eq!(by_id(&a)["tags"], json!(["blue", "red"]));
        assert_eq!(by_id(&a)["metadata"], json!({"role": "web", "tier": "1"}));
        assert_eq!(
            by_id(&a)["os-extended-volumes:volumes_attached"],
            json!([{"id": "0b2e6a9e-7c55-4f50-9d43-0d1a3a2f6a11", "delete_on_termination": false}])
        );
        assert_eq!(
            by_id(&b)["addresses"]["net1"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(by_id(&b)["addresses"]["net2"][0]["addr"], "192.168.7.9");
        assert_eq!(by_id(&e)["status"], "ERROR");
        assert_eq!(by_id(&e)["fault"]["message"], "No valid host was found.");

        // Paging: the pages are the full list cut up, with a next link
        // while a page is full.
        let (_, p1) = c.get("/v2.1/servers/detail?limit=2", ALICE).await;
        assert_eq!(ids(&p1), vec![e.clone(), b.clone()]);
        assert!(p1["servers_links"][0]["href"]
            .as_str()
            .is_some_and(|h| h.contains(&format!("marker={b}"))));
        let p2 = same_as_show(&c, &format!("?limit=2&marker={b}"), ALICE, "2.26").await;
        assert_eq!(p2, vec![a.clone()]);
        let (s, _) = c
            .get(
                "/v2.1/servers/detail?marker=00000000-0000-0000-0000-000000000000",
                ALICE,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let asc = same_as_show(&c, "?sort_key=display_name&sort_dir=asc", ALICE, "2.1").await;
        assert_eq!(asc, vec![a.clone(), b.clone(), e.clone()]);

        // Filters: SQL ones (status) and Rust ones (name, ip), with a marker.
        assert_eq!(
            same_as_show(&c, "?status=ERROR", ALICE, "2.1").await,
            vec![e.clone()]
        );
        assert_eq!(
            same_as_show(&c, "?status=ACTIVE&limit=1", ALICE, "2.1").await,
            vec![b.clone()]
        );
        assert_eq!(
            same_as_show(&c, "?name=-b$", ALICE, "2.1").await,
            vec![b.clone()]
        );
        assert_eq!(
            same_as_show(&c, "?ip=192%5C.168", ALICE, "2.1").await,
            vec![b.clone()]
        );
        assert_eq!(
            same_as_show(&c, &format!("?name=list&marker={e}&limit=1"), ALICE, "2.1").await,
            vec![b.clone()]
        );
        assert_eq!(
            same_as_show(&c, "?tags=red", ALICE, "2.26").await,
            vec![a.clone()]
        );
        assert_eq!(
            same_as_show(&c, "?not-tags=red", ALICE, "2.26").await,
            vec![e.clone(), b.clone()]
        );
        // Another project sees none of them.
        assert!(same_as_show(&c, "", BOB, "2.1").await.is_empty());
        // The brief list in the same order.
        let (_, brief) = c.get("/v2.1/servers", ALICE).await;
        assert_eq!(ids(&brief), vec![e.clone(), b.clone(), a.clone()]);
        c.stop().await;
    }
}
