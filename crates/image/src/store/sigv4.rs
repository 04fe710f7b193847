//! Just enough AWS Signature Version 4 to create a bucket: `object_store`
//! reads and writes objects but cannot create buckets, and a fresh RGW has
//! none.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Result<Vec<u8>, String> {
    let mut m = HmacSha256::new_from_slice(key).map_err(|e| e.to_string())?;
    m.update(data.as_bytes());
    Ok(m.finalize().into_bytes().to_vec())
}

/// The headers of a signed `PUT <url>` with an empty body, where `url` is
/// `http(s)://host[:port]/bucket`.
pub fn sign_put_bucket(
    url: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    sign_put_bucket_at(url, region, access_key, secret_key, chrono::Utc::now())
}

fn sign_put_bucket_at(
    url: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(&'static str, String)>, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("not an http(s) URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // Bucket names are plain (letters, digits, '-', '.'), so the path needs
    // no URI encoding; anything else is refused rather than mis-signed.
    if !path[1..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' || c == '/')
    {
        return Err(format!("unsupported characters in bucket path {path}"));
    }
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let payload_hash = hex::encode(Sha256::digest(b""));
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "PUT\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\n{signed_headers}\n{payload_hash}"
    );
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{secret_key}").as_bytes(), &date)?;
    let k_region = hmac(&k_date, region)?;
    let k_service = hmac(&k_region, "s3")?;
    let k_signing = hmac(&k_service, "aws4_request")?;
    let signature = hex::encode(hmac(&k_signing, &to_sign)?);
    Ok(vec![
        ("x-amz-date", amz_date),
        ("x-amz-content-sha256", payload_hash),
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_has_the_aws_shape() {
        let t = chrono::DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .expect("time");
        let h = sign_put_bucket_at("http://127.0.0.1:7480/b", "us-east-1", "AK", "SK", t)
            .expect("sign");
        assert_eq!(h[0].1, "20130524T000000Z");
        assert!(h[2]
            .1
            .starts_with("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request"));
        assert!(sign_put_bucket("ftp://x/b", "r", "a", "s").is_err());
        assert!(sign_put_bucket("http://x/b?x", "r", "a", "s").is_err());
    }
}
