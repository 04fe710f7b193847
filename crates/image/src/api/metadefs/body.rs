//! Checking metadef request bodies as Glance's JSON schemas do
//! (`/v2/schemas/metadefs/*`): types, lengths, enums, required and unknown
//! attributes give 400 `Provided object does not match schema ...`; the
//! read-only attributes give 403. Property definitions are kept with the
//! attributes Glance's `PropertyType` knows.

use serde_json::{Map, Value};

use crate::error::ImageError;

/// A 400 naming the schema, in Glance's words.
pub fn invalid(schema: &str, reason: impl std::fmt::Display) -> ImageError {
    ImageError::BadRequest(format!(
        "Provided object does not match schema '{schema}': {reason}"
    ))
}

/// The body as an object, or Glance's 400.
pub fn object<'a>(v: &'a Value, schema: &str) -> Result<&'a Map<String, Value>, ImageError> {
    v.as_object()
        .ok_or_else(|| invalid(schema, format!("{v} is not of type 'object'")))
}

/// Glance's `_check_allowed`: setting a read-only attribute is 403.
pub fn check_readonly(body: &Map<String, Value>, readonly: &[&str]) -> Result<(), ImageError> {
    match readonly.iter().find(|k| body.contains_key(**k)) {
        Some(k) => Err(ImageError::Forbidden(format!(
            "Attribute '{k}' is read-only."
        ))),
        None => Ok(()),
    }
}

/// `additionalProperties: false`.
pub fn check_known(
    body: &Map<String, Value>,
    known: &[&str],
    schema: &str,
) -> Result<(), ImageError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            schema,
            format!("Additional properties are not allowed ('{k}' was unexpected)"),
        )),
        None => Ok(()),
    }
}

/// An optional string no longer than `max` (0: any length).
pub fn opt_string(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
    schema: &str,
) -> Result<Option<String>, ImageError> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if max > 0 && s.chars().count() > max => Err(invalid(
            schema,
            format!("'{s}' is too long (at most {max} characters)"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(schema, format!("{other} is not of type 'string'"))),
    }
}

/// A required string no longer than `max`.
pub fn string(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
    schema: &str,
) -> Result<String, ImageError> {
    opt_string(body, key, max, schema)?
        .ok_or_else(|| invalid(schema, format!("'{key}' is a required property")))
}

pub fn opt_bool(
    body: &Map<String, Value>,
    key: &str,
    schema: &str,
) -> Result<Option<bool>, ImageError> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(invalid(schema, format!("{other} is not of type 'boolean'"))),
    }
}

/// `stringArray`: unique strings.
pub fn string_array(v: &Value, schema: &str) -> Result<Vec<String>, ImageError> {
    let items = v
        .as_array()
        .ok_or_else(|| invalid(schema, format!("{v} is not of type 'array'")))?;
    let mut out: Vec<String> = Vec::new();
    for i in items {
        let s = i
            .as_str()
            .ok_or_else(|| invalid(schema, format!("{i} is not of type 'string'")))?;
        if out.iter().any(|o| o == s) {
            return Err(invalid(schema, format!("{v} has non-unique elements")));
        }
        out.push(s.to_owned());
    }
    Ok(out)
}

const PROPERTY_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// The attributes of a property definition and what each must be.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Number,
    Count,
    StrArray,
    AnyArray,
    Type,
    Items,
    Any,
}

const PROPERTY_ATTRS: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("title", Kind::Str),
    ("description", Kind::Str),
    ("operators", Kind::StrArray),
    ("type", Kind::Type),
    ("minimum", Kind::Number),
    ("maximum", Kind::Number),
    ("maxLength", Kind::Count),
    ("minLength", Kind::Count),
    ("pattern", Kind::Str),
    ("enum", Kind::AnyArray),
    ("readonly", Kind::Bool),
    ("default", Kind::Any),
    ("items", Kind::Items),
    ("maxItems", Kind::Count),
    ("minItems", Kind::Count),
    ("uniqueItems", Kind::Bool),
    ("additionalItems", Kind::Bool),
];

/// Attributes the nested definitions in a namespace or object may carry
/// (the schema allows them; Glance's `PropertyType` keeps `confidential`
/// too and drops the rest).
const KEPT_NESTED: &[&str] = &["confidential"];

fn check_kind(key: &str, v: &Value, kind: Kind, schema: &str) -> Result<(), ImageError> {
    let fail = |t: &str| Err(invalid(schema, format!("{v} is not of type '{t}' ({key})")));
    match kind {
        Kind::Str if !v.is_string() => fail("string"),
        Kind::Bool if !v.is_boolean() => fail("boolean"),
        Kind::Number if !v.is_number() => fail("number"),
        Kind::Count if v.as_u64().is_none() => fail("integer"),
        Kind::StrArray if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) => {
            fail("array")
        }
        Kind::AnyArray if !v.is_array() => fail("array"),
        Kind::Type => match v.as_str() {
            Some(t) if PROPERTY_TYPES.contains(&t) => Ok(()),
            _ => Err(invalid(
                schema,
                format!("{v} is not one of {PROPERTY_TYPES:?} ({key})"),
            )),
        },
        Kind::Items => {
            let Some(m) = v.as_object() else {
                return fail("object");
            };
            if let Some(t) = m.get("type") {
                check_kind("items.type", t, Kind::Type, schema)?;
            }
            if let Some(e) = m.get("enum") {
                check_kind("items.enum", e, Kind::AnyArray, schema)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A property definition as Glance keeps it. `standalone`: a property of
/// its own (`/properties`), where unknown attributes are refused and
/// `name` is required; else one inside a namespace or object, where they
/// are dropped.
pub fn property(
    v: &Value,
    schema: &str,
    standalone: bool,
) -> Result<Map<String, Value>, ImageError> {
    let m = object(v, schema)?;
    let mut out = Map::new();
    for (k, val) in m {
        match PROPERTY_ATTRS.iter().find(|(n, _)| n == k) {
            Some((_, kind)) => {
                check_kind(k, val, *kind, schema)?;
                if k == "name" && val.as_str().is_some_and(|s| s.chars().count() > 80) {
                    return Err(invalid(schema, format!("{val} is too long (name)")));
                }
                out.insert(k.clone(), val.clone());
            }
            None if standalone => {
                return Err(invalid(
                    schema,
                    format!("Additional properties are not allowed ('{k}' was unexpected)"),
                ))
            }
            None if KEPT_NESTED.contains(&k.as_str()) => {
                check_kind(k, val, Kind::Bool, schema)?;
                out.insert(k.clone(), val.clone());
            }
            None => {}
        }
    }
    let required: &[&str] = if standalone {
        &["name", "title", "type"]
    } else {
        &["title", "type"]
    };
    for r in required {
        if !out.contains_key(*r) {
            return Err(invalid(schema, format!("'{r}' is a required property")));
        }
    }
    Ok(out)
}

/// A map of property name → definition (`properties` of a namespace or
/// object).
pub fn properties(v: &Value, schema: &str) -> Result<Map<String, Value>, ImageError> {
    let m = object(v, schema)?;
    let mut out = Map::new();
    for (name, def) in m {
        out.insert(name.clone(), Value::Object(property(def, schema, false)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn property_definitions() {
        let p = property(
            &json!({"name": "n", "title": "T", "type": "string", "enum": ["a"], "minLength": 1}),
            "property",
            true,
        )
        .expect("valid");
        assert_eq!(p.len(), 5);
        for bad in [
            json!({"name": "n", "title": "T"}),
            json!({"name": "n", "title": "T", "type": "text"}),
            json!({"name": "n", "title": "T", "type": "string", "minLength": -1}),
            json!({"name": "n", "title": "T", "type": "string", "color": "red"}),
            json!({"title": "T", "type": "string"}),
            json!({"name": "n", "title": 3, "type": "string"}),
            json!([]),
        ] {
            assert!(property(&bad, "property", true).is_err(), "{bad}");
        }
        let nested = property(
            &json!({"title": "T", "type": "integer", "color": "red", "confidential": true}),
            "object",
            false,
        )
        .expect("nested");
        assert!(!nested.contains_key("color") && nested.contains_key("confidential"));
    }

    #[test]
    fn bodies() {
        let b = json!({"self": "x", "name": "n"});
        let m = object(&b, "object").expect("object");
        assert!(matches!(
            check_readonly(m, &["self"]),
            Err(ImageError::Forbidden(_))
        ));
        assert!(check_known(m, &["name"], "object").is_err());
        assert!(string(m, "name", 1, "object").is_ok());
        assert!(string(m, "self", 0, "object").is_ok());
        assert!(string(m, "other", 0, "object").is_err());
        assert!(string_array(&json!(["a", "a"]), "object").is_err());
        assert_eq!(
            string_array(&json!(["a", "b"]), "object").expect("array"),
            vec!["a", "b"]
        );
    }
}
