//! The library's own epoch: a private crossbeam-epoch `Collector` that every
//! map's reads pin and every map's garbage waits on.
//!
//! Why not crossbeam's default collector: it is shared by every crossbeam-epoch
//! user in the process. A host (or another library in it) that keeps a thread
//! pinned on the default collector, or pins it around a call into mapcache,
//! would hold back the epoch that frees mapcache's garbage, and mapcache's own
//! long pins (a `Pinned` view, a `get_with` closure) would hold back theirs.
//! With a collector of its own, mapcache's reclamation depends only on
//! mapcache's pins.
//!
//! Invariants:
//! - Every guard the core uses comes from [`pin`] (or is `unprotected`, in a
//!   destructor that has `&mut` access), so every deferred free of a map's
//!   garbage is ordered after every pin that could have reached it.
//! - A thread's participant is registered on its first pin and unregistered when
//!   the thread exits. A pin taken while the thread's thread-locals are being
//!   torn down (a call from a TLS destructor) uses a temporary participant,
//!   unregistered when the guard drops.

use crossbeam_epoch::{Collector, Guard, LocalHandle};

#[cfg(not(loom))]
fn collector() -> &'static Collector {
    static COLLECTOR: std::sync::OnceLock<Collector> = std::sync::OnceLock::new();
    COLLECTOR.get_or_init(Collector::new)
}

// loom has no `OnceLock`; its `lazy_static` is reset for each explored execution.
#[cfg(loom)]
fn collector() -> &'static Collector {
    loom::lazy_static! {
        static ref COLLECTOR: Collector = Collector::new();
    }
    &COLLECTOR
}

#[cfg(not(loom))]
std::thread_local! {
    static LOCAL: LocalHandle = collector().register();
}
#[cfg(loom)]
loom::thread_local! {
    static LOCAL: LocalHandle = collector().register();
}

/// Pins the calling thread on the library's collector.
#[inline]
pub(crate) fn pin() -> Guard {
    LOCAL
        .try_with(LocalHandle::pin)
        .unwrap_or_else(|_| collector().register().pin())
}

/// Whether the calling thread is pinned on the library's collector right now (a
/// guard of its own is alive further up the stack: a read callback, a `Pinned`
/// view). A thread that is pinned holds the epoch back itself, so it must never
/// wait for the epoch to advance.
#[inline]
pub(crate) fn is_pinned() -> bool {
    LOCAL.try_with(LocalHandle::is_pinned).unwrap_or(false)
}
