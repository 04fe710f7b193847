//! stratus-image-client: the Glance v2 API as other services call it
//! (compute's API and agent, the compute host's image cache), with no
//! dependency on the image server crate.
//!
//! - [`model`]: the wire types: the image record ([`Image`]), its store
//!   [`Location`]s and its [`ImageStatus`];
//! - [`client`]: [`ImageClient`] (`GET /v2/images/{id}` and
//!   `GET /v2/images/{id}/file`) and its [`ClientError`].

pub mod client;
pub mod model;

pub use client::{ClientError, ImageClient};
pub use model::{Image, ImageStatus, Location};
