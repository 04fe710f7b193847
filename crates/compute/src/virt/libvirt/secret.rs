//! The libvirt secrets that Ceph volumes need: QEMU authenticates to the
//! cluster with the cephx key held by the secret that a disk's
//! `<auth><secret uuid=.../>` names. Nova expects an operator to define it
//! on every host beforehand; when the volume service sends the key in the
//! connection info (Cinder's `keyring`), the driver defines it itself.
//!
//! Pure text here; the driver makes the calls.

use base64::Engine as _;
use stratus_volume_client::RbdConnection;

use crate::model::guest::DiskSource;

/// A secret to define: its UUID, the user it is for, and the key's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CephSecret {
    pub uuid: String,
    pub user: String,
    /// The decoded key (libvirt keeps raw bytes; `virsh secret-set-value
    /// --base64` decodes the same way).
    pub value: Vec<u8>,
}

/// The secrets of the rbd volumes among `disks` that came with a key.
/// Disks without one rely on a secret defined beforehand.
pub fn ceph_secrets<'a>(disks: impl IntoIterator<Item = &'a DiskSource>) -> Vec<CephSecret> {
    let mut out: Vec<CephSecret> = Vec::new();
    for d in disks {
        let DiskSource::Volume {
            connection_info, ..
        } = d
        else {
            continue;
        };
        if connection_info["driver_volume_type"] != "rbd" {
            continue;
        }
        let Ok(c) = serde_json::from_value::<RbdConnection>(connection_info["data"].clone()) else {
            continue;
        };
        let (Some(uuid), Some(user), Some(key)) =
            (c.secret_uuid.clone(), c.auth_username.clone(), c.key())
        else {
            continue;
        };
        let Ok(value) = base64::engine::general_purpose::STANDARD.decode(key.as_bytes()) else {
            continue;
        };
        if !out.iter().any(|s| s.uuid == uuid) {
            out.push(CephSecret { uuid, user, value });
        }
    }
    out
}

/// The `<secret>` document of `s`: kept across libvirtd restarts, its
/// value not readable back through the API.
pub fn secret_xml(s: &CephSecret) -> String {
    format!(
        "<secret ephemeral='no' private='yes'>\n  <uuid>{uuid}</uuid>\n  <usage type='ceph'>\n    <name>client.{user} secret {uuid}</name>\n  </usage>\n</secret>\n",
        uuid = super::xml::esc(&s.uuid),
        user = super::xml::esc(&s.user),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rbd(uuid: &str, keyring: Option<&str>) -> DiskSource {
        DiskSource::Volume {
            volume_id: "v".into(),
            connection_info: serde_json::json!({"driver_volume_type": "rbd",
                "data": {"name": "p/volume-v", "auth_enabled": true, "auth_username": "cinder",
                    "secret_uuid": uuid, "keyring": keyring}}),
        }
    }

    #[test]
    fn rbd_volumes_with_a_key_need_their_secret_once() {
        let key = "AQBzc2VjcmV0IGtleSBieXRlcw==";
        let keyring = format!("[client.cinder]\n\tkey = {key}\n");
        let file = DiskSource::Local { path: "/x".into() };
        let disks = [
            rbd("u-1", Some(&keyring)),
            rbd("u-1", Some(&keyring)),
            rbd("u-2", None),
            file,
        ];
        let s = ceph_secrets(&disks);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].uuid, "u-1");
        assert_eq!(s[0].user, "cinder");
        assert_eq!(
            s[0].value,
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .expect("b64")
        );
        let x = secret_xml(&s[0]);
        assert!(x.contains("<uuid>u-1</uuid>"));
        assert!(x.contains("<usage type='ceph'>"));
        assert!(x.contains("<name>client.cinder secret u-1</name>"));
    }
}
