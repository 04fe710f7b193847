//! A cloud of separate `stratus serve` processes — identity, image,
//! network, compute-api, conductor, scheduler and two compute agents on
//! different hosts — on PostgreSQL (a fresh database) and RabbitMQ (a
//! fresh vhost), driven by the real `openstack` CLI: servers launched from
//! a real image onto a real network land on both hosts.

use std::process::Command;

use super::harness::{column, field, Cluster};
use super::image::create_image;
use super::network::network_with_subnet;

/// A fresh RabbitMQ vhost the `guest` user may use, removed on drop; `None`
/// when `rabbitmqctl` cannot make one (no broker on this machine).
pub(super) struct Vhost(String);

impl Vhost {
    pub(super) fn create() -> Option<Vhost> {
        let name = format!("stratus-e2e-{}", uuid_like());
        let ok = |args: &[&str]| {
            Command::new("rabbitmqctl")
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !ok(&["add_vhost", &name]) {
            return None;
        }
        let v = Vhost(name);
        if !ok(&["set_permissions", "-p", &v.0, "guest", ".*", ".*", ".*"]) {
            return None;
        }
        Some(v)
    }

    pub(super) fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.0)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.0])
            .output();
    }
}

/// A unique enough suffix: this process's id and the time.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

#[test]
fn separate_processes_on_postgresql_and_rabbitmq() {
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
                ("agent-b", &["compute-agent", "--host", "node-b"]),
            ],
        );
        let cloud = &cluster.cloud;

        let hypervisors = cloud.openstack_json(&["hypervisor", "list"]);
        let mut hosts = column(&hypervisors, "Hypervisor Hostname");
        hosts.sort();
        assert_eq!(hosts, ["node-a", "node-b"], "{hypervisors}");

        let image = field(&create_image(cloud, "dist-img", "--public"), "id");
        network_with_subnet(cloud, "dist-net", "10.50.0.0/24", &[]);
        let flavor = field(
            &cloud.openstack_json(&[
                "flavor",
                "create",
                "--ram",
                "512",
                "--disk",
                "1",
                "--vcpus",
                "1",
                "dist-flavor",
            ]),
            "id",
        );

        let names = ["d1", "d2", "d3", "d4"];
        for n in names {
            cloud.openstack_json(&[
                "server",
                "create",
                "--flavor",
                &flavor,
                "--image",
                &image,
                "--network",
                "dist-net",
                n,
            ]);
        }
        let mut on = Vec::new();
        for n in names {
            let s = cloud.wait_for(&["server", "show", n], "status", "ACTIVE");
            assert!(
                s["addresses"].to_string().contains("10.50.0."),
                "{n} has an address of the subnet: {s}"
            );
            on.push(field(&s, "OS-EXT-SRV-ATTR:host"));
        }
        on.sort();
        on.dedup();
        assert_eq!(
            on,
            ["node-a", "node-b"],
            "the servers spread over both hosts"
        );

        cloud.openstack_ok(&["server", "delete", "--wait", "d1", "d2", "d3", "d4"]);
        let listed = cloud.openstack_json(&["server", "list"]);
        assert_eq!(listed, serde_json::json!([]), "{listed}");
        let ports = cloud.openstack_json(&["port", "list", "--device-owner", "compute:nova"]);
        assert_eq!(ports, serde_json::json!([]), "no port left: {ports}");
        drop(cluster);
        drop(vhost);
    });
    rt.block_on(stratus_db::testing::drop_postgres_database(&name));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
