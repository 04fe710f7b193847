//! Identity through the real `openstack` CLI and openstacksdk: tokens, the
//! catalog, projects, users, roles and assignments, isolation between
//! projects, revocation, disabled users, restarts, and PostgreSQL.

use serde_json::Value;

use super::harness::{assert_success, json_of, Cloud};

/// Names in a `-f json` listing (`Name` column).
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .filter_map(|r| r["Name"].as_str().map(str::to_owned))
        .collect()
}

/// A token of `user` scoped to `project`, from `openstack token issue`.
fn token_of(cloud: &Cloud, user: &str, password: &str, project: &str) -> Value {
    let args = ["token", "issue", "-f", "json"];
    json_of(&cloud.openstack_as(user, password, project, &args), &args)
}

/// The HTTP status identity answers when `auth` validates `subject`
/// (`GET /v3/auth/tokens`), as a service would ask.
fn validation_status(cloud: &Cloud, auth: &str, subject: &str) -> u16 {
    let url = format!("{}/auth/tokens", cloud.identity_url());
    let headers = [("x-auth-token", auth), ("x-subject-token", subject)];
    cloud.http(reqwest::Method::GET, &url, &headers, None).0
}

/// Creates a user with the `member` role on `project`.
fn member(cloud: &Cloud, user: &str, password: &str, project: &str) {
    cloud.openstack_json(&[
        "user",
        "create",
        "--domain",
        "default",
        "--password",
        password,
        "--project",
        project,
        user,
    ]);
    cloud.openstack_ok(&[
        "role",
        "add",
        "--project",
        project,
        "--user",
        user,
        "member",
    ]);
}

#[test]
fn token_catalog_services_and_endpoints() {
    let cloud = Cloud::start();
    let token = cloud.openstack_json(&["token", "issue"]);
    for field in ["id", "expires", "project_id", "user_id"] {
        assert!(
            token[field].as_str().is_some_and(|s| !s.is_empty()),
            "token issue shows {field}: {token}"
        );
    }
    // The token it printed is one identity accepts.
    let id = token["id"].as_str().expect("id");
    assert_eq!(validation_status(&cloud, id, id), 200);

    let catalog = cloud.openstack_json(&["catalog", "list"]);
    let identity = catalog
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["Type"] == "identity")
        .unwrap_or_else(|| panic!("identity in the catalog: {catalog}"));
    let endpoints = identity["Endpoints"].to_string();
    assert!(endpoints.contains(&cloud.identity_url()), "{endpoints}");

    let services = cloud.openstack_json(&["service", "list"]);
    assert!(
        services
            .as_array()
            .expect("list")
            .iter()
            .any(|s| s["Type"] == "identity" && s["Name"] == "keystone"),
        "{services}"
    );

    let endpoints = cloud.openstack_json(&["endpoint", "list", "--service", "identity"]);
    let mut interfaces: Vec<String> = endpoints
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            assert_eq!(e["URL"], cloud.identity_url().as_str());
            assert_eq!(e["Region"], "RegionOne");
            e["Interface"].as_str().expect("interface").to_owned()
        })
        .collect();
    interfaces.sort();
    assert_eq!(interfaces, ["admin", "internal", "public"]);
}

#[test]
fn projects_users_and_roles() {
    let cloud = Cloud::start();

    // Projects.
    let created = cloud.openstack_json(&[
        "project",
        "create",
        "--domain",
        "default",
        "--description",
        "first words",
        "e2e-proj",
    ]);
    let pid = created["id"].as_str().expect("project id").to_owned();
    assert_eq!(created["name"], "e2e-proj");
    assert!(names(&cloud.openstack_json(&["project", "list"])).contains(&"e2e-proj".to_owned()));
    cloud.openstack_ok(&["project", "set", "--description", "new words", "e2e-proj"]);
    let shown = cloud.openstack_json(&["project", "show", &pid]);
    assert_eq!(shown["description"], "new words");
    assert_eq!(shown["enabled"], true);

    // Users.
    let user = cloud.openstack_json(&[
        "user",
        "create",
        "--domain",
        "default",
        "--password",
        "pw-one",
        "--project",
        "e2e-proj",
        "e2e-user",
    ]);
    let uid = user["id"].as_str().expect("user id").to_owned();
    assert!(names(&cloud.openstack_json(&["user", "list"])).contains(&"e2e-user".to_owned()));
    let shown = cloud.openstack_json(&["user", "show", "e2e-user"]);
    assert_eq!(shown["id"], uid.as_str());
    assert_eq!(shown["default_project_id"], pid.as_str());

    // Roles.
    let role = cloud.openstack_json(&["role", "create", "e2e-observer"]);
    assert_eq!(role["name"], "e2e-observer");
    let roles = names(&cloud.openstack_json(&["role", "list"]));
    for r in ["admin", "member", "reader", "e2e-observer"] {
        assert!(roles.contains(&r.to_owned()), "{r} in {roles:?}");
    }

    // Assignments: with no role the user cannot get a project token.
    let args = ["token", "issue", "-f", "json"];
    let out = cloud.openstack_as("e2e-user", "pw-one", "e2e-proj", &args);
    assert!(!out.status.success(), "no role, no project token");
    cloud.openstack_ok(&[
        "role",
        "add",
        "--project",
        "e2e-proj",
        "--user",
        "e2e-user",
        "member",
    ]);
    cloud.openstack_ok(&[
        "role",
        "add",
        "--project",
        "e2e-proj",
        "--user",
        "e2e-user",
        "e2e-observer",
    ]);
    let assignments = cloud.openstack_json(&[
        "role",
        "assignment",
        "list",
        "--project",
        "e2e-proj",
        "--names",
    ]);
    let mut seen: Vec<(String, String, String)> = assignments
        .as_array()
        .expect("list")
        .iter()
        .map(|a| {
            (
                a["Role"].as_str().unwrap_or_default().to_owned(),
                a["User"].as_str().unwrap_or_default().to_owned(),
                a["Project"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "e2e-observer".into(),
                "e2e-user@Default".into(),
                "e2e-proj@Default".into()
            ),
            (
                "member".into(),
                "e2e-user@Default".into(),
                "e2e-proj@Default".into()
            ),
        ],
        "{assignments}"
    );
    let token = token_of(&cloud, "e2e-user", "pw-one", "e2e-proj");
    assert_eq!(token["project_id"], pid.as_str());
    assert_eq!(token["user_id"], uid.as_str());

    cloud.openstack_ok(&[
        "role",
        "remove",
        "--project",
        "e2e-proj",
        "--user",
        "e2e-user",
        "e2e-observer",
    ]);
    let left = cloud.openstack_json(&[
        "role",
        "assignment",
        "list",
        "--project",
        "e2e-proj",
        "--names",
    ]);
    let left: Vec<&str> = left
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["Role"].as_str())
        .collect();
    assert_eq!(left, ["member"]);

    // A new password replaces the old one.
    cloud.openstack_ok(&["user", "set", "--password", "pw-two", "e2e-user"]);
    token_of(&cloud, "e2e-user", "pw-two", "e2e-proj");
    let out = cloud.openstack_as("e2e-user", "pw-one", "e2e-proj", &args);
    assert!(!out.status.success(), "the old password no longer works");

    // Deletes.
    cloud.openstack_ok(&["user", "delete", "e2e-user"]);
    assert!(!cloud.openstack(&["user", "show", &uid]).status.success());
    cloud.openstack_ok(&["project", "delete", &pid]);
    assert!(!cloud.openstack(&["project", "show", &pid]).status.success());
    assert!(!names(&cloud.openstack_json(&["project", "list"])).contains(&"e2e-proj".to_owned()));
}

#[test]
fn a_member_of_one_project_cannot_see_another() {
    let cloud = Cloud::start();
    let a = cloud.openstack_json(&["project", "create", "--domain", "default", "proj-a"]);
    let b = cloud.openstack_json(&["project", "create", "--domain", "default", "proj-b"]);
    let (a_id, b_id) = (a["id"].as_str().expect("id"), b["id"].as_str().expect("id"));
    member(&cloud, "alice", "alice-pw", "proj-a");

    let args = ["project", "show", a_id, "-f", "json"];
    let own = json_of(
        &cloud.openstack_as("alice", "alice-pw", "proj-a", &args),
        &args,
    );
    assert_eq!(own["name"], "proj-a");

    let other = cloud.openstack_as("alice", "alice-pw", "proj-a", &["project", "show", b_id]);
    assert!(!other.status.success(), "alice must not see proj-b");
    assert!(!String::from_utf8_lossy(&other.stdout).contains("proj-b"));

    // Her own projects are proj-a only.
    let args = ["project", "list", "--my-projects", "-f", "json"];
    let mine = json_of(
        &cloud.openstack_as("alice", "alice-pw", "proj-a", &args),
        &args,
    );
    assert_eq!(names(&mine), ["proj-a"]);

    // The full list is not hers to read; if it answers, proj-b is not in it.
    let all = cloud.openstack_as(
        "alice",
        "alice-pw",
        "proj-a",
        &["project", "list", "-f", "json"],
    );
    if all.status.success() {
        assert!(!String::from_utf8_lossy(&all.stdout).contains("proj-b"));
    }

    // Nor may she give herself a role there. (OSC 10 exits 0 even when
    // identity answers 403 to the grant, so look at what identity holds.)
    let _ = cloud.openstack_as(
        "alice",
        "alice-pw",
        "proj-a",
        &[
            "role",
            "add",
            "--project",
            b_id,
            "--user",
            "alice",
            "member",
        ],
    );
    let held = cloud.openstack_json(&["role", "assignment", "list", "--user", "alice", "--names"]);
    let projects: Vec<&str> = held
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["Project"].as_str())
        .collect();
    assert_eq!(projects, ["proj-a@Default"], "{held}");
}

#[test]
fn revoked_tokens_and_disabled_users_fail() {
    let cloud = Cloud::start();
    cloud.openstack_json(&["project", "create", "--domain", "default", "proj-r"]);
    member(&cloud, "bob", "bob-pw", "proj-r");
    member(&cloud, "carol", "carol-pw", "proj-r");
    let admin = cloud.admin_token();

    // A revoked token is refused, by identity and by the clients.
    let bob = token_of(&cloud, "bob", "bob-pw", "proj-r");
    let (bob_token, project) = (
        bob["id"].as_str().expect("id"),
        bob["project_id"].as_str().expect("pid"),
    );
    assert_eq!(validation_status(&cloud, &admin, bob_token), 200);
    assert_success(
        &with_token(&cloud, bob_token, project, &["project", "show", project]),
        &["as bob"],
    );
    cloud.openstack_ok(&["token", "revoke", bob_token]);
    assert_eq!(validation_status(&cloud, &admin, bob_token), 404);
    assert!(
        !with_token(&cloud, bob_token, project, &["project", "show", project])
            .status
            .success()
    );
    // Bob himself can still get a new one.
    token_of(&cloud, "bob", "bob-pw", "proj-r");

    // A disabled user's tokens stop working, and it gets no new one.
    let carol = token_of(&cloud, "carol", "carol-pw", "proj-r");
    let carol_token = carol["id"].as_str().expect("id");
    assert_eq!(validation_status(&cloud, &admin, carol_token), 200);
    cloud.openstack_ok(&["user", "set", "--disable", "carol"]);
    assert_eq!(validation_status(&cloud, &admin, carol_token), 404);
    let out = cloud.openstack_as("carol", "carol-pw", "proj-r", &["token", "issue"]);
    assert!(!out.status.success(), "a disabled user cannot authenticate");
    cloud.openstack_ok(&["user", "set", "--enable", "carol"]);
    token_of(&cloud, "carol", "carol-pw", "proj-r");
}

/// `openstack` authenticated with a bare token (the `v3token` plugin
/// exchanges it for a project token, which identity refuses when revoked).
fn with_token(cloud: &Cloud, token: &str, project_id: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(super::harness::venv_tool("openstack"));
    cmd.args(["--os-auth-type", "v3token", "--os-auth-url"])
        .arg(cloud.identity_url())
        .args(["--os-token", token, "--os-project-id", project_id])
        .args([
            "--os-identity-api-version",
            "3",
            "--os-region-name",
            "RegionOne",
        ])
        .args(args)
        .env_remove("OS_CLOUD")
        .env_remove("OS_CLIENT_CONFIG_FILE")
        .stdin(std::process::Stdio::null());
    cmd.output().expect("running openstack")
}

#[test]
fn restart_on_the_same_data_dir_keeps_everything() {
    let mut cloud = Cloud::start();
    let password = cloud.admin_password();
    let clouds_yaml = std::fs::read_to_string(cloud.clouds_yaml()).expect("clouds.yaml");
    let project = cloud.openstack_json(&["project", "create", "--domain", "default", "kept"]);
    member(&cloud, "dave", "dave-pw", "kept");
    let token = cloud.openstack_json(&["token", "issue"]);
    let token = token["id"].as_str().expect("token").to_owned();

    cloud.restart();

    assert_eq!(cloud.admin_password(), password, "same admin password");
    assert_eq!(
        std::fs::read_to_string(cloud.clouds_yaml()).expect("clouds.yaml"),
        clouds_yaml
    );
    assert_eq!(
        validation_status(&cloud, &token, &token),
        200,
        "old tokens still valid"
    );
    let shown = cloud.openstack_json(&["project", "show", "kept"]);
    assert_eq!(shown["id"], project["id"]);
    token_of(&cloud, "dave", "dave-pw", "kept");
    // Bootstrap ran again without duplicating anything.
    let services = cloud.openstack_json(&["service", "list"]);
    let identities = services
        .as_array()
        .expect("list")
        .iter()
        .filter(|s| s["Type"] == "identity")
        .count();
    assert_eq!(identities, 1, "{services}");
    let endpoints = cloud.openstack_json(&["endpoint", "list", "--service", "identity"]);
    assert_eq!(endpoints.as_array().expect("list").len(), 3, "{endpoints}");
}

/// openstacksdk's identity proxy, as an SDK user would write it.
const SDK_SCRIPT: &str = r#"
import sys
import openstack

name = sys.argv[1]
conn = openstack.connect(cloud="stratus")
assert conn.auth_token

project = conn.identity.create_project(name=name, domain_id="default", description="sdk")
assert conn.identity.get_project(project.id).name == name
assert name in [p.name for p in conn.identity.projects()]
assert conn.identity.find_project(name).id == project.id

user = conn.identity.create_user(name=name + "-u", password="sdk-pw", domain_id="default",
                                 default_project_id=project.id)
member = conn.identity.find_role("member")
conn.identity.assign_project_role_to_user(project, user, member)
assert conn.identity.validate_user_has_project_role(project, user, member)

auth = conn.config.get_auth_args()
theirs = openstack.connect(auth_url=auth["auth_url"], username=name + "-u", password="sdk-pw",
                           project_name=name, user_domain_name="Default",
                           project_domain_name="Default", region_name="RegionOne",
                           # Only these credentials: without this the SDK merges in
                           # the admin's cloud from OS_CLIENT_CONFIG_FILE.
                           load_yaml_config=False, load_envvars=False)
assert theirs.auth_token
assert theirs.current_project_id == project.id

conn.identity.unassign_project_role_from_user(project, user, member)
conn.identity.delete_user(user)
conn.identity.delete_project(project)
assert conn.identity.find_project(name) is None
print("sdk ok")
"#;

#[test]
fn openstacksdk_identity_flow() {
    let cloud = Cloud::start();
    let out = cloud.python(SDK_SCRIPT, &["sdk-proj"]);
    assert_success(&out, &["python", "sdk script"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sdk ok"));
}

#[test]
fn identity_on_postgresql() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let created = rt.block_on(stratus_db::testing::create_postgres_database());
    let (url, name) = match created {
        Ok(Some(db)) => db,
        Ok(None) => {
            eprintln!("PostgreSQL testing is off (STRATUS_TEST_POSTGRES=off); skipping");
            return;
        }
        Err(e) if std::env::var("STRATUS_TEST_REQUIRE_POSTGRES").is_err() => {
            eprintln!("PostgreSQL not reachable ({e}); skipping");
            return;
        }
        Err(e) => panic!("PostgreSQL is required but not reachable: {e}"),
    };
    let result = std::panic::catch_unwind(|| {
        let mut cloud = Cloud::start_with(&[("STRATUS_DATABASE__URL", &url)]);
        let token = cloud.openstack_json(&["token", "issue"]);
        assert!(token["id"].as_str().is_some());
        cloud.openstack_json(&["project", "create", "--domain", "default", "pg-proj"]);
        member(&cloud, "erin", "erin-pw", "pg-proj");
        token_of(&cloud, "erin", "erin-pw", "pg-proj");
        let out = cloud.python(SDK_SCRIPT, &["pg-sdk"]);
        assert_success(&out, &["python", "sdk script"]);
        cloud.restart();
        assert!(names(&cloud.openstack_json(&["project", "list"])).contains(&"pg-proj".to_owned()));
        // Nothing was written to SQLite files.
        assert!(!cloud.data_dir().join("identity.db").exists());
    });
    rt.block_on(stratus_db::testing::drop_postgres_database(&name));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
