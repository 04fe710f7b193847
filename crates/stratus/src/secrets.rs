//! Secrets kept in the data dir: the admin password and the metadata proxy's
//! shared secret that `stratus up` generates on its first run, so that a
//! second run on the same dir finds the same ones; and the service user's
//! password, which identity's bootstrap keeps there. Files are created with
//! mode 0600 inside a data dir of mode 0700, since they hold credentials.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;
use rand::distributions::Alphanumeric;
use rand::Rng;
use stratus_common::Config;

use crate::settings::{section_str, set_key};

pub const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// The key of the metadata proxy's `X-Instance-ID-Signature`.
pub const METADATA_SECRET_FILE: &str = "metadata-secret";
/// Where identity's bootstrap keeps the service user's password when the
/// configuration names none (`stratus_identity::bootstrap` writes it).
pub const SERVICE_PASSWORD_FILE: &str = "service-user-password";

/// Where the metadata shared secret may be configured: the network
/// server's key (the proxy signs with it), compute's (the metadata API
/// checks with it) and the metadata API's own.
const METADATA_SECRET_KEYS: [(&str, &str); 3] = [
    ("network", "metadata_secret"),
    ("compute", "metadata_secret"),
    ("metadata", "shared_secret"),
];

/// Makes the network server and the metadata API agree on the metadata
/// proxy's shared secret: the one the configuration names (in any of
/// [`METADATA_SECRET_KEYS`]), else the one kept in the data dir, else a new
/// one kept there; set in `[network] metadata_secret` and
/// `[compute] metadata_secret` where those are empty.
pub fn fill_metadata_secret(config: &mut Config) -> anyhow::Result<Origin> {
    let configured: Vec<String> = METADATA_SECRET_KEYS
        .iter()
        .map(|(section, key)| section_str(config, section, key))
        .filter(|s| !s.is_empty())
        .collect();
    if configured.windows(2).any(|w| w[0] != w[1]) {
        tracing::warn!(
            "[network] metadata_secret, [compute] metadata_secret and [metadata] shared_secret \
             differ: guests' metadata requests will be refused"
        );
    }
    let (secret, origin) = password(
        &config.data_dir,
        METADATA_SECRET_FILE,
        configured.first().map(String::as_str),
    )?;
    for (section, key) in &METADATA_SECRET_KEYS[..2] {
        if section_str(config, section, key).is_empty() {
            set_key(config, section, key, secret.as_str())?;
        }
    }
    Ok(origin)
}

/// Fills `config.service_user.password` from the file identity's bootstrap
/// keeps in the data dir, when the configuration names none (a `serve`
/// process sharing the data dir of `stratus identity bootstrap`). Whether
/// it is filled afterwards.
pub fn fill_service_password(config: &mut Config) -> anyhow::Result<bool> {
    if !config.service_user.password.is_empty() {
        return Ok(true);
    }
    let path = config.data_dir.join(SERVICE_PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => {
            config.service_user.password = s.trim().to_owned();
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Creates the data dir (and its parents) readable by its owner only.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))
}

/// A password of 24 letters and digits (~142 bits) from a CSPRNG.
pub fn generate_password() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// Where a secret came from, to say so on the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Config,
    Stored,
    Generated,
}

/// `configured` when given (and non-empty), else the content of
/// `dir/file`, else a new password stored there.
pub fn password(
    dir: &Path,
    file: &str,
    configured: Option<&str>,
) -> anyhow::Result<(String, Origin)> {
    if let Some(p) = configured.filter(|p| !p.is_empty()) {
        return Ok((p.to_owned(), Origin::Config));
    }
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok((s.trim().to_owned(), Origin::Stored)),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let new = generate_password();
    write_private(&path, &format!("{new}\n"))?;
    Ok((new, Origin::Generated))
}

/// Writes `content` to `path` with mode 0600 (replacing the file, so that
/// an old file with looser permissions does not keep them).
pub fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generated_password_is_kept_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p1, o1) = password(dir.path(), "pw", None).expect("first");
        assert_eq!(o1, Origin::Generated);
        assert_eq!(p1.len(), 24);
        let (p2, o2) = password(dir.path(), "pw", None).expect("second");
        assert_eq!((p2.as_str(), o2), (p1.as_str(), Origin::Stored));
        let mode = std::fs::metadata(dir.path().join("pw"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn configured_password_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (p, o) = password(dir.path(), "pw", Some("given")).expect("pw");
        assert_eq!((p.as_str(), o), ("given", Origin::Config));
        assert!(!dir.path().join("pw").exists());
    }

    fn config_in(dir: &Path, toml: &str) -> Config {
        let mut c = Config::from_toml_and_env(toml, Vec::new()).expect("config");
        c.data_dir = dir.to_owned();
        c
    }

    #[test]
    fn metadata_secret_is_generated_once_and_shared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config_in(dir.path(), "");
        assert_eq!(
            fill_metadata_secret(&mut c).expect("fill"),
            Origin::Generated
        );
        let net = section_str(&c, "network", "metadata_secret");
        assert_eq!(net.len(), 24);
        assert_eq!(section_str(&c, "compute", "metadata_secret"), net);
        let net_cfg: stratus_network::NetworkConfig = c.section("network").expect("network");
        assert_eq!(net_cfg.metadata_secret, net);
        let meta = crate::services::compute::metadata_config(&c).expect("metadata");
        assert_eq!(meta.shared_secret, net);

        let mut again = config_in(dir.path(), "");
        assert_eq!(
            fill_metadata_secret(&mut again).expect("fill"),
            Origin::Stored
        );
        assert_eq!(section_str(&again, "compute", "metadata_secret"), net);
    }

    #[test]
    fn a_configured_metadata_secret_is_used_by_both_sides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config_in(dir.path(), "[metadata]\nshared_secret = \"given\"\n");
        assert_eq!(fill_metadata_secret(&mut c).expect("fill"), Origin::Config);
        assert_eq!(section_str(&c, "network", "metadata_secret"), "given");
        assert_eq!(section_str(&c, "compute", "metadata_secret"), "given");
        assert!(!dir.path().join(METADATA_SECRET_FILE).exists());

        let mut c = config_in(
            dir.path(),
            "[network]\nmetadata_secret = \"n\"\nmtu = 1400\n",
        );
        fill_metadata_secret(&mut c).expect("fill");
        assert_eq!(section_str(&c, "compute", "metadata_secret"), "n");
        let net_cfg: stratus_network::NetworkConfig = c.section("network").expect("network");
        assert_eq!(net_cfg.mtu, 1400, "other keys of the section stay");
    }

    #[test]
    fn service_password_comes_from_bootstraps_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config_in(dir.path(), "");
        assert!(!fill_service_password(&mut c).expect("fill"));
        std::fs::write(dir.path().join(SERVICE_PASSWORD_FILE), "pw\n").expect("write");
        assert!(fill_service_password(&mut c).expect("fill"));
        assert_eq!(c.service_user.password, "pw");
        let mut given = config_in(dir.path(), "[service_user]\npassword = \"mine\"\n");
        assert!(fill_service_password(&mut given).expect("fill"));
        assert_eq!(given.service_user.password, "mine");
    }

    #[test]
    fn data_dir_is_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("a/b");
        ensure_data_dir(&d).expect("create");
        let mode = std::fs::metadata(&d).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
