//! Metadata definitions (Glance's metadefs): a catalog of namespaces, each
//! holding property definitions (JSON-schema fragments), objects (named
//! groups of properties), tags and associations with resource types
//! (`OS::Glance::Image`, `OS::Nova::Flavor`, ...), which clients such as
//! Horizon read to offer the right image properties and flavor extra specs.
//!
//! Who sees what (Glance's `_is_namespace_visible`): admins see every
//! namespace, others the public ones and those their project owns. Only
//! admins change the catalog (Zed's `metadef_admin` default).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use stratus_common::RequestContext;

use super::access::project;

#[derive(Clone, Debug, PartialEq)]
pub struct Namespace {
    /// Internal id: the name is what the API uses, and it can be renamed.
    pub id: String,
    pub namespace: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// `public` or `private`.
    pub visibility: String,
    pub protected: bool,
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Namespace {
    /// Whether `ctx` may see this namespace at all (else it is "not found").
    pub fn visible_to(&self, ctx: &RequestContext) -> bool {
        ctx.is_admin() || self.visibility == "public" || project(ctx) == Some(self.owner.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetadefObject {
    pub name: String,
    pub description: Option<String>,
    pub required: Vec<String>,
    /// Property name → its definition.
    pub properties: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A namespace property: its name and definition (a JSON-schema fragment
/// with `title` and `type`, as Glance's `PropertyType` keeps it).
#[derive(Clone, Debug, PartialEq)]
pub struct MetadefProperty {
    pub name: String,
    pub schema: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MetadefTag {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    pub name: String,
    pub protected: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A namespace's association with a resource type: the prefix its
/// properties take on that resource (`hw_` on images, `hw:` on flavors) and
/// which of the resource's metadata they go to (`properties_target`).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceTypeAssociation {
    pub name: String,
    pub prefix: Option<String>,
    pub properties_target: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a namespace is created with besides itself (Glance's create takes
/// the whole tree in one body).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NamespaceContent {
    pub associations: Vec<ResourceTypeAssociation>,
    pub objects: Vec<MetadefObject>,
    pub properties: Vec<MetadefProperty>,
    pub tags: Vec<MetadefTag>,
}
