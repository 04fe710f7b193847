//! Nova's instance states and the API `status` they show as.
//!
//! ```text
//!   building --spawned--> active <--start-- stopped
//!      |                    |  \--stop-------^
//!      +--fail--> error     +--reboot (task rebooting[_hard]) --> active
//!   any --delete (task deleting)--> deleted (row soft-deleted)
//! ```

pub mod vm {
    pub const BUILDING: &str = "building";
    pub const ACTIVE: &str = "active";
    pub const STOPPED: &str = "stopped";
    pub const ERROR: &str = "error";
    pub const DELETED: &str = "deleted";
}

pub mod task {
    pub const SCHEDULING: &str = "scheduling";
    pub const SPAWNING: &str = "spawning";
    pub const POWERING_OFF: &str = "powering-off";
    pub const POWERING_ON: &str = "powering-on";
    pub const REBOOTING: &str = "rebooting";
    pub const REBOOTING_HARD: &str = "rebooting_hard";
    pub const DELETING: &str = "deleting";
}

/// Nova's `power_state` values (what the hypervisor reports).
pub mod power {
    pub const NOSTATE: i64 = 0;
    pub const RUNNING: i64 = 1;
    pub const PAUSED: i64 = 3;
    pub const SHUTDOWN: i64 = 4;
    pub const CRASHED: i64 = 6;
    pub const SUSPENDED: i64 = 7;
}

/// The API status of a (vm_state, task_state) pair, as Nova's `_STATE_MAP`.
pub fn status(vm_state: &str, task_state: Option<&str>) -> &'static str {
    match (vm_state, task_state) {
        (vm::ACTIVE, Some(task::REBOOTING)) => "REBOOT",
        (vm::ACTIVE, Some(task::REBOOTING_HARD)) => "HARD_REBOOT",
        (vm::ACTIVE, _) => "ACTIVE",
        (vm::BUILDING, _) => "BUILD",
        (vm::STOPPED, _) => "SHUTOFF",
        (vm::ERROR, _) => "ERROR",
        (vm::DELETED, _) => "DELETED",
        ("paused", _) => "PAUSED",
        ("suspended", _) => "SUSPENDED",
        ("rescued", _) => "RESCUE",
        ("resized", _) => "VERIFY_RESIZE",
        ("shelved", _) => "SHELVED",
        ("shelved_offloaded", _) => "SHELVED_OFFLOADED",
        ("soft-delete", _) => "SOFT_DELETED",
        _ => "UNKNOWN",
    }
}

/// The vm_states a `status` filter selects; `None` for an unknown status.
/// Whether Nova knows `status` as a server status (its `_STATE_MAP`),
/// whatever this cloud can put a server in.
pub fn is_known_status(status: &str) -> bool {
    const KNOWN: &[&str] = &[
        "ACTIVE",
        "BUILD",
        "DELETED",
        "ERROR",
        "HARD_REBOOT",
        "MIGRATING",
        "PASSWORD",
        "PAUSED",
        "REBOOT",
        "REBUILD",
        "RESCUE",
        "RESIZE",
        "REVERT_RESIZE",
        "SHELVED",
        "SHELVED_OFFLOADED",
        "SHUTOFF",
        "SOFT_DELETED",
        "SUSPENDED",
        "UNKNOWN",
        "VERIFY_RESIZE",
    ];
    KNOWN.contains(&status.to_ascii_uppercase().as_str())
}

pub fn vm_states_for_status(status: &str) -> Option<Vec<String>> {
    let s = status.to_ascii_uppercase();
    let v: &[&str] = match s.as_str() {
        "ACTIVE" | "REBOOT" | "HARD_REBOOT" => &[vm::ACTIVE],
        "BUILD" => &[vm::BUILDING],
        "SHUTOFF" => &[vm::STOPPED],
        "ERROR" => &[vm::ERROR],
        "DELETED" => &[vm::DELETED],
        "PAUSED" => &["paused"],
        "SUSPENDED" => &["suspended"],
        "SHELVED" => &["shelved"],
        "SHELVED_OFFLOADED" => &["shelved_offloaded"],
        "SOFT_DELETED" => &["soft-delete"],
        _ => return None,
    };
    Some(v.iter().map(|s| s.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_nova() {
        assert_eq!(status("building", Some("scheduling")), "BUILD");
        assert_eq!(status("active", None), "ACTIVE");
        assert_eq!(status("active", Some("rebooting_hard")), "HARD_REBOOT");
        assert_eq!(status("stopped", None), "SHUTOFF");
        assert_eq!(
            vm_states_for_status("shutoff"),
            Some(vec!["stopped".to_owned()])
        );
        assert_eq!(vm_states_for_status("nonsense"), None);
    }
}
