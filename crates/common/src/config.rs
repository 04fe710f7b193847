//! Configuration: one TOML file (`stratus.toml`), every key optional, with
//! environment overrides `STRATUS_<SECTION>__<KEY>=value` (for example
//! `STRATUS_DATABASE__URL=postgres://...` or `STRATUS_IDENTITY__PORT=15000`).
//!
//! The shared keys are typed here. Each service owns the shape of its own
//! section (`[identity]`, `[compute]`, ...) and reads it with
//! [`Config::section`], so that a service's settings live beside its code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where every service keeps its state (SQLite files, keys, images, ...).
    pub data_dir: PathBuf,
    /// Address the APIs bind to.
    pub bind_host: String,
    /// Host name or address put in the service catalog and clouds.yaml.
    pub public_host: String,
    pub region: String,
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    /// Credentials services use to talk to identity and to each other.
    pub service_user: ServiceUserConfig,
    /// Where each API listens and how others reach it.
    pub endpoints: EndpointsConfig,
    /// Per-service sections, read by each service with [`Config::section`].
    #[serde(flatten)]
    pub sections: BTreeMap<String, toml::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty: one SQLite file per service under the data dir.
    /// `postgres://...`: one schema per service in that database.
    pub url: String,
    pub max_connections: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BusTransport {
    /// In-process channels: every service must run in this process.
    #[default]
    Memory,
    /// RabbitMQ over AMQP 0-9-1.
    Amqp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    pub transport: BusTransport,
    pub url: String,
    /// How long a bus `call` waits for its reply.
    pub call_timeout_secs: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            transport: BusTransport::Memory,
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            call_timeout_secs: 60,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceUserConfig {
    pub name: String,
    /// Empty: generated at bootstrap and kept in the data dir.
    pub password: String,
    pub project: String,
    /// Identity URL that services use (`http://host:5000/v3`); empty means
    /// the local identity service.
    pub auth_url: String,
}

impl Default for ServiceUserConfig {
    fn default() -> Self {
        Self {
            name: "stratus".to_owned(),
            password: String::new(),
            project: "service".to_owned(),
            auth_url: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            bind_host: "127.0.0.1".to_owned(),
            public_host: "127.0.0.1".to_owned(),
            region: "RegionOne".to_owned(),
            database: DatabaseConfig::default(),
            bus: BusConfig::default(),
            service_user: ServiceUserConfig::default(),
            endpoints: EndpointsConfig::default(),
            sections: BTreeMap::new(),
        }
    }
}

/// The APIs of a cloud, by OpenStack service type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    Identity,
    Compute,
    Metadata,
    Image,
    Network,
    Volume,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 6] = [
        Self::Identity,
        Self::Compute,
        Self::Metadata,
        Self::Image,
        Self::Network,
        Self::Volume,
    ];

    /// The path the catalog URL adds to `http://host:port`.
    fn catalog_suffix(self) -> &'static str {
        match self {
            Self::Identity => "/v3",
            Self::Compute => "/v2.1",
            Self::Volume => "/v3/$(project_id)s",
            Self::Metadata | Self::Image | Self::Network => "",
        }
    }
}

/// Ports the APIs listen on (OpenStack's usual ones by default) and, for a
/// distributed deployment, the base URL by which other hosts reach each API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointsConfig {
    pub identity_port: u16,
    pub compute_port: u16,
    pub metadata_port: u16,
    pub image_port: u16,
    pub network_port: u16,
    pub volume_port: u16,
    /// `http://host:port` overrides, keyed `identity`, `compute`, `metadata`,
    /// `image`, `network`, `volume`.
    pub urls: BTreeMap<String, String>,
}

impl Default for EndpointsConfig {
    fn default() -> Self {
        Self {
            identity_port: 5000,
            compute_port: 8774,
            metadata_port: 8775,
            image_port: 9292,
            network_port: 9696,
            volume_port: 8776,
            urls: BTreeMap::new(),
        }
    }
}

impl EndpointsConfig {
    pub fn port(&self, kind: ServiceKind) -> u16 {
        match kind {
            ServiceKind::Identity => self.identity_port,
            ServiceKind::Compute => self.compute_port,
            ServiceKind::Metadata => self.metadata_port,
            ServiceKind::Image => self.image_port,
            ServiceKind::Network => self.network_port,
            ServiceKind::Volume => self.volume_port,
        }
    }
}

fn kind_key(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Identity => "identity",
        ServiceKind::Compute => "compute",
        ServiceKind::Metadata => "metadata",
        ServiceKind::Image => "image",
        ServiceKind::Network => "network",
        ServiceKind::Volume => "volume",
    }
}

impl Config {
    /// `http://host:port` of an API, as other services and clients reach it.
    pub fn base_url(&self, kind: ServiceKind) -> String {
        match self.endpoints.urls.get(kind_key(kind)) {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}:{}", self.public_host, self.endpoints.port(kind)),
        }
    }

    /// The URL registered in the service catalog (identity adds `/v3`,
    /// compute `/v2.1`, volume `/v3/$(project_id)s`).
    pub fn catalog_url(&self, kind: ServiceKind) -> String {
        format!("{}{}", self.base_url(kind), kind.catalog_suffix())
    }

    /// The identity v3 URL services authenticate against.
    pub fn identity_url(&self) -> String {
        if self.service_user.auth_url.is_empty() {
            self.catalog_url(ServiceKind::Identity)
        } else {
            self.service_user.auth_url.trim_end_matches('/').to_owned()
        }
    }

    /// `bind_host:port` an API listens on.
    pub fn bind_addr(&self, kind: ServiceKind) -> String {
        format!("{}:{}", self.bind_host, self.endpoints.port(kind))
    }
}

/// `$STRATUS_DATA_DIR`, else `$XDG_DATA_HOME/stratus`, else `~/.local/share/stratus`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STRATUS_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("stratus");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/stratus"),
        None => PathBuf::from("/var/lib/stratus"),
    }
}

const ENV_PREFIX: &str = "STRATUS_";

impl Config {
    /// Reads the file if given (a missing default file is fine), then applies
    /// the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_toml_and_env(&text, std::env::vars())
    }

    pub fn from_toml_and_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        for (key, value) in env {
            let Some(path) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if parts.iter().any(|p| p.is_empty()) {
                continue;
            }
            set_path(&mut table, &parts, env_value(&value))?;
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))
    }

    /// A service's own section, with its defaults for every missing key.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        match self.sections.get(name) {
            None => Ok(T::default()),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid(format!("[{name}]: {e}"))),
        }
    }

    /// Replaces a service's section (used by `stratus up` and tests).
    pub fn set_section<T: Serialize>(&mut self, name: &str, value: &T) -> Result<(), ConfigError> {
        let v = toml::Value::try_from(value).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.sections.insert(name.to_owned(), v);
        Ok(())
    }
}

/// An environment value is read as a TOML value when it parses as one
/// (numbers, booleans, arrays), else as a plain string.
fn env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(
    table: &mut toml::Table,
    parts: &[String],
    value: toml::Value,
) -> Result<(), ConfigError> {
    let (last, dirs) = match parts.split_last() {
        Some(x) => x,
        None => return Ok(()),
    };
    let mut cur = table;
    for d in dirs {
        let entry = cur
            .entry(d.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(ConfigError::Invalid(format!("{d} is not a section"))),
        };
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Demo {
        port: u16,
        name: String,
    }

    #[test]
    fn empty_config_has_defaults() {
        let c = Config::from_toml_and_env("", Vec::new()).expect("config");
        assert_eq!(c.bus.transport, BusTransport::Memory);
        assert_eq!(c.region, "RegionOne");
        assert!(c.database.url.is_empty());
    }

    #[test]
    fn env_overrides_file() {
        let c = Config::from_toml_and_env(
            "[database]\nurl = \"x\"\n[demo]\nport = 1\n",
            vec![
                ("STRATUS_DATABASE__URL".into(), "postgres://h/db".into()),
                ("STRATUS_DEMO__PORT".into(), "15000".into()),
                ("STRATUS_DEMO__NAME".into(), "a b".into()),
                ("STRATUS_BUS__TRANSPORT".into(), "amqp".into()),
                ("OTHER".into(), "ignored".into()),
            ],
        )
        .expect("config");
        assert_eq!(c.database.url, "postgres://h/db");
        assert_eq!(c.bus.transport, BusTransport::Amqp);
        let d: Demo = c.section("demo").expect("section");
        assert_eq!(
            d,
            Demo {
                port: 15000,
                name: "a b".into()
            }
        );
    }

    #[test]
    fn unknown_shared_keys_are_rejected() {
        assert!(Config::from_toml_and_env("[database]\nurll = 1\n", Vec::new()).is_err());
        assert!(Config::from_toml_and_env("nonsense = [", Vec::new()).is_err());
    }
}
