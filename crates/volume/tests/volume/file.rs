//! The file backend with real qemu-img.
