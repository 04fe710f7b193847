//! Cinder v3's records as compute reads and writes them: the fields it
//! uses typed, the rest left out (serde ignores them).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_common::ids::{AttachmentId, VolumeId};

/// A volume (`GET /v3/volumes/{id}`, `{"volume": ...}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Volume {
    pub id: VolumeId,
    #[serde(default)]
    pub name: Option<String>,
    /// Cinder's status: `available`, `reserved`, `attaching`, `in-use`,
    /// `creating`, `error`, ...
    pub status: String,
    pub size: i64,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// `"true"` / `"false"`, as Cinder sends it.
    #[serde(default)]
    pub bootable: Option<String>,
    #[serde(default)]
    pub attachments: Vec<VolumeAttachmentRef>,
    #[serde(default)]
    pub multiattach: bool,
}

impl Volume {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }
}

/// One attachment as a volume lists it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct VolumeAttachmentRef {
    pub attachment_id: AttachmentId,
    #[serde(default)]
    pub server_id: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
}

/// What `POST /v3/volumes` is given; `None` fields are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NewVolume {
    /// GiB; `None` with a snapshot: the snapshot's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Made from this image (boot from volume).
    #[serde(rename = "imageRef", skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    /// Made from this volume snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

/// An attachment (`{"attachment": ...}`, 3.27).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    /// `reserved`, `attaching`, `attached`, ...
    pub status: String,
    pub volume_id: VolumeId,
    #[serde(default)]
    pub instance: Option<String>,
    #[serde(default)]
    pub attach_mode: Option<String>,
    /// `{"driver_volume_type": ..., "data": {...}}` once a connector was
    /// given; `None` while only reserved.
    #[serde(default)]
    pub connection_info: Option<Value>,
}

/// What a host tells the volume service about itself so that it answers
/// with the connection info for that host (os-brick's connector
/// properties, of which the file and RBD backends read `host`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connector {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator: Option<String>,
    pub multipath: bool,
    pub platform: String,
    pub os_type: String,
    /// The guest device the volume will be (`/dev/vdb`); Cinder shows it as
    /// the attachment's `device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
}

impl Connector {
    /// The connector of a Linux x86_64 host named `host`.
    pub fn for_host(host: &str, mountpoint: Option<String>) -> Self {
        Self {
            host: host.to_owned(),
            ip: None,
            initiator: None,
            multipath: false,
            platform: "x86_64".to_owned(),
            os_type: "linux".to_owned(),
            mountpoint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_cinder_shapes() {
        let v: Volume = serde_json::from_value(json!({
            "id": "6edbc2f4-1507-44f8-ac0d-eed1d2608d38", "name": null, "status": "in-use",
            "size": 1, "bootable": "false", "multiattach": false, "extra": 1,
            "attachments": [{"id": "6edbc2f4-1507-44f8-ac0d-eed1d2608d38",
                "attachment_id": "8b1ec3ee-a66c-4ce2-9e6a-2eb5e1a3e8f4",
                "server_id": "s", "device": "/dev/vdb", "host_name": null}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.attachments.len(), 1);
        assert!(!v.is_available());
        let a: Attachment = serde_json::from_value(json!({
            "id": "8b1ec3ee-a66c-4ce2-9e6a-2eb5e1a3e8f4", "status": "reserved",
            "instance": "s", "volume_id": "6edbc2f4-1507-44f8-ac0d-eed1d2608d38",
            "attached_at": null, "detached_at": null, "attach_mode": "rw", "connection_info": null
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.connection_info, None);
        let n = serde_json::to_value(NewVolume {
            size: Some(2),
            image_ref: Some("i".into()),
            ..NewVolume::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n, json!({"size": 2, "imageRef": "i"}));
    }
}
