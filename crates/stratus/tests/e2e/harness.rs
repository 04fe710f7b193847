//! Starts `stratus up` as a child process on free loopback ports in a
//! temporary data dir, waits for its ready line, and drives it with the real
//! clients. The child is stopped by its PID when the [`Cloud`] is dropped,
//! also when a test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// How long `stratus up` may take to be ready (a debug build, PostgreSQL).
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one client command may take.
const CLIENT_TIMEOUT_SECS: &str = "120";

const PORT_KEYS: [&str; 6] = [
    "IDENTITY", "COMPUTE", "METADATA", "IMAGE", "NETWORK", "VOLUME",
];

/// The repository root (where `.venv` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `.venv/bin/<tool>`, or a failure that says how to make it.
pub fn venv_tool(tool: &str) -> PathBuf {
    let path = repo_root().join(".venv/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-venv.sh (it installs the OpenStack clients \
         pinned in requirements.txt into .venv)",
        path.display()
    );
    path
}

/// A running `stratus up`.
pub struct Cloud {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ports: Vec<(String, u16)>,
    env: Vec<(String, String)>,
    /// Everything the child printed on stdout, line by line.
    stdout: mpsc::Receiver<String>,
}

impl Cloud {
    /// `stratus up` with embedded defaults (SQLite, in-process bus).
    pub fn start() -> Cloud {
        Self::start_with(&[])
    }

    /// `stratus up` with extra environment (`STRATUS_...` overrides).
    pub fn start_with(env: &[(&str, &str)]) -> Cloud {
        // Fail before starting anything when the clients are not installed.
        venv_tool("openstack");
        Self::start_http_only(env)
    }

    /// `stratus up` for tests that speak raw HTTP only (no `.venv` needed).
    pub fn start_http_only(env: &[(&str, &str)]) -> Cloud {
        let mut dir = tempfile::tempdir().expect("temporary data dir");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports();
            let (child, stdout) = spawn(dir.path(), &ports, &env);
            let mut cloud = Cloud {
                child: Some(child),
                dir,
                ports,
                env,
                stdout,
            };
            match cloud.wait_ready() {
                Ok(()) => return cloud,
                // Another process took a chosen port between the choice
                // and the bind: choose again.
                Err(log) if attempt < 3 && log.contains("Address already in use") => {
                    if let Some(mut child) = cloud.child.take() {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    let _ = std::fs::remove_file(cloud.dir.path().join("stratus.log"));
                    dir = std::mem::replace(&mut cloud.dir, tempfile::tempdir().expect("tempdir"));
                    env = std::mem::take(&mut cloud.env);
                }
                Err(log) => panic!("stratus up did not become ready; its log:\n{log}"),
            }
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self, key: &str) -> u16 {
        self.ports
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, p)| *p)
            .expect("known port key")
    }

    /// `http://127.0.0.1:<port>/v3`
    pub fn identity_url(&self) -> String {
        format!("http://127.0.0.1:{}/v3", self.port("IDENTITY"))
    }

    pub fn clouds_yaml(&self) -> PathBuf {
        self.dir.path().join("clouds.yaml")
    }

    pub fn admin_password(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin-password"))
            .expect("admin-password in the data dir")
            .trim()
            .to_owned()
    }

    /// Waits for the ready line; the child's log when it never comes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.starts_with("stratus ready in ") => return Ok(()),
                Ok(_) => {}
                Err(_) => {
                    return Err(std::fs::read_to_string(self.dir.path().join("stratus.log"))
                        .unwrap_or_default())
                }
            }
        }
    }

    /// Stops the cloud with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "stratus up exited with {status} after SIGTERM"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("stratus up did not stop within 15 s of SIGTERM");
    }

    /// Stops and starts again on the same data dir and ports.
    pub fn restart(&mut self) {
        self.stop();
        let (child, stdout) = spawn(self.dir.path(), &self.ports, &self.env);
        self.child = Some(child);
        self.stdout = stdout;
        if let Err(log) = self.wait_ready() {
            panic!("stratus up did not become ready again; its log:\n{log}");
        }
    }

    /// `openstack --os-cloud stratus <args>` as admin.
    pub fn openstack(&self, args: &[&str]) -> Output {
        let mut cmd = self.client("openstack");
        cmd.arg("--os-cloud").arg("stratus").args(args);
        run(cmd)
    }

    /// `openstack --os-cloud stratus <args>` with other credentials (the
    /// flags override the clouds.yaml entry).
    pub fn openstack_as(&self, user: &str, password: &str, project: &str, args: &[&str]) -> Output {
        let mut cmd = self.client("openstack");
        cmd.args(["--os-cloud", "stratus", "--os-username", user])
            .args(["--os-password", password, "--os-project-name", project])
            .args(args);
        run(cmd)
    }

    /// `openstack ... -f json` that must succeed; its parsed output.
    pub fn openstack_json(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.openstack(&all);
        json_of(&out, args)
    }

    /// `openstack ...` that must succeed (for commands that print nothing).
    pub fn openstack_ok(&self, args: &[&str]) -> String {
        let out = self.openstack(args);
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a Python script with the venv's interpreter (openstacksdk
    /// installed), with `OS_CLIENT_CONFIG_FILE` set; `argv` after the script.
    pub fn python(&self, script: &str, argv: &[&str]) -> Output {
        let mut cmd = self.client("python");
        cmd.arg("-c").arg(script).args(argv);
        run(cmd)
    }

    /// A raw HTTP request, for what the clients do not show (status codes,
    /// headers); the status and the JSON body (`Null` when there is none).
    pub fn http(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut req = reqwest::Client::new().request(method, url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.expect("the cloud answers");
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.expect("body");
            (
                status,
                headers,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }

    /// A token of the admin (project `admin`), straight from identity.
    pub fn admin_token(&self) -> String {
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": self.admin_password()}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}
        }});
        let url = format!("{}/auth/tokens", self.identity_url());
        let (status, headers, _) = self.http(reqwest::Method::POST, &url, &[], Some(&body));
        assert_eq!(status, 201, "admin token issue");
        headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .expect("X-Subject-Token")
            .to_owned()
    }

    fn client(&self, tool: &str) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg(CLIENT_TIMEOUT_SECS)
            .arg(venv_tool(tool))
            .env("OS_CLIENT_CONFIG_FILE", self.clouds_yaml())
            .env_remove("OS_CLOUD")
            .env_remove("OS_AUTH_URL")
            .env_remove("OS_PASSWORD")
            .env_remove("OS_USERNAME")
            .env_remove("OS_PROJECT_NAME")
            .env_remove("OS_TOKEN")
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run(mut cmd: Command) -> Output {
    cmd.output().expect("running a client")
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "`{}` failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn json_of(out: &Output, args: &[&str]) -> Value {
    assert_success(out, args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "`{}` printed no JSON ({e}): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Distinct free loopback ports for every API (all held while choosing),
/// below the kernel's ephemeral range (32768 and up), so that no outgoing
/// connection of a concurrent test can take one before `stratus up` binds
/// it; processes start at random points of the range.
fn free_ports() -> Vec<(String, u16)> {
    use std::hash::{BuildHasher, Hasher};
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut candidate = LOW + (random % u64::from(SPAN)) as u16;
    let mut held: Vec<(String, std::net::TcpListener)> = Vec::new();
    for key in PORT_KEYS {
        loop {
            candidate = if candidate + 1 >= LOW + SPAN {
                LOW
            } else {
                candidate + 1
            };
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", candidate)) {
                held.push((key.to_string(), l));
                break;
            }
        }
    }
    held.into_iter()
        .map(|(k, l)| (k, l.local_addr().expect("addr").port()))
        .collect()
}

fn spawn(
    dir: &Path,
    ports: &[(String, u16)],
    env: &[(String, String)],
) -> (Child, mpsc::Receiver<String>) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stratus.log"))
        .expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stratus"));
    cmd.arg("up")
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "info")
        .env_remove("STRATUS_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    for (key, port) in ports {
        cmd.env(format!("STRATUS_ENDPOINTS__{key}_PORT"), port.to_string());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("starting stratus up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

// ---- Helpers for the image, network and compute modules (added by the
// ---- e2e helper; the ones above are identity's and unchanged).

/// How long a polled state change (BUILD -> ACTIVE, stop, start) may take.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(120);

/// The values of column `col` in a `-f json` listing.
pub fn column(list: &Value, col: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a JSON list: {list}"))
        .iter()
        .filter_map(|r| r[col].as_str().map(str::to_owned))
        .collect()
}

/// The string field `field` of a `-f json` object, which must be there.
pub fn field(obj: &Value, name: &str) -> String {
    obj[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` in {obj}"))
        .to_owned()
}

impl Cloud {
    /// `openstack ... -f json` as another user, which must succeed.
    pub fn openstack_json_as(
        &self,
        user: &str,
        password: &str,
        project: &str,
        args: &[&str],
    ) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", "json"]);
        json_of(&self.openstack_as(user, password, project, &all), args)
    }

    /// `openstack ...` (as admin) that must fail; what it printed (stderr
    /// then stdout), for checking the error message.
    pub fn openstack_fails(&self, args: &[&str]) -> String {
        fails(&self.openstack(args), args)
    }

    /// A new project in the default domain with a user holding `member`
    /// on it; the project's id.
    pub fn project_with_member(&self, project: &str, user: &str, password: &str) -> String {
        let p = self.openstack_json(&["project", "create", "--domain", "default", project]);
        self.openstack_json(&[
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
        self.openstack_ok(&[
            "role",
            "add",
            "--project",
            project,
            "--user",
            user,
            "member",
        ]);
        field(&p, "id")
    }

    /// A token of `user` on `project` straight from identity (for raw HTTP).
    pub fn token_of(&self, user: &str, password: &str, project: &str) -> String {
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"name": "Default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": "Default"}}}
        }});
        let url = format!("{}/auth/tokens", self.identity_url());
        let (status, headers, _) = self.http(reqwest::Method::POST, &url, &[], Some(&body));
        assert_eq!(status, 201, "token of {user}");
        headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .expect("X-Subject-Token")
            .to_owned()
    }

    /// Polls `openstack <show> -f json` until its `key` is `want`
    /// (case-insensitive); fails at once when it becomes `ERROR`, or after
    /// [`STATE_TIMEOUT`]. The last object shown.
    pub fn wait_for(&self, show: &[&str], key: &str, want: &str) -> Value {
        let deadline = std::time::Instant::now() + STATE_TIMEOUT;
        loop {
            let obj = self.openstack_json(show);
            let now = obj[key].as_str().unwrap_or_default().to_owned();
            if now.eq_ignore_ascii_case(want) {
                return obj;
            }
            assert!(
                !now.eq_ignore_ascii_case("error") || want.eq_ignore_ascii_case("error"),
                "`{}` went to ERROR while waiting for {key}={want}: {obj}",
                show.join(" ")
            );
            assert!(
                std::time::Instant::now() < deadline,
                "`{}`: {key} is still {now}, not {want}: {obj}",
                show.join(" ")
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A client run that must fail; what it printed (stderr then stdout).
pub fn fails(out: &Output, args: &[&str]) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !out.status.success(),
        "`{}` should have failed but printed: {text}",
        args.join(" ")
    );
    text
}

/// A cloud of separate `stratus serve` processes (one service each, each
/// with its own data dir under the cluster's dir) sharing a database and a
/// bus given by `env`, bootstrapped with `stratus identity bootstrap`.
/// [`Cluster::cloud`] drives it with the clients as a [`Cloud`] does. Every
/// process is killed by its PID when the cluster is dropped.
pub struct Cluster {
    /// The clients' side: `clouds.yaml` and `admin-password` in its dir;
    /// it owns no process itself.
    pub cloud: Cloud,
    procs: Vec<(String, Child)>,
}

/// The admin password a [`Cluster`] is bootstrapped with.
const CLUSTER_ADMIN_PASSWORD: &str = "e2e-admin-pw";

impl Cluster {
    /// Bootstraps identity, then starts each `(name, serve args)` of
    /// `services` in order (e.g. `("agent-a", &["compute-agent", "--host",
    /// "node-a"])`), each ready before the next starts.
    pub fn start(env: &[(&str, &str)], services: &[(&str, &[&str])]) -> Cluster {
        venv_tool("openstack");
        let dir = tempfile::tempdir().expect("temporary dir");
        let ports = free_ports();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push((
            "STRATUS_IDENTITY__ADMIN_PASSWORD".into(),
            CLUSTER_ADMIN_PASSWORD.into(),
        ));
        let root = dir.path().to_path_buf();
        let mut cluster = Cluster {
            cloud: Cloud {
                child: None,
                dir,
                ports,
                env,
                stdout: mpsc::channel().1,
            },
            procs: Vec::new(),
        };
        let c = &cluster.cloud;
        std::fs::write(root.join("admin-password"), CLUSTER_ADMIN_PASSWORD).expect("write");
        let auth_url = c.identity_url();
        std::fs::write(
            root.join("clouds.yaml"),
            format!(
                "clouds:\n  stratus:\n    auth:\n      auth_url: \"{auth_url}\"\n      \
                 username: \"admin\"\n      password: \"{CLUSTER_ADMIN_PASSWORD}\"\n      \
                 project_name: \"admin\"\n      user_domain_name: \"Default\"\n      \
                 project_domain_name: \"Default\"\n    region_name: \"RegionOne\"\n    \
                 interface: \"public\"\n    identity_api_version: 3\n"
            ),
        )
        .expect("clouds.yaml");

        let mut boot = stratus_command(&root.join("identity"), &c.ports, &c.env);
        boot.args(["identity", "bootstrap"]);
        let out = boot.output().expect("stratus identity bootstrap");
        assert_success(&out, &["stratus", "identity", "bootstrap"]);

        for (name, args) in services {
            let data = root.join(name);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(root.join(format!("{name}.log")))
                .expect("log file");
            let mut cmd = stratus_command(&data, &cluster.cloud.ports, &cluster.cloud.env);
            cmd.arg("serve")
                .args(*args)
                .stdout(Stdio::piped())
                .stderr(Stdio::from(log));
            let mut child = cmd.spawn().expect("starting stratus serve");
            let stdout = child.stdout.take().expect("stdout");
            cluster.procs.push((name.to_string(), child));
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            let deadline = std::time::Instant::now() + READY_TIMEOUT;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(line) if line.starts_with("stratus ready in ") => break,
                    Ok(_) => {}
                    Err(_) => {
                        let log = std::fs::read_to_string(root.join(format!("{name}.log")))
                            .unwrap_or_default();
                        panic!("stratus serve {name} did not become ready; its log:\n{log}");
                    }
                }
            }
            // Keep draining its stdout so that it never blocks on a pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
        }
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in self.procs.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `stratus --data-dir DIR` with the cluster's ports and environment.
fn stratus_command(data: &Path, ports: &[(String, u16)], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stratus"));
    cmd.arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "info")
        .env_remove("STRATUS_DATA_DIR")
        .stdin(Stdio::null());
    for (key, port) in ports {
        cmd.env(format!("STRATUS_ENDPOINTS__{key}_PORT"), port.to_string());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}
