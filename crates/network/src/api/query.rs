//! Neutron's list conventions, applied to JSON views: any attribute as a
//! filter (repeated parameters are OR-ed), the tag filters of
//! `standard-attr-tag`, `fields=`, `sort_key`/`sort_dir`,
//! and `limit`/`marker`/`page_reverse` with `<collection>_links`.

use std::cmp::Ordering;

use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

use crate::domain::tags::TagFilter;
use crate::error::{NetworkError, Result};

const RESERVED: [&str; 6] = [
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
];

#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// `(attribute, accepted values)` in first-seen order.
    pub filters: Vec<(String, Vec<String>)>,
    pub fields: Vec<String>,
    /// `(key, ascending)`.
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub page_reverse: bool,
    /// The raw pairs, for building pagination links.
    pairs: Vec<(String, String)>,
}

impl ListQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        let mut q = ListQuery::default();
        let mut keys = Vec::new();
        let mut dirs = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
            q.pairs.push((k.clone(), v.clone()));
            match k.as_str() {
                "fields" => q.fields.extend(
                    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned),
                ),
                "sort_key" => keys.push(v),
                "sort_dir" => match v.as_str() {
                    "asc" => dirs.push(true),
                    "desc" => dirs.push(false),
                    _ => {
                        return Err(NetworkError::BadRequest(format!(
                            "Invalid input for sort_dir: '{v}' is not a valid sort direction (asc, desc)."
                        )))
                    }
                },
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        NetworkError::BadRequest(format!("Invalid input for limit: '{v}' is not an integer."))
                    })?;
                    if n < 0 {
                        return Err(NetworkError::BadRequest(format!(
                            "Limit must be an integer 0 or greater and not '{n}'"
                        )));
                    }
                    // Neutron reads 0 as "no limit".
                    q.limit = usize::try_from(n).ok().filter(|&n| n > 0);
                }
                "marker" => q.marker = Some(v),
                "page_reverse" => q.page_reverse = matches!(v.as_str(), "True" | "true" | "1"),
                _ => match q.filters.iter_mut().find(|(fk, _)| *fk == k) {
                    Some((_, vals)) => vals.push(v),
                    None => q.filters.push((k, vec![v])),
                },
            }
        }
        if !dirs.is_empty() && dirs.len() != keys.len() {
            return Err(NetworkError::BadRequest(
                "The number of sort_keys and sort_dirs must be same".to_owned(),
            ));
        }
        q.sort = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k, dirs.get(i).copied().unwrap_or(true)))
            .collect();
        Ok(q)
    }

    /// The single value of a filter, for narrowing in SQL.
    pub fn single(&self, key: &str) -> Option<&str> {
        self.filters
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| (v.len() == 1).then(|| v[0].as_str()))
    }
}

/// Whether a view passes every filter.
fn matches(item: &Value, key: &str, wanted: &[String]) -> bool {
    if RESERVED.contains(&key) {
        return true;
    }
    if let Some(f) = TagFilter::from_key(key) {
        let have: Vec<&str> = item
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        return f.matches(&have, wanted);
    }
    let Some(v) = item.get(key) else {
        // Attributes we do not have filter nothing (older Neutron behaviour).
        return true;
    };
    if key == "fixed_ips" {
        // `fixed_ips=ip_address=10.0.0.3` / `fixed_ips=subnet_id=...`
        let ips = v.as_array().map(Vec::as_slice).unwrap_or(&[]);
        return wanted.iter().any(|w| {
            let Some((field, val)) = w.split_once('=') else {
                return false;
            };
            ips.iter()
                .any(|ip| ip.get(field).and_then(Value::as_str) == Some(val))
        });
    }
    wanted.iter().any(|w| value_matches(v, w))
}

fn value_matches(v: &Value, w: &str) -> bool {
    match v {
        Value::String(s) => s == w,
        Value::Bool(b) => match w.to_ascii_lowercase().as_str() {
            "true" | "1" => *b,
            "false" | "0" => !*b,
            _ => false,
        },
        Value::Number(n) => n.to_string() == w,
        Value::Null => w.is_empty() || w == "None",
        Value::Array(a) => a.iter().any(|x| value_matches(x, w)),
        Value::Object(_) => false,
    }
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Filters, sorts, pages and projects `items`, and wraps them as
/// `{"<collection>": [...], "<collection>_links": [...]}`.
pub fn respond(
    items: Vec<Value>,
    q: &ListQuery,
    collection: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Value> {
    let mut items: Vec<Value> = items
        .into_iter()
        .filter(|it| q.filters.iter().all(|(k, w)| matches(it, k, w)))
        .collect();
    if let Some(first) = items.first() {
        for (k, _) in &q.sort {
            if first.get(k).is_none() {
                return Err(NetworkError::BadRequest(format!(
                    "{k} is invalid attribute for sort_keys"
                )));
            }
        }
    }
    if !q.sort.is_empty() || q.limit.is_some() {
        items.sort_by(|a, b| {
            for (k, asc) in &q.sort {
                let o = cmp_values(a.get(k), b.get(k));
                if o != Ordering::Equal {
                    return if *asc { o } else { o.reverse() };
                }
            }
            // Paging needs a total order: the id ends every sort, as in Neutron.
            cmp_values(a.get("id"), b.get("id"))
        });
    }
    let mut links = Vec::new();
    if q.limit.is_some() || q.marker.is_some() {
        let pos = match &q.marker {
            None => None,
            Some(m) => Some(
                items
                    .iter()
                    .position(|it| it.get("id").and_then(Value::as_str) == Some(m.as_str()))
                    .ok_or_else(|| {
                        NetworkError::NotFound(format!("Marker {m} could not be found."))
                    })?,
            ),
        };
        let (page, more_after, more_before) = if q.page_reverse {
            let end = pos.unwrap_or(items.len());
            let start = q.limit.map_or(0, |l| end.saturating_sub(l));
            (items[start..end].to_vec(), pos.is_some(), start > 0)
        } else {
            let start = pos.map_or(0, |p| p + 1);
            let end = q
                .limit
                .map_or(items.len(), |l| (start + l).min(items.len()));
            (items[start..end].to_vec(), end < items.len(), pos.is_some())
        };
        let first_id = page
            .first()
            .and_then(|v| v.get("id"))
            .and_then(Value::as_str);
        let last_id = page
            .last()
            .and_then(|v| v.get("id"))
            .and_then(Value::as_str);
        if q.limit.is_some() && more_after {
            if let Some(id) = last_id {
                links.push(json!({"rel": "next", "href": link(q, path, headers, id, false)}));
            }
        }
        if more_before {
            if let Some(id) = first_id {
                links.push(json!({"rel": "previous", "href": link(q, path, headers, id, true)}));
            }
        }
        items = page;
    }
    if !q.fields.is_empty() {
        for it in items.iter_mut() {
            if let Value::Object(m) = it {
                m.retain(|k, _| q.fields.iter().any(|f| f == k));
            }
        }
    }
    let mut out = Map::new();
    out.insert(collection.to_owned(), Value::Array(items));
    if q.limit.is_some() || q.marker.is_some() {
        out.insert(format!("{collection}_links"), Value::Array(links));
    }
    Ok(Value::Object(out))
}

fn link(q: &ListQuery, path: &str, headers: &HeaderMap, marker: &str, reverse: bool) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &q.pairs {
        if k != "marker" && k != "page_reverse" {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair("marker", marker);
    if reverse {
        ser.append_pair("page_reverse", "True");
    }
    format!("http://{host}{path}?{}", ser.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Value> {
        (0..5)
            .map(|i| {
                json!({"id": format!("id{i}"), "name": format!("n{}", i % 2), "up": i % 2 == 0,
                "fixed_ips": [{"ip_address": format!("10.0.0.{i}"), "subnet_id": "s"}]})
            })
            .collect()
    }

    fn run(query: &str) -> Value {
        let q = ListQuery::parse(Some(query)).expect("query");
        respond(items(), &q, "things", "/v2.0/things", &HeaderMap::new()).expect("respond")
    }

    fn ids(v: &Value) -> Vec<String> {
        v["things"]
            .as_array()
            .expect("list")
            .iter()
            .map(|x| x["id"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn repeated_filters_are_ored_and_different_ones_anded() {
        assert_eq!(ids(&run("id=id1&id=id3")), ["id1", "id3"]);
        assert_eq!(ids(&run("id=id1&id=id2&name=n0")), ["id2"]);
        assert_eq!(ids(&run("up=True")), ["id0", "id2", "id4"]);
        assert_eq!(ids(&run("fixed_ips=ip_address%3D10.0.0.3")), ["id3"]);
    }

    #[test]
    fn tag_filters() {
        let tagged = |i: usize, tags: &[&str]| json!({"id": format!("id{i}"), "tags": tags});
        let items = vec![
            tagged(0, &[]),
            tagged(1, &["a"]),
            tagged(2, &["a", "b"]),
            tagged(3, &["b", "c"]),
        ];
        let run = |query: &str| {
            let q = ListQuery::parse(Some(query)).expect("query");
            ids(&respond(items.clone(), &q, "things", "/", &HeaderMap::new()).expect("respond"))
        };
        assert_eq!(run("tags=a,b"), ["id2"]);
        assert_eq!(run("tags=a&tags=b"), ["id2"]);
        assert_eq!(run("tags-any=a,c"), ["id1", "id2", "id3"]);
        assert_eq!(run("not-tags=a,b"), ["id0", "id1", "id3"]);
        assert_eq!(run("not-tags-any=a"), ["id0", "id3"]);
        assert_eq!(run("tags=b&not-tags-any=c"), ["id2"]);
    }

    #[test]
    fn sort_fields_and_pages() {
        assert_eq!(
            ids(&run("sort_key=name&sort_dir=desc")),
            ["id1", "id3", "id0", "id2", "id4"]
        );
        let page = run("limit=2");
        assert_eq!(ids(&page), ["id0", "id1"]);
        assert!(page["things_links"][0]["href"]
            .as_str()
            .expect("href")
            .contains("marker=id1"));
        let page = run("limit=2&marker=id3");
        assert_eq!(ids(&page), ["id4"]);
        assert_eq!(page["things_links"][0]["rel"], "previous");
        let only = run("fields=name&id=id0");
        assert_eq!(only["things"][0], json!({"name": "n0"}));
        assert!(ListQuery::parse(Some("sort_key=a&sort_dir=up")).is_err());
        assert!(ListQuery::parse(Some("limit=x")).is_err());
    }
}
