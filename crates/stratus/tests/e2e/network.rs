//! Network (Neutron v2.0) through the real `openstack` CLI: networks,
//! subnets, ports with their fixed IPs, security groups and rules, and the
//! error of an exhausted allocation pool.

use serde_json::Value;

use super::harness::{assert_success, column, field, Cloud};

/// `network create NAME` then `subnet create --network NAME
/// --subnet-range CIDR NAME-subnet` (extra subnet flags in `extra`); the
/// network and the subnet as the CLI shows them.
pub fn network_with_subnet(
    cloud: &Cloud,
    name: &str,
    cidr: &str,
    extra: &[&str],
) -> (Value, Value) {
    let net = cloud.openstack_json(&["network", "create", name]);
    let subnet_name = format!("{name}-subnet");
    let mut args = vec![
        "subnet",
        "create",
        "--network",
        name,
        "--subnet-range",
        cidr,
    ];
    args.extend(extra);
    args.push(&subnet_name);
    let subnet = cloud.openstack_json(&args);
    (net, subnet)
}

/// The IP addresses in a port's `fixed_ips` as the CLI prints them (a
/// list of `{subnet_id, ip_address}`).
fn fixed_ips(port: &Value) -> Vec<(String, String)> {
    port["fixed_ips"]
        .as_array()
        .unwrap_or_else(|| panic!("fixed_ips list: {port}"))
        .iter()
        .map(|f| {
            (
                f["subnet_id"].as_str().unwrap_or_default().to_owned(),
                f["ip_address"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn networks_subnets_and_ports() {
    let cloud = Cloud::start();
    let (net, subnet) = network_with_subnet(&cloud, "e2e-net", "10.20.0.0/24", &[]);
    let net_id = field(&net, "id");
    let subnet_id = field(&subnet, "id");
    assert_eq!(net["name"], "e2e-net");
    assert_eq!(net["admin_state_up"], true, "{net}");
    assert_eq!(subnet["cidr"], "10.20.0.0/24", "{subnet}");
    assert_eq!(subnet["network_id"], net_id.as_str(), "{subnet}");
    assert_eq!(subnet["ip_version"], 4, "{subnet}");
    assert_eq!(subnet["gateway_ip"], "10.20.0.1", "{subnet}");
    assert_eq!(subnet["enable_dhcp"], true, "{subnet}");
    let pools = subnet["allocation_pools"].to_string();
    assert!(
        pools.contains("10.20.0.2") && pools.contains("10.20.0.254"),
        "{pools}"
    );

    let nets = cloud.openstack_json(&["network", "list"]);
    assert!(column(&nets, "ID").contains(&net_id), "{nets}");
    let shown = cloud.openstack_json(&["network", "show", "e2e-net"]);
    assert_eq!(shown["id"], net_id.as_str());
    assert!(shown["subnets"].to_string().contains(&subnet_id), "{shown}");
    let subnets = cloud.openstack_json(&["subnet", "list", "--network", &net_id]);
    assert_eq!(column(&subnets, "ID"), [subnet_id.as_str()], "{subnets}");

    // A port gets an address of the subnet, outside the gateway.
    let port = cloud.openstack_json(&["port", "create", "--network", "e2e-net", "p1"]);
    let port_id = field(&port, "id");
    let ips = fixed_ips(&port);
    assert_eq!(ips.len(), 1, "{port}");
    assert_eq!(ips[0].0, subnet_id);
    assert!(
        ips[0].1.starts_with("10.20.0.") && ips[0].1 != "10.20.0.1",
        "{port}"
    );
    assert!(
        field(&port, "mac_address").starts_with("fa:16:3e:"),
        "{port}"
    );
    assert_eq!(port["network_id"], net_id.as_str());

    // A fixed address on request; the same address twice is a conflict.
    let fixed = cloud.openstack_json(&[
        "port",
        "create",
        "--network",
        "e2e-net",
        "--fixed-ip",
        "subnet=e2e-net-subnet,ip-address=10.20.0.50",
        "p2",
    ]);
    assert_eq!(fixed_ips(&fixed)[0].1, "10.20.0.50", "{fixed}");
    let err = cloud.openstack_fails(&[
        "port",
        "create",
        "--network",
        "e2e-net",
        "--fixed-ip",
        "subnet=e2e-net-subnet,ip-address=10.20.0.50",
        "p3",
    ]);
    assert!(err.contains("10.20.0.50"), "{err}");

    let ports = cloud.openstack_json(&["port", "list", "--network", &net_id]);
    let names = column(&ports, "Name");
    assert!(
        names.contains(&"p1".to_owned()) && names.contains(&"p2".to_owned()),
        "{ports}"
    );
    assert!(
        !names.contains(&"p3".to_owned()),
        "nothing half-made: {ports}"
    );

    cloud.openstack_ok(&[
        "port",
        "set",
        "--name",
        "p1-renamed",
        "--description",
        "e2e",
        &port_id,
    ]);
    let shown = cloud.openstack_json(&["port", "show", &port_id]);
    assert_eq!(shown["name"], "p1-renamed", "{shown}");
    assert_eq!(shown["description"], "e2e", "{shown}");
    assert_eq!(fixed_ips(&shown), ips, "the address stays");

    cloud.openstack_ok(&["port", "delete", &port_id, "p2"]);
    let ports = cloud.openstack_json(&["port", "list", "--network", &net_id]);
    let names = column(&ports, "Name");
    assert!(!names.contains(&"p1-renamed".to_owned()) && !names.contains(&"p2".to_owned()));
    assert!(!cloud
        .openstack(&["port", "show", &port_id])
        .status
        .success());

    // Deleting the network takes its subnet with it.
    cloud.openstack_ok(&["network", "delete", "e2e-net"]);
    let nets = cloud.openstack_json(&["network", "list"]);
    assert!(!column(&nets, "ID").contains(&net_id), "{nets}");
    let err = cloud.openstack_fails(&["subnet", "show", &subnet_id]);
    assert!(
        err.contains("No Subnet found") || err.contains("404"),
        "{err}"
    );
}

#[test]
fn an_exhausted_pool_gives_neutrons_error() {
    let cloud = Cloud::start();
    let (net, _) = network_with_subnet(
        &cloud,
        "tiny",
        "10.30.0.0/29",
        &[
            "--no-dhcp",
            "--allocation-pool",
            "start=10.30.0.2,end=10.30.0.3",
        ],
    );
    let net_id = field(&net, "id");
    let a = cloud.openstack_json(&["port", "create", "--network", "tiny", "a"]);
    let b = cloud.openstack_json(&["port", "create", "--network", "tiny", "b"]);
    let mut got = vec![fixed_ips(&a)[0].1.clone(), fixed_ips(&b)[0].1.clone()];
    got.sort();
    assert_eq!(got, ["10.30.0.2", "10.30.0.3"]);

    let err = cloud.openstack_fails(&["port", "create", "--network", "tiny", "c"]);
    assert!(
        err.contains(&format!(
            "No more IP addresses available on network {net_id}."
        )),
        "{err}"
    );
    // The failed port was not left behind.
    let ports = cloud.openstack_json(&["port", "list", "--network", &net_id]);
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");

    // Freeing an address makes it available again.
    cloud.openstack_ok(&["port", "delete", "a"]);
    let c = cloud.openstack_json(&["port", "create", "--network", "tiny", "c"]);
    assert_eq!(fixed_ips(&c)[0].1, fixed_ips(&a)[0].1);
}

#[test]
fn security_groups_and_rules() {
    let cloud = Cloud::start();
    let sg = cloud.openstack_json(&["security", "group", "create", "--description", "web", "web"]);
    let sg_id = field(&sg, "id");
    assert_eq!(sg["name"], "web");
    // A new group allows all egress (one rule per ethertype), as Neutron's.
    let rules = sg["rules"].to_string();
    assert!(rules.contains("egress"), "{sg}");

    let listed = cloud.openstack_json(&["security", "group", "list"]);
    let names = column(&listed, "Name");
    assert!(names.contains(&"web".to_owned()), "{listed}");
    // Every project has its `default` group.
    assert!(names.contains(&"default".to_owned()), "{listed}");

    let rule = cloud.openstack_json(&[
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        "--remote-ip",
        "0.0.0.0/0",
        "--ingress",
        "web",
    ]);
    assert_eq!(rule["security_group_id"], sg_id.as_str(), "{rule}");
    assert_eq!(rule["protocol"], "tcp", "{rule}");
    assert_eq!(rule["port_range_min"], 22, "{rule}");
    assert_eq!(rule["port_range_max"], 22, "{rule}");
    assert_eq!(rule["direction"], "ingress", "{rule}");
    assert_eq!(rule["remote_ip_prefix"], "0.0.0.0/0", "{rule}");

    let rules = cloud.openstack_json(&["security", "group", "rule", "list", "web"]);
    assert!(
        column(&rules, "ID").contains(&field(&rule, "id")),
        "{rules}"
    );

    // The same rule twice is Neutron's conflict.
    let err = cloud.openstack_fails(&[
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "22",
        "--remote-ip",
        "0.0.0.0/0",
        "--ingress",
        "web",
    ]);
    assert!(err.contains("already exists"), "{err}");

    cloud.openstack_ok(&["security", "group", "delete", "web"]);
    let listed = cloud.openstack_json(&["security", "group", "list"]);
    assert!(!column(&listed, "ID").contains(&sg_id), "{listed}");
}

/// Rules with port ranges Neutron refuses are 400s with its messages,
/// through the CLI and openstacksdk (the CLI itself refuses `90:80`).
#[test]
fn security_group_rules_with_bad_port_ranges_are_refused() {
    let cloud = Cloud::start();
    let sg = cloud.openstack_json(&["security", "group", "create", "ranges"]);
    let sg_id = field(&sg, "id");
    let rule = |extra: &[&str]| {
        let mut args = vec!["security", "group", "rule", "create", "--ingress"];
        args.extend(extra);
        args.push("ranges");
        cloud.openstack_fails(&args)
    };
    let err = rule(&["--protocol", "tcp", "--dst-port", "70000"]);
    assert!(err.contains("Invalid value for port 70000"), "{err}");
    let err = rule(&["--protocol", "udp", "--dst-port", "0"]);
    assert!(err.contains("Invalid value for port 0"), "{err}");
    let err = rule(&["--protocol", "gre", "--dst-port", "1:2"]);
    assert!(
        err.contains("Invalid protocol 47 for port range, only supported for"),
        "{err}"
    );
    let err = rule(&["--protocol", "icmp", "--icmp-type", "300"]);
    assert!(
        err.contains("Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255."),
        "{err}"
    );

    let script = r#"
import sys, openstack
from openstack import exceptions
conn = openstack.connect(cloud='stratus')
sg = sys.argv[1]
def refused(**kw):
    try:
        conn.network.create_security_group_rule(security_group_id=sg, direction='ingress', **kw)
    except exceptions.BadRequestException as e:
        return str(e)
    raise SystemExit('accepted: %r' % kw)
print(refused(protocol='tcp', port_range_min=90, port_range_max=80))
print(refused(protocol='tcp', port_range_min=90))
print(refused(port_range_min=22, port_range_max=22))
print(refused(protocol='icmp', port_range_max=3))
ok = conn.network.create_security_group_rule(security_group_id=sg, direction='ingress',
                                             protocol='tcp', port_range_min=80, port_range_max=81)
assert (ok.port_range_min, ok.port_range_max) == (80, 81)
print('sdk ranges ok')
"#;
    let out = cloud.python(script, &[&sg_id]);
    assert_success(&out, &["python", "sdk rule ranges"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "For TCP/UDP protocols, port_range_min must be <= port_range_max",
        "Must also specify protocol if port range is given.",
        "ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing.",
        "sdk ranges ok",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    // Nothing refused was stored: the two egress defaults and the one rule.
    let rules = cloud.openstack_json(&["security", "group", "rule", "list", "ranges"]);
    assert_eq!(column(&rules, "ID").len(), 3, "{rules}");
}

/// Tags through the CLI: `network set --tag`, `network list --tags`,
/// `port create --tag`, `network unset --tag`, and openstacksdk's tag
/// calls on a subnet and a security group.
#[test]
fn tags_through_the_cli_and_sdk() {
    let cloud = Cloud::start();
    let (net, subnet) = network_with_subnet(&cloud, "tagged", "10.30.0.0/24", &[]);
    let net_id = field(&net, "id");
    cloud.openstack_json(&["network", "create", "untagged"]);
    cloud.openstack_ok(&["network", "set", "--tag", "prod", "--tag", "web", "tagged"]);
    let shown = cloud.openstack_json(&["network", "show", "tagged"]);
    let mut tags: Vec<String> = shown["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("tags: {shown}"))
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tags.sort();
    assert_eq!(tags, ["prod", "web"], "{shown}");
    let listed = cloud.openstack_json(&["network", "list", "--tags", "prod"]);
    assert_eq!(column(&listed, "ID"), [net_id.as_str()], "{listed}");
    let listed = cloud.openstack_json(&["network", "list", "--not-tags", "prod"]);
    assert!(!column(&listed, "ID").contains(&net_id), "{listed}");
    let listed = cloud.openstack_json(&["network", "list", "--any-tags", "web,nope"]);
    assert_eq!(column(&listed, "ID"), [net_id.as_str()], "{listed}");

    let port = cloud.openstack_json(&[
        "port",
        "create",
        "--network",
        "tagged",
        "--tag",
        "frontend",
        "tagged-port",
    ]);
    assert_eq!(port["tags"], serde_json::json!(["frontend"]), "{port}");
    let listed = cloud.openstack_json(&["port", "list", "--tags", "frontend"]);
    assert_eq!(column(&listed, "ID"), [field(&port, "id")], "{listed}");

    cloud.openstack_ok(&["network", "unset", "--tag", "prod", "tagged"]);
    let shown = cloud.openstack_json(&["network", "show", "tagged"]);
    assert_eq!(shown["tags"], serde_json::json!(["web"]), "{shown}");
    let listed = cloud.openstack_json(&["network", "list", "--tags", "prod"]);
    assert!(column(&listed, "ID").is_empty(), "{listed}");

    let script = r#"
import sys, openstack
conn = openstack.connect(cloud='stratus')
sub = conn.network.get_subnet(sys.argv[1])
conn.network.set_tags(sub, ['a', 'b'])
assert sorted(conn.network.get_subnet(sub.id).tags) == ['a', 'b']
sg = conn.network.create_security_group(name='tagged-sg')
conn.network.add_tag(sg, 'db')
assert conn.network.get_security_group(sg.id).tags == ['db']
assert [s.id for s in conn.network.subnets(tags='a,b')] == [sub.id]
assert [g.id for g in conn.network.security_groups(any_tags='db')] == [sg.id]
print('sdk tags ok')
"#;
    let out = cloud.python(script, &[&field(&subnet, "id")]);
    assert_success(&out, &["python", "sdk tags"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sdk tags ok"));

    // The extension is advertised.
    let exts = cloud.openstack_json(&["extension", "list", "--network"]);
    assert!(
        column(&exts, "Alias").contains(&"standard-attr-tag".to_owned()),
        "{exts}"
    );
}

/// Whether the kernel has network interface `name`.
pub(super) fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The bridge interface `name` is enslaved to, if any.
fn link_master(name: &str) -> Option<String> {
    let target = std::fs::read_link(format!("/sys/class/net/{name}/master")).ok()?;
    target.file_name().map(|n| n.to_string_lossy().into_owned())
}

pub(super) fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Whether a dnsmasq runs in network namespace `namespace`.
fn runs_dnsmasq(namespace: &str) -> bool {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "dnsmasq")
        })
}

/// Waits up to a minute for `done`; fails with `what` after that.
pub(super) fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// `stratus up` with `[network] driver = "linuxbridge"` (root: it runs the
/// DHCP and L2 agents in the same process): a server launched with the CLI
/// gets its tap on its network's bridge and an ACTIVE port, the network its
/// `qdhcp-` namespace with dnsmasq in it; deleting the server, then the
/// network, removes every kernel object again.
#[test]
fn up_with_linuxbridge_plugs_servers_into_bridges_and_cleans_up() {
    let uid = std::process::Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0") {
        eprintln!("SKIPPED: the Linux-bridge driver needs root");
        return;
    }
    let cloud = Cloud::start_with(&[("STRATUS_NETWORK__DRIVER", "linuxbridge")]);
    let (net, _) = network_with_subnet(&cloud, "lb-net", "10.93.0.0/24", &[]);
    let net_id = field(&net, "id");
    let image = field(
        &super::image::create_image(&cloud, "lb-img", "--public"),
        "id",
    );
    let flavor = cloud.openstack_json(&[
        "flavor",
        "create",
        "--ram",
        "128",
        "--disk",
        "1",
        "--vcpus",
        "1",
        "lb-flavor",
    ]);
    let server = cloud.openstack_json(&[
        "server",
        "create",
        "--flavor",
        &field(&flavor, "id"),
        "--image",
        &image,
        "--network",
        &net_id,
        "--wait",
        "lb-vm",
    ]);
    assert_eq!(server["status"], "ACTIVE", "{server}");
    let server_id = field(&server, "id");
    assert!(
        server["addresses"].to_string().contains("10.93.0."),
        "{server}"
    );

    let ports = cloud.openstack_json(&["port", "list", "--server", &server_id]);
    let port_ids = column(&ports, "ID");
    assert_eq!(port_ids.len(), 1, "{ports}");
    let port = cloud.openstack_json(&["port", "show", &port_ids[0]]);
    assert_eq!(port["status"], "ACTIVE", "{port}");
    assert_eq!(port["binding_vif_type"], "bridge", "{port}");

    let bridge = format!("brq{}", &net_id[..11]);
    let tap = format!("tap{}", &port_ids[0][..11]);
    let namespace = format!("qdhcp-{net_id}");
    assert!(link_exists(&bridge), "bridge {bridge}");
    assert_eq!(link_master(&tap).as_deref(), Some(bridge.as_str()), "{tap}");
    eventually("the DHCP namespace runs dnsmasq", || {
        runs_dnsmasq(&namespace)
    });
    // The bridge carries guests only: it is not on any uplink.
    assert_eq!(link_master("eth0"), None, "eth0 must stay off our bridges");
    // The agents that did it report in, as Neutron's do.
    let agents = cloud.openstack_json(&["network", "agent", "list"]);
    let mut kinds = column(&agents, "Agent Type");
    kinds.sort();
    assert_eq!(kinds, ["DHCP agent", "Linux bridge agent"], "{agents}");
    assert!(
        agents
            .as_array()
            .is_some_and(|a| a.iter().all(|a| a["Alive"] == true && a["State"] == true)),
        "{agents}"
    );

    cloud.openstack_ok(&["server", "delete", "--wait", &server_id]);
    eventually("the tap goes with the server", || !link_exists(&tap));
    cloud.openstack_ok(&["subnet", "delete", "lb-net-subnet"]);
    cloud.openstack_ok(&["network", "delete", &net_id]);
    eventually("the bridge goes with the network", || !link_exists(&bridge));
    eventually("the namespace goes with the network", || {
        !netns_exists(&namespace)
    });
}

/// `stratus up` with the Linux-bridge driver and three fake hypervisors
/// (`compute-1..3`, one machine): the agents of the process answer for every
/// host name, so servers on any of them get an ACTIVE port with its tap on
/// the network's bridge (the build waits for `network-vif-plugged`), and
/// the network one `qdhcp-` namespace; deleting everything removes every
/// kernel object again.
#[test]
fn up_with_linuxbridge_and_three_fake_hosts_plugs_every_server() {
    let uid = std::process::Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0") {
        eprintln!("SKIPPED: the Linux-bridge driver needs root");
        return;
    }
    let cloud = Cloud::start_with(&[
        ("STRATUS_NETWORK__DRIVER", "linuxbridge"),
        ("STRATUS_COMPUTE__FAKE_HOSTS", "3"),
    ]);
    let (net, _) = network_with_subnet(&cloud, "lb3-net", "10.94.0.0/24", &[]);
    let net_id = field(&net, "id");
    let image = field(
        &super::image::create_image(&cloud, "lb3-img", "--public"),
        "id",
    );
    let flavor = field(
        &cloud.openstack_json(&[
            "flavor",
            "create",
            "--ram",
            "128",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "lb3-flavor",
        ]),
        "id",
    );
    let names = ["lb3-a", "lb3-b", "lb3-c"];
    let mut server_ids = Vec::new();
    for n in names {
        let s = cloud.openstack_json(&[
            "server",
            "create",
            "--flavor",
            &flavor,
            "--image",
            &image,
            "--network",
            &net_id,
            "--wait",
            n,
        ]);
        assert_eq!(s["status"], "ACTIVE", "{s}");
        server_ids.push(field(&s, "id"));
    }

    let bridge = format!("brq{}", &net_id[..11]);
    let mut hosts = Vec::new();
    let mut taps = Vec::new();
    for id in &server_ids {
        let s = cloud.openstack_json(&["server", "show", id]);
        assert_eq!(s["status"], "ACTIVE", "{s}");
        assert!(s["addresses"].to_string().contains("10.94.0."), "{s}");
        let host = field(&s, "OS-EXT-SRV-ATTR:host");
        let ports = cloud.openstack_json(&["port", "list", "--server", id]);
        let port_ids = column(&ports, "ID");
        assert_eq!(port_ids.len(), 1, "{ports}");
        let port = cloud.openstack_json(&["port", "show", &port_ids[0]]);
        assert_eq!(port["status"], "ACTIVE", "{port}");
        assert_eq!(port["binding_host_id"], host.as_str(), "{port}");
        let tap = format!("tap{}", &port_ids[0][..11]);
        assert_eq!(
            link_master(&tap).as_deref(),
            Some(bridge.as_str()),
            "{tap} of {id} on {host}"
        );
        hosts.push(host);
        taps.push(tap);
    }
    hosts.sort();
    hosts.dedup();
    assert!(
        hosts.len() >= 2,
        "the servers spread over the fake hosts: {hosts:?}"
    );
    assert!(hosts.iter().all(|h| h.starts_with("compute-")), "{hosts:?}");

    let namespace = format!("qdhcp-{net_id}");
    eventually("the DHCP namespace runs dnsmasq", || {
        runs_dnsmasq(&namespace)
    });
    assert_eq!(link_master("eth0"), None, "eth0 must stay off our bridges");

    let mut delete = vec!["server", "delete", "--wait"];
    delete.extend(server_ids.iter().map(String::as_str));
    cloud.openstack_ok(&delete);
    for tap in &taps {
        eventually(&format!("{tap} goes with its server"), || !link_exists(tap));
    }
    cloud.openstack_ok(&["subnet", "delete", "lb3-net-subnet"]);
    cloud.openstack_ok(&["network", "delete", &net_id]);
    eventually("the bridge goes with the network", || !link_exists(&bridge));
    eventually("the namespace goes with the network", || {
        !netns_exists(&namespace)
    });
}
