//! Compute (Nova v2.1) through the real `openstack` CLI and openstacksdk:
//! flavors, keypairs, launching servers from a real image onto a real
//! network (the address comes from the subnet), stop/start/reboot, the
//! instance actions, the console log, quotas and limits, hypervisors and
//! services, server groups, and deleting.

use std::process::Command;

use serde_json::Value;

use super::harness::{assert_success, column, field, Cloud};
use super::image::create_image;
use super::network::network_with_subnet;

/// What a launch needs: a public image, a network with a subnet
/// (10.40.0.0/24) and a small flavor, all named `e2e-*`.
pub(super) struct Launchable {
    pub(super) image: String,
    pub(super) net: String,
    pub(super) flavor: String,
}

pub(super) fn launchable(cloud: &Cloud) -> Launchable {
    let image = field(&create_image(cloud, "e2e-img", "--public"), "id");
    let (net, _) = network_with_subnet(cloud, "e2e-net", "10.40.0.0/24", &[]);
    let flavor = cloud.openstack_json(&[
        "flavor",
        "create",
        "--ram",
        "512",
        "--disk",
        "1",
        "--vcpus",
        "1",
        "e2e-flavor",
    ]);
    Launchable {
        image,
        net: field(&net, "id"),
        flavor: field(&flavor, "id"),
    }
}

/// `server create ... --wait NAME` with the given network flags.
pub(super) fn launch(cloud: &Cloud, l: &Launchable, name: &str, nic: &[&str]) -> Value {
    let mut args = vec![
        "server", "create", "--flavor", &l.flavor, "--image", &l.image,
    ];
    args.extend(nic);
    args.extend(["--wait", name]);
    cloud.openstack_json(&args)
}

/// The value of limit `names[..]` in `limits show --absolute -f json`
/// (the CLI prints the SDK's attribute names).
fn limit(limits: &Value, names: &[&str]) -> i64 {
    limits
        .as_array()
        .expect("a JSON list")
        .iter()
        .find(|r| names.iter().any(|n| r["Name"] == *n))
        .and_then(|r| r["Value"].as_i64())
        .unwrap_or_else(|| panic!("{names:?} in {limits}"))
}

/// The limit of `resource` in `quota show --compute -f json`.
fn quota(quotas: &Value, resource: &str) -> i64 {
    quotas
        .as_array()
        .expect("a JSON list")
        .iter()
        .find(|r| r["Resource"] == resource)
        .and_then(|r| r["Limit"].as_i64())
        .unwrap_or_else(|| panic!("{resource} in {quotas}"))
}

#[test]
fn flavors_and_keypairs() {
    let cloud = Cloud::start();
    let f = cloud.openstack_json(&[
        "flavor",
        "create",
        "--ram",
        "2048",
        "--disk",
        "20",
        "--vcpus",
        "2",
        "--private",
        "m1.e2e",
    ]);
    let fid = field(&f, "id");
    assert_eq!(f["name"], "m1.e2e");
    assert_eq!(f["ram"], 2048, "{f}");
    assert_eq!(f["vcpus"], 2, "{f}");
    assert_eq!(f["disk"], 20, "{f}");
    assert_eq!(f["os-flavor-access:is_public"], false, "{f}");
    let public = cloud.openstack_json(&[
        "flavor", "create", "--ram", "512", "--vcpus", "1", "tiny.e2e",
    ]);
    let all = cloud.openstack_json(&["flavor", "list", "--all"]);
    let names = column(&all, "Name");
    assert!(
        names.contains(&"m1.e2e".to_owned()) && names.contains(&"tiny.e2e".to_owned()),
        "{all}"
    );
    let shown = cloud.openstack_json(&["flavor", "show", "m1.e2e"]);
    assert_eq!(shown["id"], fid.as_str());
    // A private flavor starts with no project given access, as in Nova.
    assert!(
        shown["access_project_ids"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{shown}"
    );
    let shown = cloud.openstack_json(&["flavor", "show", &fid]);
    assert_eq!(shown["name"], "m1.e2e");
    // Flavor names are unique.
    let err = cloud.openstack_fails(&[
        "flavor", "create", "--ram", "512", "--vcpus", "1", "tiny.e2e",
    ]);
    assert!(err.contains("already exists"), "{err}");
    cloud.openstack_ok(&["flavor", "delete", "m1.e2e", &field(&public, "id")]);
    let all = cloud.openstack_json(&["flavor", "list", "--all"]);
    assert!(!column(&all, "ID").contains(&fid), "{all}");

    // A keypair from a real OpenSSH public key, with OpenSSH's fingerprint.
    let key = cloud.data_dir().join("id_e2e");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let pub_path = cloud.data_dir().join("id_e2e.pub");
    let pub_s = pub_path.to_str().expect("utf-8 path");
    let kp = cloud.openstack_json(&["keypair", "create", "--public-key", pub_s, "e2e-key"]);
    assert_eq!(kp["name"], "e2e-key");
    let fp = Command::new("ssh-keygen")
        .args(["-l", "-E", "md5", "-f", pub_s])
        .output()
        .expect("ssh-keygen -l");
    let fp = String::from_utf8_lossy(&fp.stdout);
    let fp = fp
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.strip_prefix("MD5:"))
        .expect("an MD5 fingerprint");
    assert_eq!(kp["fingerprint"], fp, "{kp}");
    let listed = cloud.openstack_json(&["keypair", "list"]);
    assert_eq!(column(&listed, "Name"), ["e2e-key"], "{listed}");
    let shown = cloud.openstack_json(&["keypair", "show", "e2e-key"]);
    assert_eq!(shown["fingerprint"], fp, "{shown}");
    let err = cloud.openstack_fails(&["keypair", "create", "--public-key", pub_s, "e2e-key"]);
    assert!(err.contains("already exists"), "{err}");
    cloud.openstack_ok(&["keypair", "delete", "e2e-key"]);
    let listed = cloud.openstack_json(&["keypair", "list"]);
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn server_lifecycle() {
    let cloud = Cloud::start();
    let l = launchable(&cloud);
    let created = launch(&cloud, &l, "vm1", &["--network", "e2e-net"]);
    let id = field(&created, "id");
    assert_eq!(created["status"], "ACTIVE", "{created}");
    assert_eq!(created["name"], "vm1");
    // The address was allocated from the subnet by the network service.
    let addresses = created["addresses"].to_string();
    assert!(
        addresses.contains("e2e-net") && addresses.contains("10.40.0."),
        "{created}"
    );
    let ports = cloud.openstack_json(&["port", "list", "--server", &id, "--network", &l.net]);
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "one port: {ports}");
    let port = cloud.openstack_json(&["port", "show", &column(&ports, "ID")[0]]);
    assert_eq!(port["device_id"], id.as_str(), "{port}");
    assert_eq!(port["device_owner"], "compute:nova", "{port}");
    assert_eq!(port["status"], "ACTIVE", "{port}");

    // Without a network.
    let bare = launch(&cloud, &l, "vm2", &["--nic", "none"]);
    assert_eq!(bare["status"], "ACTIVE", "{bare}");
    let bare_addresses = &bare["addresses"];
    assert!(
        bare_addresses.is_null()
            || bare_addresses.as_object().is_some_and(|o| o.is_empty())
            || bare_addresses.as_str().is_some_and(str::is_empty),
        "{bare}"
    );

    let listed = cloud.openstack_json(&["server", "list"]);
    let mut names = column(&listed, "Name");
    names.sort();
    assert_eq!(names, ["vm1", "vm2"], "{listed}");
    assert_eq!(column(&listed, "Status"), ["ACTIVE", "ACTIVE"], "{listed}");
    assert!(
        column(&listed, "Image").contains(&"e2e-img".to_owned()),
        "{listed}"
    );
    assert!(
        column(&listed, "Flavor").contains(&"e2e-flavor".to_owned()),
        "{listed}"
    );

    let shown = cloud.openstack_json(&["server", "show", "vm1"]);
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["OS-EXT-STS:vm_state"], "active", "{shown}");
    assert!(shown["image"].to_string().contains(&l.image), "{shown}");

    // Stop, start and reboot, each waited for.
    let show = ["server", "show", id.as_str()];
    cloud.openstack_ok(&["server", "stop", &id]);
    let stopped = cloud.wait_for(&show, "status", "SHUTOFF");
    assert_eq!(stopped["OS-EXT-STS:vm_state"], "stopped", "{stopped}");
    cloud.openstack_ok(&["server", "start", &id]);
    cloud.wait_for(&show, "status", "ACTIVE");
    cloud.openstack_ok(&["server", "reboot", "--wait", &id]);
    let rebooted = cloud.wait_for(&show, "status", "ACTIVE");
    assert!(rebooted["OS-EXT-STS:task_state"].is_null(), "{rebooted}");

    // Every one of them is an instance action with its events.
    let events = cloud.openstack_json(&["server", "event", "list", &id]);
    let mut actions = column(&events, "Action");
    actions.sort();
    assert_eq!(actions, ["create", "reboot", "start", "stop"], "{events}");
    let create_req = events
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["Action"] == "create")
        .map(|e| field(e, "Request ID"))
        .expect("the create action");
    let create = cloud.openstack_json(&["server", "event", "show", &id, &create_req]);
    assert_eq!(create["action"], "create", "{create}");
    assert_eq!(create["request_id"], create_req.as_str(), "{create}");
    let steps = create["events"].to_string();
    assert!(steps.contains("Success"), "the create events: {create}");

    // The console log of the (fake) guest shows the reboot.
    let log = cloud.openstack_ok(&["console", "log", "show", &id]);
    assert!(log.contains("[reboot]"), "{log}");

    // Deleting frees the port and its address.
    cloud.openstack_ok(&["server", "delete", "--wait", "vm1", "vm2"]);
    let listed = cloud.openstack_json(&["server", "list"]);
    assert_eq!(listed, serde_json::json!([]), "{listed}");
    let ports = cloud.openstack_json(&["port", "list", "--device-owner", "compute:nova"]);
    assert_eq!(ports, serde_json::json!([]), "{ports}");
    let err = cloud.openstack_fails(&["server", "show", &id]);
    assert!(
        err.contains("No Server found") || err.contains("404"),
        "{err}"
    );
}

#[test]
fn quotas_limits_hosts_and_server_groups() {
    let cloud = Cloud::start();
    let admin = field(&cloud.openstack_json(&["project", "show", "admin"]), "id");

    let quotas = cloud.openstack_json(&["quota", "show", "--compute", "admin"]);
    assert_eq!(quota(&quotas, "instances"), 10, "Nova's default: {quotas}");
    assert_eq!(quota(&quotas, "cores"), 20, "{quotas}");
    cloud.openstack_ok(&["quota", "set", "--instances", "1", "--cores", "8", &admin]);
    let quotas = cloud.openstack_json(&["quota", "show", "--compute", "admin"]);
    assert_eq!(quota(&quotas, "instances"), 1, "{quotas}");
    assert_eq!(quota(&quotas, "cores"), 8, "{quotas}");

    let limits = cloud.openstack_json(&["limits", "show", "--absolute"]);
    assert_eq!(
        limit(&limits, &["instances", "maxTotalInstances"]),
        1,
        "{limits}"
    );
    assert_eq!(
        limit(&limits, &["total_cores", "maxTotalCores"]),
        8,
        "{limits}"
    );
    assert_eq!(limit(&limits, &["instances_used", "totalInstancesUsed"]), 0);

    let hypervisors = cloud.openstack_json(&["hypervisor", "list"]);
    assert!(
        !column(&hypervisors, "Hypervisor Hostname").is_empty(),
        "{hypervisors}"
    );
    assert!(
        column(&hypervisors, "State").iter().all(|s| s == "up"),
        "{hypervisors}"
    );
    let services = cloud.openstack_json(&["compute", "service", "list"]);
    let binaries = column(&services, "Binary");
    for b in ["nova-compute", "nova-scheduler", "nova-conductor"] {
        assert!(binaries.contains(&b.to_owned()), "{b}: {services}");
    }
    assert!(
        column(&services, "State").iter().all(|s| s == "up"),
        "{services}"
    );

    let group = cloud.openstack_json(&[
        "server",
        "group",
        "create",
        "--policy",
        "anti-affinity",
        "e2e-group",
    ]);
    assert_eq!(group["name"], "e2e-group");
    assert!(group.to_string().contains("anti-affinity"), "{group}");
    let groups = cloud.openstack_json(&["server", "group", "list"]);
    assert_eq!(column(&groups, "Name"), ["e2e-group"], "{groups}");

    // One server fits the quota; the second is Nova's 403.
    let l = launchable(&cloud);
    let first = launch(
        &cloud,
        &l,
        "q1",
        &[
            "--nic",
            "none",
            "--hint",
            &format!("group={}", field(&group, "id")),
        ],
    );
    assert_eq!(first["status"], "ACTIVE", "{first}");
    let limits = cloud.openstack_json(&["limits", "show", "--absolute"]);
    assert_eq!(
        limit(&limits, &["instances_used", "totalInstancesUsed"]),
        1,
        "{limits}"
    );
    let err = cloud.openstack_fails(&[
        "server", "create", "--flavor", &l.flavor, "--image", &l.image, "--nic", "none", "q2",
    ]);
    assert!(err.contains("Quota exceeded for instances"), "{err}");
    let listed = cloud.openstack_json(&["server", "list"]);
    assert_eq!(
        column(&listed, "Name"),
        ["q1"],
        "nothing half-made: {listed}"
    );
    let group = cloud.openstack_json(&["server", "group", "show", "e2e-group"]);
    assert!(
        group["members"].to_string().contains(&field(&first, "id")),
        "{group}"
    );
    cloud.openstack_ok(&["server", "delete", "--wait", "q1"]);
}

/// The same launch through openstacksdk: find the image, flavor and
/// network by name, create, wait, read the address, delete, wait.
const SDK_LAUNCH: &str = r#"
import sys
import openstack
conn = openstack.connect(cloud="stratus")
image = conn.image.find_image(sys.argv[1], ignore_missing=False)
flavor = conn.compute.find_flavor(sys.argv[2], ignore_missing=False)
net = conn.network.find_network(sys.argv[3], ignore_missing=False)
server = conn.compute.create_server(
    name="sdk-vm", image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}],
    admin_password="Sdk-pass-1", access_ipv4="192.0.2.10")
# The user's adminPass is the one answered.
assert server.admin_password == "Sdk-pass-1", server
server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=1)
assert server.access_ipv4 == "192.0.2.10", server
ips = [a["addr"] for addrs in server.addresses.values() for a in addrs]
assert len(ips) == 1 and ips[0].startswith("10.40.0."), server.addresses
assert [p.device_id for p in conn.network.ports(network_id=net.id, device_owner="compute:nova")] == [server.id]
assert conn.compute.get_server(server.id).status == "ACTIVE"
# Nova's two names of the request id, one value.
r = conn.compute.get("/servers/" + server.id)
assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"], dict(r.headers)
assert r.headers["x-compute-request-id"].startswith("req-"), dict(r.headers)
conn.compute.delete_server(server)
conn.compute.wait_for_delete(server, wait=120, interval=1)
assert conn.compute.find_server("sdk-vm") is None
assert list(conn.network.ports(network_id=net.id, device_owner="compute:nova")) == []
print("sdk launch ok", ips[0])
"#;

#[test]
fn openstacksdk_launch() {
    let cloud = Cloud::start();
    let _ = launchable(&cloud);
    let out = cloud.python(SDK_LAUNCH, &["e2e-img", "e2e-flavor", "e2e-net"]);
    assert_success(&out, &["python", "sdk launch"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sdk launch ok"));
}

/// `server add volume` / `server remove volume` with a volume of the
/// volume service: attached, Cinder shows it `in-use` on the server and
/// `server show` lists it; detached, it is `available` again; a server
/// deleted with a volume attached leaves the volume `available`.
#[test]
fn volumes_attach_detach_and_outlive_their_server() {
    let cloud = Cloud::start();
    let l = launchable(&cloud);
    let nic = format!("net-id={}", l.net);
    let server = field(&launch(&cloud, &l, "e2e-vm-vol", &["--nic", &nic]), "id");
    let v = cloud.openstack_json(&["volume", "create", "--size", "1", "e2e-attach"]);
    let vid = field(&v, "id");
    cloud.wait_for(&["volume", "show", &vid], "status", "available");

    cloud.openstack_ok(&["server", "add", "volume", &server, &vid]);
    let shown = cloud.wait_for(&["volume", "show", &vid], "status", "in-use");
    let attachments = shown["attachments"].to_string();
    assert!(attachments.contains(&server), "{shown}");
    assert!(attachments.contains("/dev/vdb"), "{shown}");
    let s = cloud.openstack_json(&["server", "show", &server]);
    assert!(
        s["volumes_attached"].to_string().contains(&vid),
        "server show lists no volume: {s}"
    );
    // A volume in use cannot be attached again (Cinder's 400 through Nova).
    let err = cloud.openstack_fails(&["server", "add", "volume", &server, &vid]);
    assert!(err.contains("already attached"), "{err}");

    cloud.openstack_ok(&["server", "remove", "volume", &server, &vid]);
    let shown = cloud.wait_for(&["volume", "show", &vid], "status", "available");
    assert_eq!(shown["attachments"], serde_json::json!([]), "{shown}");
    let s = cloud.openstack_json(&["server", "show", &server]);
    assert!(
        !s["volumes_attached"].to_string().contains(&vid),
        "still listed: {s}"
    );

    // Deleting the server lets the volume go.
    cloud.openstack_ok(&["server", "add", "volume", &server, &vid]);
    cloud.wait_for(&["volume", "show", &vid], "status", "in-use");
    cloud.openstack_ok(&["server", "delete", "--wait", &server]);
    let shown = cloud.wait_for(&["volume", "show", &vid], "status", "available");
    assert_eq!(shown["attachments"], serde_json::json!([]), "{shown}");
    cloud.openstack_ok(&["volume", "delete", &vid]);
}

/// The volumes `volume list --all-projects` shows: (id, name, status).
fn all_volumes(cloud: &Cloud) -> Vec<(String, String, String)> {
    volumes_listed(cloud, &["volume", "list", "--all-projects"])
}

/// The volumes a `volume list` command shows: (id, name, status).
fn volumes_listed(cloud: &Cloud, args: &[&str]) -> Vec<(String, String, String)> {
    let list = cloud.openstack_json(args);
    list.as_array()
        .expect("a JSON list")
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (s("ID"), s("Name"), s("Status"))
        })
        .collect()
}

/// Boot from volume with the real CLI: `server create --volume V` boots
/// from the user's volume (in-use on the server as `/dev/vda`), and
/// `--image I --boot-from-volume 1` from a volume made from the image in
/// the user's project (the user's `volume list` shows it, as Nova's does);
/// deleting the servers leaves V available and deletes the made one
/// (this CLI sends `delete_on_termination: false` unless told
/// `--delete-on-termination`, and says so in its help).
#[test]
fn boot_from_volume_with_the_cli() {
    let cloud = Cloud::start();
    let l = launchable(&cloud);
    let nic = format!("net-id={}", l.net);
    let v = cloud.openstack_json(&[
        "volume", "create", "--image", &l.image, "--size", "1", "e2e-boot",
    ]);
    let vid = field(&v, "id");
    cloud.wait_for(&["volume", "show", &vid], "status", "available");

    let s1 = cloud.openstack_json(&[
        "server",
        "create",
        "--flavor",
        &l.flavor,
        "--volume",
        &vid,
        "--nic",
        &nic,
        "--wait",
        "e2e-bfv-volume",
    ]);
    assert_eq!(field(&s1, "status"), "ACTIVE", "{s1}");
    let sid1 = field(&s1, "id");
    let shown = cloud.wait_for(&["volume", "show", &vid], "status", "in-use");
    let attachments = shown["attachments"].to_string();
    assert!(attachments.contains(&sid1), "{shown}");
    assert!(attachments.contains("/dev/vda"), "{shown}");
    let s = cloud.openstack_json(&["server", "show", &sid1]);
    assert!(
        s["volumes_attached"].to_string().contains(&vid),
        "server show lists no volume: {s}"
    );

    let s2 = cloud.openstack_json(&[
        "server",
        "create",
        "--flavor",
        &l.flavor,
        "--image",
        &l.image,
        "--boot-from-volume",
        "1",
        "--delete-on-termination",
        "--nic",
        &nic,
        "--wait",
        "e2e-bfv-image",
    ]);
    assert_eq!(field(&s2, "status"), "ACTIVE", "{s2}");
    let sid2 = field(&s2, "id");
    // The user's own list, not --all-projects: the volume is the user's,
    // not the service user's.
    let made: Vec<_> = volumes_listed(&cloud, &["volume", "list"])
        .into_iter()
        .filter(|(id, _, _)| id != &vid)
        .collect();
    assert_eq!(made.len(), 1, "{made:?}: {:?}", all_volumes(&cloud));
    let (made_id, _, status) = made[0].clone();
    assert_eq!(status, "in-use", "{made:?}");
    let s = cloud.openstack_json(&["server", "show", &sid2]);
    assert!(
        s["volumes_attached"].to_string().contains(&made_id),
        "server show lists no volume: {s}"
    );

    cloud.openstack_ok(&["server", "delete", "--wait", &sid1]);
    let shown = cloud.wait_for(&["volume", "show", &vid], "status", "available");
    assert_eq!(shown["attachments"], serde_json::json!([]), "{shown}");
    cloud.openstack_ok(&["server", "delete", "--wait", &sid2]);
    let deadline = std::time::Instant::now() + super::harness::STATE_TIMEOUT;
    while all_volumes(&cloud).iter().any(|(id, _, _)| id == &made_id) {
        assert!(
            std::time::Instant::now() < deadline,
            "the volume made at boot is left: {:?}",
            all_volumes(&cloud)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let left: Vec<String> = all_volumes(&cloud)
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!(left, vec![vid.clone()]);

    // From a snapshot of the volume (`--snapshot`): the launch makes a
    // volume of the snapshot, the user's, kept after the server by default.
    let snap =
        cloud.openstack_json(&["volume", "snapshot", "create", "--volume", &vid, "e2e-snap"]);
    let snap_id = field(&snap, "id");
    cloud.wait_for(
        &["volume", "snapshot", "show", &snap_id],
        "status",
        "available",
    );
    let s3 = cloud.openstack_json(&[
        "server",
        "create",
        "--flavor",
        &l.flavor,
        "--snapshot",
        &snap_id,
        "--nic",
        &nic,
        "--wait",
        "e2e-bfv-snapshot",
    ]);
    assert_eq!(field(&s3, "status"), "ACTIVE", "{s3}");
    let sid3 = field(&s3, "id");
    let made: Vec<_> = volumes_listed(&cloud, &["volume", "list"])
        .into_iter()
        .filter(|(id, _, _)| id != &vid)
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let (from_snap, _, status) = made[0].clone();
    assert_eq!(status, "in-use", "{made:?}");
    let shown = cloud.openstack_json(&["volume", "show", &from_snap]);
    assert_eq!(field(&shown, "snapshot_id"), snap_id, "{shown}");
    cloud.openstack_ok(&["server", "delete", "--wait", &sid3]);
    cloud.wait_for(&["volume", "show", &from_snap], "status", "available");
    // A snapshot that does not exist is Nova's 400.
    let err = cloud.openstack_fails(&[
        "server",
        "create",
        "--flavor",
        &l.flavor,
        "--block-device",
        &format!(
            "source_type=snapshot,uuid={},destination_type=volume,boot_index=0",
            uuid::Uuid::new_v4()
        ),
        "--nic",
        &nic,
        "e2e-bfv-nosnap",
    ]);
    assert!(err.contains("snapshot"), "{err}");
    cloud.openstack_ok(&["volume", "delete", &from_snap]);
    cloud.openstack_ok(&["volume", "snapshot", "delete", &snap_id]);
    let deadline = std::time::Instant::now() + super::harness::STATE_TIMEOUT;
    while all_volumes(&cloud).len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            all_volumes(&cloud)
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    cloud.openstack_ok(&["volume", "delete", &vid]);
}
