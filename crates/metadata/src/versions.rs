//! Metadata versions (Nova's `base.py`): the EC2 dates and the OpenStack
//! dates, each OpenStack date being one release's bundle of changes.

/// EC2 versions, oldest first; `latest` means the last.
pub const EC2_VERSIONS: [&str; 9] = [
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
];

pub const FOLSOM: &str = "2012-08-10";
pub const GRIZZLY: &str = "2013-04-04";
pub const HAVANA: &str = "2013-10-17";
pub const LIBERTY: &str = "2015-10-15";
pub const NEWTON_ONE: &str = "2016-06-30";
pub const NEWTON_TWO: &str = "2016-10-06";
pub const OCATA: &str = "2017-02-22";
pub const ROCKY: &str = "2018-08-27";
pub const VICTORIA: &str = "2020-10-14";
pub const EPOXY: &str = "2025-04-04";

/// OpenStack versions, oldest first; `latest` means the last.
pub const OPENSTACK_VERSIONS: [&str; 10] = [
    FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA, EPOXY,
];

/// A version resolved to its position in its list, so that "at least
/// version X" is an index comparison (Nova's `_check_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    index: usize,
}

impl Version {
    fn resolve(list: &[&str], requested: &str) -> Option<Self> {
        if requested == "latest" {
            return Some(Self {
                index: list.len() - 1,
            });
        }
        list.iter()
            .position(|v| *v == requested)
            .map(|index| Self { index })
    }

    /// An OpenStack version (`latest` or a listed date); `None`: unknown.
    /// Future dates are hidden from the listing but still served, as Nova.
    pub fn openstack(requested: &str) -> Option<Self> {
        Self::resolve(&OPENSTACK_VERSIONS, requested)
    }

    pub fn ec2(requested: &str) -> Option<Self> {
        Self::resolve(&EC2_VERSIONS, requested)
    }

    /// Whether this OpenStack version is `required` or newer.
    pub fn os_at_least(self, required: &str) -> bool {
        Self::openstack(required).is_some_and(|r| self.index >= r.index)
    }

    /// Whether this EC2 version is `required` or newer.
    pub fn ec2_at_least(self, required: &str) -> bool {
        Self::ec2(required).is_some_and(|r| self.index >= r.index)
    }
}

/// `GET /openstack`: the versions dated today or earlier, then `latest`.
pub fn openstack_listing(today: &str) -> Vec<String> {
    OPENSTACK_VERSIONS
        .iter()
        .filter(|v| **v <= today)
        .map(|v| (*v).to_owned())
        .chain(std::iter::once("latest".to_owned()))
        .collect()
}

/// `GET /` and `GET /ec2`: every EC2 version, then `latest`.
pub fn ec2_listing() -> Vec<String> {
    EC2_VERSIONS
        .iter()
        .map(|v| (*v).to_owned())
        .chain(std::iter::once("latest".to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_versions_are_hidden_from_the_listing_only() {
        let l = openstack_listing("2020-01-01");
        assert_eq!(l.last().map(String::as_str), Some("latest"));
        assert!(l.contains(&ROCKY.to_owned()));
        assert!(!l.contains(&VICTORIA.to_owned()));
        assert!(Version::openstack(VICTORIA).is_some());
        assert!(Version::openstack("2019-01-01").is_none());
    }

    #[test]
    fn latest_is_the_newest() {
        let latest = Version::openstack("latest").map(|v| v.os_at_least(EPOXY));
        assert_eq!(latest, Some(true));
        let folsom = Version::openstack(FOLSOM).map(|v| v.os_at_least(GRIZZLY));
        assert_eq!(folsom, Some(false));
        assert_eq!(Version::ec2("latest"), Version::ec2("2009-04-04"));
    }
}
