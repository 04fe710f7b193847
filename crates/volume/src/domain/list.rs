//! List requests: `limit`, `marker`, `sort` (`key:dir,...`) or
//! `sort_key`/`sort_dir`, and the filters Cinder accepts on volumes and
//! snapshots. Lists are filtered by project in SQL and by the rest here: a
//! project holds few enough volumes for that, and it keeps one set of rules
//! for both engines.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::error::{CinderQuery, VolumeError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

/// One sortable field value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Null,
    Int(i64),
    Text(String),
}

/// Something a list returns: its id and its sort keys.
pub trait Listed {
    fn id(&self) -> String;
    /// The value of sort key `key`, `None` when it is not a sort key.
    fn key(&self, key: &str) -> Option<Key>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub sort: Vec<(String, Dir)>,
    pub offset: usize,
}

fn dir(s: &str) -> Result<Dir, VolumeError> {
    match s {
        "asc" => Ok(Dir::Asc),
        "desc" => Ok(Dir::Desc),
        other => Err(VolumeError::bad(format!(
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc': {other}"
        ))),
    }
}

/// The paging part of a list query; `valid_keys` are the sortable fields.
pub fn page(q: &CinderQuery, valid_keys: &[&str], limit_max: usize) -> Result<Page, VolumeError> {
    let limit = match q.get("limit") {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Some((n as usize).min(limit_max)),
            _ => {
                return Err(VolumeError::bad(format!(
                    "Invalid input received: limit must be a non-negative integer: {s}"
                )))
            }
        },
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(s) => s.parse::<usize>().map_err(|_| {
            VolumeError::bad(format!(
                "Invalid input received: offset must be a non-negative integer: {s}"
            ))
        })?,
    };
    let mut sort = Vec::new();
    if let Some(s) = q.get("sort") {
        if q.get("sort_key").is_some() || q.get("sort_dir").is_some() {
            return Err(VolumeError::bad(
                "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.",
            ));
        }
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, d) = match part.split_once(':') {
                Some((k, d)) => (k.trim(), dir(d.trim())?),
                None => (part, Dir::Desc),
            };
            sort.push((k.to_owned(), d));
        }
    } else if let Some(k) = q.get("sort_key") {
        sort.push((k.to_owned(), dir(q.get("sort_dir").unwrap_or("desc"))?));
    }
    for (k, _) in &sort {
        if !valid_keys.contains(&k.as_str()) {
            return Err(VolumeError::bad(format!(
                "Invalid input received: Invalid sort key {k}"
            )));
        }
    }
    if sort.is_empty() {
        sort.push(("created_at".to_owned(), Dir::Desc));
    }
    // The id last, so that equal keys still give one order for markers.
    if !sort.iter().any(|(k, _)| k == "id") {
        let d = sort.last().map(|(_, d)| *d).unwrap_or(Dir::Desc);
        sort.push(("id".to_owned(), d));
    }
    Ok(Page {
        limit,
        marker: q.get("marker").map(str::to_owned),
        sort,
        offset,
    })
}

fn compare<T: Listed>(a: &T, b: &T, sort: &[(String, Dir)]) -> Ordering {
    for (k, d) in sort {
        let o = a.key(k).cmp(&b.key(k));
        let o = if *d == Dir::Desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Sorts, skips to after the marker, cuts to the limit; whether more rows
/// follow (for the `next` link).
pub fn apply<T: Listed>(
    mut rows: Vec<T>,
    page: &Page,
    what: &str,
) -> Result<(Vec<T>, bool), VolumeError> {
    rows.sort_by(|a, b| compare(a, b, &page.sort));
    let start = match &page.marker {
        None => page.offset,
        Some(m) => match rows.iter().position(|r| &r.id() == m) {
            Some(i) => i + 1,
            None => {
                return Err(VolumeError::NotFound(format!(
                    "Marker {m} could not be found for {what}."
                )))
            }
        },
    };
    let mut rows: Vec<T> = rows.into_iter().skip(start).collect();
    let more = match page.limit {
        Some(l) if rows.len() > l => {
            rows.truncate(l);
            true
        }
        _ => false,
    };
    Ok((rows, more))
}

/// `metadata={'k': 'v'}` as cinderclient sends it (a Python dict's repr) or
/// as JSON.
pub fn parse_metadata_filter(s: &str) -> Result<BTreeMap<String, String>, VolumeError> {
    let bad = || {
        VolumeError::bad(format!(
            "Invalid input received: Invalid metadata filter: {s}"
        ))
    };
    let v: serde_json::Value = match serde_json::from_str(s) {
        Ok(v) => v,
        Err(_) => serde_json::from_str(&s.replace('\'', "\"")).map_err(|_| bad())?,
    };
    let serde_json::Value::Object(o) = v else {
        return Err(bad());
    };
    o.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            other => Ok((k, other.to_string())),
        })
        .collect()
}

/// Cinder's boolean query values.
pub fn parse_bool(s: &str) -> Result<bool, VolumeError> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" | "t" => Ok(true),
        "false" | "0" | "no" | "n" | "off" | "f" => Ok(false),
        _ => Err(VolumeError::bad(format!(
            "Invalid input received: Unrecognized value '{s}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_dict_metadata_filters_parse() {
        let m = parse_metadata_filter("{'k': 'v', 'a': 'b'}").expect("parse");
        assert_eq!(m.get("k").map(String::as_str), Some("v"));
        assert!(parse_metadata_filter("nonsense").is_err());
    }

    #[test]
    fn sort_forms() {
        let q = CinderQuery(vec![("sort".into(), "name:asc,size".into())]);
        let p = page(&q, &["name", "size"], 1000).expect("page");
        assert_eq!(p.sort[0], ("name".to_owned(), Dir::Asc));
        assert_eq!(p.sort[1], ("size".to_owned(), Dir::Desc));
        let q = CinderQuery(vec![("sort".into(), "bogus".into())]);
        assert!(page(&q, &["name"], 1000).is_err());
        let q = CinderQuery(vec![("limit".into(), "-1".into())]);
        assert!(page(&q, &["name"], 1000).is_err());
    }
}
