//! `stratus bench`: measurements against a real cloud over loopback.
//!
//! - [`identity`]: token issue and validation throughput and latency;
//! - [`up`]: time from start to ready, and idle memory, of `stratus up`;
//! - [`compute`], [`image`], [`network`], [`volume`]: the services' own benchmarks
//!   (`stratus_compute::bench`, ...), which build what they measure on
//!   throwaway state in this process.
//!
//! A cloud the bench starts itself is a child `stratus up` on free loopback
//! ports in a temporary data dir ([`ChildCloud`]); it is stopped by its PID
//! when the bench ends.

pub mod compare;
pub mod compute;
pub mod identity;
pub mod image;
pub mod network;
pub mod up;
pub mod volume;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use stratus_common::config::ServiceKind;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The prefix of the line `stratus up` prints when every API is ready.
pub const READY_PREFIX: &str = "stratus ready in ";

/// How long a child cloud may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Free loopback ports for every API of a cloud (all held at once while
/// choosing, so they are distinct).
pub fn free_ports() -> anyhow::Result<Vec<(ServiceKind, u16)>> {
    let mut held = Vec::new();
    for kind in ServiceKind::ALL {
        let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        held.push((kind, l));
    }
    held.into_iter()
        .map(|(k, l)| Ok((k, l.local_addr()?.port())))
        .collect()
}

/// The environment variable that sets a kind's port.
pub fn port_env(kind: ServiceKind) -> String {
    let key = match kind {
        ServiceKind::Identity => "IDENTITY",
        ServiceKind::Compute => "COMPUTE",
        ServiceKind::Metadata => "METADATA",
        ServiceKind::Image => "IMAGE",
        ServiceKind::Network => "NETWORK",
        ServiceKind::Volume => "VOLUME",
    };
    format!("STRATUS_ENDPOINTS__{key}_PORT")
}

/// A `stratus up` started by the bench.
pub struct ChildCloud {
    child: Child,
    pub pid: u32,
    pub dir: PathBuf,
    pub identity_port: u16,
    /// From spawn to the ready line, as the parent saw it.
    pub ready_after: Duration,
}

impl ChildCloud {
    /// Starts `stratus up --data-dir dir` on free ports; returns once it
    /// printed its ready line. Its logs go to `dir/stratus.log`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the stratus binary")?;
        crate::secrets::ensure_data_dir(dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stratus.log"))
            .context("opening the child's log")?;
        let ports = free_ports()?;
        let mut cmd = Command::new(exe);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut identity_port = 0;
        for (kind, port) in &ports {
            cmd.env(port_env(*kind), port.to_string());
            if *kind == ServiceKind::Identity {
                identity_port = *port;
            }
        }
        let t0 = Instant::now();
        let mut child = cmd.spawn().context("starting stratus up")?;
        let pid = child.id().context("the child has no pid")?;
        let stdout = child.stdout.take().context("the child has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with(READY_PREFIX) {
                    return Ok(true);
                }
            }
            Ok::<_, std::io::Error>(false)
        })
        .await;
        let ready_after = t0.elapsed();
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!(
                "stratus up exited before it was ready; see {}",
                dir.join("stratus.log").display()
            ),
            Ok(Err(e)) => return Err(e).context("reading stratus up's output"),
            Err(_) => bail!("stratus up was not ready within {READY_TIMEOUT:?}"),
        }
        // Keep draining stdout so that the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            dir: dir.to_owned(),
            identity_port,
            ready_after,
        })
    }

    pub fn identity_url(&self) -> String {
        format!("http://127.0.0.1:{}/v3", self.identity_port)
    }

    /// The admin password `stratus up` kept in its data dir.
    pub fn admin_password(&self) -> anyhow::Result<String> {
        let path = self.dir.join(crate::secrets::ADMIN_PASSWORD_FILE);
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned())
    }

    /// Resident memory of the child (`VmRSS` in `/proc/<pid>/status`), KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .context("reading the child's /proc status")?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS in /proc/{}/status", self.pid))
    }

    /// Stops the child with SIGTERM (a clean stop), then SIGKILL after 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let term = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if term.is_ok() {
            if let Ok(status) =
                tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await
            {
                status.context("waiting for stratus up")?;
                return Ok(());
            }
        }
        self.child.kill().await.context("killing stratus up")
    }
}

/// Latency figures of one measurement.
pub struct Stats {
    pub count: usize,
    pub errors: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Stats {
    /// From per-request latencies (successful ones) and the wall time.
    pub fn from(mut latencies: Vec<Duration>, errors: usize, wall: Duration) -> Self {
        latencies.sort();
        Self {
            count: latencies.len(),
            errors,
            wall,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
        }
    }

    pub fn per_second(&self) -> f64 {
        if self.wall.is_zero() {
            return 0.0;
        }
        self.count as f64 / self.wall.as_secs_f64()
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        let one = [Duration::from_millis(7)];
        assert_eq!(percentile(&one, 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    #[test]
    fn every_kind_gets_a_distinct_port() {
        let ports = free_ports().expect("ports");
        let mut p: Vec<u16> = ports.iter().map(|(_, p)| *p).collect();
        p.sort_unstable();
        p.dedup();
        assert_eq!(p.len(), ServiceKind::ALL.len());
        assert_eq!(
            port_env(ServiceKind::Identity),
            "STRATUS_ENDPOINTS__IDENTITY_PORT"
        );
    }
}
