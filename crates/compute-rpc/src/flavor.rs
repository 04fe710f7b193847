//! A flavor as an instance carries it (Nova embeds the flavor in the
//! instance, so a later change to the flavor does not change the server).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Flavor {
    pub id: String,
    pub name: String,
    pub ram: i64,
    pub vcpus: i64,
    pub disk: i64,
    pub ephemeral: i64,
    pub swap: i64,
    pub rxtx_factor: f64,
    pub is_public: bool,
    pub disabled: bool,
    pub description: Option<String>,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
}
