//! Glance's metadata definitions and task API through the real clients
//! (issue 12): `openstack image metadef namespace/object/property/resource
//! type ...` and openstacksdk's metadef calls (tags included), then
//! `openstack image task list/show` and `conn.image.create_task(...)` with
//! an `import` task that copies an image from an allowed local HTTP server,
//! and one from elsewhere that fails.

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::Value;

use super::harness::{column, field, Cloud};

const SDK_METADEFS: &str = r#"
import sys, openstack
conn = openstack.connect(cloud='stratus')
ns = conn.image.create_metadef_namespace(namespace='SDK::Test', visibility='public',
                                         display_name='SDK test')
assert ns.namespace == 'SDK::Test', ns
names = [n.namespace for n in conn.image.metadef_namespaces()]
assert 'SDK::Test' in names, names
# Tags: one at a time (POST tags/{name}), a replacing set, an append.
conn.image.add_tag_to_metadef_namespace('SDK::Test', 'alpha')
ns = conn.image.get_metadef_namespace('SDK::Test')
ns.set_tags(conn.image, ['beta', 'gamma'])
ns.set_tags(conn.image, ['delta'], append=True)
tags = sorted(t['name'] for t in conn.image.get_metadef_namespace('SDK::Test').tags)
assert tags == ['beta', 'delta', 'gamma'], tags
conn.image.remove_tag_from_metadef_namespace('SDK::Test', 'beta')
conn.image.remove_tags_from_metadef_namespace('SDK::Test')
# (Read raw: openstacksdk's default `tags` list is shared between
# resources, and an empty namespace shows none, as in Glance.)
left = conn.image.get('/metadefs/namespaces/SDK::Test/tags').json()
assert left == {'tags': []}, left
# Objects and properties.
obj = conn.image.create_metadef_object(namespace='SDK::Test', name='Limits',
    required=['cpu'], properties={'cpu': {'title': 'CPU', 'type': 'integer'}})
assert obj.required == ['cpu'], obj
obj = conn.image.get_metadef_object('Limits', 'SDK::Test')
assert obj.properties['cpu']['type'] == 'integer', obj
prop = conn.image.create_metadef_property('SDK::Test', name='os_distro', title='Distro',
                                          type='string', enum=['ubuntu', 'debian'])
prop = conn.image.get_metadef_property('os_distro', 'SDK::Test')
assert prop.enum == ['ubuntu', 'debian'], prop
assert [p.name for p in conn.image.metadef_properties('SDK::Test')] == ['os_distro']
conn.image.create_metadef_resource_type_association('SDK::Test', name='OS::Cinder::Volume',
                                                    prefix='vol_')
assoc = [a.name for a in conn.image.metadef_resource_type_associations('SDK::Test')]
assert assoc == ['OS::Cinder::Volume'], assoc
types = [t.name for t in conn.image.metadef_resource_types()]
assert 'OS::Cinder::Volume' in types, types
# A duplicate is a conflict; a missing one is not found.
try:
    conn.image.create_metadef_namespace(namespace='SDK::Test')
    raise SystemExit('duplicate namespace accepted')
except openstack.exceptions.ConflictException:
    pass
try:
    conn.image.get_metadef_object('Nope', 'SDK::Test')
    raise SystemExit('missing object found')
except openstack.exceptions.NotFoundException:
    pass
schema = conn.image.get_metadef_namespace_schema()
assert schema.name == 'namespace', schema
conn.image.delete_all_metadef_objects('SDK::Test')
assert list(conn.image.metadef_objects('SDK::Test')) == []
conn.image.delete_metadef_namespace('SDK::Test')
assert 'SDK::Test' not in [n.namespace for n in conn.image.metadef_namespaces()]
print('sdk metadefs ok')
"#;

#[test]
fn metadefs_with_the_cli_and_the_sdk() {
    let cloud = Cloud::start();
    // Nothing is seeded: the empty catalog answers.
    assert_eq!(
        cloud.openstack_json(&["image", "metadef", "namespace", "list"]),
        Value::Array(vec![])
    );
    assert_eq!(
        cloud.openstack_json(&["image", "metadef", "resource", "type", "list"]),
        Value::Array(vec![])
    );

    let created = cloud.openstack_json(&[
        "image",
        "metadef",
        "namespace",
        "create",
        "--display-name",
        "CLI test",
        "--description",
        "made by the CLI",
        "--public",
        "--protected",
        "CLI::Test",
    ]);
    assert_eq!(created["namespace"], "CLI::Test", "{created}");
    assert_eq!(created["visibility"], "public", "{created}");
    assert_eq!(created["protected"], true, "{created}");
    let listed = cloud.openstack_json(&["image", "metadef", "namespace", "list"]);
    assert_eq!(column(&listed, "namespace"), ["CLI::Test"], "{listed}");
    let err = cloud.openstack_fails(&["image", "metadef", "namespace", "create", "CLI::Test"]);
    assert!(err.contains("already exists"), "{err}");

    // Objects.
    let obj = cloud.openstack_json(&[
        "image",
        "metadef",
        "object",
        "create",
        "--namespace",
        "CLI::Test",
        "Limits",
    ]);
    assert_eq!(obj["name"], "Limits", "{obj}");
    let objs = cloud.openstack_json(&["image", "metadef", "object", "list", "CLI::Test"]);
    assert_eq!(column(&objs, "name"), ["Limits"], "{objs}");
    let shown =
        cloud.openstack_json(&["image", "metadef", "object", "show", "CLI::Test", "Limits"]);
    assert_eq!(shown["name"], "Limits", "{shown}");

    // Properties, with the rest of the definition as a JSON schema.
    let prop = cloud.openstack_json(&[
        "image",
        "metadef",
        "property",
        "create",
        "--name",
        "hw_disk_bus",
        "--title",
        "Disk bus",
        "--type",
        "string",
        "--schema",
        r#"{"enum": ["virtio", "scsi"], "description": "How disks attach"}"#,
        "CLI::Test",
    ]);
    assert_eq!(prop["name"], "hw_disk_bus", "{prop}");
    assert_eq!(
        prop["enum"],
        serde_json::json!(["virtio", "scsi"]),
        "{prop}"
    );
    let props = cloud.openstack_json(&["image", "metadef", "property", "list", "CLI::Test"]);
    assert_eq!(column(&props, "name"), ["hw_disk_bus"], "{props}");
    let shown = cloud.openstack_json(&[
        "image",
        "metadef",
        "property",
        "show",
        "CLI::Test",
        "hw_disk_bus",
    ]);
    assert_eq!(shown["title"], "Disk bus", "{shown}");
    cloud.openstack_ok(&[
        "image",
        "metadef",
        "property",
        "set",
        "--title",
        "Disk bus type",
        "CLI::Test",
        "hw_disk_bus",
    ]);
    let shown = cloud.openstack_json(&[
        "image",
        "metadef",
        "property",
        "show",
        "CLI::Test",
        "hw_disk_bus",
    ]);
    assert_eq!(shown["title"], "Disk bus type", "{shown}");

    // Resource type associations.
    cloud.openstack_json(&[
        "image",
        "metadef",
        "resource",
        "type",
        "association",
        "create",
        "--properties-target",
        "image",
        "CLI::Test",
        "OS::Glance::Image",
    ]);
    let assoc = cloud.openstack_json(&[
        "image",
        "metadef",
        "resource",
        "type",
        "association",
        "list",
        "CLI::Test",
    ]);
    assert_eq!(column(&assoc, "Name"), ["OS::Glance::Image"], "{assoc}");
    let types = cloud.openstack_json(&["image", "metadef", "resource", "type", "list"]);
    assert_eq!(column(&types, "Name"), ["OS::Glance::Image"], "{types}");
    let filtered = cloud.openstack_json(&[
        "image",
        "metadef",
        "namespace",
        "list",
        "--resource-types",
        "OS::Glance::Image",
    ]);
    assert_eq!(column(&filtered, "namespace"), ["CLI::Test"], "{filtered}");
    let shown = cloud.openstack_json(&["image", "metadef", "namespace", "show", "CLI::Test"]);
    assert_eq!(
        shown["resource_type_associations"],
        serde_json::json!(["OS::Glance::Image"]),
        "{shown}"
    );
    // (openstacksdk's namespace has no `properties`: read them raw.)
    let url = format!(
        "http://127.0.0.1:{}/v2/metadefs/namespaces/CLI::Test",
        cloud.port("IMAGE")
    );
    let token = cloud.admin_token();
    let (status, _, raw) = cloud.http(
        reqwest::Method::GET,
        &url,
        &[("x-auth-token", &token)],
        None,
    );
    assert_eq!(status, 200, "{raw}");
    assert_eq!(
        raw["properties"]["hw_disk_bus"]["title"], "Disk bus type",
        "{raw}"
    );
    assert_eq!(raw["objects"][0]["name"], "Limits", "{raw}");

    // A member of another project: the public namespace is readable, not
    // writable (Zed's `metadef_admin`).
    cloud.project_with_member("md-other", "mdo", "mdo-pw");
    let seen = cloud.openstack_json_as(
        "mdo",
        "mdo-pw",
        "md-other",
        &["image", "metadef", "namespace", "show", "CLI::Test"],
    );
    assert_eq!(seen["namespace"], "CLI::Test", "{seen}");
    let out = cloud.openstack_as(
        "mdo",
        "mdo-pw",
        "md-other",
        &["image", "metadef", "namespace", "create", "Mine"],
    );
    assert!(!out.status.success(), "a member created a namespace");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("403") || err.contains("not authorized"),
        "{err}"
    );

    // Protected: no delete until unprotected (`set` replaces, as in Glance).
    let err = cloud.openstack_fails(&["image", "metadef", "namespace", "delete", "CLI::Test"]);
    assert!(err.contains("protected") || err.contains("403"), "{err}");
    cloud.openstack_ok(&[
        "image",
        "metadef",
        "namespace",
        "set",
        "--unprotected",
        "--public",
        "--description",
        "now deletable",
        "CLI::Test",
    ]);
    let shown = cloud.openstack_json(&["image", "metadef", "namespace", "show", "CLI::Test"]);
    assert_eq!(shown["protected"], false, "{shown}");
    assert_eq!(shown["description"], "now deletable", "{shown}");
    cloud.openstack_ok(&[
        "image",
        "metadef",
        "resource",
        "type",
        "association",
        "delete",
        "CLI::Test",
        "OS::Glance::Image",
    ]);
    cloud.openstack_ok(&[
        "image",
        "metadef",
        "object",
        "delete",
        "CLI::Test",
        "Limits",
    ]);
    cloud.openstack_ok(&[
        "image",
        "metadef",
        "property",
        "delete",
        "CLI::Test",
        "hw_disk_bus",
    ]);
    let objs = cloud.openstack_json(&["image", "metadef", "object", "list", "CLI::Test"]);
    assert_eq!(objs, Value::Array(vec![]));
    cloud.openstack_ok(&["image", "metadef", "namespace", "delete", "CLI::Test"]);
    let err = cloud.openstack_fails(&["image", "metadef", "namespace", "show", "CLI::Test"]);
    assert!(err.contains("404") || err.contains("not found"), "{err}");

    // openstacksdk, tags included.
    let out = cloud.python(SDK_METADEFS, &[]);
    super::harness::assert_success(&out, &["python", "sdk metadefs"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sdk metadefs ok"), "{stdout}");
}

const SDK_TASKS: &str = r#"
import sys, openstack
conn = openstack.connect(cloud='stratus')
allowed, refused = sys.argv[1], sys.argv[2]
def run(url, props):
    t = conn.image.create_task(type='import', input={
        'import_from': url, 'import_from_format': 'raw', 'image_properties': props})
    assert t.status in ('pending', 'processing'), t
    try:
        return conn.image.wait_for_task(t, status='success', wait=60, interval=0.2)
    except openstack.exceptions.ResourceFailure:
        return conn.image.get_task(t.id)
ok = run(allowed, {'name': 'from-task', 'disk_format': 'raw', 'container_format': 'bare'})
assert ok.status == 'success', ok
image = conn.image.get_image(ok.result['image_id'])
assert image.status == 'active' and image.name == 'from-task', image
bad = run(refused, {'name': 'refused'})
assert bad.status == 'failure' and 'not allowed' in bad.message, bad
assert bad.result is None, bad
assert [t.id for t in conn.image.tasks(status='success')] == [ok.id]
assert sorted(t.id for t in conn.image.tasks(type='import')) == sorted([ok.id, bad.id])
assert conn.image.get_task_schema().name == 'task'
print('sdk tasks ok', ok.id, image.id)
"#;

/// Serves `data` over HTTP/1.0 on a loopback port, forever; the port.
fn serve(data: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Length: {}\r\n\r\n",
                data.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&data);
        }
    });
    port
}

#[test]
fn tasks_with_the_cli_and_the_sdk() {
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let port = serve(data.clone());
    let allowed = format!("[\"http://127.0.0.1:{port}/images/\"]");
    let cloud = Cloud::start_with(&[("STRATUS_IMAGE__TASK_IMPORT_ALLOWED", &allowed)]);
    let from = format!("http://127.0.0.1:{port}/images/disk.raw");
    let refused = format!("http://127.0.0.1:{port}/elsewhere/disk.raw");
    let out = cloud.python(SDK_TASKS, &[&from, &refused]);
    super::harness::assert_success(&out, &["python", "sdk tasks"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert!(stdout.contains("sdk tasks ok"), "{stdout}");
    let (task, image) = (words[3], words[4]);

    let listed = cloud.openstack_json(&["image", "task", "list"]);
    assert_eq!(column(&listed, "ID").len(), 2, "{listed}");
    let ok = cloud.openstack_json(&["image", "task", "list", "--status", "success"]);
    assert_eq!(column(&ok, "ID"), [task], "{ok}");
    let shown = cloud.openstack_json(&["image", "task", "show", task]);
    assert_eq!(shown["status"], "success", "{shown}");
    assert_eq!(shown["type"], "import", "{shown}");
    let img = cloud.openstack_json(&["image", "show", image]);
    assert_eq!(field(&img, "status"), "active");
    assert_eq!(img["size"].as_u64(), Some(data.len() as u64), "{img}");

    // Tasks are the admin's: a project member is refused.
    cloud.project_with_member("task-other", "tko", "tko-pw");
    let out = cloud.openstack_as("tko", "tko-pw", "task-other", &["image", "task", "list"]);
    assert!(!out.status.success(), "a member listed tasks");
}
