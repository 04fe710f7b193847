//! Tokens: Fernet encryption ([`fernet`]), Keystone's msgpack payloads
//! ([`payload`]), the key repository ([`keys`]), and issuing and validating
//! with the database ([`provider`]), validated tokens kept in memory
//! ([`cache`]).

pub mod cache;
pub mod fernet;
pub mod keys;
pub mod payload;
pub mod provider;
