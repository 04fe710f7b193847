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
        assert_eq!(h["x-compute-request-id"], h["x-openstack-request-id"]);
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
        // No access entry to start with, not even the creator's project.
        let (s, v) = c
            .get(&format!("/v2.1/flavors/{pid}/os-flavor-access"), ADMIN)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["flavor_access"], json!([]), "{v}");
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

/// The list query checks of Nova's JSON schemas (`schemas/servers.py`,
/// `schemas/flavors.py`) and of its handlers, per microversion.
#[tokio::test]
async fn list_queries_are_validated_as_nova_does() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let bad =
            |v: &serde_json::Value| v["badRequest"]["message"].as_str().unwrap_or("").to_owned();

        // status: an unknown one matches nothing before 2.38, then is a 400;
        // a status Nova knows but no server here has is just empty.
        let (s, v) = c.get("/v2.1/servers/detail?status=bogus", ALICE).await;
        assert_eq!(
            (s, v["servers"].clone()),
            (StatusCode::OK, serde_json::json!([]))
        );
        let (s, v) = c
            .get_v("/v2.1/servers/detail?status=bogus", ALICE, "2.38")
            .await;
        assert_eq!(
            (s, bad(&v)),
            (StatusCode::BAD_REQUEST, "Invalid status value".to_owned())
        );
        let (s, v) = c
            .get_v("/v2.1/servers/detail?status=resize", ALICE, "2.38")
            .await;
        assert_eq!(
            (s, v["servers"].clone()),
            (StatusCode::OK, serde_json::json!([]))
        );

        // sort_key: an enum from 2.1; Nova's ignored keys pass until 2.75.
        let (s, v) = c.get("/v2.1/servers/detail?sort_key=bogus", ALICE).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let m = bad(&v);
        assert!(
            m.starts_with(
                "Invalid input for query parameters sort_key. Value: bogus. 'bogus' is not one of ['access_ip_v4', "
            ),
            "{m}"
        );
        assert_eq!(
            c.get("/v2.1/servers?sort_key=bogus", ALICE).await.0,
            StatusCode::BAD_REQUEST
        );
        for ok in ["display_name", "uuid", "id", "deleted", "locked"] {
            let (s, v) = c
                .get(&format!("/v2.1/servers/detail?sort_key={ok}"), ALICE)
                .await;
            assert_eq!(s, StatusCode::OK, "{ok}: {v}");
        }
        let (s, v) = c
            .get_v("/v2.1/servers/detail?sort_key=id", ALICE, "2.75")
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            bad(&v).starts_with("Invalid input for query parameters sort_key. Value: id."),
            "{v}"
        );
        assert_eq!(
            c.get_v("/v2.1/servers/detail?sort_key=locked", ALICE, "2.75")
                .await
                .0,
            StatusCode::OK
        );
        // host and node: admins only.
        let (s, v) = c.get("/v2.1/servers/detail?sort_key=host", ALICE).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(
            v["forbidden"]["message"],
            "Only administrators can sort servers by host"
        );
        assert_eq!(
            c.get("/v2.1/servers/detail?sort_key=host", ADMIN).await.0,
            StatusCode::OK
        );
        let (s, v) = c.get("/v2.1/servers/detail?sort_dir=up", ALICE).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            bad(&v),
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"
        );

        // changes-since: an ISO 8601 date-time; changes-before from 2.66.
        let (s, v) = c
            .get("/v2.1/servers/detail?changes-since=bogus", ALICE)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "Invalid input for query parameters changes-since. Value: bogus. 'bogus' is not a 'date-time'"
        );
        for ok in [
            "2024-01-02T03:04:05Z",
            "2024-01-02",
            "2024-01-02T03:04:05.123456%2B01:00",
        ] {
            let (s, v) = c
                .get(&format!("/v2.1/servers/detail?changes-since={ok}"), ALICE)
                .await;
            assert_eq!(s, StatusCode::OK, "{ok}: {v}");
        }
        assert_eq!(
            c.get("/v2.1/servers/detail?changes-since=2024-13-01", ALICE)
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        // Before 2.66 the schema does not know changes-before: ignored.
        assert_eq!(
            c.get("/v2.1/servers/detail?changes-before=bogus", ALICE)
                .await
                .0,
            StatusCode::OK
        );
        let (s, v) = c
            .get_v("/v2.1/servers/detail?changes-before=bogus", ALICE, "2.66")
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "Invalid input for query parameters changes-before. Value: bogus. 'bogus' is not a 'date-time'"
        );
        let (s, v) = c
            .get_v(
                "/v2.1/servers/detail?changes-since=2024-02-01&changes-before=2024-01-01",
                ALICE,
                "2.66",
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "The value of changes-since must be less than or equal to changes-before."
        );

        // all_tenants: present and empty is true; otherwise oslo's booleans.
        let (s, v) = c.get("/v2.1/servers/detail?all_tenants=maybe", ADMIN).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', \
             'off', 'on', 't', 'true', 'y', 'yes'"
        );
        assert_eq!(
            c.get("/v2.1/servers?all_tenants=maybe", ALICE).await.0,
            StatusCode::BAD_REQUEST
        );
        for ok in ["", "1", "True", "no", "off"] {
            let (s, v) = c
                .get(&format!("/v2.1/servers/detail?all_tenants={ok}"), ADMIN)
                .await;
            assert_eq!(s, StatusCode::OK, "{ok}: {v}");
        }
        assert_eq!(
            c.get("/v2.1/servers/detail?all_tenants=0", ALICE).await.0,
            StatusCode::OK
        );
        let (s, v) = c.get("/v2.1/servers/detail?all_tenants=1", ALICE).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(
            v["forbidden"]["message"],
            "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants to be performed."
        );

        // Unknown parameters: ignored until 2.75, 400 from it.
        assert_eq!(
            c.get("/v2.1/servers/detail?bogus=1", ALICE).await.0,
            StatusCode::OK
        );
        let (s, v) = c.get_v("/v2.1/servers/detail?bogus=1", ALICE, "2.75").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "Additional properties are not allowed ('bogus' was unexpected)"
        );
        assert_eq!(
            c.get_v(
                "/v2.1/servers/detail?name=x&locked=false&changes-before=2030-01-01",
                ALICE,
                "2.96"
            )
            .await
            .0,
            StatusCode::OK
        );
        // Joined-table filters: refused by the handler (for an admin, whose
        // filters Nova does not strip).
        let (s, v) = c.get("/v2.1/servers/detail?metadata=x", ADMIN).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(bad(&v), "Invalid filter field: metadata.");

        // Flavors: sort_key and sort_dir are enums at every version.
        let (s, v) = c.get("/v2.1/flavors?sort_key=bogus", ALICE).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "Invalid input for query parameters sort_key. Value: bogus. 'bogus' is not one of \
             ['created_at', 'description', 'disabled', 'ephemeral_gb', 'flavorid', 'id', 'is_public', \
             'memory_mb', 'name', 'root_gb', 'rxtx_factor', 'swap', 'updated_at', 'vcpu_weight', 'vcpus']"
        );
        let (s, v) = c.get("/v2.1/flavors/detail?sort_dir=up", ALICE).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "Invalid input for query parameters sort_dir. Value: up. 'up' is not one of ['asc', 'desc']"
        );
        // minRam/minDisk: any string Python's int() reads; Nova takes -1
        // (every flavor has root_gb >= -1).
        let small = c.flavor("small", 1, 512, 1).await;
        let big = c.flavor("big", 4, 4096, 40).await;
        let (s, v) = c.get("/v2.1/flavors?minDisk=-1", ALICE).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["flavors"].as_array().map(Vec::len), Some(2));
        let (s, v) = c.get("/v2.1/flavors?minDisk=10", ALICE).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["flavors"][0]["id"], big.as_str());
        assert_eq!(v["flavors"].as_array().map(Vec::len), Some(1));
        let (s, v) = c.get("/v2.1/flavors?minDisk=abc", ALICE).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(bad(&v), "Invalid minDisk filter [abc]");
        assert_eq!(
            bad(&c.get("/v2.1/flavors?minRam=1.5", ALICE).await.1),
            "Invalid minRam filter [1.5]"
        );
        // Sorting as asked.
        let (_, v) = c
            .get(
                "/v2.1/flavors/detail?sort_key=memory_mb&sort_dir=desc",
                ALICE,
            )
            .await;
        let ids: Vec<&str> = v["flavors"]
            .as_array()
            .map(|l| l.iter().filter_map(|f| f["id"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(ids, vec![big.as_str(), small.as_str()]);
        // Unknown parameters: ignored until 2.75.
        assert_eq!(
            c.get("/v2.1/flavors?bogus=1", ALICE).await.0,
            StatusCode::OK
        );
        let (s, v) = c.get_v("/v2.1/flavors?bogus=1", ALICE, "2.75").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            bad(&v),
            "Additional properties are not allowed ('bogus' was unexpected)"
        );
        c.stop().await;
    }
}
