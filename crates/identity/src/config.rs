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
    /// Password-hashing threads; default one per core. Each keeps one
    /// argon2 work area (19 MiB at the strong cost).
    pub password_hash_threads: Option<usize>,
    /// Logins that may wait for a hashing thread; beyond them the answer is
    /// 503 with `Retry-After`. Default twice the threads.
    pub password_hash_queue: Option<usize>,
    /// How long a validated token is answered from memory. Changes made
    /// through this process drop the cache at once; this bounds how long a
    /// change made through another identity process (same database) can go
    /// unseen here. 0 turns the cache off.
    pub token_cache_secs: u64,
    /// Default `<data_dir>/fernet-keys`.
    pub key_repository: Option<PathBuf>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            token_expiration_secs: 3600,
            max_active_keys: 3,
            password_hash_cost: HashCost::Strong,
            password_hash_threads: None,
            password_hash_queue: None,
            token_cache_secs: 5,
            key_repository: None,
        }
    }
}
