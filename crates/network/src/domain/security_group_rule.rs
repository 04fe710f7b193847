//! Neutron's checks on a security group rule's port range, apart from HTTP
//! (neutron/extensions/securitygroup.py's port value conversion and
//! securitygroups_db.py's `_validate_port_range`), with its messages and
//! exception names.

use serde_json::Value;

use crate::error::{NetworkError, Result};

/// The protocols whose rules may name ports (Neutron's
/// `SG_PORT_PROTO_NAMES` and their numbers).
const PORT_PROTOCOLS: [(&str, &str); 5] = [
    ("dccp", "33"),
    ("sctp", "132"),
    ("tcp", "6"),
    ("udp", "17"),
    ("udplite", "136"),
];
const ICMP_PROTOCOLS: [&str; 5] = ["icmp", "1", "ipv6-icmp", "icmpv6", "58"];

/// Protocol numbers of the names Neutron knows, for its "invalid protocol"
/// message (it reports the number).
const PROTOCOL_NUMBERS: [(&str, u8); 23] = [
    ("hopopt", 0),
    ("ip", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("pgm", 113),
    ("udp", 17),
    ("ipv6-encap", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ospf", 89),
    ("sctp", 132),
    ("udplite", 136),
];

fn invalid(kind: &'static str, message: String) -> NetworkError {
    NetworkError::Invalid { kind, message }
}

/// A `port_range_min`/`max` as given: null, an integer or a string of one,
/// in 0..=65535 (Neutron's `convert_validate_port_value`), else 400.
pub fn port_value(v: Option<&Value>) -> Result<Option<i64>> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if (0..=65535).contains(&n) => Ok(Some(n)),
        _ => {
            let shown = match v {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            Err(invalid(
                "SecurityGroupInvalidPortValue",
                format!("Invalid value for port {shown}"),
            ))
        }
    }
}

/// Checks a rule's port range against its (already parsed, lowercase)
/// protocol as Neutron's `_validate_port_range` does.
pub fn validate_port_range(
    protocol: Option<&str>,
    min: Option<i64>,
    max: Option<i64>,
) -> Result<()> {
    if min.is_none() && max.is_none() {
        return Ok(());
    }
    let Some(protocol) = protocol else {
        return Err(invalid(
            "SecurityGroupProtocolRequiredWithPorts",
            "Must also specify protocol if port range is given.".to_owned(),
        ));
    };
    if PORT_PROTOCOLS
        .iter()
        .any(|(name, num)| protocol == *name || protocol == *num)
    {
        if min == Some(0) || max == Some(0) {
            return Err(invalid(
                "SecurityGroupInvalidPortValue",
                "Invalid value for port 0".to_owned(),
            ));
        }
        return match (min, max) {
            // min == max is a single port.
            (Some(a), Some(b)) if a <= b => Ok(()),
            _ => Err(invalid(
                "SecurityGroupInvalidPortRange",
                "For TCP/UDP protocols, port_range_min must be <= port_range_max".to_owned(),
            )),
        };
    }
    if ICMP_PROTOCOLS.contains(&protocol) {
        for (value, field, attr) in [
            (min, "type", "port_range_min"),
            (max, "code", "port_range_max"),
        ] {
            if let Some(v) = value.filter(|v| !(0..=255).contains(v)) {
                return Err(invalid(
                    "SecurityGroupInvalidIcmpValue",
                    format!("Invalid value for ICMP {field} ({attr}) {v}. It must be 0 to 255."),
                ));
            }
        }
        if let (None, Some(code)) = (min, max) {
            return Err(invalid(
                "SecurityGroupMissingIcmpType",
                format!(
                    "ICMP code (port-range-max) {code} is provided but ICMP type (port-range-min) is missing."
                ),
            ));
        }
        return Ok(());
    }
    let number = PROTOCOL_NUMBERS
        .iter()
        .find(|(name, _)| *name == protocol)
        .map_or_else(|| protocol.to_owned(), |(_, n)| n.to_string());
    let names: Vec<String> = PORT_PROTOCOLS
        .iter()
        .map(|(name, _)| name.to_ascii_uppercase())
        .collect();
    Err(invalid(
        "SecurityGroupInvalidProtocolForPort",
        format!(
            "Invalid protocol {number} for port range, only supported for {} protocols.",
            names.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(r: Result<()>) -> &'static str {
        match r {
            Ok(()) => "ok",
            Err(e) => {
                assert_eq!(e.status().as_u16(), 400, "{e}");
                e.kind()
            }
        }
    }

    #[test]
    fn port_values_are_0_to_65535() {
        assert_eq!(port_value(None).ok(), Some(None));
        assert_eq!(port_value(Some(&json!(null))).ok(), Some(None));
        assert_eq!(port_value(Some(&json!(80))).ok(), Some(Some(80)));
        assert_eq!(port_value(Some(&json!("443"))).ok(), Some(Some(443)));
        assert_eq!(port_value(Some(&json!(0))).ok(), Some(Some(0)));
        for bad in [json!(65536), json!(-1), json!("x"), json!(1.5), json!([1])] {
            let e = port_value(Some(&bad)).expect_err("bad port");
            assert_eq!(e.kind(), "SecurityGroupInvalidPortValue", "{bad}");
        }
        let e = port_value(Some(&json!(70000))).expect_err("bad port");
        assert_eq!(e.to_string(), "Invalid value for port 70000");
    }

    #[test]
    fn port_ranges_as_neutron_checks_them() {
        type Case<'a> = (Option<&'a str>, Option<i64>, Option<i64>, &'a str);
        let cases: [Case; 22] = [
            (None, None, None, "ok"),
            (Some("tcp"), None, None, "ok"),
            (
                None,
                Some(22),
                Some(22),
                "SecurityGroupProtocolRequiredWithPorts",
            ),
            (
                None,
                None,
                Some(22),
                "SecurityGroupProtocolRequiredWithPorts",
            ),
            (Some("tcp"), Some(22), Some(22), "ok"),
            (Some("udp"), Some(1), Some(65535), "ok"),
            (Some("6"), Some(80), Some(90), "ok"),
            (
                Some("sctp"),
                Some(90),
                Some(80),
                "SecurityGroupInvalidPortRange",
            ),
            (
                Some("tcp"),
                Some(90),
                Some(80),
                "SecurityGroupInvalidPortRange",
            ),
            (Some("tcp"), Some(80), None, "SecurityGroupInvalidPortRange"),
            (Some("tcp"), None, Some(80), "SecurityGroupInvalidPortRange"),
            (
                Some("tcp"),
                Some(0),
                Some(80),
                "SecurityGroupInvalidPortValue",
            ),
            (
                Some("udplite"),
                Some(5),
                Some(0),
                "SecurityGroupInvalidPortValue",
            ),
            (Some("icmp"), Some(8), Some(0), "ok"),
            (Some("icmp"), Some(8), None, "ok"),
            (Some("ipv6-icmp"), Some(128), Some(0), "ok"),
            (
                Some("icmp"),
                Some(256),
                None,
                "SecurityGroupInvalidIcmpValue",
            ),
            (
                Some("1"),
                Some(8),
                Some(300),
                "SecurityGroupInvalidIcmpValue",
            ),
            (Some("icmp"), None, Some(0), "SecurityGroupMissingIcmpType"),
            (
                Some("gre"),
                Some(1),
                Some(2),
                "SecurityGroupInvalidProtocolForPort",
            ),
            (
                Some("112"),
                Some(1),
                None,
                "SecurityGroupInvalidProtocolForPort",
            ),
            (
                Some("esp"),
                None,
                Some(5),
                "SecurityGroupInvalidProtocolForPort",
            ),
        ];
        for (proto, min, max, want) in cases {
            assert_eq!(
                kind(validate_port_range(proto, min, max)),
                want,
                "{proto:?} {min:?} {max:?}"
            );
        }
        let msg = |p, a, b| {
            validate_port_range(p, a, b)
                .expect_err("invalid")
                .to_string()
        };
        assert_eq!(
            msg(Some("gre"), Some(1), Some(2)),
            "Invalid protocol 47 for port range, only supported for DCCP, SCTP, TCP, UDP, UDPLITE protocols."
        );
        assert_eq!(
            msg(Some("icmp"), Some(300), None),
            "Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255."
        );
        assert_eq!(
            msg(Some("icmp"), None, Some(3)),
            "ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing."
        );
    }
}
