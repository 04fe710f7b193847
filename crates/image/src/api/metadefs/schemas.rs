//! `/v2/schemas/metadefs/*`: Glance's (Zed) metadef schemas as its API
//! reference publishes them. Clients read them to build forms; the bodies
//! are checked by [`super::body`] along the same lines.

use axum::Json;
use serde_json::Value;

use crate::error::ImageError;

/// Glance has no policy on schemas: any valid token reads them.
pub(in crate::api) fn schema(text: &str) -> Result<Json<Value>, ImageError> {
    serde_json::from_str(text)
        .map(Json)
        .map_err(|e| ImageError::Internal(format!("built-in schema: {e}")))
}

macro_rules! schemas {
    ($($name:ident => $file:literal),* $(,)?) => {
        $(
            pub async fn $name() -> Result<Json<Value>, ImageError> {
                schema(include_str!($file))
            }
        )*
        #[cfg(test)]
        mod tests {
            #[test]
            fn every_schema_is_json() {
                $(
                    let v: serde_json::Value =
                        serde_json::from_str(include_str!($file)).expect($file);
                    assert!(v["name"].is_string(), $file);
                )*
            }
        }
    };
}

schemas! {
    namespace => "schemas/namespace.json",
    namespaces => "schemas/namespaces.json",
    object => "schemas/object.json",
    objects => "schemas/objects.json",
    property => "schemas/property.json",
    properties => "schemas/properties.json",
    resource_type => "schemas/resource_type.json",
    resource_types => "schemas/resource_types.json",
    tag => "schemas/tag.json",
    tags => "schemas/tags.json",
}
