//! Glance's (deprecated, admin-only) task API: an `import` task creates an
//! image from `input.image_properties` and copies its data from
//! `input.import_from`.
//!
//! ```text
//!   pending ──► processing ──► success
//!      │             │
//!      └─────────────┴───────► failure
//! ```
//!
//! A finished task gets `expires_at` (Glance's `task_time_to_live` later).

use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    Pending,
    Processing,
    Success,
    Failure,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 4] = [
        TaskStatus::Pending,
        TaskStatus::Processing,
        TaskStatus::Success,
        TaskStatus::Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Glance's `_validate_task_status_transition`.
    pub fn can_become(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Pending, Processing) | (Pending, Failure) | (Processing, Success | Failure)
        )
    }
}

/// Glance's task types: `import` through this API, `api_image_import` is
/// what the image import API records.
pub const TASK_TYPES: &[&str] = &["import", "api_image_import"];

#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: String,
    pub task_type: String,
    pub status: TaskStatus,
    pub owner: Option<String>,
    pub input: Value,
    pub result: Option<Value>,
    /// Empty unless something is worth telling (usually a failure).
    pub message: String,
    pub image_id: Option<String>,
    pub request_id: Option<String>,
    pub user_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use TaskStatus::*;
        assert!(Pending.can_become(Processing));
        assert!(Pending.can_become(Failure));
        assert!(!Pending.can_become(Success));
        assert!(Processing.can_become(Success));
        assert!(!Success.can_become(Failure));
        assert!(!Failure.can_become(Processing));
        assert_eq!(TaskStatus::parse("failure"), Some(Failure));
        assert_eq!(TaskStatus::parse("done"), None);
    }
}
