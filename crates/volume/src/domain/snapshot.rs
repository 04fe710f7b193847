//! A volume snapshot: `creating` -> `available` | `error`; `available` |
//! `error` -> `deleting` -> gone (or `error_deleting`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use stratus_common::ids::{SnapshotId, VolumeId};

use super::volume::str_enum;

str_enum!(
    /// Cinder's snapshot `status`.
    SnapshotStatus {
        Creating => "creating",
        Available => "available",
        Deleting => "deleting",
        Error => "error",
        ErrorDeleting => "error_deleting",
    }
);

#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub project_id: String,
    pub user_id: Option<String>,
    pub volume_id: VolumeId,
    pub name: Option<String>,
    pub description: Option<String>,
    pub size: i64,
    pub status: SnapshotStatus,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
