//! The volume service's records and the rules over them, free of HTTP and
//! SQL: [`volume`] (the record and Cinder's status machine), [`snapshot`],
//! [`attachment`], [`vtype`] (volume types), [`quota`] (limits and usage),
//! [`list`] (filters, sort and paging of list requests).

pub mod attachment;
pub mod list;
pub mod quota;
pub mod snapshot;
pub mod volume;
pub mod vtype;

pub use attachment::{AttachStatus, Attachment};
pub use snapshot::{Snapshot, SnapshotStatus};
pub use volume::{Volume, VolumeStatus};
pub use vtype::VolumeType;

use std::collections::BTreeMap;

use crate::error::VolumeError;

/// Cinder's metadata rules: keys 1..255 characters, values up to 255.
pub fn validate_metadata(m: &BTreeMap<String, String>) -> Result<(), VolumeError> {
    for (k, v) in m {
        if k.is_empty() || k.chars().count() > 255 {
            return Err(VolumeError::bad(
                "Metadata property key must be 1 to 255 characters long.",
            ));
        }
        if v.chars().count() > 255 {
            return Err(VolumeError::bad(
                "Metadata property value must be at most 255 characters long.",
            ));
        }
    }
    Ok(())
}

/// A JSON object of strings, as Cinder's metadata, or a 400.
pub fn metadata_of(
    v: &serde_json::Value,
    what: &str,
) -> Result<BTreeMap<String, String>, VolumeError> {
    let serde_json::Value::Object(o) = v else {
        return Err(VolumeError::bad(format!(
            "Invalid input for field/attribute {what}. Value: {v}. {v} is not of type 'object'"
        )));
    };
    let mut m = BTreeMap::new();
    for (k, v) in o {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            other => {
                return Err(VolumeError::bad(format!(
                    "Invalid input for field/attribute {what}. Value: {other}. {other} is not of type 'string'"
                )))
            }
        };
        m.insert(k.clone(), s);
    }
    validate_metadata(&m)?;
    Ok(m)
}

/// Names and descriptions: Cinder's 255-character limit.
pub fn validate_name(v: Option<&str>, what: &str) -> Result<(), VolumeError> {
    match v {
        Some(s) if s.chars().count() > 255 => Err(VolumeError::bad(format!(
            "Invalid input for field/attribute {what}: it is longer than 255 characters."
        ))),
        _ => Ok(()),
    }
}
