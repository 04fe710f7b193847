//! The agents' seed-step events (DHCP 29–32, L2 34–36). An agent has no
//! database: its recorder's sink casts the events to the server
//! (`record_events`), which keeps them. One cast per request id, sent in
//! that request's scope, so that the server reads each under its request.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use stratus_common::ids::RequestId;
pub use stratus_telemetry::Recorder;
use stratus_telemetry::{Event, Sink};

use crate::rpc::PortInfo;
use crate::server::ServerApi;

/// Sends events to the server.
pub struct ServerSink(pub Arc<dyn ServerApi>);

#[async_trait]
impl Sink for ServerSink {
    async fn write(&self, events: &[Event]) -> Result<(), String> {
        let mut by_request: BTreeMap<&str, Vec<Event>> = BTreeMap::new();
        for e in events {
            by_request
                .entry(e.request_id.as_str())
                .or_default()
                .push(e.clone());
        }
        for (id, events) in by_request {
            let id = RequestId(id.to_owned());
            stratus_common::with_request_id(id, self.0.record_events(events))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The recorder of an agent (`dhcp-agent`, `l2-agent`) whose events go to
/// `server`.
pub fn recorder(service: &str, server: Arc<dyn ServerApi>) -> Recorder {
    Recorder::new(service, vec![Arc::new(ServerSink(server))])
}

/// The resource a port's events name: its device (the server) when set,
/// else the port, as the server names them.
pub fn port_resource(p: &PortInfo) -> String {
    if p.device_id.is_empty() {
        p.id.to_string()
    } else {
        p.device_id.clone()
    }
}
