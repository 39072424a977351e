//! What a shard has handed to the epoch and not yet freed, kept where the
//! shard's drop can reach it.
//!
//! Why: the epoch runs a deferred free on whichever thread next collects, and a
//! deferred closure waits in the bag of the thread that made it until that
//! thread pins often enough to seal and hand the bag on. When closures owned
//! their garbage (and the slab it belongs to), dropping a map returned little of
//! its memory while other threads were idle: about 6 MB of an 8 MB map stayed
//! allocated, in closures nobody would run soon. So a shard's garbage is owned
//! by its [`ShardMemory`], in a registry, and a deferred closure only says "the
//! epoch has passed for item `i`": it frees the item if it is still there. The
//! shard's drop, which no reader can overlap (the map is gone, so no thread can
//! reach its entries), frees every item at once, and the slab's chunks with them.
//! A closure that runs later finds nothing to free; what stays behind until then
//! is the `ShardMemory` shell the closures hold (about 1.4 KiB per shard).
//!
//! Invariants:
//! - An item is freed exactly once: by the closure that takes it out of the
//!   registry, or by [`ShardMemory::destroy`], which empties the registry under
//!   its lock; `released` marks its slot free again only after the take.
//! - The slab is written (blocks pushed back) only while `alive` is read-locked
//!   and true; `destroy` write-locks it to set it false, so it frees the slab's
//!   chunks (after releasing the lock) only when no free into the slab is
//!   running, and none can start afterwards.

use std::ptr::NonNull;
use std::sync::Arc;

use crossbeam_epoch::{Guard, Shared};

use super::retire::RetiredEntries;
use super::slab::Slab;
use super::table::Table;
use crate::sync::atomic::{AtomicUsize, Mutex, Ordering, RwLock};

/// One thing a shard handed to the epoch.
pub(crate) enum Garbage {
    /// Entries its writers unlinked (a retire batch).
    Entries(RetiredEntries),
    /// A table replaced by a grow or a rebuild: its bucket arrays only, since
    /// the new table links its entries.
    Arrays(NonNull<Table>),
    /// A table replaced by `clear`, with every entry it links.
    Cleared(NonNull<Table>),
}

// SAFETY: every item is unlinked from the shard and owned by the registry alone
// (see the module invariants); tables and entries are plain memory, freed on
// whichever thread frees the item.
unsafe impl Send for Garbage {}

impl Garbage {
    /// Frees the item, small entries into `slab`.
    ///
    /// # Safety
    /// No reader can reach the item any more, and its small entries were made
    /// with `slab`, which serves allocations (its chunks are not freed).
    unsafe fn free(self, slab: &Slab) {
        match self {
            // SAFETY: per the contract.
            Garbage::Entries(entries) => unsafe { entries.free(slab) },
            // SAFETY: per the contract; the table was allocated by `Owned::new`.
            Garbage::Arrays(table) => drop(unsafe { Self::owned(table) }),
            Garbage::Cleared(table) => {
                // SAFETY: per the contract: the table is its entries' last owner.
                let table = unsafe { Self::owned(table) };
                // SAFETY: as above.
                unsafe { table.free_entries(slab) };
            }
        }
    }

    /// Frees the item's large entries and its tables, leaving its small
    /// entries to their slab's chunks, which the caller frees.
    ///
    /// # Safety
    /// No reader can reach the item any more.
    unsafe fn free_all_but_small_entries(self) {
        match self {
            // SAFETY: per the contract.
            Garbage::Entries(entries) => unsafe { entries.free_large() },
            // SAFETY: per the contract; the table was allocated by `Owned::new`.
            Garbage::Arrays(table) => drop(unsafe { Self::owned(table) }),
            Garbage::Cleared(table) => {
                // SAFETY: as above.
                let table = unsafe { Self::owned(table) };
                // SAFETY: per the contract: the table is its entries' last owner.
                unsafe { table.free_large_entries() };
            }
        }
    }

    /// Takes ownership of a table made by `Owned::new`.
    ///
    /// # Safety
    /// `table` came from `Owned::new` and nothing else owns it.
    unsafe fn owned(table: NonNull<Table>) -> crossbeam_epoch::Owned<Table> {
        // SAFETY: per the contract.
        unsafe { Shared::from(table.as_ptr().cast_const()).into_owned() }
    }
}

/// The items a shard has handed to the epoch, by slot.
#[derive(Default)]
struct Registry {
    /// Each item with its bytes counted in `garbage`, or `None` for a free slot.
    items: Vec<Option<(Garbage, usize)>>,
    /// Free slots of `items`.
    vacant: Vec<usize>,
}

/// What a shard's deferred frees need, and may outlive the shard: the slab of
/// its small entries, the registry of its garbage, and the count of its
/// garbage bytes. Shared with the deferred closures through an `Arc`.
pub(crate) struct ShardMemory {
    /// The blocks of the shard's small entries (see `slab.rs`).
    slab: Slab,
    /// Bytes handed to the epoch and not yet freed (the shard's retire batch
    /// holds at most `retire::BATCH_BYTES` more).
    garbage: AtomicUsize,
    /// What the epoch holds (see the module docs).
    registry: Mutex<Registry>,
    /// Whether the slab may be written; false once the shard is destroyed.
    alive: RwLock<bool>,
}

impl ShardMemory {
    pub(crate) fn new() -> ShardMemory {
        ShardMemory {
            slab: Slab::new(),
            garbage: AtomicUsize::new(0),
            registry: Mutex::new(Registry::default()),
            alive: RwLock::new(true),
        }
    }

    /// The slab of the shard's small entries.
    #[inline]
    pub(crate) fn slab(&self) -> &Slab {
        &self.slab
    }

    /// Bytes handed to the epoch and not yet freed.
    #[inline]
    pub(crate) fn garbage(&self) -> usize {
        self.garbage.load(Ordering::Relaxed)
    }

    /// Hands `garbage` to the epoch: it is freed once every pin older than
    /// `guard`'s has ended, or when the shard is destroyed, whichever comes
    /// first. `bytes` count as garbage until then.
    ///
    /// # Safety
    /// `garbage` is unreachable for pins taken from now on, and its entries were
    /// made with this memory's slab.
    pub(crate) unsafe fn defer(self: &Arc<Self>, guard: &Guard, garbage: Garbage, bytes: usize) {
        self.garbage.fetch_add(bytes, Ordering::Relaxed);
        let slot = {
            let mut registry = lock(&self.registry);
            let item = Some((garbage, bytes));
            match registry.vacant.pop() {
                Some(slot) => {
                    registry.items[slot] = item;
                    slot
                }
                None => {
                    registry.items.push(item);
                    registry.items.len() - 1
                }
            }
        };
        let memory = Arc::clone(self);
        // SAFETY: the closure frees the item only through `released`, which
        // frees it into the slab only while the shard is alive; per the contract
        // no pin taken after this call can reach it, and the epoch runs the
        // closure after every older pin has ended.
        unsafe { guard.defer_unchecked(move || memory.released(slot)) };
    }

    /// The epoch has passed for the item in `slot`: frees it, unless the
    /// shard's destruction did already.
    fn released(&self, slot: usize) {
        let alive = self.alive.read().unwrap_or_else(|p| p.into_inner());
        if !*alive {
            return;
        }
        let item = {
            let mut registry = lock(&self.registry);
            let item = registry.items[slot].take();
            // One closure per occupied slot: only `destroy` empties slots
            // otherwise, and it marks the shard dead first.
            debug_assert!(item.is_some(), "slot {slot} released twice");
            registry.vacant.push(slot);
            item
        };
        if let Some((garbage, bytes)) = item {
            // SAFETY: the epoch has passed, so no reader can reach the item; its
            // entries were made with this slab, which is alive (read-locked).
            unsafe { garbage.free(&self.slab) };
            self.garbage.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Frees everything the shard handed to the epoch and not yet freed, and
    /// every chunk of the slab: the shard's small entries go with them. Later
    /// deferred closures find nothing to free.
    ///
    /// # Safety
    /// The shard is being destroyed: no thread can reach its tables or entries
    /// any more, and no allocation from the slab runs or will run. The caller
    /// frees the large entries that are still linked or batched itself.
    pub(crate) unsafe fn destroy(&self) {
        // Taking the write lock waits out every free into the slab in flight;
        // once it is released with `alive` false, later closures return at
        // once. The freeing below runs unlocked, so that a thread whose pin
        // happens to run one of this shard's closures never waits for a big
        // map's teardown.
        let registry = {
            let mut alive = self.alive.write().unwrap_or_else(|p| p.into_inner());
            *alive = false;
            std::mem::take(&mut *lock(&self.registry))
        };
        for (garbage, _) in registry.items.into_iter().flatten() {
            // SAFETY: per the contract nothing can reach the item; its small
            // entries go with the slab's chunks, freed below.
            unsafe { garbage.free_all_but_small_entries() };
        }
        self.garbage.store(0, Ordering::Relaxed);
        // SAFETY: per the contract no allocation runs, and no free into the slab
        // runs or can start (`alive` was false when the write lock was released).
        unsafe { self.slab.release_chunks() };
    }
}

/// Locks the registry. A panic while it is held leaves it consistent (every
/// critical section is a push, a pop or a take), so poisoning is ignored.
fn lock(registry: &Mutex<Registry>) -> crate::sync::atomic::MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::epoch;
    use crate::table::entry::{self, Pending};
    use crate::table::retire::RetireBatch;

    /// A shard's destruction racing the deferred free of one of its retire
    /// batches, run by another thread's collection: the item is freed exactly
    /// once, and never into the slab after its chunks were given back (a free
    /// after `destroy` would leave a block on a class's stack, which `destroy`
    /// emptied).
    #[test]
    fn destroy_racing_a_deferred_free() {
        loom::model(|| {
            let memory = Arc::new(ShardMemory::new());
            let pending = Pending::new(memory.slab(), b"k", b"v", Default::default()).unwrap();
            // SAFETY: this thread is the slab's only user here.
            let entry = unsafe { pending.finish() }.unwrap().into_raw();
            let mut batch = RetireBatch::default();
            // SAFETY: the entry is live.
            batch.push(entry, unsafe { entry::footprint(entry) });
            let (entries, bytes) = batch.take();
            {
                let guard = epoch::pin();
                // SAFETY: the entry was never linked anywhere; made with this slab.
                unsafe { memory.defer(&guard, Garbage::Entries(entries), bytes) };
                guard.flush();
            }
            let collector = loom::thread::spawn(|| {
                for _ in 0..3 {
                    epoch::pin().flush();
                }
            });
            // SAFETY: nothing links the entry; no allocation runs.
            unsafe { memory.destroy() };
            collector.join().unwrap();
            assert_eq!(memory.garbage(), 0);
            assert!(
                !memory.slab().has_returned_blocks(),
                "a deferred free pushed a block into the slab after its chunks were freed"
            );
        });
    }
}
