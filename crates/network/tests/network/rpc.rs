//! The agent side of the contract over an in-memory bus: casts to
//! `dhcp.<host>` / `l2.<host>` with the linuxbridge driver, and the calls
//! agents make on `network`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use stratus_bus::{handler_fn, Bus, BusError, Envelope, ServeOptions};
use stratus_common::RequestContext;
use stratus_network::{DriverKind, NetworkConfig};
use stratus_network_rpc::{InstanceLookup, NetworkInfo, PortBind, PortInfo, SgMembersUpdate};
use tokio::sync::mpsc;

use crate::common::*;

/// Records what a topic receives.
async fn listen(
    bus: &Bus,
    topic: &str,
) -> (stratus_bus::Consumer, mpsc::UnboundedReceiver<Envelope>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tx = Arc::new(tx);
    let consumer = bus
        .serve(
            topic,
            handler_fn(move |env: Envelope| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(env);
                    Ok(Value::Null)
                }
            }),
            ServeOptions::default(),
        )
        .await
        .expect("serve");
    (consumer, rx)
}

/// The next message with `method` (others are skipped); bounded wait.
async fn next(rx: &mut mpsc::UnboundedReceiver<Envelope>, method: &str) -> Envelope {
    loop {
        let env = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {method} message"))
            .expect("channel open");
        if env.method == method {
            return env;
        }
    }
}

/// The next message on an L2 topic, whatever its method; bounded wait.
async fn l2_next(rx: &mut mpsc::UnboundedReceiver<Envelope>) -> Envelope {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an L2 message")
        .expect("channel open")
}

async fn call<R: serde::de::DeserializeOwned>(
    bus: &Bus,
    method: &str,
    args: Value,
) -> Result<R, BusError> {
    bus.call_timeout(
        "network",
        method,
        &RequestContext::internal(),
        &args,
        Duration::from_secs(20),
    )
    .await
}

#[tokio::test]
async fn agents_contract_with_linuxbridge() {
    for t in dbs().await {
        let bus = Bus::in_memory();
        let (_l2, mut l2) = listen(&bus, "l2.hostA").await;
        let (_dhcp, mut dhcp) = listen(&bus, "dhcp.hostA").await;
        let config = NetworkConfig {
            driver: DriverKind::Linuxbridge,
            dhcp_host: "hostA".into(),
            ..NetworkConfig::default()
        };
        let c = Cloud::start_on(&t.db, config, bus.clone()).await;
        let (net, subnet) = net_with_subnet(&c, ALICE, "lb", Some("10.60.0.0/24")).await;
        let sync = next(&mut dhcp, "network_sync").await;
        let info: NetworkInfo =
            serde_json::from_value(sync.args["network"].clone()).expect("network info");
        assert_eq!(info.id.to_string(), net);
        assert_eq!(info.subnets.len(), 1);
        assert_eq!(info.mtu, 1500);

        // The DHCP agent asks for its port: made once, then the same one.
        let args = json!({"network_id": net, "host": "hostA"});
        let dport: PortInfo = call(&bus, "ensure_dhcp_port", args.clone())
            .await
            .expect("dhcp port");
        assert_eq!(dport.device_owner, "network:dhcp");
        assert!(dport.device_id.starts_with("dhcp") && dport.device_id.ends_with(&net));
        assert_eq!(dport.fixed_ips.len(), 1);
        assert_eq!(dport.fixed_ips[0].subnet_id.to_string(), subnet);
        assert_eq!(dport.fixed_ips[0].ip_address.to_string(), "10.60.0.2");
        assert_eq!(dport.host.as_deref(), Some("hostA"));
        let again: PortInfo = call(&bus, "ensure_dhcp_port", args)
            .await
            .expect("dhcp port again");
        assert_eq!(again.id, dport.id);

        // Compute's port, bound to hostA: L2 gets it with its rules.
        let server = uuid::Uuid::new_v4().to_string();
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ADMIN),
                Some(json!({"port": {"network_id": net, "project_id": PROJECT_A,
                "device_id": server, "device_owner": "compute:nova", "binding:host_id": "hostA"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["port"]["status"], "DOWN");
        let port = s(&b["port"]["id"]);
        let vm_ip = s(&b["port"]["fixed_ips"][0]["ip_address"]);
        let bind = next(&mut l2, "port_bind").await;
        let bind: PortBind = serde_json::from_value(bind.args).expect("port_bind args");
        assert_eq!(bind.port.id.to_string(), port);
        assert_eq!(bind.port.host.as_deref(), Some("hostA"));
        assert_eq!(bind.rules.len(), 4, "default group rules");
        let sg = bind.port.security_group_ids[0];
        assert_eq!(
            bind.members[&sg]
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>(),
            vec![vm_ip.clone()]
        );
        // The DHCP port's own sync comes first; then one with both ports.
        loop {
            let sync = next(&mut dhcp, "network_sync").await;
            if sync.args["network"]["ports"].as_array().map(Vec::len) == Some(2) {
                break;
            }
        }

        // The L2 agent says ACTIVE: the port is, and compute hears of it.
        let r: Value = call(
            &bus,
            "port_status",
            json!({"port_id": port, "status": "ACTIVE", "host": "hostA"}),
        )
        .await
        .expect("port_status");
        assert_eq!(r, Value::Null);
        let (_, b) = c
            .call("GET", &format!("/v2.0/ports/{port}"), Some(ALICE), None)
            .await;
        assert_eq!(b["port"]["status"], "ACTIVE");
        let events = c.compute.wait_for(1).await;
        assert_eq!(events[0].0, server);
        // Another host's agent does not speak for the port (Neutron ignores
        // devices not bound to the reporting host).
        let r: Value = call(
            &bus,
            "port_status",
            json!({"port_id": port, "status": "DOWN", "host": "hostB"}),
        )
        .await
        .expect("port_status from another host");
        assert_eq!(r, Value::Null);
        let (_, b) = c
            .call("GET", &format!("/v2.0/ports/{port}"), Some(ALICE), None)
            .await;
        assert_eq!(b["port"]["status"], "ACTIVE", "hostB's report was ignored");
        let e = call::<Value>(
            &bus,
            "port_status",
            json!({"port_id": port, "status": "WEIRD", "host": "hostA"}),
        )
        .await;
        assert!(
            matches!(e, Err(BusError::Remote(ref r)) if r.kind == "HTTPBadRequest"),
            "{e:?}"
        );
        let e = call::<Value>(
            &bus,
            "port_status",
            json!({"port_id": uuid::Uuid::new_v4(), "status": "ACTIVE", "host": "hostA"}),
        )
        .await;
        assert!(
            matches!(e, Err(BusError::Remote(ref r)) if r.kind == "NotFound"),
            "{e:?}"
        );

        // A second port in the same group: the first learns the new member.
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ADMIN),
                Some(json!({"port": {"network_id": net, "project_id": PROJECT_A,
                    "binding:host_id": "hostA"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let port2 = s(&b["port"]["id"]);
        let ip2 = s(&b["port"]["fixed_ips"][0]["ip_address"]);
        // Its own port_bind, then one member update for the host (not a
        // port_bind of the first port).
        let first = l2_next(&mut l2).await;
        assert_eq!(first.method, "port_bind");
        assert_eq!(first.args["port"]["id"], port2.as_str());
        let update = l2_next(&mut l2).await;
        assert_eq!(update.method, "sg_members_update");
        assert_eq!(update.version, "1.1");
        let update: SgMembersUpdate = serde_json::from_value(update.args).expect("update args");
        let mut got: Vec<String> = update.members[&sg].iter().map(|i| i.to_string()).collect();
        got.sort();
        let mut want = vec![vm_ip.clone(), ip2.clone()];
        want.sort();
        assert_eq!(got, want);

        // Resync and the metadata proxy's lookup.
        let info: NetworkInfo = call(&bus, "get_network_info", json!({"network_id": net}))
            .await
            .expect("info");
        assert_eq!(info.ports.len(), 3);
        let found: InstanceLookup = call(
            &bus,
            "lookup_instance",
            json!({"network_id": net, "ip": vm_ip}),
        )
        .await
        .expect("lookup");
        assert_eq!(found.instance_id, server);
        assert_eq!(found.project_id, PROJECT_A);
        let e = call::<InstanceLookup>(
            &bus,
            "lookup_instance",
            json!({"network_id": net, "ip": "10.60.0.200"}),
        )
        .await;
        assert!(
            matches!(e, Err(BusError::Remote(ref r)) if r.kind == "NotFound"),
            "{e:?}"
        );
        let e = call::<NetworkInfo>(
            &bus,
            "get_network_info",
            json!({"network_id": uuid::Uuid::new_v4()}),
        )
        .await;
        assert!(
            matches!(e, Err(BusError::Remote(ref r)) if r.kind == "NotFound"),
            "{e:?}"
        );
        let _: Value = call(
            &bus,
            "agent_report",
            json!({"host": "hostA", "agent_type": "l2", "alive": true}),
        )
        .await
        .expect("report");
        agents_api_shows_what_reported(&c).await;

        // A rule change re-sends the bound port's rules.
        let (st, _) = c
            .call("POST", "/v2.0/security-group-rules", Some(ALICE), Some(json!({"security_group_rule": {
                "security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}})))
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let bind = next(&mut l2, "port_bind").await;
        assert_eq!(bind.args["rules"].as_array().map(Vec::len), Some(5));

        // Port gone: unbound on its host. Network gone (only the DHCP port
        // was left, and it goes with it): both agents told.
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{port}"), Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let unbind = next(&mut l2, "port_unbind").await;
        assert_eq!(unbind.args["port_id"], port.as_str());
        // port2 is still bound in the group: its host hears the IP left.
        let update = next(&mut l2, "sg_members_update").await;
        assert_eq!(update.args["members"][sg.to_string()], json!([ip2]));
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{port2}"), Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        // The DHCP port alone blocks neither its subnet nor its network.
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/subnets/{subnet}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        let (_, b) = c
            .call(
                "GET",
                &format!("/v2.0/ports/{}", dport.id),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(b["port"]["fixed_ips"], json!([]));
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/networks/{net}"),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
        let del = next(&mut dhcp, "network_delete").await;
        assert_eq!(del.args["network_id"], net.as_str());
        let del = next(&mut l2, "network_delete").await;
        assert_eq!(del.args["network_id"], net.as_str());
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn noop_driver_casts_nothing() {
    for t in dbs().await {
        let bus = Bus::in_memory();
        let (_l2, mut l2) = listen(&bus, "l2.h1").await;
        let c = Cloud::start_on(
            &t.db,
            NetworkConfig {
                dhcp_host: "h1".into(),
                ..NetworkConfig::default()
            },
            bus.clone(),
        )
        .await;
        let (net, _) = net_with_subnet(&c, ALICE, "n", Some("10.61.0.0/24")).await;
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ADMIN),
                Some(json!({"port": {"network_id": net, "binding:host_id": "h1"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        assert_eq!(b["port"]["status"], "ACTIVE");
        // Nothing was cast (the bus answers calls, so the server is up).
        let _: Value = call(
            &bus,
            "agent_report",
            json!({"host": "h1", "agent_type": "l2", "alive": true}),
        )
        .await
        .expect("report");
        assert!(l2.try_recv().is_err());
        c.stop().await;
        t.cleanup().await;
    }
}

/// Everything the topic got until it was quiet for a while.
async fn drain(rx: &mut mpsc::UnboundedReceiver<Envelope>) -> Vec<Envelope> {
    let mut got = Vec::new();
    while let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        got.push(env);
    }
    got
}

fn count(envs: &[Envelope], method: &str) -> usize {
    envs.iter().filter(|e| e.method == method).count()
}

/// The last `sg_members_update` of `envs`: group -> sorted addresses.
fn last_members(envs: &[Envelope]) -> BTreeMap<String, Vec<String>> {
    let env = envs
        .iter()
        .rev()
        .find(|e| e.method == "sg_members_update")
        .expect("an sg_members_update");
    let u: SgMembersUpdate = serde_json::from_value(env.args.clone()).expect("update args");
    u.members
        .into_iter()
        .map(|(g, ips)| {
            let mut v: Vec<String> = ips.iter().map(ToString::to_string).collect();
            v.sort();
            (g.to_string(), v)
        })
        .collect()
}

/// N ports in the default group (whose rules name itself) over two hosts:
/// each creation casts its port_bind and one member update per host with
/// other ports of the group (the new port's port_bind carries the members
/// it needs) — O(N) casts in all, where a port_bind per earlier port made
/// it O(N²).
#[tokio::test]
async fn sg_member_updates_are_cast_once_per_host() {
    const N: usize = 24;
    for t in dbs().await {
        let bus = Bus::in_memory();
        let (_a, mut host_a) = listen(&bus, "l2.hostA").await;
        let (_b, mut host_b) = listen(&bus, "l2.hostB").await;
        let config = NetworkConfig {
            driver: DriverKind::Linuxbridge,
            dhcp_host: "hostA".into(),
            ..NetworkConfig::default()
        };
        let c = Cloud::start_on(&t.db, config, bus.clone()).await;
        let (net, _) = net_with_subnet(&c, ALICE, "many", Some("10.62.0.0/24")).await;
        let mut ports = Vec::new();
        for i in 0..N {
            let host = if i % 2 == 0 { "hostA" } else { "hostB" };
            let (st, b) = c
                .call(
                    "POST",
                    "/v2.0/ports",
                    Some(ADMIN),
                    Some(json!({"port": {"network_id": net, "project_id": PROJECT_A,
                        "device_owner": "compute:nova", "binding:host_id": host}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{b}");
            ports.push((
                s(&b["port"]["id"]),
                s(&b["port"]["fixed_ips"][0]["ip_address"]),
            ));
        }
        let (a, b) = (drain(&mut host_a).await, drain(&mut host_b).await);
        assert_eq!(count(&a, "port_bind") + count(&b, "port_bind"), N);
        // Port k (0-based) updates hostA from k = 1 and hostB from k = 2.
        assert_eq!(count(&a, "sg_members_update"), N - 1);
        assert_eq!(count(&b, "sg_members_update"), N - 2);
        assert_eq!(a.len() + b.len(), 3 * N - 3, "O(N) casts, not O(N²)");
        assert!(a
            .iter()
            .chain(&b)
            .all(|e| e.method != "sg_members_update" || e.version == "1.1"));
        let mut all: Vec<String> = ports.iter().map(|(_, ip)| ip.clone()).collect();
        all.sort();
        let (ma, mb) = (last_members(&a), last_members(&b));
        assert_eq!(ma.len(), 1, "only the changed group: {ma:?}");
        assert_eq!(ma.values().next(), Some(&all));
        assert_eq!(mb, ma);

        // A change that moves no address or group sends no member update.
        let (st, _) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{}", ports[0].0),
                Some(ADMIN),
                Some(json!({"port": {"name": "renamed"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let a = drain(&mut host_a).await;
        assert_eq!(count(&a, "sg_members_update"), 0, "{a:?}");

        // A port in a group no rule names as remote group: no member update.
        let (st, g) = c
            .call(
                "POST",
                "/v2.0/security-groups",
                Some(ALICE),
                Some(json!({"security_group": {"name": "unnamed"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ADMIN),
                Some(json!({"port": {"network_id": net, "project_id": PROJECT_A,
                    "security_groups": [s(&g["security_group"]["id"])],
                    "binding:host_id": "hostA"}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let a = drain(&mut host_a).await;
        assert_eq!(
            (count(&a, "port_bind"), count(&a, "sg_members_update")),
            (1, 0)
        );
        assert!(drain(&mut host_b).await.is_empty());

        // Deleting a port on hostB: unbound there; both hosts get the group
        // without its address, once each.
        let (gone, gone_ip) = ports.remove(1);
        let (st, _) = c
            .call("DELETE", &format!("/v2.0/ports/{gone}"), Some(ALICE), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (a, b) = (drain(&mut host_a).await, drain(&mut host_b).await);
        assert_eq!(count(&b, "port_unbind"), 1);
        assert_eq!(count(&a, "sg_members_update"), 1);
        assert_eq!(count(&b, "sg_members_update"), 1);
        all.retain(|ip| *ip != gone_ip);
        assert_eq!(last_members(&a).values().next(), Some(&all));
        assert_eq!(last_members(&b).values().next(), Some(&all));
        c.stop().await;
        t.cleanup().await;
    }
}

/// `/v2.0/agents` after the L2 agent of hostA reported: admins see it (as
/// `openstack network agent list/show/set/delete` need), others see none.
async fn agents_api_shows_what_reported(c: &Cloud) {
    let (st, b) = c.call("GET", "/v2.0/agents", Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let agents = b["agents"].as_array().expect("agents").clone();
    let l2 = agents
        .iter()
        .find(|a| a["host"] == "hostA" && a["agent_type"] == "Linux bridge agent")
        .unwrap_or_else(|| panic!("hostA's L2 agent in {b}"))
        .clone();
    assert_eq!(l2["alive"], true, "{l2}");
    assert_eq!(l2["admin_state_up"], true, "{l2}");
    assert_eq!(l2["binary"], "neutron-linuxbridge-agent", "{l2}");
    let id = l2["id"].as_str().expect("id").to_owned();
    let path = format!("/v2.0/agents/{id}");

    let (st, b) = c.call("GET", "/v2.0/agents", Some(ALICE), None).await;
    assert_eq!((st, b["agents"].clone()), (StatusCode::OK, json!([])));
    let (st, b) = c.call("GET", &path, Some(ALICE), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(b["NeutronError"]["type"], "AgentNotFound", "{b}");

    let (st, b) = c
        .call(
            "PUT",
            &path,
            Some(ADMIN),
            Some(json!({"agent": {"admin_state_up": false, "description": "drained"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["agent"]["admin_state_up"], false);
    assert_eq!(b["agent"]["description"], "drained");
    let (st, b) = c
        .call(
            "GET",
            &format!("{path}?fields=description"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(
        (st, b["agent"].clone()),
        (StatusCode::OK, json!({"description": "drained"}))
    );
    let (st, b) = c
        .call(
            "PUT",
            &path,
            Some(ADMIN),
            Some(json!({"agent": {"host": "elsewhere"}})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");

    let (st, _) = c.call("DELETE", &path, Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = c.call("GET", &path, Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}
