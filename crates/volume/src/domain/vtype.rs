//! Volume types with their extra specs. Cinder always has a type named
//! `__DEFAULT__`, used when a volume is created without one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use stratus_common::ids::VolumeTypeId;

/// The name of the type every deployment has (Cinder since Train).
pub const DEFAULT_TYPE: &str = "__DEFAULT__";

#[derive(Clone, Debug, PartialEq)]
pub struct VolumeType {
    pub id: VolumeTypeId,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}
