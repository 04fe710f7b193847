//! Volume (Cinder v3) through the real `openstack` CLI and openstacksdk:
//! blank volumes and volumes from an image (a real qcow2) and from a
//! snapshot, list, show, set, volume types with properties, snapshots,
//! delete (the backend's files go with it), and Cinder's refusals as the
//! clients print them.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::harness::{assert_success, column, field, Cloud, STATE_TIMEOUT};
use super::image::{create_image, saved};

/// The file backend's folder (`[volume] file_dir` empty: DATA_DIR/volumes).
fn volumes_dir(cloud: &Cloud) -> std::path::PathBuf {
    cloud.data_dir().join("volumes")
}

/// The names of the files in `dir` (none when it does not exist).
fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `volume create ARGS NAME` and waits for `available`; the volume shown.
fn volume(cloud: &Cloud, args: &[&str], name: &str) -> Value {
    let mut all = vec!["volume", "create"];
    all.extend(args);
    all.push(name);
    let v = cloud.openstack_json(&all);
    let id = field(&v, "id");
    cloud.wait_for(&["volume", "show", &id], "status", "available")
}

/// Polls `list` until `id` is no longer in its `ID` column.
fn wait_gone(cloud: &Cloud, list: &[&str], id: &str) {
    let deadline = std::time::Instant::now() + STATE_TIMEOUT;
    loop {
        let ids = column(&cloud.openstack_json(list), "ID");
        if !ids.iter().any(|i| i == id) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`{}` still lists {id}",
            list.join(" ")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn volumes_types_and_snapshots_through_the_cli() {
    let cloud = Cloud::start();
    let dir = volumes_dir(&cloud);

    // A blank volume: a 1 GiB file of the backend.
    let blank = volume(&cloud, &["--size", "1"], "e2e-vol");
    let blank_id = field(&blank, "id");
    assert_eq!(blank["size"], 1, "{blank}");
    assert_eq!(field(&blank, "name"), "e2e-vol");
    let blank_file = dir.join(format!("volume-{blank_id}"));
    assert!(blank_file.exists(), "no {}", blank_file.display());

    // From an image (a real qcow2, converted by qemu-img): bootable.
    let image = field(&create_image(&cloud, "e2e-vol-img", "--public"), "id");
    let from_image = volume(
        &cloud,
        &["--image", "e2e-vol-img", "--size", "1"],
        "e2e-from-img",
    );
    let from_image_id = field(&from_image, "id");
    assert_eq!(
        from_image["bootable"].to_string().trim_matches('"'),
        "true",
        "{from_image}"
    );
    assert_eq!(
        from_image["volume_image_metadata"]["image_id"],
        image.as_str(),
        "{from_image}"
    );

    // Back to an image (os-volume_upload_image): the volume's data as a
    // qcow2 of the volume's size, in the caller's project; the volume is
    // available again.
    let up = cloud.openstack_json(&[
        "image",
        "create",
        "--volume",
        &from_image_id,
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "e2e-from-vol",
    ]);
    let up_id = up["image_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| field(&up, "id"));
    let up_image = cloud.wait_for(&["image", "show", &up_id], "status", "active");
    assert_eq!(field(&up_image, "disk_format"), "qcow2", "{up_image}");
    assert_eq!(up_image["min_disk"], 1, "{up_image}");
    cloud.wait_for(&["volume", "show", &from_image_id], "status", "available");
    let bits = saved(&cloud, &up_id);
    let file = cloud.data_dir().join("uploaded.qcow2");
    std::fs::write(&file, &bits).expect("write");
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&file)
        .output()
        .expect("qemu-img");
    let info: Value = serde_json::from_slice(&info.stdout).expect("qemu-img json");
    assert_eq!(info["format"], "qcow2", "{info}");
    assert_eq!(info["virtual-size"], 1u64 << 30, "{info}");
    cloud.openstack_ok(&["image", "delete", &up_id]);

    // List and show (by name).
    let list = cloud.openstack_json(&["volume", "list"]);
    let names = column(&list, "Name");
    for n in ["e2e-vol", "e2e-from-img"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {list}");
    }
    let shown = cloud.openstack_json(&["volume", "show", "e2e-vol"]);
    assert_eq!(field(&shown, "id"), blank_id);
    assert_eq!(field(&shown, "status"), "available");

    // Set a name and a property.
    cloud.openstack_ok(&[
        "volume",
        "set",
        "--name",
        "e2e-vol-b",
        "--property",
        "purpose=e2e",
        &blank_id,
    ]);
    let shown = cloud.openstack_json(&["volume", "show", &blank_id]);
    assert_eq!(field(&shown, "name"), "e2e-vol-b");
    assert_eq!(shown["properties"]["purpose"], "e2e", "{shown}");

    // Volume types: create with a property, list, set another, use one.
    let vtype = cloud.openstack_json(&[
        "volume",
        "type",
        "create",
        "--property",
        "volume_backend_name=file",
        "e2e-type",
    ]);
    let vtype_id = field(&vtype, "id");
    let types = cloud.openstack_json(&["volume", "type", "list"]);
    let type_names = column(&types, "Name");
    assert!(
        type_names.iter().any(|n| n == "e2e-type"),
        "e2e-type not in {types}"
    );
    assert!(
        type_names.iter().any(|n| n == "__DEFAULT__"),
        "no default type in {types}"
    );
    cloud.openstack_ok(&[
        "volume",
        "type",
        "set",
        "--property",
        "tier=gold",
        "e2e-type",
    ]);
    let vtype = cloud.openstack_json(&["volume", "type", "show", "e2e-type"]);
    assert_eq!(vtype["properties"]["tier"], "gold", "{vtype}");
    assert_eq!(
        vtype["properties"]["volume_backend_name"], "file",
        "{vtype}"
    );
    let typed = volume(&cloud, &["--type", "e2e-type", "--size", "1"], "e2e-typed");
    assert_eq!(field(&typed, "type"), "e2e-type", "{typed}");
    let typed_id = field(&typed, "id");

    // A snapshot of the volume; the volume cannot go while it has one.
    let snap = cloud.openstack_json(&[
        "volume", "snapshot", "create", "--volume", &blank_id, "e2e-snap",
    ]);
    let snap_id = field(&snap, "id");
    cloud.wait_for(
        &["volume", "snapshot", "show", &snap_id],
        "status",
        "available",
    );
    let snaps = cloud.openstack_json(&["volume", "snapshot", "list"]);
    assert_eq!(column(&snaps, "ID"), vec![snap_id.clone()], "{snaps}");
    assert!(dir.join(format!("snapshot-{snap_id}")).exists());
    let out = cloud.openstack_fails(&["volume", "delete", &blank_id]);
    assert!(
        out.contains(&format!(
            "Invalid volume: Volume {blank_id} still has 1 dependent snapshots."
        )),
        "{out}"
    );

    // A volume from the snapshot.
    let from_snap = volume(
        &cloud,
        &["--snapshot", &snap_id, "--size", "1"],
        "e2e-from-snap",
    );
    let from_snap_id = field(&from_snap, "id");
    assert_eq!(field(&from_snap, "snapshot_id"), snap_id, "{from_snap}");

    // Delete the snapshot, then every volume: the files go too.
    cloud.openstack_ok(&["volume", "snapshot", "delete", &snap_id]);
    wait_gone(&cloud, &["volume", "snapshot", "list"], &snap_id);
    assert!(!dir.join(format!("snapshot-{snap_id}")).exists());
    cloud.openstack_ok(&[
        "volume",
        "delete",
        &blank_id,
        &from_image_id,
        &typed_id,
        &from_snap_id,
    ]);
    for id in [&blank_id, &from_image_id, &typed_id, &from_snap_id] {
        wait_gone(&cloud, &["volume", "list"], id);
    }
    assert!(
        cloud.openstack_json(&["volume", "list"]) == Value::Array(vec![]),
        "volumes left"
    );
    // Only the (empty) scratch folder of image downloads is left.
    assert_eq!(
        files(&dir),
        vec![".scratch".to_owned()],
        "files left in {dir:?}"
    );
    assert_eq!(files(&dir.join(".scratch")), Vec::<String>::new());
    // A type no volume uses may go.
    cloud.openstack_ok(&["volume", "type", "delete", &vtype_id]);
}

#[test]
fn bad_input_gets_cinders_messages() {
    let cloud = Cloud::start();

    // Size 0: Cinder's 400, as the client prints it.
    let out = cloud.openstack_fails(&["volume", "create", "--size", "0", "e2e-zero"]);
    assert!(
        out.contains("Volume size '0' must be an integer and greater than 0"),
        "{out}"
    );
    assert!(out.contains("BadRequestException: 400"), "{out}");
    assert!(cloud.openstack_json(&["volume", "list"]) == Value::Array(vec![]));

    // A missing volume: the client finds nothing by id or name ...
    let missing = "3f1a4c52-6c0e-4c47-9d52-5c7a0e4f1b11";
    let out = cloud.openstack_fails(&["volume", "show", missing]);
    assert!(
        out.contains(&format!("No Volume found for {missing}")),
        "{out}"
    );
    // ... because Cinder answers its 404 (itemNotFound, with the id).
    let token = cloud.admin_token();
    let url = format!(
        "http://127.0.0.1:{}/v3/volumes/{missing}",
        cloud.port("VOLUME")
    );
    let (status, _, body) = cloud.http(
        reqwest::Method::GET,
        &url,
        &[
            ("x-auth-token", &token),
            ("openstack-api-version", "volume 3.70"),
        ],
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["itemNotFound"]["code"], 404, "{body}");
    assert_eq!(
        body["itemNotFound"]["message"],
        format!("Volume {missing} could not be found."),
        "{body}"
    );
    let out = cloud.openstack_fails(&["volume", "delete", missing]);
    assert!(out.contains("1 of 1 volumes failed to delete."), "{out}");

    // A snapshot of a missing volume.
    let out = cloud.openstack_fails(&["volume", "snapshot", "create", "--volume", missing, "s"]);
    assert!(out.contains(missing), "{out}");
}

const SDK_VOLUMES: &str = r#"
import sys
import openstack
conn = openstack.connect(cloud="stratus")
bs = conn.block_storage
vol = bs.create_volume(name=sys.argv[1], size=1)
vol = bs.wait_for_status(vol, status="available", failures=["error"], interval=1, wait=120)
assert vol.size == 1 and vol.name == sys.argv[1], vol
assert [v.id for v in bs.volumes()] == [vol.id]
snap = bs.create_snapshot(volume_id=vol.id, name="sdk-snap")
snap = bs.wait_for_status(snap, status="available", failures=["error"], interval=1, wait=120)
bs.extend_volume(vol, 2)
vol = bs.wait_for_status(bs.get_volume(vol.id), status="available", failures=["error"], interval=1, wait=120)
assert vol.size == 2, vol
bs.delete_snapshot(snap)
bs.wait_for_delete(snap, interval=1, wait=120)
bs.delete_volume(vol)
bs.wait_for_delete(vol, interval=1, wait=120)
assert list(bs.volumes()) == []
print("sdk volumes ok", vol.id)
"#;

#[test]
fn openstacksdk_volumes() {
    let cloud = Cloud::start();
    let out = cloud.python(SDK_VOLUMES, &["sdk-vol"]);
    assert_success(&out, &["python", "sdk volumes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sdk volumes ok"), "{stdout}");
    assert_eq!(files(&volumes_dir(&cloud)), Vec::<String>::new());
}
