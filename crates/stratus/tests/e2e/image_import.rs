//! Interoperable image import (glance-direct) through the real clients:
//! `openstack image create --import` (openstacksdk stages, then imports),
//! the separate `image stage` + `image import` commands, discovery
//! (`image import info`, `image stores list`), and openstacksdk's
//! `create_image(..., use_import=True)`; each image becomes active with the
//! right hashes and `virtual_size`, and downloads byte for byte.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::{assert_success, column, field, Cloud, STATE_TIMEOUT};
use super::image::{make_qcow2, saved};

/// `image show -f json` until `status` is `want`; the image.
fn wait_for_status(cloud: &Cloud, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + STATE_TIMEOUT;
    loop {
        let shown = cloud.openstack_json(&["image", "show", id]);
        if shown["status"] == want {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "image {id} did not become {want}: {shown}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn first_word(tool: &str, path: &std::path::Path) -> String {
    let out = Command::new(tool).arg(path).output().expect(tool);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The image's data as `image save` writes it equals `src`, and its
/// checksum, multihash, size and virtual size are right.
fn check_active_image(cloud: &Cloud, shown: &Value, src: &std::path::Path, virtual_size: u64) {
    let id = field(shown, "id");
    let bytes = std::fs::read(src).expect("source file");
    assert_eq!(shown["size"].as_u64(), Some(bytes.len() as u64), "{shown}");
    assert_eq!(
        shown["virtual_size"].as_u64(),
        Some(virtual_size),
        "{shown}"
    );
    assert_eq!(
        shown["checksum"],
        first_word("md5sum", src).as_str(),
        "{shown}"
    );
    assert_eq!(
        shown["properties"]["os_hash_value"],
        first_word("sha512sum", src).as_str(),
        "{shown}"
    );
    assert!(
        saved(cloud, &id) == bytes,
        "downloaded bytes differ from the imported file"
    );
}

#[test]
fn glance_direct_import_with_the_cli_and_the_sdk() {
    let cloud = Cloud::start();

    // Discovery as the CLI shows it.
    let info = cloud.openstack_json(&["image", "import", "info"]);
    assert_eq!(
        info["import-methods"],
        serde_json::json!(["glance-direct"]),
        "{info}"
    );
    let stores = cloud.openstack_json(&["image", "stores", "list"]);
    assert_eq!(column(&stores, "ID"), ["file"], "{stores}");
    assert_eq!(stores[0]["Default"], true, "{stores}");

    // `image create --import`: the SDK creates, stages and imports.
    let qcow2 = cloud.data_dir().join("import.qcow2");
    make_qcow2(&qcow2);
    let created = cloud.openstack_json(&[
        "image",
        "create",
        "--import",
        "--file",
        qcow2.to_str().expect("utf-8 path"),
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--private",
        "imported-qcow2",
    ]);
    let id = field(&created, "id");
    let shown = wait_for_status(&cloud, &id, "active");
    check_active_image(&cloud, &shown, &qcow2, 16 * 1024 * 1024);
    // No staged data is left once the import is done.
    let staging = cloud.data_dir().join("image-staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staged data left: {left:?}");

    // The two steps by hand: create, stage (uploading), import.
    let raw = cloud.data_dir().join("staged.raw");
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&raw, &data).expect("raw file");
    // (Created over HTTP: `image create` without `--file` would upload
    // the test's empty stdin.)
    let url = format!("http://127.0.0.1:{}/v2/images", cloud.port("IMAGE"));
    let token = cloud.admin_token();
    let body = serde_json::json!({
        "name": "staged-raw", "disk_format": "raw", "container_format": "bare"
    });
    let (status, headers, created) = cloud.http(
        reqwest::Method::POST,
        &url,
        &[("x-auth-token", &token)],
        Some(&body),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        headers
            .get("openstack-image-import-methods")
            .and_then(|v| v.to_str().ok()),
        Some("glance-direct")
    );
    let id = field(&created, "id");
    assert_eq!(created["status"], "queued", "{created}");
    cloud.openstack_ok(&[
        "image",
        "stage",
        "--file",
        raw.to_str().expect("utf-8 path"),
        &id,
    ]);
    let shown = cloud.openstack_json(&["image", "show", &id]);
    assert_eq!(shown["status"], "uploading", "{shown}");
    assert_eq!(shown["size"].as_u64(), Some(data.len() as u64), "{shown}");
    let listed = cloud.openstack_json(&["image", "list", "--status", "uploading"]);
    assert_eq!(column(&listed, "ID"), [id.as_str()], "{listed}");
    cloud.openstack_ok(&["image", "import", "--method", "glance-direct", &id]);
    let shown = wait_for_status(&cloud, &id, "active");
    check_active_image(&cloud, &shown, &raw, data.len() as u64);

    // Importing again is refused (the image is active); the CLI says so.
    let out = cloud.openstack_fails(&["image", "import", &id]);
    assert!(out.contains("uploading"), "{out}");

    // openstacksdk's own import path.
    let script = r#"
import sys, time, openstack
conn = openstack.connect(cloud='stratus')
img = conn.image.create_image(
    name='sdk-imported', filename=sys.argv[1], disk_format='raw',
    container_format='bare', use_import=True)
deadline = time.time() + 120
while True:
    img = conn.image.get_image(img.id)
    if img.status == 'active' or time.time() > deadline:
        break
    time.sleep(0.3)
print(img.id, img.status, img.checksum, img.size, img.virtual_size)
"#;
    let out = cloud.python(script, &[raw.to_str().expect("utf-8 path")]);
    assert_success(&out, &["python", "create_image(use_import=True)"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words.len(), 5, "{stdout}");
    assert_eq!(words[1], "active", "{stdout}");
    assert_eq!(words[2], first_word("md5sum", &raw), "{stdout}");
    assert_eq!(words[3], data.len().to_string(), "{stdout}");
    assert_eq!(words[4], data.len().to_string(), "{stdout}");
    let shown = cloud.openstack_json(&["image", "show", words[0]]);
    check_active_image(&cloud, &shown, &raw, data.len() as u64);
}
