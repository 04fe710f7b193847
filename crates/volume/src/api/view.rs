//! Response bodies, as Cinder's views build them, by microversion and by
//! whether the caller is an admin.

use serde_json::{json, Value};

use super::Microversion;
use crate::domain::{Attachment, Snapshot, Volume, VolumeType};

/// Cinder's timestamps: `2023-01-01T00:00:00.000000`.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn link(base: &str, project: &str, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{base}/v3/{project}/{kind}/{id}")},
        {"rel": "bookmark", "href": format!("{base}/{project}/{kind}/{id}")},
    ])
}

/// The entry of a list without details.
pub fn volume_summary(v: &Volume, base: &str) -> Value {
    json!({"id": v.id.to_string(), "name": v.name, "links": link(base, &v.project_id, "volumes", &v.id.to_string())})
}

pub struct Viewer {
    pub admin: bool,
    pub version: Microversion,
}

/// The attachments a volume shows: attached ones only.
fn volume_attachments(v: &Volume) -> Value {
    Value::Array(
        v.attachments
            .iter()
            .filter(|a| crate::db::is_attached(a))
            .map(|a| {
                json!({
                    "id": v.id.to_string(),
                    "attachment_id": a.id.to_string(),
                    "volume_id": v.id.to_string(),
                    "server_id": a.instance_uuid,
                    "host_name": a.attached_host,
                    "device": a.mountpoint,
                    "attached_at": a.attach_time.map(ts),
                })
            })
            .collect(),
    )
}

pub fn volume_detail(v: &Volume, vt: Option<&VolumeType>, base: &str, who: &Viewer) -> Value {
    let mut o = json!({
        "id": v.id.to_string(),
        "name": v.name,
        "description": v.description,
        "status": v.status.as_str(),
        "size": v.size,
        "availability_zone": v.availability_zone,
        "created_at": ts(v.created_at),
        "updated_at": ts(v.updated_at),
        "attachments": volume_attachments(v),
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": false,
        "multiattach": false,
        "metadata": v.metadata,
        "snapshot_id": v.snapshot_id.map(|s| s.to_string()),
        "source_volid": v.source_volid.map(|s| s.to_string()),
        "volume_type": vt.map(|t| t.name.clone()),
        "user_id": v.user_id,
        "links": link(base, &v.project_id, "volumes", &v.id.to_string()),
        "replication_status": null,
        "consistencygroup_id": null,
        "migration_status": null,
        "os-vol-tenant-attr:tenant_id": v.project_id,
    });
    if let Some(image) = v.image_id {
        o["volume_image_metadata"] = json!({"image_id": image.to_string()});
    }
    if who.admin {
        o["os-vol-host-attr:host"] = json!(v.host);
        o["os-vol-mig-status-attr:migstat"] = Value::Null;
        o["os-vol-mig-status-attr:name_id"] = Value::Null;
    }
    let ver = who.version;
    if ver.at_least(13) {
        o["group_id"] = Value::Null;
    }
    if ver.at_least(21) && who.admin {
        o["provider_id"] = Value::Null;
    }
    if ver.at_least(48) {
        o["shared_targets"] = json!(false);
        o["service_uuid"] = Value::Null;
    }
    if ver.at_least(61) && who.admin {
        o["cluster_name"] = Value::Null;
    }
    if ver.at_least(63) {
        o["volume_type_id"] = json!(v.volume_type_id.to_string());
    }
    if ver.at_least(65) {
        o["consumes_quota"] = json!(true);
    }
    o
}

pub fn snapshot(s: &Snapshot, who: &Viewer) -> Value {
    let mut o = json!({
        "id": s.id.to_string(),
        "name": s.name,
        "description": s.description,
        "status": s.status.as_str(),
        "size": s.size,
        "volume_id": s.volume_id.to_string(),
        "created_at": ts(s.created_at),
        "updated_at": ts(s.updated_at),
        "metadata": s.metadata,
        "os-extended-snapshot-attributes:progress":
            if s.status == crate::domain::SnapshotStatus::Available { "100%" } else { "0%" },
        "os-extended-snapshot-attributes:project_id": s.project_id,
    });
    if who.version.at_least(14) {
        o["group_snapshot_id"] = Value::Null;
    }
    if who.version.at_least(41) {
        o["user_id"] = json!(s.user_id);
    }
    if who.version.at_least(65) {
        o["consumes_quota"] = json!(true);
    }
    o
}

pub fn volume_type(t: &VolumeType, admin: bool) -> Value {
    let mut o = json!({
        "id": t.id.to_string(),
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
    });
    // Cinder shows extra specs to admins only (their keys can say which
    // backend is behind a type).
    if admin {
        o["extra_specs"] = json!(t.extra_specs);
        o["qos_specs_id"] = Value::Null;
    }
    o
}

pub fn attachment(a: &Attachment) -> Value {
    json!({
        "id": a.id.to_string(),
        "status": a.status.as_str(),
        "instance": a.instance_uuid,
        "volume_id": a.volume_id.to_string(),
        "attached_at": a.attach_time.map(ts),
        "detached_at": a.detach_time.map(ts),
        "attach_mode": a.attach_mode,
        "connection_info": a.connection_info,
    })
}

pub fn attachment_summary(a: &Attachment) -> Value {
    json!({
        "id": a.id.to_string(),
        "status": a.status.as_str(),
        "instance": a.instance_uuid,
        "volume_id": a.volume_id.to_string(),
    })
}
