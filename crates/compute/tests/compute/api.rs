//! API behaviour that needs no launch: versions, microversions, error
//! bodies, flavors, key pairs, quotas, operator views and policy.

use axum::http::{Method, StatusCode};
use serde_json::json;

use super::harness::*;

#[tokio::test]
async fn versions_microversions_and_errors() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let (s, v) = c.get("/", "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["versions"][0]["id"], "v2.0");
        assert_eq!(v["versions"][1]["id"], "v2.1");
        let (s, v) = c.get("/v2.1", "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["version"]["min_version"], "2.1");
        assert_eq!(v["version"]["version"], "2.96");
        assert_eq!(c.get("/v2.1/", "").await.0, StatusCode::OK);

        let (s, _, h) = c
            .call(Method::GET, "/v2.1/flavors", ADMIN, None, Some("2.61"))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["openstack-api-version"], "compute 2.61");
        assert_eq!(h["x-openstack-nova-api-version"], "2.61");
        assert!(h["vary"]
            .to_str()
            .expect("vary")
            .contains("OpenStack-API-Version"));
        assert!(h.contains_key("x-openstack-request-id"));
        let (_, _, h) = c
            .call(Method::GET, "/v2.1/flavors", ADMIN, None, Some("latest"))
            .await;
        assert_eq!(h["openstack-api-version"], "compute 2.96");

        let (s, v, _) = c
            .call(Method::GET, "/v2.1/flavors", ADMIN, None, Some("3.0"))
            .await;
        assert_eq!(s, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(v["notAcceptable"]["code"], 406);
        let (s, v, _) = c
            .call(Method::GET, "/v2.1/flavors", ADMIN, None, Some("2.x"))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        assert_eq!(
            c.get("/v2.1/servers", "bad").await.0,
            StatusCode::UNAUTHORIZED
        );
        let (s, v) = c.get("/v2.1/servers/not-a-uuid", ALICE).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v["itemNotFound"]["code"], 404);
        let (s, v) = c.get("/v2.1/nothing-here", ALICE).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

        // Malformed bodies get Nova's 400, never a 500.
        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/servers",
                ALICE,
                Some(json!("{not json")),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = c
            .post("/v2.1/servers", ALICE, json!({"server": {"name": "x"}}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(v["badRequest"]["code"], 400);
        c.stop().await;
    }
}

#[tokio::test]
async fn flavors_crud_extra_specs_access_and_policy() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        // What `openstack flavor create` sends, at 2.61.
        let body = json!({"flavor": {"name": "F", "ram": 512, "vcpus": 1, "disk": 1, "id": null, "swap": 0,
            "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": true}});
        let (s, _, _) = c
            .call(
                Method::POST,
                "/v2.1/flavors",
                ALICE,
                Some(body.clone()),
                Some("2.61"),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/flavors",
                ADMIN,
                Some(body.clone()),
                Some("2.61"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let id = v["flavor"]["id"].as_str().expect("id").to_owned();
        assert_eq!(v["flavor"]["extra_specs"], json!({}));
        assert_eq!(v["flavor"]["swap"], "");
        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/flavors",
                ADMIN,
                Some(body),
                Some("2.61"),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        assert_eq!(v["conflictingRequest"]["code"], 409);
        let (s, v) = c
            .post(
                "/v2.1/flavors",
                ADMIN,
                json!({"flavor": {"name": "G", "ram": 0, "vcpus": 1, "disk": 1}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        let (s, v) = c.get("/v2.1/flavors/detail?is_public=None", ALICE).await;
        assert_eq!(s, StatusCode::OK);
        assert!(v["flavors"]
            .as_array()
            .expect("list")
            .iter()
            .any(|f| f["name"] == "F"));
        assert_eq!(v["flavors"][0]["swap"], "");
        assert_eq!(
            c.get(&format!("/v2.1/flavors/{id}"), ALICE).await.0,
            StatusCode::OK
        );
        assert_eq!(
            c.get("/v2.1/flavors/F", ALICE).await.0,
            StatusCode::NOT_FOUND
        );

        let (s, v) = c
            .post(
                &format!("/v2.1/flavors/{id}/os-extra_specs"),
                ADMIN,
                json!({"extra_specs": {"hw:cpu_policy": "shared"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, v) = c.get_v(&format!("/v2.1/flavors/{id}"), ALICE, "2.61").await;
        assert_eq!(v["flavor"]["extra_specs"]["hw:cpu_policy"], "shared");
        assert_eq!(
            c.delete(
                &format!("/v2.1/flavors/{id}/os-extra_specs/hw:cpu_policy"),
                ADMIN
            )
            .await,
            StatusCode::ACCEPTED
        );

        // A private flavor is visible only to projects given access.
        let (s, v) = c
            .post(
                "/v2.1/flavors",
                ADMIN,
                json!({"flavor": {"name": "P", "ram": 64, "vcpus": 1, "disk": 0,
                "os-flavor-access:is_public": false}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        let pid = v["flavor"]["id"].as_str().expect("id").to_owned();
        assert_eq!(
            c.get(&format!("/v2.1/flavors/{pid}"), ALICE).await.0,
            StatusCode::NOT_FOUND
        );
        let (s, v) = c
            .post(
                &format!("/v2.1/flavors/{pid}/action"),
                ADMIN,
                json!({"addTenantAccess": {"tenant": "p-alice"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["flavor_access"]
            .as_array()
            .expect("list")
            .iter()
            .any(|a| a["tenant_id"] == "p-alice"));
        assert_eq!(
            c.get(&format!("/v2.1/flavors/{pid}"), ALICE).await.0,
            StatusCode::OK
        );
        assert_eq!(
            c.get(&format!("/v2.1/flavors/{pid}"), BOB).await.0,
            StatusCode::NOT_FOUND
        );

        assert_eq!(
            c.delete(&format!("/v2.1/flavors/{id}"), ALICE).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            c.delete(&format!("/v2.1/flavors/{id}"), ADMIN).await,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            c.get(&format!("/v2.1/flavors/{id}"), ADMIN).await.0,
            StatusCode::NOT_FOUND
        );
        c.stop().await;
    }
}

const PUBKEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@stratus";

#[tokio::test]
async fn keypairs_quotas_limits_and_operator_views() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/os-keypairs",
                ALICE,
                Some(json!({"keypair": {"name": "k1", "public_key": PUBKEY}})),
                Some("2.10"),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["keypair"]["type"], "ssh");
        assert_eq!(
            v["keypair"]["fingerprint"]
                .as_str()
                .map(|f| f.split(':').count()),
            Some(16)
        );
        let (s, _) = c
            .post(
                "/v2.1/os-keypairs",
                ALICE,
                json!({"keypair": {"name": "k1", "public_key": PUBKEY}}),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, _) = c
            .post(
                "/v2.1/os-keypairs",
                ALICE,
                json!({"keypair": {"name": "k2", "public_key": "ssh-rsa garbage"}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (_, v) = c.get("/v2.1/os-keypairs", ALICE).await;
        assert_eq!(v["keypairs"][0]["keypair"]["name"], "k1");
        assert_eq!(
            c.get("/v2.1/os-keypairs/k1", BOB).await.0,
            StatusCode::NOT_FOUND
        );

        // Quotas: members read their own, admins write.
        let (s, v) = c.get("/v2.1/os-quota-sets/p-alice", ALICE).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["quota_set"]["instances"], 10);
        assert_eq!(
            c.get("/v2.1/os-quota-sets/p-bob", ALICE).await.0,
            StatusCode::FORBIDDEN
        );
        let (s, _, _) = c
            .call(
                Method::PUT,
                "/v2.1/os-quota-sets/p-alice",
                ALICE,
                Some(json!({"quota_set": {"instances": 50}})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v, _) = c
            .call(
                Method::PUT,
                "/v2.1/os-quota-sets/p-alice",
                ADMIN,
                Some(json!({"quota_set": {"cores": 4}})),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["quota_set"]["cores"], 4);
        let (_, v) = c.get("/v2.1/os-quota-sets/p-alice/defaults", ALICE).await;
        assert_eq!(v["quota_set"]["cores"], 20);
        let (_, v) = c.get("/v2.1/limits", ALICE).await;
        assert_eq!(v["limits"]["absolute"]["maxTotalCores"], 4);
        assert_eq!(v["limits"]["absolute"]["totalInstancesUsed"], 0);

        // Operator views: admin only; agents registered and up.
        assert_eq!(
            c.get("/v2.1/os-hypervisors", ALICE).await.0,
            StatusCode::FORBIDDEN
        );
        let (s, v) = c.get_v("/v2.1/os-hypervisors/detail", ADMIN, "2.53").await;
        assert_eq!(s, StatusCode::OK);
        let hvs = v["hypervisors"].as_array().expect("list");
        assert_eq!(hvs.len(), 2);
        assert!(hvs
            .iter()
            .all(|h| h["state"] == "up" && h["memory_mb"] == 8192));
        let (_, v) = c.get_v("/v2.1/os-services", ADMIN, "2.53").await;
        let computes: Vec<_> = v["services"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|s| s["binary"] == "nova-compute")
            .cloned()
            .collect();
        assert_eq!(computes.len(), 2);
        assert!(computes
            .iter()
            .all(|s| s["state"] == "up" && s["zone"] == "nova"));
        assert_eq!(
            c.get("/v2.1/os-services", ALICE).await.0,
            StatusCode::FORBIDDEN
        );
        let (_, v) = c.get("/v2.1/os-availability-zone", ALICE).await;
        assert_eq!(v["availabilityZoneInfo"][0]["zoneName"], "nova");
        let (s, v) = c.get("/v2.1/os-availability-zone/detail", ADMIN).await;
        assert_eq!(s, StatusCode::OK);
        assert!(v["availabilityZoneInfo"]
            .as_array()
            .expect("zones")
            .iter()
            .any(|z| z["zoneName"] == "internal"));

        // Server groups.
        let (s, v, _) = c
            .call(
                Method::POST,
                "/v2.1/os-server-groups",
                ALICE,
                Some(json!({"server_group": {"name": "g", "policy": "anti-affinity"}})),
                Some("2.64"),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let gid = v["server_group"]["id"].as_str().expect("id").to_owned();
        let (s, v) = c
            .post(
                "/v2.1/os-server-groups",
                ALICE,
                json!({"server_group": {"name": "g", "policies": ["bogus"]}}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            c.get(&format!("/v2.1/os-server-groups/{gid}"), BOB).await.0,
            StatusCode::NOT_FOUND
        );
        let (_, v) = c.get("/v2.1/os-server-groups", ALICE).await;
        assert_eq!(v["server_groups"][0]["policies"], json!(["anti-affinity"]));
        assert_eq!(
            c.delete(&format!("/v2.1/os-server-groups/{gid}"), ALICE)
                .await,
            StatusCode::NO_CONTENT
        );
        c.stop().await;
    }
}
