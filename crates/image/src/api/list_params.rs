//! `GET /v2/images` query parameters: Glance's filters, sorting
//! (`sort_key`/`sort_dir` or `sort=k:dir,...`) and paging (`limit`, `marker`),
//! parsed into a [`ListFilter`] plus an ordering that the handler applies.

use std::cmp::Ordering;

use stratus_common::RequestContext;

use crate::db::{ListFilter, VisibilityFilter};
use crate::domain::access::project;
use crate::domain::{Image, ImageStatus, MemberStatus};
use crate::error::ImageError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Status,
    ContainerFormat,
    DiskFormat,
    Size,
    VirtualSize,
    Id,
    CreatedAt,
    UpdatedAt,
    MinDisk,
    MinRam,
    Owner,
    Visibility,
}

const SORT_KEYS: &[(&str, SortKey)] = &[
    ("name", SortKey::Name),
    ("status", SortKey::Status),
    ("container_format", SortKey::ContainerFormat),
    ("disk_format", SortKey::DiskFormat),
    ("size", SortKey::Size),
    ("virtual_size", SortKey::VirtualSize),
    ("id", SortKey::Id),
    ("created_at", SortKey::CreatedAt),
    ("updated_at", SortKey::UpdatedAt),
    ("min_disk", SortKey::MinDisk),
    ("min_ram", SortKey::MinRam),
    ("owner", SortKey::Owner),
    ("visibility", SortKey::Visibility),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortDir {
    Asc,
    Desc,
}

/// The parsed query.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub filter: ListFilter,
    pub sort: Vec<(SortKey, SortDir)>,
    pub limit: usize,
    pub marker: Option<String>,
}

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadRequest(msg.into())
}

/// `in:a,"b,c"` → `[a, b,c]`; a plain value → itself.
fn in_values(v: &str) -> Vec<String> {
    let Some(list) = v.strip_prefix("in:") else {
        return vec![v.strip_prefix("eq:").unwrap_or(v).to_owned()];
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in list.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ImageError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(bad(format!(
            "Invalid value for {key}: {v}. It must be 'true' or 'false'."
        ))),
    }
}

fn parse_int(key: &str, v: &str) -> Result<i64, ImageError> {
    v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        bad(format!(
            "Invalid value for {key}: {v}. It must be a non-negative integer."
        ))
    })
}

fn parse_dir(v: &str) -> Result<SortDir, ImageError> {
    match v {
        "asc" => Ok(SortDir::Asc),
        "desc" => Ok(SortDir::Desc),
        _ => Err(bad(format!("Invalid sort direction: {v}"))),
    }
}

fn parse_key(v: &str) -> Result<SortKey, ImageError> {
    SORT_KEYS
        .iter()
        .find(|(n, _)| *n == v)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            let names: Vec<&str> = SORT_KEYS.iter().map(|(n, _)| *n).collect();
            bad(format!(
                "Invalid sort key: {v}. It must be one of the following: {}.",
                names.join(", ")
            ))
        })
}

/// `gt:2020-01-01T00:00:00Z` on created_at/updated_at (Glance's time operators).
fn parse_time(
    column: &'static str,
    v: &str,
) -> Result<(&'static str, &'static str, String), ImageError> {
    let (op, t) = v
        .split_once(':')
        .ok_or_else(|| bad(format!("Invalid time filter {v}")))?;
    let op = match op {
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        "eq" => "=",
        "neq" => "<>",
        _ => return Err(bad(format!("Invalid operator {op} for {column}"))),
    };
    let t = chrono::DateTime::parse_from_rfc3339(t)
        .map_err(|_| bad(format!("Invalid time format for {column}: {t}")))?
        .with_timezone(&chrono::Utc);
    Ok((column, op, stratus_common::time::to_db(t)))
}

/// Parses `GET /v2/images` parameters (repeated keys kept in order).
pub fn parse_list_query(
    ctx: &RequestContext,
    params: &[(String, String)],
    limit_default: usize,
    limit_max: usize,
) -> Result<ListQuery, ImageError> {
    let mut f = ListFilter {
        project: project(ctx).map(str::to_owned),
        admin: ctx.is_admin(),
        member_status: Some(MemberStatus::Accepted),
        os_hidden: Some(false),
        ..ListFilter::default()
    };
    let mut limit = limit_default;
    let mut marker = None;
    let mut sort_keys = Vec::new();
    let mut sort_dirs = Vec::new();
    let mut sort = None;
    for (k, v) in params {
        match k.as_str() {
            "limit" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad("limit param must be an integer"))?;
                if n < 0 {
                    return Err(bad("limit param must be positive"));
                }
                limit = usize::try_from(n).unwrap_or(limit_max).min(limit_max);
            }
            "marker" => marker = Some(v.clone()),
            "sort_key" => {
                for part in v.split(',') {
                    sort_keys.push(parse_key(part.trim())?);
                }
            }
            "sort_dir" => {
                for part in v.split(',') {
                    sort_dirs.push(parse_dir(part.trim())?);
                }
            }
            "sort" => {
                let mut s = Vec::new();
                for part in v.split(',') {
                    let (key, dir) = match part.trim().split_once(':') {
                        Some((k, d)) => (k, parse_dir(d)?),
                        None => (part.trim(), SortDir::Desc),
                    };
                    s.push((parse_key(key)?, dir));
                }
                sort = Some(s);
            }
            "member_status" => {
                f.member_status = match v.as_str() {
                    "all" => None,
                    other => Some(
                        other
                            .parse()
                            .map_err(|_| bad(format!("Invalid status: {other}")))?,
                    ),
                }
            }
            "visibility" => {
                f.visibility = Some(match v.as_str() {
                    "public" => VisibilityFilter::Public,
                    "private" => VisibilityFilter::Private,
                    "shared" => VisibilityFilter::Shared,
                    "community" => VisibilityFilter::Community,
                    "all" => VisibilityFilter::All,
                    other => return Err(bad(format!("Invalid visibility value: {other}"))),
                })
            }
            "name" => f.names.extend(in_values(v)),
            "id" => f.ids.extend(in_values(v)),
            "owner" => f.owners.extend(in_values(v)),
            "disk_format" => f.disk_formats.extend(in_values(v)),
            "container_format" => f.container_formats.extend(in_values(v)),
            "status" => {
                for s in in_values(v) {
                    s.parse::<ImageStatus>().map_err(bad)?;
                    f.statuses.push(s);
                }
            }
            "tag" => f.tags.push(v.clone()),
            "os_hidden" => f.os_hidden = Some(parse_bool(k, v)?),
            "protected" => f.protected = Some(parse_bool(k, v)?),
            "size_min" => f.size_min = Some(parse_int(k, v)?),
            "size_max" => f.size_max = Some(parse_int(k, v)?),
            "created_at" => f.times.push(parse_time("created_at", v)?),
            "updated_at" => f.times.push(parse_time("updated_at", v)?),
            _ => f.properties.push((k.clone(), v.clone())),
        }
    }
    let sort = match sort {
        Some(s) if !sort_keys.is_empty() || !sort_dirs.is_empty() => {
            return Err(bad(format!(
                "The 'sort' parameter cannot be combined with 'sort_key' or 'sort_dir' ({} given).",
                s.len()
            )))
        }
        Some(s) => s,
        None => {
            if sort_keys.is_empty() {
                sort_keys.push(SortKey::CreatedAt);
            }
            if sort_dirs.len() > 1 && sort_dirs.len() != sort_keys.len() {
                return Err(bad(
                    "Number of sort dirs does not match the number of sort keys",
                ));
            }
            let default_dir = sort_dirs.first().copied().unwrap_or(SortDir::Desc);
            sort_keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    (
                        *k,
                        if sort_dirs.len() > 1 {
                            sort_dirs[i]
                        } else {
                            default_dir
                        },
                    )
                })
                .collect()
        }
    };
    Ok(ListQuery {
        filter: f,
        sort,
        limit,
        marker,
    })
}

fn cmp_key(a: &Image, b: &Image, key: SortKey) -> Ordering {
    match key {
        SortKey::Name => a.name.cmp(&b.name),
        SortKey::Status => a.status.as_str().cmp(b.status.as_str()),
        SortKey::ContainerFormat => a.container_format.cmp(&b.container_format),
        SortKey::DiskFormat => a.disk_format.cmp(&b.disk_format),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::VirtualSize => a.virtual_size.cmp(&b.virtual_size),
        SortKey::Id => a.id.to_string().cmp(&b.id.to_string()),
        SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
        SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        SortKey::MinDisk => a.min_disk.cmp(&b.min_disk),
        SortKey::MinRam => a.min_ram.cmp(&b.min_ram),
        SortKey::Owner => a.owner.cmp(&b.owner),
        SortKey::Visibility => a.visibility.as_str().cmp(b.visibility.as_str()),
    }
}

/// The total order of a listing: the requested keys, then created_at and id
/// (as Glance appends them) so that paging never skips or repeats an image.
pub fn compare(a: &Image, b: &Image, sort: &[(SortKey, SortDir)]) -> Ordering {
    let last_dir = sort.last().map(|(_, d)| *d).unwrap_or(SortDir::Desc);
    let tail = [(SortKey::CreatedAt, last_dir), (SortKey::Id, last_dir)];
    for (key, dir) in sort.iter().chain(tail.iter()) {
        let o = cmp_key(a, b, *key);
        let o = if *dir == SortDir::Desc {
            o.reverse()
        } else {
            o
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_common::ids::ProjectId;

    fn ctx() -> RequestContext {
        RequestContext {
            project_id: Some(ProjectId::from("p")),
            roles: vec!["member".into()],
            ..RequestContext::internal()
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, ImageError> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        parse_list_query(&ctx(), &v, 25, 1000)
    }

    #[test]
    fn parses_glance_parameters() {
        let l = q(&[
            ("id", "in:a,b"),
            ("name", "in:\"x,y\",z"),
            ("tag", "t1"),
            ("tag", "t2"),
            ("hw_disk_bus", "virtio"),
            ("limit", "5000"),
            ("sort", "name:asc,size"),
        ])
        .expect("valid");
        assert_eq!(l.filter.ids, vec!["a", "b"]);
        assert_eq!(l.filter.names, vec!["x,y", "z"]);
        assert_eq!(l.filter.tags, vec!["t1", "t2"]);
        assert_eq!(
            l.filter.properties,
            vec![("hw_disk_bus".to_string(), "virtio".to_string())]
        );
        assert_eq!(l.limit, 1000);
        assert_eq!(
            l.sort,
            vec![
                (SortKey::Name, SortDir::Asc),
                (SortKey::Size, SortDir::Desc)
            ]
        );
        let d = q(&[]).expect("defaults");
        assert_eq!(d.sort, vec![(SortKey::CreatedAt, SortDir::Desc)]);
        assert_eq!(d.limit, 25);
        assert_eq!(d.filter.member_status, Some(MemberStatus::Accepted));
    }

    #[test]
    fn rejects_bad_parameters() {
        for bad in [
            vec![("limit", "x")],
            vec![("limit", "-1")],
            vec![("sort_key", "nope")],
            vec![("sort_dir", "up")],
            vec![("visibility", "world")],
            vec![("member_status", "maybe")],
            vec![("status", "flying")],
            vec![("protected", "perhaps")],
            vec![("size_min", "-3")],
            vec![("created_at", "gt:yesterday")],
            vec![("sort", "name:asc"), ("sort_key", "name")],
        ] {
            assert!(q(&bad).is_err(), "{bad:?}");
        }
    }
}
