//! Seed steps 21–22: the compute host asks the Ceph monitors for the
//! cluster's service map (one of the cluster maps the monitors keep) and
//! takes the radosgw endpoints to read image objects from out of it, as a
//! Ceph client learns where the daemons are from the monitors rather than
//! from its own configuration. Steps 23–25 are then the S3 GET to one of
//! those endpoints ([`crate::source::fetch_s3`]).
//!
//! The monitors are asked through the `ceph` CLI (Debian's ceph-common) with
//! the host's ceph.conf and client key: the monitor protocol has no
//! maintained Rust crate (notes/ceph.md). The answer is kept for
//! `map_ttl_secs` and asked again sooner when an endpoint stops answering.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::CephConfig;

/// How long one question to the monitors may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(20);

/// The radosgw endpoints of the cluster, from the monitors' service map.
pub struct RgwDirectory {
    cfg: CephConfig,
    known: Mutex<Option<(Instant, Vec<String>)>>,
}

impl RgwDirectory {
    pub fn new(cfg: CephConfig) -> Self {
        Self {
            cfg,
            known: Mutex::new(None),
        }
    }

    /// The endpoints (`http://host:port`), from the last answer while it is
    /// fresh and `refresh` is false, else from the monitors now.
    pub async fn endpoints(&self, refresh: bool) -> Result<Vec<String>, String> {
        let mut known = self.known.lock().await;
        let ttl = Duration::from_secs(self.cfg.map_ttl_secs);
        if let Some((at, endpoints)) = known.as_ref() {
            if !refresh && at.elapsed() < ttl {
                return Ok(endpoints.clone());
            }
        }
        let map = self.service_map().await?;
        let endpoints = rgw_endpoints(&map);
        if endpoints.is_empty() {
            return Err("the Ceph service map lists no radosgw".to_owned());
        }
        tracing::info!(?endpoints, "radosgw endpoints from the Ceph monitors");
        *known = Some((Instant::now(), endpoints.clone()));
        Ok(endpoints)
    }

    /// `ceph service dump --format json`, answered by the monitors.
    async fn service_map(&self) -> Result<Value, String> {
        let mut cmd = tokio::process::Command::new("ceph");
        cmd.arg("--conf").arg(&self.cfg.conf);
        if !self.cfg.name.is_empty() {
            cmd.arg("--name").arg(&self.cfg.name);
        }
        if !self.cfg.keyring.is_empty() {
            cmd.arg("--keyring").arg(Path::new(&self.cfg.keyring));
        }
        cmd.args([
            "--connect-timeout",
            "10",
            "service",
            "dump",
            "--format",
            "json",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true);
        let out = tokio::time::timeout(ASK_TIMEOUT, cmd.output())
            .await
            .map_err(|_| "the Ceph monitors did not answer in time".to_owned())?
            .map_err(|e| format!("cannot run ceph (ceph-common): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ceph service dump: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("ceph service dump: {e}"))
    }
}

/// The radosgw endpoints a service map names, sorted and without repeats.
/// Each daemon's `frontend_config#N` is read as radosgw writes it:
/// `beast endpoint=127.0.0.1:7480`, `beast port=7480 ssl_port=7443`,
/// `civetweb port=7480s`; a bare port is reached at the daemon's address.
pub fn rgw_endpoints(map: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(daemons) = map["services"]["rgw"]["daemons"].as_object() else {
        return out;
    };
    for daemon in daemons.values().filter(|d| d.is_object()) {
        let host = daemon_host(daemon);
        let Some(meta) = daemon["metadata"].as_object() else {
            continue;
        };
        for (key, config) in meta {
            if !key.starts_with("frontend_config#") {
                continue;
            }
            let Some(config) = config.as_str() else {
                continue;
            };
            out.extend(frontend_endpoints(config, host.as_deref()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The IP of the daemon's `addr` (`127.0.0.1:0/3636417235`), else its
/// hostname.
fn daemon_host(daemon: &Value) -> Option<String> {
    let from_addr = daemon["addr"]
        .as_str()
        .and_then(|a| {
            a.rsplit_once(':')
                .map(|(ip, _)| ip.trim_matches(['[', ']']))
        })
        .filter(|ip| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| !ip.is_unspecified())
        })
        .map(str::to_owned);
    from_addr.or_else(|| daemon["metadata"]["hostname"].as_str().map(str::to_owned))
}

fn frontend_endpoints(config: &str, host: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for option in config.split_whitespace().skip(1) {
        let Some((key, value)) = option.split_once('=') else {
            continue;
        };
        let (scheme, address) = match key {
            "endpoint" => ("http", value.to_owned()),
            "ssl_endpoint" => ("https", value.to_owned()),
            "port" | "ssl_port" => {
                let Some(host) = host else { continue };
                // civetweb marks TLS ports with a trailing `s`.
                let (port, tls) = match value.strip_suffix('s') {
                    Some(p) => (p, true),
                    None => (value, key == "ssl_port"),
                };
                let scheme = if tls { "https" } else { "http" };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                (scheme, format!("{host}:{port}"))
            }
            _ => continue,
        };
        // An endpoint on every address is reached on the daemon's.
        let address = match (address.strip_prefix("0.0.0.0:"), host) {
            (Some(port), Some(host)) => format!("{host}:{port}"),
            _ => address,
        };
        out.push(format!("{scheme}://{address}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn endpoints_come_from_each_rgw_frontend() {
        let map = json!({"epoch": 4, "services": {"rgw": {"daemons": {
            "summary": "",
            "4133": {"addr": "127.0.0.1:0/3636417235", "metadata": {
                "frontend_config#0": "beast endpoint=127.0.0.1:7480",
                "frontend_type#0": "beast", "hostname": "vm"}},
            "4200": {"addr": "10.0.0.5:0/1", "metadata": {
                "frontend_config#0": "beast port=8080 ssl_port=8443",
                "hostname": "rgw2"}},
            "4300": {"addr": "0.0.0.0:0/1", "metadata": {
                "frontend_config#0": "civetweb port=7481s", "hostname": "rgw3"}},
            "4400": {"addr": "10.0.0.7:0/1", "metadata": {
                "frontend_config#0": "beast endpoint=0.0.0.0:7490"}}
        }}}});
        assert_eq!(
            rgw_endpoints(&map),
            [
                "http://10.0.0.5:8080",
                "http://10.0.0.7:7490",
                "http://127.0.0.1:7480",
                "https://10.0.0.5:8443",
                "https://rgw3:7481",
            ]
        );
    }

    #[test]
    fn a_map_without_radosgw_names_none() {
        assert!(rgw_endpoints(&json!({"services": {}})).is_empty());
        assert!(
            rgw_endpoints(&json!({"services": {"rgw": {"daemons": {"summary": ""}}}})).is_empty()
        );
        assert!(rgw_endpoints(&json!("garbage")).is_empty());
    }
}
