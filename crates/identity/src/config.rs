//! The `[identity]` section of `stratus.toml`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashCost {
    /// argon2id with its default (OWASP) parameters.
    #[default]
    Strong,
    /// Cheap argon2id parameters, for tests.
    Fast,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityConfig {
    /// Token lifetime (Keystone `[token] expiration`).
    pub token_expiration_secs: u64,
    /// Keys kept by rotation: staged + primary + secondaries.
    pub max_active_keys: u32,
    pub password_hash_cost: HashCost,
    /// Default `<data_dir>/fernet-keys`.
    pub key_repository: Option<PathBuf>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            token_expiration_secs: 3600,
            max_active_keys: 3,
            password_hash_cost: HashCost::Strong,
            key_repository: None,
        }
    }
}
