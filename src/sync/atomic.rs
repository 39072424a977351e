//! The atomic types every shared field of the table uses, and the locks of the
//! shard's garbage registry.
//!
//! Under `--cfg loom` they are loom's, so that the model tests in `tests/loom.rs`
//! explore every interleaving of the real protocol code rather than a copy of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};

// The locks of a shard's garbage registry (`table/reclaim.rs`), which deferred
// frees take on any thread: loom must see them too.
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, RwLock};

/// One step of a wait loop: a CPU pause normally, a scheduling point under loom
/// (loom needs to see every spin to explore the other thread's progress).
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// Gives the CPU away: used by a writer that has spun for a while on a flag.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}
