//! A small HTTP client for the network API, for compute: look up a
//! network, create/bind/delete/list a server's ports. Every call takes the
//! token to send (the user's, or the service user's for binding, which is
//! admin-only).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use stratus_common::ids::{NetworkId, PortId};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neutron answered with an error body.
    #[error("network API {status}: {kind}: {message}")]
    Api {
        status: u16,
        kind: String,
        message: String,
    },
    #[error("network API unreachable: {0}")]
    Transport(String),
    #[error("network API answered something unreadable: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ClientFixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

/// The attributes of a port compute needs.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ClientPort {
    pub id: PortId,
    pub network_id: NetworkId,
    pub mac_address: String,
    #[serde(default)]
    pub fixed_ips: Vec<ClientFixedIp>,
    pub status: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub device_owner: String,
    #[serde(rename = "binding:host_id", default)]
    pub binding_host_id: Option<String>,
    #[serde(rename = "binding:vif_type", default)]
    pub binding_vif_type: Option<String>,
    #[serde(rename = "binding:vif_details", default)]
    pub binding_vif_details: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ClientNetwork {
    pub id: NetworkId,
    pub name: String,
    pub status: String,
    pub mtu: u32,
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub shared: bool,
    pub project_id: String,
}

#[derive(Clone)]
pub struct NetworkClient {
    http: reqwest::Client,
    /// `http://host:9696`
    base: String,
}

impl NetworkClient {
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, token: &str) -> Result<Value, ClientError> {
        let resp = req
            .header("X-Auth-Token", token)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !status.is_success() {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let err = &body["NeutronError"];
            return Err(ClientError::Api {
                status: status.as_u16(),
                kind: err["type"].as_str().unwrap_or("").to_owned(),
                message: err["message"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    fn take<T: serde::de::DeserializeOwned>(mut v: Value, key: &str) -> Result<T, ClientError> {
        serde_json::from_value(v[key].take()).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn get_network(
        &self,
        id: &NetworkId,
        token: &str,
    ) -> Result<ClientNetwork, ClientError> {
        let v = self
            .send(
                self.http.get(format!("{}/v2.0/networks/{id}", self.base)),
                token,
            )
            .await?;
        Self::take(v, "network")
    }

    /// A port for a server (`device_owner` `compute:nova`), bound to `host`
    /// when given (binding needs an admin token).
    pub async fn create_port(
        &self,
        network_id: &NetworkId,
        device_id: &str,
        host: Option<&str>,
        token: &str,
    ) -> Result<ClientPort, ClientError> {
        let mut port = json!({"network_id": network_id, "device_id": device_id,
                              "device_owner": "compute:nova"});
        if let Some(h) = host {
            port["binding:host_id"] = json!(h);
        }
        let v = self
            .send(
                self.http
                    .post(format!("{}/v2.0/ports", self.base))
                    .json(&json!({"port": port})),
                token,
            )
            .await?;
        Self::take(v, "port")
    }

    /// Binds a port to a host (empty host unbinds), and sets its device.
    pub async fn update_port_binding(
        &self,
        port_id: &PortId,
        host: &str,
        device_id: Option<&str>,
        token: &str,
    ) -> Result<ClientPort, ClientError> {
        let mut port = json!({"binding:host_id": host});
        if let Some(d) = device_id {
            port["device_id"] = json!(d);
            port["device_owner"] = json!("compute:nova");
        }
        let v = self
            .send(
                self.http
                    .put(format!("{}/v2.0/ports/{port_id}", self.base))
                    .json(&json!({"port": port})),
                token,
            )
            .await?;
        Self::take(v, "port")
    }

    pub async fn delete_port(&self, port_id: &PortId, token: &str) -> Result<(), ClientError> {
        self.send(
            self.http
                .delete(format!("{}/v2.0/ports/{port_id}", self.base)),
            token,
        )
        .await
        .map(|_| ())
    }

    pub async fn get_port(&self, port_id: &PortId, token: &str) -> Result<ClientPort, ClientError> {
        let v = self
            .send(
                self.http.get(format!("{}/v2.0/ports/{port_id}", self.base)),
                token,
            )
            .await?;
        Self::take(v, "port")
    }

    pub async fn list_ports(
        &self,
        device_id: &str,
        token: &str,
    ) -> Result<Vec<ClientPort>, ClientError> {
        let v = self
            .send(
                self.http.get(format!(
                    "{}/v2.0/ports?{}",
                    self.base,
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("device_id", device_id)
                        .finish()
                )),
                token,
            )
            .await?;
        Self::take(v, "ports")
    }
}
