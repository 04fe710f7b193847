//! Glance's image status machine (glance/domain/__init__.py), restricted to
//! the states this service reaches:
//!
//! ```text
//!            upload starts          data stored
//!   queued ───────────────► saving ───────────► active ◄──────┐
//!    ▲ ▲ ▲                    │  │                 ▲ │ deactivate │ reactivate
//!    │ │ └─ upload broke off ─┘  └─► killed        │ ▼            │
//!    │ │                                           │ deactivated ─┘
//!    │ │ stage (glance-direct)      import         │
//!    │ └──────────── uploading ───────────► importing
//!    │  stage broke off  │                    │ data stored in the store
//!    └───────────────────┴── import failed ───┘
//!
//!   any state ──delete──► deleted
//! ```

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImageStatus {
    Queued,
    Saving,
    /// Data staged for a glance-direct import (`PUT .../stage` ran or runs).
    Uploading,
    /// The import task is writing the staged data into the store.
    Importing,
    Active,
    Killed,
    Deleted,
    Deactivated,
}

impl ImageStatus {
    pub const ALL: [ImageStatus; 8] = [
        Self::Queued,
        Self::Saving,
        Self::Uploading,
        Self::Importing,
        Self::Active,
        Self::Killed,
        Self::Deleted,
        Self::Deactivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Saving => "saving",
            Self::Uploading => "uploading",
            Self::Importing => "importing",
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
            (Queued, Saving | Uploading | Importing | Active | Deleted)
                | (Saving, Active | Killed | Deleted | Queued)
                | (Uploading, Importing | Queued | Deleted)
                | (Importing, Active | Deleted | Queued)
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
        assert!(Queued.can_become(Uploading) && Uploading.can_become(Importing));
        assert!(Importing.can_become(Active) && Importing.can_become(Queued));
        assert!(Uploading.can_become(Queued) && !Uploading.can_become(Active));
        for s in ImageStatus::ALL {
            assert_eq!(s.as_str().parse::<ImageStatus>(), Ok(s));
        }
    }
}
