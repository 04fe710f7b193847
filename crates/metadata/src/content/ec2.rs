//! The EC2-style tree (`/<ver>/meta-data/...`, `/<ver>/user-data`), built as
//! Nova's `get_ec2_metadata` builds its dict, walked as `find_path_in_tree`
//! walks it, and printed as `ec2_md_print` prints it: a directory lists its
//! keys sorted, one per line, no trailing newline, subdirectories with a `/`
//! (or their `_name`, which is how `public-keys/` shows `0=<keyname>`).

use std::collections::BTreeMap;

use crate::model::InstanceMetadata;
use crate::versions::Version;

/// A node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Dir {
        /// Shown instead of `key/` in the parent's listing (Nova's `_name`).
        name: Option<String>,
        entries: BTreeMap<String, Node>,
    },
    /// Printed one item per line.
    List(Vec<String>),
    Leaf(Vec<u8>),
}

impl Node {
    fn dir(entries: impl IntoIterator<Item = (&'static str, Node)>) -> Self {
        Node::Dir {
            name: None,
            entries: entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        }
    }

    fn text(s: impl Into<String>) -> Self {
        Node::Leaf(s.into().into_bytes())
    }

    /// The node at `path` below this one; `None` for a missing key or a
    /// path that goes below a leaf (Nova fails those with a 500; a 404 is
    /// what the guest should get).
    pub fn find(&self, path: &[&str]) -> Option<&Node> {
        let mut node = self;
        for token in path {
            match node {
                Node::Dir { entries, .. } => node = entries.get(*token)?,
                Node::List(_) | Node::Leaf(_) => return None,
            }
        }
        Some(node)
    }

    /// `ec2_md_print`.
    pub fn print(&self) -> Vec<u8> {
        match self {
            Node::Dir { entries, .. } => entries
                .iter()
                .map(|(key, child)| match child {
                    Node::Dir {
                        name: Some(name), ..
                    } => name.clone(),
                    Node::Dir { name: None, .. } => format!("{key}/"),
                    _ => key.clone(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
            Node::List(items) => items.join("\n").into_bytes(),
            Node::Leaf(bytes) => bytes.clone(),
        }
    }
}

/// EC2 ids are `<prefix>-%08x` of an integer id. Nova keeps a mapping table
/// of autoincrement ids; Stratus has only UUIDs, so it takes their first 32
/// bits, which is stable for the life of the instance.
pub fn ec2_id(prefix: &str, uuid: &uuid::Uuid) -> String {
    let b = uuid.as_bytes();
    format!(
        "{prefix}-{:08x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    )
}

/// Python prints a missing value as `None`, and guests have seen that.
fn or_none(v: Option<&str>) -> String {
    v.unwrap_or("None").to_owned()
}

/// Nova's `block_device.instance_block_mapping`, for what Stratus tracks.
fn block_device_mapping(inst: &InstanceMetadata) -> Node {
    let Some(root) = inst.root_device_name.as_deref() else {
        return Node::dir([
            ("ami", Node::text("sda1")),
            ("ephemeral0", Node::text("sda2")),
            ("root", Node::text("/dev/sda1")),
            ("swap", Node::text("sda3")),
        ]);
    };
    let mut entries = BTreeMap::from([
        (
            "ami".to_owned(),
            Node::text(root.strip_prefix("/dev/").unwrap_or(root)),
        ),
        ("root".to_owned(), Node::text(root)),
    ]);
    let mut ebs = inst.volume_device_names.clone();
    ebs.sort();
    for (n, dev) in ebs.into_iter().enumerate() {
        entries.insert(format!("ebs{n}"), Node::text(dev));
    }
    Node::Dir {
        name: None,
        entries,
    }
}

/// The whole tree of one EC2 version: `meta-data` and, when the instance has
/// any, `user-data`.
pub fn tree(
    inst: &InstanceMetadata,
    version: Version,
    dhcp_domain: &str,
    remote_address: Option<&str>,
) -> Node {
    let hostname = super::full_hostname(&inst.hostname, dhcp_domain);
    let ips = super::network_data::ip_info(inst);
    let fixed_ip = ips.fixed_ipv4.first().map(|ip| ip.to_string());
    let floating_ip = ips
        .floating
        .first()
        .map(|ip| ip.to_string())
        .unwrap_or_default();

    let mut md: BTreeMap<String, Node> = BTreeMap::new();
    let mut put = |k: &str, v: Node| {
        md.insert(k.to_owned(), v);
    };
    put(
        "ami-id",
        Node::text(or_none(
            inst.image_id.map(|i| ec2_id("ami", i.as_uuid())).as_deref(),
        )),
    );
    put(
        "ami-launch-index",
        Node::text(inst.launch_index.to_string()),
    );
    put("ami-manifest-path", Node::text("FIXME"));
    put("instance-id", Node::text(ec2_id("i", inst.uuid.as_uuid())));
    put("hostname", Node::text(hostname.clone()));
    put(
        "local-ipv4",
        Node::text(or_none(fixed_ip.as_deref().or(remote_address))),
    );
    put("reservation-id", Node::text(inst.reservation_id.clone()));
    put("security-groups", Node::List(inst.security_groups.clone()));
    if let Some((name, key)) = &inst.key {
        put(
            "public-keys",
            Node::Dir {
                name: None,
                entries: BTreeMap::from([(
                    "0".to_owned(),
                    Node::Dir {
                        name: Some(format!("0={name}")),
                        entries: BTreeMap::from([(
                            "openssh-key".to_owned(),
                            Node::text(key.clone()),
                        )]),
                    },
                )]),
            },
        );
    }
    if version.ec2_at_least("2007-01-19") {
        put("local-hostname", Node::text(hostname.clone()));
        put("public-hostname", Node::text(hostname));
        put("public-ipv4", Node::text(floating_ip));
    }
    if version.ec2_at_least("2007-08-29") {
        put("instance-type", Node::text(inst.flavor_name.clone()));
    }
    if version.ec2_at_least("2007-12-15") {
        put("block-device-mapping", block_device_mapping(inst));
    }
    if version.ec2_at_least("2008-02-01") {
        put(
            "placement",
            Node::dir([(
                "availability-zone",
                Node::text(or_none(inst.availability_zone.as_deref())),
            )]),
        );
    }
    if version.ec2_at_least("2008-09-01") {
        put("instance-action", Node::text("none"));
    }

    let mut top = BTreeMap::from([(
        "meta-data".to_owned(),
        Node::Dir {
            name: None,
            entries: md,
        },
    )]);
    if let Some(ud) = &inst.user_data {
        top.insert("user-data".to_owned(), Node::Leaf(ud.clone()));
    }
    Node::Dir {
        name: None,
        entries: top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_is_sorted_without_trailing_newline() {
        let n = Node::dir([
            ("b", Node::text("x")),
            ("a", Node::dir([])),
            (
                "c",
                Node::Dir {
                    name: Some("0=k".into()),
                    entries: BTreeMap::new(),
                },
            ),
        ]);
        assert_eq!(n.print(), b"a/\nb\n0=k".to_vec());
        assert_eq!(Node::List(vec![]).print(), Vec::<u8>::new());
    }

    #[test]
    fn ec2_ids_take_the_first_32_bits() {
        let u = uuid::Uuid::parse_str("0000002a-0000-4000-8000-000000000000").ok();
        assert_eq!(u.map(|u| ec2_id("i", &u)).as_deref(), Some("i-0000002a"));
    }
}
