//! Seed steps 39–42 of a volume request (compute asking for a volume, or
//! attaching one): received (39), the token validated with identity (40)
//! and the roles it answered put in the request (41), answered (42).
//!
//! Validation happens in the token layer, before the handler knows which
//! volume (or server) the request is for, so [`TimedValidator`] keeps its
//! timing in a per-request slot ([`validation_slot`]) and the handler
//! records the steps with the resource ([`received`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use stratus_auth::{AuthError, TokenValidator, ValidatedToken};
use stratus_telemetry::{Event, Outcome, Recorder};

/// One request's arrival and token validation.
struct Slot {
    arrived: DateTime<Utc>,
    validation: Option<Validation>,
}

struct Validation {
    started_at: DateTime<Utc>,
    duration_us: i64,
    /// Roles answered, or the error.
    answer: Result<Vec<String>, String>,
}

tokio::task_local! {
    static SLOT: Arc<Mutex<Slot>>;
}

/// Middleware outside the token layer: the request's slot.
pub async fn validation_slot(req: Request, next: Next) -> Response {
    let slot = Slot {
        arrived: Utc::now(),
        validation: None,
    };
    SLOT.scope(Arc::new(Mutex::new(slot)), next.run(req)).await
}

/// The service's validator, timed into the request's slot.
pub struct TimedValidator(pub Arc<dyn TokenValidator>);

#[async_trait]
impl TokenValidator for TimedValidator {
    async fn validate(&self, token: &str) -> Result<ValidatedToken, AuthError> {
        let started_at = Utc::now();
        let clock = Instant::now();
        let r = self.0.validate(token).await;
        let v = Validation {
            started_at,
            duration_us: i64::try_from(clock.elapsed().as_micros()).unwrap_or(i64::MAX),
            answer: r
                .as_ref()
                .map(|t| t.context.roles.clone())
                .map_err(ToString::to_string),
        };
        let _ = SLOT.try_with(|slot| {
            if let Ok(mut s) = slot.lock() {
                s.validation = Some(v);
            }
        });
        r
    }
}

/// Records steps 39–41 of the current request for `resource`: received
/// (from arrival to the validation), validated (the validator's call) and
/// the roles put in the request.
pub fn received(recorder: &Recorder, what: &str, resource: &str) {
    let Some(request_id) = stratus_common::current_request_id() else {
        return;
    };
    let Ok(Some((arrived, validation))) = SLOT.try_with(|slot| {
        slot.lock()
            .ok()
            .map(|mut s| (s.arrived, s.validation.take()))
    }) else {
        return;
    };
    let event = |step: u16, what: String, started_at: DateTime<Utc>, duration_us: i64| Event {
        request_id: request_id.0.clone(),
        service: String::new(),
        step,
        what,
        resource_id: Some(resource.to_owned()),
        started_at,
        duration_us,
        outcome: Outcome::Ok,
        detail: None,
    };
    let until = validation.as_ref().map_or_else(Utc::now, |v| v.started_at);
    let waited = (until - arrived).num_microseconds().unwrap_or(0).max(0);
    recorder.record(event(39, format!("{what} received"), arrived, waited));
    let Some(v) = validation else {
        return;
    };
    let mut validated = event(
        40,
        "token validated with identity".to_owned(),
        v.started_at,
        v.duration_us,
    );
    let ended = v.started_at + chrono::Duration::microseconds(v.duration_us);
    match v.answer {
        Ok(roles) => {
            recorder.record(validated);
            let what = format!("roles [{}] put in the request", roles.join(", "));
            recorder.record(event(41, what, ended, 0));
        }
        Err(e) => {
            validated.outcome = Outcome::Error;
            validated.detail = Some(e);
            recorder.record(validated);
        }
    }
}
