//! Who is calling: a small per-thread id for the write flag, and the label that
//! misuse reports print for it.
//!
//! The write flag stores the id of the thread holding it. When another thread
//! collides with it, the report must name the holder, whose label lives with the
//! holder's thread; so labels are kept in a process-wide registry keyed by id. The
//! registry is only touched when a thread first calls into a map, when it sets a
//! label, when it exits, and when a collision is reported: never on the fast path.
//!
//! The registry lives in a `BTreeMap` in a plain static, not a `HashMap`: a
//! hashbrown table is referenced by a pointer into the middle of its allocation
//! (its control bytes), which leak checkers such as valgrind report as "possibly
//! lost" at exit; every B-tree node is referenced by a pointer to its start.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A thread's id as the write flag records it. Never zero, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ThreadId(NonZeroU64);

impl ThreadId {
    /// The id as a number (for the flag word).
    pub(crate) fn get(self) -> u64 {
        self.0.get()
    }

    /// Rebuilds an id read back from a flag word; `None` for zero.
    pub(crate) fn from_raw(raw: u64) -> Option<ThreadId> {
        NonZeroU64::new(raw).map(ThreadId)
    }
}

/// What the registry knows of a live thread.
struct Names {
    /// The name used when no label is set: the thread's std name, else its OS id.
    default: String,
    /// The label set with `set_thread_label`, if any.
    label: Option<String>,
}

fn registry() -> MutexGuard<'static, BTreeMap<u64, Names>> {
    static REGISTRY: Mutex<BTreeMap<u64, Names>> = Mutex::new(BTreeMap::new());
    REGISTRY
        .lock()
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single insert/remove/lookup).
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// This thread's registration; removing it from the registry when the thread ends
/// keeps the registry as small as the set of live threads.
struct Registration {
    id: ThreadId,
}

impl Registration {
    fn new() -> Registration {
        let id = next_id();
        registry().insert(
            id.get(),
            Names {
                default: default_name(),
                label: None,
            },
        );
        Registration { id }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        registry().remove(&self.id.get());
    }
}

#[cfg(loom)]
loom::thread_local! {
    static CURRENT: Registration = Registration::new();
}
#[cfg(not(loom))]
std::thread_local! {
    static CURRENT: Registration = Registration::new();
}

/// The calling thread's id (registers the thread on first use).
///
/// A call from a thread-local destructor, after this thread's registration was
/// torn down, gets a fresh id of its own, never registered: it is unique, so the
/// write flag still tells it from every other thread, and a report that names it
/// says the thread was exiting. (`with` would panic there, and a panic in a TLS
/// destructor aborts the process.)
#[inline]
pub(crate) fn current() -> ThreadId {
    CURRENT.try_with(|r| r.id).unwrap_or_else(|_| exiting_id())
}

/// A small number for this thread, to pick a stripe of per-thread counters and
/// buffers with: threads that start one after another get consecutive numbers.
/// A const thread-local without a destructor (one load, no lazy-init check),
/// so that the read path can afford it on every hit; usable to the thread's end.
#[inline]
pub(crate) fn stripe() -> usize {
    std::thread_local! {
        static STRIPE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    STRIPE
        .try_with(|stripe| match stripe.get() {
            0 => {
                static NEXT: AtomicU64 = AtomicU64::new(1);
                let n = NEXT.fetch_add(1, Ordering::Relaxed) as usize;
                stripe.set(n);
                n
            }
            n => n,
        })
        .unwrap_or(0)
}

/// The id of a thread whose registration was torn down: made on the first such
/// call and kept, so that every call from the thread's remaining destructors is
/// the same thread to the write flag (a read after its own write is not a
/// misuse). A const thread-local with no destructor stays usable to the end.
#[cold]
fn exiting_id() -> ThreadId {
    std::thread_local! {
        static EXITING: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    EXITING
        .try_with(|cached| {
            ThreadId::from_raw(cached.get()).unwrap_or_else(|| {
                let id = next_id();
                cached.set(id.get());
                id
            })
        })
        .unwrap_or_else(|_| next_id())
}

/// A new id, never given out before.
fn next_id() -> ThreadId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let raw = NEXT.fetch_add(1, Ordering::Relaxed);
    ThreadId(NonZeroU64::new(raw).expect("thread id counter overflowed"))
}

/// The name of a thread without a label: its std name, else `thread <os tid>`.
///
/// The process's main thread is always `thread <os tid>`: asking std for its
/// name (`std::thread::current()`) would make std allocate a `Thread` handle
/// for the main thread of a non-Rust host, which std keeps until exit behind a
/// pointer into the middle of its allocation (valgrind: "possibly lost"). On
/// other threads std frees that handle when the thread exits.
fn default_name() -> String {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and getpid have no preconditions and cannot fail.
        let (tid, pid) = unsafe { (libc::gettid(), libc::getpid()) };
        if tid != pid {
            if let Some(name) = std::thread::current().name() {
                return name.to_owned();
            }
        }
        format!("thread {tid}")
    }
    #[cfg(not(target_os = "linux"))]
    {
        let thread = std::thread::current();
        match thread.name() {
            Some(name) => name.to_owned(),
            None => format!("thread {:?}", thread.id()),
        }
    }
}

/// The name misuse reports use for `id`: its label, else its default name.
pub(crate) fn name_of(id: ThreadId) -> String {
    match registry().get(&id.get()) {
        Some(Names {
            label: Some(label), ..
        }) => label.clone(),
        Some(names) => names.default.clone(),
        // The holder exited between the collision and this lookup, or is a
        // thread in its thread-local destructors (see `current`).
        None => format!("exited thread #{}", id.get()),
    }
}

/// Names the calling OS thread in misuse reports (see [`crate::Error::ConcurrentWrite`]).
///
/// The label stays until it is replaced, cleared with [`clear_thread_label`], or the
/// thread exits. It applies to every map, since it names the thread, not a map.
pub fn set_thread_label(label: &str) {
    let id = current();
    if let Some(names) = registry().get_mut(&id.get()) {
        names.label = Some(label.to_owned());
    }
}

/// Removes the calling thread's label; reports fall back to its default name.
pub fn clear_thread_label() {
    let id = current();
    if let Some(names) = registry().get_mut(&id.get()) {
        names.label = None;
    }
}

/// The name misuse reports would give the calling thread now.
pub fn thread_label() -> String {
    name_of(current())
}
