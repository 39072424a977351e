//! Rehash engines: build a table of `2^new_log2` buckets from an old one.
//!
//! The result is a pure function of the old table's bucket image and the new
//! size, whichever engine computes it, so engines can be swapped (single thread,
//! parallel CPU, and the GPU plugin, which `crate::gpu` puts in front of the
//! configured CPU engine, falling back to it) and compared byte for byte:
//!
//! 1. **Count.** For each new bucket `j`, count the old entries whose frag maps to
//!    it (`frag & new_mask == j`). The sources of `j` are known without looking:
//!    one old chain when growing (`j & old_mask`), several when shrinking.
//! 2. **Lay out.** New bucket `j` needs `(count - 1) / 8` overflow buckets; a
//!    prefix sum over `j` gives each chain its place in one overflow pool.
//! 3. **Fill.** For each new bucket `j`, copy its entries in source order (old
//!    buckets ascending, chain order, slot order) into slots 0, 1, ... of `j` and
//!    then of its pool buckets. Slots left over stay `EMPTY_REST`.
//!
//! Steps 1 and 3 are independent per new bucket, so the parallel engine splits
//! the new index range into chunks; step 2 is a cheap sequential scan. Entries
//! are never dereferenced: frags and tophash bytes travel with the slots.
//!
//! The new table is private until the caller publishes it with a Release store,
//! so the fill uses Relaxed stores.

use std::ops::Range;

use super::bucket::{self, Bucket, SLOTS};
use super::entry::Entry;
use super::sums::Sums;
use super::table::{BucketArray, Table, CHAIN_AHEAD};
use crate::config::EngineChoice;
use crate::error::Result;
use crate::sync::atomic::Ordering;

/// Old tables at least this large go to the parallel engine under
/// [`EngineChoice::Auto`]: below it, starting threads costs more than it saves.
pub(crate) const PARALLEL_MIN_BUCKETS: usize = 1 << 14;

/// A way to compute the rehash (see the module docs).
pub(crate) trait RehashEngine: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &'static str;
    /// Builds the table of `2^new_log2` buckets holding `src`'s entries.
    fn rehash(&self, src: &Table, new_log2: u32) -> Result<Table>;
}

/// The reference engine: one thread, the whole range.
pub(crate) struct SingleThreaded;

impl RehashEngine for SingleThreaded {
    fn name(&self) -> &'static str {
        "cpu-single"
    }

    fn rehash(&self, src: &Table, new_log2: u32) -> Result<Table> {
        build(src, new_log2, 1)
    }
}

/// The parallel CPU engine: the new index range split over `threads` threads.
pub(crate) struct ParallelCpu {
    threads: usize,
}

impl ParallelCpu {
    /// An engine using every available core (at most 16).
    pub(crate) fn new() -> ParallelCpu {
        let threads = crate::config::cores().min(16);
        ParallelCpu::with_threads(threads)
    }

    pub(crate) fn with_threads(threads: usize) -> ParallelCpu {
        ParallelCpu {
            threads: threads.max(1),
        }
    }
}

impl RehashEngine for ParallelCpu {
    fn name(&self) -> &'static str {
        "cpu-parallel"
    }

    fn rehash(&self, src: &Table, new_log2: u32) -> Result<Table> {
        build(src, new_log2, self.threads)
    }
}

/// Picks the parallel engine for large tables and the single one otherwise.
pub(crate) struct Auto {
    parallel: ParallelCpu,
}

impl RehashEngine for Auto {
    fn name(&self) -> &'static str {
        "auto"
    }

    fn rehash(&self, src: &Table, new_log2: u32) -> Result<Table> {
        if src.buckets().len().max(1 << new_log2) >= PARALLEL_MIN_BUCKETS {
            self.parallel.rehash(src, new_log2)
        } else {
            SingleThreaded.rehash(src, new_log2)
        }
    }
}

/// The engine a config asks for.
pub(crate) fn engine_for(choice: EngineChoice) -> Box<dyn RehashEngine> {
    match choice {
        EngineChoice::Auto => Box::new(Auto {
            parallel: ParallelCpu::new(),
        }),
        EngineChoice::Single => Box::new(SingleThreaded),
        EngineChoice::Parallel => Box::new(ParallelCpu::new()),
    }
}

/// Calls `f(tophash, frag, entry)` for each entry of `src` that belongs in new
/// bucket `j` of a `2^new_log2` table, in the canonical source order.
fn for_each_destined(src: &Table, new_log2: u32, j: usize, mut f: impl FnMut(u8, u32, *mut Entry)) {
    let new_mask = (1u64 << new_log2) - 1;
    let src_log2 = src.log2();
    // Growing (or same size): one source chain. Shrinking: every old bucket
    // congruent to j modulo the new size.
    let (first, count, stride) = if new_log2 >= src_log2 {
        (j & src.mask() as usize, 1, 0)
    } else {
        (j, 1usize << (src_log2 - new_log2), 1usize << new_log2)
    };
    for k in 0..count {
        let mut bucket = Some(&src.buckets()[first + k * stride]);
        while let Some(b) = bucket {
            let word = b.tophash.load(Ordering::Relaxed);
            for index in bucket::occupied(word) {
                let frag = b.frags[index].load(Ordering::Relaxed);
                if frag as u64 & new_mask == j as u64 {
                    f(
                        bucket::byte(word, index),
                        frag,
                        b.slots[index].load(Ordering::Relaxed),
                    );
                }
            }
            bucket = b.next();
        }
    }
}

/// Starts loading the first overflow bucket of new bucket `j`'s (first) source
/// chain, if `j` is a bucket and that chain has one: count and fill walk the
/// source chains in new-bucket order, not through `for_each_chain_bucket`, so
/// they prefetch [`CHAIN_AHEAD`] new buckets on themselves.
#[inline(always)]
fn prefetch_source(src: &Table, new_log2: u32, j: usize) {
    if j >> new_log2 != 0 {
        return;
    }
    let first = if new_log2 >= src.log2() {
        j & src.mask() as usize
    } else {
        j
    };
    src.prefetch_overflow(first);
}

/// Step 1 for the new buckets in `range`: `counts[i]` for bucket `range.start + i`.
fn count(src: &Table, new_log2: u32, range: Range<usize>, counts: &mut [u32]) {
    for (j, count) in range.zip(counts.iter_mut()) {
        prefetch_source(src, new_log2, j + CHAIN_AHEAD);
        for_each_destined(src, new_log2, j, |_, _, _| *count += 1);
    }
}

/// Step 3 for the new buckets in `range`; `starts[i]` is the pool index of the
/// first overflow bucket of new bucket `range.start + i`.
fn fill(
    src: &Table,
    new_log2: u32,
    range: Range<usize>,
    starts: &[usize],
    buckets: &[Bucket],
    pool: &[Bucket],
) {
    for (j, &start) in range.zip(starts.iter()) {
        prefetch_source(src, new_log2, j + CHAIN_AHEAD);
        let mut current = &buckets[j];
        let mut next_pool = start;
        let mut used = 0;
        let mut word = 0u64;
        for_each_destined(src, new_log2, j, |tophash, frag, entry| {
            if used == SLOTS {
                current.tophash.store(word, Ordering::Relaxed);
                let next = &pool[next_pool];
                next_pool += 1;
                current
                    .overflow
                    .store(next as *const Bucket as *mut Bucket, Ordering::Relaxed);
                current = next;
                used = 0;
                word = 0;
            }
            current.frags[used].store(frag, Ordering::Relaxed);
            current.slots[used].store(entry, Ordering::Relaxed);
            word = bucket::with_byte(word, used, tophash);
            used += 1;
        });
        current.tophash.store(word, Ordering::Relaxed);
    }
}

/// Runs `work(chunk_index, range)` over `0..len` split in `threads` chunks, on
/// scoped threads where more than one is asked for. A thread that cannot be
/// started runs its chunk on the caller's thread instead.
fn split<F>(len: usize, threads: usize, work: F)
where
    F: Fn(Range<usize>) + Sync,
{
    let chunk = len.div_ceil(threads.max(1)).max(1);
    if threads <= 1 || len <= chunk || cfg!(loom) {
        return work(0..len);
    }
    crate::sync::scoped::scope("mapcache-rehash", |spawner| {
        let work = &work;
        let mut start = 0;
        while start < len {
            let range = start..(start + chunk).min(len);
            start = range.end;
            let spawned = spawner.spawn({
                let range = range.clone();
                move || work(range)
            });
            if !spawned {
                work(range);
            }
        }
    });
}

/// A shared view of a mutable slice whose chunks are written by different
/// threads, each to its own disjoint range.
struct DisjointChunks<'a, T> {
    ptr: *mut T,
    len: usize,
    _marker: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: only disjoint ranges are handed out (see `range_mut`), so no element is
// shared between threads.
unsafe impl<T: Send> Sync for DisjointChunks<'_, T> {}

impl<'a, T> DisjointChunks<'a, T> {
    fn new(slice: &'a mut [T]) -> Self {
        DisjointChunks {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            _marker: std::marker::PhantomData,
        }
    }

    /// The elements in `range`.
    ///
    /// # Safety
    /// No two live results may overlap (callers pass the disjoint ranges `split`
    /// produces, one per thread).
    #[allow(clippy::mut_from_ref)]
    unsafe fn range_mut(&self, range: Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.len);
        // SAFETY: in bounds (checked above); exclusive per the contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len()) }
    }
}

/// The rehash itself (see the module docs), on `threads` threads.
fn build(src: &Table, new_log2: u32, threads: usize) -> Result<Table> {
    let len = 1usize << new_log2;

    let mut counts = vec![0u32; len];
    {
        let chunks = DisjointChunks::new(&mut counts);
        // SAFETY: `split` hands each call a distinct, non-overlapping range.
        split(len, threads, |range| {
            count(src, new_log2, range.clone(), unsafe {
                chunks.range_mut(range)
            })
        });
    }

    let mut starts = Vec::with_capacity(len);
    let mut pool_len = 0usize;
    for &count in &counts {
        starts.push(pool_len);
        pool_len += (count as usize).saturating_sub(1) / SLOTS;
    }
    drop(counts);

    let buckets = BucketArray::new(len)?;
    let pool = Table::pool(pool_len, new_log2)?;
    split(len, threads, |range| {
        fill(
            src,
            new_log2,
            range.clone(),
            &starts[range],
            buckets.as_slice(),
            pool.accessible(),
        )
    });
    // The same slots, moved: the source's sums.
    Table::with_arrays(new_log2, buckets, pool, pool_len, src.sums())
}

/// An entry headed for a table built from a flat array (see [`build_flat`]).
#[derive(Clone, Copy)]
pub(crate) struct Placed {
    pub(crate) frag: u32,
    pub(crate) tophash: u8,
    pub(crate) entry: *mut Entry,
}

/// How many items ahead [`build_flat`] prefetches the bucket of.
const PLACE_AHEAD: usize = 16;

/// Builds a table of `2^log2` buckets holding `items`, with the rehash's count,
/// lay-out and fill steps run over a flat array instead of an old table (a
/// snapshot load into an empty shard): count the items per bucket, give each
/// chain its overflow buckets in one pool (a prefix sum), link the chains, and
/// place each item in the next free slot of its chain, in array order. No item
/// is looked up: the table is written front to back per chain, with no key
/// comparison, except where a bucket already holds a slot of the same tophash
/// and frag. Those slots' keys are compared, and an item whose key is already
/// placed replaces it (the later item wins), and `replaced(old)` receives the
/// entry it displaced, which the table no longer holds. Returns the table.
///
/// The table is private until the caller publishes it (Relaxed stores).
pub(crate) fn build_flat(
    items: &[Placed],
    log2: u32,
    mut replaced: impl FnMut(*mut Entry),
) -> Result<Table> {
    let len = 1usize << log2;
    let mask = len - 1;
    let mut counts = vec![0u32; len];
    for item in items {
        counts[item.frag as usize & mask] += 1;
    }
    let mut starts = Vec::with_capacity(len);
    let mut pool_len = 0usize;
    for &count in &counts {
        starts.push(pool_len);
        pool_len += (count as usize).saturating_sub(1) / SLOTS;
    }
    let buckets = BucketArray::new(len)?;
    let pool = Table::pool(pool_len, log2)?;
    let (main, extra) = (buckets.as_slice(), pool.accessible());
    // Link each chain: head, then its pool buckets in order.
    for (j, &count) in counts.iter().enumerate() {
        let chain = (count as usize).saturating_sub(1) / SLOTS;
        let mut current = &main[j];
        for next in &extra[starts[j]..starts[j] + chain] {
            current
                .overflow
                .store(next as *const Bucket as *mut Bucket, Ordering::Relaxed);
            current = next;
        }
    }
    // `counts` becomes each chain's fill cursor.
    counts.iter_mut().for_each(|c| *c = 0);
    let mut sums = Sums::default();
    let bucket_at = |j: usize, n: usize| -> &Bucket {
        if n < SLOTS {
            &main[j]
        } else {
            &extra[starts[j] + n / SLOTS - 1]
        }
    };
    for (i, item) in items.iter().enumerate() {
        // The items come in file order, so each lands in a random bucket of
        // an array larger than the caches: fetch the head bucket of the one
        // `PLACE_AHEAD` items on, so that the misses overlap.
        if let Some(ahead) = items.get(i + PLACE_AHEAD) {
            bucket::prefetch(&main[ahead.frag as usize & mask]);
        }
        let j = item.frag as usize & mask;
        let filled = counts[j] as usize;
        // A key placed already (a file naming a key twice): replace it.
        let mut duplicate = None;
        'chain: for n in (0..filled).step_by(SLOTS) {
            let b = bucket_at(j, n);
            let word = b.tophash.load(Ordering::Relaxed);
            for index in bucket::matching(word, item.tophash) {
                if n + index >= filled {
                    break;
                }
                let old = b.slots[index].load(Ordering::Relaxed);
                // SAFETY: the entries being placed are live and owned by the
                // caller, which does not change them while the table is built.
                if b.frags[index].load(Ordering::Relaxed) == item.frag
                    && unsafe { super::entry::key(old) == super::entry::key(item.entry) }
                {
                    duplicate = Some((b, index, old));
                    break 'chain;
                }
            }
        }
        if let Some((b, index, old)) = duplicate {
            b.slots[index].store(item.entry, Ordering::Relaxed);
            sums.slot_sum = sums
                .slot_sum
                .wrapping_sub(old as usize as u64)
                .wrapping_add(item.entry as usize as u64);
            replaced(old);
            continue;
        }
        let b = bucket_at(j, filled);
        let index = filled % SLOTS;
        b.frags[index].store(item.frag, Ordering::Relaxed);
        b.slots[index].store(item.entry, Ordering::Relaxed);
        let word = b.tophash.load(Ordering::Relaxed);
        b.tophash.store(
            bucket::with_byte(word, index, item.tophash),
            Ordering::Relaxed,
        );
        counts[j] += 1;
        sums = sums.with(item.tophash, item.frag, item.entry);
    }
    Table::with_arrays(log2, buckets, pool, pool_len, sums)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::hash::{Hasher, KeyHash};
    use crate::table::entry::OwnedEntry;
    use crate::table::slab::Slab;
    use crate::table::table::Slot;

    /// A table of `log2` buckets with `n` entries from `seed`, built by inserting
    /// one by one (so it has overflow chains and one-by-one overflow buckets).
    fn table_with(log2: u32, n: usize, seed: u64, slab: &Slab) -> Table {
        let hasher = Hasher::new(seed, 0);
        let table = Table::new(log2).unwrap();
        for i in 0..n {
            let key = format!("key-{i}");
            let hash: KeyHash = hasher.hash(key.as_bytes());
            let value = i.to_le_bytes();
            // SAFETY: single-threaded: the only allocator of `slab`.
            let entry = unsafe { OwnedEntry::new(slab, key.as_bytes(), &value) }.unwrap();
            match table.locate(hash, key.as_bytes()) {
                Slot::Vacant { free, tail } => table.place(free, tail, hash, entry.into_raw()),
                Slot::Found { .. } => unreachable!("keys are distinct"),
            }
        }
        table
    }

    fn entries(table: &Table) -> usize {
        let mut n = 0;
        table.for_each_chain_bucket(|_, b| {
            n += bucket::occupied(b.tophash.load(Ordering::Relaxed)).count()
        });
        n
    }

    #[test]
    fn engines_produce_identical_images() {
        for (seed, log2, n) in [
            (1, 0, 7),
            (2, 2, 60),
            (3, 4, 500),
            (4, 8, 4000),
            (5, 10, 9000),
        ] {
            let slab = Slab::new();
            let src = table_with(log2, n, seed, &slab);
            for new_log2 in [log2.saturating_sub(2), log2, log2 + 1, log2 + 3] {
                let single = SingleThreaded.rehash(&src, new_log2).unwrap();
                assert_eq!(entries(&single), n);
                for threads in [2, 3, 8] {
                    let parallel = ParallelCpu::with_threads(threads)
                        .rehash(&src, new_log2)
                        .unwrap();
                    assert_eq!(
                        single.image(),
                        parallel.image(),
                        "seed {seed} {log2}->{new_log2} with {threads} threads"
                    );
                }
            }
            // SAFETY: the rehashed tables are dropped; `src` owns the entries.
            unsafe { src.free_entries(&slab) };
        }
    }

    #[test]
    fn a_flat_build_places_every_entry_where_lookups_find_it_and_keeps_the_later_duplicate() {
        let hasher = Hasher::new(11, 0);
        let slab = Slab::new();
        let mut items = Vec::new();
        // 3000 keys into 2^4 buckets: long chains through the pool.
        for i in 0..3000u32 {
            let key = format!("key-{}", i % 2900);
            let hash = hasher.hash(key.as_bytes());
            let value = i.to_le_bytes();
            // SAFETY: single-threaded: the only allocator of `slab`.
            // Small entries: the slab's drop frees them with its chunks.
            let entry = unsafe { OwnedEntry::new(&slab, key.as_bytes(), &value) }
                .unwrap()
                .into_raw();
            items.push(Placed {
                frag: hash.frag(),
                tophash: hash.tophash(),
                entry,
            });
        }
        let mut displaced = Vec::new();
        let table = build_flat(&items, 4, |old| displaced.push(old)).unwrap();
        assert_eq!(displaced.len(), 100);
        assert_eq!(
            table.sums(),
            table.recount_sums(),
            "the kept sums, duplicates replaced"
        );
        assert_eq!(entries(&table), 2900);
        for i in 0..2900u32 {
            let key = format!("key-{i}");
            let found = table
                .find(hasher.hash(key.as_bytes()), key.as_bytes())
                .unwrap();
            let expected = if i < 100 { i + 2900 } else { i };
            // SAFETY: the entries live until the slab is dropped.
            assert_eq!(
                unsafe { crate::table::entry::value(found) },
                expected.to_le_bytes()
            );
        }
        assert!(table.find(hasher.hash(b"absent"), b"absent").is_none());
        // A lookup's view of the chains: every slot before the last placed one
        // is occupied (the fill never leaves a hole an EMPTY_REST would hide
        // entries behind).
        table.for_each_chain_bucket(|_, b| {
            let word = b.tophash.load(Ordering::Relaxed);
            let occupied = bucket::occupied(word).count();
            assert!(bucket::occupied(word).all(|i| i < occupied));
        });
        drop(table);
        drop(slab);
    }

    #[test]
    fn rehash_places_every_entry_where_lookups_find_it() {
        let hasher = Hasher::new(9, 0);
        let slab = Slab::new();
        let src = table_with(3, 300, 9, &slab);
        let grown = SingleThreaded.rehash(&src, 6).unwrap();
        for i in 0..300 {
            let key = format!("key-{i}");
            let hash = hasher.hash(key.as_bytes());
            assert!(grown.find(hash, key.as_bytes()).is_some(), "{key}");
        }
        assert!(grown.find(hasher.hash(b"absent"), b"absent").is_none());
        // SAFETY: as above.
        unsafe { src.free_entries(&slab) };
    }

    #[test]
    fn the_kept_slot_sums_follow_every_change_and_every_rebuild() {
        let slab = Slab::new();
        let hasher = Hasher::new(21, 0);
        // Chains and one-by-one overflow buckets.
        let table = table_with(6, 3000, 21, &slab);
        assert_eq!(table.sums().entries, 3000);
        assert_eq!(table.sums(), table.recount_sums(), "after the inserts");
        // Updates and removals, interleaved.
        for i in (0..3000usize).step_by(7) {
            let key = format!("key-{i}");
            let hash = hasher.hash(key.as_bytes());
            let Slot::Found {
                head,
                bucket,
                index,
            } = table.locate(hash, key.as_bytes())
            else {
                panic!("{key} is present");
            };
            if i % 2 == 0 {
                // SAFETY: single-threaded: the only allocator of `slab`.
                let new = unsafe { OwnedEntry::new(&slab, key.as_bytes(), b"new") }.unwrap();
                table.replace_slot(bucket, index, new.into_raw());
            } else {
                table.unlink(head, bucket, index);
            }
        }
        assert_eq!(
            table.sums(),
            table.recount_sums(),
            "after updates and removals"
        );
        for (engine, new_log2) in [
            (&SingleThreaded as &dyn RehashEngine, 7),
            (&ParallelCpu::with_threads(3), 5),
            (&SingleThreaded, 6),
        ] {
            let rebuilt = engine.rehash(&table, new_log2).unwrap();
            assert_eq!(
                rebuilt.sums(),
                rebuilt.recount_sums(),
                "{} to 2^{new_log2}",
                engine.name()
            );
            assert_eq!(rebuilt.sums(), table.sums());
        }
    }
}
