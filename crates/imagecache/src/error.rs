//! The one error type of the image cache. The compute agent turns these into
//! an instance fault; `Unavailable` is the one worth a retry or a reschedule.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The image API says no such image (or the caller may not see it).
    #[error("image not found")]
    NotFound,
    /// The image exists but is not `active` (the status is given).
    #[error("image is not active (status {0})")]
    NotActive(String),
    /// The token was refused by the image API.
    #[error("the image API refused the token: {0}")]
    Unauthorized(String),
    /// The fetched bits are not what the image API says they are; nothing
    /// was kept in the cache.
    #[error("image data does not match its {algo}: expected {expected}, got {actual}")]
    HashMismatch {
        algo: String,
        expected: String,
        actual: String,
    },
    /// The image's data is unsafe or unusable as a base (for example a qcow2
    /// that names a backing file of its own).
    #[error("bad image: {0}")]
    BadImage(String),
    /// A disk format that cannot back a qcow2 overlay.
    #[error("disk format {0:?} cannot be used as an instance disk")]
    UnsupportedFormat(String),
    /// The flavor's disk is smaller than the image's virtual size.
    #[error(
        "disk of {size_gb} GiB is smaller than the image's virtual size of {virtual_size} bytes"
    )]
    DiskTooSmall { size_gb: u64, virtual_size: u64 },
    /// The image API or the store could not be reached or failed; retrying
    /// later (or on another host) may work.
    #[error("image unavailable: {0}")]
    Unavailable(String),
    /// `create_overlay` for an image no longer in the cache (cleaned up).
    #[error("image is not in the cache: {0}")]
    NotCached(PathBuf),
    /// `qemu-img` failed.
    #[error("qemu-img: {0}")]
    QemuImg(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl From<stratus_image_client::ClientError> for CacheError {
    fn from(e: stratus_image_client::ClientError) -> Self {
        use stratus_image_client::ClientError as C;
        match e {
            // Glance answers 404 for images the caller may not see.
            C::NotFound(_) => CacheError::NotFound,
            C::Api {
                status: status @ (401 | 403),
                ..
            } => CacheError::Unauthorized(
                reqwest::StatusCode::from_u16(status)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|_| status.to_string()),
            ),
            C::Api { status, message } => {
                CacheError::Unavailable(format!("image API answered {status}: {message}"))
            }
            C::NoData(_) => CacheError::Unavailable("the image has no data".to_owned()),
            C::Transport(e) => CacheError::Unavailable(format!("image API {e}")),
            C::Decode(e) => {
                CacheError::Unavailable(format!("image API answered an unreadable image: {e}"))
            }
        }
    }
}

impl CacheError {
    /// Whether trying again later, or on another host, may succeed (the
    /// compute agent reschedules on these and fails the build otherwise).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CacheError::Unavailable(_) | CacheError::Io(_) | CacheError::NotCached(_)
        )
    }
}
