//! The instance record as the compute services pass it to each other:
//! what the conductor answers an agent, and the compare-and-swap update an
//! agent asks for.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stratus_common::ids::InstanceId;
use stratus_network_client::Vif as VifInfo;

use crate::flavor::Flavor;
use crate::model::state::{PowerState, TaskState, VmState};
use crate::model::{BlockDeviceMapping, RequestedNetworks};

/// Why a server is in ERROR, shown as `fault` in the server view.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fault {
    pub code: i64,
    pub message: String,
    pub details: String,
    pub created: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Instance {
    pub id: InstanceId,
    pub project_id: String,
    pub user_id: String,
    pub name: String,
    pub hostname: String,
    pub description: Option<String>,
    pub vm_state: VmState,
    pub task_state: Option<TaskState>,
    pub power_state: PowerState,
    pub host: Option<String>,
    pub node: Option<String>,
    pub availability_zone: Option<String>,
    pub flavor: Flavor,
    pub image_ref: String,
    /// The image's properties at launch (the scheduler filters on them).
    #[serde(default)]
    pub image_properties: BTreeMap<String, String>,
    /// Requested networks, resolved by the API (`auto` became the network).
    pub networks: RequestedNetworks,
    pub bdm: Vec<BlockDeviceMapping>,
    pub security_groups: Vec<String>,
    pub scheduler_hints: serde_json::Value,
    pub key_name: Option<String>,
    pub key_data: Option<String>,
    pub user_data: Option<String>,
    pub config_drive: String,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    pub reservation_id: String,
    pub launch_index: i64,
    pub server_group_id: Option<String>,
    pub locked: bool,
    pub attempts: i64,
    pub tried_hosts: Vec<String>,
    pub fault: Option<Fault>,
    pub console_log: String,
    pub launched_at: Option<String>,
    pub terminated_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub deleted: bool,
    pub metadata: BTreeMap<String, String>,
    /// The server's ports as the agent saved them after binding.
    #[serde(default)]
    pub network_info: Vec<VifInfo>,
}

/// Columns an update may set; `None` leaves a column as it is.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InstanceUpdate {
    pub vm_state: Option<VmState>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub task_state: Option<Option<TaskState>>,
    pub power_state: Option<PowerState>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub host: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub node: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub launched_at: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub fault: Option<Option<Fault>>,
    pub attempts: Option<i64>,
    pub tried_hosts: Option<Vec<String>>,
    pub console_log: Option<String>,
    pub name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub description: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "double_option"
    )]
    pub availability_zone: Option<Option<String>>,
    pub network_info: Option<Vec<VifInfo>>,
}

/// Keeps "set to null" (`Some(None)`) apart from "leave alone" (`None`)
/// when an update travels over the bus as JSON.
fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `expected_task_state`: the update applies only when the current
/// task_state is one of these (`None` inside means "no task").
pub type Expected = Option<Vec<Option<TaskState>>>;
