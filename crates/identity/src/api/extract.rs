//! Extractors: a JSON body whose rejections are Keystone's 400, query
//! filters, the authenticated caller, and the base URL for `links`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use stratus_common::config::ServiceKind;
use stratus_common::RequestContext;

use crate::error::{IdentityError, Result};
use crate::token::provider::{self, TokenModel};
use crate::Inner;

pub const AUTH_TOKEN: &str = "x-auth-token";
pub const SUBJECT_TOKEN: &str = "x-subject-token";

/// `Json` with Keystone's 400 for a malformed body or a missing or mistyped field.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = IdentityError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| IdentityError::validation(format!("Cannot read the request body: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(IdentityError::validation(
                "The request body is empty; a JSON object is required.",
            ));
        }
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            IdentityError::validation(format!("Invalid input for the request body: {e}"))
        })
    }
}

/// Query parameters (`name`, `domain_id`, `user.id`, ...).
pub struct Filters(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Filters {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| IdentityError::validation(format!("Invalid query string: {e}")))?;
        Ok(Filters(pairs.into_iter().collect()))
    }
}

impl Filters {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A flag that is on when present unless it says false (`?nocatalog`,
    /// `?effective`, `?include_names`).
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            ),
        }
    }

    /// A boolean filter (`enabled=true`); anything unreadable is a 400.
    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" | "" => Ok(Some(true)),
                "0" | "false" | "no" | "off" => Ok(Some(false)),
                _ => Err(IdentityError::validation(format!(
                    "Invalid value for {key}: {v}"
                ))),
            },
        }
    }
}

/// The caller, from a valid `X-Auth-Token`; anything else is Keystone's 401.
pub struct Caller(pub TokenModel);

impl Caller {
    pub fn ctx(&self) -> RequestContext {
        self.0.context()
    }
}

impl FromRequestParts<Arc<Inner>> for Caller {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Inner>) -> Result<Self> {
        let token = parts
            .headers
            .get(AUTH_TOKEN)
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(IdentityError::unauthorized)?;
        match provider::validate(state, token).await {
            Ok(m) => Ok(Caller(m)),
            Err(IdentityError::TokenNotFound(_)) => Err(IdentityError::unauthorized()),
            Err(e) => Err(e),
        }
    }
}

/// `http://host:port` for links: the request's Host, else the configured URL.
pub struct BaseUrl(pub String);

impl FromRequestParts<Arc<Inner>> for BaseUrl {
    type Rejection = IdentityError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Inner>) -> Result<Self> {
        let host = parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c))
            });
        Ok(BaseUrl(match host {
            Some(h) => format!("http://{h}"),
            None => state.global.base_url(ServiceKind::Identity),
        }))
    }
}

impl BaseUrl {
    pub fn v3(&self, path: &str) -> String {
        format!("{}/v3/{}", self.0, path)
    }
}
