//! Rebuild and snapshot through the real `openstack` CLI: `server rebuild`
//! onto another image (with a new name and properties, a key pair at
//! 2.54, user data at 2.57), and `server image create`, whose image is
//! active with Nova's snapshot properties and boots a new server.

use std::process::Command;

use serde_json::Value;

use super::harness::{column, field, Cloud};
use super::image::create_image;
use super::network::network_with_subnet;

/// Two public images, a network and a flavor, all `rb-*`; the image ids
/// and the flavor id.
fn setup(cloud: &Cloud) -> (String, String, String) {
    let img1 = field(&create_image(cloud, "rb-img1", "--public"), "id");
    let img2 = field(&create_image(cloud, "rb-img2", "--public"), "id");
    network_with_subnet(cloud, "rb-net", "10.41.0.0/24", &[]);
    let flavor = cloud.openstack_json(&[
        "flavor",
        "create",
        "--ram",
        "512",
        "--disk",
        "1",
        "--vcpus",
        "1",
        "rb-flavor",
    ]);
    (img1, img2, field(&flavor, "id"))
}

fn boot(cloud: &Cloud, image: &str, flavor: &str, name: &str) -> Value {
    cloud.openstack_json(&[
        "server",
        "create",
        "--flavor",
        flavor,
        "--image",
        image,
        "--network",
        "rb-net",
        "--wait",
        name,
    ])
}

#[test]
fn rebuild_with_the_cli() {
    let cloud = Cloud::start();
    let (img1, img2, flavor) = setup(&cloud);
    let id = field(&boot(&cloud, &img1, &flavor, "rb-vm"), "id");
    let show = ["server", "show", id.as_str()];

    cloud.openstack_ok(&[
        "server",
        "rebuild",
        "--image",
        &img2,
        "--name",
        "rb-vm2",
        "--property",
        "role=db",
        "--wait",
        &id,
    ]);
    let s = cloud.wait_for(&show, "status", "ACTIVE");
    assert!(s["image"].to_string().contains(&img2), "{s}");
    assert_eq!(s["name"], "rb-vm2", "{s}");
    assert!(s["properties"].to_string().contains("role"), "{s}");
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{s}");
    // The addresses (ports) are kept.
    assert!(s["addresses"].to_string().contains("10.41.0."), "{s}");

    // 2.54: a key pair given on rebuild.
    let key = cloud.data_dir().join("id_rb");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rb", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let pub_key = cloud.data_dir().join("id_rb.pub");
    cloud.openstack_json(&[
        "keypair",
        "create",
        "--public-key",
        pub_key.to_str().expect("utf-8 path"),
        "rb-key",
    ]);
    cloud.openstack_ok(&[
        "--os-compute-api-version",
        "2.54",
        "server",
        "rebuild",
        "--image",
        &img1,
        "--key-name",
        "rb-key",
        "--wait",
        &id,
    ]);
    let s = cloud.wait_for(&show, "status", "ACTIVE");
    assert_eq!(s["key_name"], "rb-key", "{s}");
    assert!(s["image"].to_string().contains(&img1), "{s}");

    // 2.57: new user data.
    let ud = cloud.data_dir().join("rb-user-data");
    std::fs::write(&ud, "#cloud-config\nhostname: rebuilt\n").expect("user data");
    cloud.openstack_ok(&[
        "--os-compute-api-version",
        "2.57",
        "server",
        "rebuild",
        "--image",
        &img2,
        "--user-data",
        ud.to_str().expect("utf-8 path"),
        "--wait",
        &id,
    ]);
    cloud.wait_for(&show, "status", "ACTIVE");
    let s = cloud.openstack_json(&["--os-compute-api-version", "2.57", "server", "show", &id]);
    let b64 = Command::new("base64")
        .arg("-w0")
        .arg(&ud)
        .output()
        .expect("base64");
    let want = String::from_utf8(b64.stdout).expect("base64 text");
    assert!(s.to_string().contains(&want), "user data: {s}");

    // A stopped server is rebuilt and stays SHUTOFF.
    cloud.openstack_ok(&["server", "stop", &id]);
    cloud.wait_for(&show, "status", "SHUTOFF");
    cloud.openstack_ok(&["server", "rebuild", "--image", &img1, &id]);
    let s = cloud.wait_for(&show, "status", "SHUTOFF");
    assert!(s["image"].to_string().contains(&img1), "{s}");

    // Every rebuild is an instance action.
    let events = cloud.openstack_json(&["server", "event", "list", &id]);
    let rebuilds = column(&events, "Action")
        .into_iter()
        .filter(|a| a == "rebuild")
        .count();
    assert_eq!(rebuilds, 4, "{events}");

    // An image that does not exist: Nova's 400.
    let err = cloud.openstack_fails(&[
        "server",
        "rebuild",
        "--image",
        "0c1d6a3e-5b8f-4f3e-9a44-7a2f6f1c9e03",
        &id,
    ]);
    assert!(
        err.contains("No Image found") || err.contains("Cannot find image"),
        "{err}"
    );
}

#[test]
fn snapshot_with_the_cli() {
    let cloud = Cloud::start();
    let (img1, _, flavor) = setup(&cloud);
    let id = field(&boot(&cloud, &img1, &flavor, "rb-snap-vm"), "id");

    cloud.openstack_ok(&[
        "server",
        "image",
        "create",
        "--name",
        "rb-snap",
        "--property",
        "purpose=e2e",
        "--wait",
        &id,
    ]);
    let listed = cloud.openstack_json(&["image", "list", "--name", "rb-snap"]);
    assert_eq!(column(&listed, "Status"), ["active"], "{listed}");
    let snap = cloud.openstack_json(&["image", "show", "rb-snap"]);
    let props = &snap["properties"];
    assert_eq!(props["image_type"], "snapshot", "{snap}");
    assert_eq!(props["instance_uuid"], id.as_str(), "{snap}");
    assert_eq!(props["base_image_ref"], img1.as_str(), "{snap}");
    assert_eq!(props["purpose"], "e2e", "{snap}");
    assert_eq!(snap["disk_format"], "qcow2", "{snap}");
    assert_eq!(snap["visibility"], "private", "{snap}");
    assert!(snap["size"].as_u64().is_some_and(|n| n > 0), "{snap}");
    let s = cloud.wait_for(&["server", "show", id.as_str()], "status", "ACTIVE");
    assert!(s["OS-EXT-STS:task_state"].is_null(), "{s}");
    let events = cloud.openstack_json(&["server", "event", "list", &id]);
    assert!(
        column(&events, "Action").contains(&"createImage".to_owned()),
        "{events}"
    );

    // The snapshot boots.
    let from_snap = boot(&cloud, "rb-snap", &flavor, "rb-from-snap");
    assert_eq!(from_snap["status"], "ACTIVE", "{from_snap}");
    assert!(
        from_snap["image"].to_string().contains(&field(&snap, "id")),
        "{from_snap}"
    );
}
