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
//!
//! Leases outlive ports: with static ranges dnsmasq refuses an address to a
//! new MAC while another MAC's lease on it lasts, so a deleted port's
//! address given at once to a new port would not be served for a day. As
//! Neutron's DHCP agent does, the leases the new hosts file no longer backs
//! are released from a running dnsmasq ([`release_leases`], with
//! `dhcp_release`) before it re-reads the file, and dropped from the lease
//! file before a dnsmasq starts ([`prune_leases`]), when nothing else
//! writes it.

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

use crate::dataplane::{cmd, netns};
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

/// dnsmasq's lease file (`--dhcp-leasefile`).
pub fn leases_path(dir: &Path) -> PathBuf {
    dir.join("leases")
}

/// One address given to one MAC: a line of the hosts file or a lease.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostEntry {
    pub ip: IpAddr,
    /// Lower case, as dnsmasq writes it.
    pub mac: String,
}

impl HostEntry {
    fn new(ip: IpAddr, mac: &str) -> Self {
        Self {
            ip,
            mac: mac.to_ascii_lowercase(),
        }
    }
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
        format!("--dhcp-leasefile={}", leases_path(dir).display()),
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

/// What the hosts file gives: every address of every port on a
/// DHCP-enabled IPv4 subnet (the DHCP port itself excluded), by port id.
pub fn host_entries(net: &NetworkInfo) -> Vec<HostEntry> {
    let mut ports: Vec<&PortInfo> = net
        .ports
        .iter()
        .filter(|p| p.device_owner != DEVICE_OWNER_DHCP)
        .collect();
    ports.sort_by_key(|p| p.id);
    let mut out = Vec::new();
    for p in ports {
        for f in &p.fixed_ips {
            let on_dhcp = dhcp_subnets(net).any(|(_, s)| s.id == f.subnet_id);
            if on_dhcp && f.ip_address.is_ipv4() {
                out.push(HostEntry::new(f.ip_address, &p.mac_address));
            }
        }
    }
    out
}

/// The hosts file: one `MAC,host-<ip-dashed>,IP` line per [`host_entries`].
pub fn hosts_file(net: &NetworkInfo) -> String {
    let mut out = String::new();
    for e in host_entries(net) {
        let dashed = e.ip.to_string().replace('.', "-");
        let _ = writeln!(out, "{},host-{dashed},{}", e.mac, e.ip);
    }
    out
}

/// The entries of a hosts file as [`hosts_file`] writes it (MAC first,
/// address last); other lines are skipped.
pub fn parse_hosts_file(text: &str) -> Vec<HostEntry> {
    text.lines()
        .filter_map(|l| {
            let mut fields = l.trim().split(',');
            let mac = fields.next()?;
            let ip = fields.next_back()?.parse().ok()?;
            Some(HostEntry::new(ip, mac))
        })
        .collect()
}

/// The IPv4 leases of a dnsmasq lease file, whose lines are `expiry MAC
/// address hostname client-id` (IPv6 leases and the `duid` line differ).
pub fn parse_leases(text: &str) -> Vec<HostEntry> {
    text.lines().filter_map(lease_of).collect()
}

fn lease_of(line: &str) -> Option<HostEntry> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let [_, mac, ip, _, _] = f.as_slice() else {
        return None;
    };
    match ip.parse::<IpAddr>() {
        Ok(ip @ IpAddr::V4(_)) => Some(HostEntry::new(ip, mac)),
        _ => None,
    }
}

/// The leases dnsmasq must forget when the hosts file changes from
/// `old_hosts` to `new_hosts`: every entry of the old file or of the lease
/// file (`leases`, which also holds those a failed release left) whose
/// address and MAC pair the new file no longer has, as Neutron's
/// `_release_unused_leases` computes it. Sorted, each once.
pub fn leases_to_release(
    old_hosts: &[HostEntry],
    leases: &[HostEntry],
    new_hosts: &[HostEntry],
) -> Vec<HostEntry> {
    let keep: std::collections::HashSet<&HostEntry> = new_hosts.iter().collect();
    let stale: std::collections::BTreeSet<HostEntry> = old_hosts
        .iter()
        .chain(leases)
        .filter(|e| !keep.contains(e))
        .cloned()
        .collect();
    stale.into_iter().collect()
}

/// The lease file without the IPv4 leases `hosts` does not back; every
/// other line (the `duid` line, IPv6 leases) is kept as it is.
pub fn prune_leases(text: &str, hosts: &[HostEntry]) -> String {
    let keep: std::collections::HashSet<&HostEntry> = hosts.iter().collect();
    let mut out = String::new();
    for line in text.lines() {
        if lease_of(line).is_some_and(|e| !keep.contains(&e)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The program that sends dnsmasq a DHCPRELEASE (Debian's dnsmasq-utils).
pub const DHCP_RELEASE: &str = "dhcp_release";

/// Whether `program` is an executable file on `PATH`.
pub fn program_on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Makes the network's running dnsmasq forget each of `stale`: `ip netns
/// exec NS dhcp_release DEV IP MAC`, which hands dnsmasq a DHCPRELEASE as
/// if from that client on `interface`. Never fails: a lease left behind
/// only keeps its address from a new MAC until it expires, so a missing
/// `dhcp_release` or a failed release is logged and the sync goes on.
pub async fn release_leases(namespace: &str, interface: &str, stale: &[HostEntry]) {
    if stale.is_empty() {
        return;
    }
    if !program_on_path(DHCP_RELEASE) {
        tracing::warn!(
            namespace,
            leases = stale.len(),
            "{DHCP_RELEASE} is not installed (Debian package dnsmasq-utils): \
             stale DHCP leases stay until they expire"
        );
        return;
    }
    for e in stale {
        let ip = e.ip.to_string();
        let args = [
            "netns",
            "exec",
            namespace,
            DHCP_RELEASE,
            interface,
            &ip,
            &e.mac,
        ];
        match cmd::run("ip", &args).await {
            Ok(_) => {
                tracing::info!(namespace, ip = %e.ip, mac = %e.mac, "released a stale DHCP lease")
            }
            Err(err) => tracing::warn!(namespace, ip = %e.ip, mac = %e.mac, error = %err,
                "cannot release a stale DHCP lease; it stays until it expires"),
        }
    }
}

/// Before a dnsmasq starts (none runs for `dir`, so the lease file is
/// ours): drops the leases its hosts file does not back, which it would
/// otherwise load and keep. Errors are logged: a stale lease is not worth
/// failing the start for.
fn prune_lease_file(dir: &Path) {
    let Ok(leases) = std::fs::read_to_string(leases_path(dir)) else {
        return;
    };
    let hosts = parse_hosts_file(&std::fs::read_to_string(hosts_path(dir)).unwrap_or_default());
    let pruned = prune_leases(&leases, &hosts);
    if pruned != leases {
        if let Err(e) = write_atomic(&leases_path(dir), &pruned) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot drop stale DHCP leases");
        }
    }
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
    prune_lease_file(&spec.dir);
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

    fn entry(ip: &str, mac: &str) -> HostEntry {
        HostEntry::new(ip.parse().expect("ip"), mac)
    }

    #[test]
    fn the_hosts_file_reads_back_as_its_entries() {
        let (net, _) = network();
        let entries = host_entries(&net);
        assert_eq!(entries, vec![entry("10.0.0.5", "fa:16:3e:00:00:05")]);
        assert_eq!(parse_hosts_file(&hosts_file(&net)), entries);
        assert_eq!(parse_hosts_file("garbage\n\n"), vec![]);
    }

    #[test]
    fn leases_are_read_from_dnsmasqs_lease_file() {
        let text = "1700000000 fa:16:3e:00:00:05 10.0.0.5 host-10-0-0-5 01:fa:16:3e:00:00:05\n\
                    duid 00:01:00:01:2c:5f:aa:bb:fa:16:3e:00:00:02\n\
                    1700000000 1234 fd00::5 * 00:01:00:01\n\
                    1700000000 FA:16:3E:00:00:06 10.0.0.6 * *\n";
        assert_eq!(
            parse_leases(text),
            vec![
                entry("10.0.0.5", "fa:16:3e:00:00:05"),
                entry("10.0.0.6", "fa:16:3e:00:00:06")
            ]
        );
    }

    #[test]
    fn leases_to_release_are_those_the_new_hosts_file_does_not_back() {
        let a5 = || entry("10.0.0.5", "fa:16:3e:00:00:05");
        let a7 = || entry("10.0.0.7", "fa:16:3e:00:00:07");
        // Nothing changed: nothing to release.
        assert_eq!(leases_to_release(&[a5()], &[a5()], &[a5()]), vec![]);
        // The port is deleted.
        assert_eq!(
            leases_to_release(&[a5(), a7()], &[a5()], &[a7()]),
            vec![a5()]
        );
        // Its address goes at once to a new port with another MAC.
        let b5 = || entry("10.0.0.5", "fa:16:3e:00:00:0b");
        assert_eq!(leases_to_release(&[a5()], &[a5()], &[b5()]), vec![a5()]);
        // The port moves to another address.
        let a6 = entry("10.0.0.6", "fa:16:3e:00:00:05");
        assert_eq!(leases_to_release(&[a5()], &[], &[a6]), vec![a5()]);
        // A lease no hosts file backs (a release failed before): released,
        // once even when both files name it.
        assert_eq!(
            leases_to_release(&[a5()], &[a5(), a7()], &[b5()]),
            vec![a5(), a7()]
        );
        // MACs compare in lower case, as dnsmasq writes them.
        let upper = parse_leases("1 FA:16:3E:00:00:05 10.0.0.5 * *");
        assert_eq!(upper, vec![a5()]);
        assert_eq!(leases_to_release(&[], &upper, &[a5()]), vec![]);
    }

    #[test]
    fn pruning_keeps_backed_leases_and_other_lines() {
        let text = "1 fa:16:3e:00:00:05 10.0.0.5 * *\n\
                    duid 00:01\n\
                    1 fa:16:3e:00:00:06 10.0.0.6 * *\n\
                    1 1234 fd00::5 * 00:01\n";
        let hosts = [entry("10.0.0.6", "fa:16:3e:00:00:06")];
        assert_eq!(
            prune_leases(text, &hosts),
            "duid 00:01\n1 fa:16:3e:00:00:06 10.0.0.6 * *\n1 1234 fd00::5 * 00:01\n"
        );
        assert_eq!(prune_leases("", &hosts), "");
    }

    #[test]
    fn programs_are_found_on_path() {
        assert!(program_on_path("sh"));
        assert!(!program_on_path("no-such-program-for-stratus"));
    }

    #[test]
    fn no_dhcp_subnet_means_no_server() {
        let (mut net, _) = network();
        net.subnets[0].enable_dhcp = false;
        assert!(!wants_dhcp(&net));
        assert_eq!(hosts_file(&net), "");
    }
}
