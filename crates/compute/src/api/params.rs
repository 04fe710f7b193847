//! Query strings and loosely typed body values, read the way Nova reads them
//! (numbers may arrive as strings; bad values are 400, never a panic).

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
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
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
