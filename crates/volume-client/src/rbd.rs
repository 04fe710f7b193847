//! Cinder's `rbd` connection info (`driver_volume_type: "rbd"`), as the
//! volume service's rbd backend writes it and a compute host reads it to
//! reach the image through QEMU's RBD driver.

use serde::{Deserialize, Serialize};

/// The `data` of an `rbd` connection info.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RbdConnection {
    /// `pool/image`.
    pub name: String,
    /// The monitors: `hosts[i]:ports[i]`.
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub auth_enabled: bool,
    /// The cephx user, without `client.`.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// `ceph`.
    #[serde(default)]
    pub secret_type: Option<String>,
    /// The libvirt secret holding the user's key.
    #[serde(default)]
    pub secret_uuid: Option<String>,
    /// A keyring with the user's key, when the volume service gives it
    /// (Cinder's `rbd_keyring_conf`); else the secret must exist already.
    #[serde(default)]
    pub keyring: Option<String>,
    #[serde(default)]
    pub discard: bool,
}

impl RbdConnection {
    /// The user's key (base64, as in a keyring), when a keyring came.
    pub fn key(&self) -> Option<String> {
        let user = self.auth_username.as_deref()?;
        keyring_key(self.keyring.as_deref()?, &format!("client.{user}"))
    }
}

/// The `key = ...` of section `[entity]` in a Ceph keyring file.
pub fn keyring_key(text: &str, entity: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name == entity;
        } else if inside {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "key" {
                    return Some(v.trim().to_owned());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_read_from_the_users_section_of_a_keyring() {
        let text = "[mon.]\n\tkey = MONKEY==\n\tcaps mon = \"allow *\"\n[client.admin]\n\tkey = ADMINKEY==\n";
        assert_eq!(
            keyring_key(text, "client.admin").as_deref(),
            Some("ADMINKEY==")
        );
        assert_eq!(keyring_key(text, "mon.").as_deref(), Some("MONKEY=="));
        assert_eq!(keyring_key(text, "client.cinder"), None);
        let c = RbdConnection {
            auth_username: Some("admin".into()),
            keyring: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(c.key().as_deref(), Some("ADMINKEY=="));
    }
}
