//! Secrets kept in the data dir: the admin password that `stratus up`
//! generates on its first run, so that a second run on the same
//! dir finds the same one. Files are created with mode 0600 inside a data
//! dir of mode 0700, since they hold credentials.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;
use rand::distributions::Alphanumeric;
use rand::Rng;

pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

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

    #[test]
    fn data_dir_is_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("a/b");
        ensure_data_dir(&d).expect("create");
        let mode = std::fs::metadata(&d).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
