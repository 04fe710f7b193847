//! The regular-expression filters of `GET /servers`, as Nova applies them:
//!
//! - `name` is a regex *searched* in the display name (Nova's
//!   `_regex_instance_filter`: `REGEXP` on SQLite, which Nova backs with
//!   Python's `re.search`, `~` on PostgreSQL; both unanchored);
//! - `ip` / `ip6` are regexes *matched* (Python's `re.match`: anchored at the
//!   start only) against the fixed IPv4 / IPv6 addresses of the server's
//!   network info (`API._ip_filter`); a server passes if any v4 address
//!   matches `ip` or any v6 address matches `ip6`.
//!
//! The SQL engines' regex dialects differ, so the match is done here, in
//! Rust, after the SQL filters, with `regex-automata` (the `regex` crate's
//! engine): its syntax is Python's for everything a filter is used for
//! (classes, anchors, alternation, repetition); back-references and
//! look-around, which it lacks, make a pattern invalid. An invalid pattern
//! matches nothing (Nova answers such a pattern with a database error, a 500).

use std::net::IpAddr;

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

use super::instances::ListFilter;
use stratus_network_client::Vif as VifInfo;

/// The compiled patterns of one listing.
pub(crate) struct Patterns {
    name: Option<Option<Regex>>,
    ip: Option<Option<Regex>>,
    ip6: Option<Option<Regex>>,
}

fn compile(p: &Option<String>) -> Option<Option<Regex>> {
    p.as_deref().map(|p| Regex::new(p).ok())
}

impl Patterns {
    pub(crate) fn new(f: &ListFilter) -> Self {
        Self {
            name: compile(&f.name),
            ip: compile(&f.ip),
            ip6: compile(&f.ip6),
        }
    }

    /// Whether no filter is set (every instance passes).
    pub(crate) fn is_empty(&self) -> bool {
        self.name.is_none() && self.ip.is_none() && self.ip6.is_none()
    }

    /// Whether a server with this name and network info passes the name
    /// and IP filters (a listing reads only those columns before it knows
    /// which rows make the page).
    pub(crate) fn matches_parts(&self, name: &str, network_info: &[VifInfo]) -> bool {
        if let Some(re) = &self.name {
            if !re.as_ref().is_some_and(|re| re.is_match(name)) {
                return false;
            }
        }
        if self.ip.is_none() && self.ip6.is_none() {
            return true;
        }
        let starts = |re: &Option<Option<Regex>>, addr: &str| {
            re.as_ref()
                .and_then(Option::as_ref)
                .is_some_and(|re| re.is_match(Input::new(addr).anchored(Anchored::Yes)))
        };
        network_info
            .iter()
            .flat_map(|vif| vif.fixed_ips.iter())
            .any(|ip| match ip.address.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => starts(&self.ip, &ip.address),
                Ok(IpAddr::V6(_)) => starts(&self.ip6, &ip.address),
                Err(_) => false,
            })
    }
}

/// Nova's `name` filter alone: `re.search(pattern, name)`.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    Regex::new(pattern).is_ok_and(|re| re.is_match(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_searched_not_anchored() {
        assert!(name_matches("vm", "my-vm-1"));
        assert!(name_matches("^my", "my-vm-1"));
        assert!(!name_matches("^vm", "my-vm-1"));
        assert!(name_matches("-1$", "my-vm-1"));
        assert!(name_matches("^my.*1$", "my-vm-1"));
        assert!(!name_matches("^my.*2$", "my-vm-1"));
        assert!(name_matches("^srv-[12]$", "srv-2"));
        assert!(!name_matches("^srv-[12]$", "srv-3"));
        assert!(name_matches("a|b", "xbx"));
        // Not a valid pattern: matches nothing.
        assert!(!name_matches("(", "("));
    }
}
