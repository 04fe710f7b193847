//! The image domain: the image record, Glance's status machine, who may see
//! and change an image, and the rules for creating and patching images. Plain
//! functions over plain data, so that they are unit-tested without HTTP or SQL.

pub mod access;
pub mod image;
pub mod metadef;
pub mod patch;
pub mod status;
pub mod task;

pub use image::{Image, Location, Member, MemberStatus, Visibility};
pub use status::ImageStatus;

/// Glance's default `disk_formats`.
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];

/// Glance's default `container_formats`.
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];

/// Attributes the server computes; a client setting them gets 403.
pub const READONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "stores",
];

/// Attributes Glance keeps for itself; a client setting them gets 403.
pub const RESERVED: &[&str] = &["location", "locations", "deleted", "deleted_at"];

/// Glance's reserved property namespace (`os_glance_*`).
pub const RESERVED_PREFIX: &str = "os_glance";

/// The attributes that are columns rather than free-form properties.
pub const CORE: &[&str] = &[
    "checksum",
    "created_at",
    "container_format",
    "disk_format",
    "id",
    "min_disk",
    "min_ram",
    "name",
    "size",
    "virtual_size",
    "status",
    "tags",
    "owner",
    "updated_at",
    "visibility",
    "protected",
    "os_hidden",
    "os_hash_algo",
    "os_hash_value",
];

/// Longest property value Glance's database column takes.
pub const MAX_PROPERTY_VALUE: usize = 65535;
/// Longest name, property key or tag.
pub const MAX_NAME: usize = 255;
