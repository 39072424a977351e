//! A shard: one table behind an epoch-protected pointer, the write flag of
//! concurrent mode, and the entry count. Every method that changes the table is
//! a method of [`Writing`], the proof that the caller holds the flag that
//! serialises this shard's writers, bound to the shard.
//!
//! Growth: the writer that finds its shard over the load factor (or with too many
//! overflow buckets since the last build) builds the next table with the rehash
//! engine, publishes it with one Release swap and retires the old one through the
//! epoch. Readers on the old table keep reading a complete old table; no reader
//! ever sees a half-moved bucket.
//!
//! Reclamation backpressure: retired entries wait for the epoch to pass before
//! they are freed. A reader preempted while pinned holds the epoch back for a
//! whole time slice, and a fast writer can retire megabytes meanwhile. So each
//! shard counts its retired-but-unfreed bytes, and a writer that finds them over
//! half the shard's live bytes (at least [`GARBAGE_FLOOR`]) helps the epoch along
//! and yields to the pinned threads before it returns, which bounds memory at
//! about 1.5x the live data while pinned readers keep making progress. A pin
//! that lasts longer than the writers' patience (20 ms, see `relieve_garbage`)
//! is not waited out: memory then grows by one budget per 20 ms stall instead.

use std::cell::UnsafeCell;
use std::sync::Arc;

use crossbeam_epoch::{Atomic, Guard, Owned, Shared};

use crate::cache::bounds::{self, Bounds};
use crate::cache::read_buffer::{Hit, Pushed};
use crate::cache::stats::ShardCounters;
use crate::clock::Clock;
use crate::error::Result;
use crate::hash::KeyHash;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::epoch;
use crate::sync::write_flag::{FlagGuard, Waiters, WriteFlag};
use crate::table::bucket::Bucket;
use crate::table::entry::{self, Entry, OwnedEntry, Pending};
use crate::table::reclaim::{Garbage, ShardMemory};
use crate::table::rehash::RehashEngine;
use crate::table::retire::RetireBatch;
use crate::table::slab::Slab;
use crate::table::table::{self, Slot, Table, MAX_LOG2};

/// What a writer needs beyond its shard: the rehash engine and counters to grow
/// it, and the clock to tell expired entries.
pub(crate) struct Growth<'a> {
    pub(crate) engine: &'a dyn RehashEngine,
    pub(crate) grows: &'a std::sync::atomic::AtomicU64,
    pub(crate) rebuilds: &'a std::sync::atomic::AtomicU64,
    pub(crate) clock: &'a Clock,
}

impl Growth<'_> {
    /// Whether the (live) entry has expired now.
    ///
    /// # Safety
    /// `entry` is live (linked in the table whose flag the caller holds).
    #[inline]
    unsafe fn expired(&self, entry: *const Entry) -> bool {
        // SAFETY: forwarded contract.
        unsafe { entry::expired(entry, || self.clock.now_nanos()) }
    }
}

/// A shard (see the module docs), in two halves on separate cache lines: what
/// every lookup reads (written only when the table is replaced), then what every
/// write changes (the flag, the counts). A put on one core then does not evict
/// the read half from the other cores' caches; with the two mixed, a 2-thread
/// 90/10 mix made most lookups after a put on their shard wait for the line to
/// come back. Aligned to 128 bytes, the size of an adjacent-line prefetch pair.
#[repr(C, align(128))]
pub(crate) struct Shard {
    // The read half.
    /// The current table; never null while the map is alive.
    table: Atomic<Table>,
    /// Where the current table's bucket array starts, and its index mask: a hint
    /// (possibly stale, never dereferenced) that lets a reader start fetching its
    /// bucket before it pins (see `prefetch`).
    bucket_hint: std::sync::atomic::AtomicPtr<Bucket>,
    mask_hint: std::sync::atomic::AtomicU32,
    /// The slab of the shard's small entries and the count of its retired bytes:
    /// shared with the deferred frees, which may run after the map is gone.
    memory: Arc<ShardMemory>,
    /// A bounded cache's budgets, policy and hit buffer; `None` in an unbounded
    /// map (whose readers then skip the policy entirely).
    bounds: Option<Box<Bounds>>,
    /// Starts the write half on a 128-byte boundary of its own.
    _split: HalfSplit,
    // The write half.
    /// Serialises this shard's writers in concurrent mode.
    pub(crate) flag: WriteFlag,
    /// Entries in the table. Written only under the flag.
    len: AtomicUsize,
    /// Bytes of the entries in the table. Written only under the flag.
    bytes: AtomicUsize,
    /// Garbage below this never makes a writer wait: the floor, raised to the
    /// current garbage while the epoch cannot advance (see `relieve_garbage`).
    garbage_limit: std::sync::atomic::AtomicUsize,
    /// Entries unlinked by writers, not yet handed to the epoch (see
    /// `retire.rs`). Touched only under the flag, or by `destroy`.
    retiring: UnsafeCell<RetireBatch>,
    /// Write events for the statistics (see `cache/stats.rs`).
    counters: ShardCounters,
    /// Entries in the table with a deadline: the expiry sweep runs only while
    /// there are some. Written only under the flag.
    expiring: AtomicUsize,
    /// The chain the expiry sweep visits next. Written only under the flag.
    sweep_hand: AtomicUsize,
    /// Starts the waiters' line pair (the write half is full).
    _waiters_split: HalfSplit,
    /// Writers waiting for `flag` (`Shard::lock_flag`), whom a live snapshot
    /// load lets in between its chunks. Written only by writers that wait.
    pub(crate) waiters: Waiters,
}

// SAFETY: every field but `retiring` is Sync; `retiring` is touched only by the
// thread holding the flag that serialises the shard's writers (or by `destroy`,
// which has `&mut self`), and the entries it points to are plain bytes.
unsafe impl Sync for Shard {}
// SAFETY: as for Sync: the batch's entries belong to the shard.
unsafe impl Send for Shard {}

/// A zero-sized field whose alignment puts the next field of a `repr(C)` struct
/// on a 128-byte boundary.
#[repr(align(128))]
struct HalfSplit;

/// Frees the table and its entries, and what the epoch still holds for the
/// shard: a dropped shard is unreachable (its map is being dropped, or was never
/// shared because `Map::new` failed after making it), so nothing waits for the
/// epoch.
impl Drop for Shard {
    fn drop(&mut self) {
        // SAFETY: `&mut self`, and nobody else can reach a dropped shard, so an
        // unprotected guard is sound and the table is ours alone.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let table = self.table.swap(Shared::null(), Ordering::Relaxed, guard);
            if !table.is_null() {
                let table = table.into_owned();
                // Its small entries go with the slab's chunks, below.
                table.free_large_entries();
            }
            // Entries retired but not yet handed to the epoch: unreachable too.
            self.retiring.get_mut().free_large();
            // And what the epoch still holds, with the slab's chunks: so that a
            // dropped map returns its memory now, not when other threads next
            // collect their deferred frees (see `reclaim.rs`).
            self.memory.destroy();
        }
    }
}

/// The table a (non-null) `Shared` points to, for the garbage registry.
fn table_ptr(table: Shared<'_, Table>) -> std::ptr::NonNull<Table> {
    std::ptr::NonNull::new(table.as_raw().cast_mut()).expect("a shard's table is never null")
}

/// What [`Writing::locate_live`] found.
enum Located<'g> {
    /// The key's live entry, in `bucket`'s slot `index` of the chain at `head`
    /// of `table`.
    Live {
        table: &'g Table,
        head: &'g Bucket,
        bucket: &'g Bucket,
        index: usize,
        current: *mut Entry,
    },
    /// No live entry: where to add one.
    Vacant {
        table: &'g Table,
        free: Option<(&'g Bucket, usize)>,
        tail: &'g Bucket,
    },
}

/// Why an entry leaves the table (which statistic counts it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Removal {
    Deleted,
    Expired,
    Evicted,
    /// Chosen by the policy, but expired already: counted as an expiration.
    ExpiredVictim,
}

/// What [`Shard::relieve_garbage`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relief {
    /// The garbage was within its limit.
    NotNeeded,
    /// Over the limit, but the writer is pinned itself: it did not wait.
    Pinned,
    /// The writer waited until the garbage was back within budget.
    Relieved,
    /// The writer waited `RELIEF_PATIENCE` in vain and raised the limit.
    GaveUp,
}

/// Retired bytes a shard may always hold before its writers help reclaim them.
pub(crate) const GARBAGE_FLOOR: usize = 64 * 1024;

/// How long a writer keeps helping before it concludes that a pin is stuck. A
/// reader preempted while pinned normally runs again within a few scheduler
/// time slices (a few ms each); a pin held longer than this is treated as stuck.
const RELIEF_PATIENCE: std::time::Duration = std::time::Duration::from_millis(20);

impl Shard {
    pub(crate) fn new(log2: u32, bounds: Option<Bounds>) -> Result<Shard> {
        let table = Table::new(log2)?;
        Ok(Shard {
            bounds: bounds.map(Box::new),
            expiring: AtomicUsize::new(0),
            sweep_hand: AtomicUsize::new(0),
            bucket_hint: std::sync::atomic::AtomicPtr::new(table.buckets().as_ptr().cast_mut()),
            mask_hint: std::sync::atomic::AtomicU32::new(table.mask()),
            table: Atomic::new(table),
            flag: WriteFlag::new(),
            len: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            memory: Arc::new(ShardMemory::new()),
            _split: HalfSplit,
            garbage_limit: std::sync::atomic::AtomicUsize::new(GARBAGE_FLOOR),
            retiring: UnsafeCell::new(RetireBatch::default()),
            counters: ShardCounters::default(),
            _waiters_split: HalfSplit,
            waiters: Waiters::new(),
        })
    }

    /// Takes this shard's write flag for `me` (concurrent mode), counted among
    /// its waiters while it waits, so that a live snapshot load lets it in
    /// between chunks.
    #[inline]
    pub(crate) fn lock_flag(&self, me: crate::sync::thread_id::ThreadId) -> FlagGuard<'_> {
        self.flag.lock_counted(me, &self.waiters)
    }

    /// Adds `delta` bytes to the live count (writer only).
    fn add_bytes(&self, added: usize, removed: usize) {
        let bytes = self.bytes.load(Ordering::Relaxed);
        self.bytes.store(bytes + added - removed, Ordering::Relaxed);
    }

    /// Bytes of the entries in the shard.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Retired bytes not yet freed.
    pub(crate) fn garbage(&self) -> usize {
        self.memory.garbage()
    }

    /// The slab this shard's small entries come from (see [`Pending`]).
    #[inline]
    pub(crate) fn slab(&self) -> &Slab {
        self.memory.slab()
    }

    /// Called by a writer after it released the flag and dropped its own pin: if
    /// the shard's garbage is over budget, help the epoch advance (and let pinned
    /// threads run) until it is not. A pin that lasts (a long `get_with` closure,
    /// a stopped thread) can keep garbage alive indefinitely; after
    /// `RELIEF_PATIENCE` the limit is raised to the garbage present plus a
    /// budget, so that writers stop waiting until another budget has piled up,
    /// and it is lowered again once relief works.
    ///
    /// A writer that is still pinned further up its stack (a write from inside
    /// a read callback, or while a `Pinned` view lives) never waits: its own pin
    /// holds the epoch back, so waiting could only run into the patience limit,
    /// stall the shard's other writers meanwhile, and raise the limit for all of
    /// them. It leaves the garbage to the next unpinned write.
    #[inline]
    pub(crate) fn relieve_garbage(&self) -> Relief {
        if cfg!(loom) {
            return Relief::NotNeeded;
        }
        let limit = self
            .garbage_limit
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(self.bytes() / 2);
        if self.garbage() <= limit {
            return Relief::NotNeeded;
        }
        if epoch::is_pinned() {
            return Relief::Pinned;
        }
        self.relieve_garbage_slow()
    }

    #[cold]
    fn relieve_garbage_slow(&self) -> Relief {
        let budget = GARBAGE_FLOOR.max(self.bytes() / 2);
        let deadline = std::time::Instant::now() + RELIEF_PATIENCE;
        let mut attempt = 0u32;
        loop {
            epoch::pin().flush();
            if self.garbage() <= budget {
                self.garbage_limit
                    .store(GARBAGE_FLOOR, std::sync::atomic::Ordering::Relaxed);
                return Relief::Relieved;
            }
            attempt += 1;
            if attempt < 8 {
                std::hint::spin_loop();
            } else if std::time::Instant::now() < deadline {
                std::thread::yield_now();
            } else {
                break;
            }
        }
        self.garbage_limit.store(
            self.garbage() + budget,
            std::sync::atomic::Ordering::Relaxed,
        );
        Relief::GaveUp
    }

    /// Starts fetching the bucket that holds `hash`, before the caller pins.
    ///
    /// Pinning executes a full fence, which on x86 holds back every later load
    /// until it completes, so back-to-back lookups could not overlap their cache
    /// misses. A prefetch is not ordered by fences and never faults, so issuing it
    /// from the hint (which may name a table that was just retired, or even
    /// freed: harmless for a prefetch) lets the bucket's miss overlap the fence
    /// and the previous lookup's misses.
    #[inline]
    pub(crate) fn prefetch(&self, hash: KeyHash) {
        let buckets = self.bucket_hint.load(std::sync::atomic::Ordering::Relaxed);
        let mask = self.mask_hint.load(std::sync::atomic::Ordering::Relaxed);
        let bucket = buckets.wrapping_add((hash.frag() & mask) as usize);
        crate::table::bucket::prefetch(bucket);
    }

    /// Points the prefetch hint at `table` (writer only).
    fn set_hint(&self, table: &Table) {
        self.bucket_hint.store(
            table.buckets().as_ptr().cast_mut(),
            std::sync::atomic::Ordering::Relaxed,
        );
        self.mask_hint
            .store(table.mask(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The current table, valid while `guard` is pinned.
    #[inline]
    pub(crate) fn table<'g>(&self, guard: &'g Guard) -> &'g Table {
        let table = self.table.load(Ordering::Acquire, guard);
        // SAFETY: the pointer is never null while the map lives (it is swapped,
        // never cleared, until drop), and the table it points to is retired through
        // the epoch, so it outlives the pin.
        unsafe { table.deref() }
    }

    /// Entries in the shard.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The shard's write events.
    pub(crate) fn counters(&self) -> &ShardCounters {
        &self.counters
    }

    /// Bytes the shard's entries are charged against a byte bound (see
    /// `cache/bounds.rs`).
    pub(crate) fn charged_bytes(&self) -> usize {
        self.bytes()
            + self.len() * (bounds::SLOT_SHARE + crate::cache::policy::Policy::bytes_per_entry())
    }

    /// The shard's bounds, if it is a bounded cache's.
    #[inline]
    pub(crate) fn bounds(&self) -> Option<&Bounds> {
        self.bounds.as_deref()
    }

    /// Records a reader's hit on `entry` (found for `hash`) for the eviction
    /// policy. `Pushed::Full` asks the caller to drain the buffer if it can take
    /// the flag without waiting.
    ///
    /// # Safety
    /// `entry` is live (the caller is pinned).
    #[inline]
    pub(crate) unsafe fn note_hit(&self, hash: KeyHash, entry: *const Entry) -> Pushed {
        let Some(bounds) = self.bounds() else {
            return Pushed::Recorded;
        };
        // SAFETY: forwarded contract.
        let Some(node) = (unsafe { entry::node(entry) }) else {
            return Pushed::Recorded;
        };
        bounds.reads.push(
            crate::sync::thread_id::stripe(),
            Hit {
                node,
                frag: hash.frag(),
            },
        )
    }
}

/// Proof that the caller holds the flag that serialises a shard's writers (the
/// shard's own in concurrent mode, the map's in exclusive mode), bound to that
/// shard. The write methods are its methods: they take the shard from the proof,
/// so a flag held for one shard can never license a write to another (whose
/// slab and retire batch would then be touched by two threads at once).
pub(crate) struct Writing<'a> {
    shard: &'a Shard,
    _held: &'a FlagGuard<'a>,
}

impl<'a> Writing<'a> {
    /// The proof for `shard`.
    ///
    /// # Safety
    /// `held` guards the flag that serialises `shard`'s writers under its map's
    /// mode: every other writer of `shard` takes the same flag.
    #[inline]
    pub(crate) unsafe fn new(shard: &'a Shard, held: &'a FlagGuard<'a>) -> Writing<'a> {
        Writing { shard, _held: held }
    }
}

impl std::ops::Deref for Writing<'_> {
    type Target = Shard;

    #[inline]
    fn deref(&self) -> &Shard {
        self.shard
    }
}

impl Writing<'_> {
    /// Retires an entry that no table links any more: into the shard's retire
    /// batch, which goes to the epoch when full (see `retire.rs`).
    ///
    /// # Safety
    /// `entry` was unlinked from the current table by the caller, who holds the
    /// flag, so that no reader pinning after this call can reach it.
    unsafe fn retire(&self, guard: &Guard, entry: *mut Entry) {
        // SAFETY: the entry is live until the deferred free.
        let size = unsafe { entry::footprint(entry) };
        // SAFETY: the caller holds the flag, so this thread alone touches the batch.
        let batch = unsafe { &mut *self.retiring.get() };
        if !batch.push(entry, size) {
            return;
        }
        let (entries, bytes) = batch.take();
        // SAFETY: per the contract each entry of the batch was unlinked under the
        // flag before now, so pins taken from now on cannot reach it. They were
        // made with this shard's slab.
        unsafe { self.memory.defer(guard, Garbage::Entries(entries), bytes) };
    }

    /// The policy of a bounded shard.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    fn policy(&self) -> Option<&mut crate::cache::policy::Policy> {
        // SAFETY: `self` proves the flag is held; each caller uses the reference
        // within one statement or block and never holds two.
        self.bounds().map(|bounds| unsafe { bounds.policy() })
    }

    /// Replays the readers' recorded hits into the policy.
    #[inline]
    pub(crate) fn drain_reads(&self) {
        self.drain_reads_if(false);
    }

    /// Replays the readers' recorded hits even when the buffer's `pending`
    /// bit is clear: for a reader whose stripe is full, which proves there is
    /// something to replay (the bit can be clear then: see `read_buffer.rs`).
    pub(crate) fn drain_reads_forced(&self) {
        self.drain_reads_if(true);
    }

    #[inline]
    fn drain_reads_if(&self, forced: bool) {
        let Some(bounds) = self.bounds() else {
            return;
        };
        if !forced && !bounds.reads.is_pending() {
            return;
        }
        // SAFETY: `self` proves the flag is held.
        let policy = unsafe { bounds.policy() };
        // In batches: every node and sketch block of a batch is fetched before
        // any is touched, so that the batch's cache misses overlap instead of
        // following one another (each replayed hit misses on them once the
        // policy outgrows the CPU's caches).
        const BATCH: usize = 16;
        let mut batch = [Hit { node: 0, frag: 0 }; BATCH];
        let mut held = 0;
        let replay = |policy: &mut crate::cache::policy::Policy, hits: &[Hit]| {
            for hit in hits {
                policy.prefetch(hit.node, hit.frag);
            }
            for hit in hits {
                policy.on_hit(hit.node, hit.frag);
            }
        };
        bounds.reads.drain(|hit| {
            if held == BATCH {
                replay(policy, &batch);
                held = 0;
            }
            batch[held] = hit;
            held += 1;
        });
        replay(policy, &batch[..held]);
    }

    /// Makes a pending entry, from the shard's slab if it is small.
    #[inline]
    pub(crate) fn make_entry<'a>(&self, pending: Pending<'a>) -> Result<OwnedEntry<'a>> {
        // An entry of another shard's slab would be allocated from, or later
        // freed into, a slab whose flag this writer does not hold.
        assert!(
            std::ptr::eq(pending.slab(), self.slab()),
            "an entry prepared for another shard"
        );
        // SAFETY: `self` proves that the caller holds the flag that serialises
        // this shard's writers, whose slab `pending` uses (checked above).
        unsafe { pending.finish() }
    }

    /// Finds `key`'s live entry, or the vacancy for it: the first step of
    /// every write. An expired entry is taken out (as an expiration) and the
    /// key located again, so that no write ever sees one.
    fn locate_live<'g>(
        &self,
        growth: &Growth<'_>,
        hash: KeyHash,
        key: &[u8],
        guard: &'g Guard,
    ) -> Located<'g> {
        let table = self.table(guard);
        match table.locate(hash, key) {
            Slot::Found {
                head,
                bucket,
                index,
            } => {
                let current = bucket.slots[index].load(Ordering::Relaxed);
                // SAFETY: linked entries are live while the flag is held.
                if !unsafe { growth.expired(current) } {
                    return Located::Live {
                        table,
                        head,
                        bucket,
                        index,
                        current,
                    };
                }
                self.take_out(table, head, bucket, index, Removal::Expired, guard);
                match table.locate(hash, key) {
                    Slot::Vacant { free, tail } => Located::Vacant { table, free, tail },
                    Slot::Found { .. } => unreachable!("the key was just taken out"),
                }
            }
            Slot::Vacant { free, tail } => Located::Vacant { table, free, tail },
        }
    }

    /// Inserts or replaces; `Ok(true)` when it replaced a live value.
    pub(crate) fn upsert(
        &self,
        growth: &Growth<'_>,
        hash: KeyHash,
        key: &[u8],
        new: OwnedEntry<'_>,
        guard: &Guard,
    ) -> Result<bool> {
        self.drain_reads();
        let replaced = match self.locate_live(growth, hash, key, guard) {
            Located::Live {
                table,
                bucket,
                index,
                ..
            } => {
                self.replace(table, bucket, index, new, guard);
                true
            }
            Located::Vacant { table, free, tail } => {
                self.add(growth, table, free, tail, hash, key, new, guard)?;
                false
            }
        };
        self.maintain(growth, guard);
        Ok(replaced)
    }

    /// Inserts when absent (`Ok(None)`); otherwise drops `new` and returns the
    /// present entry, live while `guard` is pinned (the caller copies its value
    /// after releasing the flag). An expired entry is absent.
    pub(crate) fn insert_if_absent(
        &self,
        growth: &Growth<'_>,
        hash: KeyHash,
        key: &[u8],
        new: OwnedEntry<'_>,
        guard: &Guard,
    ) -> Result<Option<*const Entry>> {
        self.drain_reads();
        let present = match self.locate_live(growth, hash, key, guard) {
            Located::Live { current, .. } => Some(current.cast_const()),
            Located::Vacant { table, free, tail } => {
                self.add(growth, table, free, tail, hash, key, new, guard)?;
                None
            }
        };
        self.maintain(growth, guard);
        Ok(present)
    }

    /// Replaces the value with `new` if it equals `expected`: `Some(true)` when
    /// swapped, `Some(false)` when it differed, `None` when the key is absent
    /// (or expired: then the expired entry is removed).
    pub(crate) fn compare_and_swap(
        &self,
        growth: &Growth<'_>,
        hash: KeyHash,
        key: &[u8],
        expected: &[u8],
        new: OwnedEntry<'_>,
        guard: &Guard,
    ) -> Option<bool> {
        self.drain_reads();
        let Located::Live {
            table,
            bucket,
            index,
            current,
            ..
        } = self.locate_live(growth, hash, key, guard)
        else {
            return None;
        };
        // SAFETY: linked entries are live while the flag is held.
        if unsafe { entry::value(current) } != expected {
            return Some(false);
        }
        self.replace(table, bucket, index, new, guard);
        self.maintain(growth, guard);
        Some(true)
    }

    /// Publishes `new` in the occupied slot `index` of `bucket` and retires the
    /// entry it replaces (an update: the key keeps its policy node). Flag held.
    fn replace(
        &self,
        table: &Table,
        bucket: &Bucket,
        index: usize,
        mut new: OwnedEntry<'_>,
        guard: &Guard,
    ) {
        let old = bucket.slots[index].load(Ordering::Relaxed);
        // SAFETY: linked entries are live while the flag is held; `new` is ours.
        let (old_size, new_size) =
            unsafe { (entry::footprint(old), entry::footprint(new.as_ptr())) };
        if let Some(bounds) = self.bounds() {
            // SAFETY: as above.
            if let Some(node) = unsafe { entry::node(old) } {
                new.set_node(node);
                // SAFETY: `self` proves the flag is held.
                unsafe { bounds.policy() }.on_update(node, bounds.weight(new_size));
            }
        }
        // SAFETY: as above.
        let (old_expires, new_expires) = unsafe {
            (
                entry::deadline(old).is_some(),
                entry::deadline(new.as_ptr()).is_some(),
            )
        };
        table.replace_slot(bucket, index, new.into_raw());
        self.add_bytes(new_size, old_size);
        self.count_expiring(new_expires, old_expires);
        ShardCounters::bump(&self.counters.updates, 1);
        // SAFETY: `old` was just unlinked under the flag.
        unsafe { self.retire(guard, old) };
    }

    /// Removes the key; `true` when it was present (an expired entry is removed
    /// too, as an expiration, and reported absent).
    pub(crate) fn remove(
        &self,
        growth: &Growth<'_>,
        hash: KeyHash,
        key: &[u8],
        guard: &Guard,
    ) -> bool {
        self.drain_reads();
        let Located::Live {
            head,
            bucket,
            index,
            ..
        } = self.locate_live(growth, hash, key, guard)
        else {
            return false;
        };
        self.take_out(
            self.table(guard),
            head,
            bucket,
            index,
            Removal::Deleted,
            guard,
        );
        true
    }

    /// Removes `key`'s entry if it has expired (the lazy reclamation of a reader
    /// that found it so).
    pub(crate) fn remove_if_expired(
        &self,
        hash: KeyHash,
        key: &[u8],
        clock: &Clock,
        guard: &Guard,
    ) {
        let table = self.table(guard);
        if let Slot::Found {
            head,
            bucket,
            index,
        } = table.locate(hash, key)
        {
            let current = bucket.slots[index].load(Ordering::Relaxed);
            // SAFETY: linked entries are live while the flag is held.
            if unsafe { entry::expired(current, || clock.now_nanos()) } {
                self.take_out(table, head, bucket, index, Removal::Expired, guard);
            }
        }
    }

    /// Unlinks the entry in `bucket`'s slot `index`, settles its accounts (the
    /// counts, the policy, the statistic `why` names) and retires it.
    fn take_out(
        &self,
        table: &Table,
        head: &Bucket,
        bucket: &Bucket,
        index: usize,
        why: Removal,
        guard: &Guard,
    ) {
        let old = table.unlink(head, bucket, index);
        // SAFETY: `old` is live until retired below.
        let (size, expires, node) = unsafe {
            (
                entry::footprint(old),
                entry::deadline(old).is_some(),
                entry::node(old),
            )
        };
        self.add_bytes(0, size);
        self.count_expiring(false, expires);
        self.len.store(self.len() - 1, Ordering::Relaxed);
        let counter = match why {
            Removal::Deleted => &self.counters.deletes,
            Removal::Expired => &self.counters.expirations,
            Removal::Evicted => &self.counters.evictions,
            Removal::ExpiredVictim => &self.counters.expirations,
        };
        ShardCounters::bump(counter, 1);
        // An evicted entry's node was removed by the policy that chose it.
        if !matches!(why, Removal::Evicted | Removal::ExpiredVictim) {
            if let (Some(policy), Some(node)) = (self.policy(), node) {
                policy.on_remove(node);
            }
        }
        // SAFETY: `old` was just unlinked under the flag.
        unsafe { self.retire(guard, old) };
    }

    /// Adjusts the count of entries with a deadline.
    #[inline]
    fn count_expiring(&self, added: bool, removed: bool) {
        if added != removed {
            let n = self.expiring.load(Ordering::Relaxed);
            self.expiring
                .store(if added { n + 1 } else { n - 1 }, Ordering::Relaxed);
        }
    }

    /// After a write: evict until the shard is within its bounds, and sweep one
    /// chain for expired entries.
    fn maintain(&self, growth: &Growth<'_>, guard: &Guard) {
        // The sweep first: an expired entry it removes is room the policy
        // then need not make by evicting a live one.
        self.sweep(growth, guard);
        if let Some(bounds) = self.bounds() {
            while bounds.over(self.len(), self.charged_bytes()) {
                // SAFETY: `self` proves the flag is held; the reference ends
                // with this statement.
                let Some(victim) = (unsafe { bounds.policy() }).evict() else {
                    break;
                };
                let table = self.table(guard);
                let Some((head, bucket, index)) = table.locate_node(victim.frag, victim.node)
                else {
                    debug_assert!(
                        false,
                        "the policy chose node {} that no entry has",
                        victim.node
                    );
                    continue;
                };
                let entry = bucket.slots[index].load(Ordering::Relaxed);
                // SAFETY: linked entries are live while the flag is held.
                let expired = unsafe { growth.expired(entry) };
                // A victim that had expired leaves as an expiration (the
                // policy has freed its node either way).
                let why = if expired {
                    Removal::ExpiredVictim
                } else {
                    Removal::Evicted
                };
                self.take_out(table, head, bucket, index, why, guard);
                // SAFETY: as above.
                debug_assert_eq!(unsafe { bounds.policy() }.len(), self.len());
                if victim.rejected && !expired {
                    ShardCounters::bump(&self.counters.rejections, 1);
                }
            }
        }
    }

    /// Removes the expired entries of the next chain, while the shard has
    /// entries with a deadline: one chain per write, so that every chain is
    /// visited once per `2^log2` writes.
    fn sweep(&self, growth: &Growth<'_>, guard: &Guard) {
        if self.expiring.load(Ordering::Relaxed) == 0 {
            return;
        }
        let table = self.table(guard);
        let hand = self.sweep_hand.load(Ordering::Relaxed);
        self.sweep_hand
            .store(hand.wrapping_add(1), Ordering::Relaxed);
        let now = growth.clock.now_nanos();
        table.for_each_in_chain(hand, |head, bucket, index, entry| {
            // SAFETY: linked entries are live while the flag is held.
            if unsafe { entry::expired(entry, || now) } {
                self.take_out(table, head, bucket, index, Removal::Expired, guard);
            }
        });
    }

    /// Replaces the table with an empty one of `2^log2` buckets.
    pub(crate) fn clear(&self, log2: u32, guard: &Guard) -> Result<()> {
        let fresh = Owned::new(Table::new(log2)?).into_shared(guard);
        let old = self.table.swap(fresh, Ordering::AcqRel, guard);
        // SAFETY: just published; retired only by a later writer, after `guard`.
        self.set_hint(unsafe { fresh.deref() });
        ShardCounters::bump(&self.counters.deletes, self.len() as u64);
        self.len.store(0, Ordering::Relaxed);
        self.expiring.store(0, Ordering::Relaxed);
        if let Some(bounds) = self.bounds() {
            // Hits recorded before the clear name nodes that are gone.
            bounds.reads.drain(|_| {});
            // SAFETY: `self` proves the flag is held.
            unsafe { bounds.policy() }.clear();
        }
        let size = self.bytes();
        self.bytes.store(0, Ordering::Relaxed);
        // SAFETY: the old table was unlinked under the flag (pins taken from now
        // on cannot reach it); it alone links its entries, made with this
        // shard's slab.
        unsafe {
            self.memory
                .defer(guard, Garbage::Cleared(table_ptr(old)), size)
        };
        guard.flush();
        Ok(())
    }

    /// Adds a new key at a vacancy, growing or rebuilding the table first when due.
    #[allow(clippy::too_many_arguments)]
    fn add<'g>(
        &self,
        growth: &Growth<'_>,
        mut table: &'g Table,
        mut free: Option<(&'g Bucket, usize)>,
        mut tail: &'g Bucket,
        hash: KeyHash,
        key: &[u8],
        mut new: OwnedEntry<'_>,
        guard: &'g Guard,
    ) -> Result<()> {
        let len = self.len();
        let log2 = table.log2();
        let next_log2 = if table::over_load(len + 1, log2) && log2 < MAX_LOG2 {
            Some(log2 + 1)
        } else if table::too_many_overflow(table.extra_overflow(), log2) {
            Some(log2)
        } else {
            None
        };
        if let Some(next_log2) = next_log2 {
            table = self.publish_rehash(growth, table, next_log2, guard)?;
            match table.locate(hash, key) {
                Slot::Vacant { free: f, tail: t } => (free, tail) = (f, t),
                Slot::Found { .. } => unreachable!("the key was absent before the rehash"),
            }
        }
        // SAFETY: `new` is ours.
        let (size, expires) = unsafe {
            (
                entry::footprint(new.as_ptr()),
                entry::deadline(new.as_ptr()).is_some(),
            )
        };
        if let Some(bounds) = self.bounds() {
            // SAFETY: `self` proves the flag is held.
            let node = unsafe { bounds.policy() }.on_insert(hash.frag(), bounds.weight(size));
            new.set_node(node);
        }
        let new = new.into_raw();
        table.place(free, tail, hash, new);
        self.len.store(len + 1, Ordering::Relaxed);
        self.add_bytes(size, 0);
        self.count_expiring(expires, false);
        ShardCounters::bump(&self.counters.inserts, 1);
        Ok(())
    }

    /// Fills an empty shard of an unbounded map in one go (a snapshot load):
    /// builds a table for `entries` with the rehash's count, lay-out and fill
    /// over the flat array ([`crate::table::rehash::build_flat`]), instead of
    /// inserting them one by one, publishes it and retires the empty one. Of
    /// two entries of one key the later stays (the earlier is freed). Returns
    /// the entries held.
    ///
    /// # Safety
    /// The entries were made with this shard's slab ([`Writing::make_entry`]),
    /// are distinct, unpublished, and owned by the caller. On `Ok` the shard
    /// owns them all (the caller must forget them); on `Err` nothing changed
    /// and the caller still owns them.
    pub(crate) unsafe fn fill_empty(
        &self,
        entries: &[(KeyHash, *mut Entry)],
        guard: &Guard,
    ) -> Result<usize> {
        assert!(
            self.len() == 0 && self.bounds().is_none(),
            "fill_empty is for an empty shard of an unbounded map"
        );
        let old = self.table(guard);
        let log2 = old.log2().max(table::log2_for(entries.len()));
        let placed: Vec<_> = entries
            .iter()
            .map(|&(hash, entry)| crate::table::rehash::Placed {
                frag: hash.frag(),
                tophash: hash.tophash(),
                entry,
            })
            .collect();
        let mut displaced = Vec::new();
        let built = crate::table::rehash::build_flat(&placed, log2, |old| displaced.push(old))?;
        drop(placed);
        displaced.sort_unstable();
        let (mut bytes, mut expiring, mut held) = (0usize, 0usize, 0usize);
        for &(_, entry) in entries {
            if displaced.binary_search(&entry).is_ok() {
                // SAFETY: replaced by a later entry of its key, in no table;
                // made with this shard's slab (the contract).
                unsafe { entry::free(entry, self.slab()) };
                continue;
            }
            // SAFETY: the entry is live, linked only by the unpublished table.
            unsafe {
                bytes += entry::footprint(entry);
                expiring += usize::from(entry::deadline(entry).is_some());
            }
            held += 1;
        }
        let new = Owned::new(built).into_shared(guard);
        let replaced = self.table.swap(new, Ordering::Release, guard);
        // SAFETY: just published; retired only by a later writer, after `guard`.
        self.set_hint(unsafe { new.deref() });
        // SAFETY: the replaced table was unlinked under the flag; it links no
        // entry (the shard was empty), so only its arrays are garbage.
        unsafe {
            self.memory
                .defer(guard, Garbage::Arrays(table_ptr(replaced)), 0)
        };
        self.len.store(held, Ordering::Relaxed);
        self.add_bytes(bytes, 0);
        self.expiring.store(expiring, Ordering::Relaxed);
        ShardCounters::bump(&self.counters.inserts, held as u64);
        Ok(held)
    }

    /// Builds the `2^new_log2` table from `old`, publishes it and retires `old`.
    fn publish_rehash<'g>(
        &self,
        growth: &Growth<'_>,
        old: &'g Table,
        new_log2: u32,
        guard: &'g Guard,
    ) -> Result<&'g Table> {
        let same_size = new_log2 == old.log2();
        let new = Owned::new(growth.engine.rehash(old, new_log2)?).into_shared(guard);
        let old = self.table.swap(new, Ordering::Release, guard);
        // SAFETY: just published; retired only by a later writer, after `guard`.
        self.set_hint(unsafe { new.deref() });
        // SAFETY: the old table was unlinked under the flag (pins taken from now
        // on cannot reach it). Its entries are linked by the new table, so only
        // its arrays are garbage.
        unsafe { self.memory.defer(guard, Garbage::Arrays(table_ptr(old)), 0) };
        // An old table is big: hand it to the global queue now instead of letting
        // it wait in this thread's bag until 63 more deferrals fill it.
        guard.flush();
        let counter = if same_size {
            growth.rebuilds
        } else {
            growth.grows
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `new` was just published and is retired only by a later writer
        // under the flag, through the epoch, which `guard` holds back.
        Ok(unsafe { new.deref() })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Shard, Writing};
    use crate::sync::thread_id;
    use crate::table::entry::Pending;

    #[test]
    #[should_panic(expected = "an entry prepared for another shard")]
    fn a_writer_of_one_shard_cannot_make_an_entry_from_another_shards_slab() {
        let (mine, other) = (Shard::new(0, None).unwrap(), Shard::new(0, None).unwrap());
        let held = mine.flag.lock(thread_id::current());
        // SAFETY: `held` guards `mine`'s own flag.
        let writing = unsafe { Writing::new(&mine, &held) };
        let pending = Pending::new(other.slab(), b"key", b"value", Default::default()).unwrap();
        let _ = writing.make_entry(pending);
    }

    #[test]
    fn the_write_half_starts_on_its_own_128_byte_line_pair() {
        let shard = Shard::new(0, None).unwrap();
        let base = &shard as *const Shard as usize;
        let flag = &shard.flag as *const _ as usize;
        let table = &shard.table as *const _ as usize;
        let waiters = &shard.waiters as *const _ as usize;
        assert_eq!(flag - base, 128);
        assert_eq!(table - base, 0);
        // The write half fills its line pair; the waiters have one of their own.
        assert_eq!(waiters - base, 256);
        assert_eq!(std::mem::size_of::<Shard>(), 384);
    }
}
