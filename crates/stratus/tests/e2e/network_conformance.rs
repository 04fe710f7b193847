//! Issue 12 (network) through the real clients: bulk create with
//! openstacksdk (all or nothing), provider networks, `--external`,
//! `--share`, `network rbac` and network availability zones with the
//! `openstack` CLI.

use serde_json::Value;

use super::harness::{column, fails, field, Cloud};

/// openstacksdk's bulk create (`create_ports`, `_bulk_create`), a bulk
/// whose second port asks for the first one's address (409, no port left),
/// and a raw bulk `POST /v2.0/networks` through the SDK's session.
const SDK_BULK: &str = r#"
import openstack
conn = openstack.connect(cloud='stratus')
net = conn.network.create_network(name='bulk-net')
conn.network.create_subnet(network_id=net.id, cidr='10.70.0.0/24', ip_version=4)
ports = list(conn.network.create_ports([
    {'network_id': net.id, 'name': 'b1'},
    {'network_id': net.id, 'name': 'b2'}]))
assert [p.name for p in ports] == ['b1', 'b2'], ports
assert all(p.fixed_ips for p in ports), ports
taken = ports[0].fixed_ips[0]['ip_address']
try:
    list(conn.network.create_ports([
        {'network_id': net.id, 'name': 'c1'},
        {'network_id': net.id, 'name': 'c2', 'fixed_ips': [{'ip_address': taken}]}]))
    raise SystemExit('a bulk with a taken address was accepted')
except openstack.exceptions.ConflictException as e:
    print('conflict:', e)
names = sorted(p.name for p in conn.network.ports(network_id=net.id))
assert names == ['b1', 'b2'], names
r = conn.network.post('/networks', json={'networks': [{'name': 'raw1'}, {'name': 'raw2'}]})
assert r.status_code == 201, r.text
assert [n['name'] for n in r.json()['networks']] == ['raw1', 'raw2'], r.text
print('bulk ok')
"#;

#[test]
fn bulk_create_and_availability_zones() {
    let cloud = Cloud::start();
    let out = cloud.python(SDK_BULK, &[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the SDK script failed: {text}");
    assert!(
        text.contains("IpAddressInUse") || text.contains("already allocated"),
        "{text}"
    );
    assert!(text.contains("bulk ok"), "{text}");

    // Availability zones: the network zone, and a network hinted into it.
    let zones = cloud.openstack_json(&["availability", "zone", "list", "--network"]);
    assert_eq!(column(&zones, "Zone Name"), ["nova"], "{zones}");
    let net = cloud.openstack_json(&[
        "network",
        "create",
        "--availability-zone-hint",
        "nova",
        "az-net",
    ]);
    assert!(
        net["availability_zone_hints"].to_string().contains("nova"),
        "{net}"
    );
    assert!(
        net["availability_zones"].to_string().contains("nova"),
        "{net}"
    );
    let err = cloud.openstack_fails(&[
        "network",
        "create",
        "--availability-zone-hint",
        "az9",
        "az-bad",
    ]);
    assert!(err.contains("az9"), "{err}");
}

#[test]
fn provider_external_shared_and_rbac() {
    let cloud = Cloud::start();
    cloud.project_with_member("conf-p1", "conf-u1", "pw-u1");
    let p2 = cloud.project_with_member("conf-p2", "conf-u2", "pw-u2");
    let as_u1 = |args: &[&str]| cloud.openstack_json_as("conf-u1", "pw-u1", "conf-p1", args);
    let as_u2 = |args: &[&str]| cloud.openstack_json_as("conf-u2", "pw-u2", "conf-p2", args);
    let u1_fails = |args: &[&str]| {
        fails(
            &cloud.openstack_as("conf-u1", "pw-u1", "conf-p1", args),
            args,
        )
    };
    let u2_fails = |args: &[&str]| {
        fails(
            &cloud.openstack_as("conf-u2", "pw-u2", "conf-p2", args),
            args,
        )
    };

    // Provider network as admin: shown with its segment; the segment is
    // then taken; a type not enabled is a 400.
    let vlan = [
        "network",
        "create",
        "--provider-network-type",
        "vlan",
        "--provider-physical-network",
        "physnet1",
        "--provider-segment",
        "200",
    ];
    let mut args = vlan.to_vec();
    args.push("prov-200");
    let prov = cloud.openstack_json(&args);
    assert_eq!(prov["provider:network_type"], "vlan", "{prov}");
    assert_eq!(prov["provider:physical_network"], "physnet1", "{prov}");
    assert_eq!(prov["provider:segmentation_id"], 200, "{prov}");
    let mut again = vlan.to_vec();
    again.push("prov-200b");
    let err = cloud.openstack_fails(&again);
    assert!(err.contains("VLAN 200") && err.contains("in use"), "{err}");
    let err = cloud.openstack_fails(&["network", "create", "--provider-network-type", "gre", "g"]);
    assert!(
        err.contains("network_type value 'gre' not supported"),
        "{err}"
    );
    let listed = cloud.openstack_json(&["network", "list", "--provider-network-type", "vlan"]);
    assert_eq!(column(&listed, "Name"), ["prov-200"], "{listed}");
    // A member may not set them, nor see them.
    let mut member_vlan = vlan.to_vec();
    member_vlan.push("mine");
    let err = u1_fails(&member_vlan);
    assert!(err.contains("disallowed by policy"), "{err}");
    for flag in ["--external", "--share"] {
        let err = u1_fails(&["network", "create", flag, "mine"]);
        assert!(err.contains("disallowed by policy"), "{flag}: {err}");
    }

    // External and shared networks by the admin: every project sees them.
    let ext = cloud.openstack_json(&["network", "create", "--external", "conf-ext"]);
    let ext_id = field(&ext, "id");
    let shared = cloud.openstack_json(&["network", "create", "--share", "conf-shared"]);
    assert_eq!(shared["shared"], true, "{shared}");
    let seen = as_u1(&["network", "list", "--external"]);
    assert_eq!(column(&seen, "ID"), [ext_id.as_str()], "{seen}");
    let seen = as_u1(&["network", "show", "conf-shared"]);
    assert_eq!(seen["shared"], true, "{seen}");
    assert!(
        seen.get("provider:network_type").is_none_or(Value::is_null),
        "{seen}"
    );

    // RBAC: u1 shares its network with project 2, whose member sees it and
    // makes a port on it; the policy is then in use.
    let net = as_u1(&["network", "create", "conf-priv"]);
    let net_id = field(&net, "id");
    as_u1(&[
        "subnet",
        "create",
        "--network",
        &net_id,
        "--subnet-range",
        "10.71.0.0/24",
        "conf-priv-sub",
    ]);
    u2_fails(&["network", "show", &net_id]);
    let policy = as_u1(&[
        "network",
        "rbac",
        "create",
        "--target-project",
        &p2,
        "--action",
        "access_as_shared",
        "--type",
        "network",
        &net_id,
    ]);
    let policy_id = field(&policy, "id");
    assert_eq!(policy["object_id"], net_id.as_str(), "{policy}");
    assert_eq!(policy["target_project_id"], p2.as_str(), "{policy}");
    let listed = as_u1(&["network", "rbac", "list"]);
    assert_eq!(column(&listed, "ID"), [policy_id.as_str()], "{listed}");
    let shown = as_u1(&["network", "rbac", "show", &policy_id]);
    assert_eq!(shown["action"], "access_as_shared", "{shown}");
    let seen = as_u2(&["network", "show", &net_id]);
    assert_eq!(seen["shared"], true, "{seen}");
    let port = as_u2(&["port", "create", "--network", &net_id, "conf-p2-port"]);
    assert_eq!(port["project_id"], p2.as_str(), "{port}");
    let err = u1_fails(&["network", "rbac", "delete", &policy_id]);
    assert!(
        err.contains("cannot be removed") || err.contains("409"),
        "{err}"
    );
    // Only the admin shares with every project.
    let err = u1_fails(&[
        "network",
        "rbac",
        "create",
        "--target-all-projects",
        "--action",
        "access_as_shared",
        "--type",
        "network",
        &net_id,
    ]);
    assert!(err.contains("disallowed by policy"), "{err}");
    let out = cloud.openstack_as(
        "conf-u2",
        "pw-u2",
        "conf-p2",
        &["port", "delete", "conf-p2-port"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cloud.openstack_as(
        "conf-u1",
        "pw-u1",
        "conf-p1",
        &["network", "rbac", "delete", &policy_id],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    u2_fails(&["network", "show", &net_id]);
    let listed = as_u1(&["network", "rbac", "list"]);
    assert_eq!(listed, Value::Array(vec![]), "{listed}");
}
