//! The process allocator's settings, made before any thread starts.
//!
//! glibc serves a large allocation with its own mapping and gives it back on
//! free, but after the first such free it raises its mmap threshold to that
//! size (up to 32 MiB), so the next ones come from the per-thread heaps,
//! which fragment and are not trimmed: freed memory is kept for good. A
//! fixed threshold turns that off. The password hashing threads rely on it
//! to give their 19 MiB work areas back when idle (measured with
//! `stratus bench compare`: RSS after the launches and 400 token issues
//! 176 MiB with the areas freed under the dynamic threshold, 97 MiB with a
//! fixed one; BENCHMARKS.md).
//!
//! Fixing the mmap threshold also leaves the trim threshold at its 128 KiB
//! default (glibc raises both together otherwise), and then a heap is
//! shrunk and grown again on every request that frees a buffer of that
//! size: `GET /servers/detail` with 50 servers answered 7% fewer requests
//! a second until the trim threshold was set too.

/// Allocations from this size up get a mapping of their own, returned to
/// the OS when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// Free memory at the top of a heap beyond this is given back to the OS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 4 * 1024 * 1024;

/// Fixes glibc's mmap and trim thresholds (a no-op on other C libraries).
pub fn return_large_frees_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; it is called
    // first thing in main, before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
