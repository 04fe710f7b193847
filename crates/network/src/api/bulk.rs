//! Neutron's bulk create: `{"<collection>": [{...}, ...]}` in one POST
//! creates every item or none, and answers `{"<collection>": [...]}`; the
//! single form `{"<member>": {...}}` is the same path with one item.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::resource_body;
use crate::error::{NetworkError, Result};

/// The items of a create body, and whether it was the bulk form.
pub struct Items {
    pub items: Vec<Value>,
    pub bulk: bool,
}

/// Splits a create body into its items: `{"<member>": {...}}` or
/// `{"<collection>": [{...}, ...]}`.
pub fn items(mut body: Value, member: &str, collection: &str) -> Result<Items> {
    if let Some(list) = body.get_mut(collection).map(Value::take) {
        let Value::Array(items) = list else {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for {collection}: a list is expected"
            )));
        };
        if items.is_empty() {
            return Err(NetworkError::BadRequest("Resources required".to_owned()));
        }
        return Ok(Items { items, bulk: true });
    }
    let one = body.get_mut(member).map(Value::take).ok_or_else(|| {
        NetworkError::BadRequest(format!("Unable to find '{member}' in request body"))
    })?;
    Ok(Items {
        items: vec![one],
        bulk: false,
    })
}

/// One item as the typed body of the single form (same 400s).
pub fn parse<T: DeserializeOwned>(item: Value, member: &str) -> Result<T> {
    resource_body(json!({ member: item }), member)
}

/// The answer: the one view, or the list.
pub fn answer(mut views: Vec<Value>, bulk: bool, member: &str, collection: &str) -> Value {
    if bulk {
        json!({ collection: views })
    } else {
        json!({ member: views.pop().unwrap_or(Value::Null) })
    }
}
