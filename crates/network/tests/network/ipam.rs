//! Address allocation under concurrency: two "API processes" (two routers,
//! each with its own database pool) create ports on one subnet at once.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::json;
use stratus_db::Db;
use stratus_network::NetworkConfig;
use tokio::task::JoinSet;

use crate::common::*;

async fn race(db1: &Db, db2: &Db) {
    let c1 = Cloud::start(db1, NetworkConfig::default()).await;
    let c2 = Cloud::start(db2, NetworkConfig::default()).await;
    // 10.99.0.0/27: .1 is the gateway, .2 to .30 are handed out: 29 addresses.
    let (net, subnet) = net_with_subnet(&c1, ALICE, "race", Some("10.99.0.0/27")).await;
    const ATTEMPTS: usize = 40;
    let mut set = JoinSet::new();
    for i in 0..ATTEMPTS {
        let router = if i % 2 == 0 {
            c1.router.clone()
        } else {
            c2.router.clone()
        };
        let body = json!({"port": {"network_id": net, "name": format!("p{i}")}});
        set.spawn(
            async move { call(&router, "POST", "/v2.0/ports", Some(ALICE), Some(body)).await },
        );
    }
    let mut ips = Vec::new();
    let mut exhausted = 0;
    while let Some(r) = set.join_next().await {
        let (st, b) = r.expect("task");
        match st {
            StatusCode::CREATED => {
                assert_eq!(b["port"]["fixed_ips"][0]["subnet_id"], subnet.as_str());
                ips.push(s(&b["port"]["fixed_ips"][0]["ip_address"]));
            }
            _ => {
                assert_neutron_error(st, &b, StatusCode::CONFLICT, "IpAddressGenerationFailure");
                exhausted += 1;
            }
        }
    }
    let unique: BTreeSet<String> = ips.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        ips.len(),
        "an address was handed out twice: {ips:?}"
    );
    assert_eq!(ips.len(), 29, "exact exhaustion");
    assert_eq!(exhausted, ATTEMPTS - 29);
    let want: BTreeSet<String> = (2..=30).map(|i| format!("10.99.0.{i}")).collect();
    assert_eq!(unique, want);
    // What the database holds agrees with what was answered.
    let (_, b) = c2
        .call(
            "GET",
            &format!("/v2.0/ports?network_id={net}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(b["ports"].as_array().map(Vec::len), Some(29));
    // The racing first uses made exactly one default group.
    let (_, b) = c1
        .call(
            "GET",
            "/v2.0/security-groups?name=default",
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(
        b["security_groups"].as_array().map(Vec::len),
        Some(1),
        "{b}"
    );
    c1.stop().await;
    c2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_allocation_from_two_processes_never_doubles() {
    // SQLite: two pools on one file.
    let dir = tempfile::tempdir().expect("tempdir");
    let db1 = Db::connect("", dir.path(), "network", None)
        .await
        .expect("db1");
    let db2 = Db::connect("", dir.path(), "network", None)
        .await
        .expect("db2");
    race(&db1, &db2).await;
    // PostgreSQL: two pools on one database, when it is reachable.
    match stratus_db::testing::create_postgres_database().await {
        Ok(Some((url, name))) => {
            let db1 = Db::connect(&url, dir.path(), "network", None)
                .await
                .expect("pg db1");
            let db2 = Db::connect(&url, dir.path(), "network", None)
                .await
                .expect("pg db2");
            race(&db1, &db2).await;
            stratus_db::testing::drop_postgres_database(&name).await;
        }
        Ok(None) => eprintln!("PostgreSQL disabled; IPAM race tested on SQLite only"),
        Err(e) => {
            assert!(
                std::env::var("STRATUS_TEST_REQUIRE_POSTGRES").is_err(),
                "PostgreSQL required: {e}"
            );
            eprintln!("PostgreSQL not reachable ({e}); IPAM race tested on SQLite only");
        }
    }
}
