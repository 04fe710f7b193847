//! The proxy's request signature: `X-Instance-ID-Signature` is
//! hex(HMAC-SHA256(key = shared secret, msg = instance id)), the same as
//! `printf %s "$IID" | openssl dgst -sha256 -hmac "$SECRET"`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// `None` cannot happen: HMAC takes keys of any length, an empty one
/// included (`new_from_slice` only rejects keys of fixed-key MACs).
fn mac(secret: &str, instance_id: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(instance_id.as_bytes());
    Some(mac)
}

/// The signature the Neutron metadata proxy sends for `instance_id`.
pub fn sign_instance_id(secret: &str, instance_id: &str) -> String {
    mac(secret, instance_id)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Checks a signature in constant time (Nova uses `hmac.compare_digest` on
/// the hex strings, so only lowercase hex of the right length can match).
pub fn verify_instance_id(secret: &str, instance_id: &str, signature: &str) -> bool {
    let well_formed = signature.len() == 64
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return false;
    }
    match hex::decode(signature) {
        Ok(bytes) => mac(secret, instance_id).is_some_and(|m| m.verify_slice(&bytes).is_ok()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_own_signature_only() {
        let sig = sign_instance_id("k", "id");
        assert!(verify_instance_id("k", "id", &sig));
        assert!(!verify_instance_id("k", "other", &sig));
        assert!(!verify_instance_id("k2", "id", &sig));
        assert!(!verify_instance_id("k", "id", &sig.to_uppercase()));
        assert!(!verify_instance_id("k", "id", ""));
    }
}
