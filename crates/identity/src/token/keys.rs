//! The Fernet key repository on disk, managed exactly as `keystone-manage
//! fernet_setup` / `fernet_rotate` do (`fernet_utils.py`): files named by
//! integers, `0` is the staged key, the highest number is the primary, every
//! key decrypts.
//!
//! Several processes (or hosts sharing the folder) may use one repository, so
//! [`KeyRing`] re-reads it whenever the folder changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::fernet::FernetKey;
use crate::error::{IdentityError, Result};

/// Keys by number, highest (primary) first.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub keys: Vec<(u32, FernetKey)>,
}

impl KeySet {
    pub fn primary(&self) -> Option<&FernetKey> {
        self.keys.first().map(|(_, k)| k)
    }

    pub fn all(&self) -> Vec<FernetKey> {
        self.keys.iter().map(|(_, k)| k.clone()).collect()
    }
}

/// Reads every integer-named, non-empty, valid key file.
pub fn load_keys(dir: &Path) -> Result<KeySet> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(entry.path())?;
        if text.trim().is_empty() {
            continue;
        }
        match FernetKey::from_base64(&text) {
            Some(k) => keys.push((n, k)),
            None => {
                tracing::warn!(file = %entry.path().display(), "ignoring invalid Fernet key file")
            }
        }
    }
    keys.sort_by_key(|k| std::cmp::Reverse(k.0));
    Ok(KeySet { keys })
}

fn write_key(dir: &Path, name: &str, key: &FernetKey) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(key.to_base64().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// `keystone-manage fernet_rotate`: staged `0` becomes primary max+1, a new
/// staged `0` is written, the lowest keys go until `max_active_keys` remain.
/// On an empty or missing repository this is `fernet_setup` (0 and 1).
pub async fn rotate_key_repository(dir: &Path, max_active_keys: u32) -> Result<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || rotate_blocking(&dir, max_active_keys))
        .await
        .map_err(|e| IdentityError::Internal(format!("key rotation task: {e}")))?
}

fn rotate_blocking(dir: &Path, max_active_keys: u32) -> Result<()> {
    if max_active_keys < 2 {
        return Err(IdentityError::validation(
            "max_active_keys must be at least 2 (a staged and a primary key)",
        ));
    }
    create_dir(dir)?;
    let current = load_keys(dir)?;
    if !current.keys.iter().any(|(n, _)| *n == 0) {
        write_key(dir, "0", &FernetKey::generate())?;
    }
    let current = load_keys(dir)?;
    let max = current.keys.first().map(|(n, _)| *n).unwrap_or(0);
    let next = max
        .checked_add(1)
        .ok_or_else(|| IdentityError::Internal("key numbers exhausted".into()))?;
    std::fs::rename(dir.join("0"), dir.join(next.to_string()))?;
    write_key(dir, "0", &FernetKey::generate())?;
    tracing::info!(dir = %dir.display(), primary = next, "rotated Fernet keys");
    let mut numbers: Vec<u32> = load_keys(dir)?.keys.iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    // Staged `0` sorts first but is never removed.
    let excess = numbers.len().saturating_sub(max_active_keys as usize);
    for n in numbers.iter().filter(|n| **n != 0).take(excess) {
        std::fs::remove_file(dir.join(n.to_string()))?;
        tracing::info!(key = n, "removed excess Fernet key");
    }
    Ok(())
}

/// Sets the repository up when it has no keys yet.
pub fn ensure_repository(dir: &Path, max_active_keys: u32) -> Result<()> {
    let empty = match load_keys(dir) {
        Ok(k) => k.keys.is_empty(),
        Err(IdentityError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    if empty {
        rotate_blocking(dir, max_active_keys)?;
    }
    Ok(())
}

/// Keystone warns when the repository is readable by others: whoever reads
/// the keys can mint tokens for anyone.
fn warn_if_readable_by_others(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(dir) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(dir = %dir.display(), "the Fernet key repository is accessible by other users; it should be mode 0700");
            }
        }
    }
}

/// The keys in use, re-read when the folder's modification time changes (a
/// rotation by another process renames and creates files in it).
#[derive(Debug)]
pub struct KeyRing {
    dir: PathBuf,
    state: RwLock<(Option<SystemTime>, Arc<KeySet>)>,
}

impl KeyRing {
    pub fn open(dir: &Path) -> Result<Self> {
        let keys = load_keys(dir)?;
        if keys.keys.is_empty() {
            return Err(IdentityError::Internal(format!(
                "no Fernet keys in {}",
                dir.display()
            )));
        }
        warn_if_readable_by_others(dir);
        let mtime = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        Ok(Self {
            dir: dir.to_owned(),
            state: RwLock::new((mtime, Arc::new(keys))),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Current keys; reloads if the folder changed since the last load.
    pub fn current(&self) -> Arc<KeySet> {
        let mtime = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        if let Ok(guard) = self.state.read() {
            if guard.0 == mtime {
                return guard.1.clone();
            }
        }
        self.reload_with(mtime)
    }

    /// Forces a re-read (after our own rotation, whose mtime may be equal at
    /// the file system's time resolution).
    pub fn reload(&self) -> Arc<KeySet> {
        let mtime = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        self.reload_with(mtime)
    }

    fn reload_with(&self, mtime: Option<SystemTime>) -> Arc<KeySet> {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match load_keys(&self.dir) {
            Ok(k) if !k.keys.is_empty() => *guard = (mtime, Arc::new(k)),
            Ok(_) => {
                tracing::error!(dir = %self.dir.display(), "key repository is empty; keeping the keys in memory")
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read key repository; keeping the keys in memory")
            }
        }
        guard.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<u32> {
        load_keys(dir)
            .expect("load")
            .keys
            .iter()
            .map(|(n, _)| *n)
            .collect()
    }

    #[tokio::test]
    async fn setup_and_rotate_like_keystone_manage() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("fernet-keys");
        ensure_repository(&dir, 3).expect("setup");
        assert_eq!(names(&dir), vec![1, 0]);
        let staged = load_keys(&dir).expect("load").keys[1].1.clone();

        rotate_key_repository(&dir, 3).await.expect("rotate");
        let set = load_keys(&dir).expect("load");
        assert_eq!(names(&dir), vec![2, 1, 0]);
        // The staged key became the primary.
        assert_eq!(set.primary(), Some(&staged));

        rotate_key_repository(&dir, 3).await.expect("rotate");
        assert_eq!(names(&dir), vec![3, 2, 0]);
        rotate_key_repository(&dir, 3).await.expect("rotate");
        assert_eq!(names(&dir), vec![4, 3, 0]);
        ensure_repository(&dir, 3).expect("setup again is a no-op");
        assert_eq!(names(&dir), vec![4, 3, 0]);
        assert!(rotate_key_repository(&dir, 1).await.is_err());

        // Other names and empty files are ignored.
        std::fs::write(dir.join("README"), "x").expect("write");
        std::fs::write(dir.join("9"), "").expect("write");
        assert_eq!(names(&dir), vec![4, 3, 0]);
    }

    #[tokio::test]
    async fn ring_sees_rotation() {
        let tmp = tempfile::tempdir().expect("tmp");
        ensure_repository(tmp.path(), 3).expect("setup");
        let ring = KeyRing::open(tmp.path()).expect("open");
        let before = ring.current().primary().cloned();
        rotate_key_repository(tmp.path(), 3).await.expect("rotate");
        let after = ring.reload().primary().cloned();
        assert_ne!(before, after);
        assert_eq!(ring.current().keys.len(), 3);
    }
}
