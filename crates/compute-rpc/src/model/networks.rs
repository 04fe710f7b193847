//! The networks a create request asks for (Nova's `networks`): `auto`,
//! `none`, or a list of networks and ports. Stored and sent in Nova's own
//! JSON shape, so rows written before this type still read.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use stratus_common::ids::{NetworkId, PortId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum RequestedNetworks {
    /// One port on the project's network (or the only shared one).
    Auto,
    /// No network at all.
    None,
    List(Vec<RequestedNetwork>),
}

/// One entry of a `networks` list: a new port on `network`, or the
/// user's own `port` (whose network is filled in once checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedNetwork {
    pub network: Option<NetworkId>,
    pub port: Option<PortId>,
}

impl RequestedNetworks {
    /// `(network, port)` for each interface to make, in order.
    pub fn entries(&self) -> &[RequestedNetwork] {
        match self {
            Self::List(l) => l,
            Self::Auto | Self::None => &[],
        }
    }

    /// The ports the user brought (unbound, not deleted, when the server goes).
    pub fn user_ports(&self) -> Vec<PortId> {
        self.entries().iter().filter_map(|n| n.port).collect()
    }
}

impl TryFrom<Value> for RequestedNetworks {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        match v {
            Value::String(s) if s == "auto" => Ok(Self::Auto),
            Value::String(s) if s == "none" => Ok(Self::None),
            Value::Null => Ok(Self::Auto),
            Value::Array(list) => list
                .iter()
                .map(|n| {
                    let id = |k: &str| -> Result<Option<String>, String> {
                        match n.get(k) {
                            None | Some(Value::Null) => Ok(None),
                            Some(Value::String(s)) if s.is_empty() => Ok(None),
                            Some(Value::String(s)) => Ok(Some(s.clone())),
                            Some(_) => Err(format!("Bad networks format: {k} is not a string")),
                        }
                    };
                    let network = id("uuid")?
                        .map(|s| s.parse().map_err(|_| format!("bad network uuid {s}")))
                        .transpose()?;
                    let port = id("port")?
                        .map(|s| s.parse().map_err(|_| format!("bad port uuid {s}")))
                        .transpose()?;
                    if network.is_none() && port.is_none() {
                        return Err("Bad networks format".to_owned());
                    }
                    Ok(RequestedNetwork { network, port })
                })
                .collect::<Result<_, _>>()
                .map(Self::List),
            other => Err(format!("bad networks {other}")),
        }
    }
}

impl From<RequestedNetworks> for Value {
    fn from(n: RequestedNetworks) -> Value {
        match n {
            RequestedNetworks::Auto => json!("auto"),
            RequestedNetworks::None => json!("none"),
            RequestedNetworks::List(l) => Value::Array(
                l.into_iter()
                    .map(|e| {
                        let mut o = serde_json::Map::new();
                        if let Some(n) = e.network {
                            o.insert("uuid".into(), json!(n.to_string()));
                        }
                        if let Some(p) = e.port {
                            o.insert("port".into(), json!(p.to_string()));
                        }
                        Value::Object(o)
                    })
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_nova_and_older_rows_wrote() {
        let n = "3f1c2a9e-1b2c-4d5e-8f90-0123456789ab";
        let p = "aabbccdd-eeff-4011-8223-344556677889";
        let r = RequestedNetworks::try_from(json!([{"uuid": n}, {"port": p, "uuid": n}]));
        let Ok(r) = r else { panic!("parse: {r:?}") };
        assert_eq!(r.entries().len(), 2);
        assert_eq!(r.user_ports().len(), 1);
        assert_eq!(
            Value::from(r.clone()),
            json!([{"uuid": n}, {"port": p, "uuid": n}])
        );
        assert_eq!(
            RequestedNetworks::try_from(json!("none")),
            Ok(RequestedNetworks::None)
        );
        assert!(RequestedNetworks::try_from(json!([{}])).is_err());
        assert!(RequestedNetworks::try_from(json!([{"uuid": "x"}])).is_err());
    }
}
