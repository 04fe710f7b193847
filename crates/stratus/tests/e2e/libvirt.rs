//! Real guests: `stratus up` with the libvirt driver and the Linux-bridge
//! network driver boots the project's test image (scripts/guest-image.sh,
//! Debian packages only) under libvirtd. The guests take their addresses
//! from our dnsmasq, read their uuid from our metadata proxy, reach each
//! other over the network's bridge (one of them booted from its kernel and
//! initrd images directly), survive stop, start and reboot, see a volume
//! attached to them, boot from a volume, and leave nothing behind when
//! deleted. With the test Ceph running (scripts/ceph/start.sh, which
//! writes the `STRATUS_TEST_RBD` file), the volumes are RBD images that
//! QEMU opens itself (seed steps 49–51); otherwise files.
//!
//! Needs root, a build with `--features libvirt` and libvirtd running
//! (scripts/libvirt-host.sh start); otherwise skipped, unless
//! `STRATUS_TEST_REQUIRE_LIBVIRT=1` (CI) makes that a failure.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::harness::{field, repo_root, Cloud};
use super::network::{eventually, link_exists, netns_exists};

fn required() -> bool {
    std::env::var("STRATUS_TEST_REQUIRE_LIBVIRT").is_ok_and(|v| v == "1")
}

/// Why real guests cannot run here, if they cannot.
fn missing() -> Option<String> {
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

/// The rbd backend's `[volume]` settings from the test Ceph's rbd.env,
/// as environment overrides; `None` without a Ceph (a failure when
/// `STRATUS_TEST_REQUIRE_CEPH=1`).
fn rbd_settings() -> Option<Vec<(String, String)>> {
    let path = match std::env::var("STRATUS_TEST_RBD") {
        Ok(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::env::temp_dir().join("stratus-ceph/rbd.env"),
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var("STRATUS_TEST_REQUIRE_CEPH").as_deref() != Ok("1"),
            "STRATUS_TEST_REQUIRE_CEPH=1 but no {}",
            path.display()
        );
        eprintln!("no Ceph ({}): volumes are files", path.display());
        return None;
    };
    let mut env = vec![("STRATUS_VOLUME__BACKEND".to_owned(), "rbd".to_owned())];
    for (k, v) in text.lines().filter_map(|l| l.split_once('=')) {
        let key = match k.trim() {
            "RBD_CEPH_CONF" => "STRATUS_VOLUME__RBD_CEPH_CONF",
            "RBD_KEYRING" => "STRATUS_VOLUME__RBD_KEYRING_CONF",
            "RBD_USER" => "STRATUS_VOLUME__RBD_USER",
            "RBD_POOL" => "STRATUS_VOLUME__RBD_POOL",
            _ => continue,
        };
        env.push((key.to_owned(), v.trim().to_owned()));
    }
    Some(env)
}

/// The RBD image names in the pool of `rbd` settings.
fn rbd_images(rbd: &[(String, String)]) -> String {
    let get = |k: &str| {
        rbd.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let out = Command::new("rbd")
        .args(["--conf", &get("STRATUS_VOLUME__RBD_CEPH_CONF")])
        .args(["--keyring", &get("STRATUS_VOLUME__RBD_KEYRING_CONF")])
        .args(["--id", &get("STRATUS_VOLUME__RBD_USER")])
        .args(["ls", &get("STRATUS_VOLUME__RBD_POOL")])
        .output()
        .expect("rbd ls");
    assert!(out.status.success(), "rbd ls: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn domain_xml(server: &str) -> String {
    let out = Command::new("virsh")
        .args([
            "-c",
            "qemu:///system",
            "dumpxml",
            &format!("stratus-{server}"),
        ])
        .output()
        .expect("virsh dumpxml");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn secrets() -> Vec<String> {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system", "secret-list"])
        .output()
        .expect("virsh secret-list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| uuid::Uuid::parse_str(w).is_ok())
        .map(str::to_owned)
        .collect()
}

/// The libvirt secrets the driver defines for Ceph volumes outlive the
/// test's cluster: those that were not there before go at the end.
struct NewSecrets(Vec<String>);

impl NewSecrets {
    fn record() -> Self {
        Self(secrets())
    }
}

impl Drop for NewSecrets {
    fn drop(&mut self) {
        for s in secrets().iter().filter(|s| !self.0.contains(s)) {
            let _ = Command::new("virsh")
                .args(["-c", "qemu:///system", "secret-undefine", s])
                .output();
        }
    }
}

/// The test image, built once per target dir (the script caches it).
fn guest_image() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stratus-guest");
    let out = Command::new(repo_root().join("scripts/guest-image.sh"))
        .arg(&dir)
        .output()
        .expect("run scripts/guest-image.sh");
    assert!(
        out.status.success(),
        "guest-image.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn console(cloud: &Cloud, server: &str) -> String {
    cloud.openstack_ok(&["console", "log", "show", server])
}

/// Waits until the server's console shows `line` `times` times.
fn console_shows(cloud: &Cloud, server: &str, line: &str, times: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let c = console(cloud, server);
        if c.matches(line).count() >= times {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{server}'s console never showed {line:?} {times} time(s):\n{c}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn domains() -> String {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all", "--name"])
        .output()
        .expect("virsh list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn running_domains() -> usize {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--name", "--state-running"])
        .output()
        .expect("virsh list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("stratus-"))
        .count()
}

/// What a failed run of this test would leave on the host (the cloud
/// process itself ends with its `Cloud`, dropped first): on a panic, the
/// guests of its servers, its network's bridge, namespace (with dnsmasq)
/// and taps go.
#[derive(Default)]
struct Leftovers {
    servers: Vec<String>,
    network: Option<String>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for id in &self.servers {
            let name = format!("stratus-{id}");
            for verb in ["destroy", "undefine"] {
                let _ = Command::new("virsh")
                    .args(["-c", "qemu:///system", verb, &name])
                    .output();
            }
        }
        let Some(net) = &self.network else { return };
        let ns = format!("qdhcp-{net}");
        if let Ok(o) = Command::new("ip").args(["netns", "pids", &ns]).output() {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").arg(pid).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        let bridge = format!("brq{}", &net[..11]);
        // Every tap on our bridge, then the bridge.
        if let Ok(o) = Command::new("ip")
            .args(["-o", "link", "show", "master", &bridge])
            .output()
        {
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                if let Some(name) = line.split(": ").nth(1) {
                    let name = name.split('@').next().unwrap_or(name);
                    let _ = Command::new("ip").args(["link", "del", name]).status();
                }
            }
        }
        let _ = Command::new("ip").args(["link", "del", &bridge]).status();
    }
}

/// Launches a server that must fail; its id and fault once it is ERROR
/// with nothing left (no domain, no port).
fn failed_server(
    cloud: &Cloud,
    flavor: &str,
    image: &str,
    net: &str,
    name: &str,
) -> (String, String) {
    let out = cloud.openstack(&[
        "server",
        "create",
        "--flavor",
        flavor,
        "--image",
        image,
        "--network",
        net,
        "--wait",
        name,
    ]);
    assert!(!out.status.success(), "{name} should have failed");
    let shown = cloud.wait_for(&["server", "show", name], "status", "ERROR");
    let id = field(&shown, "id");
    assert!(
        !domains().contains(&id),
        "{id} left a domain: {}",
        domains()
    );
    let ports = cloud.openstack_json(&["port", "list", "--server", &id]);
    assert_eq!(ports.as_array().map(Vec::len), Some(0), "{ports}");
    (id, shown["fault"].to_string())
}

#[test]
fn real_guests_boot_take_their_address_and_metadata_and_leave_nothing_behind() {
    if let Some(why) = missing() {
        assert!(!required(), "STRATUS_TEST_REQUIRE_LIBVIRT=1 but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let image_dir = guest_image();
    let kernel = image_dir.join("vmlinuz");
    let kernel = kernel.to_str().expect("utf-8 path");
    // Dropped after the cloud: cleans the host if the test fails.
    let _secrets = NewSecrets::record();
    let mut left = Leftovers::default();
    let rbd = rbd_settings();
    let mut env = vec![
        ("STRATUS_NETWORK__DRIVER", "linuxbridge"),
        ("STRATUS_COMPUTE__VIRT_DRIVER", "libvirt"),
        // `auto` for real: a probe boot of the test kernel decides.
        ("STRATUS_LIBVIRT__VIRT_TYPE", "auto"),
        ("STRATUS_LIBVIRT__PROBE_KERNEL", kernel),
        // The test guest ignores ACPI's power button.
        ("STRATUS_LIBVIRT__SHUTDOWN_TIMEOUT_SECS", "2"),
    ];
    env.extend(rbd.iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut cloud = Cloud::start_with(&env);
    let disk = image_dir.join("guest.qcow2");
    let image = cloud.openstack_json(&[
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--file",
        disk.to_str().expect("utf-8 path"),
        "guest",
    ]);
    let image = field(&image, "id");
    // The same guest by direct kernel boot: kernel and initrd images named
    // by the root image's `kernel_id` and `ramdisk_id`.
    let boot_file = |name: &str, file: &str, format: &str| {
        let path = image_dir.join(file);
        let img = cloud.openstack_json(&[
            "image",
            "create",
            "--disk-format",
            format,
            "--container-format",
            format,
            "--file",
            path.to_str().expect("utf-8 path"),
            name,
        ]);
        field(&img, "id")
    };
    let kernel_image = boot_file("guest-kernel", "vmlinuz", "aki");
    let ramdisk_image = boot_file("guest-ramdisk", "initrd.img", "ari");
    let direct = cloud.openstack_json(&[
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--property",
        &format!("kernel_id={kernel_image}"),
        "--property",
        &format!("ramdisk_id={ramdisk_image}"),
        "--file",
        disk.to_str().expect("utf-8 path"),
        "guest-direct",
    ]);
    let direct = field(&direct, "id");
    let net = cloud.openstack_json(&["network", "create", "lv-net"]);
    let net_id = field(&net, "id");
    left.network = Some(net_id.clone());
    cloud.openstack_ok(&[
        "subnet",
        "create",
        "--network",
        &net_id,
        "--subnet-range",
        "10.95.0.0/24",
        "lv-subnet",
    ]);
    let flavor = cloud.openstack_json(&[
        "flavor",
        "create",
        "--ram",
        "256",
        "--disk",
        "1",
        "--vcpus",
        "1",
        "lv-flavor",
    ]);
    let flavor = field(&flavor, "id");

    // Three guests on fixed addresses, each told to reach the others.
    let addrs = ["10.95.0.11", "10.95.0.12", "10.95.0.13"];
    let user_data = cloud.data_dir().join("ping-peers");
    std::fs::write(&user_data, format!("#stratus: ping {}\n", addrs.join(" "))).expect("user data");
    let user_data = user_data.to_str().expect("utf-8 path");
    let mut servers = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let port = cloud.openstack_json(&[
            "port",
            "create",
            "--network",
            &net_id,
            "--fixed-ip",
            &format!("ip-address={addr}"),
            &format!("lv-port-{i}"),
        ]);
        let port = field(&port, "id");
        // The last one boots its kernel directly.
        let boot = if i == addrs.len() - 1 {
            &direct
        } else {
            &image
        };
        let server = cloud.openstack_json(&[
            "server",
            "create",
            "--flavor",
            &flavor,
            "--image",
            boot,
            "--port",
            &port,
            "--user-data",
            user_data,
            "--wait",
            &format!("lv-vm-{i}"),
        ]);
        assert_eq!(server["status"], "ACTIVE", "{server}");
        left.servers.push(field(&server, "id"));
        servers.push((field(&server, "id"), port, *addr));
    }
    assert_eq!(
        domains()
            .lines()
            .filter(|l| l.starts_with("stratus-"))
            .count(),
        3
    );

    for (id, _, addr) in &servers {
        let c = console_shows(&cloud, id, "stratus-guest: ready", 1);
        // The address the network API gave its port, from our dnsmasq; the
        // uuid the compute API gives it, from our metadata proxy.
        assert!(c.contains(&format!("stratus-guest: ip={addr}")), "{c}");
        assert!(c.contains(&format!("stratus-guest: uuid={id}")), "{c}");
        assert!(c.contains("stratus-guest: disk=vda"), "{c}");
        for peer in addrs {
            assert!(c.contains(&format!("stratus-guest: ping {peer} ok")), "{c}");
        }
    }
    // `--lines` gives the tail.
    let tail = cloud.openstack_ok(&["console", "log", "show", "--lines", "2", &servers[0].0]);
    assert!(tail.lines().count() <= 2, "{tail}");

    // A restarted agent adopts the guests that kept running.
    cloud.restart();
    for (id, _, _) in &servers {
        cloud.wait_for(&["server", "show", id], "status", "ACTIVE");
    }
    assert_eq!(running_domains(), 3, "{}", domains());

    // Stop, start, reboot: the console shows each boot.
    let (first, _, _) = servers[0].clone();
    cloud.openstack_ok(&["server", "stop", &first]);
    cloud.wait_for(&["server", "show", &first], "status", "SHUTOFF");
    cloud.openstack_ok(&["server", "start", &first]);
    cloud.wait_for(&["server", "show", &first], "status", "ACTIVE");
    console_shows(&cloud, &first, "stratus-guest: booted", 2);
    cloud.openstack_ok(&["server", "reboot", "--hard", "--wait", &first]);
    console_shows(&cloud, &first, "stratus-guest: booted", 3);

    // A volume attached to the running guest is a virtio disk it sees on
    // its next boot (attached live and kept in the definition); removed,
    // it is available again.
    let vol = cloud.openstack_json(&["volume", "create", "--size", "1", "lv-vol"]);
    let vol_id = field(&vol, "id");
    cloud.wait_for(&["volume", "show", &vol_id], "status", "available");
    cloud.openstack_ok(&["server", "add", "volume", &first, &vol_id]);
    cloud.wait_for(&["volume", "show", &vol_id], "status", "in-use");
    cloud.openstack_ok(&["server", "reboot", "--hard", "--wait", &first]);
    let c = console_shows(&cloud, &first, "stratus-guest: booted", 4);
    let c = if c.contains("stratus-guest: disk=vdb") {
        c
    } else {
        console_shows(&cloud, &first, "stratus-guest: disk=vdb", 1)
    };
    assert!(c.contains("disk=vdb size=2097152"), "{c}");
    if rbd.is_some() {
        let x = domain_xml(&first);
        assert!(x.contains("protocol='rbd'"), "{x}");
        assert!(x.contains(&format!("volume-{vol_id}")), "{x}");
    }
    cloud.openstack_ok(&["server", "remove", "volume", &first, &vol_id]);
    cloud.wait_for(&["volume", "show", &vol_id], "status", "available");
    cloud.openstack_ok(&["volume", "delete", &vol_id]);

    // A snapshot of the running guest is an active image; rebuilt from
    // it, the guest is defined again on a new disk over that image and
    // boots to the same address.
    cloud.openstack_ok(&[
        "server", "image", "create", "--wait", "--name", "lv-snap", &first,
    ]);
    let snap = cloud.openstack_json(&["image", "show", "lv-snap"]);
    assert_eq!(field(&snap, "status"), "active", "{snap}");
    let snap_id = field(&snap, "id");
    let ip_line = format!("stratus-guest: ip={}", servers[0].2);
    let before = console(&cloud, &first).matches(&ip_line).count();
    cloud.openstack_ok(&["server", "rebuild", "--image", &snap_id, "--wait", &first]);
    let shown = cloud.openstack_json(&["server", "show", &first]);
    assert_eq!(field(&shown, "status"), "ACTIVE", "{shown}");
    assert!(shown["image"].to_string().contains(&snap_id), "{shown}");
    assert_eq!(running_domains(), 3, "{}", domains());
    // The rebuilt guest's console starts afresh or goes on; either way it
    // shows one more boot to the address.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let c = console(&cloud, &first);
        let now = c.matches(&ip_line).count();
        if now > before || (now >= 1 && c.matches("stratus-guest: booted").count() == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rebuilt guest never booted:\n{c}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    cloud.openstack_ok(&["image", "delete", &snap_id]);

    // Boot from a volume made from the image: the guest's root disk is the
    // volume's file, and the volume is available again after the delete.
    let root = cloud.openstack_json(&[
        "volume", "create", "--image", &image, "--size", "1", "lv-root",
    ]);
    let root_id = field(&root, "id");
    cloud.wait_for(&["volume", "show", &root_id], "status", "available");
    // On a fixed address, which the next guest takes again once this port
    // is gone.
    let bfv_port = cloud.openstack_json(&[
        "port",
        "create",
        "--network",
        &net_id,
        "--fixed-ip",
        "ip-address=10.95.0.21",
        "lv-port-bfv",
    ]);
    let bfv_port = field(&bfv_port, "id");
    let bfv = cloud.openstack_json(&[
        "server", "create", "--flavor", &flavor, "--volume", &root_id, "--port", &bfv_port,
        "--wait", "lv-bfv",
    ]);
    let bfv_id = field(&bfv, "id");
    left.servers.push(bfv_id.clone());
    assert_eq!(bfv["status"], "ACTIVE", "{bfv}");
    let c = console_shows(&cloud, &bfv_id, "stratus-guest: ready", 1);
    assert!(c.contains(&format!("stratus-guest: uuid={bfv_id}")), "{c}");
    assert!(c.contains("stratus-guest: disk=vda size=2097152"), "{c}");
    if rbd.is_some() {
        let x = domain_xml(&bfv_id);
        assert!(x.contains("protocol='rbd'"), "{x}");
        assert!(x.contains(&format!("volume-{root_id}")), "{x}");
    }
    cloud.openstack_ok(&["server", "delete", "--wait", &bfv_id]);
    cloud.wait_for(&["volume", "show", &root_id], "status", "available");
    cloud.openstack_ok(&["volume", "delete", &root_id]);
    cloud.openstack_ok(&["port", "delete", &bfv_port]);
    if let Some(rbd) = &rbd {
        eventually("the volumes' RBD images are removed", || {
            let images = rbd_images(rbd);
            !images.contains(vol_id.as_str()) && !images.contains(root_id.as_str())
        });
    }

    // A guest that powers itself off shows SHUTOFF (power-state sync on
    // the driver's lifecycle change).
    let off_data = cloud.data_dir().join("poweroff");
    std::fs::write(&off_data, "#stratus: poweroff\n").expect("user data");
    // On the address the boot-from-volume guest's port had, with a new MAC:
    // dnsmasq gives it only because the DHCP agent released the old lease
    // when that port went.
    let off_port = cloud.openstack_json(&[
        "port",
        "create",
        "--network",
        &net_id,
        "--fixed-ip",
        "ip-address=10.95.0.21",
        "lv-port-off",
    ]);
    let off_port = field(&off_port, "id");
    let off = cloud.openstack_json(&[
        "server",
        "create",
        "--flavor",
        &flavor,
        "--image",
        &image,
        "--port",
        &off_port,
        "--user-data",
        off_data.to_str().expect("utf-8 path"),
        "--wait",
        "lv-off",
    ]);
    let off_id = field(&off, "id");
    left.servers.push(off_id.clone());
    let c = console_shows(&cloud, &off_id, "stratus-guest: powering off", 1);
    assert!(c.contains("stratus-guest: ip=10.95.0.21"), "{c}");
    cloud.wait_for(&["server", "show", &off_id], "status", "SHUTOFF");
    cloud.openstack_ok(&["server", "delete", "--wait", &off_id]);
    cloud.openstack_ok(&["port", "delete", &off_port]);

    // Faults: the server goes to ERROR with a fault that says why, every
    // step is undone (no domain, no port) and the agent takes the next one.
    let no_kernel = cloud.openstack_json(&[
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--property",
        "kernel_id=0d4a3c4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        "--file",
        disk.to_str().expect("utf-8 path"),
        "guest-no-kernel",
    ]);
    let (failed_id, failed) = failed_server(
        &cloud,
        &flavor,
        &field(&no_kernel, "id"),
        &net_id,
        "lv-nokernel",
    );
    left.servers.push(failed_id.clone());
    assert!(failed.contains("Kernel image"), "{failed}");
    cloud.openstack_ok(&["server", "delete", "--wait", &failed_id]);
    let down = Command::new(repo_root().join("scripts/libvirt-host.sh"))
        .arg("stop")
        .status()
        .expect("libvirt-host.sh stop");
    assert!(down.success());
    let (failed_id, failed) = failed_server(&cloud, &flavor, &image, &net_id, "lv-nolibvirt");
    let up = Command::new(repo_root().join("scripts/libvirt-host.sh"))
        .arg("start")
        .status()
        .expect("libvirt-host.sh start");
    assert!(up.success());
    left.servers.push(failed_id.clone());
    assert!(failed.contains("libvirt"), "{failed}");
    // Its delete asks libvirtd whether a guest is left.
    cloud.openstack_ok(&["server", "delete", "--wait", &failed_id]);
    let again = cloud.openstack_json(&[
        "server",
        "create",
        "--flavor",
        &flavor,
        "--image",
        &image,
        "--network",
        &net_id,
        "--wait",
        "lv-again",
    ]);
    left.servers.push(field(&again, "id"));
    assert_eq!(again["status"], "ACTIVE", "{again}");
    cloud.openstack_ok(&["server", "delete", "--wait", &field(&again, "id")]);

    // Delete: no domain, tap, folder or console file stays.
    for (id, port, _) in &servers {
        cloud.openstack_ok(&["server", "delete", "--wait", id]);
        let tap = format!("tap{}", &port[..11]);
        eventually("the tap goes with the server", || !link_exists(&tap));
        assert!(
            !cloud.data_dir().join("instances").join(id).exists(),
            "{id}"
        );
    }
    assert!(
        !domains().contains("stratus-"),
        "domains left: {}",
        domains()
    );
    for (i, _) in addrs.iter().enumerate() {
        cloud.openstack_ok(&["port", "delete", &format!("lv-port-{i}")]);
    }
    cloud.openstack_ok(&["subnet", "delete", "lv-subnet"]);
    cloud.openstack_ok(&["network", "delete", &net_id]);
    let bridge = format!("brq{}", &net_id[..11]);
    eventually("the bridge goes with the network", || !link_exists(&bridge));
    eventually("the namespace goes with the network", || {
        !netns_exists(&format!("qdhcp-{net_id}"))
    });
}
