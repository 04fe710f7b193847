//! The agents on an in-memory bus with the noop driver (no root needed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stratus_bus::Bus;
use stratus_common::context::RequestContext;
use stratus_common::ids::{NetworkId, PortId, SubnetId};
use stratus_network_agent::agent::{start_l2_agent_with, AgentKind};
use stratus_network_agent::config::{AgentSettings, Driver};
use stratus_network_agent::rpc::{self, methods, FixedIp, PortBind, PortInfo, PortUnbind};

use crate::support::FakeServer;

fn settings(dir: &std::path::Path) -> AgentSettings {
    AgentSettings {
        host: "busy".into(),
        driver: Driver::Noop,
        state_dir: dir.to_owned(),
        metadata_port: 80,
        metadata_url: "http://127.0.0.1:9".into(),
        metadata_secret: String::new(),
        firewall_table: "unused".into(),
        report_interval_secs: 3600,
    }
}

#[tokio::test]
async fn l2_agent_binds_over_the_bus_and_reports_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Bus::in_memory();
    let server = Arc::new(FakeServer::default());
    let agent = start_l2_agent_with(settings(dir.path()), &bus, server.clone())
        .await
        .expect("start");
    let port = PortInfo {
        id: PortId::new(),
        network_id: NetworkId::new(),
        mac_address: "fa:16:3e:00:00:01".into(),
        fixed_ips: vec![FixedIp {
            subnet_id: SubnetId::new(),
            ip_address: "10.0.0.5".parse().expect("ip"),
        }],
        device_owner: "compute:nova".into(),
        device_id: "i".into(),
        project_id: "p".into(),
        admin_state_up: true,
        host: Some("busy".into()),
        security_group_ids: vec![],
    };
    let ctx = RequestContext::internal();
    let bind = PortBind {
        port: port.clone(),
        rules: vec![],
        members: BTreeMap::new(),
    };
    bus.cast(&rpc::l2_topic("busy"), methods::PORT_BIND, &ctx, &bind)
        .await
        .expect("cast");
    let mut active = false;
    for _ in 0..200 {
        if server.statuses().contains(&(port.id, "ACTIVE".to_owned())) {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(active, "port_status ACTIVE reported");
    let AgentKind::L2(l2) = agent.kind().clone() else {
        panic!("an L2 agent")
    };
    assert!(l2.firewall().ports().await.contains_key(&port.id));

    // An unknown method is refused with a typed error (call, to see it).
    let err = bus
        .call::<serde_json::Value>(
            &rpc::l2_topic("busy"),
            "frobnicate",
            &ctx,
            &serde_json::json!({}),
        )
        .await
        .expect_err("unknown method");
    assert!(err.to_string().contains("BadRequest"), "{err}");
    // Malformed arguments too.
    let err = bus
        .call::<serde_json::Value>(
            &rpc::l2_topic("busy"),
            methods::PORT_BIND,
            &ctx,
            &serde_json::json!({"x": 1}),
        )
        .await
        .expect_err("bad args");
    assert!(err.to_string().contains("BadRequest"), "{err}");

    let unbind = PortUnbind {
        port_id: port.id,
        network_id: port.network_id,
    };
    bus.call::<serde_json::Value>(&rpc::l2_topic("busy"), methods::PORT_UNBIND, &ctx, &unbind)
        .await
        .expect("unbind");
    assert!(!l2.firewall().ports().await.contains_key(&port.id));
    agent.stop().await;
}

#[tokio::test]
async fn l2_agent_resync_rebinds_live_ports_and_drops_gone_ones() {
    use stratus_network_agent::l2::agent::L2Agent;
    use stratus_network_agent::rpc::NetworkInfo;

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Arc::new(FakeServer::default());
    let net = NetworkId::new();
    let mk = || PortInfo {
        id: PortId::new(),
        network_id: net,
        mac_address: "fa:16:3e:00:00:01".into(),
        fixed_ips: vec![],
        device_owner: "compute:nova".into(),
        device_id: "i".into(),
        project_id: "p".into(),
        admin_state_up: true,
        host: Some("busy".into()),
        security_group_ids: vec![],
    };
    let (keep, gone) = (mk(), mk());
    let first = L2Agent::new(settings(dir.path()), server.clone());
    for p in [&keep, &gone] {
        first
            .port_bind(PortBind {
                port: p.clone(),
                rules: vec![],
                members: BTreeMap::new(),
            })
            .await
            .expect("bind");
    }
    drop(first);

    // The server still has `keep` on this host; `gone` was deleted meanwhile.
    server.networks.lock().expect("lock").insert(
        net,
        NetworkInfo {
            id: net,
            project_id: "p".into(),
            mtu: 1500,
            subnets: vec![],
            ports: vec![keep.clone()],
        },
    );
    server.statuses.lock().expect("lock").clear();
    let restarted = L2Agent::new(settings(dir.path()), server.clone());
    restarted.resync().await.expect("resync");
    let ports = restarted.firewall().ports().await;
    assert!(ports.contains_key(&keep.id));
    assert!(!ports.contains_key(&gone.id));
    assert_eq!(server.statuses(), vec![(keep.id, "ACTIVE".to_owned())]);
}

#[tokio::test]
async fn dhcp_agent_takes_network_sync_and_delete_over_the_bus() {
    use stratus_network_agent::agent::start_dhcp_agent_with;
    use stratus_network_agent::rpc::{NetworkDelete, NetworkInfo, NetworkSync, SubnetInfo};

    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Bus::in_memory();
    let server = Arc::new(FakeServer::default());
    let agent = start_dhcp_agent_with(settings(dir.path()), &bus, server.clone())
        .await
        .expect("start");
    let AgentKind::Dhcp(dhcp) = agent.kind().clone() else {
        panic!("a DHCP agent")
    };
    let net = NetworkInfo {
        id: NetworkId::new(),
        project_id: "p".into(),
        mtu: 1500,
        subnets: vec![SubnetInfo {
            id: SubnetId::new(),
            cidr: "10.1.0.0/24".parse().expect("cidr"),
            gateway_ip: None,
            enable_dhcp: true,
            dns_nameservers: vec![],
            host_routes: vec![],
            ip_version: 4,
        }],
        ports: vec![],
    };
    let ctx = RequestContext::internal();
    let topic = rpc::dhcp_topic("busy");
    let sync = NetworkSync {
        network: net.clone(),
        resource_id: None,
    };
    bus.call::<serde_json::Value>(&topic, methods::NETWORK_SYNC, &ctx, &sync)
        .await
        .expect("sync");
    assert_eq!(dhcp.saved_networks(), vec![net.id]);
    let del = NetworkDelete { network_id: net.id };
    bus.call::<serde_json::Value>(&topic, methods::NETWORK_DELETE, &ctx, &del)
        .await
        .expect("delete");
    assert!(dhcp.saved_networks().is_empty());
    // The heartbeat reports at start (it runs in its own task).
    let want = ("busy".to_owned(), "dhcp".to_owned());
    let mut reported = false;
    for _ in 0..200 {
        if server.reports.lock().expect("lock").contains(&want) {
            reported = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        reported,
        "agent_report sent: {:?}",
        server.reports.lock().expect("lock")
    );
    agent.stop().await;
}

/// A port in `sg` whose ingress rule names `sg` itself as remote group (as
/// the default group's does), with the address 10.0.0.`last`.
fn self_referencing_bind(
    net: NetworkId,
    sg: stratus_common::ids::SecurityGroupId,
    last: u8,
) -> PortBind {
    use stratus_network_agent::rpc::SecurityGroupRuleInfo;
    PortBind {
        port: PortInfo {
            id: PortId::new(),
            network_id: net,
            mac_address: format!("fa:16:3e:00:00:{last:02x}"),
            fixed_ips: vec![FixedIp {
                subnet_id: SubnetId::new(),
                ip_address: ip(last),
            }],
            device_owner: "compute:nova".into(),
            device_id: "i".into(),
            project_id: "p".into(),
            admin_state_up: true,
            host: Some("busy".into()),
            security_group_ids: vec![sg],
        },
        rules: vec![SecurityGroupRuleInfo {
            id: uuid::Uuid::new_v4(),
            security_group_id: sg,
            direction: "ingress".into(),
            ethertype: "IPv4".into(),
            protocol: None,
            port_range_min: None,
            port_range_max: None,
            remote_ip_prefix: None,
            remote_group_id: Some(sg),
        }],
        members: BTreeMap::from([(sg, vec![ip(last)])]),
    }
}

fn ip(last: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([10, 0, 0, last])
}

#[tokio::test]
async fn l2_agent_takes_member_updates_over_the_bus() {
    use stratus_bus::Envelope;
    use stratus_common::ids::SecurityGroupId;
    use stratus_network_agent::rpc::SgMembersUpdate;

    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Bus::in_memory();
    let server = Arc::new(FakeServer::default());
    let agent = start_l2_agent_with(settings(dir.path()), &bus, server.clone())
        .await
        .expect("start");
    let AgentKind::L2(l2) = agent.kind().clone() else {
        panic!("an L2 agent")
    };
    let ctx = RequestContext::internal();
    let topic = rpc::l2_topic("busy");
    let (sg, unknown) = (SecurityGroupId::new(), SecurityGroupId::new());
    let bind = self_referencing_bind(NetworkId::new(), sg, 5);
    bus.call::<serde_json::Value>(&topic, methods::PORT_BIND, &ctx, &bind)
        .await
        .expect("bind");
    assert_eq!(l2.firewall().commit_counts(), (1, 0));

    let send = |members: BTreeMap<SecurityGroupId, Vec<std::net::IpAddr>>, version: &str| {
        let mut env = Envelope::new(
            methods::SG_MEMBERS_UPDATE,
            &ctx,
            serde_json::to_value(SgMembersUpdate { members }).expect("json"),
        );
        env.version = version.to_owned();
        let bus = bus.clone();
        let topic = topic.clone();
        async move {
            bus.call_envelope(&topic, env, Duration::from_secs(10))
                .await
        }
    };
    // A member joins: its set changes, no ruleset is re-rendered.
    send(
        BTreeMap::from([(sg, vec![ip(5), ip(6)])]),
        rpc::L2_API_VERSION,
    )
    .await
    .expect("update");
    assert_eq!(l2.firewall().members().await[&sg], vec![ip(5), ip(6)]);
    assert_eq!(l2.firewall().commit_counts(), (1, 1));
    // A group no rule here names: harmless, and not kept.
    send(BTreeMap::from([(unknown, vec![ip(9)])]), "1.1")
        .await
        .expect("unknown group");
    assert!(!l2.firewall().members().await.contains_key(&unknown));
    // Another major version is refused.
    let err = send(BTreeMap::from([(sg, vec![])]), "2.0")
        .await
        .expect_err("version 2");
    assert!(err.to_string().contains("BadRequest"), "{err}");
    assert_eq!(l2.firewall().members().await[&sg], vec![ip(5), ip(6)]);
    // Saved apart from the ports, whose saved binds carry no members.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("l2/members.json")).expect("members.json"),
    )
    .expect("json");
    assert_eq!(
        saved[sg.to_string()],
        serde_json::json!(["10.0.0.5", "10.0.0.6"])
    );
    let ports: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("l2/ports.json")).expect("ports.json"),
    )
    .expect("json");
    assert_eq!(ports[0]["members"], serde_json::json!({}));
    agent.stop().await;
}

#[tokio::test]
async fn l2_agent_resync_keeps_the_latest_members() {
    use stratus_common::ids::SecurityGroupId;
    use stratus_network_agent::l2::agent::L2Agent;
    use stratus_network_agent::rpc::NetworkInfo;

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Arc::new(FakeServer::default());
    let net = NetworkId::new();
    let sg = SecurityGroupId::new();
    let bind = self_referencing_bind(net, sg, 5);
    let port = bind.port.clone();
    let first = L2Agent::new(settings(dir.path()), server.clone());
    first.port_bind(bind).await.expect("bind");
    // Members learnt after the bind (10.0.0.5 left, .6 and .7 joined).
    first
        .sg_members_update(BTreeMap::from([(sg, vec![ip(6), ip(7)])]))
        .await
        .expect("update");
    drop(first);

    server.networks.lock().expect("lock").insert(
        net,
        NetworkInfo {
            id: net,
            project_id: "p".into(),
            mtu: 1500,
            subnets: vec![],
            ports: vec![port.clone()],
        },
    );
    let restarted = L2Agent::new(settings(dir.path()), server.clone());
    restarted.resync().await.expect("resync");
    assert!(restarted.firewall().ports().await.contains_key(&port.id));
    assert_eq!(
        restarted.firewall().members().await,
        BTreeMap::from([(sg, vec![ip(6), ip(7)])]),
        "the saved sets, not the bind's older members"
    );
}

/// An agent port on `net` bound to `host`.
fn port_on(net: NetworkId, host: &str, last: u8) -> PortInfo {
    PortInfo {
        id: PortId::new(),
        network_id: net,
        mac_address: format!("fa:16:3e:00:01:{last:02x}"),
        fixed_ips: vec![FixedIp {
            subnet_id: SubnetId::new(),
            ip_address: ip(last),
        }],
        device_owner: "compute:nova".into(),
        device_id: format!("i{last}"),
        project_id: "p".into(),
        admin_state_up: true,
        host: Some(host.into()),
        security_group_ids: vec![],
    }
}

/// Waits up to five seconds for `done`.
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never: {what}");
}

/// The fake hypervisors of one machine (`busy`, `busy-2`): one L2 agent
/// with an alias consumes both names' topics, plugs ports bound to either
/// into its one dataplane, reports each port ACTIVE with the port's own
/// host, and reports in under both names.
#[tokio::test]
async fn l2_agent_with_an_alias_binds_ports_of_both_names() {
    use stratus_network_agent::agent::start_l2_agent_with_aliases;

    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Bus::in_memory();
    let server = Arc::new(FakeServer::default());
    let agent = start_l2_agent_with_aliases(
        settings(dir.path()),
        &["busy-2".to_owned()],
        &bus,
        server.clone(),
    )
    .await
    .expect("start");
    let AgentKind::L2(l2) = agent.kind().clone() else {
        panic!("an L2 agent")
    };
    assert_eq!(l2.hosts().all(), ["busy", "busy-2"]);
    let net = NetworkId::new();
    let (a, b) = (port_on(net, "busy", 5), port_on(net, "busy-2", 6));
    let ctx = RequestContext::internal();
    for p in [&a, &b] {
        let bind = PortBind {
            port: p.clone(),
            rules: vec![],
            members: BTreeMap::new(),
        };
        let host = p.host.clone().expect("host");
        bus.cast(&rpc::l2_topic(&host), methods::PORT_BIND, &ctx, &bind)
            .await
            .expect("cast");
    }
    until("both ports ACTIVE", || {
        let st = server.statuses();
        [a.id, b.id]
            .iter()
            .all(|id| st.contains(&(*id, "ACTIVE".to_owned())))
    })
    .await;
    let hosts = server.status_hosts.lock().expect("lock").clone();
    assert!(hosts.contains(&(a.id, "busy".to_owned())), "{hosts:?}");
    assert!(hosts.contains(&(b.id, "busy-2".to_owned())), "{hosts:?}");
    let ports = l2.firewall().ports().await;
    assert!(ports.contains_key(&a.id) && ports.contains_key(&b.id));
    until("agent_report under both names", || {
        let r = server.reports.lock().expect("lock");
        ["busy", "busy-2"]
            .iter()
            .all(|h| r.contains(&(h.to_string(), "l2".to_owned())))
    })
    .await;

    // `b` moves to `busy`: bound on busy's topic, then the unbind for
    // busy-2 arrives late (another topic, no order). It is stale.
    let moved = PortInfo {
        host: Some("busy".into()),
        ..b.clone()
    };
    let bind = PortBind {
        port: moved,
        rules: vec![],
        members: BTreeMap::new(),
    };
    bus.call::<serde_json::Value>(&rpc::l2_topic("busy"), methods::PORT_BIND, &ctx, &bind)
        .await
        .expect("bind on busy");
    let unbind = PortUnbind {
        port_id: b.id,
        network_id: net,
    };
    bus.call::<serde_json::Value>(
        &rpc::l2_topic("busy-2"),
        methods::PORT_UNBIND,
        &ctx,
        &unbind,
    )
    .await
    .expect("late unbind");
    assert!(
        l2.firewall().ports().await.contains_key(&b.id),
        "a late unbind from the old name leaves the port plugged"
    );
    // Its unbind on the name it is bound to now removes it.
    bus.call::<serde_json::Value>(&rpc::l2_topic("busy"), methods::PORT_UNBIND, &ctx, &unbind)
        .await
        .expect("unbind");
    assert!(!l2.firewall().ports().await.contains_key(&b.id));
    agent.stop().await;
}

/// A restarted agent with an alias keeps the ports the server still has on
/// any of its names.
#[tokio::test]
async fn l2_agent_resync_covers_every_alias() {
    use stratus_network_agent::l2::agent::L2Agent;
    use stratus_network_agent::rpc::NetworkInfo;

    let dir = tempfile::tempdir().expect("tempdir");
    let server = Arc::new(FakeServer::default());
    let aliases = ["busy-2".to_owned()];
    let net = NetworkId::new();
    let (a, b, elsewhere) = (
        port_on(net, "busy", 5),
        port_on(net, "busy-2", 6),
        port_on(net, "busy-2", 7),
    );
    let first = L2Agent::with_aliases(settings(dir.path()), &aliases, server.clone());
    for p in [&a, &b, &elsewhere] {
        first
            .port_bind(PortBind {
                port: p.clone(),
                rules: vec![],
                members: BTreeMap::new(),
            })
            .await
            .expect("bind");
    }
    drop(first);
    // Meanwhile `elsewhere` moved to another machine.
    let gone = PortInfo {
        host: Some("other".into()),
        ..elsewhere.clone()
    };
    server.networks.lock().expect("lock").insert(
        net,
        NetworkInfo {
            id: net,
            project_id: "p".into(),
            mtu: 1500,
            subnets: vec![],
            ports: vec![a.clone(), b.clone(), gone],
        },
    );
    server.statuses.lock().expect("lock").clear();
    let restarted = L2Agent::with_aliases(settings(dir.path()), &aliases, server.clone());
    restarted.resync().await.expect("resync");
    let ports = restarted.firewall().ports().await;
    assert!(ports.contains_key(&a.id) && ports.contains_key(&b.id));
    assert!(!ports.contains_key(&elsewhere.id));
    let mut st = server.statuses();
    st.sort();
    let mut want = vec![(a.id, "ACTIVE".to_owned()), (b.id, "ACTIVE".to_owned())];
    want.sort();
    assert_eq!(st, want);
}

/// A DHCP agent with an alias takes syncs on both names' topics, applies
/// the server's current state (a sync that arrives late on one topic is
/// older than what another brought), and reports in under both names.
#[tokio::test]
async fn dhcp_agent_with_an_alias_applies_the_current_state() {
    use stratus_network_agent::agent::start_dhcp_agent_with_aliases;
    use stratus_network_agent::rpc::{NetworkInfo, NetworkSync, SubnetInfo};

    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Bus::in_memory();
    let server = Arc::new(FakeServer::default());
    let agent = start_dhcp_agent_with_aliases(
        settings(dir.path()),
        &["busy-2".to_owned()],
        &bus,
        server.clone(),
    )
    .await
    .expect("start");
    let AgentKind::Dhcp(dhcp) = agent.kind().clone() else {
        panic!("a DHCP agent")
    };
    let id = NetworkId::new();
    let subnet = SubnetInfo {
        id: SubnetId::new(),
        cidr: "10.1.0.0/24".parse().expect("cidr"),
        gateway_ip: None,
        enable_dhcp: true,
        dns_nameservers: vec![],
        host_routes: vec![],
        ip_version: 4,
    };
    let old = NetworkInfo {
        id,
        project_id: "p".into(),
        mtu: 1500,
        subnets: vec![subnet],
        ports: vec![],
    };
    let port = port_on(id, "busy-2", 9);
    let current = NetworkInfo {
        ports: vec![port.clone()],
        ..old.clone()
    };
    server
        .networks
        .lock()
        .expect("lock")
        .insert(id, current.clone());
    let ctx = RequestContext::internal();
    let stale = NetworkSync {
        network: old,
        resource_id: None,
    };
    bus.call::<serde_json::Value>(
        &rpc::dhcp_topic("busy-2"),
        methods::NETWORK_SYNC,
        &ctx,
        &stale,
    )
    .await
    .expect("sync");
    assert_eq!(dhcp.saved_networks(), vec![id]);
    let saved: NetworkInfo = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!("dhcp/{id}/network.json")))
            .expect("network.json"),
    )
    .expect("json");
    assert_eq!(saved, current, "the server's state, not the late message's");

    // Gone on the server: a sync (on the other name) removes it.
    server.networks.lock().expect("lock").remove(&id);
    bus.call::<serde_json::Value>(
        &rpc::dhcp_topic("busy"),
        methods::NETWORK_SYNC,
        &ctx,
        &stale,
    )
    .await
    .expect("sync");
    assert!(dhcp.saved_networks().is_empty());
    until("agent_report under both names", || {
        let r = server.reports.lock().expect("lock");
        ["busy", "busy-2"]
            .iter()
            .all(|h| r.contains(&(h.to_string(), "dhcp".to_owned())))
    })
    .await;
    agent.stop().await;
}
