//! stratus-volume-client: the Cinder v3 API as compute calls it (attach,
//! detach, boot from volume), with no dependency on the volume server crate.
//!
//! - [`model`]: the wire types: the [`Volume`] record, an [`Attachment`]
//!   and the [`Connector`] a host gives to get the connection info;
//! - [`client`]: [`VolumeClient`] (volume show, create, delete; the
//!   attachments API of 3.27 with `os-complete` of 3.44, sent at 3.67 for
//!   project-less URLs) and its
//!   [`ClientError`];
//! - [`rbd`]: the `rbd` connection info ([`RbdConnection`]) that the rbd
//!   backend gives and a compute host renders as a QEMU RBD disk.

pub mod client;
pub mod model;
pub mod rbd;

pub use client::{ClientError, VolumeClient, MICROVERSION};
pub use model::{Attachment, Connector, NewVolume, Volume, VolumeAttachmentRef};
pub use rbd::RbdConnection;
