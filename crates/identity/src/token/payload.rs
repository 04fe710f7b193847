//! Keystone's msgpack token payloads (`token_formatters.py`): the versions we
//! issue (0 unscoped, 1 domain, 2 project, 8 system, 9 application
//! credential) byte for byte as Keystone does, and decoding of the same.
//!
//! Ids are `[is_uuid, value]` pairs (16 raw bytes for a 32-hex id), methods a
//! bitmask over `external,password,token,oauth1,mapped,application_credential`,
//! `expires` a float of seconds, audit ids 16-byte binaries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rmpv::Value;

/// Keystone's default `[auth] methods`, whose order gives the bits.
pub const METHODS: [&str; 6] = [
    "external",
    "password",
    "token",
    "oauth1",
    "mapped",
    "application_credential",
];

/// What a token says, before the database fills in names, roles and catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub user_id: String,
    pub methods: Vec<String>,
    pub scope: Scope,
    /// Seconds since the epoch.
    pub expires_at: f64,
    /// 22-character URL-safe audit ids; a rescoped token adds its parent's.
    pub audit_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Unscoped,
    Domain(String),
    Project(String),
    System,
    /// A project token made from an application credential.
    ApplicationCredential {
        project: String,
        app_cred_id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed token payload: {0}")]
pub struct PayloadError(pub &'static str);

pub fn methods_to_int(methods: &[String]) -> u64 {
    methods
        .iter()
        .filter_map(|m| METHODS.iter().position(|k| k == m))
        .fold(0, |acc, i| acc | (1 << i))
}

pub fn int_to_methods(bits: u64) -> Vec<String> {
    METHODS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, m)| (*m).to_owned())
        .collect()
}

/// 32 lowercase hex digits exactly as `uuid.UUID(v).hex == v` accepts.
fn uuid_hex_bytes(id: &str) -> Option<Vec<u8>> {
    let is_hex = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        hex::decode(id).ok()
    } else {
        None
    }
}

fn encode_id(id: &str) -> Value {
    match uuid_hex_bytes(id) {
        Some(b) => Value::Array(vec![Value::Boolean(true), Value::Binary(b)]),
        None => Value::Array(vec![Value::Boolean(false), Value::from(id)]),
    }
}

fn decode_id(v: &Value) -> Result<String, PayloadError> {
    let pair = v.as_array().ok_or(PayloadError("id is not a pair"))?;
    match pair.as_slice() {
        [Value::Boolean(true), Value::Binary(b)] if b.len() == 16 => Ok(hex::encode(b)),
        [Value::Boolean(false), Value::String(s)] => s
            .as_str()
            .map(str::to_owned)
            .ok_or(PayloadError("id is not UTF-8")),
        [Value::Boolean(false), Value::Binary(b)] => {
            String::from_utf8(b.clone()).map_err(|_| PayloadError("id is not UTF-8"))
        }
        _ => Err(PayloadError("bad id pair")),
    }
}

/// A domain id is raw bytes, or the plain string when it is not a UUID (the
/// default domain `default`).
fn encode_domain(id: &str) -> Value {
    match uuid_hex_bytes(id) {
        Some(b) => Value::Binary(b),
        None => Value::from(id),
    }
}

fn decode_domain(v: &Value) -> Result<String, PayloadError> {
    match v {
        Value::Binary(b) if b.len() == 16 => Ok(hex::encode(b)),
        Value::String(s) => s
            .as_str()
            .map(str::to_owned)
            .ok_or(PayloadError("domain is not UTF-8")),
        _ => Err(PayloadError("bad domain id")),
    }
}

fn encode_audit(id: &str) -> Result<Value, PayloadError> {
    URL_SAFE_NO_PAD
        .decode(id.trim_end_matches('='))
        .map(Value::Binary)
        .map_err(|_| PayloadError("bad audit id"))
}

fn decode_audits(v: &Value) -> Result<Vec<String>, PayloadError> {
    v.as_array()
        .ok_or(PayloadError("audit ids"))?
        .iter()
        .map(|a| match a {
            Value::Binary(b) => Ok(URL_SAFE_NO_PAD.encode(b)),
            Value::String(s) => s
                .as_str()
                .map(str::to_owned)
                .ok_or(PayloadError("audit id")),
            _ => Err(PayloadError("audit id")),
        })
        .collect()
}

/// A fresh audit id: 16 random bytes, URL-safe base64 without padding.
pub fn new_audit_id() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

impl Payload {
    /// `msgpack.packb((version,) + fields)`.
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        let user = encode_id(&self.user_id);
        let methods = Value::from(methods_to_int(&self.methods));
        let expires = Value::F64(self.expires_at);
        let audits = Value::Array(
            self.audit_ids
                .iter()
                .map(|a| encode_audit(a))
                .collect::<Result<_, _>>()?,
        );
        let mut items = match &self.scope {
            Scope::Unscoped => vec![Value::from(0), user, methods, expires, audits],
            Scope::Domain(d) => vec![
                Value::from(1),
                user,
                methods,
                encode_domain(d),
                expires,
                audits,
            ],
            Scope::Project(p) => vec![Value::from(2), user, methods, encode_id(p), expires, audits],
            Scope::System => vec![
                Value::from(8),
                user,
                methods,
                Value::from("all"),
                expires,
                audits,
            ],
            Scope::ApplicationCredential { project, .. } => {
                vec![
                    Value::from(9),
                    user,
                    methods,
                    encode_id(project),
                    expires,
                    audits,
                ]
            }
        };
        if let Scope::ApplicationCredential { app_cred_id, .. } = &self.scope {
            items.push(encode_id(app_cred_id));
        }
        let mut out = Vec::with_capacity(96);
        rmpv::encode::write_value(&mut out, &Value::Array(items))
            .map_err(|_| PayloadError("cannot encode"))?;
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let mut cursor = bytes;
        let value =
            rmpv::decode::read_value(&mut cursor).map_err(|_| PayloadError("not msgpack"))?;
        let items = value.as_array().ok_or(PayloadError("not an array"))?;
        let version = items
            .first()
            .and_then(Value::as_u64)
            .ok_or(PayloadError("no version"))?;
        let get = |i: usize| items.get(i).ok_or(PayloadError("too short"));
        let user_id = decode_id(get(1)?)?;
        let methods = int_to_methods(get(2)?.as_u64().ok_or(PayloadError("methods"))?);
        let (scope, rest) = match version {
            0 => (Scope::Unscoped, 3),
            1 => (Scope::Domain(decode_domain(get(3)?)?), 4),
            2 => (Scope::Project(decode_id(get(3)?)?), 4),
            8 => (Scope::System, 4),
            9 => (
                Scope::ApplicationCredential {
                    project: decode_id(get(3)?)?,
                    app_cred_id: decode_id(get(6)?)?,
                },
                4,
            ),
            _ => return Err(PayloadError("unsupported version")),
        };
        let expires_at = get(rest)?.as_f64().ok_or(PayloadError("expires"))?;
        let audit_ids = decode_audits(get(rest + 1)?)?;
        Ok(Self {
            user_id,
            methods,
            scope,
            expires_at,
            audit_ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::fernet::{decrypt, FernetKey};

    const USER: &str = "1a2b3c4d5e6f47808192a3b4c5d6e7f8";
    const PROJECT: &str = "9f0e2c0b8a4c4b6e9d5b1a2c3d4e5f60";
    const AUDIT: &str = "ASNFZ4mrze8BI0VniavN7w";
    const EXPIRES: f64 = 1_893_499_200.0;
    const PROJECT_HEX: &str = "960292c3c4101a2b3c4d5e6f47808192a3b4c5d6e7f80292c3c4109f0e2c0b8a4c4b6e9d5b1a2c3d4e5f60cb41dc37205000000091c4100123456789abcdef0123456789abcdef";
    const UNSCOPED_HEX: &str = "950092c3c4101a2b3c4d5e6f47808192a3b4c5d6e7f802cb41dc37205000000091c4100123456789abcdef0123456789abcdef";
    // FERNET.md §6, made by keystone 30.0.0.
    const PROJECT_TOKEN: &str = "gAAAAABrBpdM237QStTV2IH74u9HIY5R7bpmJyye2OxX3vYHkAlllEQ6PGhi8gBuv3Nf_v8PiEBMtczeqBbeTCj5nvKTNcPVEHU1paVmH9uwePcvuDEW2_AHx8N7yV9T6qo2A7O6tX8CJ_8h_u3BnS1t4VnG-35gUD4MFfcr_2DQXA3-072MNV8";
    const DOMAIN_TOKEN: &str = "gAAAAABrBpdMPUsk7u2bA7ByUmcgQCGjgdHtYuJoGaNPU7ZLyAzN1vIchQ-5UccWqzxQhdIhO3tIcdmLkoseOlbOHycAhIxpDnugKgiixQT2TCWCXJosinmCHVnzuWTcSgzkB5ygbzJNbSorylL7hniZkKBsRXAFqQ";

    fn keys() -> Vec<FernetKey> {
        [
            "IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI=",
            "ERERERERERERERERERERERERERERERERERERERERERE=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE=",
        ]
        .iter()
        .map(|k| FernetKey::from_base64(k).expect("key"))
        .collect()
    }

    fn payload(scope: Scope) -> Payload {
        Payload {
            user_id: USER.into(),
            methods: vec!["password".into()],
            scope,
            expires_at: EXPIRES,
            audit_ids: vec![AUDIT.into()],
        }
    }

    #[test]
    fn encodes_keystone_vectors() {
        assert_eq!(
            hex::encode(
                payload(Scope::Project(PROJECT.into()))
                    .encode()
                    .expect("enc")
            ),
            PROJECT_HEX
        );
        assert_eq!(
            hex::encode(payload(Scope::Unscoped).encode().expect("enc")),
            UNSCOPED_HEX
        );
        let domain = hex::encode(
            payload(Scope::Domain("default".into()))
                .encode()
                .expect("enc"),
        );
        assert!(domain.starts_with("960192c3c4101a2b"), "{domain}");
        assert!(
            domain.contains("e7f802a764656661756c74cb41dc372050000000"),
            "{domain}"
        );
        let system = hex::encode(payload(Scope::System).encode().expect("enc"));
        assert!(system.starts_with("960892c3c4101a2b"));
        assert!(system.contains("e7f802a3616c6ccb41dc3720"));
        // SystemScopedPayload: the unscoped fields with the string "all"
        // after the methods.
        assert_eq!(
            system,
            format!(
                "960892c3c4101a2b3c4d5e6f47808192a3b4c5d6e7f802a3616c6c{}",
                &UNSCOPED_HEX[UNSCOPED_HEX.find("cb41dc37").expect("expires")..]
            )
        );
        let back = Payload::decode(&hex::decode(&system).expect("hex")).expect("decode");
        assert_eq!(back, payload(Scope::System));
        let t = keys()[0].encrypt(&hex::decode(&system).expect("hex"), 1_700_000_000);
        assert_eq!(t.len(), 162);
    }

    #[test]
    fn decrypts_keystone_tokens() {
        let keys = keys();
        let d = decrypt(&keys, PROJECT_TOKEN).expect("project token decrypts");
        assert_eq!(hex::encode(&d.plaintext), PROJECT_HEX);
        assert_eq!(
            Payload::decode(&d.plaintext).expect("decode"),
            payload(Scope::Project(PROJECT.into()))
        );
        assert_eq!(PROJECT_TOKEN.len(), 183);

        let d = decrypt(&keys, DOMAIN_TOKEN).expect("domain token decrypts");
        assert_eq!(
            Payload::decode(&d.plaintext).expect("decode"),
            payload(Scope::Domain("default".into()))
        );
        assert_eq!(DOMAIN_TOKEN.len(), 162);

        // Only the primary (2) made them.
        assert!(decrypt(&keys[1..], PROJECT_TOKEN).is_none());
    }

    #[test]
    fn our_tokens_have_keystones_length_and_round_trip() {
        let keys = keys();
        let p = payload(Scope::Project(PROJECT.into()));
        let t = keys[0].encrypt(&p.encode().expect("enc"), 1_700_000_000);
        assert_eq!(t.len(), 183);
        let d = decrypt(&keys, &t).expect("dec");
        assert_eq!(d.timestamp, 1_700_000_000);
        assert_eq!(Payload::decode(&d.plaintext).expect("decode"), p);
    }

    #[test]
    fn non_uuid_ids_and_methods() {
        let a = payload(Scope::ApplicationCredential {
            project: PROJECT.into(),
            app_cred_id: USER.into(),
        });
        let bytes = a.encode().expect("enc");
        assert_eq!(bytes[1], 9);
        assert_eq!(Payload::decode(&bytes).expect("dec"), a);

        let mut p = payload(Scope::Domain("abc".into()));
        p.user_id = "ldap-user".into();
        p.methods = vec!["password".into(), "token".into()];
        p.audit_ids.push(new_audit_id());
        let back = Payload::decode(&p.encode().expect("enc")).expect("dec");
        assert_eq!(back, p);
        assert_eq!(methods_to_int(&p.methods), 6);
        assert!(Payload::decode(b"\x91\x63").is_err());
        assert!(Payload::decode(b"garbage").is_err());
    }
}
