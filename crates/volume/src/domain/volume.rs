//! A volume and Cinder's volume status machine.
//!
//! ```text
//!   creating ──> available <──> reserved/attaching ──> in-use <──> detaching
//!      │            │  ^                                  │
//!      v            v  │                                  v
//!    error      extending                               (extend while
//!                   │                                    attached: 3.42)
//!                   v
//!            error_extending
//!   available / error / error_* ──> deleting ──> (row deleted)
//!                                       │
//!                                       v
//!                                 error_deleting
//! ```
//!
//! Every change is a compare-and-swap in SQL
//! ([`crate::db::volume_set_status`]), from the states listed here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use stratus_common::ids::{ImageId, SnapshotId, VolumeId, VolumeTypeId};

use super::Attachment;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($v),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }
        }
        impl std::str::FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($s => Ok($name::$v),)* _ => Err(()) }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use str_enum;

str_enum!(
    /// Cinder's volume `status`.
    VolumeStatus {
        Creating => "creating",
        Available => "available",
        Reserved => "reserved",
        Attaching => "attaching",
        Detaching => "detaching",
        InUse => "in-use",
        Maintenance => "maintenance",
        Deleting => "deleting",
        Error => "error",
        ErrorDeleting => "error_deleting",
        ErrorRestoring => "error_restoring",
        ErrorExtending => "error_extending",
        ErrorManaging => "error_managing",
        Extending => "extending",
        Downloading => "downloading",
        Uploading => "uploading",
        Retyping => "retyping",
        BackingUp => "backing-up",
        RestoringBackup => "restoring-backup",
        AwaitingTransfer => "awaiting-transfer",
    }
);

impl VolumeStatus {
    /// The states a volume may be deleted from (Cinder's `volume.api.delete`
    /// without `force`).
    pub const DELETABLE: &'static [VolumeStatus] = &[
        VolumeStatus::Available,
        VolumeStatus::Error,
        VolumeStatus::ErrorRestoring,
        VolumeStatus::ErrorExtending,
        VolumeStatus::ErrorManaging,
    ];
}

/// The volume record.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    pub id: VolumeId,
    pub project_id: String,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB.
    pub size: i64,
    pub status: VolumeStatus,
    /// `attached` or `detached` (Cinder's `attach_status`).
    pub attach_status: String,
    pub availability_zone: String,
    pub volume_type_id: VolumeTypeId,
    pub bootable: bool,
    pub readonly: bool,
    pub snapshot_id: Option<SnapshotId>,
    pub source_volid: Option<VolumeId>,
    pub image_id: Option<ImageId>,
    /// The backend that holds it (its manager's topic is `volume.<backend>`).
    pub backend: String,
    pub host: String,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Filled in by readers that show attachments (the attached ones).
    pub attachments: Vec<Attachment>,
}

/// Where a new volume's data comes from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VolumeSource {
    Blank,
    Image { image_id: ImageId },
    Snapshot { snapshot_id: SnapshotId },
    Volume { volume_id: VolumeId },
}

/// Cinder's size check: a positive whole number of GiB.
pub fn parse_size(v: &serde_json::Value) -> Result<i64, crate::error::VolumeError> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_i64(),
        // cinderclient sends numbers, older clients strings.
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n > 0 && n <= i64::from(i32::MAX) => Ok(n),
        _ => Err(crate::error::VolumeError::bad(format!(
            "Invalid input received: Volume size '{v}' must be an integer and greater than 0."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in VolumeStatus::ALL {
            assert_eq!(s.as_str().parse::<VolumeStatus>(), Ok(*s));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&serde_json::json!(1)).ok(), Some(1));
        assert_eq!(parse_size(&serde_json::json!("2")).ok(), Some(2));
        assert!(parse_size(&serde_json::json!(0)).is_err());
        assert!(parse_size(&serde_json::json!(-1)).is_err());
        assert!(parse_size(&serde_json::json!(1.5)).is_err());
        assert!(parse_size(&serde_json::json!(null)).is_err());
        assert!(parse_size(&serde_json::json!(1u64 << 40)).is_err());
    }
}
