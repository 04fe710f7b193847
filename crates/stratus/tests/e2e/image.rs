//! Image (Glance v2) through the real `openstack` CLI: upload of a real
//! qcow2 made by `qemu-img`, list and show, download compared byte for
//! byte, properties, tags, sharing with another project (members), and
//! the 404 another project gets for a private image.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::harness::{column, field, Cloud};

/// A real qcow2 file (`qemu-img create -f qcow2 PATH 16M`).
pub fn make_qcow2(path: &Path) {
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg("16M")
        .status()
        .expect("qemu-img is installed");
    assert!(status.success(), "qemu-img create failed");
}

/// `image create --file F --disk-format qcow2 --container-format bare
/// <visibility> NAME` of a fresh qcow2; the image as the CLI shows it.
pub fn create_image(cloud: &Cloud, name: &str, visibility: &str) -> Value {
    let file = cloud.data_dir().join(format!("{name}.qcow2"));
    make_qcow2(&file);
    let file = file.to_str().expect("utf-8 path").to_owned();
    cloud.openstack_json(&[
        "image",
        "create",
        "--file",
        &file,
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        visibility,
        name,
    ])
}

/// `properties` of `image show -f json` (OSC flattens the extra
/// properties into one dict).
fn properties(image: &Value) -> &Value {
    &image["properties"]
}

#[test]
fn upload_list_show_save_and_delete() {
    let cloud = Cloud::start();
    let src = cloud.data_dir().join("disk.qcow2");
    make_qcow2(&src);
    let src_s = src.to_str().expect("utf-8 path");
    let created = cloud.openstack_json(&[
        "image",
        "create",
        "--file",
        src_s,
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--public",
        "cirros-e2e",
    ]);
    let id = field(&created, "id");
    assert_eq!(created["status"], "active", "{created}");
    assert_eq!(created["visibility"], "public", "{created}");
    assert_eq!(created["disk_format"], "qcow2", "{created}");
    assert_eq!(created["container_format"], "bare", "{created}");
    let bytes = std::fs::read(&src).expect("source file");
    assert_eq!(
        created["size"].as_u64(),
        Some(bytes.len() as u64),
        "{created}"
    );
    // Glance's checksum is the md5 of the bits; the multihash is sha512.
    let md5 = Command::new("md5sum").arg(&src).output().expect("md5sum");
    let md5 = String::from_utf8_lossy(&md5.stdout);
    assert_eq!(
        created["checksum"].as_str(),
        md5.split_whitespace().next(),
        "{created}"
    );
    // OSC shows the multihash among the properties.
    let sha512 = Command::new("sha512sum")
        .arg(&src)
        .output()
        .expect("sha512sum");
    let sha512 = String::from_utf8_lossy(&sha512.stdout);
    assert_eq!(properties(&created)["os_hash_algo"], "sha512", "{created}");
    assert_eq!(
        properties(&created)["os_hash_value"].as_str(),
        sha512.split_whitespace().next(),
        "{created}"
    );

    let listed = cloud.openstack_json(&["image", "list"]);
    assert!(column(&listed, "ID").contains(&id), "{listed}");
    assert!(column(&listed, "Name").contains(&"cirros-e2e".to_owned()));

    // By name and by id alike.
    let by_name = cloud.openstack_json(&["image", "show", "cirros-e2e"]);
    assert_eq!(by_name["id"], id.as_str());
    let by_id = cloud.openstack_json(&["image", "show", &id]);
    assert_eq!(by_id["name"], "cirros-e2e");

    // The downloaded bits are the uploaded bits.
    let out = cloud.data_dir().join("saved.qcow2");
    cloud.openstack_ok(&[
        "image",
        "save",
        "--file",
        out.to_str().expect("utf-8 path"),
        "cirros-e2e",
    ]);
    assert_eq!(std::fs::read(&out).expect("saved file"), bytes);

    cloud.openstack_ok(&["image", "delete", &id]);
    let gone = cloud.openstack_fails(&["image", "show", &id]);
    assert!(
        gone.contains("No Image found") || gone.contains("404"),
        "{gone}"
    );
    let listed = cloud.openstack_json(&["image", "list"]);
    assert!(!column(&listed, "ID").contains(&id), "{listed}");
}

#[test]
fn properties_and_tags() {
    let cloud = Cloud::start();
    let id = field(&create_image(&cloud, "props", "--private"), "id");
    cloud.openstack_ok(&[
        "image",
        "set",
        "--property",
        "os_distro=cirros",
        "--property",
        "hw_rng_model=virtio",
        &id,
    ]);
    cloud.openstack_ok(&["image", "set", "--tag", "e2e", "--tag", "small", &id]);
    let shown = cloud.openstack_json(&["image", "show", &id]);
    assert_eq!(properties(&shown)["os_distro"], "cirros", "{shown}");
    assert_eq!(properties(&shown)["hw_rng_model"], "virtio", "{shown}");
    let mut tags: Vec<String> = shown["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("tags list: {shown}"))
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    tags.sort();
    assert_eq!(tags, ["e2e", "small"], "{shown}");
    assert_eq!(shown["visibility"], "private");

    // Changing one property keeps the others; removing one removes it.
    cloud.openstack_ok(&["image", "set", "--property", "os_distro=ubuntu", &id]);
    cloud.openstack_ok(&["image", "unset", "--property", "hw_rng_model", &id]);
    cloud.openstack_ok(&["image", "unset", "--tag", "small", &id]);
    let shown = cloud.openstack_json(&["image", "show", &id]);
    assert_eq!(properties(&shown)["os_distro"], "ubuntu", "{shown}");
    assert!(properties(&shown)["hw_rng_model"].is_null(), "{shown}");
    assert_eq!(shown["tags"], serde_json::json!(["e2e"]), "{shown}");

    // The tag filter of the list.
    let tagged = cloud.openstack_json(&["image", "list", "--tag", "e2e"]);
    assert_eq!(column(&tagged, "ID"), [id.as_str()], "{tagged}");
}

#[test]
fn private_images_are_hidden_and_shared_ones_need_membership() {
    let cloud = Cloud::start();
    let other = cloud.project_with_member("img-other", "olga", "olga-pw");
    let private = field(&create_image(&cloud, "secret", "--private"), "id");
    let shared = field(&create_image(&cloud, "to-share", "--shared"), "id");
    let public = field(&create_image(&cloud, "for-all", "--public"), "id");
    let as_olga = |args: &[&str]| cloud.openstack_as("olga", "olga-pw", "img-other", args);

    // Another project's private image does not exist for olga: the API
    // says 404 (never 403), and the CLI finds nothing.
    let token = cloud.token_of("olga", "olga-pw", "img-other");
    let url = format!(
        "http://127.0.0.1:{}/v2/images/{private}",
        cloud.port("IMAGE")
    );
    let (status, _, _) = cloud.http(
        reqwest::Method::GET,
        &url,
        &[("x-auth-token", &token)],
        None,
    );
    assert_eq!(status, 404);
    let out = as_olga(&["image", "show", &private]);
    assert!(!out.status.success(), "olga must not see the private image");
    let listed = cloud.openstack_json_as("olga", "olga-pw", "img-other", &["image", "list"]);
    let ids = column(&listed, "ID");
    assert!(ids.contains(&public), "{listed}");
    assert!(
        !ids.contains(&private) && !ids.contains(&shared),
        "{listed}"
    );
    // Nor can she change or delete it.
    assert!(!as_olga(&["image", "delete", &private]).status.success());
    assert!(!as_olga(&["image", "set", "--property", "x=y", &public])
        .status
        .success());

    // Shared: a member project sees it, as a pending member at first.
    let added = cloud.openstack_json(&["image", "add", "project", &shared, &other]);
    assert_eq!(added["member_id"], other.as_str(), "{added}");
    assert_eq!(added["status"], "pending", "{added}");
    let members = cloud.openstack_json(&["image", "member", "list", &shared]);
    assert_eq!(column(&members, "Member ID"), [other.as_str()], "{members}");
    assert_eq!(column(&members, "Status"), ["pending"], "{members}");
    let seen = cloud.openstack_json_as("olga", "olga-pw", "img-other", &["image", "show", &shared]);
    assert_eq!(seen["name"], "to-share");

    // Once she accepts it, it is in her list too.
    let args = ["image", "set", "--accept", &shared];
    let out = as_olga(&args);
    assert!(
        out.status.success(),
        "accept: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let members = cloud.openstack_json(&["image", "member", "list", &shared]);
    assert_eq!(column(&members, "Status"), ["accepted"], "{members}");
    let listed = cloud.openstack_json_as("olga", "olga-pw", "img-other", &["image", "list"]);
    assert!(column(&listed, "ID").contains(&shared), "{listed}");

    // Removing the member hides it again.
    cloud.openstack_ok(&["image", "remove", "project", &shared, &other]);
    assert!(!as_olga(&["image", "show", &shared]).status.success());
}
