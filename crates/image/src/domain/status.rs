//! Glance's image status machine (glance/domain/__init__.py), restricted to
//! the states this service reaches:
//!
//! ```text
//!            upload starts          data stored
//!   queued ───────────────► saving ───────────► active ◄──────┐
//!     ▲                       │  │                 │ deactivate │ reactivate
//!     └── upload broke off ───┘  └─► killed        ▼            │
//!                                            deactivated ───────┘
//!   any state ──delete──► deleted
//! ```

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageStatus {
    Queued,
    Saving,
    Active,
    Killed,
    Deleted,
    Deactivated,
}

impl ImageStatus {
    pub const ALL: [ImageStatus; 6] = [
        Self::Queued,
        Self::Saving,
        Self::Active,
        Self::Killed,
        Self::Deleted,
        Self::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Saving => "saving",
            Self::Active => "active",
            Self::Killed => "killed",
            Self::Deleted => "deleted",
            Self::Deactivated => "deactivated",
        }
    }

    /// Glance's `valid_state_targets`.
    pub fn can_become(self, to: ImageStatus) -> bool {
        use ImageStatus::*;
        matches!(
            (self, to),
            (Queued, Saving | Active | Deleted)
                | (Saving, Active | Killed | Deleted | Queued)
                | (Active, Deleted | Deactivated)
                | (Killed, Deleted)
                | (Deactivated, Active | Deleted)
        )
    }
}

impl fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImageStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("Invalid status value: {s}"))
    }
}

#[cfg(test)]
mod tests {
    use super::ImageStatus::*;
    use super::*;

    #[test]
    fn transitions_follow_glance() {
        assert!(Queued.can_become(Saving));
        assert!(Saving.can_become(Active));
        assert!(Saving.can_become(Queued));
        assert!(!Active.can_become(Saving));
        assert!(!Deleted.can_become(Active));
        assert!(Active.can_become(Deactivated) && Deactivated.can_become(Active));
        for s in ImageStatus::ALL {
            assert_eq!(s.as_str().parse::<ImageStatus>(), Ok(s));
        }
    }
}
