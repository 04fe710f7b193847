//! One dnsmasq per network, inside the network's DHCP namespace.
//!
//! Rendering (command line, hosts file) is pure and unit-tested. The running
//! process is owned by one supervision task per network, which takes
//! commands over a channel:
//!
//! ```text
//!   start ──> Running ──(child exits)──> restart after a pause ──> Running
//!                │  └─(Reload)──> SIGHUP (re-reads the hosts file)
//!                └─(Stop / handle dropped)──> SIGTERM, then SIGKILL ──> gone
//! ```
//!
//! Only PIDs this agent spawned are signalled: the current child, or on
//! start a leftover from a previous life of the agent named in our own pid
//! file and recognised by its command line (which names our state dir).

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

use crate::dataplane::netns;
use crate::error::{AgentError, Result};
use crate::rpc::{NetworkInfo, PortInfo, DEVICE_OWNER_DHCP};

/// The address guests reach the metadata proxy on.
pub const METADATA_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 169, 254));
const LEASE: &str = "86400s";

/// Everything needed to run one network's dnsmasq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsmasqSpec {
    pub namespace: String,
    /// The per-network state directory (hosts file, pid file, leases).
    pub dir: PathBuf,
    pub args: Vec<String>,
}

pub fn hosts_path(dir: &Path) -> PathBuf {
    dir.join("host")
}

pub fn pid_path(dir: &Path) -> PathBuf {
    dir.join("pid")
}

/// DHCP-enabled IPv4 subnets, in order; their index is the dnsmasq tag.
fn dhcp_subnets(net: &NetworkInfo) -> impl Iterator<Item = (usize, &crate::rpc::SubnetInfo)> {
    net.subnets
        .iter()
        .filter(|s| s.enable_dhcp && s.ip_version == 4)
        .enumerate()
}

/// Whether the network needs a DHCP server at all.
pub fn wants_dhcp(net: &NetworkInfo) -> bool {
    dhcp_subnets(net).next().is_some()
}

/// dnsmasq's command line, with Neutron's DHCP agent's flags: static ranges
/// only (addresses come from the hosts file, never from a pool), classless
/// routes (option 121, and 249 for Windows) that send 169.254.169.254 to the
/// DHCP port and, because option 121 makes clients ignore option 3, repeat
/// the default route.
pub fn dnsmasq_args(
    net: &NetworkInfo,
    interface: &str,
    dhcp_port: &PortInfo,
    dir: &Path,
) -> Vec<String> {
    let mut a = vec![
        "--no-hosts".to_owned(),
        "--no-resolv".to_owned(),
        "--port=0".to_owned(),
        "--keep-in-foreground".to_owned(),
        "--bind-interfaces".to_owned(),
        format!("--interface={interface}"),
        "--user=root".to_owned(),
        "--group=root".to_owned(),
        format!("--pid-file={}", pid_path(dir).display()),
        format!("--dhcp-hostsfile={}", hosts_path(dir).display()),
        format!("--dhcp-leasefile={}", dir.join("leases").display()),
        "--dhcp-authoritative".to_owned(),
        "--conf-file=/dev/null".to_owned(),
        format!("--dhcp-option-force=option:mtu,{}", net.mtu),
    ];
    for (i, s) in dhcp_subnets(net) {
        let tag = format!("subnet{i}");
        let IpAddr::V4(_) = s.cidr.addr() else {
            continue;
        };
        a.push(format!(
            "--dhcp-range=set:{tag},{},static,{},{LEASE}",
            s.cidr.network(),
            s.cidr.netmask()
        ));
        let dhcp_ip = dhcp_port
            .fixed_ips
            .iter()
            .find(|f| f.subnet_id == s.id)
            .map(|f| f.ip_address);
        let mut routes: Vec<String> = Vec::new();
        if let Some(ip) = dhcp_ip {
            routes.push(format!("{METADATA_IP}/32,{ip}"));
        }
        for r in &s.host_routes {
            routes.push(format!("{},{}", r.destination, r.nexthop));
        }
        match s.gateway_ip {
            Some(gw) => {
                if !routes.is_empty() {
                    routes.push(format!("0.0.0.0/0,{gw}"));
                }
                a.push(format!("--dhcp-option=tag:{tag},option:router,{gw}"));
            }
            // An empty router option stops dnsmasq offering itself as router.
            None => a.push(format!("--dhcp-option=tag:{tag},option:router")),
        }
        if !routes.is_empty() {
            let joined = routes.join(",");
            a.push(format!(
                "--dhcp-option-force=tag:{tag},option:classless-static-route,{joined}"
            ));
            a.push(format!("--dhcp-option-force=tag:{tag},249,{joined}"));
        }
        if !s.dns_nameservers.is_empty() {
            let dns: Vec<String> = s.dns_nameservers.iter().map(ToString::to_string).collect();
            a.push(format!(
                "--dhcp-option=tag:{tag},option:dns-server,{}",
                dns.join(",")
            ));
        }
    }
    a
}

/// The hosts file: one `MAC,host-<ip-dashed>,IP` line per address of every
/// port on a DHCP-enabled IPv4 subnet (the DHCP port itself excluded).
pub fn hosts_file(net: &NetworkInfo) -> String {
    let mut out = String::new();
    let mut ports: Vec<&PortInfo> = net
        .ports
        .iter()
        .filter(|p| p.device_owner != DEVICE_OWNER_DHCP)
        .collect();
    ports.sort_by_key(|p| p.id);
    for p in ports {
        for f in &p.fixed_ips {
            let on_dhcp = dhcp_subnets(net).any(|(_, s)| s.id == f.subnet_id);
            if !on_dhcp || !f.ip_address.is_ipv4() {
                continue;
            }
            let dashed = f.ip_address.to_string().replace('.', "-");
            let _ = writeln!(
                out,
                "{},host-{dashed},{}",
                p.mac_address.to_ascii_lowercase(),
                f.ip_address
            );
        }
    }
    out
}

/// Writes through a temporary file and a rename, so dnsmasq never reads a
/// half-written file.
pub fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

enum Cmd {
    Reload,
    Stop(oneshot::Sender<()>),
}

/// A supervised dnsmasq. Dropping the handle stops the process.
pub struct Dnsmasq {
    spec: DnsmasqSpec,
    tx: mpsc::UnboundedSender<Cmd>,
    pid: Arc<AtomicU32>,
}

impl Dnsmasq {
    /// Kills a leftover from a previous run, starts dnsmasq and its
    /// supervision task.
    pub async fn start(spec: DnsmasqSpec) -> Result<Self> {
        std::fs::create_dir_all(&spec.dir)?;
        kill_leftover(&spec.dir).await;
        let child = spawn(&spec)?;
        let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(supervise(spec.clone(), child, rx, pid.clone()));
        Ok(Self { spec, tx, pid })
    }

    pub fn spec(&self) -> &DnsmasqSpec {
        &self.spec
    }

    /// The PID of the current process (0 between a crash and its restart).
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// Asks dnsmasq to re-read its hosts file (SIGHUP).
    pub fn reload(&self) {
        let _ = self.tx.send(Cmd::Reload);
    }

    /// Stops dnsmasq and waits until it has exited.
    pub async fn stop(self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Cmd::Stop(ack)).is_ok() {
            let _ = done.await;
        }
        let _ = std::fs::remove_file(pid_path(&self.spec.dir));
    }
}

fn spawn(spec: &DnsmasqSpec) -> Result<Child> {
    let child = netns::command(&spec.namespace, "dnsmasq")
        .args(&spec.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| AgentError::Command {
            cmd: "dnsmasq".into(),
            detail: e.to_string(),
        })?;
    // `ip netns exec` execs dnsmasq, so this is dnsmasq's PID. Written here
    // too (dnsmasq writes the same file) so that it exists at once.
    if let Some(pid) = child.id() {
        let _ = std::fs::write(pid_path(&spec.dir), format!("{pid}\n"));
    }
    Ok(child)
}

/// Sends SIGHUP once dnsmasq catches it: a process that has just been
/// spawned (`ip netns exec`, or dnsmasq before it set its handlers up) dies
/// of a SIGHUP instead of re-reading its hosts file. It reads the file when
/// it starts anyway, so waiting loses no change; after 5 s it is sent
/// regardless (at worst the supervisor restarts dnsmasq, which re-reads it).
async fn hup_when_ready(pid: i32) {
    for _ in 0..100 {
        if catches_sighup(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGHUP);
}

/// Whether the process has a handler for SIGHUP (`SigCgt` in
/// /proc/PID/status: a hex mask in which signal N is bit N-1).
fn catches_sighup(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & 1 == 1)
}

/// Sends SIGTERM, then SIGKILL if the process has not gone in 5 s.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

async fn supervise(
    spec: DnsmasqSpec,
    mut child: Child,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    pid: Arc<AtomicU32>,
) {
    loop {
        tokio::select! {
            status = child.wait() => {
                pid.store(0, Ordering::SeqCst);
                tracing::warn!(namespace = %spec.namespace, ?status, "dnsmasq exited; restarting");
                // A pause so a dnsmasq that cannot start does not spin.
                tokio::time::sleep(Duration::from_millis(500)).await;
                match spawn(&spec) {
                    Ok(c) => {
                        pid.store(c.id().unwrap_or(0), Ordering::SeqCst);
                        child = c;
                    }
                    Err(e) => {
                        // The exited child's wait() returns at once on the
                        // next turn, which retries after this pause.
                        tracing::error!(namespace = %spec.namespace, error = %e, "dnsmasq restart failed");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
            }
            cmd = rx.recv() => match cmd {
                Some(Cmd::Reload) => {
                    if let Some(p) = child.id().and_then(|p| i32::try_from(p).ok()) {
                        hup_when_ready(p).await;
                    }
                }
                Some(Cmd::Stop(ack)) => {
                    terminate(&mut child).await;
                    pid.store(0, Ordering::SeqCst);
                    let _ = ack.send(());
                    return;
                }
                None => {
                    terminate(&mut child).await;
                    return;
                }
            }
        }
    }
}

/// Kills a dnsmasq left by a previous run of the agent for this directory:
/// the PID must come from our pid file and its command line must name our
/// hosts file, so an unrelated process that reused the PID is never touched.
async fn kill_leftover(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(pid_path(dir)) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    if pid <= 1 {
        return;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let cmdline = String::from_utf8_lossy(&cmdline);
    let marker = hosts_path(dir).display().to_string();
    if !(cmdline.contains("dnsmasq") && cmdline.contains(&marker)) {
        return;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    for _ in 0..50 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{FixedIp, HostRoute, SubnetInfo};
    use stratus_common::ids::{NetworkId, PortId, SubnetId};

    fn port(net: NetworkId, subnet: SubnetId, mac: &str, ip: &str, owner: &str) -> PortInfo {
        PortInfo {
            id: PortId::new(),
            network_id: net,
            mac_address: mac.into(),
            fixed_ips: vec![FixedIp {
                subnet_id: subnet,
                ip_address: ip.parse().expect("ip"),
            }],
            device_owner: owner.into(),
            device_id: "d".into(),
            project_id: "p".into(),
            admin_state_up: true,
            host: None,
            security_group_ids: vec![],
        }
    }

    fn network() -> (NetworkInfo, PortInfo) {
        let id = NetworkId::new();
        let sid = SubnetId::new();
        let dhcp = port(id, sid, "fa:16:3e:00:00:02", "10.0.0.2", DEVICE_OWNER_DHCP);
        let vm = port(id, sid, "FA:16:3E:00:00:05", "10.0.0.5", "compute:nova");
        let net = NetworkInfo {
            id,
            project_id: "p".into(),
            mtu: 1450,
            subnets: vec![SubnetInfo {
                id: sid,
                cidr: "10.0.0.0/24".parse().expect("cidr"),
                gateway_ip: Some("10.0.0.1".parse().expect("ip")),
                enable_dhcp: true,
                dns_nameservers: vec!["192.0.2.53".parse().expect("ip")],
                host_routes: vec![HostRoute {
                    destination: "192.0.2.0/24".parse().expect("net"),
                    nexthop: "10.0.0.254".parse().expect("ip"),
                }],
                ip_version: 4,
            }],
            ports: vec![dhcp.clone(), vm],
        };
        (net, dhcp)
    }

    #[test]
    fn hosts_file_lists_guest_ports_not_the_dhcp_port() {
        let (net, _) = network();
        assert_eq!(
            hosts_file(&net),
            "fa:16:3e:00:00:05,host-10-0-0-5,10.0.0.5\n"
        );
    }

    #[test]
    fn args_carry_static_range_routes_router_and_dns() {
        let (net, dhcp) = network();
        let a = dnsmasq_args(&net, "ns-x", &dhcp, Path::new("/st/n"));
        assert!(
            a.contains(&"--dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.0,86400s".to_owned())
        );
        assert!(a.contains(&"--interface=ns-x".to_owned()));
        assert!(a.contains(&"--dhcp-hostsfile=/st/n/host".to_owned()));
        assert!(a.contains(&"--dhcp-option=tag:subnet0,option:router,10.0.0.1".to_owned()));
        assert!(a.contains(
            &"--dhcp-option-force=tag:subnet0,option:classless-static-route,169.254.169.254/32,10.0.0.2,192.0.2.0/24,10.0.0.254,0.0.0.0/0,10.0.0.1"
                .to_owned()
        ));
        assert!(a.contains(&"--dhcp-option=tag:subnet0,option:dns-server,192.0.2.53".to_owned()));
        assert!(a.contains(&"--dhcp-option-force=option:mtu,1450".to_owned()));
    }

    #[test]
    fn a_sighup_handler_is_seen_in_proc() {
        let mut plain = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let mut trapping = std::process::Command::new("bash")
            .args(["-c", "trap 'echo hup' HUP; while :; do sleep 0.05; done"])
            .spawn()
            .expect("bash");
        let pid = |c: &std::process::Child| i32::try_from(c.id()).expect("pid");
        let mut caught = false;
        for _ in 0..100 {
            caught = catches_sighup(pid(&trapping));
            if caught {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let plain_catches = catches_sighup(pid(&plain));
        let _ = plain.kill();
        let _ = trapping.kill();
        let _ = plain.wait();
        let _ = trapping.wait();
        assert!(caught, "bash with a HUP trap catches SIGHUP");
        assert!(!plain_catches, "sleep does not");
        assert!(!catches_sighup(-1));
    }

    #[test]
    fn no_dhcp_subnet_means_no_server() {
        let (mut net, _) = network();
        net.subnets[0].enable_dhcp = false;
        assert!(!wants_dhcp(&net));
        assert_eq!(hosts_file(&net), "");
    }
}
