//! Query strings and loosely typed body values, read the way Nova reads them
//! (numbers may arrive as strings; bad values are 400, never a panic).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use serde_json::Value;

use crate::error::{ComputeError, Result};

/// Decoded `key=value` pairs in order (repeated keys kept).
pub fn query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

pub fn first<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && s.is_char_boundary(i + 1)
                && s.is_char_boundary(i + 3) =>
            {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An integer field (JSON number or numeric string) within bounds.
pub fn int(v: Option<&Value>, field: &str, min: i64, max: i64) -> Result<Option<i64>> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n >= min && n <= max => Ok(Some(n)),
        _ => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {}. It must be an integer between {min} and {max}.",
            v.map(|v| v.to_string()).unwrap_or_default()
        ))),
    }
}

/// A required string of 1..=max characters.
pub fn string(v: Option<&Value>, field: &str, max: usize) -> Result<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(s.clone()),
        Some(Value::String(_)) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value must be 1 to {max} characters long."
        ))),
        None | Some(Value::Null) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {field}. '{field}' is a required property"
        ))),
        Some(other) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

pub fn boolean(v: Option<&Value>, field: &str) -> Result<Option<bool>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        // Nova's `parameter_types.boolean` is an enum of these spellings
        // exactly (no `t`/`y`, no mixed case such as `tRUE`).
        Some(Value::String(s)) => match s.as_str() {
            "True" | "TRUE" | "true" | "1" | "ON" | "On" | "on" | "YES" | "Yes" | "yes" => {
                Ok(Some(true))
            }
            "False" | "FALSE" | "false" | "0" | "OFF" | "Off" | "off" | "NO" | "No" | "no" => {
                Ok(Some(false))
            }
            _ => Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute {field}."
            ))),
        },
        Some(_) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {field}."
        ))),
    }
}

/// The object under `key` in a request body (`{"flavor": {...}}`).
pub fn wrapped<'a>(body: &'a Value, key: &str) -> Result<&'a serde_json::Map<String, Value>> {
    body.get(key).and_then(Value::as_object).ok_or_else(|| {
        ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {key}. '{key}' is a required property"
        ))
    })
}

/// A JSON value as Python's `repr` prints what `json.loads` made of it:
/// Nova's validation messages show the offending value that way
/// (`{'name': 'vm'}`, `True`, `None`). Keys come in the order serde_json
/// keeps them (sorted), not necessarily the body's.
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_py_repr(v, &mut out);
    out
}

fn write_py_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => py_str(s, out),
        Value::Array(l) => {
            out.push('[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_str(k, out);
                out.push_str(": ");
                write_py_repr(item, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr` of a `str`: single quotes unless only double quotes
/// avoid escaping, control characters escaped.
fn py_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Every value of a (possibly repeated) query key, in order.
pub fn all<'a>(q: &'a [(String, String)], key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    q.iter()
        .filter(move |(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The last value of a key: what Nova's `req.GET[key]` (a webob
/// `MultiDict`) gives for a repeated key.
pub fn last<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Nova's error for a query parameter its JSON schema rejects.
pub fn query_invalid(name: &str, value: &str, message: &str) -> ComputeError {
    ComputeError::BadRequest(format!(
        "Invalid input for query parameters {name}. Value: {value}. {message}"
    ))
}

/// Python's `repr` of a list of strings (`['a', 'b']`), as jsonschema
/// prints an `enum`.
pub fn py_str_list(items: &[&str]) -> String {
    let v: Vec<Value> = items
        .iter()
        .map(|s| Value::String((*s).to_owned()))
        .collect();
    py_repr(&Value::Array(v))
}

/// A query key whose schema is `multi_params({'type': 'string', 'enum':
/// allowed})`: every value must be one of `allowed`.
pub fn enum_param(q: &[(String, String)], key: &str, allowed: &[&str]) -> Result<()> {
    for v in all(q, key) {
        if !allowed.contains(&v) {
            return Err(query_invalid(
                key,
                v,
                &format!(
                    "{} is not one of {}",
                    py_repr(&Value::String(v.to_owned())),
                    py_str_list(allowed)
                ),
            ));
        }
    }
    Ok(())
}

/// A query key whose schema is `multi_params({'type': 'string', 'format':
/// 'date-time'})`: every value must be an ISO 8601 time as
/// `oslo_utils.timeutils.parse_isotime` reads it. Returns the last value.
pub fn date_time_param(q: &[(String, String)], key: &str) -> Result<Option<DateTime<Utc>>> {
    let mut out = None;
    for v in all(q, key) {
        let t = parse_isotime(v).ok_or_else(|| {
            query_invalid(
                key,
                v,
                &format!(
                    "{} is not a 'date-time'",
                    py_repr(&Value::String(v.to_owned()))
                ),
            )
        })?;
        out = Some(t);
    }
    Ok(out)
}

/// The `additionalProperties: False` check of Nova's query schemas (from
/// 2.75): every key must be one the schema names (or, with
/// `underscore`, start with `_`, which the handler rejects itself).
pub fn no_additional(q: &[(String, String)], known: &[&str], underscore: bool) -> Result<()> {
    let mut extras: Vec<&str> = Vec::new();
    for (k, _) in q {
        let k = k.as_str();
        if known.contains(&k) || (underscore && k.starts_with('_')) || extras.contains(&k) {
            continue;
        }
        extras.push(k);
    }
    if extras.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = extras
        .iter()
        .map(|k| py_repr(&Value::String((*k).to_owned())))
        .collect();
    let verb = if extras.len() == 1 { "was" } else { "were" };
    Err(ComputeError::BadRequest(format!(
        "Additional properties are not allowed ({} {verb} unexpected)",
        names.join(", ")
    )))
}

/// `oslo_utils.strutils.bool_from_string(value, strict=True)`: the error
/// text is oslo's.
pub fn bool_from_string_strict(value: &str) -> std::result::Result<bool, String> {
    match value.trim().to_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(format!(
            "Unrecognized value '{value}', acceptable values are: '0', '1', 'f', 'false', 'n', \
             'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )),
    }
}

/// An ISO 8601 time as the `iso8601` package (behind oslo's
/// `parse_isotime`) reads it: `YYYY[-MM[-DD[(T| )hh[[:]mm[[:]ss[.f]]][Z|±hh[[:]mm]]]]]`
/// (also without dashes from the month on); no zone means UTC.
pub fn parse_isotime(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let mut i = 0;
    // `n` digits exactly, or (`flexible`) 1..=n.
    let digits = |i: &mut usize, n: usize, flexible: bool| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < n && b[*i].is_ascii_digit() {
            *i += 1;
        }
        let got = *i - start;
        if got == 0 || (!flexible && got != n) {
            *i = start;
            return None;
        }
        s[start..*i].parse().ok()
    };
    let year = digits(&mut i, 4, false)?;
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0u32);
    let mut offset_secs: i32 = 0;
    if i < b.len() {
        let dashed = b[i] == b'-';
        if dashed {
            i += 1;
            month = digits(&mut i, 2, true)?;
        } else {
            month = digits(&mut i, 2, false)?;
            if i == b.len() {
                return None; // YYYYMM is not allowed
            }
        }
        if i < b.len() {
            if b[i] == b'-' {
                i += 1;
                day = digits(&mut i, 2, true)?;
            } else {
                day = digits(&mut i, 2, false)?;
            }
            if i < b.len() {
                if b[i] != b'T' && b[i] != b' ' {
                    return None;
                }
                i += 1;
                hour = digits(&mut i, 2, false)?;
                let colon = |i: &mut usize| {
                    if *i < b.len() && b[*i] == b':' {
                        *i += 1;
                    }
                };
                let save = i;
                colon(&mut i);
                match digits(&mut i, 2, false) {
                    Some(m) => {
                        minute = m;
                        let save = i;
                        colon(&mut i);
                        match digits(&mut i, 2, true) {
                            Some(sec) => {
                                second = sec;
                                if i < b.len() && (b[i] == b'.' || b[i] == b',') {
                                    i += 1;
                                    let start = i;
                                    while i < b.len() && b[i].is_ascii_digit() {
                                        i += 1;
                                    }
                                    if i == start {
                                        return None;
                                    }
                                    let frac = &s[start..i];
                                    let frac9: String = frac
                                        .chars()
                                        .chain(std::iter::repeat('0'))
                                        .take(9)
                                        .collect();
                                    nanos = frac9.parse().ok()?;
                                }
                            }
                            None => i = save,
                        }
                    }
                    None => i = save,
                }
                if i < b.len() {
                    match b[i] {
                        b'Z' => i += 1,
                        b'+' | b'-' => {
                            let sign = if b[i] == b'-' { -1 } else { 1 };
                            i += 1;
                            let h = digits(&mut i, 2, false)?;
                            colon(&mut i);
                            let m = digits(&mut i, 2, false).unwrap_or(0);
                            offset_secs = sign * i32::try_from(h * 3600 + m * 60).ok()?;
                        }
                        _ => return None,
                    }
                }
            }
        }
    }
    if i != b.len() {
        return None;
    }
    let offset = FixedOffset::east_opt(offset_secs)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local = NaiveDateTime::new(date, time);
    let t = offset.from_local_datetime(&local).single()?;
    Some(t.with_timezone(&Utc))
}

/// `limit` and `marker` from a query.
pub fn paging(q: &[(String, String)]) -> Result<(Option<usize>, Option<String>)> {
    let limit = match first(q, "limit") {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ComputeError::bad("limit param must be an integer"))?,
        ),
        None => None,
    };
    Ok((limit, first(q, "marker").map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes() {
        let q = query(Some("name=a%20b&is_public=None&x=%zz&y=1+2"));
        assert_eq!(first(&q, "name"), Some("a b"));
        assert_eq!(first(&q, "is_public"), Some("None"));
        assert_eq!(first(&q, "x"), Some("%zz"));
        assert_eq!(first(&q, "y"), Some("1 2"));
    }

    #[test]
    fn values_print_as_python_does() {
        let v = serde_json::json!({"name": "vm", "n": 1, "ok": true, "x": null,
            "l": ["it's", "a\"b", "c\\d\n"], "f": 1.5});
        assert_eq!(
            py_repr(&v),
            r#"{'f': 1.5, 'l': ["it's", 'a"b', 'c\\d\n'], 'n': 1, 'name': 'vm', 'ok': True, 'x': None}"#
        );
    }

    #[test]
    fn iso_times_as_the_iso8601_package_reads_them() {
        let ok = [
            ("2024-03-05T10:20:30Z", "2024-03-05T10:20:30+00:00"),
            (
                "2024-03-05T10:20:30.5+01:00",
                "2024-03-05T09:20:30.500+00:00",
            ),
            ("2024-03-05 10:20", "2024-03-05T10:20:00+00:00"),
            ("2024-03-05", "2024-03-05T00:00:00+00:00"),
            ("2024-3-5", "2024-03-05T00:00:00+00:00"),
            ("20240305T102030", "2024-03-05T10:20:30+00:00"),
            ("2024", "2024-01-01T00:00:00+00:00"),
            ("2024-03-05T10-0230", "2024-03-05T12:30:00+00:00"),
        ];
        for (s, want) in ok {
            let t = parse_isotime(s).unwrap_or_else(|| panic!("{s} must parse"));
            assert_eq!(t.to_rfc3339(), want, "{s}");
        }
        for s in [
            "bogus",
            "",
            "2024-13-01",
            "2024-02-30",
            "202403",
            "2024-03-05T",
            "2024-03-05T25:00",
            "2024-03-05x",
            "24-03-05",
            "2024-03-05T10:20:30.",
        ] {
            assert!(parse_isotime(s).is_none(), "{s} must not parse");
        }
    }

    #[test]
    fn strict_booleans_as_oslo() {
        assert_eq!(bool_from_string_strict(" True "), Ok(true));
        assert_eq!(bool_from_string_strict("n"), Ok(false));
        let e = bool_from_string_strict("maybe").err().unwrap_or_default();
        assert!(
            e.starts_with("Unrecognized value 'maybe', acceptable values are: '0', '1'"),
            "{e}"
        );
    }

    #[test]
    fn schema_messages() {
        let q = query(Some("sort_key=a&sort_key=zz&x=1&_y=2&x=3&z=4"));
        let e = enum_param(&q, "sort_key", &["a", "b"])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("Invalid input for query parameters sort_key. Value: zz. 'zz' is not one of ['a', 'b']")
        );
        let e = no_additional(&q, &["sort_key"], true)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("Additional properties are not allowed ('x', 'z' were unexpected)")
        );
        assert!(no_additional(&q, &["sort_key", "x", "z"], true).is_ok());
    }

    #[test]
    fn ints_accept_numeric_strings_only() {
        assert_eq!(
            int(Some(&serde_json::json!("512")), "ram", 1, 10000).ok(),
            Some(Some(512))
        );
        assert!(int(Some(&serde_json::json!("x")), "ram", 1, 10).is_err());
        assert!(int(Some(&serde_json::json!(0)), "ram", 1, 10).is_err());
        assert_eq!(int(None, "ram", 1, 10).ok(), Some(None));
    }
}
