//! The limits of Keystone's JSON schemas (`resource/schema.py`,
//! `identity/schema.py`, `assignment/schema.py`,
//! `common/validation/parameter_types.py`) with the messages its
//! `SchemaValidator` gives: `Invalid input for field '<path>': <jsonschema
//! message>`, values shown as Python's `repr` shows them.
//!
//! - project and domain names: 1 to 64 characters, not only blanks;
//! - user, group and role names: 1 to 255, not only blanks;
//! - ids given in a body (`domain_id`, `parent_id`, `default_project_id`):
//!   1 to 64 of `[a-zA-Z0-9-]`;
//! - project tags: at most 80, unique, 1 to 255 characters without `,` or `/`.

use serde_json::Value;

use crate::error::{IdentityError, Result};

/// `parameter_types.name` and identity's `_identity_name`.
pub const NAME_MAX: usize = 255;
/// `resource/schema.py`'s `_name_properties` (projects and domains).
pub const RESOURCE_NAME_MAX: usize = 64;
/// `parameter_types.id_string`.
pub const ID_MAX: usize = 64;
/// `_project_tags_list_properties`.
pub const TAGS_MAX: usize = 80;
/// `_project_tag_name_properties`.
pub const TAG_MAX: usize = 255;

/// Python's `repr` of a string (what jsonschema's messages quote).
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn invalid(field: &str, message: String) -> IdentityError {
    IdentityError::validation(format!("Invalid input for field '{field}': {message}"))
}

/// A string of `min..=max` characters (code points, as Python counts).
fn length(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n > max {
        return Err(invalid(field, format!("{} is too long", py_repr(value))));
    }
    if n < min {
        return Err(invalid(field, format!("{} is too short", py_repr(value))));
    }
    Ok(())
}

/// Keystone's name schema: `max` characters at most and the pattern
/// `[\S]+` (at least one character that is not a blank).
pub fn name(value: &str, max: usize) -> Result<()> {
    length("name", value, 1, max)?;
    if !value.chars().any(|c| !c.is_whitespace()) {
        return Err(invalid(
            "name",
            format!("{} does not match '[\\\\S]+'", py_repr(value)),
        ));
    }
    Ok(())
}

/// `parameter_types.id_string`: `^[a-zA-Z0-9-]+$`, 64 characters at most.
pub fn id_string(field: &str, value: &str) -> Result<()> {
    length(field, value, 1, ID_MAX)?;
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(invalid(
            field,
            format!("{} does not match '^[a-zA-Z0-9-]+$'", py_repr(value)),
        ));
    }
    Ok(())
}

/// [`id_string`] when present.
pub fn opt_id_string(field: &str, value: Option<&str>) -> Result<()> {
    value.map_or(Ok(()), |v| id_string(field, v))
}

fn py_list(items: &[Value]) -> String {
    let shown: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::String(s) => py_repr(s),
            other => other.to_string(),
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

/// A project's or domain's `tags`: a list of at most 80 unique strings of
/// 1 to 255 characters without `,` or `/`.
pub fn tags(value: &Value) -> Result<()> {
    let Some(items) = value.as_array() else {
        return Err(invalid("tags", format!("{value} is not of type 'array'")));
    };
    if items.len() > TAGS_MAX {
        return Err(invalid("tags", format!("{} is too long", py_list(items))));
    }
    for (i, t) in items.iter().enumerate() {
        let field = format!("tags/{i}");
        let Some(s) = t.as_str() else {
            return Err(invalid(&field, format!("{t} is not of type 'string'")));
        };
        length(&field, s, 1, TAG_MAX)?;
        if s.contains([',', '/']) {
            return Err(invalid(
                &field,
                format!("{} does not match '^[^,/]*$'", py_repr(s)),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    if !items.iter().all(|t| seen.insert(t.as_str())) {
        return Err(invalid(
            "tags",
            format!("{} has non-unique elements", py_list(items)),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(r: Result<()>) -> String {
        r.expect_err("invalid").to_string()
    }

    #[test]
    fn names_as_keystone_limits_them() {
        assert!(name(&"a".repeat(64), RESOURCE_NAME_MAX).is_ok());
        assert_eq!(
            msg(name(&"a".repeat(65), RESOURCE_NAME_MAX)),
            format!(
                "Invalid input for field 'name': '{}' is too long",
                "a".repeat(65)
            )
        );
        assert!(name(&"é".repeat(255), NAME_MAX).is_ok());
        assert!(name(&"a".repeat(256), NAME_MAX).is_err());
        assert_eq!(
            msg(name("", NAME_MAX)),
            "Invalid input for field 'name': '' is too short"
        );
        assert_eq!(
            msg(name("  ", NAME_MAX)),
            "Invalid input for field 'name': '  ' does not match '[\\\\S]+'"
        );
        assert!(name(" a ", NAME_MAX).is_ok());
    }

    #[test]
    fn ids_and_tags() {
        assert!(id_string("domain_id", "default").is_ok());
        assert!(id_string("domain_id", "9f0e2c0b-8a4c").is_ok());
        assert_eq!(
            msg(id_string("parent_id", "a b")),
            "Invalid input for field 'parent_id': 'a b' does not match '^[a-zA-Z0-9-]+$'"
        );
        assert!(id_string("domain_id", &"a".repeat(65)).is_err());
        assert!(tags(&json!(["a", "b"])).is_ok());
        assert_eq!(
            msg(tags(&json!(["a", "a"]))),
            "Invalid input for field 'tags': ['a', 'a'] has non-unique elements"
        );
        assert_eq!(
            msg(tags(&json!(["ok", "a/b"]))),
            "Invalid input for field 'tags/1': 'a/b' does not match '^[^,/]*$'"
        );
        let many: Vec<String> = (0..81).map(|i| format!("t{i}")).collect();
        assert!(tags(&json!(many)).is_err());
        assert!(tags(&json!("x")).is_err());
        assert_eq!(py_repr("it's"), "\"it's\"");
    }
}
