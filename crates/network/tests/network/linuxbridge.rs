//! The network issue's acceptance test: the whole network stack in one
//! process with the `linuxbridge` driver — the Neutron server (REST API, bus
//! topic `network`), the DHCP agent (namespace, dnsmasq, metadata proxy) and
//! the L2 agent (bridge, taps, nftables) of host "testhost" on one in-memory
//! bus, and the real compute metadata API (`stratus-metadata`) on loopback.
//!
//! Guests are network namespaces. A guest is attached the way a hypervisor
//! attaches a VM: its interface exists, named `tap<port11>`, on the host
//! before the port is bound. A real tap only carries traffic while a process
//! (QEMU) holds its file descriptor, and a namespace cannot hold the far end
//! of a tap, so the "tap" is the host end of a veth pair whose other end
//! (with the port's MAC) lives in the guest namespace. The L2 agent finds the
//! device there, as Neutron's agent finds the tap libvirt made, and plugs it
//! into `brq<net11>` with the port's security groups. Hence the order of
//! Nova's own flow: create the port, make the device, bind the port to the
//! host (`binding:host_id`), wait for ACTIVE.
//!
//! Root only (skips with a message otherwise). Everything it makes has a
//! unique name and is removed by a Drop guard, also on panic; nothing
//! touches eth0; traffic stays inside the namespaces and on loopback.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::StatusCode;
use serde_json::{json, Value};
use stratus_bus::Bus;
use stratus_common::ids::{InstanceId, NetworkId, PortId, ProjectId};
use stratus_db::Db;
use stratus_metadata::{InstanceMetadata, InstanceSource, MetadataConfig, SourceError};
use stratus_network::{DriverKind, NetworkConfig};
use stratus_network_agent::agent::{start_dhcp_agent_with, start_l2_agent_with, AgentKind};
use stratus_network_agent::config::{AgentSettings, Driver};
use stratus_network_agent::dataplane::names;
use stratus_network_agent::metadata_proxy::sign;
use stratus_network_agent::server::BusServer;

use crate::common::*;

const HOST: &str = "testhost";
const SECRET: &str = "full-stack-metadata-secret";

/// Runs a command without blocking the runtime (the agents and the metadata
/// proxy run on it); returns (success, stdout + stderr).
async fn sh(args: &[&str]) -> (bool, String) {
    match tokio::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .await
    {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Why this test cannot run here, if it cannot.
pub async fn kernel_unavailable() -> Option<String> {
    if sh(&["id", "-u"]).await.1.trim() != "0" {
        return Some("not root".into());
    }
    for args in [
        &["ip", "netns", "list"][..],
        &["dnsmasq", "--version"],
        &["busybox", "true"],
        &["nft", "--version"],
    ] {
        if !sh(args).await.0 {
            return Some(format!("`{}` unavailable", args.join(" ")));
        }
    }
    None
}

fn uniq(n: usize) -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(n);
    s
}

/// What the test made, removed on drop in reverse order of danger:
/// processes (only PIDs recorded here), namespaces, links, nft tables.
#[derive(Default)]
struct Guard {
    pids: Mutex<Vec<u32>>,
    namespaces: Mutex<Vec<String>>,
    links: Mutex<Vec<String>>,
    nft_tables: Mutex<Vec<String>>,
}

impl Guard {
    fn add(list: &Mutex<Vec<String>>, item: String) {
        if let Ok(mut l) = list.lock() {
            l.push(item);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        use std::process::{Command, Stdio};
        let take = |m: &Mutex<Vec<String>>| m.lock().map(|v| v.clone()).unwrap_or_default();
        for pid in self.pids.lock().map(|p| p.clone()).unwrap_or_default() {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        for ns in take(&self.namespaces) {
            if Path::new("/run/netns").join(&ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            }
        }
        for l in take(&self.links) {
            let _ = Command::new("ip")
                .args(["link", "del", &l])
                .stderr(Stdio::null())
                .status();
        }
        for t in take(&self.nft_tables) {
            for fam in ["bridge", "inet"] {
                let _ = Command::new("nft")
                    .args(["delete", "table", fam, &t])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// The compute side of metadata: instances by id, in memory.
#[derive(Default)]
struct Instances(Mutex<HashMap<InstanceId, InstanceMetadata>>);

#[async_trait]
impl InstanceSource for Instances {
    async fn instance(&self, id: InstanceId) -> Result<Option<InstanceMetadata>, SourceError> {
        Ok(self.0.lock().expect("lock").get(&id).cloned())
    }
    async fn set_password(&self, _id: InstanceId, _pw: String) -> Result<bool, SourceError> {
        Ok(false)
    }
}

fn instance(id: InstanceId, name: &str) -> InstanceMetadata {
    InstanceMetadata {
        uuid: id,
        project_id: ProjectId::from(PROJECT_A),
        name: name.to_owned(),
        hostname: name.to_owned(),
        launch_index: 0,
        availability_zone: Some("nova".into()),
        reservation_id: "r-fullstck".into(),
        flavor_name: "m1.tiny".into(),
        image_id: None,
        metadata: BTreeMap::new(),
        user_data: None,
        key: None,
        security_groups: vec!["default".into()],
        created_at: chrono::Utc::now(),
        vifs: Vec::new(),
        password: None,
        root_device_name: None,
        volume_device_names: Vec::new(),
    }
}

/// The metadata API on an ephemeral loopback port.
async fn start_metadata(source: Arc<Instances>) -> SocketAddr {
    let cfg = MetadataConfig {
        shared_secret: SECRET.into(),
        cache_ttl_secs: 0,
        ..MetadataConfig::default()
    };
    let app = stratus_metadata::router(cfg, source);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind metadata");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
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

/// A guest: namespace `ns` with interface `ifname` (MAC `mac`) whose peer,
/// named as the port's tap, waits in the root namespace for the L2 agent.
async fn make_guest(ns: &str, tap: &str, ifname: &str, mac: &str) {
    for args in [
        vec!["ip", "netns", "add", ns],
        vec!["ip", "-n", ns, "link", "set", "lo", "up"],
        vec![
            "ip", "link", "add", tap, "type", "veth", "peer", "name", ifname, "netns", ns,
        ],
        vec!["ip", "-n", ns, "link", "set", ifname, "address", mac],
        vec!["ip", "-n", ns, "link", "set", ifname, "up"],
    ] {
        let (ok, out) = sh(&args).await;
        assert!(ok, "{}: {out}", args.join(" "));
    }
}

async fn udhcpc(ns: &str, ifname: &str, script: &Path) -> (bool, String) {
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
    .await
}

async fn ipv4_addrs(ns: &str, ifname: &str) -> Vec<String> {
    let (_, out) = sh(&["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", ifname]).await;
    out.lines()
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .map(str::to_owned)
        })
        .collect()
}

async fn ping_once(ns: &str, to: &str) -> bool {
    sh(&[
        "ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "1", to,
    ])
    .await
    .0
}

/// Waits (bounded) until a ping from `ns` to `to` succeeds (`want`) or
/// fails: rule changes reach the L2 agent asynchronously, and the first
/// packets may race ARP.
async fn ping_becomes(ns: &str, to: &str, want: bool) -> bool {
    for _ in 0..15 {
        if ping_once(ns, to).await == want {
            // A failure must be stable, not one lost packet.
            if want || !ping_once(ns, to).await {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

async fn fetch_metadata(ns: &str) -> (bool, String) {
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
    .await
}

async fn link_exists(name: &str) -> bool {
    sh(&["ip", "link", "show", "dev", name]).await.0
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// Polls (bounded) until `f` holds.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn port_status(c: &Cloud, port: &str) -> String {
    let (_, b) = c
        .call("GET", &format!("/v2.0/ports/{port}"), Some(ADMIN), None)
        .await;
    s(&b["port"]["status"])
}

struct Guest {
    ns: String,
    ifname: String,
    port: String,
    ip: String,
    instance: InstanceId,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linuxbridge_full_stack() {
    // Warnings of the server and agents show with a failure (test writer).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    if let Some(why) = kernel_unavailable().await {
        eprintln!("SKIPPED linuxbridge_full_stack: {why}");
        return;
    }
    for t in dbs().await {
        full_stack_on(&t.db).await;
        t.cleanup().await;
    }
}

async fn full_stack_on(db: &Db) {
    let guard = Guard::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("udhcpc.sh");
    std::fs::write(&script, UDHCPC_SCRIPT).expect("script");
    sh(&["chmod", "755", script.to_str().expect("utf8")]).await;
    let table = format!("stxfs{}", uniq(8));
    Guard::add(&guard.nft_tables, table.clone());

    // --- compute's metadata API, the server, both agents, one bus
    let instances = Arc::new(Instances::default());
    let metadata = start_metadata(instances.clone()).await;
    let bus = Bus::in_memory();
    let config = NetworkConfig {
        driver: DriverKind::Linuxbridge,
        dhcp_host: HOST.into(),
        metadata_secret: SECRET.into(),
        ..NetworkConfig::default()
    };
    let c = Cloud::start_on(db, config, bus.clone()).await;
    let settings = AgentSettings {
        host: HOST.into(),
        driver: Driver::Linuxbridge,
        state_dir: dir.path().join("agent"),
        metadata_port: 80,
        metadata_url: format!("http://{metadata}"),
        metadata_secret: SECRET.into(),
        firewall_table: table.clone(),
        report_interval_secs: 3600,
    };
    let server = Arc::new(BusServer::new(bus.clone()));
    let dhcp = start_dhcp_agent_with(settings.clone(), &bus, server.clone())
        .await
        .expect("dhcp agent");
    let l2 = start_l2_agent_with(settings, &bus, server)
        .await
        .expect("l2 agent");
    let AgentKind::Dhcp(dhcp_state) = dhcp.kind().clone() else {
        panic!("not the DHCP agent");
    };
    let AgentKind::L2(l2_state) = l2.kind().clone() else {
        panic!("not the L2 agent");
    };

    // --- network and subnet through the API (a range private to this test)
    let b = u8::from_str_radix(&uniq(2), 16).expect("hex");
    let cidr = format!("10.214.{b}.0/24");
    let (net, subnet) = net_with_subnet(&c, ALICE, "fullstack", Some(&cidr)).await;
    let net_id: NetworkId = net.parse().expect("network id");
    Guard::add(&guard.namespaces, names::dhcp_namespace(&net_id));
    Guard::add(&guard.links, names::bridge(&net_id));
    // The DHCP agent plumbs the network: namespace, its port, dnsmasq.
    eventually("dnsmasq for the network", || {
        let d = dhcp_state.clone();
        async move { d.dnsmasq_pid(&net_id).await.is_some() }
    })
    .await;
    let dnsmasq = dhcp_state.dnsmasq_pid(&net_id).await.expect("dnsmasq pid");
    if let Ok(mut p) = guard.pids.lock() {
        p.push(dnsmasq);
    }
    let (_, b) = c
        .call(
            "GET",
            &format!("/v2.0/ports?network_id={net}&device_owner=network:dhcp"),
            Some(ADMIN),
            None,
        )
        .await;
    let dhcp_port: PortId = s(&b["ports"][0]["id"]).parse().expect("dhcp port");
    let dhcp_ip = s(&b["ports"][0]["fixed_ips"][0]["ip_address"]);
    Guard::add(&guard.links, names::tap(&dhcp_port));

    // --- two instances' ports: created, device made, bound to the host
    let mut guests = Vec::new();
    for i in 1..=2 {
        let instance = InstanceId::new();
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/ports",
                Some(ALICE),
                Some(json!({"port": {"network_id": net, "name": format!("vm{i}"),
                    "device_owner": "compute:nova", "device_id": instance.to_string()}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_eq!(b["port"]["status"], "DOWN");
        let port = s(&b["port"]["id"]);
        let port_id: PortId = port.parse().expect("port id");
        let ip = s(&b["port"]["fixed_ips"][0]["ip_address"]);
        assert_eq!(s(&b["port"]["fixed_ips"][0]["subnet_id"]), subnet);
        let mac = s(&b["port"]["mac_address"]);
        let ns = format!("stxfs{i}-{}", uniq(8));
        let ifname = format!("eth{}", uniq(6));
        let tap = names::tap(&port_id);
        Guard::add(&guard.namespaces, ns.clone());
        Guard::add(&guard.links, tap.clone());
        make_guest(&ns, &tap, &ifname, &mac).await;
        instances
            .0
            .lock()
            .expect("lock")
            .insert(instance, instance_for(instance, i));
        let (st, b) = c
            .call(
                "PUT",
                &format!("/v2.0/ports/{port}"),
                Some(ADMIN),
                Some(json!({"port": {"binding:host_id": HOST}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{b}");
        guests.push(Guest {
            ns,
            ifname,
            port,
            ip,
            instance,
        });
    }
    let cr = &c;
    for g in &guests {
        eventually("port ACTIVE", move || async move {
            port_status(cr, &g.port).await == "ACTIVE"
        })
        .await;
    }
    // ACTIVE told compute, as Nova's network-vif-plugged event.
    let events = c.compute.wait_for(2).await;
    for g in &guests {
        assert!(
            events
                .iter()
                .any(|(server, port)| *server == g.instance.to_string()
                    && port.to_string() == g.port),
            "vif-plugged for {}: {events:?}",
            g.port
        );
    }
    // Each binding's seed steps 26–38, the agents' (29–32 DHCP, 34–36 L2)
    // sent to and kept by the server, found by the instance.
    for g in &guests {
        let instance = g.instance.to_string();
        let want: Vec<(u64, &str)> = (26..=38)
            .map(|n| {
                let service = match n {
                    29..=32 => "dhcp-agent",
                    34..=36 => "l2-agent",
                    _ => "network",
                };
                (n, service)
            })
            .collect();
        let want = &want;
        let instance = &instance;
        eventually("seed steps 26-38 recorded", move || async move {
            let (st, b) = cr
                .call(
                    "GET",
                    &format!("/stratus/events?resource_id={instance}"),
                    Some(ADMIN),
                    None,
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{b}");
            let events = b["events"].as_array().cloned().unwrap_or_default();
            want.iter().all(|(n, service)| {
                events
                    .iter()
                    .any(|e| e["step"] == *n && e["service"] == *service && e["outcome"] == "ok")
            })
        })
        .await;
    }

    // --- DHCP: each guest gets exactly its port's fixed IP from our dnsmasq
    for g in &guests {
        let (ok, out) = udhcpc(&g.ns, &g.ifname, &script).await;
        assert!(ok, "udhcpc in {}: {out}", g.ns);
        let prefix_len = cidr.rsplit('/').next().expect("prefix");
        assert_eq!(
            ipv4_addrs(&g.ns, &g.ifname).await,
            vec![format!("{}/{prefix_len}", g.ip)],
            "{out}"
        );
        assert!(
            out.contains(&dhcp_ip),
            "lease from the DHCP port {dhcp_ip}: {out}"
        );
    }

    // --- the guests ping each other (default group: ingress from members)
    assert!(
        ping_becomes(&guests[0].ns, &guests[1].ip, true).await,
        "guest 1 -> guest 2"
    );
    assert!(
        ping_becomes(&guests[1].ns, &guests[0].ip, true).await,
        "guest 2 -> guest 1"
    );

    // --- metadata: each guest reads its own instance, through proxy ->
    // lookup_instance over the bus -> signed request -> metadata API
    for g in &guests {
        let (ok, body) = fetch_metadata(&g.ns).await;
        assert!(ok, "metadata from {}: {body}", g.ns);
        let md: Value = serde_json::from_str(body.trim()).expect("meta_data.json");
        assert_eq!(md["uuid"], g.instance.to_string(), "{body}");
        assert_eq!(md["project_id"], PROJECT_A);
    }
    // A forged signature sent straight to the metadata API: 403.
    let iid = guests[0].instance.to_string();
    let forged = reqwest::Client::new()
        .get(format!("http://{metadata}/openstack/latest/meta_data.json"))
        .header("X-Instance-ID", &iid)
        .header("X-Tenant-ID", PROJECT_A)
        .header("X-Forwarded-For", &guests[0].ip)
        .header("X-Instance-ID-Signature", sign("not-the-secret", &iid))
        .send()
        .await
        .expect("metadata API reachable");
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);

    // --- security groups: guest 2 in a group without ingress rules
    let (st, b) = c
        .call(
            "POST",
            "/v2.0/security-groups",
            Some(ALICE),
            Some(json!({"security_group": {"name": "closed"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let closed = s(&b["security_group"]["id"]);
    assert!(
        b["security_group"]["security_group_rules"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| r["direction"] == "egress"),
        "a new group has egress rules only: {b}"
    );
    let (st, b) = c
        .call(
            "PUT",
            &format!("/v2.0/ports/{}", guests[1].port),
            Some(ALICE),
            Some(json!({"port": {"security_groups": [closed]}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert!(
        ping_becomes(&guests[0].ns, &guests[1].ip, false).await,
        "no ingress rule: guest 2 must not answer"
    );
    let (st, b) = c
        .call(
            "POST",
            "/v2.0/security-group-rules",
            Some(ALICE),
            Some(json!({"security_group_rule": {"security_group_id": closed,
                "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert!(
        ping_becomes(&guests[0].ns, &guests[1].ip, true).await,
        "ingress ICMP rule opens guest 2"
    );

    // --- remote-group members that come and go after guest 1 was bound.
    // Guest 1's default group takes ingress only from the group's members.
    // Guest 3 is an instance on another host: its port is bound there (no
    // L2 agent of this host touches it) and its traffic reaches the bridge
    // through an uplink, here a veth the test plugs in itself. So only a
    // member update can let it in: this host binds nothing new.
    let (_, b) = c
        .call(
            "GET",
            &format!("/v2.0/ports/{}", guests[0].port),
            Some(ALICE),
            None,
        )
        .await;
    let default_sg = s(&b["port"]["security_groups"][0]);
    let (st, b) = c
        .call(
            "POST",
            "/v2.0/ports",
            Some(ALICE),
            Some(json!({"port": {"network_id": net, "name": "remote-vm",
                "security_groups": [closed]}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let remote_port = s(&b["port"]["id"]);
    let (st, bound) = c
        .call(
            "PUT",
            &format!("/v2.0/ports/{remote_port}"),
            Some(ADMIN),
            Some(json!({"port": {"binding:host_id": "otherhost"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{bound}");
    let remote_ip = s(&b["port"]["fixed_ips"][0]["ip_address"]);
    let remote_ns = format!("stxfs3-{}", uniq(8));
    let remote_if = format!("eth{}", uniq(6));
    let uplink = format!("stxup{}", uniq(8));
    Guard::add(&guard.namespaces, remote_ns.clone());
    Guard::add(&guard.links, uplink.clone());
    make_guest(
        &remote_ns,
        &uplink,
        &remote_if,
        &s(&b["port"]["mac_address"]),
    )
    .await;
    let prefix_len = cidr.rsplit('/').next().expect("prefix");
    let bridge = names::bridge(&net_id);
    for args in [
        vec!["ip", "link", "set", &uplink, "master", &bridge],
        vec!["ip", "link", "set", &uplink, "up"],
    ] {
        let (ok, out) = sh(&args).await;
        assert!(ok, "{}: {out}", args.join(" "));
    }
    let addr = format!("{remote_ip}/{prefix_len}");
    let (ok, out) = sh(&[
        "ip", "-n", &remote_ns, "addr", "add", &addr, "dev", &remote_if,
    ])
    .await;
    assert!(ok, "address of the remote guest: {out}");
    assert!(
        ping_becomes(&remote_ns, &guests[0].ip, false).await,
        "not a member of guest 1's group: blocked"
    );
    let (full_before, sets_before) = l2_state.firewall().commit_counts();
    let (st, b) = c
        .call(
            "PUT",
            &format!("/v2.0/ports/{remote_port}"),
            Some(ALICE),
            Some(json!({"port": {"security_groups": [default_sg]}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert!(
        ping_becomes(&remote_ns, &guests[0].ip, true).await,
        "a member that joined after guest 1 was bound is let in"
    );
    assert!(member_set_has(&table, &default_sg, &remote_ip).await);
    let (full_after, sets_after) = l2_state.firewall().commit_counts();
    assert_eq!(full_after, full_before, "no port chain was rewritten");
    assert!(sets_after > sets_before, "the member set was updated");
    // Its port deleted: no longer a member, blocked again.
    let (st, b) = c
        .call(
            "DELETE",
            &format!("/v2.0/ports/{remote_port}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    assert!(
        ping_becomes(&remote_ns, &guests[0].ip, false).await,
        "a deleted member's address is blocked"
    );
    assert!(!member_set_has(&table, &default_sg, &remote_ip).await);
    assert_eq!(l2_state.firewall().commit_counts().0, full_before);
    let (ok, out) = sh(&["ip", "link", "del", &uplink]).await;
    assert!(ok, "uplink removed: {out}");

    // --- teardown through the API: taps, dnsmasq, namespace, bridge go
    for g in &guests {
        let (st, b) = c
            .call(
                "DELETE",
                &format!("/v2.0/ports/{}", g.port),
                Some(ALICE),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    }
    for g in &guests {
        let tap = names::tap(&g.port.parse().expect("port id"));
        eventually("guest tap removed", || link_exists_not(&tap)).await;
    }
    let (st, b) = c
        .call(
            "DELETE",
            &format!("/v2.0/networks/{net}"),
            Some(ALICE),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{b}");
    let qdhcp = names::dhcp_namespace(&net_id);
    eventually("DHCP namespace removed", || {
        let p = Path::new("/run/netns").join(&qdhcp);
        async move { !p.exists() }
    })
    .await;
    let bridge = names::bridge(&net_id);
    eventually("bridge removed", || link_exists_not(&bridge)).await;
    eventually("dnsmasq stopped", move || async move { !alive(dnsmasq) }).await;
    assert!(!link_exists(&names::tap(&dhcp_port)).await);
    assert!(dhcp_state.dnsmasq_pid(&net_id).await.is_none());
    let (_, tables) = sh(&["nft", "list", "tables"]).await;
    assert!(
        !tables.contains(&table),
        "firewall tables go with the last port: {tables}"
    );

    l2.stop().await;
    dhcp.stop().await;
    c.stop().await;
    drop(guard);
}

/// True if the member set of `group` in the firewall table holds `ip`.
async fn member_set_has(table: &str, group: &str, ip: &str) -> bool {
    let group: stratus_common::ids::SecurityGroupId = group.parse().expect("group id");
    let set = stratus_network_agent::l2::firewall::member_set_name(&group, false);
    let (ok, out) = sh(&["nft", "list", "set", "inet", table, &set]).await;
    assert!(ok, "nft list set {set}: {out}");
    out.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|w| w == ip)
}

async fn link_exists_not(name: &str) -> bool {
    !link_exists(name).await
}

fn instance_for(id: InstanceId, i: usize) -> InstanceMetadata {
    instance(id, &format!("vm{i}"))
}
