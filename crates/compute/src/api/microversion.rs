//! Microversions: `OpenStack-API-Version: compute X.Y` (or the older
//! `X-OpenStack-Nova-API-Version: X.Y`) picks the response format; the
//! version used is echoed on every response with `Vary`.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::error::ComputeError;

pub const MIN: ApiVersion = ApiVersion(2, 1);
pub const MAX: ApiVersion = ApiVersion(2, 96);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    /// Whether this request asked for at least `minor` (in 2.x).
    pub fn at_least(self, minor: u32) -> bool {
        self >= ApiVersion(2, minor)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The version a request asks for, from its headers.
pub fn negotiate(
    openstack: Option<&str>,
    legacy: Option<&str>,
) -> Result<ApiVersion, ComputeError> {
    let requested = match openstack {
        Some(h) => h
            .split(',')
            .map(str::trim)
            .find_map(|part| {
                let mut it = part.split_whitespace();
                match (it.next(), it.next()) {
                    (Some(svc), Some(v)) if svc.eq_ignore_ascii_case("compute") => {
                        Some(v.to_owned())
                    }
                    _ => None,
                }
            })
            .or_else(|| legacy.map(str::to_owned)),
        None => legacy.map(|s| s.trim().to_owned()),
    };
    let Some(v) = requested else {
        return Ok(MIN);
    };
    if v.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let parsed = v
        .split_once('.')
        .and_then(|(a, b)| Some(ApiVersion(a.parse().ok()?, b.parse().ok()?)));
    let Some(ver) = parsed else {
        return Err(ComputeError::BadRequest(format!(
            "API Version String {v} is of invalid format. Must be of format MajorNum.MinorNum."
        )));
    };
    if ver < MIN || ver > MAX {
        return Err(ComputeError::NotAcceptable(format!(
            "Version {ver} is not supported by the API. Minimum is {MIN} and maximum is {MAX}."
        )));
    }
    Ok(ver)
}

pub fn layer(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(apply))
}

async fn apply(mut req: Request, next: Next) -> Response {
    let ver = {
        let h = req.headers();
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        negotiate(
            get("openstack-api-version"),
            get("x-openstack-nova-api-version"),
        )
    };
    let (mut resp, ver) = match ver {
        Ok(v) => {
            req.extensions_mut().insert(v);
            (next.run(req).await, v)
        }
        Err(e) => (e.into_response(), MIN),
    };
    let hs = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("compute {ver}")) {
        hs.insert("openstack-api-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ver.to_string()) {
        hs.insert("x-openstack-nova-api-version", v);
    }
    hs.insert(
        "vary",
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    resp
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiVersion {
    type Rejection = ComputeError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<ApiVersion>().copied().unwrap_or(MIN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_pick_the_version() {
        assert_eq!(negotiate(None, None).ok(), Some(MIN));
        assert_eq!(
            negotiate(Some("compute 2.61"), None).ok(),
            Some(ApiVersion(2, 61))
        );
        assert_eq!(
            negotiate(Some("volume 3.1, compute 2.47"), None).ok(),
            Some(ApiVersion(2, 47))
        );
        assert_eq!(negotiate(None, Some("2.19")).ok(), Some(ApiVersion(2, 19)));
        assert_eq!(negotiate(Some("compute latest"), None).ok(), Some(MAX));
        assert!(matches!(
            negotiate(Some("compute 3.0"), None),
            Err(ComputeError::NotAcceptable(_))
        ));
        assert!(matches!(
            negotiate(Some("compute 2.999"), None),
            Err(ComputeError::NotAcceptable(_))
        ));
        assert!(matches!(
            negotiate(Some("compute abc"), None),
            Err(ComputeError::BadRequest(_))
        ));
    }
}
