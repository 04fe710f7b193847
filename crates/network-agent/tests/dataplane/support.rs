//! Test helpers: a fake Neutron server, a stub metadata API, a cleanup guard
//! and command helpers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use stratus_common::ids::{NetworkId, PortId};
use stratus_network_agent::metadata_proxy::sign;
use stratus_network_agent::rpc::{InstanceLookup, NetworkInfo, PortInfo};
use stratus_network_agent::server::RpcError as AgentError;
use stratus_network_agent::server::ServerApi;

type Result<T> = std::result::Result<T, AgentError>;

/// A Neutron server in memory.
#[derive(Default)]
pub struct FakeServer {
    pub networks: Mutex<HashMap<NetworkId, NetworkInfo>>,
    pub dhcp_ports: Mutex<HashMap<NetworkId, PortInfo>>,
    pub instances: Mutex<HashMap<IpAddr, InstanceLookup>>,
    pub statuses: Mutex<Vec<(PortId, String)>>,
    /// The host each `port_status` named, in order.
    pub status_hosts: Mutex<Vec<(PortId, String)>>,
    pub reports: Mutex<Vec<(String, String)>>,
    /// The events agents sent (`record_events`).
    pub events: Mutex<Vec<stratus_telemetry::Event>>,
}

impl FakeServer {
    pub fn statuses(&self) -> Vec<(PortId, String)> {
        self.statuses.lock().expect("lock").clone()
    }

    /// The steps recorded so far, once `n` have arrived (agents send them
    /// from a background writer).
    pub async fn steps(&self, n: usize) -> Vec<(u16, String, Option<String>)> {
        for _ in 0..300 {
            let got: Vec<_> = self
                .events
                .lock()
                .expect("lock")
                .iter()
                .map(|e| (e.step, e.service.clone(), e.resource_id.clone()))
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{n} events never arrived");
    }
}

#[async_trait]
impl ServerApi for FakeServer {
    async fn port_status(&self, port_id: PortId, status: &str, host: &str) -> Result<()> {
        self.statuses
            .lock()
            .expect("lock")
            .push((port_id, status.to_owned()));
        self.status_hosts
            .lock()
            .expect("lock")
            .push((port_id, host.to_owned()));
        Ok(())
    }
    async fn ensure_dhcp_port(&self, network_id: NetworkId, _host: &str) -> Result<PortInfo> {
        self.dhcp_ports
            .lock()
            .expect("lock")
            .get(&network_id)
            .cloned()
            .ok_or_else(|| AgentError::NotFound(network_id.to_string()))
    }
    async fn get_network_info(&self, network_id: NetworkId) -> Result<NetworkInfo> {
        self.networks
            .lock()
            .expect("lock")
            .get(&network_id)
            .cloned()
            .ok_or_else(|| AgentError::NotFound(network_id.to_string()))
    }
    async fn lookup_instance(
        &self,
        _network_id: NetworkId,
        ip: IpAddr,
    ) -> Result<Option<InstanceLookup>> {
        Ok(self.instances.lock().expect("lock").get(&ip).cloned())
    }
    async fn record_events(&self, events: Vec<stratus_telemetry::Event>) -> Result<()> {
        self.events.lock().expect("lock").extend(events);
        Ok(())
    }
    async fn agent_report(&self, host: &str, agent_type: &str) -> Result<()> {
        self.reports
            .lock()
            .expect("lock")
            .push((host.to_owned(), agent_type.to_owned()));
        Ok(())
    }
}

#[derive(Clone)]
struct StubState {
    secret: String,
    /// instance id -> project id
    instances: Arc<HashMap<String, String>>,
}

async fn stub_metadata(
    State(st): State<StubState>,
    uri: Uri,
    headers: HeaderMap,
) -> axum::response::Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(iid), Some(sig), Some(tenant), Some(_xff)) = (
        h("x-instance-id"),
        h("x-instance-id-signature"),
        h("x-tenant-id"),
        h("x-forwarded-for"),
    ) else {
        return (StatusCode::BAD_REQUEST, "missing headers").into_response();
    };
    if sig != sign(&st.secret, &iid) {
        return (StatusCode::FORBIDDEN, "Invalid proxy request signature.").into_response();
    }
    if st.instances.get(&iid) != Some(&tenant) {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    if uri.path() != "/openstack/latest/meta_data.json" {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let body = serde_json::json!({"uuid": iid, "project_id": tenant, "name": "guest"});
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A metadata API on 127.0.0.1 that checks the proxy's signature as Nova does.
pub async fn start_stub_metadata(secret: &str, instances: HashMap<String, String>) -> SocketAddr {
    let st = StubState {
        secret: secret.to_owned(),
        instances: Arc::new(instances),
    };
    let app = axum::Router::new().fallback(stub_metadata).with_state(st);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind stub");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Removes everything a test made, in reverse order of danger: processes
/// (only PIDs the test recorded), then namespaces, links and nft tables.
#[derive(Default)]
pub struct Cleanup {
    pub pids: Mutex<Vec<u32>>,
    pub namespaces: Vec<String>,
    pub links: Vec<String>,
    pub nft_tables: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in self.pids.lock().map(|p| p.clone()).unwrap_or_default() {
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
        for ns in &self.namespaces {
            if std::path::Path::new("/run/netns").join(ns).exists() {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
        for l in &self.links {
            let _ = Command::new("ip")
                .args(["link", "del", l])
                .stderr(std::process::Stdio::null())
                .status();
        }
        for t in &self.nft_tables {
            for fam in ["bridge", "inet"] {
                let _ = Command::new("nft")
                    .args(["delete", "table", fam, t])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// Runs a command, returning (success, stdout + stderr).
pub fn sh(args: &[&str]) -> (bool, String) {
    match Command::new(args[0]).args(&args[1..]).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Why the kernel tests cannot run here, if they cannot.
pub fn kernel_tests_unavailable() -> Option<String> {
    if sh(&["id", "-u"]).1.trim() != "0" {
        return Some("not root".into());
    }
    for (prog, arg) in [
        ("ip", "netns"),
        ("dnsmasq", "--version"),
        ("busybox", "true"),
        ("nft", "--version"),
    ] {
        let args: Vec<&str> = if prog == "ip" {
            vec!["ip", "netns", "list"]
        } else {
            vec![prog, arg]
        };
        if !sh(&args).0 {
            return Some(format!("`{}` unavailable", args.join(" ")));
        }
    }
    None
}

/// A short random hex string for unique names.
pub fn uniq(n: usize) -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(n);
    s
}
