//! Tokens: Fernet encryption ([`fernet`]), Keystone's msgpack payloads
//! ([`payload`]), the key repository ([`keys`]), and issuing and validating
//! with the database ([`provider`]).

pub mod fernet;
pub mod keys;
pub mod payload;
pub mod provider;
