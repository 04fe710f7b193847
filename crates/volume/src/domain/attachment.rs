//! A volume attachment (the attachments API of 3.27 and the legacy
//! `os-attach`): `reserved` -> `attaching` (connector given) -> `attached`
//! (`os-complete` / `os-attach`) -> deleted (`os-detach` / DELETE).

use chrono::{DateTime, Utc};
use stratus_common::ids::{AttachmentId, VolumeId};

use super::volume::str_enum;

str_enum!(
    /// Cinder's `attach_status` of an attachment.
    AttachStatus {
        Reserved => "reserved",
        Attaching => "attaching",
        Attached => "attached",
        Detaching => "detaching",
        Detached => "detached",
        ErrorAttaching => "error_attaching",
    }
);

#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub volume_id: VolumeId,
    pub project_id: String,
    /// The server (Nova instance) uuid, as Cinder keeps it: a string.
    pub instance_uuid: Option<String>,
    pub attached_host: Option<String>,
    pub mountpoint: Option<String>,
    /// `rw` or `ro`.
    pub attach_mode: String,
    pub status: AttachStatus,
    pub connector: Option<serde_json::Value>,
    pub connection_info: Option<serde_json::Value>,
    pub attach_time: Option<DateTime<Utc>>,
    pub detach_time: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
