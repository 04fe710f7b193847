//! Subnet pools, address scopes, network IP availability and service
//! providers through the real `openstack` CLI and openstacksdk.

use serde_json::Value;

use super::harness::{assert_success, column, field, Cloud};

/// The `prefixes` of a subnet pool as the CLI shows them (a list, or one
/// comma-separated string in older clients).
fn prefixes(pool: &Value) -> Vec<String> {
    match &pool["prefixes"] {
        Value::Array(a) => a
            .iter()
            .filter_map(|p| p.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
        other => panic!("prefixes: {other}"),
    }
}

/// An integer the CLI may print as a number or a string.
fn int(v: &Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("an integer: {v}"))
}

#[test]
fn subnets_cut_from_pools_in_address_scopes() {
    let cloud = Cloud::start();
    let scope = cloud.openstack_json(&["address", "scope", "create", "--ip-version", "4", "as1"]);
    let scope_id = field(&scope, "id");
    assert_eq!(int(&scope["ip_version"]), 4, "{scope}");
    assert_eq!(scope["shared"], false, "{scope}");

    let pool = cloud.openstack_json(&[
        "subnet",
        "pool",
        "create",
        "--pool-prefix",
        "10.100.0.0/16",
        "--default-prefix-length",
        "24",
        "--address-scope",
        "as1",
        "p1",
    ]);
    let pool_id = field(&pool, "id");
    assert_eq!(prefixes(&pool), ["10.100.0.0/16"], "{pool}");
    assert_eq!(int(&pool["default_prefixlen"]), 24, "{pool}");
    assert_eq!(int(&pool["ip_version"]), 4, "{pool}");
    assert_eq!(pool["address_scope_id"], scope_id.as_str(), "{pool}");

    // A /24 from the pool, then a /26 beside it.
    let net = cloud.openstack_json(&["network", "create", "pn"]);
    let net_id = field(&net, "id");
    let s1 = cloud.openstack_json(&[
        "subnet",
        "create",
        "--subnet-pool",
        "p1",
        "--network",
        "pn",
        "s1",
    ]);
    assert_eq!(s1["cidr"], "10.100.0.0/24", "{s1}");
    assert_eq!(s1["subnetpool_id"], pool_id.as_str(), "{s1}");
    assert_eq!(s1["gateway_ip"], "10.100.0.1", "{s1}");
    let s2 = cloud.openstack_json(&[
        "subnet",
        "create",
        "--subnet-pool",
        "p1",
        "--prefix-length",
        "26",
        "--network",
        "pn",
        "s2",
    ]);
    assert_eq!(s2["cidr"], "10.100.1.0/26", "{s2}");
    // A CIDR outside the pool is refused, and nothing is left behind.
    let err = cloud.openstack_fails(&[
        "subnet",
        "create",
        "--subnet-pool",
        "p1",
        "--subnet-range",
        "10.200.0.0/24",
        "--network",
        "pn",
        "s3",
    ]);
    assert!(err.contains("Failed to allocate subnet"), "{err}");
    let subnets = cloud.openstack_json(&["subnet", "list", "--network", &net_id]);
    assert_eq!(subnets.as_array().map(Vec::len), Some(2), "{subnets}");
    // The network is in the pool's scope.
    let shown = cloud.openstack_json(&["network", "show", "pn"]);
    assert_eq!(shown["ipv4_address_scope"], scope_id.as_str(), "{shown}");

    // Prefixes grow (and are kept compacted, as Neutron keeps them).
    cloud.openstack_ok(&[
        "subnet",
        "pool",
        "set",
        "--pool-prefix",
        "10.101.0.0/16",
        "p1",
    ]);
    let pool = cloud.openstack_json(&["subnet", "pool", "show", "p1"]);
    assert_eq!(prefixes(&pool), ["10.100.0.0/15"], "{pool}");
    let listed = cloud.openstack_json(&["subnet", "pool", "list"]);
    assert!(column(&listed, "ID").contains(&pool_id), "{listed}");

    // In use: neither the pool nor its scope can go.
    let err = cloud.openstack_fails(&["subnet", "pool", "delete", "p1"]);
    assert!(err.contains("p1"), "{err}");
    let err = cloud.openstack_fails(&["address", "scope", "delete", "as1"]);
    assert!(err.contains("as1"), "{err}");
    cloud.openstack_json(&["subnet", "pool", "show", "p1"]);

    // A shared default pool, used on request.
    cloud.openstack_json(&[
        "subnet",
        "pool",
        "create",
        "--default",
        "--share",
        "--pool-prefix",
        "172.30.0.0/16",
        "--default-prefix-length",
        "28",
        "dp",
    ]);
    cloud.openstack_json(&["network", "create", "pn2"]);
    let s4 = cloud.openstack_json(&[
        "subnet",
        "create",
        "--use-default-subnet-pool",
        "--network",
        "pn2",
        "s4",
    ]);
    assert_eq!(s4["cidr"], "172.30.0.0/28", "{s4}");

    // Emptied, they go.
    cloud.openstack_ok(&["subnet", "delete", "s1", "s2", "s4"]);
    cloud.openstack_ok(&["subnet", "pool", "delete", "p1", "dp"]);
    cloud.openstack_ok(&["address", "scope", "delete", "as1"]);
    let scopes = cloud.openstack_json(&["address", "scope", "list"]);
    assert!(!column(&scopes, "ID").contains(&scope_id), "{scopes}");
}

const SDK_SERVICE_PROVIDERS: &str = r#"
import openstack

conn = openstack.connect(cloud="stratus")
providers = list(conn.network.service_providers())
# No L3, VPN or load-balancing service runs: no providers.
assert providers == [], providers
print("service providers ok")
"#;

#[test]
fn ip_availability_and_service_providers() {
    let cloud = Cloud::start();
    let net = cloud.openstack_json(&["network", "create", "avail"]);
    let net_id = field(&net, "id");
    cloud.openstack_json(&[
        "subnet",
        "create",
        "--network",
        "avail",
        "--subnet-range",
        "10.61.0.0/24",
        "avail-sub",
    ]);
    for name in ["a1", "a2", "a3"] {
        cloud.openstack_json(&["port", "create", "--network", "avail", name]);
    }
    let shown = cloud.openstack_json(&["ip", "availability", "show", "avail"]);
    assert_eq!(shown["network_id"], net_id.as_str(), "{shown}");
    assert_eq!(int(&shown["total_ips"]), 253, "{shown}");
    // Every allocation counts, the DHCP port's too when there is one.
    let used = int(&shown["used_ips"]);
    assert!((3..=4).contains(&used), "{shown}");
    assert!(
        shown["subnet_ip_availability"]
            .to_string()
            .contains("10.61.0.0/24"),
        "{shown}"
    );
    let listed = cloud.openstack_json(&["ip", "availability", "list"]);
    assert!(column(&listed, "Network ID").contains(&net_id), "{listed}");
    cloud.openstack_ok(&["port", "delete", "a1"]);
    let shown = cloud.openstack_json(&["ip", "availability", "show", "avail"]);
    assert_eq!(int(&shown["used_ips"]), used - 1, "{shown}");

    // Admin-only: a member lists nothing.
    cloud.project_with_member("ipa-proj", "ipa-user", "ipa-pw");
    let theirs = cloud.openstack_json_as(
        "ipa-user",
        "ipa-pw",
        "ipa-proj",
        &["ip", "availability", "list"],
    );
    assert_eq!(theirs.as_array().map(Vec::len), Some(0), "{theirs}");

    let out = cloud.python(SDK_SERVICE_PROVIDERS, &[]);
    assert_success(&out, &["python", "service providers"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("service providers ok"));
    let providers = cloud.openstack_json(&["network", "service", "provider", "list"]);
    assert_eq!(providers.as_array().map(Vec::len), Some(0), "{providers}");
}
