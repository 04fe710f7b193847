//! Key pairs made by the cloud when the user brings no public key (Nova's
//! `nova/crypto.py`, below microversion 2.92):
//!
//! - `ssh`: an RSA 2048 key, as paramiko's `RSAKey.generate(2048)` makes it:
//!   the private key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`), the public key
//!   `ssh-rsa <blob> Generated-by-Nova`, the MD5 fingerprint of the blob.
//!   The `rsa` crate (RustCrypto) does the arithmetic; the SSH wire form is
//!   three length-prefixed fields and is written here.
//! - `x509`: what `generate_winrm_x509_cert` makes with the `openssl` command
//!   (Nova runs the same two commands): a self-signed client certificate for
//!   `CN=<user_id>` with the WinRM UPN, and as the private key the base64 of
//!   a PKCS#12 bundle (key and certificate, empty password). Writing PKCS#12
//!   in Rust would take several new crates; the command is what Nova needs
//!   on its API hosts too.

use base64::Engine;
use md5::{Digest, Md5};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sha1::Sha1;

use crate::error::{ComputeError, Result};

/// A generated key pair: what is stored and what the user gets once.
pub struct Generated {
    pub private_key: String,
    pub public_key: String,
    pub fingerprint: String,
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn invalid(reason: &str) -> ComputeError {
    ComputeError::BadRequest(format!("Keypair data is invalid: {reason}"))
}

/// Nova's `generate_fingerprint`: MD5 of the key blob, `aa:bb:..`.
pub fn ssh_fingerprint(public_key: &str) -> Result<String> {
    let bad = || invalid("failed to generate fingerprint");
    let mut parts = public_key.split_whitespace();
    let kind = parts.next().ok_or_else(bad)?;
    let blob = parts.next().ok_or_else(bad)?;
    if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-")) {
        return Err(bad());
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| bad())?;
    // The blob starts with its own type name: a length-prefixed string.
    let len = raw
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(bad)?;
    if raw.get(4..4 + len).map(|t| t == kind.as_bytes()) != Some(true) {
        return Err(bad());
    }
    Ok(colon_hex(&Md5::digest(&raw)))
}

/// Nova's `generate_x509_fingerprint`: SHA-1 of the certificate's DER.
pub fn x509_fingerprint(pem: &str) -> Result<String> {
    let bad = |why: &str| {
        invalid(&format!(
            "failed to generate X509 fingerprint. Error message: {why}"
        ))
    };
    let body = pem
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .ok_or_else(|| bad("Unable to load PEM file."))?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad("Unable to load PEM file."))?;
    // A certificate is a DER SEQUENCE.
    if der.first() != Some(&0x30) {
        return Err(bad("Unable to load certificate."));
    }
    Ok(colon_hex(&Sha1::digest(&der)))
}

/// SSH's `string`/`mpint` wire field: a big-endian length, then the bytes
/// (an mpint gets a leading zero when its top bit is set).
fn put_field(out: &mut Vec<u8>, bytes: &[u8], mpint: bool) {
    let pad = mpint && bytes.first().is_some_and(|b| b & 0x80 != 0);
    let len = bytes.len() + usize::from(pad);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    if pad {
        out.push(0);
    }
    out.extend_from_slice(bytes);
}

/// An RSA 2048 SSH key pair (CPU-bound: call from a blocking task).
pub fn ssh_rsa() -> Result<Generated> {
    let internal = |e: String| ComputeError::Internal(format!("key generation: {e}"));
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        .map_err(|e| internal(e.to_string()))?;
    let private_key = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| internal(e.to_string()))?
        .to_string();
    let mut blob = Vec::new();
    put_field(&mut blob, b"ssh-rsa", false);
    put_field(&mut blob, &key.e().to_bytes_be(), true);
    put_field(&mut blob, &key.n().to_bytes_be(), true);
    let public_key = format!(
        "ssh-rsa {} Generated-by-Nova",
        base64::engine::general_purpose::STANDARD.encode(&blob)
    );
    let fingerprint = ssh_fingerprint(&public_key)?;
    Ok(Generated {
        private_key,
        public_key,
        fingerprint,
    })
}

/// Nova's `_create_x509_openssl_config`.
fn openssl_config(upn: &str) -> String {
    format!(
        "distinguished_name  = req_distinguished_name\n[req_distinguished_name]\n\
         [v3_req_client]\nextendedKeyUsage = clientAuth\n\
         subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:{upn}\n"
    )
}

async fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    use tokio::io::AsyncWriteExt;
    let internal = |e: String| ComputeError::Internal(format!("openssl {}: {e}", args[0]));
    let mut child = tokio::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| internal(e.to_string()))?;
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(input) = stdin {
            pipe.write_all(input)
                .await
                .map_err(|e| internal(e.to_string()))?;
        }
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| internal(e.to_string()))?;
    if !out.status.success() {
        return Err(internal(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(out.stdout)
}

/// Nova's `generate_winrm_x509_cert(user_id)`: the private key (base64 of
/// a PKCS#12 bundle), the certificate (PEM) and its fingerprint.
pub async fn x509(user_id: &str) -> Result<Generated> {
    // The user id goes into an openssl config file and a subject: keep it
    // to the characters Keystone ids are made of.
    if user_id.is_empty()
        || !user_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(invalid("the user id cannot name a certificate"));
    }
    let internal = |e: std::io::Error| ComputeError::Internal(format!("x509 key pair: {e}"));
    // Private to this process's user (mode 0700), removed on drop.
    let dir = tempfile::tempdir().map_err(internal)?;
    let keyfile = dir.path().join("temp.key");
    let conffile = dir.path().join("temp.conf");
    tokio::fs::write(&conffile, openssl_config(&format!("{user_id}@localhost")))
        .await
        .map_err(internal)?;
    let (key, conf) = (keyfile.to_string_lossy(), conffile.to_string_lossy());
    let subject = format!("/CN={user_id}");
    let cert = openssl(
        &[
            "req",
            "-x509",
            "-nodes",
            "-days",
            "3650",
            "-config",
            &conf,
            "-newkey",
            "rsa:2048",
            "-outform",
            "PEM",
            "-keyout",
            &key,
            "-subj",
            &subject,
            "-extensions",
            "v3_req_client",
        ],
        None,
    )
    .await?;
    let p12 = openssl(
        &["pkcs12", "-export", "-inkey", &key, "-password", "pass:"],
        Some(&cert),
    )
    .await?;
    let certificate = String::from_utf8(cert)
        .map_err(|_| ComputeError::Internal("openssl wrote a non-UTF-8 certificate".into()))?;
    let fingerprint = x509_fingerprint(&certificate)?;
    Ok(Generated {
        private_key: base64::engine::general_purpose::STANDARD.encode(p12),
        public_key: certificate,
        fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ssh_keys_read_back() {
        let g = ssh_rsa().expect("generate");
        assert!(g
            .private_key
            .starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(g.public_key.starts_with("ssh-rsa AAAAB3NzaC1yc2E"));
        assert!(g.public_key.ends_with(" Generated-by-Nova"));
        assert_eq!(ssh_fingerprint(&g.public_key).expect("fp"), g.fingerprint);
        assert_eq!(g.fingerprint.len(), 47);
    }

    #[test]
    fn mpint_gets_a_zero_when_its_top_bit_is_set() {
        let mut out = Vec::new();
        put_field(&mut out, &[0x80, 1], true);
        assert_eq!(out, vec![0, 0, 0, 3, 0, 0x80, 1]);
        out.clear();
        put_field(&mut out, &[1, 0, 1], true);
        assert_eq!(out, vec![0, 0, 0, 3, 1, 0, 1]);
    }

    #[test]
    fn x509_fingerprint_refuses_what_is_no_certificate() {
        assert!(x509_fingerprint("not a cert").is_err());
        assert!(
            x509_fingerprint("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
