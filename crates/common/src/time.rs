//! Timestamps in the forms the OpenStack APIs print, and the one form we store.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// Now, at the microsecond precision we store, so that a value read back
/// equals the value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Stored form: RFC 3339 with microseconds and `Z`, so that text order is time order.
pub fn to_db(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn from_db(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Keystone: `2026-11-25T09:01:06.000000Z`.
pub fn keystone(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Nova, Glance, Neutron: `2026-11-25T09:01:06Z`.
pub fn iso_seconds(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_form_round_trips_and_sorts() {
        let a = now();
        let b = a + chrono::Duration::milliseconds(5);
        assert_eq!(from_db(&to_db(a)), Some(a));
        assert!(to_db(a) < to_db(b));
    }

    #[test]
    fn keystone_form_has_six_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .ok();
        assert_eq!(
            t.map(keystone).as_deref(),
            Some("2030-01-01T12:00:00.000000Z")
        );
    }
}
