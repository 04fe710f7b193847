//! Typed ids. Resource ids (instances, images, networks, ...) are UUIDs shown
//! hyphenated as Nova, Glance and Neutron do; identity ids (users, projects,
//! domains, roles) are Keystone's strings: 32 hex digits, or a literal such as
//! `default` for the default domain.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Defines a UUID-backed id type that prints hyphenated.
#[macro_export]
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
                 ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub ::uuid::Uuid);

        impl $name {
            pub fn new() -> Self { Self(::uuid::Uuid::new_v4()) }
            pub fn as_uuid(&self) -> &::uuid::Uuid { &self.0 }
        }
        impl Default for $name {
            fn default() -> Self { Self::new() }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
        impl ::std::str::FromStr for $name {
            type Err = $crate::ids::InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                ::uuid::Uuid::parse_str(s).map(Self).map_err(|_| $crate::ids::InvalidId(s.to_owned()))
            }
        }
        impl From<::uuid::Uuid> for $name {
            fn from(u: ::uuid::Uuid) -> Self { Self(u) }
        }
    };
}

/// Defines a Keystone-style string id (32 hex digits when generated).
#[macro_export]
macro_rules! keystone_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
                 ::serde::Serialize, ::serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh id in Keystone's form: a UUID4 as 32 lowercase hex digits.
            pub fn generate() -> Self { Self(::uuid::Uuid::new_v4().simple().to_string()) }
            pub fn as_str(&self) -> &str { &self.0 }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(&self.0) }
        }
        impl From<String> for $name {
            fn from(s: String) -> Self { Self(s) }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self { Self(s.to_owned()) }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str { &self.0 }
        }
    };
}

/// A string that is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id: {0}")]
pub struct InvalidId(pub String);

keystone_id!(
    /// A Keystone user.
    UserId
);
keystone_id!(
    /// A Keystone project (a tenant in older words).
    ProjectId
);
keystone_id!(
    /// A Keystone domain; the default domain's id is `default`.
    DomainId
);
keystone_id!(
    /// A Keystone role.
    RoleId
);

uuid_id!(
    /// A server (Nova instance).
    InstanceId
);
uuid_id!(
    /// A Glance image.
    ImageId
);
uuid_id!(
    /// A Neutron network.
    NetworkId
);
uuid_id!(
    /// A Neutron subnet.
    SubnetId
);
uuid_id!(
    /// A Neutron port.
    PortId
);
uuid_id!(
    /// A Neutron security group.
    SecurityGroupId
);
uuid_id!(
    /// A Cinder volume.
    VolumeId
);
uuid_id!(
    /// A Cinder volume snapshot.
    SnapshotId
);
uuid_id!(
    /// A Cinder volume attachment (the attachments API, 3.27+).
    AttachmentId
);
uuid_id!(
    /// A Cinder volume type.
    VolumeTypeId
);
uuid_id!(
    /// A request, as carried in `x-openstack-request-id` (`req-<uuid>`).
    RequestUuid
);

impl DomainId {
    /// Keystone's default domain.
    pub fn default_domain() -> Self {
        Self("default".to_owned())
    }
}

/// A request id in OpenStack's form `req-<uuid>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn generate() -> Self {
        Self(format!("req-{}", Uuid::new_v4().hyphenated()))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RequestId {
    type Err = InvalidId;
    /// Accepts a caller-supplied id only in OpenStack's form, so that logs
    /// cannot be polluted with arbitrary strings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("req-").map(Uuid::parse_str) {
            Some(Ok(u)) => Ok(Self(format!("req-{}", u.hyphenated()))),
            _ => Err(InvalidId(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_ids_round_trip_hyphenated() {
        let id = InstanceId::new();
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(s.parse::<InstanceId>(), Ok(id));
        assert!("not-a-uuid".parse::<InstanceId>().is_err());
    }

    #[test]
    fn keystone_ids_are_32_hex() {
        let id = ProjectId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert!(id.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn request_ids_only_accept_openstack_form() {
        assert!("req-0b7a8b2e-6f0c-4f8e-9a53-2b1f1c9d7e10"
            .parse::<RequestId>()
            .is_ok());
        assert!("hello".parse::<RequestId>().is_err());
        assert!(RequestId::generate().0.starts_with("req-"));
    }
}
