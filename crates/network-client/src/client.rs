//! [`NetworkClient`]: the Neutron calls compute makes (look up networks
//! and subnets, create, bind, unbind, list and delete a server's ports).
//! Every call takes the token to send: the user's, or the service user's
//! for binding, which is admin-only; and sends the current request id
//! (`X-OpenStack-Request-ID`, from `stratus_common::current_request_id`).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use stratus_common::ids::{NetworkId, PortId, SubnetId};

use crate::model::{
    Network, Port, PortCreate, PortUpdate, SecurityGroup, Subnet, DEVICE_OWNER_COMPUTE,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neutron answered with an error body.
    #[error("network API {status}: {kind}: {message}")]
    Api {
        status: u16,
        /// `NeutronError.type`, e.g. `PortNotFound`.
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

    pub fn is_conflict(&self) -> bool {
        matches!(self, ClientError::Api { status: 409, .. })
    }
}

#[derive(Clone, Debug)]
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
            // Only TLS set-up can fail, and this client has none.
            .unwrap_or_default();
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2.0/{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder, token: &str) -> Result<Value, ClientError> {
        let mut req = req.header("X-Auth-Token", token);
        if let Some((name, value)) = stratus_common::request_id_header() {
            req = req.header(name, value);
        }
        let resp = req
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

    /// The member `key` of a Neutron body (`{"port": {...}}`).
    fn take<T: DeserializeOwned>(mut v: Value, key: &str) -> Result<T, ClientError> {
        serde_json::from_value(v[key].take())
            .map_err(|e| ClientError::Decode(format!("{key}: {e}")))
    }

    /// `GET /v2.0/networks/{id}`.
    pub async fn network(&self, id: &NetworkId, token: &str) -> Result<Network, ClientError> {
        let v = self
            .send(self.http.get(self.url(&format!("networks/{id}"))), token)
            .await?;
        Self::take(v, "network")
    }

    /// `GET /v2.0/networks`: every network the token may see.
    pub async fn networks(&self, token: &str) -> Result<Vec<Network>, ClientError> {
        let v = self
            .send(self.http.get(self.url("networks")), token)
            .await?;
        Self::take(v, "networks")
    }

    /// `GET /v2.0/subnets/{id}`.
    pub async fn subnet(&self, id: &SubnetId, token: &str) -> Result<Subnet, ClientError> {
        let v = self
            .send(self.http.get(self.url(&format!("subnets/{id}"))), token)
            .await?;
        Self::take(v, "subnet")
    }

    /// `GET /v2.0/ports/{id}`.
    pub async fn port(&self, id: &PortId, token: &str) -> Result<Port, ClientError> {
        let v = self
            .send(self.http.get(self.url(&format!("ports/{id}"))), token)
            .await?;
        Self::take(v, "port")
    }

    /// `GET /v2.0/ports?device_id=`: a server's ports.
    pub async fn ports_of_device(
        &self,
        device_id: &str,
        token: &str,
    ) -> Result<Vec<Port>, ClientError> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("device_id", device_id)
            .finish();
        let v = self
            .send(self.http.get(self.url(&format!("ports?{query}"))), token)
            .await?;
        Self::take(v, "ports")
    }

    /// `POST /v2.0/ports`: a port for a server (`device_owner`
    /// `compute:nova`), bound to `host` when given and owned by
    /// `project_id` when given (both need an admin token).
    pub async fn port_create(
        &self,
        network_id: &NetworkId,
        device_id: &str,
        host: Option<&str>,
        project_id: Option<&str>,
        security_groups: Option<Vec<String>>,
        token: &str,
    ) -> Result<Port, ClientError> {
        let port = PortCreate {
            network_id: *network_id,
            device_id: device_id.to_owned(),
            device_owner: DEVICE_OWNER_COMPUTE.to_owned(),
            binding_host_id: host.map(str::to_owned),
            project_id: project_id.map(str::to_owned),
            security_groups,
        };
        let v = self
            .send(
                self.http
                    .post(self.url("ports"))
                    .json(&json!({ "port": port })),
                token,
            )
            .await?;
        Self::take(v, "port")
    }

    /// `PUT /v2.0/ports/{id}`.
    pub async fn port_update(
        &self,
        id: &PortId,
        update: &PortUpdate,
        token: &str,
    ) -> Result<Port, ClientError> {
        let v = self
            .send(
                self.http
                    .put(self.url(&format!("ports/{id}")))
                    .json(&json!({ "port": update })),
                token,
            )
            .await?;
        Self::take(v, "port")
    }

    /// `GET /v2.0/security-groups`: every group the token may see (an
    /// admin's sees every project's).
    pub async fn security_groups(&self, token: &str) -> Result<Vec<SecurityGroup>, ClientError> {
        let v = self
            .send(self.http.get(self.url("security-groups")), token)
            .await?;
        Self::take(v, "security_groups")
    }

    /// `DELETE /v2.0/ports/{id}`.
    pub async fn port_delete(&self, id: &PortId, token: &str) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("ports/{id}"))), token)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::http::HeaderMap;
    use stratus_common::ids::RequestId;

    use super::*;

    #[tokio::test]
    async fn calls_carry_the_current_request_id() {
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let rid = headers
                    .get("x-openstack-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                record.lock().expect("lock").push(rid);
                axum::Json(json!({"ports": []}))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let client = NetworkClient::new(&format!("http://{addr}"));
        let id = RequestId::generate();
        stratus_common::with_request_id(id.clone(), client.ports_of_device("d", "t"))
            .await
            .expect("in a request");
        client.ports_of_device("d", "t").await.expect("outside");
        assert_eq!(*seen.lock().expect("lock"), vec![Some(id.0), None]);
        server.abort();
    }
}
