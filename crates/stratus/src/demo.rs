//! `stratus demo`: the whole story on one machine. A `stratus up` in a
//! temporary data dir; a test image, a network with a subnet and a flavor;
//! one server launched with a line per state change; its trace; then the
//! server, the network and the cloud go, and the dir with them (`--keep`
//! leaves the cloud running instead and says how to use it).
//!
//! Real guests need libvirt (root, libvirtd, a build with `--features
//! libvirt`) and the linuxbridge network driver, and the test guest that
//! scripts/guest-image.sh builds; without them the demo uses the fake virt
//! driver and the noop network, and says why.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::bench::ChildCloud;
use crate::cli::{DemoArgs, DemoVirt, TraceFormat};
use crate::trace::client::Session;
use crate::trace::{self, clouds};

/// How long the server may take to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a real guest may take to print its ready line.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(180);
/// How long deletions may take.
const GONE_TIMEOUT: Duration = Duration::from_secs(60);
/// The demo network's range (inside a namespace and a bridge of its own
/// with linuxbridge; nothing reaches the host's interfaces).
const DEMO_CIDR: &str = "10.213.77.0/24";

/// What the demo runs on, and why.
struct Drivers {
    /// The guest's files (guest.qcow2, vmlinuz) when real guests run.
    guest: Option<PathBuf>,
    why: String,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let drivers = choose(&args).await?;
    println!("demo: {}", drivers.why);
    let dir = tempfile::Builder::new()
        .prefix("stratus-demo-")
        .tempdir()
        .context("making the temporary data dir")?;
    std::fs::write(dir.path().join("stratus.toml"), config(&drivers))
        .context("writing the demo's stratus.toml")?;
    println!("demo: starting stratus up in {}", dir.path().display());
    let cloud = ChildCloud::start(dir.path()).await?;
    println!(
        "demo: cloud ready in {:.1} s (pid {})",
        cloud.ready_after.as_secs_f64(),
        cloud.pid
    );
    let outcome = launch_and_trace(dir.path(), &drivers, args.keep).await;
    if args.keep && outcome.is_ok() {
        let dir = dir.keep();
        let file = dir.join(crate::clouds_yaml::FILE);
        println!(
            "demo: the cloud keeps running (pid {pid}); use it with\n  \
             export OS_CLIENT_CONFIG_FILE={file}\n  \
             openstack --os-cloud stratus server list\n  \
             stratus trace demo-server --os-cloud stratus\n\
             and stop it with\n  kill {pid}; rm -rf {dir}",
            pid = cloud.pid,
            file = file.display(),
            dir = dir.display(),
        );
        // Its stdout pipe closes with this process; it prints nothing more.
        std::mem::forget(cloud);
        return Ok(());
    }
    let stopped = cloud.stop().await;
    let removed = dir
        .close()
        .context("removing the demo's temporary data dir");
    outcome?;
    stopped?;
    removed?;
    println!(
        "demo: done in {:.1} s; the cloud is stopped and its data dir removed",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Libvirt when asked for or when it can run here; otherwise the fakes,
/// with the reason.
async fn choose(args: &DemoArgs) -> anyhow::Result<Drivers> {
    if args.virt == DemoVirt::Fake {
        return Ok(Drivers {
            guest: None,
            why: "the fake virt driver and the noop network (--virt fake)".into(),
        });
    }
    let fallback = |reason: String| -> anyhow::Result<Drivers> {
        if args.virt == DemoVirt::Libvirt {
            bail!("--virt libvirt cannot run here: {reason}");
        }
        Ok(Drivers {
            guest: None,
            why: format!("the fake virt driver and the noop network, because {reason}"),
        })
    };
    if let Some(reason) = libvirt_missing() {
        return fallback(reason);
    }
    let guest_dir = match &args.guest_dir {
        Some(d) => d.clone(),
        None => default_guest_dir(),
    };
    match guest_image(&guest_dir).await {
        Ok(()) => Ok(Drivers {
            guest: Some(guest_dir),
            why: "libvirt guests on the linuxbridge network".into(),
        }),
        Err(e) => fallback(format!("the test guest could not be built: {e:#}")),
    }
}

/// Why real guests cannot run here, if they cannot.
fn libvirt_missing() -> Option<String> {
    if !cfg!(feature = "libvirt") {
        return Some("this stratus was built without --features libvirt".into());
    }
    let uid = std::process::Command::new("id").arg("-u").output();
    if !uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0") {
        return Some("real guests and the linuxbridge network need root".into());
    }
    let up = std::process::Command::new("virsh")
        .args(["-c", "qemu:///system", "version"])
        .output();
    if !up.is_ok_and(|o| o.status.success()) {
        return Some("libvirtd does not answer (scripts/libvirt-host.sh start)".into());
    }
    None
}

fn default_guest_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("stratus/guest")
}

/// The test guest in `dir`: there already, or built by
/// scripts/guest-image.sh (found from the current dir upwards).
async fn guest_image(dir: &Path) -> anyhow::Result<()> {
    let script = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|d| d.join("scripts/guest-image.sh"))
            .find(|p| p.is_file())
    });
    let Some(script) = script else {
        if dir.join("guest.qcow2").is_file() && dir.join("vmlinuz").is_file() {
            return Ok(());
        }
        bail!(
            "no scripts/guest-image.sh here or above, and no guest.qcow2 in {}",
            dir.display()
        );
    };
    println!(
        "demo: building the test guest in {} (cached)",
        dir.display()
    );
    let out = tokio::process::Command::new(&script)
        .arg(dir)
        .output()
        .await
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The demo cloud's stratus.toml.
fn config(d: &Drivers) -> String {
    match &d.guest {
        Some(guest) => format!(
            "[compute]\nvirt_driver = \"libvirt\"\n\n[network]\ndriver = \"linuxbridge\"\n\n\
             [libvirt]\nvirt_type = \"auto\"\nprobe_kernel = {}\nshutdown_timeout_secs = 2\n",
            toml::Value::String(guest.join("vmlinuz").display().to_string())
        ),
        None => "[compute]\nvirt_driver = \"fake\"\n\n[network]\ndriver = \"noop\"\n".into(),
    }
}

/// Everything the demo does on the running cloud; the server and network
/// are deleted again unless `keep`.
async fn launch_and_trace(dir: &Path, d: &Drivers, keep: bool) -> anyhow::Result<()> {
    let auth = clouds::load_file(
        &dir.join(crate::clouds_yaml::FILE),
        crate::clouds_yaml::CLOUD_NAME,
    )?;
    let s = Session::login(&auth).await?;
    let image = upload_image(&s, d).await?;
    let net = s
        .ok(
            Method::POST,
            &format!("{}/v2.0/networks", s.endpoint("network")?),
            Some(&json!({"network": {"name": "demo-net"}})),
        )
        .await?;
    let net = id_of(&net["network"])?;
    s.ok(
        Method::POST,
        &format!("{}/v2.0/subnets", s.endpoint("network")?),
        Some(&json!({"subnet": {"name": "demo-subnet", "network_id": net,
            "ip_version": 4, "cidr": DEMO_CIDR}})),
    )
    .await?;
    let compute = s.endpoint("compute")?;
    let flavor = s
        .ok(
            Method::POST,
            &format!("{compute}/flavors"),
            Some(&json!({"flavor": {"name": "demo-flavor", "ram": 256, "vcpus": 1, "disk": 1}})),
        )
        .await?;
    let flavor = id_of(&flavor["flavor"])?;
    println!("demo: image {image}, network {net} ({DEMO_CIDR}), flavor {flavor}");

    let result = launch(&s, &compute, &image, &flavor, &net, d).await;
    if keep && result.is_ok() {
        return Ok(());
    }
    let cleaned = clean(&s, &compute, result.as_ref().ok(), &net, d).await;
    result?;
    cleaned
}

/// Launches the server, shows its progress (and its console with a real
/// guest) and prints its trace; the server's id.
async fn launch(
    s: &Session,
    compute: &str,
    image: &str,
    flavor: &str,
    net: &str,
    d: &Drivers,
) -> anyhow::Result<String> {
    let body = json!({"server": {"name": "demo-server", "imageRef": image,
        "flavorRef": flavor, "networks": [{"uuid": net}]}});
    let posted = Instant::now();
    let server = s
        .ok(Method::POST, &format!("{compute}/servers"), Some(&body))
        .await?;
    let id = id_of(&server["server"])?;
    println!("demo: launching server {id}");
    let mut last = String::new();
    loop {
        let (status, v) = s
            .call(Method::GET, &format!("{compute}/servers/{id}"), None)
            .await?;
        if !status.is_success() {
            bail!("the server could not be read: {status}");
        }
        let srv = &v["server"];
        let state = srv["status"].as_str().unwrap_or("?").to_owned();
        let task = srv["OS-EXT-STS:task_state"].as_str().unwrap_or_default();
        let now = if task.is_empty() {
            state.clone()
        } else {
            format!("{state} ({task})")
        };
        if now != last {
            println!("  {:>7.3} s  {now}", posted.elapsed().as_secs_f64());
            last = now;
        }
        match state.as_str() {
            "ACTIVE" => break,
            "ERROR" => bail!(
                "the server went to ERROR: {}",
                srv["fault"]["message"]
                    .as_str()
                    .unwrap_or("no fault recorded")
            ),
            _ if posted.elapsed() > ACTIVE_TIMEOUT => {
                bail!("the server is still {state} after {ACTIVE_TIMEOUT:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    println!(
        "demo: ACTIVE {:.3} s after the POST",
        posted.elapsed().as_secs_f64()
    );
    if d.guest.is_some() {
        console(s, compute, &id).await?;
    }
    // Events reach the services' tables a moment after the work.
    let mut t = trace::of(s, &id, None).await?;
    for _ in 0..20 {
        if t.rows
            .iter()
            .any(|r| r.step == 47 && r.duration_ms.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        t = trace::of(s, &id, None).await?;
    }
    println!();
    trace::print(&t, TraceFormat::Table);
    Ok(id)
}

/// Prints the guest's `stratus-guest:` console lines until it is ready.
async fn console(s: &Session, compute: &str, id: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut shown = 0;
    loop {
        let v = s
            .ok(
                Method::POST,
                &format!("{compute}/servers/{id}/action"),
                Some(&json!({"os-getConsoleOutput": {}})),
            )
            .await?;
        let lines: Vec<&str> = v["output"]
            .as_str()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("stratus-guest:"))
            .collect();
        for l in lines.iter().skip(shown) {
            println!("  console: {}", l.trim());
        }
        shown = shown.max(lines.len());
        if lines.iter().any(|l| l.contains("stratus-guest: ready")) {
            return Ok(());
        }
        if started.elapsed() > CONSOLE_TIMEOUT {
            println!("demo: the guest did not say it is ready within {CONSOLE_TIMEOUT:?}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The demo's image: the test guest, or a small raw disk the fake driver
/// never reads.
async fn upload_image(s: &Session, d: &Drivers) -> anyhow::Result<String> {
    let (bytes, format) = match &d.guest {
        Some(g) => {
            let path = g.join("guest.qcow2");
            let bytes = tokio::fs::read(&path)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
            (bytes, "qcow2")
        }
        None => (vec![0u8; 1 << 20], "raw"),
    };
    let image = s.endpoint("image")?;
    let created = s
        .ok(
            Method::POST,
            &format!("{image}/v2/images"),
            Some(&json!({"name": "demo-image", "disk_format": format,
                "container_format": "bare", "visibility": "public"})),
        )
        .await?;
    let id = id_of(&created)?;
    s.upload(&format!("{image}/v2/images/{id}/file"), bytes)
        .await?;
    Ok(id)
}

/// Deletes the server (when there is one) and the network, and waits until
/// they are gone, so that no guest, tap, bridge or namespace outlives the
/// cloud.
async fn clean(
    s: &Session,
    compute: &str,
    server: Option<&String>,
    net: &str,
    d: &Drivers,
) -> anyhow::Result<()> {
    let server_url = server.map(|id| format!("{compute}/servers/{id}"));
    let server_url = match server_url {
        Some(u) => Some(u),
        // A launch that failed may have left its server: find it by name.
        None => {
            let (_, v) = s
                .call(
                    Method::GET,
                    &format!("{compute}/servers?name=demo-server"),
                    None,
                )
                .await?;
            v["servers"][0]["id"]
                .as_str()
                .map(|id| format!("{compute}/servers/{id}"))
        }
    };
    if let Some(url) = server_url {
        let _ = s.call(Method::DELETE, &url, None).await?;
        gone(s, &url).await?;
    }
    let net_url = format!("{}/v2.0/networks/{net}", s.endpoint("network")?);
    let (status, v) = s.call(Method::DELETE, &net_url, None).await?;
    if !status.is_success() && status != StatusCode::NOT_FOUND {
        bail!(
            "deleting the demo network: {status}: {}",
            trace::client::message(&v)
        );
    }
    if d.guest.is_some() {
        // The agents take the namespace and bridge down after the delete.
        let ns = Path::new("/run/netns").join(format!("qdhcp-{net}"));
        let bridge =
            Path::new("/sys/class/net").join(format!("brq{}", net.get(..11).unwrap_or(net)));
        let started = Instant::now();
        while (ns.exists() || bridge.exists()) && started.elapsed() < GONE_TIMEOUT {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        for left in [&ns, &bridge] {
            if left.exists() {
                bail!(
                    "{} is still there {GONE_TIMEOUT:?} after the network's delete",
                    left.display()
                );
            }
        }
    }
    Ok(())
}

/// Waits until `url` answers 404.
async fn gone(s: &Session, url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let (status, _) = s.call(Method::GET, url, None).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if started.elapsed() > GONE_TIMEOUT {
            bail!("{url} is still there {GONE_TIMEOUT:?} after its delete");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no id in {v}"))
}
