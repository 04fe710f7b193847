//! Where the bits of an image are read from, in order of preference (seed
//! steps 21–25): a `file://` location readable on this host, an `s3://`
//! location read straight from the store (Ceph RGW) when this host has S3
//! credentials, and otherwise the image API's download.

mod api;
mod file;
mod s3;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use api::fetch_api;
pub use file::fetch_file;
pub use s3::fetch_s3;

/// Which source a cached image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    File,
    S3,
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::S3 => "s3",
            Source::Api => "api",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way to read an image, as planned from its locations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    File(PathBuf),
    S3 { bucket: String, key: String },
    Api,
}

impl Attempt {
    pub fn source(&self) -> Source {
        match self {
            Attempt::File(_) => Source::File,
            Attempt::S3 { .. } => Source::S3,
            Attempt::Api => Source::Api,
        }
    }
}

/// The attempts for these location URIs, best first; always ends with the
/// API download. Unknown schemes (`rbd://`, `http://`, ...) are skipped, and
/// `s3://` only counts when this host can sign S3 requests.
pub fn plan(urls: &[&str], s3_configured: bool) -> Vec<Attempt> {
    let mut files = Vec::new();
    let mut s3 = Vec::new();
    for url in urls {
        if let Some(path) = file_path(url) {
            files.push(Attempt::File(path));
        } else if let Some((bucket, key)) = s3_object(url) {
            if s3_configured {
                s3.push(Attempt::S3 { bucket, key });
            }
        }
    }
    files.extend(s3);
    files.push(Attempt::Api);
    files
}

/// The local path of a `file://` URI (`file:///abs/path` or `file://localhost/abs/path`).
fn file_path(url: &str) -> Option<PathBuf> {
    // The URL parser would read `file:relative` as `/relative`.
    if !url.starts_with("file://") {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    if parsed.scheme() != "file" {
        return None;
    }
    parsed.to_file_path().ok()
}

/// `s3://bucket/key` split into bucket and key.
fn s3_object(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some((bucket.to_owned(), key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_first_then_s3_then_api() {
        let urls = [
            "s3://imgs/abc",
            "rbd://fsid/pool/img/snap",
            "file:///var/lib/images/abc",
        ];
        assert_eq!(
            plan(&urls, true),
            vec![
                Attempt::File(PathBuf::from("/var/lib/images/abc")),
                Attempt::S3 {
                    bucket: "imgs".into(),
                    key: "abc".into()
                },
                Attempt::Api,
            ]
        );
        assert_eq!(
            plan(&urls, false),
            vec![
                Attempt::File(PathBuf::from("/var/lib/images/abc")),
                Attempt::Api
            ]
        );
        assert_eq!(plan(&[], true), vec![Attempt::Api]);
    }

    #[test]
    fn malformed_locations_are_skipped() {
        assert_eq!(
            plan(
                &["s3://", "s3://bucket", "file:relative", "not a url"],
                true
            ),
            vec![Attempt::Api]
        );
        assert_eq!(
            plan(&["file:///dir%20x/a"], false),
            vec![Attempt::File(PathBuf::from("/dir x/a")), Attempt::Api]
        );
    }
}
