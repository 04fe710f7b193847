//! Image (Glance v2) through the real `openstack` CLI: upload of a real
//! qcow2 made by `qemu-img`, list and show, download compared byte for
//! byte, properties, tags, sharing with another project (members), and
//! the 404 another project gets for a private image; the draft-4 JSON
//! patch, owner deactivation and the size filters that clients use.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::harness::{assert_success, column, field, Cloud};

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
/// <visibility> NAME` of a fresh qcow2 (F is `<data dir>/NAME.qcow2`); the
/// image as the CLI shows it.
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

/// The bits `image save --file F IMAGE` writes (F in the data dir).
pub fn saved(cloud: &Cloud, image: &str) -> Vec<u8> {
    let out = cloud.data_dir().join(format!("saved-{image}"));
    cloud.openstack_ok(&[
        "image",
        "save",
        "--file",
        out.to_str().expect("utf-8 path"),
        image,
    ]);
    std::fs::read(&out).expect("saved file")
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
    assert!(
        saved(&cloud, "cirros-e2e") == bytes,
        "downloaded bits differ"
    );

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

/// openstacksdk's session sends a draft-4 patch with the v2.0 media type,
/// then lists by size; both as Glance answers them.
const SDK_PATCH_AND_SIZES: &str = r#"
import json, sys, openstack
conn = openstack.connect(cloud='stratus')
small = conn.image.create_image(name='small', data=b'x' * 100, disk_format='raw',
                                container_format='bare')
big = conn.image.create_image(name='big', data=b'y' * 5000, disk_format='raw',
                              container_format='bare')
v20 = {'Content-Type': 'application/openstack-images-v2.0-json-patch'}
ops = [{'replace': '/name', 'value': 'small2'}, {'add': '/color', 'value': 'red'}]
r = conn.image.patch('/images/' + small.id, data=json.dumps(ops), headers=v20)
assert r.status_code == 200, (r.status_code, r.text)
img = conn.image.get_image(small.id)
assert img.name == 'small2', img
assert img.properties.get('color') == 'red', img.properties
# Draft 4's add does not overwrite.
r = conn.image.patch('/images/' + small.id, headers=v20, raise_exc=False,
                     data=json.dumps([{'add': '/color', 'value': 'blue'}]))
assert r.status_code == 409, (r.status_code, r.text)
r = conn.image.patch('/images/' + small.id, headers=v20, raise_exc=False,
                     data=json.dumps([{'op': 'add', 'path': '/color', 'value': 'blue'}]))
assert r.status_code == 400, (r.status_code, r.text)

def names(**q):
    return sorted(i.name for i in conn.image.images(**q) if i.name in ('small2', 'big'))
assert names(size_min=1000) == ['big'], names(size_min=1000)
assert names(size_max=1000) == ['small2'], names(size_max=1000)
assert names(size_min=100, size_max=5000) == ['big', 'small2']
assert names(size_min=101, size_max=4999) == []
print('sdk patch and sizes ok')
"#;

#[test]
fn draft4_patch_owner_deactivation_and_size_filters() {
    let cloud = Cloud::start();
    let out = cloud.python(SDK_PATCH_AND_SIZES, &[]);
    assert_success(&out, &["python", "sdk patch and sizes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sdk patch and sizes ok"), "{stdout}");

    // The owner's member deactivates and reactivates its own image, as
    // Glance's default policy allows; a reader of the project may not.
    cloud.project_with_member("img-own", "owen", "owen-pw");
    cloud.openstack_json(&[
        "user",
        "create",
        "--domain",
        "default",
        "--password",
        "rita-pw",
        "rita",
    ]);
    cloud.openstack_ok(&[
        "role",
        "add",
        "--project",
        "img-own",
        "--user",
        "rita",
        "reader",
    ]);
    let file = cloud.data_dir().join("owned.qcow2");
    make_qcow2(&file);
    let file = file.to_str().expect("utf-8 path");
    let owen = |args: &[&str]| cloud.openstack_json_as("owen", "owen-pw", "img-own", args);
    let created = owen(&[
        "image",
        "create",
        "--file",
        file,
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "owned",
    ]);
    let id = field(&created, "id");
    // openstacksdk does not raise on the 403 of an image action (the CLI
    // exits 0), so the reader's refusal is checked on the wire and by the
    // status staying as it was.
    let args = ["image", "set", "--deactivate", &id];
    let _ = cloud.openstack_as("rita", "rita-pw", "img-own", &args);
    assert_eq!(owen(&["image", "show", &id])["status"], "active");
    let token = cloud.token_of("rita", "rita-pw", "img-own");
    let url = format!(
        "http://127.0.0.1:{}/v2/images/{id}/actions/deactivate",
        cloud.port("IMAGE")
    );
    let (status, _, body) = cloud.http(
        reqwest::Method::POST,
        &url,
        &[("x-auth-token", &token)],
        None,
    );
    assert_eq!(status, 403, "{body}");
    assert_success(
        &cloud.openstack_as("owen", "owen-pw", "img-own", &args),
        &args,
    );
    assert_eq!(owen(&["image", "show", &id])["status"], "deactivated");
    let args = ["image", "set", "--activate", &id];
    assert_success(
        &cloud.openstack_as("owen", "owen-pw", "img-own", &args),
        &args,
    );
    assert_eq!(owen(&["image", "show", &id])["status"], "active");
}

/// The host cache's record of `image` (`<data dir>/imagecache/<id>.json`,
/// written by the compute agent of `stratus up`).
fn cache_record(cloud: &Cloud, image: &str) -> Value {
    let path = cloud
        .data_dir()
        .join("imagecache")
        .join(format!("{image}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no cache record {}: {e}", path.display()));
    serde_json::from_str(&text).expect("a JSON cache record")
}

/// A small flavor and two servers booted from `image` with `--wait`: both
/// must go ACTIVE. The cache record after each boot.
fn boot_two(cloud: &Cloud, image: &str) -> (Value, Value) {
    let flavor = cloud.openstack_json(&[
        "flavor",
        "create",
        "--ram",
        "256",
        "--disk",
        "1",
        "--vcpus",
        "1",
        "cache-e2e",
    ]);
    let flavor = field(&flavor, "id");
    let mut records = Vec::new();
    for name in ["from-cache-1", "from-cache-2"] {
        let server = cloud.openstack_json(&[
            "server", "create", "--flavor", &flavor, "--image", image, "--nic", "none", "--wait",
            name,
        ]);
        assert_eq!(server["status"], "ACTIVE", "{server}");
        records.push(cache_record(cloud, image));
    }
    let second = records.pop().expect("two records");
    let first = records.pop().expect("two records");
    (first, second)
}

/// What both stores must show: the cached base holds exactly the uploaded
/// bits with the image's hashes, and the second boot found it cached (it
/// was fetched once).
fn assert_cached_once(cloud: &Cloud, image: &Value, src: &Path, first: &Value, second: &Value) {
    let id = field(image, "id");
    let bytes = std::fs::read(src).expect("source file");
    let base = cloud.data_dir().join("imagecache").join(&id);
    assert_eq!(std::fs::read(&base).expect("cached base"), bytes);
    assert_eq!(first["size"].as_u64(), Some(bytes.len() as u64), "{first}");
    assert_eq!(first["md5"], image["checksum"], "{first}");
    assert_eq!(
        first["sha512"],
        properties(image)["os_hash_value"],
        "{first}"
    );
    assert_eq!(first["disk_format"], "qcow2", "{first}");
    assert_eq!(first["virtual_size"].as_u64(), Some(16 << 20), "{first}");
    assert_eq!(
        first["fetched_at"], second["fetched_at"],
        "the second boot fetched again: {first} / {second}"
    );
    // Step 25: each server's disk is a qcow2 overlay on the one cached base.
    let overlays: Vec<&str> = second["users"]
        .as_array()
        .unwrap_or_else(|| panic!("users: {second}"))
        .iter()
        .filter_map(|u| u["overlay"].as_str())
        .collect();
    assert_eq!(overlays.len(), 2, "{second}");
    for overlay in overlays {
        let out = Command::new("qemu-img")
            .args(["info", "--output", "json", "-U", overlay])
            .output()
            .expect("qemu-img info");
        let info: Value = serde_json::from_slice(&out.stdout).expect("qemu-img JSON");
        assert_eq!(info["format"], "qcow2", "{info}");
        assert_eq!(
            info["backing-filename"].as_str().map(Path::new),
            Some(base.as_path()),
            "{info}"
        );
    }
}

/// `fake_disks`: the fake driver still gets a real disk per server, so that
/// the image path runs to its end (seed step 25) without a hypervisor.
const FAKE_DISKS: (&str, &str) = ("STRATUS_COMPUTE__FAKE_DISKS", "true");

#[test]
fn servers_boot_from_the_host_cache_filled_from_the_file_store() {
    let cloud = Cloud::start_with(&[FAKE_DISKS]);
    let image = create_image(&cloud, "cached", "--public");
    let src = cloud.data_dir().join("cached.qcow2");
    let id = field(&image, "id");
    let (first, second) = boot_two(&cloud, &id);
    // `up` runs the agent beside the image service: it reads the file the
    // store wrote, not the API's download (seed step 21).
    assert_eq!(first["source"], "file", "{first}");
    assert_cached_once(&cloud, &image, &src, &first, &second);
}

/// `STRATUS_TEST_S3`'s s3.env (scripts/ceph/start.sh DIR) as pairs, plus
/// `CEPH_CONF` (DIR/ceph.conf, whose keyring is client.admin's); `None` (the
/// test is skipped) unless `STRATUS_TEST_REQUIRE_CEPH=1`.
fn s3_env() -> Option<Vec<(String, String)>> {
    let required = std::env::var("STRATUS_TEST_REQUIRE_CEPH").is_ok_and(|v| v == "1");
    let path = std::env::var("STRATUS_TEST_S3")
        .ok()
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("stratus-ceph/s3.env"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        let msg = "no radosgw: set STRATUS_TEST_S3=DIR/s3.env (scripts/ceph/start.sh DIR)";
        assert!(!required, "{msg}");
        eprintln!("SKIPPED: {msg}");
        return None;
    };
    let mut vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let conf = path.with_file_name("ceph.conf");
    vars.push(("CEPH_CONF".to_owned(), conf.display().to_string()));
    Some(vars)
}

#[test]
fn servers_boot_from_an_image_stored_in_ceph() {
    let Some(s3) = s3_env() else { return };
    let get = |k: &str| {
        s3.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // A bucket per run keeps runs apart. Only the image store is given
    // credentials (`up` hands them to the host cache); the host learns the
    // radosgw endpoint from the Ceph monitors (steps 21–22).
    let bucket = format!("stratus-e2e-{}", std::process::id());
    let env = [
        ("STRATUS_IMAGE__STORE", "s3".to_owned()),
        ("STRATUS_IMAGE__S3__ENDPOINT", get("S3_ENDPOINT")),
        ("STRATUS_IMAGE__S3__ACCESS_KEY", get("S3_ACCESS_KEY")),
        ("STRATUS_IMAGE__S3__SECRET_KEY", get("S3_SECRET_KEY")),
        ("STRATUS_IMAGE__S3__REGION", get("S3_REGION")),
        ("STRATUS_IMAGE__S3__BUCKET", bucket.clone()),
        ("STRATUS_IMAGECACHE__CEPH__CONF", get("CEPH_CONF")),
    ];
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(FAKE_DISKS);
    let cloud = Cloud::start_with(&env);

    let image = create_image(&cloud, "in-ceph", "--public");
    let src = cloud.data_dir().join("in-ceph.qcow2");
    let id = field(&image, "id");
    // The admin sees where the bits are: an object in the RGW bucket.
    let shown = cloud.openstack_json(&["image", "show", &id]);
    let want = format!("s3://{bucket}/{id}");
    assert!(shown.to_string().contains(&want), "{want} in {shown}");

    let (first, second) = boot_two(&cloud, &id);
    // Steps 21–25: the agent asked the monitors where radosgw is, then
    // read the object from it itself.
    assert_eq!(first["source"], "s3", "{first}");
    assert_eq!(
        first["store_endpoint"],
        serde_json::json!({"url": get("S3_ENDPOINT"), "from": "ceph-monitors"}),
        "{first}"
    );
    assert_cached_once(&cloud, &image, &src, &first, &second);

    // And the API streams the same bits back from Ceph.
    assert!(
        saved(&cloud, &id) == std::fs::read(&src).expect("source"),
        "downloaded bits differ"
    );
}
