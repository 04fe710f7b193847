//! Issue 12 through the real `openstack` CLI and openstacksdk: security
//! groups on servers (the ports compute makes get the groups named at
//! create; `server add/remove security group`), `server set --state`
//! (Nova's `os-resetState`, admin only), server tags (2.26+: `server set
//! --tag`, `server unset --tag`, `server list --tags`, `--tag` on create
//! at 2.52) and `/servers/{id}/ips`.

use serde_json::Value;

use super::compute::{launch, launchable};
use super::harness::{assert_success, column, field, Cloud};

/// The security group ids of the server's ports (`port list --server`).
fn port_groups(cloud: &Cloud, server: &str) -> Vec<String> {
    let ports = cloud.openstack_json(&["port", "list", "--server", server, "--long"]);
    let list = ports.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "one port: {ports}");
    let mut groups: Vec<String> = match &list[0]["Security Groups"] {
        Value::Array(a) => a
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Value::String(s) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .map(|g| g.trim_matches(|c: char| "[]'\"".contains(c)).to_owned())
            .filter(|g| !g.is_empty())
            .collect(),
        other => panic!("security groups: {other}"),
    };
    groups.sort();
    groups
}

const SDK_MISSING_GROUP: &str = r#"
import sys
import openstack
conn = openstack.connect(cloud="stratus")
try:
    conn.compute.create_server(
        name="sdk-sg", image_id=sys.argv[1], flavor_id=sys.argv[2],
        networks=[{"uuid": sys.argv[3]}], security_groups=[{"name": "missing"}])
except openstack.exceptions.BadRequestException as e:
    assert e.status_code == 400, e
    assert "Unable to find security_group with name or id 'missing'" in str(e), e
    print("sdk 400 ok")
else:
    raise SystemExit("a server with a missing security group was accepted")
"#;

#[test]
fn security_groups_and_reset_state() {
    let cloud = Cloud::start();
    let l = launchable(&cloud);
    let nic = format!("net-id={}", l.net);
    let web = field(
        &cloud.openstack_json(&["security", "group", "create", "e2e-web"]),
        "id",
    );
    let db = field(
        &cloud.openstack_json(&["security", "group", "create", "e2e-db"]),
        "id",
    );

    // A group that does not exist: the CLI refuses it, and so does Nova's
    // API (400) when a client sends it.
    cloud.openstack_fails(&[
        "server",
        "create",
        "--flavor",
        &l.flavor,
        "--image",
        &l.image,
        "--nic",
        &nic,
        "--security-group",
        "missing",
        "e2e-vm-missing",
    ]);
    let out = cloud.python(SDK_MISSING_GROUP, &[&l.image, &l.flavor, &l.net]);
    assert_success(&out, &["python", "sdk missing group"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sdk 400 ok"));

    // The port compute makes is in the group the create named.
    let server = field(
        &launch(
            &cloud,
            &l,
            "e2e-vm-sg",
            &["--nic", &nic, "--security-group", "e2e-web"],
        ),
        "id",
    );
    assert_eq!(port_groups(&cloud, &server), vec![web.clone()]);
    let shown = cloud.openstack_json(&["server", "show", &server]);
    assert!(
        shown["security_groups"].to_string().contains("e2e-web"),
        "{shown}"
    );

    cloud.openstack_ok(&["server", "add", "security", "group", &server, "e2e-db"]);
    let mut both = vec![web.clone(), db.clone()];
    both.sort();
    assert_eq!(port_groups(&cloud, &server), both);
    cloud.openstack_ok(&["server", "remove", "security", "group", &server, "e2e-web"]);
    assert_eq!(port_groups(&cloud, &server), vec![db.clone()]);
    let shown = cloud.openstack_json(&["server", "show", &server]);
    let groups = shown["security_groups"].to_string();
    assert!(
        groups.contains("e2e-db") && !groups.contains("e2e-web"),
        "{shown}"
    );
    // Removing a group the server does not have: Nova's 404.
    let err = cloud.openstack_fails(&["server", "remove", "security", "group", &server, "e2e-web"]);
    assert!(err.contains("not associated with the instance"), "{err}");

    // os-resetState: the admin sets the state; a member may not.
    cloud.openstack_ok(&[
        "server",
        "set",
        "--auto-approve",
        "--state",
        "error",
        &server,
    ]);
    let shown = cloud.openstack_json(&["server", "show", &server]);
    assert_eq!(shown["status"], "ERROR", "{shown}");
    cloud.openstack_ok(&[
        "server",
        "set",
        "--auto-approve",
        "--state",
        "active",
        &server,
    ]);
    let shown = cloud.openstack_json(&["server", "show", &server]);
    assert_eq!(shown["status"], "ACTIVE", "{shown}");
    let actions = cloud.openstack_json(&["server", "event", "list", &server]);
    assert!(
        column(&actions, "Action").contains(&"resetState".to_owned()),
        "{actions}"
    );
    cloud.project_with_member("e2e-sg-proj", "e2e-sg-user", "Sg-pass-1");
    cloud.openstack_ok(&[
        "role",
        "add",
        "--project",
        "admin",
        "--user",
        "e2e-sg-user",
        "member",
    ]);
    let out = cloud.openstack_as(
        "e2e-sg-user",
        "Sg-pass-1",
        "admin",
        &[
            "server",
            "set",
            "--auto-approve",
            "--state",
            "error",
            &server,
        ],
    );
    let err = super::harness::fails(&out, &["server", "set", "--state"]);
    assert!(err.contains("reset_state") && err.contains("403"), "{err}");
    let shown = cloud.openstack_json(&["server", "show", &server]);
    assert_eq!(shown["status"], "ACTIVE", "{shown}");
}

const SDK_IPS_AND_TAGS: &str = r#"
import sys
import openstack
conn = openstack.connect(cloud="stratus")
sid = sys.argv[1]
r = conn.compute.get("/servers/%s/ips" % sid)
assert r.status_code == 200, r.text
addrs = r.json()["addresses"]
assert list(addrs) == ["e2e-net"], addrs
[ip] = addrs["e2e-net"]
assert ip["version"] == 4 and ip["addr"].startswith("10.40.0."), ip
server = conn.compute.get_server(sid)
assert [a["addr"] for a in server.addresses["e2e-net"]] == [ip["addr"]], server.addresses
r = conn.compute.get("/servers/%s/ips/e2e-net" % sid)
assert r.status_code == 200 and r.json() == {"e2e-net": [ip]}, r.text
r = conn.compute.get("/servers/%s/ips/nope" % sid, raise_exc=False)
assert r.status_code == 404, r.text
assert r.json()["itemNotFound"]["message"] == "Instance is not a member of specified network", r.text
r = conn.compute.get("/servers/%s/tags" % sid, microversion="2.26")
assert r.status_code == 200 and r.json() == {"tags": ["t2"]}, r.text
r = conn.compute.get("/servers/%s/tags" % sid, microversion="2.25", raise_exc=False)
assert r.status_code == 404, r.text
# The filters the CLI has no option for.
def names(query):
    r = conn.compute.get("/servers?" + query, microversion="2.26")
    assert r.status_code == 200, r.text
    return sorted(s["name"] for s in r.json()["servers"])
assert names("tags-any=blue,t2") == ["e2e-vm-blue", "e2e-vm-tags"]
assert names("not-tags-any=blue") == ["e2e-vm-tags"]
assert names("not-tags-any=blue,t2") == []
print("sdk ips ok")
"#;

#[test]
fn tags_and_ips() {
    let cloud = Cloud::start();
    let l = launchable(&cloud);
    let nic = format!("net-id={}", l.net);
    let server = field(&launch(&cloud, &l, "e2e-vm-tags", &["--nic", &nic]), "id");
    let v26 = ["--os-compute-api-version", "2.26"];
    let with = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = v26.iter().map(|s| s.to_string()).collect();
        all.extend(args.iter().map(|s| s.to_string()));
        all
    };
    let ok = |args: &[&str]| {
        let a = with(args);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        cloud.openstack_ok(&refs)
    };
    let json = |args: &[&str]| {
        let a = with(args);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        cloud.openstack_json(&refs)
    };
    ok(&["server", "set", "--tag", "t1", "--tag", "t2", &server]);
    let shown = json(&["server", "show", &server]);
    assert_eq!(shown["tags"], serde_json::json!(["t1", "t2"]), "{shown}");
    let names = |list: Value| column(&list, "Name");
    assert_eq!(
        names(json(&["server", "list", "--tags", "t1"])),
        vec!["e2e-vm-tags"]
    );
    assert!(names(json(&["server", "list", "--tags", "t1,nope"])).is_empty());
    assert!(names(json(&["server", "list", "--not-tags", "t1"])).is_empty());
    ok(&["server", "unset", "--tag", "t1", &server]);
    let shown = json(&["server", "show", &server]);
    assert_eq!(shown["tags"], serde_json::json!(["t2"]), "{shown}");
    assert!(names(json(&["server", "list", "--tags", "t1"])).is_empty());
    // A tag Nova would refuse.
    let a = with(&["server", "set", "--tag", "a/b", &server]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    cloud.openstack_fails(&refs);

    // Tags on create (2.52).
    let other = cloud.openstack_json(&[
        "--os-compute-api-version",
        "2.52",
        "server",
        "create",
        "--flavor",
        &l.flavor,
        "--image",
        &l.image,
        "--nic",
        &nic,
        "--tag",
        "blue",
        "--wait",
        "e2e-vm-blue",
    ]);
    assert_eq!(other["tags"], serde_json::json!(["blue"]), "{other}");
    assert_eq!(
        names(json(&["server", "list", "--not-tags", "blue"])),
        vec!["e2e-vm-tags"]
    );

    let out = cloud.python(SDK_IPS_AND_TAGS, &[&server]);
    assert_success(&out, &["python", "sdk ips"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sdk ips ok"));
}
