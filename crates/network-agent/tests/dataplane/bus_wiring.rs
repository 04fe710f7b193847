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
