//! The real network: bridge, DHCP namespace, dnsmasq, metadata proxy,
//! two guest namespaces, security groups, teardown.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stratus_common::ids::{NetworkId, PortId, SecurityGroupId, SubnetId};
use stratus_network_agent::config::{AgentSettings, Driver};
use stratus_network_agent::dataplane::link::Links;
use stratus_network_agent::dataplane::{names, netns};
use stratus_network_agent::dhcp::agent::DhcpAgent;
use stratus_network_agent::l2::agent::L2Agent;
use stratus_network_agent::metadata_proxy::sign;
use stratus_network_agent::rpc::{
    FixedIp, InstanceLookup, NetworkInfo, PortBind, PortInfo, SecurityGroupRuleInfo, SubnetInfo,
    DEVICE_OWNER_DHCP,
};

use crate::support::{
    kernel_tests_unavailable, sh, start_stub_metadata, uniq, Cleanup, FakeServer,
};

const SECRET: &str = "s3cret-for-tests";

fn port(
    net: NetworkId,
    subnet: SubnetId,
    mac: &str,
    ip: IpAddr,
    owner: &str,
    sgs: Vec<SecurityGroupId>,
) -> PortInfo {
    PortInfo {
        id: PortId::new(),
        network_id: net,
        mac_address: mac.to_owned(),
        fixed_ips: vec![FixedIp {
            subnet_id: subnet,
            ip_address: ip,
        }],
        device_owner: owner.to_owned(),
        device_id: uuid::Uuid::new_v4().to_string(),
        project_id: "proj".to_owned(),
        admin_state_up: true,
        host: Some("testhost".to_owned()),
        security_group_ids: sgs,
    }
}

fn rule(sg: SecurityGroupId, direction: &str, protocol: Option<&str>) -> SecurityGroupRuleInfo {
    SecurityGroupRuleInfo {
        id: uuid::Uuid::new_v4(),
        security_group_id: sg,
        direction: direction.to_owned(),
        ethertype: "IPv4".to_owned(),
        protocol: protocol.map(str::to_owned),
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: None,
    }
}

const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# udhcpc hook: apply the lease and option 121 routes (never a default route).
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        case "$1" in
          0.0.0.0/0) ;;
          *) ip route replace "$1" via "$2" dev "$interface" ;;
        esac
        shift 2
      done
    fi
    ;;
esac
exit 0
"#;

/// A guest namespace with one interface (`ifname`) whose peer, `tap`, will
/// be plugged into the bridge by the L2 agent.
async fn make_guest(ns: &str, tap: &str, ifname: &str, mac: &str) {
    netns::ensure(ns).await.expect("guest namespace");
    let host = Links::host().expect("netlink");
    host.ensure_veth_into(tap, ifname, ns)
        .await
        .expect("guest veth");
    let inside = Links::in_namespace(ns).await.expect("netlink in guest");
    inside.set_mac(ifname, mac).await.expect("mac");
    inside.set_up(ifname).await.expect("guest if up");
}

fn dhcp_in(ns: &str, ifname: &str, script: &Path) -> (bool, String) {
    sh(&[
        "timeout",
        "60",
        "ip",
        "netns",
        "exec",
        ns,
        "busybox",
        "udhcpc",
        "-i",
        ifname,
        "-f",
        "-q",
        "-n",
        "-t",
        "6",
        "-T",
        "2",
        "-O",
        "staticroutes",
        "-s",
        script.to_str().expect("utf8 path"),
    ])
}

fn ipv4_addrs(ns: &str, ifname: &str) -> Vec<String> {
    let (_, out) = sh(&[
        "ip", "netns", "exec", ns, "ip", "-4", "-o", "addr", "show", "dev", ifname,
    ]);
    out.lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .map(str::to_owned)
        })
        .collect()
}

/// Ping with a few tries: the first packets may race ARP resolution.
fn ping(ns: &str, to: IpAddr) -> bool {
    (0..3).any(|_| {
        sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            &to.to_string(),
        ])
        .0
    })
}

fn fetch_metadata(ns: &str) -> (bool, String) {
    sh(&[
        "ip",
        "netns",
        "exec",
        ns,
        "timeout",
        "20",
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        "http://169.254.169.254/openstack/latest/meta_data.json",
    ])
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_bridge_network_end_to_end() {
    if let Some(why) = kernel_tests_unavailable() {
        eprintln!("SKIPPED linux_bridge_network_end_to_end: {why}");
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let script = state.path().join("udhcpc.sh");
    std::fs::write(&script, UDHCPC_SCRIPT).expect("script");
    sh(&["chmod", "755", script.to_str().expect("utf8")]);

    // A subnet that exists only inside this test's bridge and namespaces.
    let b = u8::from_str_radix(&uniq(2), 16).expect("hex");
    let prefix = format!("10.213.{b}");
    let ip = |last: u8| -> IpAddr { format!("{prefix}.{last}").parse().expect("ip") };

    let net_id = NetworkId::new();
    let subnet_id = SubnetId::new();
    let (sg1, sg2) = (SecurityGroupId::new(), SecurityGroupId::new());
    let dhcp_port = port(
        net_id,
        subnet_id,
        "fa:16:3e:d0:00:02",
        ip(2),
        DEVICE_OWNER_DHCP,
        vec![],
    );
    let vm1 = port(
        net_id,
        subnet_id,
        "fa:16:3e:a1:00:0b",
        ip(11),
        "compute:nova",
        vec![sg1],
    );
    let vm2 = port(
        net_id,
        subnet_id,
        "fa:16:3e:a2:00:0c",
        ip(12),
        "compute:nova",
        vec![sg2],
    );
    let subnet = SubnetInfo {
        id: subnet_id,
        cidr: format!("{prefix}.0/24").parse().expect("cidr"),
        gateway_ip: Some(ip(1)),
        enable_dhcp: true,
        dns_nameservers: vec![],
        host_routes: vec![],
        ip_version: 4,
    };
    let mut net = NetworkInfo {
        id: net_id,
        project_id: "proj".into(),
        mtu: 1500,
        subnets: vec![subnet],
        ports: vec![dhcp_port.clone(), vm1.clone()],
    };

    let table = format!("stx{}", uniq(8));
    let (g1, g2) = (format!("stxg1-{}", uniq(8)), format!("stxg2-{}", uniq(8)));
    let (if1, if2) = (format!("gv{}", uniq(8)), format!("gv{}", uniq(8)));
    let cleanup = Cleanup {
        namespaces: vec![g1.clone(), g2.clone(), names::dhcp_namespace(&net_id)],
        links: vec![
            names::tap(&vm1.id),
            names::tap(&vm2.id),
            names::tap(&dhcp_port.id),
            names::bridge(&net_id),
        ],
        nft_tables: vec![table.clone()],
        pids: Default::default(),
    };

    // vm1 is an instance the metadata API knows; vm2 is not.
    let iid = uuid::Uuid::new_v4().to_string();
    let stub = start_stub_metadata(SECRET, HashMap::from([(iid.clone(), "proj".to_owned())])).await;
    let server = Arc::new(FakeServer::default());
    server
        .dhcp_ports
        .lock()
        .expect("lock")
        .insert(net_id, dhcp_port.clone());
    server.instances.lock().expect("lock").insert(
        ip(11),
        InstanceLookup {
            instance_id: iid.clone(),
            project_id: "proj".into(),
        },
    );

    let settings = AgentSettings {
        host: "testhost".into(),
        driver: Driver::Linuxbridge,
        state_dir: state.path().join("agent"),
        metadata_port: 80,
        metadata_url: format!("http://{stub}"),
        metadata_secret: SECRET.into(),
        firewall_table: table.clone(),
        report_interval_secs: 30,
    };
    let dhcp = DhcpAgent::new(settings.clone(), server.clone());
    let l2 = L2Agent::new(settings.clone(), server.clone());

    // --- the DHCP side of the network
    dhcp.network_sync(net.clone()).await.expect("network_sync");
    let pid1 = dhcp.dnsmasq_pid(&net_id).await.expect("dnsmasq runs");
    cleanup.pids.lock().expect("lock").push(pid1);
    assert!(netns::exists(&names::dhcp_namespace(&net_id)));
    assert!(Links::host()
        .expect("nl")
        .exists(&names::bridge(&net_id))
        .await
        .expect("link"));
    // Replaying the same sync is harmless (bus redelivery).
    dhcp.network_sync(net.clone())
        .await
        .expect("network_sync again");
    assert_eq!(
        dhcp.dnsmasq_pid(&net_id).await,
        Some(pid1),
        "same config: reload, not restart"
    );

    // --- guests, plugged by the L2 agent; both groups allow ICMP in, all out
    make_guest(&g1, &names::tap(&vm1.id), &if1, &vm1.mac_address).await;
    make_guest(&g2, &names::tap(&vm2.id), &if2, &vm2.mac_address).await;
    let open = |sg| vec![rule(sg, "egress", None), rule(sg, "ingress", Some("icmp"))];
    l2.port_bind(PortBind {
        port: vm1.clone(),
        rules: open(sg1),
        members: BTreeMap::new(),
    })
    .await
    .expect("bind vm1");
    l2.port_bind(PortBind {
        port: vm2.clone(),
        rules: open(sg2),
        members: BTreeMap::new(),
    })
    .await
    .expect("bind vm2");
    let statuses = server.statuses();
    assert!(
        statuses.contains(&(vm1.id, "ACTIVE".into()))
            && statuses.contains(&(vm2.id, "ACTIVE".into()))
    );

    // --- DHCP: vm1 is in the hosts file, gets exactly its fixed IP
    let (ok, out) = dhcp_in(&g1, &if1, &script);
    assert!(ok, "udhcpc in guest 1: {out}");
    assert_eq!(ipv4_addrs(&g1, &if1), vec![format!("{}/24", ip(11))]);
    let (_, routes) = sh(&["ip", "netns", "exec", &g1, "ip", "route"]);
    assert!(
        routes.contains(&format!("169.254.169.254 via {}", ip(2))),
        "option 121 route: {routes}"
    );

    // vm2 joins the network: hosts file rewritten, dnsmasq reloaded (same PID)
    net.ports.push(vm2.clone());
    dhcp.network_sync(net.clone()).await.expect("sync with vm2");
    assert_eq!(dhcp.dnsmasq_pid(&net_id).await, Some(pid1));
    let (ok, out) = dhcp_in(&g2, &if2, &script);
    assert!(ok, "udhcpc in guest 2: {out}");
    assert_eq!(ipv4_addrs(&g2, &if2), vec![format!("{}/24", ip(12))]);

    // --- the guests ping each other
    assert!(ping(&g1, ip(12)), "guest 1 -> guest 2");
    assert!(ping(&g2, ip(11)), "guest 2 -> guest 1");

    // --- metadata through the proxy, signed; vm2 is no instance -> 404
    let (ok, body) = fetch_metadata(&g1);
    assert!(ok, "metadata fetch from guest 1: {body}");
    let md: serde_json::Value = serde_json::from_str(body.trim()).expect("meta_data.json");
    assert_eq!(md["uuid"], iid.as_str());
    assert_eq!(md["project_id"], "proj");
    let (ok, body) = fetch_metadata(&g2);
    assert!(
        !ok && body.contains("404"),
        "unknown source must get 404: {body}"
    );
    // The stub refuses a forged signature, as Nova does.
    let client = reqwest::Client::new();
    let forged = client
        .get(format!("http://{stub}/openstack/latest/meta_data.json"))
        .header("X-Instance-ID", &iid)
        .header("X-Tenant-ID", "proj")
        .header("X-Forwarded-For", ip(11).to_string())
        .header("X-Instance-ID-Signature", sign("wrong-secret", &iid))
        .send()
        .await
        .expect("stub reachable");
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);

    // --- security groups: vm2 loses its ICMP ingress rule
    l2.port_bind(PortBind {
        port: vm2.clone(),
        rules: vec![rule(sg2, "egress", None)],
        members: BTreeMap::new(),
    })
    .await
    .expect("rebind vm2");
    assert!(
        !ping(&g1, ip(12)),
        "vm2 has no ingress rule: must not answer"
    );
    assert!(
        ping(&g2, ip(11)),
        "vm2 -> vm1 still allowed (egress + vm1's ingress, reply established)"
    );
    // ...and ingress from a remote group containing vm1 opens it again.
    let mut from_group = rule(sg2, "ingress", Some("icmp"));
    from_group.remote_group_id = Some(sg1);
    l2.port_bind(PortBind {
        port: vm2.clone(),
        rules: vec![rule(sg2, "egress", None), from_group],
        members: BTreeMap::from([(sg1, vec![ip(11)])]),
    })
    .await
    .expect("rebind vm2 with remote group");
    assert!(ping(&g1, ip(12)), "vm1 is in the remote group");

    // --- dnsmasq killed -> restarted by the supervisor, and still serves
    sh(&["kill", "-9", &pid1.to_string()]);
    let mut pid2 = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Some(p) = dhcp
            .dnsmasq_pid(&net_id)
            .await
            .filter(|p| *p != pid1 && alive(*p))
        {
            pid2 = Some(p);
            break;
        }
    }
    let pid2 = pid2.expect("dnsmasq restarted");
    cleanup.pids.lock().expect("lock").push(pid2);
    let (ok, out) = dhcp_in(&g2, &if2, &script);
    assert!(ok, "DHCP after restart: {out}");

    // --- agent restart after a crash: the old agent's dnsmasq is still
    // running (an orphan named by our pid file); the new agent kills exactly
    // that PID and converges again through resync.
    dhcp.shutdown().await;
    assert!(!alive(pid2), "shutdown stops dnsmasq");
    let ns = names::dhcp_namespace(&net_id);
    let dir = state
        .path()
        .join("agent")
        .join("dhcp")
        .join(net_id.to_string());
    let hosts = dir.join("host");
    let mut orphan = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "dnsmasq",
            "--keep-in-foreground",
            "--port=0",
            "--no-hosts",
        ])
        .args([
            "--no-resolv",
            "--conf-file=/dev/null",
            "--bind-interfaces",
            "--user=root",
            "--group=root",
        ])
        .arg(format!("--interface={}", names::ns_end(&dhcp_port.id)))
        .arg(format!("--dhcp-hostsfile={}", hosts.display()))
        .arg(format!("--dhcp-range={prefix}.0,static,255.255.255.0"))
        .spawn()
        .expect("orphan dnsmasq");
    cleanup.pids.lock().expect("lock").push(orphan.id());
    std::fs::write(dir.join("pid"), format!("{}\n", orphan.id())).expect("pid file");
    server
        .networks
        .lock()
        .expect("lock")
        .insert(net_id, net.clone());
    let dhcp = DhcpAgent::new(settings.clone(), server.clone());
    dhcp.resync().await.expect("resync after restart");
    let status = orphan.wait().expect("orphan reaped");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "orphan killed"
    );
    let pid3 = dhcp
        .dnsmasq_pid(&net_id)
        .await
        .expect("dnsmasq after resync");
    cleanup.pids.lock().expect("lock").push(pid3);
    assert!(alive(pid3));
    let (ok, out) = dhcp_in(&g2, &if2, &script);
    assert!(ok, "DHCP after agent restart: {out}");
    let (ok, body) = fetch_metadata(&g1);
    assert!(
        ok && body.contains(&iid),
        "metadata after agent restart: {body}"
    );

    // --- network deleted: no namespace, no bridge, no dnsmasq
    // The DHCP agent goes first: guest taps are still on the bridge, so it
    // must leave the bridge to the L2 agent.
    dhcp.network_delete(net_id)
        .await
        .expect("dhcp network_delete");
    assert!(!netns::exists(&names::dhcp_namespace(&net_id)));
    let host = Links::host().expect("nl");
    assert!(
        host.exists(&names::bridge(&net_id)).await.expect("link"),
        "bridge kept for guests"
    );
    l2.network_delete(net_id).await.expect("l2 network_delete");
    assert!(!host.exists(&names::bridge(&net_id)).await.expect("link"));
    assert!(!host.exists(&names::tap(&vm1.id)).await.expect("link"));
    assert!(!alive(pid3), "dnsmasq must be gone");
    assert!(dhcp.dnsmasq_pid(&net_id).await.is_none());
    let (_, tables) = sh(&["nft", "list", "tables"]);
    assert!(
        !tables.contains(&table),
        "firewall tables removed with the last port: {tables}"
    );
    drop(cleanup);
}

/// The IPv4 leases in dnsmasq's lease file: (address, MAC) pairs.
fn leases_in(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("leases"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[2].contains('.')).then(|| (f[2].to_owned(), f[1].to_owned()))
        })
        .collect()
}

/// Regression: a port deleted and its address given at once to a new port
/// (another MAC). dnsmasq still held the old port's lease and refused the
/// new guest until it expired; the agent now releases it (`dhcp_release`)
/// before reloading the hosts file, and drops such leases from the lease
/// file before a dnsmasq (re)starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linux_bridge_dhcp_releases_a_deleted_ports_lease() {
    if let Some(why) = kernel_tests_unavailable() {
        eprintln!("SKIPPED linux_bridge_dhcp_releases_a_deleted_ports_lease: {why}");
        return;
    }
    if !sh(&["sh", "-c", "command -v dhcp_release"]).0 {
        eprintln!(
            "SKIPPED linux_bridge_dhcp_releases_a_deleted_ports_lease: \
             `dhcp_release` unavailable (Debian package dnsmasq-utils)"
        );
        return;
    }
    let state = tempfile::tempdir().expect("tempdir");
    let script = state.path().join("udhcpc.sh");
    std::fs::write(&script, UDHCPC_SCRIPT).expect("script");
    sh(&["chmod", "755", script.to_str().expect("utf8")]);

    let b = u8::from_str_radix(&uniq(2), 16).expect("hex");
    let prefix = format!("10.214.{b}");
    let ip = |last: u8| -> IpAddr { format!("{prefix}.{last}").parse().expect("ip") };
    let net_id = NetworkId::new();
    let subnet_id = SubnetId::new();
    let dhcp_port = port(
        net_id,
        subnet_id,
        "fa:16:3e:d1:00:02",
        ip(2),
        DEVICE_OWNER_DHCP,
        vec![],
    );
    // Three ports in turn on one address, as deletes and creates reuse it.
    let (mac_a, mac_b) = ("fa:16:3e:a1:00:21", "fa:16:3e:b2:00:21");
    let vm1 = port(net_id, subnet_id, mac_a, ip(21), "compute:nova", vec![]);
    let vm2 = port(net_id, subnet_id, mac_b, ip(21), "compute:nova", vec![]);
    let vm3 = port(net_id, subnet_id, mac_a, ip(21), "compute:nova", vec![]);
    let mut net = NetworkInfo {
        id: net_id,
        project_id: "proj".into(),
        mtu: 1500,
        subnets: vec![SubnetInfo {
            id: subnet_id,
            cidr: format!("{prefix}.0/24").parse().expect("cidr"),
            gateway_ip: Some(ip(1)),
            enable_dhcp: true,
            dns_nameservers: vec![],
            host_routes: vec![],
            ip_version: 4,
        }],
        ports: vec![dhcp_port.clone(), vm1.clone()],
    };

    // Two guests, one per MAC, plugged straight into the bridge (no L2
    // agent: no firewall is needed to show what dnsmasq answers).
    let (ga, gb) = (format!("stxla-{}", uniq(8)), format!("stxlb-{}", uniq(8)));
    let (ifa, ifb) = (format!("gv{}", uniq(8)), format!("gv{}", uniq(8)));
    let (tap_a, tap_b) = (format!("stxta{}", uniq(6)), format!("stxtb{}", uniq(6)));
    let cleanup = Cleanup {
        namespaces: vec![ga.clone(), gb.clone(), names::dhcp_namespace(&net_id)],
        links: vec![
            tap_a.clone(),
            tap_b.clone(),
            names::tap(&dhcp_port.id),
            names::bridge(&net_id),
        ],
        nft_tables: vec![],
        pids: Default::default(),
    };
    let server = Arc::new(FakeServer::default());
    server
        .dhcp_ports
        .lock()
        .expect("lock")
        .insert(net_id, dhcp_port.clone());
    let settings = AgentSettings {
        host: "testhost".into(),
        driver: Driver::Linuxbridge,
        state_dir: state.path().join("agent"),
        // The proxy listens inside the namespace; it is not under test.
        metadata_port: 80,
        metadata_url: "http://127.0.0.1:9".into(),
        metadata_secret: SECRET.into(),
        firewall_table: format!("stx{}", uniq(8)),
        report_interval_secs: 30,
    };
    let dir = settings.state_dir.join("dhcp").join(net_id.to_string());
    let dhcp = DhcpAgent::new(settings.clone(), server.clone());
    dhcp.network_sync(net.clone()).await.expect("network_sync");
    let pid = dhcp.dnsmasq_pid(&net_id).await.expect("dnsmasq runs");
    cleanup.pids.lock().expect("lock").push(pid);

    let host = Links::host().expect("netlink");
    let bridge = names::bridge(&net_id);
    for (ns, tap, ifname, mac) in [(&ga, &tap_a, &ifa, mac_a), (&gb, &tap_b, &ifb, mac_b)] {
        make_guest(ns, tap, ifname, mac).await;
        host.set_controller(tap, &bridge).await.expect("plug");
        host.set_up(tap).await.expect("tap up");
    }

    // vm1's guest takes the address.
    let (ok, out) = dhcp_in(&ga, &ifa, &script);
    assert!(ok, "udhcpc as vm1: {out}");
    assert_eq!(ipv4_addrs(&ga, &ifa), vec![format!("{}/24", ip(21))]);
    assert!(leases_in(&dir).contains(&(ip(21).to_string(), mac_a.to_owned())));
    sh(&[
        "ip", "netns", "exec", &ga, "ip", "addr", "flush", "dev", &ifa,
    ]);

    // vm1's port goes, vm2's comes on the same address with another MAC:
    // the running dnsmasq lets go of vm1's lease and serves vm2.
    net.ports = vec![dhcp_port.clone(), vm2.clone()];
    dhcp.network_sync(net.clone()).await.expect("sync with vm2");
    assert_eq!(dhcp.dnsmasq_pid(&net_id).await, Some(pid), "reloaded");
    let (ok, out) = dhcp_in(&gb, &ifb, &script);
    assert!(ok, "udhcpc as vm2 on vm1's old address: {out}");
    assert_eq!(ipv4_addrs(&gb, &ifb), vec![format!("{}/24", ip(21))]);
    let leases = leases_in(&dir);
    assert!(
        !leases.contains(&(ip(21).to_string(), mac_a.to_owned())),
        "vm1's lease released: {leases:?}"
    );
    sh(&[
        "ip", "netns", "exec", &gb, "ip", "addr", "flush", "dev", &ifb,
    ]);

    // The agent stops (dnsmasq with it, vm2's lease left in the file);
    // meanwhile vm2's port goes and vm3 takes the address with MAC A. The
    // new agent's dnsmasq must not load vm2's lease.
    dhcp.shutdown().await;
    assert!(leases_in(&dir).contains(&(ip(21).to_string(), mac_b.to_owned())));
    net.ports = vec![dhcp_port.clone(), vm3.clone()];
    let dhcp = DhcpAgent::new(settings.clone(), server.clone());
    dhcp.network_sync(net.clone())
        .await
        .expect("sync after restart");
    let pid = dhcp.dnsmasq_pid(&net_id).await.expect("dnsmasq again");
    cleanup.pids.lock().expect("lock").push(pid);
    let (ok, out) = dhcp_in(&ga, &ifa, &script);
    assert!(ok, "udhcpc as vm3 after an agent restart: {out}");
    assert_eq!(ipv4_addrs(&ga, &ifa), vec![format!("{}/24", ip(21))]);

    dhcp.network_delete(net_id).await.expect("network_delete");
    assert!(!netns::exists(&names::dhcp_namespace(&net_id)));
    drop(cleanup);
}
