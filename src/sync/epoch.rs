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
//!
//! Leak checkers: crossbeam keeps participants (`Local`s) on an intrusive list
//! and, when a thread exits, only marks its entry deleted by tagging the entry's
//! link to its successor; the entry is unlinked and freed by a later traversal
//! of the list. A participant whose predecessor is a marked entry is then
//! referenced only by a tagged pointer, one byte past its start, which valgrind
//! reports as "possibly lost" at exit (the suite's threads that exit last).
//! So a thread's [`Participant`] sweeps the list when the thread exits: right
//! after releasing its entry it pins a temporary participant and flushes, which
//! traverses the list, unlinks every marked entry (its own included) and pushes
//! the epoch on so that they are freed. What stays at exit is the last sweeper's
//! entry, at the head of the list, referenced by the head's untagged pointer.

use std::mem::ManuallyDrop;

use crossbeam_epoch::{Collector, Guard, LocalHandle};

/// A thread's registration on `collector`, kept in a thread-local; dropping it
/// (when the thread exits) releases it and sweeps the collector's list of
/// participants (see the module docs).
pub(crate) struct Participant {
    collector: &'static Collector,
    /// Dropped in `Drop` only, never used after.
    handle: ManuallyDrop<LocalHandle>,
}

impl Participant {
    pub(crate) fn new(collector: &'static Collector) -> Participant {
        Participant {
            collector,
            handle: ManuallyDrop::new(collector.register()),
        }
    }

    /// Pins the calling thread, which owns this participant.
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        self.handle.pin()
    }

    // Under loom only the FFI layer has participants, and it never asks.
    #[cfg_attr(loom, allow(dead_code))]
    #[inline]
    pub(crate) fn is_pinned(&self) -> bool {
        self.handle.is_pinned()
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        // SAFETY: `handle` is dropped here once and never touched afterwards.
        unsafe { ManuallyDrop::drop(&mut self.handle) };
        sweep(self.collector);
    }
}

/// Traverses `collector`'s participants, unlinking those of exited threads, and
/// advances the epoch so that they (and garbage left by exited threads) are
/// freed. A flush traverses the list and advances the epoch once when no
/// participant is pinned in an older epoch; garbage waits two advances.
pub(crate) fn sweep(collector: &Collector) {
    let temporary = collector.register();
    for _ in 0..3 {
        temporary.pin().flush();
    }
}

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
    static LOCAL: Participant = Participant::new(collector());
}
// Under loom a sweep at thread exit would only add steps for the model checker
// to explore; the leak-checker concern does not apply there.
#[cfg(loom)]
loom::thread_local! {
    static LOCAL: LocalHandle = collector().register();
}

/// Pins the calling thread on the library's collector.
#[inline]
pub(crate) fn pin() -> Guard {
    #[cfg(not(loom))]
    let pinned = LOCAL.try_with(Participant::pin);
    #[cfg(loom)]
    let pinned = LOCAL.try_with(LocalHandle::pin);
    pinned.unwrap_or_else(|_| collector().register().pin())
}

/// Passes this thread's deferred frees on and runs a few rounds of collection:
/// each round can advance the epoch once, and a deferred free runs two advances
/// after it was sealed, so when no other thread is pinned everything retired
/// before the call is freed by the time it returns.
pub(crate) fn collect() {
    for _ in 0..4 {
        pin().flush();
    }
}

/// Whether the calling thread is pinned on the library's collector right now (a
/// guard of its own is alive further up the stack: a read callback, a `Pinned`
/// view). A thread that is pinned holds the epoch back itself, so it must never
/// wait for the epoch to advance.
#[inline]
pub(crate) fn is_pinned() -> bool {
    #[cfg(not(loom))]
    let pinned = LOCAL.try_with(Participant::is_pinned);
    #[cfg(loom)]
    let pinned = LOCAL.try_with(LocalHandle::is_pinned);
    pinned.unwrap_or(false)
}
