//! The query schema of `GET /servers` and `/servers/detail`, per
//! microversion, as Nova's `schemas/servers.py` (`index_query*`) has it:
//!
//! | from | change |
//! |---|---|
//! | 2.1  | `sort_key` one of [`SORT_KEYS`] (the [`IGNORED_SORT_KEYS`] accepted, then dropped); `changes-since` a date-time; unknown keys ignored |
//! | 2.26 | tag filters |
//! | 2.66 | `changes-before` (a date-time) |
//! | 2.73 | `locked` becomes a real sort key and a filter |
//! | 2.75 | ignored sort keys and unknown parameters are 400 |

use super::params;
use super::ApiVersion;
use crate::error::{ComputeError, Result};

/// Nova's `VALID_SORT_KEYS` (before its ignored ones), in its order.
pub const SORT_KEYS: &[&str] = &[
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "availability_zone",
    "config_drive",
    "created_at",
    "display_description",
    "display_name",
    "host",
    "hostname",
    "image_ref",
    "instance_type_id",
    "kernel_id",
    "key_name",
    "launch_index",
    "launched_at",
    "locked_by",
    "node",
    "power_state",
    "progress",
    "project_id",
    "ramdisk_id",
    "root_device_name",
    "task_state",
    "terminated_at",
    "updated_at",
    "user_id",
    "uuid",
    "vm_state",
];

/// Nova's `SERVER_LIST_IGNORE_SORT_KEY`: accepted (and dropped) before
/// 2.75 for backward compatibility; `locked` is a real key from 2.73.
pub const IGNORED_SORT_KEYS: &[&str] = &[
    "architecture",
    "cell_name",
    "cleaned",
    "default_ephemeral_device",
    "default_swap_device",
    "deleted",
    "deleted_at",
    "disable_terminate",
    "ephemeral_gb",
    "ephemeral_key_uuid",
    "id",
    "key_data",
    "launched_on",
    "locked",
    "memory_mb",
    "os_type",
    "reservation_id",
    "root_gb",
    "shutdown_terminate",
    "user_data",
    "vcpus",
    "vm_mode",
];

/// Keys of Nova's `index_query` (2.1) besides sorting and paging.
const FILTER_KEYS: &[&str] = &[
    "user_id",
    "project_id",
    "tenant_id",
    "launch_index",
    "image_ref",
    "image",
    "kernel_id",
    "ramdisk_id",
    "hostname",
    "key_name",
    "power_state",
    "vm_state",
    "task_state",
    "host",
    "node",
    "flavor",
    "reservation_id",
    "launched_at",
    "terminated_at",
    "availability_zone",
    "name",
    "display_name",
    "description",
    "display_description",
    "locked_by",
    "uuid",
    "root_device_name",
    "config_drive",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "progress",
    "sort_key",
    "sort_dir",
    "all_tenants",
    "soft_deleted",
    "deleted",
    "status",
    "changes-since",
    "ip",
    "ip6",
    "created_at",
    "limit",
    "marker",
];

/// Nova's `JOINED_TABLE_QUERY_PARAMS_SERVERS`: in the schema so that the
/// handler can refuse them ("Invalid filter field").
pub const JOINED_TABLE_KEYS: &[&str] = &[
    "block_device_mapping",
    "services",
    "metadata",
    "system_metadata",
    "info_cache",
    "security_groups",
    "pci_devices",
];

const TAG_KEYS: &[&str] = &["tags", "tags-any", "not-tags", "not-tags-any"];

/// The sort keys this microversion's schema allows, in the order Nova's
/// message lists them (Nova builds the 2.73+ lists from a Python set, whose
/// order varies per process; ours is sorted).
pub fn sort_keys(v: ApiVersion) -> Vec<&'static str> {
    let mut valid: Vec<&str> = SORT_KEYS.to_vec();
    if v.at_least(75) {
        valid.push("locked");
        valid.sort_unstable();
        return valid;
    }
    if v.at_least(73) {
        valid.sort_unstable();
        let mut out = vec!["locked"];
        out.extend(valid);
        out.extend(IGNORED_SORT_KEYS.iter().filter(|k| **k != "locked"));
        return out;
    }
    valid.extend(IGNORED_SORT_KEYS);
    valid
}

/// Whether a (schema-valid) sort key is one Nova drops at this version.
pub fn is_ignored_sort_key(v: ApiVersion, key: &str) -> bool {
    IGNORED_SORT_KEYS.contains(&key) && !(key == "locked" && v.at_least(73))
}

/// Every key the schema of this microversion names.
fn known_keys(v: ApiVersion) -> Vec<&'static str> {
    let mut k: Vec<&str> = FILTER_KEYS.to_vec();
    k.extend(JOINED_TABLE_KEYS);
    if v.at_least(26) {
        k.extend(TAG_KEYS);
    }
    if v.at_least(66) {
        k.push("changes-before");
    }
    if v.at_least(73) {
        k.push("locked");
    }
    k
}

/// What the schema checked and the handler uses.
#[derive(Debug, Default)]
pub struct Checked {
    /// `changes-since`, in the stored timestamp form.
    pub changes_since: Option<String>,
    /// `changes-before` (2.66+), in the stored timestamp form.
    pub changes_before: Option<String>,
}

/// Nova's JSON-schema validation of the query, then the checks its
/// handler makes before filtering (`changes-since` ≤ `changes-before`,
/// joined-table and `_` keys).
pub fn check(q: &[(String, String)], v: ApiVersion, admin: bool) -> Result<Checked> {
    params::enum_param(q, "sort_key", &sort_keys(v))?;
    let since = params::date_time_param(q, "changes-since")?;
    let before = if v.at_least(66) {
        params::date_time_param(q, "changes-before")?
    } else {
        None
    };
    if v.at_least(75) {
        params::no_additional(q, &known_keys(v), true)?;
    }
    // Nova strips the keys a non-admin may not filter by before this check,
    // so only an admin's request reaches it with these.
    if admin {
        if let Some((k, _)) = q
            .iter()
            .find(|(k, _)| JOINED_TABLE_KEYS.contains(&k.as_str()) || k.starts_with('_'))
        {
            return Err(ComputeError::BadRequest(format!(
                "Invalid filter field: {k}."
            )));
        }
    }
    if let (Some(s), Some(b)) = (since, before) {
        if b < s {
            return Err(ComputeError::bad(
                "The value of changes-since must be less than or equal to changes-before.",
            ));
        }
    }
    let db = stratus_common::time::to_db;
    Ok(Checked {
        changes_since: since.map(db),
        changes_before: before.map(db),
    })
}

/// Nova's `common.is_all_tenants`: present and empty means yes; any other
/// value must be a boolean string (`InvalidInput`, 400, with oslo's text).
pub fn all_tenants(q: &[(String, String)]) -> Result<bool> {
    match params::last(q, "all_tenants") {
        None => Ok(false),
        Some("") => Ok(true),
        Some(v) => params::bool_from_string_strict(v).map_err(ComputeError::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_key_lists_follow_the_microversion() {
        let v21 = sort_keys(ApiVersion(2, 1));
        assert_eq!(v21.len(), SORT_KEYS.len() + IGNORED_SORT_KEYS.len());
        assert!(v21.contains(&"id") && v21.contains(&"locked"));
        let v273 = sort_keys(ApiVersion(2, 73));
        assert_eq!(v273[0], "locked");
        assert_eq!(v273.iter().filter(|k| **k == "locked").count(), 1);
        let v275 = sort_keys(ApiVersion(2, 75));
        assert!(!v275.contains(&"id") && v275.contains(&"locked"));
        assert!(is_ignored_sort_key(ApiVersion(2, 1), "locked"));
        assert!(!is_ignored_sort_key(ApiVersion(2, 73), "locked"));
    }
}
