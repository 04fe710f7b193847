//! Block device mappings (Nova's `block_device_mapping_v2`): where each of
//! a server's disks comes from and where it lives. Stored and sent with
//! Nova's key names.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_common::ids::VolumeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BdmSource {
    Image,
    Volume,
    Blank,
    Snapshot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BdmDestination {
    #[default]
    Local,
    Volume,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDeviceMapping {
    pub source_type: BdmSource,
    #[serde(default)]
    pub destination_type: BdmDestination,
    /// The image, volume or snapshot id (none for `blank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// 0 is the boot disk; `None` (Nova's -1 or null) is not bootable.
    #[serde(
        default,
        deserialize_with = "boot_index",
        skip_serializing_if = "Option::is_none"
    )]
    pub boot_index: Option<i64>,
    /// GiB, for volumes made at boot and blank disks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<i64>,
    #[serde(default)]
    pub delete_on_termination: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The volume the launch made for this mapping (source `image`,
    /// destination `volume`), in the user's project. Set by the API's
    /// launch saga only: a request's own value is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<VolumeId>,
}

/// Nova accepts the boot index as a number or a numeric string; a negative
/// one means "not bootable".
fn boot_index<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    let n = match v {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => Some(
            s.trim()
                .parse::<i64>()
                .map_err(|_| serde::de::Error::custom("boot_index must be an integer"))?,
        ),
        Some(_) => return Err(serde::de::Error::custom("boot_index must be an integer")),
    };
    Ok(n.filter(|i| *i >= 0))
}

impl BlockDeviceMapping {
    pub fn is_boot(&self) -> bool {
        self.boot_index == Some(0)
    }

    /// The boot disk is a volume (made from an image or snapshot, or the
    /// user's own).
    pub fn boots_from_volume(&self) -> bool {
        self.is_boot() && self.destination_type == BdmDestination::Volume
    }

    /// The boot disk is a volume the launch makes from an image or a
    /// volume snapshot.
    pub fn boots_from_new_volume(&self) -> bool {
        self.boots_from_volume()
            && matches!(self.source_type, BdmSource::Image | BdmSource::Snapshot)
    }
}

/// The mappings of a request or a stored row (`null` is none).
pub fn parse_list(v: &Value) -> Result<Vec<BlockDeviceMapping>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        other => serde_json::from_value(other.clone()).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nova_shapes() {
        let l = parse_list(&json!([
            {"source_type": "image", "destination_type": "volume", "uuid": "i", "boot_index": "0",
             "volume_size": 1, "delete_on_termination": true},
            {"source_type": "blank", "destination_type": "local", "boot_index": -1, "volume_size": 2}
        ]));
        let Ok(l) = l else { panic!("{l:?}") };
        assert!(l[0].boots_from_volume());
        assert_eq!(l[1].boot_index, None);
        assert_eq!(l[1].source_type, BdmSource::Blank);
        assert_eq!(parse_list(&Value::Null), Ok(Vec::new()));
        assert!(parse_list(&json!([{"source_type": "floppy"}])).is_err());
    }
}
