//! Path resolution (Nova's `InstanceMetadata.lookup` and
//! `RouteConfiguration`): normalise the path, send anything that does not
//! start with `openstack` or `ec2` to the EC2 tree, and answer with a
//! document, a listing, or the password handler.

use crate::cache::Prepared;
use crate::config::MetadataConfig;
use crate::content::{ec2, meta_data, network_data};
use crate::error::{MetadataError, Result};
use crate::versions::{self, Version, GRIZZLY, HAVANA, NEWTON_TWO};

pub const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
pub const APPLICATION_JSON: &str = "application/json";

/// What a path resolves to.
#[derive(Debug, PartialEq)]
pub enum Served {
    Body {
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// `openstack/<ver>/password`: depends on the method and body.
    Password,
    /// `openstack/<ver>/vendor_data2.json`: may call DynamicJSON targets.
    VendorData2,
}

impl Served {
    fn text(body: impl Into<Vec<u8>>) -> Self {
        Served::Body {
            content_type: TEXT_PLAIN,
            body: body.into(),
        }
    }

    fn listing(items: &[impl AsRef<str>]) -> Self {
        let lines: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
        Self::text(lines.join("\n"))
    }

    fn json(value: &impl serde::Serialize) -> Result<Self> {
        Ok(Served::Body {
            content_type: APPLICATION_JSON,
            body: json_body(value)?,
        })
    }
}

/// A document's JSON text.
pub fn json_body(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| MetadataError::Internal(format!("encoding JSON: {e}")))
}

/// `posixpath.normpath` split into tokens: empty and `.` segments dropped,
/// `..` removing the previous one (never above the root).
pub fn normalize(path: &str) -> Vec<&str> {
    let mut tokens: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                tokens.pop();
            }
            s => tokens.push(s),
        }
    }
    tokens
}

/// `GET /`: the EC2 versions (text/plain), served without any instance.
pub fn root_listing() -> Vec<u8> {
    versions::ec2_listing().join("\n").into_bytes()
}

/// Per-request inputs besides the instance.
pub struct Ask<'a> {
    /// Normalised path tokens, at least one.
    pub tokens: &'a [&'a str],
    /// `YYYY-MM-DD`, to hide future versions from `/openstack`.
    pub today: &'a str,
    /// The guest's address (`X-Forwarded-For`), EC2 `local-ipv4`'s fallback.
    pub remote_address: Option<&'a str>,
}

pub fn lookup(p: &Prepared, cfg: &MetadataConfig, ask: &Ask<'_>) -> Result<Served> {
    let mut tokens: Vec<&str> = ask.tokens.to_vec();
    if !matches!(tokens.first(), Some(&"ec2") | Some(&"openstack")) {
        tokens.insert(0, "ec2");
    }
    match tokens.as_slice() {
        [] => Err(MetadataError::NotFound),
        ["openstack"] => Ok(Served::listing(&versions::openstack_listing(ask.today))),
        ["openstack", version, path @ ..] => openstack_item(p, cfg, version, path),
        [_ec2] => Ok(Served::listing(&versions::ec2_listing())),
        [_ec2, version, path @ ..] => {
            let version = Version::ec2(version).ok_or(MetadataError::NotFound)?;
            let tree = ec2::tree(&p.instance, version, &cfg.dhcp_domain, ask.remote_address);
            let node = tree.find(path).ok_or(MetadataError::NotFound)?;
            Ok(Served::text(node.print()))
        }
    }
}

fn openstack_item(
    p: &Prepared,
    cfg: &MetadataConfig,
    version: &str,
    path: &[&str],
) -> Result<Served> {
    // `content` is no version, so `openstack/content/<n>` (injected files,
    // which Stratus does not have) is a 404 here.
    let v = Version::openstack(version).ok_or(MetadataError::NotFound)?;
    let inst = &p.instance;
    let item = path.join("/");
    match item.as_str() {
        "" | "version" => Ok(Served::listing(&version_listing(p, v))),
        "meta_data.json" => Served::json(&meta_data::meta_data(inst, v, &cfg.dhcp_domain)),
        "user_data" => match &inst.user_data {
            Some(ud) => Ok(Served::text(ud.clone())),
            None => Err(MetadataError::NotFound),
        },
        "password" if v.os_at_least(GRIZZLY) => Ok(Served::Password),
        "vendor_data.json" if v.os_at_least(HAVANA) && cfg.static_json_enabled() => {
            Served::json(&p.vendor_static)
        }
        "vendor_data2.json" if v.os_at_least(NEWTON_TWO) => Ok(Served::VendorData2),
        // Nova serves this for every version, and as text/plain.
        "network_data.json" => {
            let body = match network_data::network_data(inst) {
                Some(nd) => json_body(&nd)?,
                None => json_body(&serde_json::json!({}))?,
            };
            Ok(Served::text(body))
        }
        _ => Err(MetadataError::NotFound),
    }
}

/// `openstack/<ver>/`: the files this version has for this instance.
fn version_listing(p: &Prepared, v: Version) -> Vec<&'static str> {
    let mut items = vec!["meta_data.json"];
    if p.instance.user_data.is_some() {
        items.push("user_data");
    }
    if v.os_at_least(GRIZZLY) {
        items.push("password");
    }
    if v.os_at_least(HAVANA) {
        items.push("vendor_data.json");
    }
    if v.os_at_least(versions::LIBERTY) {
        items.push("network_data.json");
    }
    if v.os_at_least(NEWTON_TWO) {
        items.push("vendor_data2.json");
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_posix_normpath() {
        assert_eq!(normalize("/"), Vec::<&str>::new());
        assert_eq!(normalize("//./"), Vec::<&str>::new());
        assert_eq!(normalize("/latest/meta-data/"), vec!["latest", "meta-data"]);
        assert_eq!(
            normalize("/openstack/../latest//meta-data/./hostname"),
            vec!["latest", "meta-data", "hostname"]
        );
        assert_eq!(normalize("/../.."), Vec::<&str>::new());
    }
}
