//! Whose servers a caller sees (issue 9): a token without a project sees
//! none (it used to mean "no project filter", every project's), an admin
//! sees other projects' only with `all_tenants`.

use axum::http::StatusCode;
use serde_json::json;

use super::harness::*;

#[tokio::test]
async fn tokens_without_a_project_get_403_not_everything() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let (s, v) = c
            .post(
                "/v2.1/os-server-groups",
                ALICE,
                json!({"server_group": {"name": "g", "policies": ["affinity"]}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let group = v["server_group"]["id"].as_str().expect("id").to_owned();

        for token in [UNSCOPED, DOMAIN_ADMIN] {
            for path in [
                "/v2.1/servers".to_owned(),
                "/v2.1/servers/detail".to_owned(),
                "/v2.1/servers/detail?all_tenants=1".to_owned(),
                format!("/v2.1/servers/{id}"),
                format!("/v2.1/servers/{id}/metadata"),
                format!("/v2.1/servers/{id}/os-instance-actions"),
                "/v2.1/os-server-groups".to_owned(),
                "/v2.1/os-server-groups?all_projects=1".to_owned(),
                format!("/v2.1/os-server-groups/{group}"),
                "/v2.1/limits".to_owned(),
            ] {
                let (s, v) = c.get(&path, token).await;
                assert_eq!(s, StatusCode::FORBIDDEN, "{token} {path}: {v}");
                assert_eq!(v["forbidden"]["code"], 403, "{token} {path}: {v}");
                assert!(!v.to_string().contains(&id), "{token} {path}: {v}");
            }
            let (s, v) = c
                .post(
                    &format!("/v2.1/servers/{id}/action"),
                    token,
                    json!({"os-stop": null}),
                )
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{token}: {v}");
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), token).await,
                StatusCode::FORBIDDEN
            );
        }

        // An admin sees its own project's unless it asks for all; without
        // all_tenants `project_id` does not widen it (Nova drops it).
        let (_, v) = c.get("/v2.1/servers?project_id=p-alice", ADMIN).await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(0), "{v}");
        let (_, v) = c
            .get("/v2.1/servers?all_tenants=1&project_id=p-alice", ADMIN)
            .await;
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(1), "{v}");
        let (_, v) = c.get("/v2.1/os-server-groups?all_projects=1", ADMIN).await;
        assert_eq!(v["server_groups"].as_array().map(Vec::len), Some(1), "{v}");
        // A member asking for all projects' server groups gets its own
        // (Nova's soft check), for all tenants' servers a 403.
        let (s, v) = c.get("/v2.1/os-server-groups?all_projects=1", BOB).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["server_groups"].as_array().map(Vec::len), Some(0), "{v}");
        let (s, _) = c.get("/v2.1/servers?all_tenants=1", BOB).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        c.stop().await;
    }
}

/// A system-scoped admin is the cloud administrator (Keystone's system
/// scope, Nova with `enforce_scope = False`): every project's servers with
/// `all_tenants`, without it the servers its user made (Nova's
/// `search_opts['user_id']` for a context without a project).
#[tokio::test]
async fn a_system_admin_sees_every_project() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let alices = c.server(ALICE, "vm-a", &flavor).await;
        let admins = c.server(ADMIN, "vm-admin", &flavor).await;
        c.wait_status(&alices, "ACTIVE").await;
        c.wait_status(&admins, "ACTIVE").await;

        let (s, v) = c
            .get("/v2.1/servers/detail?all_tenants=1", SYSTEM_ADMIN)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(2), "{v}");
        let (s, v) = c.get("/v2.1/servers", SYSTEM_ADMIN).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let ids: Vec<&str> = v["servers"]
            .as_array()
            .expect("servers")
            .iter()
            .filter_map(|x| x["id"].as_str())
            .collect();
        assert_eq!(ids, vec![admins.as_str()], "{v}");
        let (s, _) = c
            .get(&format!("/v2.1/servers/{alices}"), SYSTEM_ADMIN)
            .await;
        assert_eq!(s, StatusCode::OK);

        // A system reader is no administrator.
        for path in ["/v2.1/servers", "/v2.1/servers/detail?all_tenants=1"] {
            let (s, v) = c.get(path, SYSTEM_READER).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        }
        c.stop().await;
    }
}
