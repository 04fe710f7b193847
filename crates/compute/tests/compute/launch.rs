//! Launching over the bus: create -> ACTIVE, actions, delete, failures,
//! rescheduling, server groups, host liveness and agent restarts.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::json;
use stratus_compute::virt::fake::FakeDriver;
use stratus_compute::virt::VirtDriver;

use super::harness::*;
use stratus_compute::db;

#[tokio::test]
async fn server_lifecycle_over_the_bus() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let (s, v, h) = c
            .call(
                Method::POST,
                "/v2.1/servers",
                ALICE,
                Some(server_body("vm", &flavor)),
                Some("2.96"),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["server"]["id"].as_str().expect("id").to_owned();
        assert!(h["location"]
            .to_str()
            .expect("location")
            .ends_with(&format!("/v2.1/servers/{id}")));
        assert!(v["server"]["adminPass"].is_string());
        assert_eq!(v["server"]["security_groups"][0]["name"], "default");

        let srv = c.wait_status(&id, "ACTIVE").await;
        assert_eq!(srv["OS-EXT-STS:power_state"], 1);
        assert!(srv["OS-EXT-SRV-ATTR:host"]
            .as_str()
            .is_some_and(|h| h.starts_with("compute-")));
        assert_eq!(srv["flavor"]["original_name"], "small");
        assert_eq!(srv["image"]["id"], IMAGE);
        assert_eq!(c.ram_used().await, 512);

        // Views by microversion.
        let (_, v) = c.get(&format!("/v2.1/servers/{id}"), ALICE).await;
        assert_eq!(v["server"]["flavor"]["id"], flavor.as_str());
        assert!(v["server"].get("OS-EXT-SRV-ATTR:host").is_none());
        assert!(v["server"].get("locked").is_none());
        let (_, v) = c.get_v(&format!("/v2.1/servers/{id}"), ALICE, "2.71").await;
        assert_eq!(v["server"]["locked"], false);
        assert_eq!(v["server"]["server_groups"], json!([]));
        assert_eq!(v["server"]["tags"], json!([]));

        // Lookup as openstacksdk does it, list, filters and policy.
        let (_, v) = c.get("/v2.1/servers/detail?name=vm", ALICE).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1));
        let (_, v) = c.get("/v2.1/servers/detail?deleted=False", ALICE).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1));
        let (_, v) = c.get("/v2.1/servers?status=SHUTOFF", ALICE).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(0));
        let (_, v) = c.get("/v2.1/servers", BOB).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(0));
        assert_eq!(
            c.get(&format!("/v2.1/servers/{id}"), BOB).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), BOB).await,
            StatusCode::NOT_FOUND
        );
        let (_, v) = c.get("/v2.1/servers/detail?all_tenants=1", ADMIN).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1));
        let (_, v) = c.get("/v2.1/servers/detail", ADMIN).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(0));
        let (s, _) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                READER,
                json!({"os-stop": null}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);

        // Update, metadata.
        let (s, v, _) = c
            .call(
                Method::PUT,
                &format!("/v2.1/servers/{id}"),
                ALICE,
                Some(json!({"server": {"name": "vm2"}})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["server"]["name"], "vm2");
        let (s, v) = c
            .post(
                &format!("/v2.1/servers/{id}/metadata"),
                ALICE,
                json!({"metadata": {"a": "1"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v, _) = c
            .call(
                Method::PUT,
                &format!("/v2.1/servers/{id}/metadata/b"),
                ALICE,
                Some(json!({"meta": {"b": "2"}})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, v) = c.get(&format!("/v2.1/servers/{id}/metadata"), ALICE).await;
        assert_eq!(v["metadata"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}/metadata/a"), ALICE)
                .await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}/metadata/a"), ALICE)
                .await,
            StatusCode::NOT_FOUND
        );

        // Power actions; a wrong-state action is 409.
        let (s, v) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"os-start": null}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(v["conflictingRequest"]["code"], 409);
        let (s, _) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"os-stop": null}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let srv = c.wait_status(&id, "SHUTOFF").await;
        assert_eq!(srv["OS-EXT-STS:power_state"], 4);
        let (s, _) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"reboot": {"type": "SOFT"}}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"os-start": null}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        c.wait_status(&id, "ACTIVE").await;
        for kind in ["SOFT", "HARD"] {
            let (s, _) = c
                .post(
                    &format!("/v2.1/servers/{id}/action"),
                    ALICE,
                    json!({"reboot": {"type": kind}}),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED);
            c.wait_status(&id, "ACTIVE").await;
        }
        let (s, _) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"reboot": {"type": "WARM"}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, v) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"os-getConsoleOutput": {}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["output"]
            .as_str()
            .is_some_and(|o| o.contains("[hard reboot]")));
        let (_, v) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"os-getConsoleOutput": {"length": 1}}),
            )
            .await;
        assert_eq!(v["output"], "[hard reboot]\n");

        // Instance actions and the events every service recorded.
        let (s, v, _) = c
            .call(
                Method::GET,
                &format!("/v2.1/servers/{id}/os-instance-actions"),
                ALICE,
                None,
                Some("2.84"),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let actions: Vec<String> = v["instanceActions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|a| a["action"].as_str().unwrap_or_default().to_owned())
            .collect();
        for a in ["create", "stop", "start", "reboot"] {
            assert!(
                actions.iter().any(|x| x == a),
                "{a} missing from {actions:?}"
            );
        }
        let create = v["instanceActions"]
            .as_array()
            .and_then(|l| l.iter().find(|a| a["action"] == "create"))
            .expect("create action");
        assert!(create["updated_at"].is_string());
        let req = create["request_id"].as_str().expect("request id");
        let (s, v) = c
            .get_v(
                &format!("/v2.1/servers/{id}/os-instance-actions/{req}"),
                ADMIN,
                "2.84",
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let events = v["instanceAction"]["events"]
            .as_array()
            .expect("events")
            .clone();
        for e in [
            "conductor_schedule_and_build_instances",
            "scheduler_select_destinations",
            "compute__do_build_and_run_instance",
        ] {
            let ev = events
                .iter()
                .find(|x| x["event"] == e)
                .unwrap_or_else(|| panic!("{e} missing: {events:?}"));
            assert_eq!(ev["result"], "Success");
            assert!(ev["finish_time"].is_string());
        }

        // Casts are at-least-once: a redelivered build or schedule is harmless.
        let host = db::instances::instance_get(&mut *conn(&c.db).await, &id)
            .await
            .expect("instance")
            .host
            .expect("host");
        let sys = stratus_common::RequestContext::internal();
        let args = json!({"instance_id": id, "alternates": []});
        c.bus
            .cast(
                &format!("compute.{host}"),
                "build_and_run_instance",
                &sys,
                &args,
            )
            .await
            .expect("cast");
        c.bus
            .cast(
                "scheduler",
                "select_and_build",
                &sys,
                &json!({"instance_id": id}),
            )
            .await
            .expect("cast");
        let (s, v) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"os-getConsoleOutput": {}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let srv = c.wait_status(&id, "ACTIVE").await;
        assert_eq!(srv["OS-EXT-SRV-ATTR:host"], host.as_str());
        assert_eq!(c.ram_used().await, 512);
        // Paging of actions (2.58): newest first, `links` while there is more.
        let (s, v) = c
            .get_v(
                &format!("/v2.1/servers/{id}/os-instance-actions?limit=2"),
                ALICE,
                "2.84",
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["instanceActions"].as_array().map(Vec::len), Some(2));
        let next = v["links"][0]["href"].as_str().expect("next link");
        let marker = next.rsplit("marker=").next().expect("marker").to_owned();
        let (_, v) = c
            .get_v(
                &format!("/v2.1/servers/{id}/os-instance-actions?marker={marker}"),
                ALICE,
                "2.84",
            )
            .await;
        assert!(!v["instanceActions"].as_array().expect("rest").is_empty());
        assert!(v.get("links").is_none());

        // Delete releases the claim; the server goes away.
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&id).await;
        assert_eq!(c.ram_used().await, 0);
        // Delete while still building: gone, and nothing stays claimed.
        for _ in 0..3 {
            let id = c.server(ALICE, "quick", &flavor).await;
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
            c.wait_gone(&id).await;
        }
        c.wait_ram_used(0).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn quota_no_valid_host_and_delete_in_error() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let small = c.flavor("small", 1, 512, 1).await;
        let huge = c.flavor("huge", 1, 40000, 1).await;

        let (s, _, _) = c
            .call(
                Method::PUT,
                "/v2.1/os-quota-sets/p-alice",
                ADMIN,
                Some(json!({"quota_set": {"instances": 1}})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let id = c.server(ALICE, "one", &small).await;
        let (s, v) = c
            .post("/v2.1/servers", ALICE, server_body("two", &small))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["forbidden"]["code"], 403);
        assert!(v["forbidden"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("instances")));
        c.wait_status(&id, "ACTIVE").await;
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&id).await;

        // Bad references are 400 with Nova's messages.
        let (s, v) = c
            .post("/v2.1/servers", ALICE, server_body("x", "no-such-flavor"))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["badRequest"]["message"], "Invalid flavorRef provided.");
        let mut b = server_body("x", &small);
        b["server"]["key_name"] = json!("missing");
        assert_eq!(
            c.post("/v2.1/servers", ALICE, b).await.0,
            StatusCode::BAD_REQUEST
        );
        let mut b = server_body("x", &small);
        b["server"]["availability_zone"] = json!("nowhere");
        assert_eq!(
            c.post("/v2.1/servers", ALICE, b).await.0,
            StatusCode::BAD_REQUEST
        );

        // No host is big enough: ERROR with Nova's fault, nothing claimed.
        let id = c.server(ALICE, "big", &huge).await;
        let srv = c.wait_status(&id, "ERROR").await;
        assert_eq!(srv["fault"]["message"], "No valid host was found. ");
        assert_eq!(srv["fault"]["code"], 500);
        assert_eq!(c.ram_used().await, 0);
        let (s, _) = c
            .post(
                &format!("/v2.1/servers/{id}/action"),
                ALICE,
                json!({"os-start": null}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&id).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn spawn_failure_reschedules_then_errors() {
    for engine in engines().await {
        // Three hosts; the first two (by name, weights being equal) fail.
        let mut cfg = base_cfg();
        cfg.fake_hosts = 3;
        cfg.fake_fail_hosts = vec!["compute-1".into(), "compute-2".into()];
        let c = Cloud::start(engine, cfg).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        let srv = c.wait_status(&id, "ACTIVE").await;
        assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "compute-3");
        assert_eq!(c.ram_used().await, 512);
        let (_, v) = c
            .get(&format!("/v2.1/servers/{id}/os-instance-actions"), ADMIN)
            .await;
        let req = v["instanceActions"][0]["request_id"]
            .as_str()
            .expect("req")
            .to_owned();
        let (_, v) = c
            .get(
                &format!("/v2.1/servers/{id}/os-instance-actions/{req}"),
                ADMIN,
            )
            .await;
        let events = v["instanceAction"]["events"]
            .as_array()
            .expect("events")
            .clone();
        let builds: Vec<_> = events
            .iter()
            .filter(|e| e["event"] == "compute__do_build_and_run_instance")
            .collect();
        assert_eq!(builds.len(), 3, "{events:?}");
        assert_eq!(builds.iter().filter(|e| e["result"] == "Error").count(), 2);
        assert!(events.iter().any(|e| e["event"] == "conductor_reschedule"));
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&id).await;
        c.stop().await;

        // Every host fails: ERROR after max_attempts, every claim released.
        let mut cfg = base_cfg();
        cfg.fake_hosts = 3;
        cfg.max_attempts = 2;
        cfg.fake_fail_hosts = vec!["compute-1".into(), "compute-2".into(), "compute-3".into()];
        let c = Cloud::start(engine, cfg).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        let srv = c.wait_status(&id, "ERROR").await;
        assert!(
            srv["fault"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("No valid host was found.")),
            "{srv}"
        );
        assert_eq!(c.ram_used().await, 0);
        let (_, v) = c
            .get(&format!("/v2.1/servers/{id}/os-instance-actions"), ADMIN)
            .await;
        assert_eq!(v["instanceActions"][0]["message"], "Error");
        c.stop().await;
    }
}

#[tokio::test]
async fn server_groups_multi_create_and_down_hosts() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let (_, v, _) = c
            .call(
                Method::POST,
                "/v2.1/os-server-groups",
                ALICE,
                Some(json!({"server_group": {"name": "g", "policy": "anti-affinity"}})),
                Some("2.64"),
            )
            .await;
        let gid = v["server_group"]["id"].as_str().expect("group").to_owned();
        let mut hosts = Vec::new();
        let mut ids = Vec::new();
        for n in 0..3 {
            let mut b = server_body(&format!("g{n}"), &flavor);
            b["os:scheduler_hints"] = json!({"group": gid});
            let (s, v) = c.post("/v2.1/servers", ALICE, b).await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            let id = v["server"]["id"].as_str().expect("id").to_owned();
            // One at a time, so each sees the others' hosts.
            let srv = if n < 2 {
                c.wait_status(&id, "ACTIVE").await
            } else {
                c.wait_status(&id, "ERROR").await
            };
            hosts.push(srv["OS-EXT-SRV-ATTR:host"].clone());
            ids.push(id);
        }
        assert_ne!(hosts[0], hosts[1]);
        let (_, v) = c.get(&format!("/v2.1/os-server-groups/{gid}"), ALICE).await;
        assert_eq!(
            v["server_group"]["members"].as_array().map(Vec::len),
            Some(3)
        );
        for id in &ids {
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
            c.wait_gone(id).await;
        }

        // min/max count with a reservation id.
        let mut b = server_body("multi", &flavor);
        b["server"]["min_count"] = json!(2);
        b["server"]["max_count"] = json!(2);
        b["server"]["return_reservation_id"] = json!(true);
        let (s, v) = c.post("/v2.1/servers", ALICE, b).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let rid = v["reservation_id"]
            .as_str()
            .expect("reservation")
            .to_owned();
        let (_, v) = c
            .get(
                &format!(
                    "/v2.1/servers/detail?reservation_id={rid}&sort_key=display_name&sort_dir=asc"
                ),
                ALICE,
            )
            .await;
        let list = v["servers"].as_array().expect("list").clone();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["name"], "multi-1");
        let (_, v) = c.get("/v2.1/servers?limit=1", ALICE).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1));
        assert!(v["servers_links"][0]["href"]
            .as_str()
            .is_some_and(|h| h.contains("marker=")));
        for s in &list {
            let id = s["id"].as_str().expect("id");
            c.wait_status(id, "ACTIVE").await;
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
            c.wait_gone(id).await;
        }

        // A server on the host that is about to go down.
        let stranded = c.server(ALICE, "stranded", &flavor).await;
        let srv = c.wait_status(&stranded, "ACTIVE").await;
        assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "compute-1");

        // A forced-down host shows down and gets no servers.
        let (_, v) = c
            .get_v(
                "/v2.1/os-services?binary=nova-compute&host=compute-1",
                ADMIN,
                "2.53",
            )
            .await;
        let sid = v["services"][0]["id"]
            .as_str()
            .expect("service id")
            .to_owned();
        let (s, v, _) = c
            .call(
                Method::PUT,
                &format!("/v2.1/os-services/{sid}"),
                ADMIN,
                Some(json!({"forced_down": true})),
                Some("2.53"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["service"]["state"], "down");
        let (_, v) = c.get("/v2.1/os-hypervisors", ADMIN).await;
        assert!(v["hypervisors"]
            .as_array()
            .expect("list")
            .iter()
            .any(|h| h["state"] == "down"));
        for n in 0..3 {
            let id = c.server(ALICE, &format!("d{n}"), &flavor).await;
            let srv = c.wait_status(&id, "ACTIVE").await;
            assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "compute-2");
        }
        // Deleting a server whose host is down deletes it locally and
        // releases its claim, as Nova's local delete.
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{stranded}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&stranded).await;
        c.wait_ram_used(3 * 512).await;
        c.stop().await;
    }
}

#[tokio::test]
async fn agent_restart_reconciles_with_its_driver() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 1;
        let fake = Arc::new(FakeDriver::new("compute", 8, 8192, 100, false));
        let driver: Arc<dyn VirtDriver> = fake.clone();
        let mut c = Cloud::start_with(
            engine,
            cfg.clone(),
            Some(vec![("compute".into(), driver.clone())]),
        )
        .await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let keep = c.server(ALICE, "keep", &flavor).await;
        let lost = c.server(ALICE, "lost", &flavor).await;
        c.wait_status(&keep, "ACTIVE").await;
        c.wait_status(&lost, "ACTIVE").await;

        // The agent goes away; its hypervisor loses one guest and gains a stray.
        if let Some(a) = c.agents.take() {
            a.stop().await;
        }
        let lost_id: stratus_common::ids::InstanceId = lost.parse().expect("id");
        let keep_id: stratus_common::ids::InstanceId = keep.parse().expect("id");
        let spec = fake.spec(keep_id).expect("spec");
        driver.destroy(lost_id).await.expect("destroy");
        let stray = stratus_compute::model::GuestSpec {
            id: stratus_common::ids::InstanceId::new(),
            ..spec
        };
        driver.define(&stray).await.expect("stray");
        c.agents = Some(
            stratus_compute::start_agents_with(
                &c.config,
                &c.bus,
                vec![("compute".into(), driver.clone())],
                stratus_compute::AgentServices::accept_all(c.config.data_dir.join("instances")),
            )
            .await
            .expect("agents again"),
        );
        c.wait_status(&keep, "ACTIVE").await;
        // A guest the hypervisor lost: Nova's NOSTATE, still ACTIVE.
        let srv = c.wait_status(&lost, "ACTIVE").await;
        assert_eq!(srv["OS-EXT-STS:power_state"], 0);
        let guests: Vec<_> = driver.list().await.into_iter().map(|(id, _)| id).collect();
        assert_eq!(guests, vec![keep_id]);
        c.stop().await;
    }
}

#[tokio::test]
async fn many_servers_on_many_fake_hosts() {
    for engine in engines().await {
        let mut cfg = base_cfg();
        cfg.fake_hosts = 10;
        cfg.quota.instances = 1000;
        cfg.quota.cores = 1000;
        cfg.quota.ram = 1_000_000;
        let c = Cloud::start(engine, cfg).await;
        let flavor = c.flavor("tiny", 1, 256, 1).await;
        let started = std::time::Instant::now();
        let mut ids = Vec::new();
        for n in 0..60 {
            ids.push(c.server(ALICE, &format!("s{n}"), &flavor).await);
        }
        for id in &ids {
            c.wait_status(id, "ACTIVE").await;
        }
        eprintln!(
            "{engine:?}: 60 servers ACTIVE on 10 fake hosts in {:?}",
            started.elapsed()
        );
        let nodes = db::hosts::node_list(&mut *conn(&c.db).await)
            .await
            .expect("nodes");
        assert_eq!(nodes.iter().map(|n| n.running_vms).sum::<i64>(), 60);
        assert_eq!(
            nodes.iter().map(|n| n.memory_mb_used).sum::<i64>(),
            60 * 256
        );
        // Spread: every host got some.
        assert!(nodes.iter().all(|n| n.running_vms > 0), "{nodes:?}");
        let (_, v) = c.get("/v2.1/limits", ALICE).await;
        assert_eq!(v["limits"]["absolute"]["totalInstancesUsed"], 60);
        for id in &ids {
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
        }
        for id in &ids {
            c.wait_gone(id).await;
        }
        c.wait_ram_used(0).await;
        c.stop().await;
    }
}

/// From 2.37 on `networks` is required (Nova's schema); before, a missing
/// `networks` still means `auto`. A rejected create leaves nothing.
#[tokio::test]
async fn networks_is_required_from_2_37() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let small = c.flavor("small", 1, 512, 1).await;
        let mut without = server_body("vm", &small);
        without["server"]
            .as_object_mut()
            .expect("server")
            .remove("networks");
        for v in ["2.37", "2.96"] {
            let (s, body, _) = c
                .call(
                    Method::POST,
                    "/v2.1/servers",
                    ALICE,
                    Some(without.clone()),
                    Some(v),
                )
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{v}: {body}");
            let m = body["badRequest"]["message"].as_str().expect("message");
            assert!(
                m.starts_with("Invalid input for field/attribute server. Value: {")
                    && m.contains("'name': 'vm'")
                    && m.ends_with("}. 'networks' is a required property"),
                "{m}"
            );
        }
        assert_eq!(
            db::instances::instance_usage(&mut *conn(&c.db).await, "p-alice")
                .await
                .expect("usage")
                .0,
            0
        );
        let mut ids = Vec::new();
        for (v, networks) in [
            ("2.36", None),
            ("2.1", None),
            ("2.37", Some(json!("auto"))),
            ("2.37", Some(json!("none"))),
        ] {
            let mut b = without.clone();
            if let Some(n) = networks {
                b["server"]["networks"] = n;
            }
            let (s, body, _) = c
                .call(Method::POST, "/v2.1/servers", ALICE, Some(b), Some(v))
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}: {body}");
            ids.push(body["server"]["id"].as_str().expect("id").to_owned());
        }
        for id in &ids {
            c.wait_status(id, "ACTIVE").await;
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
            c.wait_gone(id).await;
        }
        c.stop().await;
    }
}

/// Nova's `[quota] recheck_quota`: many creates at once against a small
/// quota all pass the API's first check, but after writing their rows
/// each counts again and removes its own when over. Never more than the
/// limit exist, every rejected request got Nova's 403 and nothing of it is
/// left (no instance row, action, claim or build).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_exceed_the_quota() {
    const LIMIT: usize = 3;
    const REQUESTS: usize = 24;
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let small = c.flavor("small", 1, 512, 1).await;
        let (s, _, _) = c
            .call(
                Method::PUT,
                "/v2.1/os-quota-sets/p-alice",
                ADMIN,
                Some(json!({"quota_set": {"instances": LIMIT}})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|n| {
                let router = c.router.clone();
                let body = server_body(&format!("vm{n}"), &small);
                tokio::spawn(async move {
                    request(
                        router,
                        Method::POST,
                        "/v2.1/servers",
                        ALICE,
                        Some(body),
                        None,
                    )
                    .await
                })
            })
            .collect();
        let mut created = Vec::new();
        for t in tasks {
            let (s, v, _) = t.await.expect("request task");
            match s {
                StatusCode::ACCEPTED => {
                    created.push(v["server"]["id"].as_str().expect("id").to_owned())
                }
                StatusCode::FORBIDDEN => {
                    assert_eq!(v["forbidden"]["code"], 403, "{v}");
                    let m = v["forbidden"]["message"].as_str().expect("message");
                    // On recheck Nova names every resource over its
                    // limit: with 24 rows at once, cores (20) too.
                    assert!(
                        m.starts_with("Quota exceeded for instances")
                            && m.contains("Requested 1")
                            && m.contains(&format!("of {LIMIT}")),
                        "{m}"
                    );
                }
                other => panic!("{engine:?}: {other} {v}"),
            }
        }
        assert!(
            created.len() <= LIMIT,
            "{engine:?}: {} servers with a quota of {LIMIT}",
            created.len()
        );
        // Nothing of the rejected ones: not even a purged row's action.
        let count = |sql: &'static str| {
            let pool = c.db.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind("p-alice")
                    .fetch_one(&pool)
                    .await
                    .expect("count")
            }
        };
        let made = created.len() as i64;
        assert_eq!(
            count("SELECT COUNT(*) FROM instances WHERE project_id = $1").await,
            made
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM instance_actions WHERE project_id = $1").await,
            made
        );
        // Every request's launch saga ended (placements and builds go on).
        let unfinished = db::sagas::saga_unfinished(&mut *conn(&c.db).await)
            .await
            .expect("sagas");
        assert!(
            unfinished.iter().all(|s| s.kind != "launch"),
            "{unfinished:?}"
        );
        for id in &created {
            c.wait_status(id, "ACTIVE").await;
        }
        // Only the accepted ones were scheduled and claimed.
        c.wait_ram_used(512 * made).await;
        // The quota the rejected ones briefly held is free again.
        for n in created.len()..LIMIT {
            created.push(c.server(ALICE, &format!("more{n}"), &small).await);
        }
        let (s, v) = c
            .post("/v2.1/servers", ALICE, server_body("one-too-many", &small))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(
            v["forbidden"]["message"],
            format!("Quota exceeded for instances: Requested 1, but already used {LIMIT} of {LIMIT} instances")
        );
        for id in &created {
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
            c.wait_gone(id).await;
        }
        c.wait_ram_used(0).await;
        c.stop().await;
    }
}

/// `changes-since` / `changes-before` filter on the last change and, as in
/// Nova, list recently deleted servers too (status DELETED).
#[tokio::test]
async fn changes_since_lists_recent_changes_with_deleted_servers() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let since = stratus_common::time::iso_seconds(stratus_common::time::now());
        let keep = c.server(ALICE, "keep", &flavor).await;
        let gone = c.server(ALICE, "gone", &flavor).await;
        c.wait_status(&keep, "ACTIVE").await;
        c.wait_status(&gone, "ACTIVE").await;
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{gone}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&gone).await;

        let (_, v) = c.get("/v2.1/servers/detail", ALICE).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1));
        let (s, v) = c
            .get(
                &format!("/v2.1/servers/detail?changes-since={since}"),
                ALICE,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let mut seen: Vec<(String, String)> = v["servers"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|s| {
                        (
                            s["id"].as_str().unwrap_or_default().to_owned(),
                            s["status"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        seen.sort();
        let mut want = vec![
            (keep.clone(), "ACTIVE".to_owned()),
            (gone.clone(), "DELETED".to_owned()),
        ];
        want.sort();
        assert_eq!(seen, want);
        let (_, v) = c
            .get("/v2.1/servers?changes-since=2999-01-01T00:00:00Z", ALICE)
            .await;
        assert_eq!(v["servers"], json!([]));
        let (s, v) = c
            .get_v("/v2.1/servers?changes-before=2000-01-01", ALICE, "2.66")
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["servers"], json!([]));
        // BOB sees none of ALICE's, deleted or not.
        let (_, v) = c
            .get(&format!("/v2.1/servers?changes-since={since}"), BOB)
            .await;
        assert_eq!(v["servers"], json!([]));
        c.stop().await;
    }
}
