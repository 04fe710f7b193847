//! Nova's instance states (`vm_states.py`, `task_states.py`,
//! `power_state.py`), every allowed change in one place, and the API
//! `status` a state shows as (Nova's `_STATE_MAP`).
//!
//! `vm_state` is where the instance is; `task_state` is what is being
//! done to it right now (at most one thing at a time: a new task starts
//! only from no task, by compare-and-swap in SQL).
//!
//! ```text
//!                 spawned                  stop (powering-off)
//!   building ───────────────► active ─────────────────────────► stopped
//!   (scheduling,                │  ▲ ◄───────────────────────────┘ │
//!    spawning)                  │  │    start (powering-on)         │
//!      │ build failed,          │  └─ reboot (rebooting[_hard]) ────┘ hard only
//!      │ build timed out        │
//!      ▼                        │ power sync: the guest is off
//!    error ◄────────────────────┘ (a failed power action)
//!      │ stop, reboot --hard, delete
//!
//!   any state ──delete (deleting)──► deleted (row soft-deleted)
//!
//!   active, stopped, error ──rebuild (rebuilding, rebuild_spawning)──►
//!     active (stopped stays stopped; a failed rebuild: error)
//!   active, stopped ──createImage (image_snapshot_pending, image_snapshot,
//!     image_pending_upload, image_uploading)──► the same vm_state
//! ```
//!
//! [`VmState::can_become`] is the whole `vm_state` graph and
//! [`TaskState::allowed_from`] says in which `vm_state`s each task may
//! begin (Nova's `@check_instance_state`); nothing else in compute
//! decides either.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Nova's `vm_states`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VmState {
    #[serde(rename = "building")]
    Building,
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "stopped")]
    Stopped,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "deleted")]
    Deleted,
    // Nova's states this cloud does not enter yet; kept so that `status`
    // filters and rows written by a later version still parse.
    #[serde(rename = "paused")]
    Paused,
    #[serde(rename = "suspended")]
    Suspended,
    #[serde(rename = "rescued")]
    Rescued,
    #[serde(rename = "resized")]
    Resized,
    #[serde(rename = "shelved")]
    Shelved,
    #[serde(rename = "shelved_offloaded")]
    ShelvedOffloaded,
    #[serde(rename = "soft-delete")]
    SoftDeleted,
}

impl VmState {
    pub const ALL: [VmState; 12] = [
        Self::Building,
        Self::Active,
        Self::Stopped,
        Self::Error,
        Self::Deleted,
        Self::Paused,
        Self::Suspended,
        Self::Rescued,
        Self::Resized,
        Self::Shelved,
        Self::ShelvedOffloaded,
        Self::SoftDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Active => "active",
            Self::Stopped => "stopped",
            Self::Error => "error",
            Self::Deleted => "deleted",
            Self::Paused => "paused",
            Self::Suspended => "suspended",
            Self::Rescued => "rescued",
            Self::Resized => "resized",
            Self::Shelved => "shelved",
            Self::ShelvedOffloaded => "shelved_offloaded",
            Self::SoftDeleted => "soft-delete",
        }
    }

    /// The whole `vm_state` graph of the diagram above. Staying in the same
    /// state is always allowed (a task ending without changing it).
    pub fn can_become(self, to: VmState) -> bool {
        use VmState::*;
        self == to
            || to == Deleted
            || matches!(
                (self, to),
                (Building, Active | Error)
                    | (Active, Stopped | Error)
                    | (Stopped, Active | Error)
                    | (Error, Stopped | Active)
            )
    }
}

impl fmt::Display for VmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VmState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown vm_state {s:?}"))
    }
}

/// Nova's `task_states`: what is being done to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "scheduling")]
    Scheduling,
    #[serde(rename = "spawning")]
    Spawning,
    #[serde(rename = "powering-off")]
    PoweringOff,
    #[serde(rename = "powering-on")]
    PoweringOn,
    #[serde(rename = "rebooting")]
    Rebooting,
    #[serde(rename = "rebooting_hard")]
    RebootingHard,
    #[serde(rename = "deleting")]
    Deleting,
    // Rebuild and snapshot (`rebuild`, `createImage`).
    #[serde(rename = "rebuilding")]
    Rebuilding,
    #[serde(rename = "rebuild_spawning")]
    RebuildSpawning,
    #[serde(rename = "image_snapshot_pending")]
    ImageSnapshotPending,
    #[serde(rename = "image_snapshot")]
    ImageSnapshot,
    #[serde(rename = "image_pending_upload")]
    ImagePendingUpload,
    #[serde(rename = "image_uploading")]
    ImageUploading,
}

impl TaskState {
    pub const ALL: [TaskState; 13] = [
        Self::Scheduling,
        Self::Spawning,
        Self::PoweringOff,
        Self::PoweringOn,
        Self::Rebooting,
        Self::RebootingHard,
        Self::Deleting,
        Self::Rebuilding,
        Self::RebuildSpawning,
        Self::ImageSnapshotPending,
        Self::ImageSnapshot,
        Self::ImagePendingUpload,
        Self::ImageUploading,
    ];

    /// The steps of a snapshot, in order (Nova's `image_snapshot_pending`
    /// → `image_snapshot` → `image_pending_upload` → `image_uploading`).
    pub const SNAPSHOT: [TaskState; 4] = [
        Self::ImageSnapshotPending,
        Self::ImageSnapshot,
        Self::ImagePendingUpload,
        Self::ImageUploading,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduling => "scheduling",
            Self::Spawning => "spawning",
            Self::PoweringOff => "powering-off",
            Self::PoweringOn => "powering-on",
            Self::Rebooting => "rebooting",
            Self::RebootingHard => "rebooting_hard",
            Self::Deleting => "deleting",
            Self::Rebuilding => "rebuilding",
            Self::RebuildSpawning => "rebuild_spawning",
            Self::ImageSnapshotPending => "image_snapshot_pending",
            Self::ImageSnapshot => "image_snapshot",
            Self::ImagePendingUpload => "image_pending_upload",
            Self::ImageUploading => "image_uploading",
        }
    }

    /// The `vm_state`s in which this task may begin (Nova's
    /// `@check_instance_state` of the API call that sets it). A build's
    /// tasks begin only with the instance.
    pub fn allowed_from(self) -> &'static [VmState] {
        use VmState::*;
        match self {
            Self::Scheduling | Self::Spawning => &[Building],
            Self::PoweringOff => &[Active, Error],
            Self::PoweringOn => &[Stopped],
            Self::Rebooting => &[Active],
            Self::RebootingHard => &[Active, Stopped, Error],
            // Nova's `rebuild` and `snapshot` (`@check_instance_state`).
            Self::Rebuilding | Self::RebuildSpawning => &[Active, Stopped, Error],
            Self::ImageSnapshotPending
            | Self::ImageSnapshot
            | Self::ImagePendingUpload
            | Self::ImageUploading => &[Active, Stopped, Paused, Suspended],
            Self::Deleting => &[
                Building,
                Active,
                Stopped,
                Error,
                Paused,
                Suspended,
                Rescued,
                Resized,
                Shelved,
                ShelvedOffloaded,
                SoftDeleted,
            ],
        }
    }

    /// Whether this task may begin on an instance in `vm`.
    pub fn may_begin_in(self, vm: VmState) -> bool {
        self.allowed_from().contains(&vm)
    }

    /// Where a successful power task leaves the instance.
    pub fn done_state(self) -> Option<(VmState, PowerState)> {
        match self {
            Self::PoweringOff => Some((VmState::Stopped, PowerState::Shutdown)),
            Self::PoweringOn | Self::Rebooting | Self::RebootingHard => {
                Some((VmState::Active, PowerState::Running))
            }
            _ => None,
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown task_state {s:?}"))
    }
}

/// Nova's `power_state`: what the hypervisor reports, stored and sent as
/// Nova's integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum PowerState {
    NoState,
    Running,
    Paused,
    Shutdown,
    Crashed,
    Suspended,
}

impl PowerState {
    pub fn code(self) -> i64 {
        match self {
            Self::NoState => 0,
            Self::Running => 1,
            Self::Paused => 3,
            Self::Shutdown => 4,
            Self::Crashed => 6,
            Self::Suspended => 7,
        }
    }

    /// Powered off in any way (the guest does not run).
    pub fn is_off(self) -> bool {
        matches!(self, Self::Shutdown | Self::Crashed | Self::Suspended)
    }
}

impl From<PowerState> for i64 {
    fn from(p: PowerState) -> i64 {
        p.code()
    }
}

impl TryFrom<i64> for PowerState {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        Ok(match v {
            0 => Self::NoState,
            1 => Self::Running,
            3 => Self::Paused,
            4 => Self::Shutdown,
            6 => Self::Crashed,
            7 => Self::Suspended,
            other => return Err(format!("unknown power_state {other}")),
        })
    }
}

/// The API status of a (vm_state, task_state) pair, as Nova's `_STATE_MAP`:
/// the one place a status is derived.
pub fn status(vm: VmState, task: Option<TaskState>) -> &'static str {
    match (vm, task) {
        (VmState::Active, Some(TaskState::Rebooting)) => "REBOOT",
        (VmState::Active, Some(TaskState::RebootingHard)) => "HARD_REBOOT",
        (
            VmState::Active | VmState::Stopped | VmState::Error,
            Some(TaskState::Rebuilding | TaskState::RebuildSpawning),
        ) => "REBUILD",
        (VmState::Active, _) => "ACTIVE",
        (VmState::Building, _) => "BUILD",
        (VmState::Stopped, _) => "SHUTOFF",
        (VmState::Error, _) => "ERROR",
        (VmState::Deleted, _) => "DELETED",
        (VmState::Paused, _) => "PAUSED",
        (VmState::Suspended, _) => "SUSPENDED",
        (VmState::Rescued, _) => "RESCUE",
        (VmState::Resized, _) => "VERIFY_RESIZE",
        (VmState::Shelved, _) => "SHELVED",
        (VmState::ShelvedOffloaded, _) => "SHELVED_OFFLOADED",
        (VmState::SoftDeleted, _) => "SOFT_DELETED",
    }
}

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

/// The vm_states a `status` filter selects (the inverse of [`status`]);
/// `None` for a status no vm_state shows as.
pub fn vm_states_for_status(status: &str) -> Option<Vec<VmState>> {
    let s = status.to_ascii_uppercase();
    let v: Vec<VmState> = VmState::ALL
        .into_iter()
        .filter(|vm| {
            let shown = status_any_task(*vm);
            shown.contains(&s.as_str())
        })
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Every status a vm_state can show as, whatever its task.
fn status_any_task(vm: VmState) -> Vec<&'static str> {
    let mut v = vec![status(vm, None)];
    for t in TaskState::ALL {
        let s = status(vm, Some(t));
        if !v.contains(&s) {
            v.push(s);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_nova() {
        use TaskState::*;
        use VmState::*;
        assert_eq!(status(Building, Some(Scheduling)), "BUILD");
        assert_eq!(status(Active, None), "ACTIVE");
        assert_eq!(status(Active, Some(RebootingHard)), "HARD_REBOOT");
        assert_eq!(status(Stopped, None), "SHUTOFF");
        assert_eq!(vm_states_for_status("shutoff"), Some(vec![Stopped]));
        assert_eq!(vm_states_for_status("reboot"), Some(vec![Active]));
        assert_eq!(vm_states_for_status("nonsense"), None);
        assert_eq!(status(Stopped, Some(Rebuilding)), "REBUILD");
        assert_eq!(status(Error, Some(RebuildSpawning)), "REBUILD");
        assert_eq!(status(Active, Some(ImageUploading)), "ACTIVE");
        assert_eq!(
            vm_states_for_status("rebuild"),
            Some(vec![Active, Stopped, Error])
        );
    }

    #[test]
    fn names_round_trip_as_nova_spells_them() {
        for v in VmState::ALL {
            assert_eq!(v.as_str().parse::<VmState>(), Ok(v));
            assert_eq!(serde_json::to_value(v).ok(), Some(v.as_str().into()));
        }
        for t in TaskState::ALL {
            assert_eq!(t.as_str().parse::<TaskState>(), Ok(t));
            assert_eq!(serde_json::to_value(t).ok(), Some(t.as_str().into()));
        }
        for p in [0, 1, 3, 4, 6, 7] {
            let ps = PowerState::try_from(p);
            assert_eq!(ps.map(i64::from), Ok(p));
        }
        assert!(PowerState::try_from(2).is_err());
        assert_eq!(
            serde_json::to_value(PowerState::Shutdown).ok(),
            Some(4.into())
        );
    }

    #[test]
    fn transitions() {
        use VmState::*;
        assert!(Building.can_become(Active));
        assert!(Building.can_become(Error));
        assert!(!Building.can_become(Stopped));
        assert!(!Error.can_become(Building));
        assert!(!Deleted.can_become(Active));
        for v in VmState::ALL {
            assert!(v.can_become(Deleted), "{v} must be deletable");
        }
        assert!(TaskState::PoweringOff.may_begin_in(Error));
        assert!(!TaskState::PoweringOn.may_begin_in(Active));
        assert!(TaskState::RebootingHard.may_begin_in(Stopped));
        assert!(!TaskState::Rebooting.may_begin_in(Stopped));
        // Every task's end state is reachable from where it may begin.
        for t in TaskState::ALL {
            if let Some((done, _)) = t.done_state() {
                for from in t.allowed_from() {
                    assert!(from.can_become(done), "{t}: {from} -> {done}");
                }
            }
        }
    }
}
