//! The libvirt driver: real guests through libvirtd (`qemu:///system`),
//! over the libvirt C library's bindings (the `virt` crate, compute's
//! `libvirt` feature). Each call runs on a blocking thread with its own
//! connection: libvirt's calls block, and a connection per call costs a
//! few milliseconds against a guest's seconds.
//!
//! The domain is named `stratus-<instance id>` with the instance id as its
//! UUID; the guest's serial console goes to `console.log` in its folder.
//! Taps are the L2 agent's (made before the guest starts, removed when the
//! port is unbound), so destroying a domain leaves the network alone.

pub mod config;
pub mod probe;
pub mod secret;
pub mod xml;

#[cfg(feature = "libvirt")]
mod driver;

#[cfg(feature = "libvirt")]
pub use driver::LibvirtDriver;

pub use config::LibvirtConfig;

/// Whether this build carries the libvirt driver (the `libvirt` feature).
pub const AVAILABLE: bool = cfg!(feature = "libvirt");
