//! Quotas: the limits of a project (defaults from `[volume.quota]`, or the
//! admin's `os-quota-sets` values) and the checks a create or an extend must
//! pass against the project's current usage.

use std::collections::BTreeMap;

use crate::config::QuotaDefaults;
use crate::error::VolumeError;

/// The resources `os-quota-sets` shows, in Cinder's names.
pub const RESOURCES: &[&str] = &[
    "volumes",
    "snapshots",
    "gigabytes",
    "backups",
    "backup_gigabytes",
    "groups",
    "per_volume_gigabytes",
];

/// A project's limits by resource name (`-1` unlimited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits(pub BTreeMap<String, i64>);

impl Limits {
    pub fn defaults(d: &QuotaDefaults) -> Self {
        let mut m = BTreeMap::new();
        m.insert("volumes".to_owned(), d.volumes);
        m.insert("snapshots".to_owned(), d.snapshots);
        m.insert("gigabytes".to_owned(), d.gigabytes);
        m.insert("backups".to_owned(), d.backups);
        m.insert("backup_gigabytes".to_owned(), d.backup_gigabytes);
        m.insert("groups".to_owned(), d.groups);
        m.insert("per_volume_gigabytes".to_owned(), d.per_volume_gigabytes);
        Self(m)
    }

    pub fn get(&self, resource: &str) -> i64 {
        self.0.get(resource).copied().unwrap_or(-1)
    }
}

/// What a project uses now (snapshot sizes count toward `gigabytes`, as in
/// Cinder without `no_snapshot_gb_quota`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub volumes: i64,
    pub snapshots: i64,
    pub gigabytes: i64,
}

impl Usage {
    pub fn get(&self, resource: &str) -> i64 {
        match resource {
            "volumes" => self.volumes,
            "snapshots" => self.snapshots,
            "gigabytes" => self.gigabytes,
            _ => 0,
        }
    }
}

fn over(limit: i64, used: i64, add: i64) -> bool {
    limit >= 0 && used.saturating_add(add) > limit
}

/// A new volume of `size` GiB (`volumes` +1 unless `count` is false, as for
/// an extend).
pub fn check_volume(
    limits: &Limits,
    usage: &Usage,
    size: i64,
    count: bool,
) -> Result<(), VolumeError> {
    let per = limits.get("per_volume_gigabytes");
    if per >= 0 && size > per {
        return Err(VolumeError::bad(format!(
            "Volume size '{size}' GB cannot be smaller than the snapshot size or greater than the per-volume limit of {per} GB."
        )));
    }
    if count && over(limits.get("volumes"), usage.volumes, 1) {
        return Err(VolumeError::OverQuota(format!(
            "VolumeLimitExceeded: Maximum number of volumes allowed ({}) exceeded for quota 'volumes'.",
            limits.get("volumes")
        )));
    }
    Ok(())
}

/// `add` more GiB (a new volume or snapshot, or the growth of an extend).
pub fn check_gigabytes(limits: &Limits, usage: &Usage, add: i64) -> Result<(), VolumeError> {
    let limit = limits.get("gigabytes");
    if over(limit, usage.gigabytes, add) {
        return Err(VolumeError::OverQuota(format!(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested {add}G, quota is {limit}G and {}G has been consumed.",
            usage.gigabytes
        )));
    }
    Ok(())
}

pub fn check_snapshot(limits: &Limits, usage: &Usage, size: i64) -> Result<(), VolumeError> {
    if over(limits.get("snapshots"), usage.snapshots, 1) {
        return Err(VolumeError::OverQuota(format!(
            "SnapshotLimitExceeded: Maximum number of snapshots allowed ({}) exceeded",
            limits.get("snapshots")
        )));
    }
    check_gigabytes(limits, usage, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_and_minus_one_is_unlimited() {
        let l = Limits::defaults(&QuotaDefaults::default());
        let u = Usage {
            volumes: 10,
            snapshots: 0,
            gigabytes: 999,
        };
        assert!(matches!(
            check_volume(&l, &u, 1, true),
            Err(VolumeError::OverQuota(_))
        ));
        assert!(check_volume(&l, &u, 1, false).is_ok());
        assert!(check_gigabytes(&l, &u, 1).is_ok());
        assert!(matches!(
            check_gigabytes(&l, &u, 2),
            Err(VolumeError::OverQuota(_))
        ));
        let mut free = l.clone();
        free.0.insert("gigabytes".into(), -1);
        assert!(check_gigabytes(&free, &u, 1 << 40).is_ok());
    }
}
