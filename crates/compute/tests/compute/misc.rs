//! Issue 12: server list filters (flavor, image, ip, name regex), the
//! history of a deleted server, generated key pairs, `is_public` spellings,
//! simple tenant usage, host aggregates and their zones, floating IP pools;
//! on SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_compute::clients::{FixedIpInfo, VifInfo};
use stratus_compute::db;
use stratus_compute::db::instances::InstanceUpdate;

use super::harness::*;

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    n.sort();
    n
}

async fn set_ips(c: &Cloud, id: &str, ips: &[&str]) {
    let vif = VifInfo {
        port_id: "p".into(),
        network_id: NETWORK.into(),
        fixed_ips: ips
            .iter()
            .map(|a| FixedIpInfo {
                subnet_id: "s".into(),
                address: (*a).to_owned(),
                floating_ips: Vec::new(),
            })
            .collect(),
        ..VifInfo::default()
    };
    db::instances::instance_update(
        &mut *conn(&c.db).await,
        id,
        &None,
        &InstanceUpdate {
            network_info: Some(vec![vif]),
            ..InstanceUpdate::default()
        },
    )
    .await
    .expect("network info");
}

#[tokio::test]
async fn server_list_filters_flavor_image_ip_and_name() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let f1 = c.flavor("f1", 1, 128, 1).await;
        let f2 = c.flavor("f2", 1, 256, 1).await;
        let s1 = c.server(ALICE, "srv-1", &f1).await;
        let s2 = c.server(ALICE, "srv-2", &f2).await;
        let s3 = c.server(ALICE, "srv-3", &f1).await;
        for id in [&s1, &s2, &s3] {
            c.wait_status(id, "ACTIVE").await;
        }
        set_ips(&c, &s1, &["10.0.0.5", "fd00::5"]).await;
        set_ips(&c, &s2, &["10.0.0.50"]).await;
        set_ips(&c, &s3, &["10.1.0.5"]).await;
        let list = |q: &str| format!("/v2.1/servers/detail?{q}");
        let (s, v) = c.get(&list(&format!("flavor={f1}")), ALICE).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(names(&v), ["srv-1", "srv-3"]);
        // A flavor that does not exist: nothing (not every server).
        let (_, v) = c.get(&list("flavor=no-such-flavor"), ALICE).await;
        assert_eq!(names(&v), Vec::<String>::new());
        let (_, v) = c.get(&list(&format!("image={IMAGE}")), ALICE).await;
        assert_eq!(names(&v).len(), 3);
        let (_, v) = c
            .get(&list("image=00000000-0000-0000-0000-000000000000"), ALICE)
            .await;
        assert_eq!(names(&v), Vec::<String>::new());
        // Name: a regex searched in the name.
        let (_, v) = c.get(&list("name=%5Esrv-%5B12%5D%24"), ALICE).await;
        assert_eq!(names(&v), ["srv-1", "srv-2"]);
        let (_, v) = c.get(&list("name=v-3"), ALICE).await;
        assert_eq!(names(&v), ["srv-3"]);
        // ip: matched from the start of each v4 address (Python's re.match).
        let (_, v) = c.get(&list("ip=10.0.0.5"), ALICE).await;
        assert_eq!(names(&v), ["srv-1", "srv-2"]);
        let (_, v) = c.get(&list("ip=10%5C.0%5C.0%5C.5%24"), ALICE).await;
        assert_eq!(names(&v), ["srv-1"]);
        let (_, v) = c.get(&list("ip=0.0.5"), ALICE).await;
        assert_eq!(names(&v), Vec::<String>::new());
        // ip6 is the user's from 2.5; below, it is dropped.
        let (_, v) = c.get_v(&list("ip6=fd00%3A%3A5"), ALICE, "2.5").await;
        assert_eq!(names(&v), ["srv-1"]);
        let (_, v) = c.get_v(&list("ip6=fd00"), ALICE, "2.4").await;
        assert_eq!(names(&v).len(), 3);
        // Brief listing too, and another project sees none of them.
        let (_, v) = c.get(&format!("/v2.1/servers?flavor={f2}"), ALICE).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1));
        let (_, v) = c.get(&list(&format!("flavor={f1}")), BOB).await;
        assert_eq!(names(&v), Vec::<String>::new());
        c.stop().await;
    }
}

#[tokio::test]
async fn a_deleted_servers_actions_from_2_21() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let f = c.flavor("f1", 1, 128, 1).await;
        let id = c.server(ALICE, "gone", &f).await;
        c.wait_status(&id, "ACTIVE").await;
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&id).await;
        let path = format!("/v2.1/servers/{id}/os-instance-actions");
        let (s, _) = c.get_v(&path, ALICE, "2.20").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = c.get_v(&path, ALICE, "2.21").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let actions: Vec<&str> = v["instanceActions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter_map(|a| a["action"].as_str())
            .collect();
        assert!(
            actions.contains(&"create") && actions.contains(&"delete"),
            "{v}"
        );
        let req = v["instanceActions"][0]["request_id"]
            .as_str()
            .expect("request id")
            .to_owned();
        let (s, v) = c.get_v(&format!("{path}/{req}"), ALICE, "2.21").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, _) = c.get_v(&format!("{path}/{req}"), ALICE, "2.20").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // Still hidden from another project.
        let (s, _) = c.get_v(&path, BOB, "2.21").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        c.stop().await;
    }
}

#[tokio::test]
async fn key_pairs_are_generated_below_2_92() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let (s, v) = c
            .post(
                "/v2.1/os-keypairs",
                ALICE,
                json!({"keypair": {"name": "gen"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let k = &v["keypair"];
        assert!(k["private_key"]
            .as_str()
            .is_some_and(|p| p.starts_with("-----BEGIN RSA PRIVATE KEY-----")));
        assert!(k["public_key"]
            .as_str()
            .is_some_and(|p| p.starts_with("ssh-rsa ") && p.ends_with(" Generated-by-Nova")));
        assert_eq!(k["user_id"], "u-alice");
        let (_, shown) = c.get("/v2.1/os-keypairs/gen", ALICE).await;
        assert_eq!(shown["keypair"]["fingerprint"], k["fingerprint"]);
        assert!(shown["keypair"].get("private_key").is_none());

        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                ALICE,
                Some(json!({"keypair": {"name": "win", "type": "x509"}})),
                Some("2.2"),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let k = &v["keypair"];
        assert_eq!(k["type"], "x509");
        assert!(k["public_key"]
            .as_str()
            .is_some_and(|p| p.starts_with("-----BEGIN CERTIFICATE-----")));
        // SHA-1: 20 bytes.
        assert_eq!(
            k["fingerprint"].as_str().map(|f| f.split(':').count()),
            Some(20)
        );
        assert!(k["private_key"].as_str().is_some_and(|p| !p.is_empty()));
        // An imported certificate gets the same fingerprint.
        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                ALICE,
                Some(json!({"keypair": {"name": "win2", "type": "x509",
                    "public_key": k["public_key"]}})),
                Some("2.2"),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["keypair"]["fingerprint"], k["fingerprint"]);

        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                ALICE,
                Some(json!({"keypair": {"name": "late"}})),
                Some("2.92"),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        c.stop().await;
    }
}

#[tokio::test]
async fn flavor_is_public_spellings() {
    let c = Cloud::start(Engine::Sqlite, base_cfg()).await;
    let body = |name: &str, p: Value| {
        json!({"flavor": {"name": name, "ram": 64, "vcpus": 1, "disk": 1,
            "os-flavor-access:is_public": p}})
    };
    let (s, v) = c
        .post("/v2.1/flavors", ADMIN, body("pub", json!("yes")))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["flavor"]["os-flavor-access:is_public"], true);
    let (s, v) = c
        .post("/v2.1/flavors", ADMIN, body("priv", json!("OFF")))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["flavor"]["os-flavor-access:is_public"], false);
    // Nova's schema enum: no `t`, no mixed case.
    for bad in ["t", "tRUE", "maybe"] {
        let (s, _) = c
            .post("/v2.1/flavors", ADMIN, body("bad", json!(bad)))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let listed = |v: &Value| -> Vec<String> {
        v["flavors"]
            .as_array()
            .expect("flavors")
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect()
    };
    let (_, v) = c.get("/v2.1/flavors?is_public=n", ADMIN).await;
    assert_eq!(listed(&v), ["priv"]);
    let (_, v) = c.get("/v2.1/flavors?is_public=T", ADMIN).await;
    assert_eq!(listed(&v), ["pub"]);
    let (_, v) = c.get("/v2.1/flavors?is_public=NONE", ADMIN).await;
    assert_eq!(listed(&v).len(), 2);
    let (s, v) = c.get("/v2.1/flavors?is_public=all", ADMIN).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["badRequest"]["message"], "Invalid is_public filter [all]");
    // A user's filter is ignored: the public ones.
    let (s, v) = c.get("/v2.1/flavors?is_public=bogus", ALICE).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed(&v), ["pub"]);
    c.stop().await;
}

#[tokio::test]
async fn simple_tenant_usage_sums_and_pages() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let f = c.flavor("f1", 2, 512, 3).await;
        let a = c.server(ALICE, "a1", &f).await;
        let b = c.server(ALICE, "a2", &f).await;
        let o = c.server(BOB, "b1", &f).await;
        for id in [&a, &b, &o] {
            c.wait_status(id, "ACTIVE").await;
        }
        let q = "start=2000-01-01T00:00:00&end=2100-01-01T00:00:00";
        let (s, v) = c
            .get(
                &format!("/v2.1/os-simple-tenant-usage?{q}&detailed=1"),
                ADMIN,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let usages = v["tenant_usages"].as_array().expect("usages");
        assert_eq!(usages.len(), 2, "{v}");
        let alice = usages
            .iter()
            .find(|u| u["tenant_id"] == "p-alice")
            .expect("alice");
        let servers = alice["server_usages"].as_array().expect("servers");
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0]["vcpus"], 2);
        assert_eq!(servers[0]["memory_mb"], 512);
        assert_eq!(servers[0]["local_gb"], 3);
        assert_eq!(servers[0]["state"], "active");
        assert_eq!(servers[0]["flavor"], "f1");
        assert!(servers[0]["ended_at"].is_null());
        assert!(alice["total_hours"].as_f64().is_some());
        let vcpus = alice["total_vcpus_usage"].as_f64().expect("vcpus");
        let hours = alice["total_hours"].as_f64().expect("hours");
        assert!((vcpus - 2.0 * hours).abs() < 1e-9);
        // Not detailed: no server_usages.
        let (_, v) = c
            .get(&format!("/v2.1/os-simple-tenant-usage?{q}"), ADMIN)
            .await;
        assert!(v["tenant_usages"][0].get("server_usages").is_none());
        // Admin only; a project reads its own.
        let path = format!("/v2.1/os-simple-tenant-usage?{q}");
        assert_eq!(c.get(&path, ALICE).await.0, StatusCode::FORBIDDEN);
        let (s, v) = c
            .get(&format!("/v2.1/os-simple-tenant-usage/p-alice?{q}"), READER)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v["tenant_usage"]["server_usages"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(
            c.get(&format!("/v2.1/os-simple-tenant-usage/p-bob?{q}"), ALICE)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        let (_, v) = c
            .get(&format!("/v2.1/os-simple-tenant-usage/p-nobody?{q}"), ADMIN)
            .await;
        assert_eq!(v["tenant_usage"], json!({}));
        // Paging from 2.40.
        let (s, v) = c
            .get_v(
                &format!("/v2.1/os-simple-tenant-usage?{q}&detailed=1&limit=1"),
                ADMIN,
                "2.40",
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let href = v["tenant_usages_links"][0]["href"]
            .as_str()
            .expect("next link")
            .to_owned();
        assert!(
            href.contains("marker=") && href.contains("limit=1"),
            "{href}"
        );
        let marker = href.rsplit("marker=").next().unwrap_or_default();
        let marker = marker.split('&').next().unwrap_or_default();
        let (s, v2) = c
            .get_v(
                &format!("/v2.1/os-simple-tenant-usage?{q}&detailed=1&limit=5&marker={marker}"),
                ADMIN,
                "2.40",
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v2}");
        let rest: usize = v2["tenant_usages"]
            .as_array()
            .expect("usages")
            .iter()
            .map(|u| u["server_usages"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(rest, 2);
        // A start after the end, a bad time.
        let (s, _) = c
            .get(
                "/v2.1/os-simple-tenant-usage?start=2100-01-01T00:00:00&end=2000-01-01T00:00:00",
                ADMIN,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _) = c
            .get("/v2.1/os-simple-tenant-usage?start=yesterday", ADMIN)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        c.stop().await;
    }
}

#[tokio::test]
async fn aggregates_make_availability_zones() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let (_, hv) = c.get("/v2.1/os-hypervisors/detail", ADMIN).await;
        let mut hosts: Vec<String> = hv["hypervisors"]
            .as_array()
            .expect("hypervisors")
            .iter()
            .filter_map(|h| h["service"]["host"].as_str().map(str::to_owned))
            .collect();
        hosts.sort();
        assert_eq!(hosts.len(), 2, "{hv}");
        let (h1, h2) = (hosts[0].clone(), hosts[1].clone());

        let agg = json!({"aggregate": {"name": "agg", "availability_zone": "az1"}});
        assert_eq!(
            c.post("/v2.1/os-aggregates", ALICE, agg.clone()).await.0,
            StatusCode::FORBIDDEN
        );
        let (s, v) = c.post("/v2.1/os-aggregates", ADMIN, agg.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["aggregate"]["availability_zone"], "az1");
        assert!(v["aggregate"].get("hosts").is_none());
        let id = v["aggregate"]["id"].as_i64().expect("integer id");
        let (s, _) = c.post("/v2.1/os-aggregates", ADMIN, agg).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = c
            .post(
                "/v2.1/os-aggregates",
                ADMIN,
                json!({"aggregate": {"name": "bad", "availability_zone": "a:b"}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);

        let action = format!("/v2.1/os-aggregates/{id}/action");
        let (s, v) = c
            .post(&action, ADMIN, json!({"add_host": {"host": h1}}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["aggregate"]["hosts"], json!([h1]));
        let (s, _) = c
            .post(&action, ADMIN, json!({"add_host": {"host": h1}}))
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = c
            .post(
                &action,
                ADMIN,
                json!({"add_host": {"host": "no-such-host"}}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // The zone is listed, with the host in it.
        let (_, v) = c.get("/v2.1/os-availability-zone", ALICE).await;
        let zones: Vec<&str> = v["availabilityZoneInfo"]
            .as_array()
            .expect("zones")
            .iter()
            .filter_map(|z| z["zoneName"].as_str())
            .collect();
        assert!(zones.contains(&"az1"), "{v}");
        let (_, v) = c.get("/v2.1/os-availability-zone/detail", ADMIN).await;
        let az1 = v["availabilityZoneInfo"]
            .as_array()
            .expect("zones")
            .iter()
            .find(|z| z["zoneName"] == "az1")
            .cloned()
            .expect("az1");
        assert!(az1["hosts"].get(&h1).is_some(), "{az1}");

        // A second aggregate in another zone cannot take h1.
        let (_, v) = c
            .post(
                "/v2.1/os-aggregates",
                ADMIN,
                json!({"aggregate": {"name": "agg2", "availability_zone": "az2"}}),
            )
            .await;
        let id2 = v["aggregate"]["id"].as_i64().expect("id");
        let (s, v) = c
            .post(
                &format!("/v2.1/os-aggregates/{id2}/action"),
                ADMIN,
                json!({"add_host": {"host": h1}}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");

        // A server asked for az1 lands on h1 and shows az1.
        let f = c.flavor("f1", 1, 128, 1).await;
        let mut body = server_body("in-az1", &f);
        body["server"]["availability_zone"] = json!("az1");
        let (s, v) = c.post("/v2.1/servers", ALICE, body).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let sid = v["server"]["id"].as_str().expect("id").to_owned();
        let srv = c.wait_status(&sid, "ACTIVE").await;
        assert_eq!(srv["OS-EXT-AZ:availability_zone"], "az1");
        assert_eq!(srv["OS-EXT-SRV-ATTR:host"], json!(h1));

        // Metadata; the zone of hosts with servers cannot change (400).
        let (s, v) = c
            .post(
                &action,
                ADMIN,
                json!({"set_metadata": {"metadata": {"k": "v", "x": null}}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v["aggregate"]["metadata"],
            json!({"availability_zone": "az1", "k": "v"})
        );
        let (s, v) = c
            .post(
                &action,
                ADMIN,
                json!({"set_metadata": {"metadata": {"availability_zone": "az9"}}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v, _) = c
            .call(
                Method::PUT,
                &format!("/v2.1/os-aggregates/{id}"),
                ADMIN,
                Some(json!({"aggregate": {"name": "renamed"}})),
                Some("2.41"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["aggregate"]["name"], "renamed");
        assert!(v["aggregate"]["uuid"].is_string());
        let (s, v) = c.get(&format!("/v2.1/os-aggregates/{id}"), ADMIN).await;
        assert_eq!(s, StatusCode::OK);
        assert!(v["aggregate"].get("uuid").is_none());
        assert_eq!(
            c.get("/v2.1/os-aggregates/x", ADMIN).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            c.get("/v2.1/os-aggregates/999", ADMIN).await.0,
            StatusCode::NOT_FOUND
        );
        let (_, v) = c.get("/v2.1/os-aggregates", ADMIN).await;
        assert_eq!(v["aggregates"].as_array().map(Vec::len), Some(2));

        // Not empty: 400; empty it, then delete.
        assert_eq!(
            c.delete(&format!("/v2.1/os-aggregates/{id}"), ADMIN).await,
            StatusCode::BAD_REQUEST
        );
        let (s, _) = c
            .post(&action, ADMIN, json!({"remove_host": {"host": h2}}))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = c
            .post(&action, ADMIN, json!({"remove_host": {"host": h1}}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["aggregate"]["hosts"], json!([]));
        // Back in the default zone, server included.
        let (_, v) = c
            .get_v(&format!("/v2.1/servers/{sid}"), ADMIN, "2.96")
            .await;
        assert_eq!(v["server"]["OS-EXT-AZ:availability_zone"], "nova");
        assert_eq!(
            c.delete(&format!("/v2.1/os-aggregates/{id}"), ADMIN).await,
            StatusCode::OK
        );
        assert_eq!(
            c.get(&format!("/v2.1/os-aggregates/{id}"), ADMIN).await.0,
            StatusCode::NOT_FOUND
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn floating_ip_pools_until_2_35() {
    let c = Cloud::start(Engine::Sqlite, base_cfg()).await;
    let (s, v) = c.get_v("/v2.1/os-floating-ip-pools", ALICE, "2.35").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"floating_ip_pools": []}));
    let (s, _) = c.get_v("/v2.1/os-floating-ip-pools", ALICE, "2.36").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    c.stop().await;
}
