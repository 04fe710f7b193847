//! The metadata proxy: an HTTP listener on 169.254.169.254:80 inside a
//! network's DHCP namespace. For each request it finds the instance behind
//! the source address (a [`PortLookup`]: the server's `lookup_instance` in
//! production), adds the headers Nova's metadata API trusts — `X-Instance-ID`,
//! `X-Tenant-ID`, `X-Instance-ID-Signature` (hex HMAC-SHA256 of the instance
//! id keyed with the shared secret) and `X-Forwarded-For` — and forwards the
//! request to the compute metadata URL, passing Nova's status and content
//! type back unchanged as Neutron's proxy does.
//!
//! Each guest request is served under a request id of its own (sent on to
//! the metadata API) and recorded as seed steps 52 (the guest's request,
//! its instance found), 53 (forwarded to the metadata API) and 54 (answered
//! to the guest), for the instance.
//!
//! The socket is bound inside the namespace (see `dataplane::netns`) but
//! served by the agent's runtime; the upstream connection is made from the
//! root namespace, where the metadata API listens.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use stratus_common::ids::{NetworkId, RequestId};
use stratus_telemetry::{Outcome, Recorder};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{AgentError, Result};
use crate::rpc::InstanceLookup;

/// Largest request body passed on (the metadata password POST is 1020 bytes
/// at most; anything far bigger is not a metadata request).
const MAX_BODY: usize = 64 * 1024;

/// Finds the instance that owns an address on a network.
#[async_trait]
pub trait PortLookup: Send + Sync + 'static {
    /// `Ok(None)` when no instance port has that address.
    async fn lookup_instance(
        &self,
        network_id: NetworkId,
        ip: IpAddr,
    ) -> Result<Option<InstanceLookup>>;
}

/// `X-Instance-ID-Signature`: hex(HMAC-SHA256(key = secret, msg = instance
/// id)), the metadata API's own function.
pub use stratus_metadata_api::sign_instance_id as sign;

#[derive(Clone)]
struct ProxyState {
    network_id: NetworkId,
    lookup: Arc<dyn PortLookup>,
    upstream: String,
    secret: Arc<str>,
    client: reqwest::Client,
    recorder: Recorder,
}

/// What the proxy needs to forward requests of one network.
#[derive(Clone)]
pub struct ProxyConfig {
    pub network_id: NetworkId,
    pub lookup: Arc<dyn PortLookup>,
    /// `http://host:port` of the compute metadata API.
    pub upstream: String,
    pub secret: String,
    /// Seed steps 52–54 (service `metadata`).
    pub recorder: Recorder,
}

/// The proxy's router (exposed for handler tests without a namespace).
pub fn router(cfg: ProxyConfig) -> Router {
    let state = ProxyState {
        network_id: cfg.network_id,
        lookup: cfg.lookup,
        upstream: cfg.upstream.trim_end_matches('/').to_owned(),
        secret: cfg.secret.into(),
        client: reqwest::Client::new(),
        recorder: cfg.recorder,
    };
    Router::new().fallback(proxy).with_state(state)
}

fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        msg.to_owned(),
    )
        .into_response()
}

async fn proxy(
    State(st): State<ProxyState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    stratus_common::with_request_id(RequestId::generate(), forward(st, peer, req)).await
}

async fn forward(st: ProxyState, peer: SocketAddr, req: Request) -> Response {
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let received = st
        .recorder
        .start(52, format!("guest {ip} asked {}", req.uri().path()));
    let found = match st.lookup.lookup_instance(st.network_id, ip).await {
        Ok(Some(f)) => {
            received.resource(Some(&f.instance_id)).ok();
            f
        }
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                "404 Not Found\n\nThe resource could not be found.\n",
            )
        }
        Err(e) => {
            tracing::warn!(network = %st.network_id, %ip, error = %e, "metadata lookup failed");
            return text(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n");
        }
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let method = req.method().clone();
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let accept = req.headers().get(header::ACCEPT).cloned();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large\n",
            )
        }
    };
    let mut up = st
        .client
        .request(method, format!("{}{path}", st.upstream))
        .header("X-Forwarded-For", ip.to_string())
        .header("X-Instance-ID", &found.instance_id)
        .header("X-Tenant-ID", &found.project_id)
        .header(
            "X-Instance-ID-Signature",
            sign(&st.secret, &found.instance_id),
        )
        .body(body);
    if let Some(ct) = content_type {
        up = up.header(header::CONTENT_TYPE, ct);
    }
    if let Some(a) = accept {
        up = up.header(header::ACCEPT, a);
    }
    if let Some((name, value)) = stratus_common::request_id_header() {
        up = up.header(name, value);
    }
    let instance = Some(found.instance_id.as_str());
    let asked = st
        .recorder
        .start(
            53,
            "forwarded to the metadata API with the instance headers",
        )
        .resource(instance);
    let resp = match up.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(upstream = %st.upstream, error = %e, "metadata API unreachable");
            asked.end(Outcome::Error, Some(e.to_string()));
            return text(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n");
        }
    };
    let status = resp.status();
    let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => {
            asked.end(Outcome::Error, Some(e.to_string()));
            return text(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n");
        }
    };
    asked.ok();
    let answered = st
        .recorder
        .start(54, format!("metadata answered to the guest ({status})"))
        .resource(instance);
    let mut out = Response::new(Body::from(bytes));
    *out.status_mut() = status;
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        ct.unwrap_or_else(|| HeaderValue::from_static("text/plain; charset=UTF-8")),
    );
    answered.ok();
    out
}

/// A running proxy; dropping it stops the listener.
pub struct MetadataProxy {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    pub local_addr: SocketAddr,
}

impl MetadataProxy {
    /// Serves `cfg` on an already-bound listener (bound in the namespace by
    /// the caller).
    pub fn serve(listener: tokio::net::TcpListener, cfg: ProxyConfig) -> Result<Self> {
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(cfg).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "metadata proxy stopped");
            }
        });
        Ok(Self {
            stop: Some(stop),
            task,
            local_addr,
        })
    }

    /// Binds 169.254.169.254:`port` inside `namespace` and serves there.
    pub async fn start_in_namespace(namespace: &str, port: u16, cfg: ProxyConfig) -> Result<Self> {
        let addr = SocketAddr::new(crate::dhcp::dnsmasq::METADATA_IP, port);
        let listener = crate::dataplane::netns::bind_tcp(namespace, addr)
            .await
            .map_err(|e| {
                AgentError::Dataplane(format!("metadata proxy bind in {namespace}: {e}"))
            })?;
        Self::serve(listener, cfg)
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Connections still open would keep graceful shutdown waiting.
        self.task.abort();
    }
}

impl Drop for MetadataProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_openssl_reference() {
        // printf %s "iid" | openssl dgst -sha256 -hmac "secret"
        assert_eq!(
            sign("secret", "iid"),
            "7dfe533db92026b0b4cf22af45c61022efce7d00eee29af49b229830ea8036db"
        );
        assert_ne!(sign("secret", "iid"), sign("other", "iid"));
    }
}
