//! Keystone's extensions of issue 12 through the real clients: unified
//! limits (`openstack registered limit ...`, `openstack limit ...`),
//! endpoint groups and project endpoints (`openstack endpoint group ...`,
//! `openstack endpoint add project`, `endpoint list --project`) and their
//! effect on a project's catalog, access rules of application credentials
//! (`openstack application credential create --access-rules`,
//! `openstack access rule ...`), and domain-specific configuration through
//! openstacksdk's session (the CLI has no command for it).

use serde_json::Value;

use super::harness::{column, field, Cloud};

#[test]
fn registered_limits_and_limits_through_the_cli() {
    let cloud = Cloud::start();
    let reg = cloud.openstack_json(&[
        "registered",
        "limit",
        "create",
        "--service",
        "nova",
        "--region",
        "RegionOne",
        "--default-limit",
        "10",
        "--description",
        "cores for everyone",
        "cores",
    ]);
    let reg_id = field(&reg, "id");
    assert_eq!(reg["default_limit"], 10, "{reg}");
    assert_eq!(reg["region_id"], "RegionOne", "{reg}");
    // The same service, region and resource again: Keystone's 409.
    let err = cloud.openstack_fails(&[
        "registered",
        "limit",
        "create",
        "--service",
        "nova",
        "--region",
        "RegionOne",
        "--default-limit",
        "5",
        "cores",
    ]);
    assert!(err.contains("409") || err.contains("Conflict"), "{err}");
    let list = cloud.openstack_json(&["registered", "limit", "list", "--service", "nova"]);
    assert_eq!(column(&list, "ID"), vec![reg_id.clone()], "{list}");
    cloud.openstack_ok(&[
        "registered",
        "limit",
        "set",
        "--default-limit",
        "20",
        &reg_id,
    ]);
    let shown = cloud.openstack_json(&["registered", "limit", "show", &reg_id]);
    assert_eq!(shown["default_limit"], 20, "{shown}");

    // A project's limit.
    let pid = cloud.project_with_member("lim-proj", "lim-user", "lim-pw");
    let limit = cloud.openstack_json(&[
        "limit",
        "create",
        "--project",
        "lim-proj",
        "--service",
        "nova",
        "--region",
        "RegionOne",
        "--resource-limit",
        "5",
        "cores",
    ]);
    let limit_id = field(&limit, "id");
    assert_eq!(limit["project_id"], pid.as_str(), "{limit}");
    assert_eq!(limit["resource_limit"], 5, "{limit}");
    // No registered limit for ram: Keystone's 403.
    let err = cloud.openstack_fails(&[
        "limit",
        "create",
        "--project",
        "lim-proj",
        "--service",
        "nova",
        "--resource-limit",
        "5",
        "ram",
    ]);
    assert!(
        err.contains("403") || err.contains("registered limit"),
        "{err}"
    );
    let list = cloud.openstack_json(&["limit", "list", "--project", "lim-proj"]);
    assert_eq!(column(&list, "ID"), vec![limit_id.clone()], "{list}");
    // The member sees its project's limit, and may not change it.
    let mine = cloud.openstack_json_as("lim-user", "lim-pw", "lim-proj", &["limit", "list"]);
    assert_eq!(column(&mine, "ID"), vec![limit_id.clone()], "{mine}");
    let out = cloud.openstack_as(
        "lim-user",
        "lim-pw",
        "lim-proj",
        &["limit", "set", "--resource-limit", "50", &limit_id],
    );
    assert!(!out.status.success(), "a member changed a limit");
    cloud.openstack_ok(&["limit", "set", "--resource-limit", "7", &limit_id]);
    let shown = cloud.openstack_json(&["limit", "show", &limit_id]);
    assert_eq!(shown["resource_limit"], 7, "{shown}");

    // A registered limit in use cannot go; once its limit is gone it can.
    let err = cloud.openstack_fails(&["registered", "limit", "delete", &reg_id]);
    assert!(!err.is_empty());
    cloud.openstack_ok(&["limit", "delete", &limit_id]);
    cloud.openstack_ok(&["registered", "limit", "delete", &reg_id]);
    let list = cloud.openstack_json(&["registered", "limit", "list"]);
    assert_eq!(list, Value::Array(Vec::new()), "{list}");
}

#[test]
fn endpoint_groups_and_project_endpoints_through_the_cli() {
    let cloud = Cloud::start();
    let compute = cloud.openstack_json(&["service", "show", "compute"]);
    let compute_id = field(&compute, "id");
    let filters = cloud.data_dir().join("filters.json");
    std::fs::write(
        &filters,
        format!(r#"{{"service_id": "{compute_id}", "interface": "public"}}"#),
    )
    .expect("filters file");
    let group = cloud.openstack_json(&[
        "endpoint",
        "group",
        "create",
        "--description",
        "public compute",
        "compute-public",
        filters.to_str().expect("path"),
    ]);
    let group_id = field(&group, "id");
    let groups = cloud.openstack_json(&["endpoint", "group", "list"]);
    assert_eq!(column(&groups, "ID"), vec![group_id.clone()], "{groups}");

    // The project gets the identity public endpoint directly and the
    // compute public endpoint through the group.
    cloud.project_with_member("ep-proj", "ep-user", "ep-pw");
    let identity = cloud.openstack_json(&[
        "endpoint",
        "list",
        "--service",
        "identity",
        "--interface",
        "public",
    ]);
    let identity_ep = column(&identity, "ID").remove(0);
    cloud.openstack_ok(&["endpoint", "add", "project", &identity_ep, "ep-proj"]);
    cloud.openstack_ok(&[
        "endpoint",
        "group",
        "add",
        "project",
        "compute-public",
        "ep-proj",
    ]);
    let listed = cloud.openstack_json(&["endpoint", "list", "--project", "ep-proj"]);
    let mut services = column(&listed, "Service Type");
    services.sort();
    assert_eq!(services, ["compute", "identity"], "{listed}");

    // The member's catalog has exactly those two endpoints.
    let catalog = cloud.openstack_json_as("ep-user", "ep-pw", "ep-proj", &["catalog", "list"]);
    let mut types = column(&catalog, "Type");
    types.sort();
    assert_eq!(types, ["compute", "identity"], "{catalog}");
    for entry in catalog.as_array().expect("list") {
        let eps = entry["Endpoints"].to_string();
        assert!(eps.contains("public"), "{eps}");
        assert!(!eps.contains("internal"), "{eps}");
    }
    // The admin's project has no filter: the whole catalog.
    let all = cloud.openstack_json(&["catalog", "list"]);
    assert!(column(&all, "Type").len() > 2, "{all}");

    // Taking the associations away gives the member the whole catalog.
    cloud.openstack_ok(&["endpoint", "remove", "project", &identity_ep, "ep-proj"]);
    cloud.openstack_ok(&[
        "endpoint",
        "group",
        "remove",
        "project",
        "compute-public",
        "ep-proj",
    ]);
    cloud.openstack_ok(&["endpoint", "group", "delete", &group_id]);
    let groups = cloud.openstack_json(&["endpoint", "group", "list"]);
    assert_eq!(groups, Value::Array(Vec::new()), "{groups}");
    let catalog = cloud.openstack_json_as("ep-user", "ep-pw", "ep-proj", &["catalog", "list"]);
    assert_eq!(
        column(&catalog, "Type").len(),
        column(&all, "Type").len(),
        "{catalog}"
    );
}

#[test]
fn access_rules_through_the_cli() {
    let cloud = Cloud::start();
    cloud.project_with_member("ar-proj", "ar-user", "ar-pw");
    let rules = r#"[{"service": "compute", "method": "GET", "path": "/v2.1/servers"}]"#;
    let cred = cloud.openstack_json_as(
        "ar-user",
        "ar-pw",
        "ar-proj",
        &[
            "application",
            "credential",
            "create",
            "--access-rules",
            rules,
            "ci",
        ],
    );
    let shown_rules = cred["Access Rules"].to_string();
    assert!(shown_rules.contains("/v2.1/servers"), "{cred}");
    let list = cloud.openstack_json_as("ar-user", "ar-pw", "ar-proj", &["access", "rule", "list"]);
    let ids = column(&list, "ID");
    assert_eq!(ids.len(), 1, "{list}");
    assert_eq!(column(&list, "Service"), ["compute"], "{list}");
    let rule = cloud.openstack_json_as(
        "ar-user",
        "ar-pw",
        "ar-proj",
        &["access", "rule", "show", &ids[0]],
    );
    assert_eq!(rule["Method"], "GET", "{rule}");
    assert_eq!(rule["Path"], "/v2.1/servers", "{rule}");

    // In use by the credential: Keystone refuses (403).
    let out = cloud.openstack_as(
        "ar-user",
        "ar-pw",
        "ar-proj",
        &["access", "rule", "delete", &ids[0]],
    );
    assert!(!out.status.success(), "deleted a rule in use");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") || err.contains("in use"), "{err}");
    let out = cloud.openstack_as(
        "ar-user",
        "ar-pw",
        "ar-proj",
        &["application", "credential", "delete", "ci"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cloud.openstack_as(
        "ar-user",
        "ar-pw",
        "ar-proj",
        &["access", "rule", "delete", &ids[0]],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = cloud.openstack_json_as("ar-user", "ar-pw", "ar-proj", &["access", "rule", "list"]);
    assert_eq!(list, Value::Array(Vec::new()), "{list}");
}

/// Drives `/v3/domains/default/config` through openstacksdk's identity
/// session and prints `[status, body]` for each call.
const DOMAIN_CONFIG_SCRIPT: &str = r#"
import json, openstack
conn = openstack.connect(cloud="stratus")
idp = conn.identity
out = []
def rec(r):
    try:
        body = r.json()
    except Exception:
        body = None
    out.append([r.status_code, body])
base = "/domains/default/config"
rec(idp.get(base))
cfg = {"config": {"identity": {"driver": "ldap"},
       "ldap": {"url": "ldap://example.org", "password": "s3cret"}}}
rec(idp.put(base, json=cfg))
rec(idp.put(base, json=cfg))
rec(idp.get(base + "/ldap/url"))
rec(idp.patch(base + "/ldap/url", json={"config": {"url": "ldap://other"}}))
rec(idp.get(base + "/ldap"))
rec(idp.get(base + "/cache"))
rec(idp.get("/domains/config/ldap/url/default"))
rec(idp.delete(base + "/ldap"))
rec(idp.delete(base))
rec(idp.get(base))
print(json.dumps(out))
"#;

#[test]
fn domain_config_through_the_sdk() {
    let cloud = Cloud::start();
    let out = cloud.python(DOMAIN_CONFIG_SCRIPT, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let status = |i: usize| calls[i][0].as_u64().unwrap_or_default();
    let body = |i: usize| calls[i][1].clone();
    assert_eq!(status(0), 404, "{calls}");
    assert_eq!(status(1), 201, "{calls}");
    assert_eq!(
        body(1)["config"],
        serde_json::json!({"identity": {"driver": "ldap"}, "ldap": {"url": "ldap://example.org"}}),
        "the password is never shown"
    );
    assert_eq!(status(2), 200, "{calls}");
    assert_eq!(body(3)["config"]["url"], "ldap://example.org", "{calls}");
    assert_eq!(status(4), 200, "{calls}");
    assert_eq!(body(5)["config"]["ldap"]["url"], "ldap://other", "{calls}");
    assert_eq!(status(6), 403, "{calls}");
    assert_eq!(body(7)["config"]["url"], "ldap://localhost", "{calls}");
    assert_eq!(status(8), 204, "{calls}");
    assert_eq!(status(9), 204, "{calls}");
    assert_eq!(status(10), 404, "{calls}");
}
