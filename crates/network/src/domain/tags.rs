//! Neutron's `standard-attr-tag` extension apart from HTTP: which resources
//! carry tags, the checks on tags (neutron/extensions/tagging.py's
//! `validate_tag`, `validate_tags`, `validate_tags_limit`) and the list
//! filters `tags`, `tags-any`, `not-tags`, `not-tags-any`.

use serde_json::Value;

use crate::error::{NetworkError, Result};

/// Neutron's `MAX_TAG_LEN`.
pub const MAX_TAG_LEN: usize = 255;
/// Neutron's `MAX_TAGS_COUNT`, per resource.
pub const MAX_TAGS: usize = 50;

/// A resource that carries tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tagged {
    Network,
    Subnet,
    Port,
    SecurityGroup,
}

impl Tagged {
    /// The table holding this resource's tags (see the migration).
    pub fn table(self) -> &'static str {
        match self {
            Tagged::Network => "network_tags",
            Tagged::Subnet => "subnet_tags",
            Tagged::Port => "port_tags",
            Tagged::SecurityGroup => "security_group_tags",
        }
    }

    /// The collection name, as Neutron's messages say it.
    pub fn collection(self) -> &'static str {
        match self {
            Tagged::Network => "networks",
            Tagged::Subnet => "subnets",
            Tagged::Port => "ports",
            Tagged::SecurityGroup => "security_groups",
        }
    }

    /// The member name, for policy names (`update_network:tags`).
    pub fn member(self) -> &'static str {
        match self {
            Tagged::Network => "network",
            Tagged::Subnet => "subnet",
            Tagged::Port => "port",
            Tagged::SecurityGroup => "security_group",
        }
    }
}

/// One tag (from a URL or a list): a string of at most 255 characters.
pub fn check_tag(tag: &str) -> Result<()> {
    if tag.chars().count() > MAX_TAG_LEN {
        return Err(NetworkError::InvalidInput(format!(
            "'{tag}' exceeds maximum length of {MAX_TAG_LEN}"
        )));
    }
    Ok(())
}

/// A `{"tags": [...]}` body: a list of unique strings, each checked.
pub fn parse_tags_body(body: &Value) -> Result<Vec<String>> {
    let list = body
        .get("tags")
        .ok_or_else(|| NetworkError::InvalidInput("Invalid tags body".to_owned()))?;
    parse_tag_list(list)
}

/// A list of unique tags (`tags` of a body or of a port create).
pub fn parse_tag_list(list: &Value) -> Result<Vec<String>> {
    let items = list
        .as_array()
        .ok_or_else(|| NetworkError::InvalidInput(format!("'{list}' is not a list")))?;
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    let mut dups: Vec<&str> = Vec::new();
    for item in items {
        let tag = item
            .as_str()
            .ok_or_else(|| NetworkError::InvalidInput(format!("'{item}' is not a valid string")))?;
        check_tag(tag)?;
        if tags.iter().any(|t| t == tag) {
            if !dups.contains(&tag) {
                dups.push(tag);
            }
        } else {
            tags.push(tag.to_owned());
        }
    }
    if !dups.is_empty() {
        return Err(NetworkError::InvalidInput(format!(
            "Duplicate items in the list: '{}'",
            dups.join(", ")
        )));
    }
    Ok(tags)
}

/// At most [`MAX_TAGS`] distinct tags on one resource.
pub fn check_limit(kind: Tagged, tags: &[String]) -> Result<()> {
    let mut distinct: Vec<&str> = tags.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > MAX_TAGS {
        return Err(NetworkError::BadRequest(format!(
            "Bad {} request: The number of tags exceed the per-resource limit of {MAX_TAGS}.",
            kind.collection()
        )));
    }
    Ok(())
}

/// The four tag filters of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagFilter {
    /// `tags`: has all of them.
    All,
    /// `tags-any`: has at least one.
    Any,
    /// `not-tags`: does not have all of them.
    NotAll,
    /// `not-tags-any`: has none of them.
    NotAny,
}

impl TagFilter {
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "tags" => Some(Self::All),
            "tags-any" => Some(Self::Any),
            "not-tags" => Some(Self::NotAll),
            "not-tags-any" => Some(Self::NotAny),
            _ => None,
        }
    }

    /// Whether a resource with `have` passes; `wanted` are the parameter's
    /// values, each comma-separated (repeated parameters add up, as in
    /// Neutron's `_get_tag_list`).
    pub fn matches(self, have: &[&str], wanted: &[String]) -> bool {
        let asked: Vec<&str> = wanted
            .iter()
            .flat_map(|w| w.split(','))
            .filter(|t| !t.is_empty())
            .collect();
        if asked.is_empty() {
            return true;
        }
        let all = asked.iter().all(|t| have.contains(t));
        let any = asked.iter().any(|t| have.contains(t));
        match self {
            Self::All => all,
            Self::Any => any,
            Self::NotAll => !all,
            Self::NotAny => !any,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tag_bodies_as_neutron_checks_them() {
        assert_eq!(
            parse_tags_body(&json!({"tags": ["a", "b"]})).ok(),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(parse_tags_body(&json!({"tags": []})).ok(), Some(vec![]));
        let long = "x".repeat(256);
        for (bad, msg) in [
            (json!({}), "Invalid tags body"),
            (json!({"tags": "a"}), "is not a list"),
            (json!({"tags": [1]}), "'1' is not a valid string"),
            (
                json!({"tags": ["a", "b", "a"]}),
                "Duplicate items in the list: 'a'",
            ),
            (json!({"tags": [long]}), "exceeds maximum length of 255"),
        ] {
            let e = parse_tags_body(&bad).expect_err("bad body");
            assert_eq!(e.status().as_u16(), 400);
            assert!(e.to_string().contains(msg), "{bad}: {e}");
        }
        assert!(check_tag(&"y".repeat(255)).is_ok());
        assert!(check_tag(&"y".repeat(256)).is_err());
        let fifty: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        assert!(check_limit(Tagged::Network, &fifty).is_ok());
        let mut again = fifty.clone();
        again.push("t0".to_owned());
        assert!(
            check_limit(Tagged::Network, &again).is_ok(),
            "distinct tags count"
        );
        let mut more = fifty;
        more.push("t50".to_owned());
        let e = check_limit(Tagged::Port, &more).expect_err("51 tags");
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.to_string().contains("per-resource limit of 50"), "{e}");
    }

    #[test]
    fn filters_all_any_and_their_negations() {
        let have = ["red", "blue"];
        let w = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(TagFilter::All.matches(&have, &w(&["red,blue"])));
        assert!(TagFilter::All.matches(&have, &w(&["red", "blue"])));
        assert!(!TagFilter::All.matches(&have, &w(&["red,green"])));
        assert!(TagFilter::Any.matches(&have, &w(&["red,green"])));
        assert!(!TagFilter::Any.matches(&have, &w(&["green"])));
        assert!(TagFilter::NotAll.matches(&have, &w(&["red,green"])));
        assert!(!TagFilter::NotAll.matches(&have, &w(&["red,blue"])));
        assert!(TagFilter::NotAny.matches(&have, &w(&["green"])));
        assert!(!TagFilter::NotAny.matches(&have, &w(&["green,blue"])));
        assert!(TagFilter::NotAny.matches(&[], &w(&["green"])));
        assert!(!TagFilter::All.matches(&[], &w(&["green"])));
        assert_eq!(TagFilter::from_key("not-tags-any"), Some(TagFilter::NotAny));
        assert_eq!(TagFilter::from_key("tag"), None);
    }
}
