//! `/limits`, `/os-availability-zone` and `/extensions`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::{read_scope, AppState};
use crate::db;
use crate::domain::quota::Limits;
use crate::error::VolumeError;

/// The absolute limits of the caller's project and what it uses.
pub async fn limits(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
) -> Result<Json<Value>, VolumeError> {
    let scope = read_scope(&ctx, false, "limits_extension:used_limits")?;
    let project = scope
        .filter()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut conn = state.db.conn().await?;
    let l = db::quota_limits(&mut conn, &project, &Limits::defaults(&state.config.quota)).await?;
    let u = db::usage_get(&mut conn, &project).await?;
    Ok(Json(json!({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": l.get("volumes"),
        "maxTotalSnapshots": l.get("snapshots"),
        "maxTotalVolumeGigabytes": l.get("gigabytes"),
        "maxTotalBackups": l.get("backups"),
        "maxTotalBackupGigabytes": l.get("backup_gigabytes"),
        "totalVolumesUsed": u.volumes,
        "totalSnapshotsUsed": u.snapshots,
        "totalGigabytesUsed": u.gigabytes,
        "totalBackupsUsed": 0,
        "totalBackupGigabytesUsed": 0,
    }}})))
}

pub async fn availability_zones(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
) -> Result<Json<Value>, VolumeError> {
    read_scope(&ctx, false, "volume_extension:availability_zone_list")?;
    Ok(Json(json!({"availabilityZoneInfo": [
        {"zoneName": state.config.availability_zone, "zoneState": {"available": true}}
    ]})))
}

/// The API extensions this service implements, and only those.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "os-admin-actions",
        "AdminActions",
        "Enable admin actions (os-reset_status).",
    ),
    (
        "os-availability-zone",
        "AvailabilityZones",
        "Describe Availability Zones.",
    ),
    (
        "os-extended-snapshot-attributes",
        "ExtendedSnapshotAttributes",
        "Extended SnapshotAttributes support.",
    ),
    ("os-quota-sets", "Quotas", "Quota management support."),
    (
        "os-types-extra-specs",
        "TypesExtraSpecs",
        "Type extra specs support.",
    ),
    ("os-types-manage", "TypesManage", "Types manage support."),
    (
        "os-vol-host-attr",
        "VolumeHostAttribute",
        "Expose host as an attribute of a volume.",
    ),
    (
        "os-vol-mig-status-attr",
        "VolumeMigStatusAttribute",
        "Expose migration_status as an attribute of a volume.",
    ),
    (
        "os-vol-tenant-attr",
        "VolumeTenantAttribute",
        "Expose the internal project_id as an attribute of a volume.",
    ),
    (
        "os-volume-actions",
        "VolumeActions",
        "Enable volume actions.",
    ),
];

pub async fn extensions(Ctx(ctx): Ctx) -> Result<Json<Value>, VolumeError> {
    read_scope(&ctx, false, "volume:extensions")?;
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name, description)| {
            json!({
                "alias": alias, "name": name, "description": description,
                "links": [], "updated": "2012-12-12T00:00:00+00:00",
            })
        })
        .collect();
    Ok(Json(json!({"extensions": list})))
}
