//! Issue 12 through the router, on SQLite and PostgreSQL: security groups
//! on servers (create, add, remove) against a network stand-in that keeps
//! groups and ports, `os-resetState` and `injectNetworkInfo`, server tags
//! (2.26+, with the list filters and tags on create at 2.52) and
//! `/servers/{id}/ips`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_common::RequestContext;
use stratus_compute::bus::Bus;
use stratus_compute::clients::{
    FixedIpInfo, NetworkApi, PortGroups, PortInfo, SecurityGroup, SecurityGroupRef,
    SecurityGroupRule, VifInfo,
};
use stratus_compute::error::{ComputeError, Result};
use stratus_compute::AgentServices;

use super::harness::*;

/// A group: id, name, project.
type Group = (String, String, String);

/// A network service that knows security groups and keeps the ports it
/// makes (one network, `net1`, addresses 10.0.0.x).
#[derive(Default)]
struct Networks {
    groups: Vec<Group>,
    /// Port id, device id, group ids.
    ports: Mutex<Vec<(String, String, Vec<String>)>>,
}

impl Networks {
    fn with_groups() -> Self {
        let g = |id: &str, name: &str, p: &str| (id.to_owned(), name.to_owned(), p.to_owned());
        Networks {
            groups: vec![
                g("sg-default-alice", "default", "p-alice"),
                g("sg-web", "web", "p-alice"),
                g("sg-db", "db", "p-alice"),
                g("sg-dup1", "dup", "p-alice"),
                g("sg-dup2", "dup", "p-alice"),
                g("sg-bob", "bobs", "p-bob"),
            ],
            ..Networks::default()
        }
    }

    fn ports_of(&self, device: &str) -> Vec<Vec<String>> {
        self.ports
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|(_, d, _)| d == device)
                    .map(|(_, _, g)| g.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait]
impl NetworkApi for Networks {
    async fn networks_validate(&self, _: &RequestContext, _: &[String]) -> Result<()> {
        Ok(())
    }
    async fn network_auto(&self, _: &RequestContext) -> Result<Option<String>> {
        Ok(Some(NETWORK.to_owned()))
    }
    async fn port_check(&self, _: &RequestContext, _: &str) -> Result<String> {
        Ok(NETWORK.to_owned())
    }
    async fn port_create(
        &self,
        _: &str,
        network: &str,
        instance: &str,
        project: &str,
        groups: &[String],
    ) -> Result<Option<PortInfo>> {
        let ids: Vec<String> = if groups.is_empty() || groups == ["default"] {
            vec![format!("sg-default-{}", project.trim_start_matches("p-"))]
        } else {
            groups
                .iter()
                .map(|n| {
                    self.groups
                        .iter()
                        .find(|(_, name, p)| name == n && p == project)
                        .map(|g| g.0.clone())
                        .ok_or_else(|| ComputeError::BadRequest(format!("no group {n}")))
                })
                .collect::<Result<_>>()?
        };
        let id = uuid::Uuid::new_v4().to_string();
        if let Ok(mut p) = self.ports.lock() {
            p.push((id.clone(), instance.to_owned(), ids));
        }
        Ok(Some(PortInfo {
            id,
            network_id: network.to_owned(),
            device_id: instance.to_owned(),
            ..PortInfo::default()
        }))
    }
    async fn security_group_find(
        &self,
        ctx: &RequestContext,
        name_or_id: &str,
    ) -> Result<SecurityGroupRef> {
        let project = ctx.project_id.as_ref().map(|p| p.as_str()).unwrap_or("");
        let found: Vec<&Group> = match self.groups.iter().find(|g| g.0 == name_or_id) {
            Some(g) => vec![g],
            None => self
                .groups
                .iter()
                .filter(|g| g.1 == name_or_id && g.2 == project)
                .collect(),
        };
        match found.as_slice() {
            [g] => Ok(SecurityGroupRef {
                id: g.0.clone(),
                name: g.1.clone(),
            }),
            [] => Err(ComputeError::NotFound(format!(
                "Unable to find security_group with name or id '{name_or_id}'"
            ))),
            _ => Err(ComputeError::Conflict(format!(
                "Multiple security_group matches found for name '{name_or_id}', use an ID to be more specific."
            ))),
        }
    }
    async fn server_ports(&self, _: &RequestContext, instance: &str) -> Result<Vec<PortGroups>> {
        Ok(self
            .ports
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|(_, d, _)| d == instance)
                    .map(|(id, _, g)| PortGroups {
                        id: id.clone(),
                        security_groups: g.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
    async fn security_groups(&self, _: &RequestContext) -> Result<Vec<SecurityGroup>> {
        let rule = |id: &str, group: &str, direction: &str| SecurityGroupRule {
            id: id.to_owned(),
            security_group_id: group.to_owned(),
            direction: direction.to_owned(),
            ..SecurityGroupRule::default()
        };
        Ok(self
            .groups
            .iter()
            .map(|(id, name, project)| SecurityGroup {
                id: id.clone(),
                name: name.clone(),
                project_id: project.clone(),
                description: format!("{name} servers"),
                security_group_rules: match id.as_str() {
                    "sg-web" => vec![
                        SecurityGroupRule {
                            protocol: Some("tcp".into()),
                            port_range_min: Some(80),
                            port_range_max: Some(80),
                            remote_ip_prefix: Some("0.0.0.0/0".into()),
                            ..rule("r-http", "sg-web", "ingress")
                        },
                        rule("r-out", "sg-web", "egress"),
                    ],
                    "sg-db" => vec![SecurityGroupRule {
                        protocol: Some("tcp".into()),
                        remote_group_id: Some("sg-web".into()),
                        ..rule("r-db", "sg-db", "ingress")
                    }],
                    _ => Vec::new(),
                },
            })
            .collect())
    }
    async fn port_set_security_groups(
        &self,
        _: &RequestContext,
        port: &str,
        groups: &[String],
    ) -> Result<()> {
        if let Ok(mut p) = self.ports.lock() {
            for (id, _, g) in p.iter_mut() {
                if id == port {
                    *g = groups.to_vec();
                }
            }
        }
        Ok(())
    }
    async fn port_bind(
        &self,
        _: &str,
        port: &str,
        _: &str,
        instance: &str,
        _: &str,
    ) -> Result<PortInfo> {
        Ok(PortInfo {
            id: port.to_owned(),
            network_id: NETWORK.to_owned(),
            device_id: instance.to_owned(),
            ..PortInfo::default()
        })
    }
    async fn port_unbind(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn port_delete(&self, _: &str, port: &str) -> Result<()> {
        if let Ok(mut p) = self.ports.lock() {
            p.retain(|(id, _, _)| id != port);
        }
        Ok(())
    }
    async fn ports_of(&self, _: &str, instance: &str) -> Result<Vec<String>> {
        Ok(self
            .ports
            .lock()
            .map(|p| {
                p.iter()
                    .filter(|(_, d, _)| d == instance)
                    .map(|(id, _, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default())
    }
    async fn vif_info(&self, _: &str, port: &PortInfo) -> Result<VifInfo> {
        Ok(VifInfo {
            port_id: port.id.clone(),
            network_id: NETWORK.to_owned(),
            network_name: "net1".to_owned(),
            mac_address: "fa:16:3e:00:00:01".to_owned(),
            fixed_ips: vec![FixedIpInfo {
                subnet_id: "subnet1".to_owned(),
                address: "10.0.0.5".to_owned(),
                floating_ips: Vec::new(),
            }],
            ..VifInfo::default()
        })
    }
}

async fn cloud(engine: Engine) -> (Cloud, Arc<Networks>) {
    let nets = Arc::new(Networks::with_groups());
    let mut cfg = base_cfg();
    cfg.vif_plugging_timeout = 0;
    let dir = std::env::temp_dir().join(format!("stratus-extras-{}", uuid::Uuid::new_v4()));
    let ext = Ext {
        networks: nets.clone(),
        agent: Some(AgentServices {
            networks: nets.clone(),
            ..AgentServices::accept_all(dir)
        }),
        ..Ext::accept_all(Bus::in_memory())
    };
    (Cloud::start_custom(engine, cfg, None, ext).await, nets)
}

async fn call(
    c: &Cloud,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    v: &str,
) -> (StatusCode, Value) {
    let (s, b, _) = c.call(method, path, token, body, Some(v)).await;
    (s, b)
}

async fn server_with(c: &Cloud, flavor: &str, extra: Value, v: &str) -> (StatusCode, Value) {
    let mut body = server_body("vm", flavor);
    if let (Some(s), Some(e)) = (body["server"].as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            s.insert(k.clone(), x.clone());
        }
    }
    call(c, Method::POST, "/v2.1/servers", ALICE, Some(body), v).await
}

#[tokio::test]
async fn security_groups_on_create_add_and_remove() {
    for engine in engines().await {
        let (c, nets) = cloud(engine).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        // A group that does not exist: 400 with the network client's words.
        let (s, v) = server_with(
            &c,
            &flavor,
            json!({"security_groups": [{"name": "missing"}]}),
            "2.1",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(
            v["badRequest"]["message"],
            "Unable to find security_group with name or id 'missing'"
        );
        // Another project's group is not the caller's.
        let (s, _) = server_with(
            &c,
            &flavor,
            json!({"security_groups": [{"name": "bobs"}]}),
            "2.1",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, v) = server_with(
            &c,
            &flavor,
            json!({"security_groups": [{"name": "dup"}]}),
            "2.1",
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        // By name and by id: the server shows names, its port has the groups.
        let (s, v) = server_with(
            &c,
            &flavor,
            json!({"security_groups": [{"name": "web"}, {"name": "sg-db"}]}),
            "2.1",
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["server"]["id"].as_str().expect("id").to_owned();
        let shown = c.wait_status(&id, "ACTIVE").await;
        assert_eq!(
            shown["security_groups"],
            json!([{"name": "web"}, {"name": "db"}])
        );
        assert_eq!(
            nets.ports_of(&id),
            vec![vec!["sg-web".to_owned(), "sg-db".to_owned()]]
        );
        // No group named: Neutron's default.
        let plain = c.server(ALICE, "plain", &flavor).await;
        let shown = c.wait_status(&plain, "ACTIVE").await;
        assert_eq!(shown["security_groups"], json!([{"name": "default"}]));
        assert_eq!(
            nets.ports_of(&plain),
            vec![vec!["sg-default-alice".to_owned()]]
        );

        // Nova's view of the server's groups, ingress rules only.
        let (s, v) = c
            .get(&format!("/v2.1/servers/{id}/os-security-groups"), READER)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            v,
            json!({"security_groups": [
                {"id": "sg-web", "name": "web", "description": "web servers", "tenant_id": "p-alice",
                 "rules": [{"id": "r-http", "parent_group_id": "sg-web", "ip_protocol": "tcp",
                    "from_port": 80, "to_port": 80, "group": {}, "ip_range": {"cidr": "0.0.0.0/0"}}]},
                {"id": "sg-db", "name": "db", "description": "db servers", "tenant_id": "p-alice",
                 "rules": [{"id": "r-db", "parent_group_id": "sg-db", "ip_protocol": "tcp",
                    "from_port": 1, "to_port": 65535, "group": {"name": "web", "tenant_id": "p-alice"},
                    "ip_range": {}}]},
            ]})
        );
        let (s, _) = c
            .get(&format!("/v2.1/servers/{id}/os-security-groups"), BOB)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let action = |body: Value, token: &'static str| {
            let c = &c;
            let id = id.clone();
            async move {
                call(
                    c,
                    Method::POST,
                    &format!("/v2.1/servers/{id}/action"),
                    token,
                    Some(body),
                    "2.1",
                )
                .await
            }
        };
        let (s, _) = action(json!({"addSecurityGroup": {"name": "default"}}), ALICE).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert_eq!(
            nets.ports_of(&id),
            vec![vec![
                "sg-web".to_owned(),
                "sg-db".to_owned(),
                "sg-default-alice".to_owned()
            ]]
        );
        let (_, shown) = c.get(&format!("/v2.1/servers/{id}"), ALICE).await;
        assert_eq!(
            shown["server"]["security_groups"],
            json!([{"name": "web"}, {"name": "db"}, {"name": "default"}])
        );
        let (s, _) = action(json!({"removeSecurityGroup": {"name": "web"}}), ALICE).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        assert_eq!(
            nets.ports_of(&id),
            vec![vec!["sg-db".to_owned(), "sg-default-alice".to_owned()]]
        );
        // Nova's errors: unknown group 404, a group the server lacks 404,
        // an ambiguous name 409, a bad body 400, a reader 403.
        let (s, v) = action(json!({"addSecurityGroup": {"name": "nope"}}), ALICE).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(
            v["itemNotFound"]["message"],
            "Security group nope is not found for project p-alice"
        );
        let (s, v) = action(json!({"removeSecurityGroup": {"name": "web"}}), ALICE).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(
            v["itemNotFound"]["message"],
            format!("Security group web not associated with the instance {id}")
        );
        let (s, _) = action(json!({"addSecurityGroup": {"name": "dup"}}), ALICE).await;
        assert_eq!(s, StatusCode::CONFLICT);
        let (s, v) = action(json!({"addSecurityGroup": {}}), ALICE).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["badRequest"]["message"], "Security group not specified");
        let (s, _) = action(json!({"addSecurityGroup": {"name": "web"}}), READER).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = action(json!({"addSecurityGroup": {"name": "web"}}), BOB).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        c.stop().await;
    }
}

#[tokio::test]
async fn reset_state_and_inject_network_info_are_admin_actions() {
    for engine in engines().await {
        let (c, _) = cloud(engine).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let path = format!("/v2.1/servers/{id}/action");
        let post = |body: Value, token: &'static str| {
            let c = &c;
            let path = path.clone();
            async move { c.post(&path, token, body).await }
        };
        let (s, v) = post(json!({"os-resetState": {"state": "error"}}), ALICE).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(
            v["forbidden"]["message"],
            "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed."
        );
        for bad in [
            json!({"os-resetState": {"state": "stopped"}}),
            json!({"os-resetState": {}}),
        ] {
            let (s, _) = post(bad, ADMIN).await;
            assert_eq!(s, StatusCode::BAD_REQUEST);
        }
        let (s, _) = post(json!({"os-resetState": {"state": "error"}}), ADMIN).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let shown = c.wait_status(&id, "ERROR").await;
        assert_eq!(shown["OS-EXT-STS:vm_state"], "error");
        let (_, actions) = c
            .get(&format!("/v2.1/servers/{id}/os-instance-actions"), ADMIN)
            .await;
        let reset = actions["instanceActions"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["action"] == "resetState"))
            .cloned()
            .expect("a resetState action");
        let rid = reset["request_id"].as_str().expect("request id");
        let (_, detail) = c
            .get_v(
                &format!("/v2.1/servers/{id}/os-instance-actions/{rid}"),
                ADMIN,
                "2.62",
            )
            .await;
        assert_eq!(detail["instanceAction"]["user_id"], "u-admin", "{detail}");
        let (s, _) = post(json!({"os-resetState": {"state": "active"}}), ADMIN).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        c.wait_status(&id, "ACTIVE").await;
        let (s, _) = post(json!({"injectNetworkInfo": null}), ALICE).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = post(json!({"injectNetworkInfo": null}), ADMIN).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        c.stop().await;
    }
}

#[tokio::test]
async fn server_tags_as_nova_keeps_them() {
    for engine in engines().await {
        let (c, _) = cloud(engine).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        // Tags on create from 2.52, checked as tags.
        let (s, v) = server_with(&c, &flavor, json!({"tags": ["a,b"]}), "2.52").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = server_with(&c, &flavor, json!({"tags": ["blue", "red"]}), "2.52").await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let one = v["server"]["id"].as_str().expect("id").to_owned();
        let two = c.server(ALICE, "two", &flavor).await;
        c.wait_status(&one, "ACTIVE").await;
        c.wait_status(&two, "ACTIVE").await;
        let tags = format!("/v2.1/servers/{one}/tags");
        // Below 2.26 there are no tags.
        let (s, _) = call(&c, Method::GET, &tags, ALICE, None, "2.25").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, shown) = c
            .get_v(&format!("/v2.1/servers/{one}"), ALICE, "2.26")
            .await;
        assert_eq!(shown["server"]["tags"], json!(["blue", "red"]));
        let (s, v) = call(&c, Method::GET, &tags, READER, None, "2.26").await;
        assert_eq!((s, v), (StatusCode::OK, json!({"tags": ["blue", "red"]})));
        let (s, _) = call(&c, Method::GET, &tags, BOB, None, "2.26").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        // One tag: 201 new, 204 again; 204/404 to ask.
        let (s, _, h) = c
            .call(
                Method::PUT,
                &format!("{tags}/green"),
                ALICE,
                None,
                Some("2.26"),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        assert!(h["location"]
            .to_str()
            .unwrap_or("")
            .ends_with(&format!("/servers/{one}/tags/green")));
        let (s, _) = call(
            &c,
            Method::PUT,
            &format!("{tags}/green"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(
            &c,
            Method::PUT,
            &format!("{tags}/green"),
            READER,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = call(
            &c,
            Method::GET,
            &format!("{tags}/green"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, v) = call(
            &c,
            Method::GET,
            &format!("{tags}/pink"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            v["itemNotFound"]["message"],
            format!("Instance {one} has no tag 'pink'")
        );
        let long = "x".repeat(61);
        let (s, v) = call(
            &c,
            Method::PUT,
            &format!("{tags}/{long}"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = call(&c, Method::PUT, &format!("{tags}/a,b"), ALICE, None, "2.26").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["badRequest"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("Tag 'a,b' is invalid."),
            "{v}"
        );
        // The list filters.
        let ids = |v: &Value| -> Vec<String> {
            let mut ids: Vec<String> = v["servers"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|s| s["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            ids.sort();
            ids
        };
        let mut both = vec![one.clone(), two.clone()];
        both.sort();
        for (q, want) in [
            ("tags=blue,green", vec![one.clone()]),
            ("tags=blue,pink", vec![]),
            ("tags-any=pink,green", vec![one.clone()]),
            ("not-tags=blue,green", vec![two.clone()]),
            ("not-tags=blue,pink", both.clone()),
            ("not-tags-any=pink,red", vec![two.clone()]),
        ] {
            let (s, v) = c.get_v(&format!("/v2.1/servers?{q}"), ALICE, "2.26").await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(ids(&v), want, "{q}");
        }
        // Before 2.26 the filters are not there.
        let (_, v) = c.get_v("/v2.1/servers?tags=blue", ALICE, "2.25").await;
        assert_eq!(ids(&v), both);
        // Replace all, delete one, delete all.
        let (s, v) = call(
            &c,
            Method::PUT,
            &tags,
            ALICE,
            Some(json!({"tags": ["x", "y", "x"]})),
            "2.26",
        )
        .await;
        assert_eq!((s, v), (StatusCode::OK, json!({"tags": ["x", "y"]})));
        for bad in [
            json!({"tags": "x"}),
            json!({"tags": ["a/b"]}),
            json!({}),
            json!({"tags": [], "x": 1}),
        ] {
            let (s, _) = call(&c, Method::PUT, &tags, ALICE, Some(bad.clone()), "2.26").await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        }
        let fifty_one: Vec<String> = (0..51).map(|n| format!("t{n}")).collect();
        let (s, _) = call(
            &c,
            Method::PUT,
            &tags,
            ALICE,
            Some(json!({"tags": fifty_one})),
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let fifty: Vec<String> = (0..50).map(|n| format!("t{n}")).collect();
        let (s, _) = call(
            &c,
            Method::PUT,
            &tags,
            ALICE,
            Some(json!({"tags": fifty})),
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = call(
            &c,
            Method::PUT,
            &format!("{tags}/more"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            v["badRequest"]["message"],
            "The number of tags exceeded the per-server limit 50"
        );
        let (s, _) = call(
            &c,
            Method::DELETE,
            &format!("{tags}/t0"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(
            &c,
            Method::DELETE,
            &format!("{tags}/t0"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&c, Method::DELETE, &tags, ALICE, None, "2.26").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, v) = call(&c, Method::GET, &tags, ALICE, None, "2.26").await;
        assert_eq!(v, json!({"tags": []}));
        // Tags change only in a settled state (Nova's 409).
        let (s, _) = c
            .post(
                &format!("/v2.1/servers/{one}/action"),
                ADMIN,
                json!({"os-resetState": {"state": "error"}}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
        let (s, v) = call(
            &c,
            Method::PUT,
            &format!("{tags}/late"),
            ALICE,
            None,
            "2.26",
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(
            v["conflictingRequest"]["message"],
            format!("Cannot 'update tag' instance {one} while it is in vm_state error")
        );
        c.stop().await;
    }
}

#[tokio::test]
async fn ips_by_network_label() {
    for engine in engines().await {
        let (c, _) = cloud(engine).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let (s, v) = c.get(&format!("/v2.1/servers/{id}/ips"), READER).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            v,
            json!({"addresses": {"net1": [{"version": 4, "addr": "10.0.0.5"}]}})
        );
        let (s, v) = c.get(&format!("/v2.1/servers/{id}/ips/net1"), ALICE).await;
        assert_eq!(
            (s, v),
            (
                StatusCode::OK,
                json!({"net1": [{"version": 4, "addr": "10.0.0.5"}]})
            )
        );
        let (s, v) = c.get(&format!("/v2.1/servers/{id}/ips/other"), ALICE).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(
            v["itemNotFound"]["message"],
            "Instance is not a member of specified network"
        );
        let (s, _) = c.get(&format!("/v2.1/servers/{id}/ips"), BOB).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        c.stop().await;
    }
}
