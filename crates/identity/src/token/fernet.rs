//! Fernet (github.com/fernet/spec) from RustCrypto parts, in Keystone's
//! flavour: URL-safe base64 with the `=` padding stripped, no TTL check
//! (expiry lives in the payload), several keys for decryption.
//!
//! `0x80 | timestamp u64 BE | IV 16 | AES-128-CBC-PKCS7(plaintext) | HMAC-SHA256 32`

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;
type Aes128CbcDec = cbc::Decryptor<aes::Aes128>;
type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 0x80;
const HEADER: usize = 1 + 8 + 16;
const MAC_LEN: usize = 32;

/// One Fernet key: 16 bytes of signing key, 16 bytes of encryption key.
#[derive(Clone, PartialEq, Eq)]
pub struct FernetKey {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl std::fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys never reach a log.
        f.write_str("FernetKey(..)")
    }
}

impl FernetKey {
    /// Parses the 44-character URL-safe base64 form kept in key files.
    pub fn from_base64(text: &str) -> Option<Self> {
        let raw = URL_SAFE.decode(text.trim()).ok()?;
        Self::from_bytes(&raw)
    }

    pub fn from_bytes(raw: &[u8]) -> Option<Self> {
        if raw.len() != 32 {
            return None;
        }
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&raw[..16]);
        encryption.copy_from_slice(&raw[16..]);
        Some(Self {
            signing,
            encryption,
        })
    }

    pub fn generate() -> Self {
        let raw: [u8; 32] = rand::random();
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&raw[..16]);
        encryption.copy_from_slice(&raw[16..]);
        Self {
            signing,
            encryption,
        }
    }

    pub fn to_base64(&self) -> String {
        let mut raw = Vec::with_capacity(32);
        raw.extend_from_slice(&self.signing);
        raw.extend_from_slice(&self.encryption);
        URL_SAFE.encode(raw)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts a key of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.signing) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        }
    }

    /// Encrypts with a given timestamp and IV (tests pin them).
    pub fn encrypt_with(&self, plaintext: &[u8], timestamp: u64, iv: [u8; 16]) -> String {
        let ciphertext = Aes128CbcEnc::new(&self.encryption.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut token = Vec::with_capacity(HEADER + ciphertext.len() + MAC_LEN);
        token.push(VERSION);
        token.extend_from_slice(&timestamp.to_be_bytes());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ciphertext);
        let mut mac = self.mac();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        // Keystone strips the padding so that tokens fit in URLs and headers.
        URL_SAFE_NO_PAD.encode(token)
    }

    pub fn encrypt(&self, plaintext: &[u8], timestamp: u64) -> String {
        self.encrypt_with(plaintext, timestamp, rand::random())
    }

    /// Verifies and decrypts raw token bytes with this key.
    fn decrypt_raw(&self, raw: &[u8]) -> Option<Decrypted> {
        if raw.len() < HEADER + 16 + MAC_LEN || raw[0] != VERSION {
            return None;
        }
        let (signed, tag) = raw.split_at(raw.len() - MAC_LEN);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag).ok()?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&signed[1..9]);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&signed[9..HEADER]);
        let ciphertext = &signed[HEADER..];
        if ciphertext.len() % 16 != 0 {
            return None;
        }
        let plaintext = Aes128CbcDec::new(&self.encryption.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .ok()?;
        Some(Decrypted {
            timestamp: u64::from_be_bytes(ts),
            plaintext,
        })
    }
}

/// A verified, decrypted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// Creation time (Keystone's `issued_at`), seconds since the epoch.
    pub timestamp: u64,
    pub plaintext: Vec<u8>,
}

/// Decodes a token as Keystone does (`restore_padding`), then tries every key
/// in order, as `MultiFernet` does.
pub fn decrypt(keys: &[FernetKey], token: &str) -> Option<Decrypted> {
    let trimmed = token.trim().trim_end_matches('=');
    let raw = URL_SAFE_NO_PAD.decode(trimmed).ok()?;
    keys.iter().find_map(|k| k.decrypt_raw(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let k = FernetKey::generate();
        let t = k.encrypt(b"hello", 1234);
        assert!(t.starts_with("gAAAAA"));
        assert!(!t.contains('='));
        let d = decrypt(std::slice::from_ref(&k), &t).expect("decrypts");
        assert_eq!(d.plaintext, b"hello");
        assert_eq!(d.timestamp, 1234);
        assert!(decrypt(&[FernetKey::generate()], &t).is_none());
        // Padding restored or not, both decode.
        assert!(decrypt(std::slice::from_ref(&k), &format!("{t}==")).is_some());
    }

    #[test]
    fn tampering_is_detected() {
        let k = FernetKey::generate();
        let t = k.encrypt(b"payload", 99);
        let mut raw = URL_SAFE_NO_PAD.decode(&t).expect("b64");
        raw[30] ^= 1;
        let bad = URL_SAFE_NO_PAD.encode(raw);
        assert!(decrypt(std::slice::from_ref(&k), &bad).is_none());
        assert!(decrypt(std::slice::from_ref(&k), "not a token").is_none());
        assert!(decrypt(std::slice::from_ref(&k), "").is_none());
    }

    #[test]
    fn keys_round_trip_base64() {
        let k =
            FernetKey::from_base64("ERERERERERERERERERERERERERERERERERERERERERE=").expect("key");
        assert_eq!(
            k.to_base64(),
            "ERERERERERERERERERERERERERERERERERERERERERE="
        );
        assert!(FernetKey::from_base64("short").is_none());
    }
}
