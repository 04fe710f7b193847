//! System scope through the real `openstack` CLI: role grants on the system
//! for users and groups (`role add|remove --system all`, `role assignment
//! list --system all [--names]`), a system-scoped token
//! (`--os-system-scope all`) and the cloud administrator it makes in every
//! service (servers, networks and images of every project); and Keystone's
//! schema limits (a 65-character project name is a 400).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::harness::{assert_success, column, field, json_of, venv_tool, Cloud};
use super::image::create_image;

/// A `clouds.yaml` beside the cloud's own with the admin's credentials but
/// no project, so that `--os-system-scope all` is the only scope asked for
/// (keystoneauth refuses two).
fn projectless_clouds_yaml(cloud: &Cloud) -> PathBuf {
    let text = std::fs::read_to_string(cloud.clouds_yaml()).expect("clouds.yaml");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("project_name") && !l.contains("project_domain_name"))
        .collect();
    let path = cloud.data_dir().join("clouds-system.yaml");
    std::fs::write(&path, kept.join("\n") + "\n").expect("write clouds-system.yaml");
    path
}

/// `openstack --os-cloud stratus --os-system-scope all <args>` as the admin.
fn openstack_system(cloud: &Cloud, args: &[&str]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.arg("300")
        .arg(venv_tool("openstack"))
        .env("OS_CLIENT_CONFIG_FILE", projectless_clouds_yaml(cloud))
        .env_remove("OS_CLOUD")
        .env_remove("OS_AUTH_URL")
        .env_remove("OS_PASSWORD")
        .env_remove("OS_USERNAME")
        .env_remove("OS_PROJECT_NAME")
        .env_remove("OS_TOKEN")
        .stdin(Stdio::null())
        .args(["--os-cloud", "stratus", "--os-system-scope", "all"])
        .args(args);
    cmd.output().expect("running openstack")
}

fn openstack_system_json(cloud: &Cloud, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-f", "json"]);
    json_of(&openstack_system(cloud, &all), args)
}

/// The rows of `role assignment list` that are on the system.
fn system_rows(list: &Value) -> Vec<Value> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .filter(|r| r["System"] == "all")
        .cloned()
        .collect()
}

#[test]
fn system_role_assignments_through_the_cli() {
    let cloud = Cloud::start();
    let user = cloud.openstack_json(&[
        "user",
        "create",
        "--domain",
        "default",
        "--password",
        "sys-op-pw",
        "sys-op",
    ]);
    let user_id = field(&user, "id");
    let group = cloud.openstack_json(&["group", "create", "--domain", "default", "sys-ops"]);
    let group_id = field(&group, "id");

    // keystone-manage bootstrap makes the admin an admin of the system.
    let list = cloud.openstack_json(&["role", "assignment", "list", "--system", "all"]);
    assert_eq!(system_rows(&list).len(), 1, "{list}");

    cloud.openstack_ok(&[
        "role", "add", "--system", "all", "--user", "sys-op", "reader",
    ]);
    cloud.openstack_ok(&[
        "role", "add", "--system", "all", "--group", "sys-ops", "member",
    ]);
    let list = cloud.openstack_json(&["role", "assignment", "list", "--system", "all"]);
    let rows = system_rows(&list);
    assert_eq!(rows.len(), 3, "{list}");
    assert!(rows.iter().any(|r| r["User"] == user_id.as_str()), "{list}");
    assert!(
        rows.iter().any(|r| r["Group"] == group_id.as_str()),
        "{list}"
    );
    // Nothing on a project for them.
    assert!(list
        .as_array()
        .expect("list")
        .iter()
        .all(|r| r["Project"].as_str().unwrap_or_default().is_empty()));

    let named = cloud.openstack_json(&[
        "role",
        "assignment",
        "list",
        "--system",
        "all",
        "--names",
        "--user",
        "sys-op",
    ]);
    let rows = system_rows(&named);
    assert_eq!(rows.len(), 1, "{named}");
    assert_eq!(rows[0]["Role"], "reader", "{named}");
    assert_eq!(rows[0]["User"], "sys-op@Default", "{named}");
    let named = cloud.openstack_json(&[
        "role",
        "assignment",
        "list",
        "--system",
        "all",
        "--names",
        "--group",
        "sys-ops",
    ]);
    assert_eq!(column(&named, "Group"), ["sys-ops@Default"], "{named}");

    // The user can take a system-scoped token now (reader, not admin).
    let url = format!("{}/auth/tokens", cloud.identity_url());
    let login = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "sys-op", "domain": {"name": "Default"}, "password": "sys-op-pw"}}},
        "scope": {"system": {"all": true}}}});
    let (status, _, body) = cloud.http(reqwest::Method::POST, &url, &[], Some(&login));
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token"]["system"]["all"], true, "{body}");

    cloud.openstack_ok(&[
        "role", "remove", "--system", "all", "--user", "sys-op", "reader",
    ]);
    cloud.openstack_ok(&[
        "role", "remove", "--system", "all", "--group", "sys-ops", "member",
    ]);
    let list = cloud.openstack_json(&["role", "assignment", "list", "--system", "all"]);
    assert_eq!(system_rows(&list).len(), 1, "{list}");
    // Removing it again is Keystone's 404 (openstacksdk does not raise on
    // it, so ask directly).
    let roles = cloud.openstack_json(&["role", "show", "reader"]);
    let revoke = format!(
        "{}/system/users/{user_id}/roles/{}",
        cloud.identity_url(),
        field(&roles, "id")
    );
    let admin = cloud.admin_token();
    let (status, _, body) = cloud.http(
        reqwest::Method::DELETE,
        &revoke,
        &[("x-auth-token", admin.as_str())],
        None,
    );
    assert_eq!(status, 404, "{body}");
    // Without a system role a system-scoped token is refused (401).
    let (status, _, body) = cloud.http(reqwest::Method::POST, &url, &[], Some(&login));
    assert_eq!(status, 401, "{body}");
}

#[test]
fn a_system_scoped_admin_sees_every_project() {
    let cloud = Cloud::start();
    // Project resources made by a member of another project.
    cloud.project_with_member("sys-p", "sys-u", "sys-u-pw");
    let flavor = cloud.openstack_json(&[
        "flavor",
        "create",
        "--ram",
        "512",
        "--disk",
        "1",
        "--vcpus",
        "1",
        "sys-flavor",
    ]);
    let image = field(&create_image(&cloud, "sys-img", "--public"), "id");
    let as_member = |args: &[&str]| cloud.openstack_json_as("sys-u", "sys-u-pw", "sys-p", args);
    let net = as_member(&["network", "create", "sys-net"]);
    let server = as_member(&[
        "server",
        "create",
        "--flavor",
        &field(&flavor, "id"),
        "--image",
        &image,
        "--nic",
        "none",
        "--wait",
        "sys-vm",
    ]);
    let private_file = cloud.data_dir().join("sys-private.raw");
    std::fs::write(&private_file, b"private bits").expect("image file");
    let private = as_member(&[
        "image",
        "create",
        "--private",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        private_file.to_str().expect("utf-8"),
        "sys-private",
    ]);

    // A system-scoped token of the admin.
    let token = openstack_system_json(&cloud, &["token", "issue"]);
    let id = field(&token, "id");
    assert!(
        token.get("project_id").is_none_or(Value::is_null),
        "{token}"
    );
    let headers = [
        ("x-auth-token", id.as_str()),
        ("x-subject-token", id.as_str()),
    ];
    let url = format!("{}/auth/tokens", cloud.identity_url());
    let (status, _, body) = cloud.http(reqwest::Method::GET, &url, &headers, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token"]["system"]["all"], true, "{body}");
    assert!(
        body["token"]["roles"].to_string().contains("\"admin\""),
        "{body}"
    );

    // The cloud administrator sees every project's servers, networks and
    // images.
    let servers = openstack_system_json(&cloud, &["server", "list", "--all-projects"]);
    assert!(
        column(&servers, "ID").contains(&field(&server, "id")),
        "{servers}"
    );
    let networks = openstack_system_json(&cloud, &["network", "list"]);
    assert!(
        column(&networks, "ID").contains(&field(&net, "id")),
        "{networks}"
    );
    let images = openstack_system_json(&cloud, &["image", "list"]);
    assert!(
        column(&images, "ID").contains(&field(&private, "id")),
        "{images}"
    );
    // Without --all-projects Nova lists the servers its user made: none.
    let own = openstack_system_json(&cloud, &["server", "list"]);
    assert_eq!(own, serde_json::json!([]), "{own}");
    // And it administers identity.
    let projects = openstack_system_json(&cloud, &["project", "list"]);
    assert!(
        column(&projects, "Name").contains(&"sys-p".to_owned()),
        "{projects}"
    );
}

#[test]
fn names_longer_than_keystones_schemas_allow_are_400() {
    let cloud = Cloud::start();
    let long = "p".repeat(65);
    let err = cloud.openstack_fails(&["project", "create", "--domain", "default", &long]);
    assert!(err.contains("400"), "{err}");
    assert!(err.contains("is too long"), "{err}");
    let ok = "p".repeat(64);
    let out = cloud.openstack(&["project", "create", "--domain", "default", &ok]);
    assert_success(&out, &["project", "create"]);
    let long_user = "u".repeat(256);
    let err = cloud.openstack_fails(&["user", "create", "--domain", "default", &long_user]);
    assert!(err.contains("400"), "{err}");
}
