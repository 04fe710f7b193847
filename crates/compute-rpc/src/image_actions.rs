//! The agent methods of `rebuild` and `createImage` (1.0 each), cast on
//! `compute.<host>` by the API once it has claimed the task state.

use serde::{Deserialize, Serialize};
use stratus_common::ids::{ImageId, InstanceId};

use crate::model::DiskSpec;

/// Nova's `rebuild_instance`: the guest made again from the instance's
/// (new) image, keeping its ports and volumes.
pub const REBUILD: &str = "rebuild_instance";
/// Nova's `snapshot_instance`: the guest's root disk uploaded as the data
/// of an image the API created.
pub const SNAPSHOT: &str = "snapshot_instance";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RebuildArgs {
    pub instance_id: InstanceId,
    /// The image the guest was built from before (its cache hold goes);
    /// empty for a server booted from a volume.
    pub orig_image_ref: String,
    /// The volumes the guest keeps, as the API's mappings hold them (the
    /// boot volume at `vda` first): agents never read the database.
    #[serde(default)]
    pub volumes: Vec<DiskSpec>,
    #[serde(default)]
    pub preserve_ephemeral: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotArgs {
    pub instance_id: InstanceId,
    /// The image record the API made (queued) for the data.
    pub image_id: ImageId,
}
