//! The guest password (`openstack/<ver>/password`), as Nova's `password.py`:
//! a guest agent (cloudbase-init, or Windows images) POSTs the password
//! encrypted with the instance's public key, once; `nova get-password`
//! reads it back. Nova keeps it in system_metadata as up to four chunks of
//! 255 characters, `password_0`..`password_3`; the helpers here let the
//! compute service store it the same way.

use crate::error::{MetadataError, Result};

pub const CHUNKS: usize = 4;
pub const CHUNK_LENGTH: usize = 255;
/// Largest accepted body, in bytes.
pub const MAX_SIZE: usize = CHUNKS * CHUNK_LENGTH;

/// What a password request asks for, decided before anything is stored.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordAction {
    /// GET: answer with this text (`""` when none is set).
    Show(String),
    /// POST: store this password.
    Store(String),
}

/// An empty stored password counts as none, as in Nova.
pub fn is_set(current: Option<&str>) -> bool {
    current.is_some_and(|p| !p.is_empty())
}

/// Nova's `handle_password`, minus the storing. `body` is `None` when the
/// body was larger than [`MAX_SIZE`].
pub fn decide(method: &str, current: Option<&str>, body: Option<&[u8]>) -> Result<PasswordAction> {
    match method {
        "GET" => Ok(PasswordAction::Show(current.unwrap_or_default().to_owned())),
        "POST" => {
            if is_set(current) {
                return Err(MetadataError::Conflict);
            }
            let body = match body {
                Some(b) if b.len() <= MAX_SIZE => b,
                _ => return Err(MetadataError::BadRequest("Request is too large.".into())),
            };
            let text = std::str::from_utf8(body).map_err(|_| {
                MetadataError::BadRequest("The password must be UTF-8 text.".into())
            })?;
            Ok(PasswordAction::Store(text.to_owned()))
        }
        _ => Err(MetadataError::BadRequest(
            "GET and POST only are supported.".into(),
        )),
    }
}

/// Nova's `convert_password`: the system_metadata items for a password,
/// always all four keys (empty chunks clear an old value).
pub fn to_chunks(password: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = password.chars().collect();
    (0..CHUNKS)
        .map(|i| {
            let chunk: String = chars
                .iter()
                .skip(i * CHUNK_LENGTH)
                .take(CHUNK_LENGTH)
                .collect();
            (format!("password_{i}"), chunk)
        })
        .collect()
}

/// Nova's `extract_password`: joins the `password_*` items in key order;
/// `None` when they are absent or empty.
pub fn from_chunks<'a>(
    system_metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    let mut parts: Vec<(&str, &str)> = system_metadata
        .into_iter()
        .filter(|(k, _)| k.starts_with("password_"))
        .collect();
    parts.sort();
    let joined: String = parts.into_iter().map(|(_, v)| v).collect();
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip() {
        let pw = "x".repeat(600);
        let chunks = to_chunks(&pw);
        assert_eq!(chunks.len(), 4);
        assert_eq!(chunks[0].1.len(), 255);
        assert_eq!(chunks[2].1.len(), 90);
        assert_eq!(chunks[3].1, "");
        let back = from_chunks(chunks.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        assert_eq!(back, Some(pw));
        assert_eq!(
            from_chunks(to_chunks("").iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            None
        );
    }

    #[test]
    fn second_post_conflicts_before_size_check() {
        assert!(matches!(
            decide("POST", Some("set"), None),
            Err(MetadataError::Conflict)
        ));
        assert!(matches!(
            decide("POST", Some(""), Some(b"pw")),
            Ok(PasswordAction::Store(_))
        ));
        assert!(matches!(
            decide("PUT", None, Some(b"pw")),
            Err(MetadataError::BadRequest(_))
        ));
    }
}
