//! `stratus trace` and `stratus demo` against a real cloud: the trace of a
//! fake launch on the noop network (`stratus up`) shows the steps that ran,
//! in order, with times that add up to the measured POST-to-ACTIVE time;
//! `--action` traces a later action; a cloud of separate processes on
//! PostgreSQL and RabbitMQ is traced the same way; the demo runs to its end
//! with fake drivers and, where libvirt runs, with a real guest whose trace
//! has the DHCP, L2, image and hypervisor steps, and leaves no process,
//! data dir, namespace, bridge or guest behind.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::compute::launchable;
use super::harness::{assert_success, field, Cloud, STATE_TIMEOUT};

/// Steps a fake launch on the noop network always records: the API's
/// request (4–7), the scheduler's (8–12), the agent's spawn (43) and the
/// conductor's final update (47).
const LAUNCH_STEPS: [u64; 7] = [4, 5, 6, 8, 12, 43, 47];

/// `stratus <args>` with the cloud's clouds.yaml.
fn stratus(cloud: &Cloud, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(args)
        .env("OS_CLIENT_CONFIG_FILE", cloud.clouds_yaml())
        .env_remove("OS_CLOUD")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("running stratus")
}

/// `stratus trace ... --format json`, parsed; retried for a few seconds
/// until `done` holds (events reach the services' tables just after the
/// work).
fn trace_json(cloud: &Cloud, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    let mut all = vec!["trace"];
    all.extend(args);
    all.extend(["--os-cloud", "stratus", "--format", "json"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = stratus(cloud, &all);
        assert_success(&out, &all);
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rows(t: &Value) -> &Vec<Value> {
    t["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("rows in {t}"))
}

/// The steps of the rows whose outcome is `outcome`.
fn steps_with(t: &Value, outcome: &str) -> Vec<u64> {
    rows(t)
        .iter()
        .filter(|r| r["outcome"] == outcome)
        .filter_map(|r| r["step"].as_u64())
        .collect()
}

#[test]
fn a_launch_traces_every_step_in_order_and_its_durations_add_up() {
    let cloud = Cloud::start();
    let l = launchable(&cloud);
    let token = cloud.admin_token();
    let compute = format!("http://127.0.0.1:{}/v2.1", cloud.port("COMPUTE"));
    let auth = [("X-Auth-Token", token.as_str())];

    // The launch, timed from its POST to the first poll that sees ACTIVE
    // (raw HTTP: the CLI's own start-up would blur the measure).
    let body = json!({"server": {"name": "traced", "imageRef": l.image,
        "flavorRef": l.flavor, "networks": [{"uuid": l.net}]}});
    let posted = Instant::now();
    let (status, _, created) = cloud.http(
        reqwest::Method::POST,
        &format!("{compute}/servers"),
        &auth,
        Some(&body),
    );
    assert_eq!(status, 202, "{created}");
    let id = field(&created["server"], "id");
    let measured = loop {
        let (_, _, v) = cloud.http(
            reqwest::Method::GET,
            &format!("{compute}/servers/{id}"),
            &auth,
            None,
        );
        match v["server"]["status"].as_str() {
            Some("ACTIVE") => break posted.elapsed(),
            Some("ERROR") => panic!("the launch failed: {v}"),
            _ => {}
        }
        assert!(posted.elapsed() < STATE_TIMEOUT, "never ACTIVE: {v}");
        std::thread::sleep(Duration::from_millis(5));
    };

    let recorded = |t: &Value| {
        let ok = steps_with(t, "ok");
        LAUNCH_STEPS.iter().all(|s| ok.contains(s))
    };
    // By name, as people use it.
    let t = trace_json(&cloud, &["traced"], recorded);
    assert_eq!(t["server_id"], id.as_str(), "{t}");
    assert_eq!(t["action"], "create");
    let all = rows(&t);
    assert_eq!(all.len(), 58, "one row per seed step");
    let numbers: Vec<u64> = all.iter().filter_map(|r| r["step"].as_u64()).collect();
    assert_eq!(
        numbers,
        (1..=58).collect::<Vec<u64>>(),
        "rows in step order"
    );
    let ok = steps_with(&t, "ok");
    for s in LAUNCH_STEPS {
        assert!(ok.contains(&s), "step {s} is not in the trace: {t:#}");
    }
    for r in all.iter().filter(|r| r["outcome"] == "ok") {
        assert!(r["duration_ms"].as_f64().is_some(), "{r}");
        assert!(
            r["start_offset_ms"].as_f64().is_some_and(|o| o >= 0.0),
            "{r}"
        );
        assert!(r["from"].as_str().is_some_and(|f| !f.is_empty()), "{r}");
    }
    // No volume: steps 39–42 ran as skipped, with the reason.
    for r in all.iter().filter(|r| r["outcome"] == "skipped") {
        assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()), "{r}");
    }
    // The launch steps' durations add up to what the client saw.
    let sum = t["launch_steps_ms"].as_f64().expect("launch_steps_ms");
    let measured_ms = measured.as_secs_f64() * 1000.0;
    let tolerance = (measured_ms * 0.25).max(100.0);
    assert!(
        (sum - measured_ms).abs() <= tolerance,
        "steps 4–47 sum to {sum:.1} ms, the client measured {measured_ms:.1} ms: {t:#}"
    );

    // The table for people: a row per step, a footer.
    let out = stratus(&cloud, &["trace", &id, "--os-cloud", "stratus"]);
    assert_success(&out, &["trace", &id]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains('\x1b'), "no colours into a pipe: {table}");
    assert!(table.contains("Client → Nova.api"), "{table}");
    assert!(table.contains("steps 4–47 took"), "{table}");

    // A later action, by its request id.
    cloud.openstack_ok(&["server", "stop", "traced"]);
    cloud.wait_for(&["server", "show", "traced"], "status", "SHUTOFF");
    let events = cloud.openstack_json(&["server", "event", "list", "traced"]);
    let stop = events
        .as_array()
        .expect("a JSON list")
        .iter()
        .find(|e| e["Action"] == "stop")
        .unwrap_or_else(|| panic!("a stop action in {events}"));
    let req = field(stop, "Request ID");
    let t = trace_json(&cloud, &["traced", "--action", &req], |t| {
        !steps_with(t, "ok").is_empty()
    });
    assert_eq!(t["action"], "stop", "{t}");
    assert_eq!(t["request_id"], req.as_str());
    assert!(
        !steps_with(&t, "ok").is_empty(),
        "the stop recorded nothing: {t:#}"
    );

    // Unknown servers and actions are errors that say so.
    let out = stratus(&cloud, &["trace", "nonesuch", "--os-cloud", "stratus"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no server"));
    let out = stratus(
        &cloud,
        &[
            "trace",
            "traced",
            "--action",
            "req-nope",
            "--os-cloud",
            "stratus",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no action req-nope"));
}

#[test]
fn the_demo_runs_to_its_end_and_leaves_nothing_behind() {
    // The demo's data dir goes under a temp dir of this test's own.
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["demo", "--virt", "fake"])
        .env("TMPDIR", tmp.path())
        .env("RUST_LOG", "warn")
        .env_remove("OS_CLOUD")
        .env_remove("OS_CLIENT_CONFIG_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("running stratus demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stratus demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("fake virt driver and the noop network"),
        "{stdout}"
    );
    assert!(stdout.contains("ACTIVE"), "{stdout}");
    assert!(stdout.contains("Client → Nova.api"), "{stdout}");
    assert!(stdout.contains("steps 4–47 took"), "{stdout}");
    assert!(stdout.contains("demo: done"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
    // The cloud it started is gone.
    let pid = stdout
        .lines()
        .find_map(|l| l.split("(pid ").nth(1))
        .and_then(|p| p.split(')').next())
        .unwrap_or_else(|| panic!("the cloud's pid in {stdout}"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("stratus"),
        "stratus up (pid {pid}) still runs"
    );
}

/// Why real guests cannot run here, if they cannot (as the libvirt tests
/// decide it).
fn libvirt_missing() -> Option<String> {
    if !cfg!(feature = "libvirt") {
        return Some("stratus was built without --features libvirt".into());
    }
    let uid = Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0") {
        return Some("real guests need root".into());
    }
    let up = Command::new("virsh")
        .args(["-c", "qemu:///system", "version"])
        .output();
    if !up.is_ok_and(|o| o.status.success()) {
        return Some("libvirtd does not answer (scripts/libvirt-host.sh start)".into());
    }
    None
}

/// The word after `prefix` in the demo's output.
fn word_after<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .split(prefix)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {prefix:?} in {stdout}"))
}

/// The table row of `step` in the demo's output.
fn table_row(stdout: &str, step: u16) -> &str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&step.to_string()) && l.contains(" → "))
        .unwrap_or_else(|| panic!("no row {step} in {stdout}"))
}

#[test]
fn a_real_guest_demo_traces_dhcp_l2_image_and_hypervisor_and_leaves_nothing() {
    if let Some(why) = libvirt_missing() {
        assert!(
            std::env::var("STRATUS_TEST_REQUIRE_LIBVIRT").as_deref() != Ok("1"),
            "STRATUS_TEST_REQUIRE_LIBVIRT=1 but {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let guest = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stratus-guest");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["demo", "--virt", "libvirt", "--guest-dir"])
        .arg(&guest)
        .current_dir(super::harness::repo_root())
        .env("TMPDIR", tmp.path())
        .env("RUST_LOG", "warn")
        .env_remove("OS_CLOUD")
        .env_remove("OS_CLIENT_CONFIG_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("running stratus demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stratus demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("libvirt guests on the linuxbridge network"),
        "{stdout}"
    );
    assert!(stdout.contains("console: stratus-guest: ip="), "{stdout}");
    // DHCP (dnsmasq), L2, the image (cache) and the hypervisor ran.
    for step in [30, 35, 43] {
        let row = table_row(&stdout, step);
        assert!(row.ends_with(" ok"), "step {step}: {row}\n{stdout}");
    }
    assert!(
        (19..=25).any(|s| table_row(&stdout, s).ends_with(" ok")),
        "no image step: {stdout}"
    );
    assert!(stdout.contains("demo: done"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?}");
    // Its network's namespace and bridge, and its guest, are gone (other
    // tests may have their own meanwhile).
    let net = word_after(&stdout, ", network ");
    let server = word_after(&stdout, "launching server ");
    let ns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns");
    let ns = String::from_utf8_lossy(&ns.stdout);
    assert!(!ns.contains(&format!("qdhcp-{net}")), "{ns}");
    let bridge = format!("brq{}", &net[..11]);
    let link = Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .expect("ip link");
    assert!(!link.status.success(), "{bridge} is still there");
    let domains = Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all", "--name"])
        .output()
        .expect("virsh list");
    let domains = String::from_utf8_lossy(&domains.stdout);
    assert!(
        !domains.contains(&format!("stratus-{server}")),
        "the demo left its guest: {domains}"
    );
}

#[test]
fn a_trace_reads_every_process_of_a_spread_cloud() {
    use super::distributed::Vhost;
    use super::harness::Cluster;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (url, name) = match rt.block_on(stratus_db::testing::create_postgres_database()) {
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
        let Some(vhost) = Vhost::create() else {
            assert!(
                std::env::var("STRATUS_TEST_REQUIRE_AMQP").is_err(),
                "RabbitMQ is required but rabbitmqctl cannot make a vhost"
            );
            eprintln!("RabbitMQ not reachable with rabbitmqctl; skipping");
            return;
        };
        let amqp = vhost.url();
        let cluster = Cluster::start(
            &[
                ("STRATUS_DATABASE__URL", &url),
                ("STRATUS_BUS__TRANSPORT", "amqp"),
                ("STRATUS_BUS__URL", &amqp),
                ("STRATUS_SERVICE_USER__PASSWORD", "e2e-service-pw"),
                ("STRATUS_NETWORK__METADATA_SECRET", "e2e-metadata-secret"),
                ("STRATUS_COMPUTE__METADATA_SECRET", "e2e-metadata-secret"),
            ],
            &[
                ("identity", &["identity"]),
                ("image", &["image"]),
                ("network", &["network"]),
                ("compute-api", &["compute-api"]),
                ("conductor", &["conductor"]),
                ("scheduler", &["scheduler"]),
                ("agent-a", &["compute-agent", "--host", "node-a"]),
            ],
        );
        let cloud = &cluster.cloud;
        let l = launchable(cloud);
        let server = cloud.openstack_json(&[
            "server",
            "create",
            "--flavor",
            &l.flavor,
            "--image",
            &l.image,
            "--network",
            &l.net,
            "--wait",
            "spread",
        ]);
        assert_eq!(server["status"], "ACTIVE", "{server}");
        let t = trace_json(cloud, &["spread"], |t| {
            let ok = steps_with(t, "ok");
            LAUNCH_STEPS.iter().all(|s| ok.contains(s))
        });
        let ok = steps_with(&t, "ok");
        // The client's token (identity's process), the API's, scheduler's,
        // agent's and conductor's steps (kept by compute), the image's.
        for s in [1, 2, 3].iter().chain(&LAUNCH_STEPS).chain(&[20]) {
            assert!(ok.contains(s), "step {s} is not in the trace: {t:#}");
        }
        // The volume service does not run here: a note, not a failure.
        let notes = t["notes"].to_string();
        assert!(notes.contains("block-storage"), "{notes}");
        drop(cluster);
        drop(vhost);
    });
    rt.block_on(stratus_db::testing::drop_postgres_database(&name));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
