//! Provider segments as ML2's type drivers check them (`provider:network_type`,
//! `provider:physical_network`, `provider:segmentation_id`): which types are
//! enabled, what each type requires and forbids, the ranges, and the 409
//! when a segment is held by another network.

use serde_json::Value;

use crate::config::NetworkConfig;
use crate::db::networks::Segment;
use crate::error::{NetworkError, Result};

/// 802.1Q's usable tags.
const VLAN_MIN: i64 = 1;
const VLAN_MAX: i64 = 4094;
/// VXLAN's 24-bit VNI.
const VNI_MIN: i64 = 1;
const VNI_MAX: i64 = (1 << 24) - 1;

/// The provider attributes of a create body, as given.
#[derive(Clone, Debug, Default)]
pub struct SegmentRequest {
    pub network_type: Option<String>,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<Value>,
}

impl SegmentRequest {
    pub fn is_empty(&self) -> bool {
        self.network_type.is_none()
            && self.physical_network.is_none()
            && self.segmentation_id.as_ref().is_none_or(Value::is_null)
    }
}

/// Neutron's `InvalidInput`: "Invalid input for operation: <msg>."
fn invalid(msg: impl Into<String>) -> NetworkError {
    NetworkError::InvalidInput(format!("{}.", msg.into()))
}

/// `provider:segmentation_id` is converted to an integer, as neutron-lib's
/// `convert_to_int` does (numbers and numeric strings).
fn segmentation_id(v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Some(None),
        Value::Number(n) => n.as_i64().map(Some),
        Value::String(s) => s.trim().parse().ok().map(Some),
        _ => None,
    }
    .ok_or_else(|| {
        NetworkError::BadRequest(format!(
            "Invalid input for provider:segmentation_id. Reason: '{v}' is not an integer."
        ))
    })
}

/// The segment a create asks for (tenant networks: `local`), checked as
/// ML2's type manager and type drivers check a provider segment.
pub fn validate(config: &NetworkConfig, req: &SegmentRequest) -> Result<Segment> {
    if req.is_empty() {
        return Ok(Segment::local());
    }
    let Some(network_type) = req.network_type.clone() else {
        return Err(invalid("network_type required"));
    };
    if !config.enabled_types().contains(&network_type) {
        return Err(invalid(format!(
            "network_type value '{network_type}' not supported"
        )));
    }
    let physical_network = req.physical_network.clone().filter(|p| !p.is_empty());
    let seg_id = match &req.segmentation_id {
        Some(v) => segmentation_id(v)?,
        None => None,
    };
    match network_type.as_str() {
        "local" => {
            if physical_network.is_some() {
                return Err(invalid(
                    "provider:physical_network prohibited for local provider network",
                ));
            }
            if seg_id.is_some() {
                return Err(invalid(
                    "provider:segmentation_id prohibited for local provider network",
                ));
            }
        }
        "flat" => {
            let Some(p) = &physical_network else {
                return Err(invalid(
                    "physical_network required for flat provider network",
                ));
            };
            if config.flat_networks.is_empty() {
                return Err(invalid("Flat provider networks are disabled"));
            }
            if !config.flat_networks.iter().any(|f| f == "*" || f == p) {
                return Err(invalid(format!(
                    "physical_network '{p}' unknown for flat provider network"
                )));
            }
            if seg_id.is_some() {
                return Err(invalid(
                    "provider:segmentation_id prohibited for flat provider network",
                ));
            }
        }
        "vlan" => {
            let Some(p) = &physical_network else {
                return Err(invalid(if seg_id.is_some() {
                    "segmentation_id requires physical_network for VLAN provider network"
                } else {
                    // Tenant VLANs are not allocated here (no ranges to pick from).
                    "physical_network required for VLAN provider network"
                }));
            };
            let known = config
                .network_vlan_ranges
                .iter()
                .any(|r| r.split(':').next() == Some(p.as_str()));
            if !known {
                return Err(invalid(format!(
                    "physical_network '{p}' unknown for VLAN provider network"
                )));
            }
            match seg_id {
                None => {
                    return Err(invalid(format!(
                        "Physical network {p} requires segmentation_id to be specified when \
                         creating a provider network"
                    )))
                }
                Some(id) if !(VLAN_MIN..=VLAN_MAX).contains(&id) => {
                    return Err(invalid(format!(
                        "segmentation_id out of range ({VLAN_MIN} through {VLAN_MAX})"
                    )))
                }
                Some(_) => {}
            }
        }
        "vxlan" => {
            if physical_network.is_some() {
                return Err(invalid(
                    "provider:physical_network specified for vxlan network",
                ));
            }
            match seg_id {
                None => {
                    return Err(invalid(
                        "segmentation_id required for vxlan provider network",
                    ))
                }
                Some(id) if !(VNI_MIN..=VNI_MAX).contains(&id) => {
                    return Err(invalid(format!(
                        "segmentation_id out of range ({VNI_MIN} through {VNI_MAX})"
                    )))
                }
                Some(_) => {}
            }
        }
        other => {
            return Err(invalid(format!(
                "network_type value '{other}' not supported"
            )))
        }
    }
    Ok(Segment {
        network_type,
        physical_network,
        segmentation_id: seg_id,
    })
}

/// The type driver's 409 for a segment another network holds.
pub fn in_use(s: &Segment) -> NetworkError {
    let phys = s.physical_network.clone().unwrap_or_default();
    let id = s.segmentation_id.unwrap_or_default();
    match s.network_type.as_str() {
        "flat" => NetworkError::ConflictKind {
            kind: "FlatNetworkInUse",
            message: format!(
                "Unable to create the flat network. Physical network {phys} is in use."
            ),
        },
        "vlan" => NetworkError::ConflictKind {
            kind: "VlanIdInUse",
            message: format!(
                "Unable to create the network. The VLAN {id} on physical network {phys} is in use."
            ),
        },
        _ => NetworkError::ConflictKind {
            kind: "TunnelIdInUse",
            message: format!("Unable to create the network. The tunnel ID {id} is in use."),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::DriverKind;

    fn req(t: Option<&str>, p: Option<&str>, id: Option<Value>) -> SegmentRequest {
        SegmentRequest {
            network_type: t.map(str::to_owned),
            physical_network: p.map(str::to_owned),
            segmentation_id: id,
        }
    }

    #[test]
    fn types_required_and_forbidden_attributes() {
        let c = NetworkConfig::default();
        assert_eq!(
            validate(&c, &req(None, None, None)).expect("accepted"),
            Segment::local()
        );
        let v = validate(&c, &req(Some("vlan"), Some("physnet1"), Some(json!("100"))))
            .expect("accepted");
        assert_eq!(v.segmentation_id, Some(100));
        assert_eq!(v.key().as_deref(), Some("vlan:physnet1:100"));
        for (r, want) in [
            (req(None, Some("physnet1"), None), "network_type required"),
            (
                req(Some("gre"), None, None),
                "network_type value 'gre' not supported",
            ),
            (
                req(Some("vlan"), Some("physnet1"), Some(json!(4095))),
                "out of range (1 through 4094)",
            ),
            (
                req(Some("vlan"), Some("physnet9"), Some(json!(5))),
                "physical_network 'physnet9' unknown",
            ),
            (
                req(Some("vlan"), None, Some(json!(5))),
                "segmentation_id requires physical_network",
            ),
            (
                req(Some("vlan"), Some("physnet1"), None),
                "requires segmentation_id",
            ),
            (
                req(Some("flat"), None, None),
                "physical_network required for flat",
            ),
            (
                req(Some("flat"), Some("physnet1"), Some(json!(3))),
                "prohibited for flat",
            ),
            (
                req(Some("local"), Some("physnet1"), None),
                "prohibited for local",
            ),
            (
                req(Some("vxlan"), Some("physnet1"), Some(json!(3))),
                "physical_network specified",
            ),
            (
                req(Some("vxlan"), None, Some(json!(1 << 24))),
                "out of range (1 through 16777215)",
            ),
        ] {
            let e = validate(&c, &r).expect_err("refused");
            assert!(e.to_string().contains(want), "{r:?}: {e}");
            assert_eq!(e.status(), 400);
        }
        assert_eq!(
            validate(&c, &req(Some("vlan"), Some("physnet1"), Some(json!("x"))))
                .expect_err("refused")
                .status(),
            400
        );
    }

    #[test]
    fn linuxbridge_accepts_only_what_it_realises() {
        let c = NetworkConfig {
            driver: DriverKind::Linuxbridge,
            ..NetworkConfig::default()
        };
        assert!(validate(&c, &req(Some("local"), None, None)).is_ok());
        let e = validate(&c, &req(Some("flat"), Some("physnet1"), None)).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "Invalid input for operation: network_type value 'flat' not supported."
        );
    }
}
