//! Compute's domain model, apart from how it is stored or sent: the
//! instance state machine (`state`), what a request asks for (requested
//! networks, block device mappings) and what a driver is given to make a
//! guest (`guest::GuestSpec`).

pub mod bdm;
pub mod guest;
pub mod networks;
pub mod state;

pub use bdm::{BdmDestination, BdmSource, BlockDeviceMapping};
pub use guest::{DiskSource, DiskSpec, GuestSpec};
pub use networks::{RequestedNetwork, RequestedNetworks};
pub use state::{PowerState, TaskState, VmState};
