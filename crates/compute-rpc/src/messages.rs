//! Topics, methods and their argument types (version 1.0 of each method).

use serde::{Deserialize, Serialize};
use stratus_common::ids::{AttachmentId, InstanceId, VolumeId};

use crate::instance::{Expected, InstanceUpdate};
use crate::node::NodeReport;
use crate::saga::{SagaRecord, SagaState, StepRecord};

pub const SCHEDULER: &str = "scheduler";
pub const CONDUCTOR: &str = "conductor";

pub fn compute_topic(host: &str) -> String {
    format!("compute.{host}")
}

/// A host agent's topic for external instance events
/// ([`EXTERNAL_EVENT`]), served apart from `compute.<host>` with its own
/// concurrency: a build holds its `compute.<host>` slot while it waits
/// for `network-vif-plugged`, so events queued behind builds could never
/// be delivered once every slot waits. The agent still accepts
/// [`EXTERNAL_EVENT`] on `compute.<host>` (casts from an API that predates
/// this topic); the method and its version are the same on both.
pub fn compute_events_topic(host: &str) -> String {
    format!("compute_events.{host}")
}

// scheduler
pub const SELECT_AND_BUILD: &str = "select_and_build";
// compute.<host>
pub const BUILD_AND_RUN: &str = "build_and_run_instance";
pub const STOP: &str = "stop_instance";
pub const START: &str = "start_instance";
pub const REBOOT: &str = "reboot_instance";
pub const TERMINATE: &str = "terminate_instance";
pub const CONSOLE: &str = "get_console_output";
/// Calls (1.0): give the host's connector to a reserved attachment, hand
/// the disk to the guest and complete the attachment; and the reverse on
/// the guest's side (the caller deletes the attachment).
pub const ATTACH_VOLUME: &str = "attach_volume";
pub const DETACH_VOLUME: &str = "detach_volume";
// compute_events.<host> (and, from older APIs, compute.<host>)
pub const EXTERNAL_EVENT: &str = "external_instance_event";
// conductor
pub const INSTANCE_GET: &str = "instance_get";
pub const INSTANCE_UPDATE: &str = "instance_update";
pub const EVENT_START: &str = "action_event_start";
pub const EVENT_FINISH: &str = "action_event_finish";
pub const NODE_REPORT: &str = "compute_node_report";
pub const RESCHEDULE: &str = "reschedule";
pub const INSTANCE_DESTROYED: &str = "instance_destroyed";
pub const INSTANCES_ON_HOST: &str = "instances_on_host";
/// Nova's `compute_api.stop` (`force_stop` with `force`) as an agent's
/// power-state sync calls it: records the `stop` action and claims
/// `powering-off`; the agent then powers the guest off.
pub const INSTANCE_STOP: &str = "instance_stop";
/// The build saga's log, kept by the conductor for agents (1.0 each):
/// open (create unless it exists; returns it and its steps), record a
/// step, set the saga's state.
pub const SAGA_OPEN: &str = "saga_open";
pub const SAGA_RECORD: &str = "saga_record";
pub const SAGA_STATE: &str = "saga_state";
/// The unfinished build sagas of a host (an agent resumes them on start).
pub const BUILDS_ON_HOST: &str = "builds_on_host";
/// A build records (or forgets) the mapping of its boot volume.
pub const BDM_SAVE: &str = "bdm_save";
pub const BDM_DELETE: &str = "bdm_delete";
/// A cast (1.0): an agent's trace events (`stratus_telemetry::Event`s),
/// stored by the conductor in the compute database.
pub const RECORD_EVENTS: &str = "record_events";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordEventsArgs {
    /// Each a `stratus_telemetry::Event` in its serde form (kept as JSON
    /// here so that this crate needs no telemetry code).
    pub events: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceArgs {
    pub instance_id: InstanceId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildArgs {
    pub instance_id: InstanceId,
    /// Hosts already claimed for nothing yet, to try if this one fails.
    pub alternates: Vec<String>,
    /// Which placement of the instance this build is (its build saga is
    /// `build-<id>-<attempt>`); absent from older schedulers.
    #[serde(default)]
    pub attempt: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RebootArgs {
    pub instance_id: InstanceId,
    pub hard: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConsoleArgs {
    pub instance_id: InstanceId,
    pub length: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpdateArgs {
    pub instance_id: InstanceId,
    pub expected_task_state: Expected,
    pub updates: InstanceUpdate,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventArgs {
    pub instance_id: InstanceId,
    pub event: String,
    pub host: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RescheduleArgs {
    pub instance_id: InstanceId,
    pub failed_host: String,
    pub alternates: Vec<String>,
    pub error: String,
    /// The placement whose build failed (absent from older agents).
    #[serde(default)]
    pub attempt: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SagaOpenArgs {
    pub saga: SagaRecord,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SagaOpened {
    pub saga: SagaRecord,
    pub steps: Vec<StepRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SagaRecordArgs {
    pub saga_id: String,
    pub step: StepRecord,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SagaStateArgs {
    pub saga_id: String,
    pub state: SagaState,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostArgs {
    pub host: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeReportArgs {
    pub report: NodeReport,
}

/// One of Nova's external instance events, for the agent of its host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExternalEventArgs {
    pub instance_id: InstanceId,
    /// `network-vif-plugged`, ...
    pub name: String,
    /// The port id for network events.
    pub tag: String,
    /// `completed` or `failed`.
    pub status: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StopArgs {
    pub instance_id: InstanceId,
    /// The agent asking: the instance must still be on it.
    pub host: String,
    /// `force_stop`: a STOPPED instance may be stopped again (its guest
    /// runs although the database says stopped).
    pub force: bool,
}

/// A volume for a guest ([`ATTACH_VOLUME`], [`DETACH_VOLUME`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VolumeArgs {
    pub instance_id: InstanceId,
    pub volume_id: VolumeId,
    pub attachment_id: AttachmentId,
    /// The guest's device: `/dev/vdb`.
    pub device: String,
}

/// What [`ATTACH_VOLUME`] answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VolumeAttached {
    pub connection_info: serde_json::Value,
}

/// A block device mapping row to write ([`BDM_SAVE`]): compute's
/// `VolumeBdm` as JSON, replacing the server's mapping of that volume.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BdmSaveArgs {
    pub bdm: serde_json::Value,
}

/// The mapping of `volume_id` on the server to forget ([`BDM_DELETE`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BdmDeleteArgs {
    pub instance_id: InstanceId,
    pub volume_id: VolumeId,
}
