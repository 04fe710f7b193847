//! Password hashing with argon2id, stored as PHC strings. Hashing runs on the
//! blocking pool: a strong hash takes tens of milliseconds of CPU.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::HashCost;
use crate::error::{IdentityError, Result};

fn hasher(cost: HashCost) -> Result<Argon2<'static>> {
    let params = match cost {
        // OWASP's argon2id minimum (19 MiB, 2 passes), argon2's default.
        HashCost::Strong => Params::default(),
        // For tests only: still a real argon2id hash, just cheap.
        HashCost::Fast => Params::new(64, 1, 1, None)
            .map_err(|e| IdentityError::Internal(format!("argon2 params: {e}")))?,
    };
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

pub async fn hash_password(password: &str, cost: HashCost) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        hasher(cost)?
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| IdentityError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| IdentityError::Internal(format!("hash task: {e}")))?
}

/// True when `password` matches `hash` (the hash carries its own parameters).
/// With no hash (an unknown user, or one without a password) a dummy hash at
/// the configured cost still runs, so that the answer takes about as long
/// either way and does not tell whether the user exists.
pub async fn verify_password(password: &str, hash: Option<&str>, cost: HashCost) -> bool {
    let password = password.to_owned();
    let hash = hash.map(str::to_owned);
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => match PasswordHash::new(&h) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        },
        None => {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            if let Ok(h) = hasher(cost) {
                let _ = h.hash_password(password.as_bytes(), &salt);
            }
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_phc() {
        let h = hash_password("s3cret", HashCost::Fast).await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", Some(&h), HashCost::Fast).await);
        assert!(!verify_password("wrong", Some(&h), HashCost::Fast).await);
        assert!(!verify_password("s3cret", Some("garbage"), HashCost::Fast).await);
        assert!(!verify_password("s3cret", None, HashCost::Fast).await);
    }
}
