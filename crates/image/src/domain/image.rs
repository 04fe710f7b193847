//! The image record as the service holds it, with its members and locations.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use stratus_common::ids::ImageId;

use super::ImageStatus;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
    Shared,
    Community,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Shared => "shared",
            Self::Community => "community",
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "public" => Ok(Self::Public),
            "private" => Ok(Self::Private),
            "shared" => Ok(Self::Shared),
            "community" => Ok(Self::Community),
            _ => Err(format!("Invalid visibility value: {s}")),
        }
    }
}

/// Where an image's data lives (`file:///...` or `s3://bucket/key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub url: String,
    /// JSON object text, e.g. the S3 endpoint.
    pub metadata: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub id: ImageId,
    pub name: Option<String>,
    pub status: ImageStatus,
    pub visibility: Visibility,
    pub protected: bool,
    pub os_hidden: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    /// The owning project (Keystone id).
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every save: the compare-and-swap guard against lost updates.
    pub generation: i64,
    pub properties: BTreeMap<String, String>,
    /// In the order they were added, without duplicates.
    pub tags: Vec<String>,
    pub locations: Vec<Location>,
}

impl Image {
    /// A fresh queued image, as `POST /v2/images` makes before applying the body.
    pub fn new(id: ImageId, owner: Option<String>, now: DateTime<Utc>) -> Self {
        Self {
            id,
            name: None,
            status: ImageStatus::Queued,
            visibility: Visibility::Shared,
            protected: false,
            os_hidden: false,
            disk_format: None,
            container_format: None,
            min_disk: 0,
            min_ram: 0,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            owner,
            created_at: now,
            updated_at: now,
            generation: 0,
            properties: BTreeMap::new(),
            tags: Vec::new(),
            locations: Vec::new(),
        }
    }

    pub fn add_tag(&mut self, tag: &str) {
        if !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.to_owned());
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Accepted,
    Rejected,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }
}

impl FromStr for MemberStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "accepted" => Ok(Self::Accepted),
            "rejected" => Ok(Self::Rejected),
            _ => Err(format!("Invalid status: {s}")),
        }
    }
}

/// A project an image is shared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub image_id: ImageId,
    pub member_id: String,
    pub status: MemberStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
