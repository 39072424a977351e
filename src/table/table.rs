//! One shard's table: `2^log2` buckets, the overflow buckets of their chains, and
//! the operations on them. A table is reached only through its shard's epoch
//! pointer; readers walk it without locks, writers change it under the write flag.
//!
//! A table owns its bucket arrays, not its entries: after a grow the old and the
//! new table link the same entries, and the old one is retired with its arrays
//! only. Whoever empties a table for good (clear, drop) frees its entries with
//! [`Table::free_entries`].

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};

use super::bucket::{self, Bucket, EMPTY_ONE, EMPTY_REST, SLOTS};
use super::entry::{self, Entry};
use super::slab::Slab;
use super::sums::{SlotSums, Sums};
use crate::error::{Error, Result};
use crate::hash::KeyHash;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// Largest `log2` a shard's table may reach: frags hold 32 hash bits, and 2^30
/// buckets (120 GB) per shard is beyond any machine this runs on.
pub(crate) const MAX_LOG2: u32 = 30;

/// An array of buckets, allocated zeroed (an all-zero bucket is empty).
pub(crate) struct BucketArray {
    ptr: NonNull<Bucket>,
    len: usize,
    /// Bytes of a mapped array counted in [`MAPPED_BYTES`]: all of it, except the
    /// arena buckets not yet taken (see [`BucketArray::with_arena`]), which are
    /// address space until their first write (0 for an array from the allocator,
    /// which the allocator's own counting sees).
    #[cfg_attr(loom, allow(dead_code))]
    counted: std::sync::atomic::AtomicUsize,
    /// Bytes from the start that may be written: all of an array but a mapped
    /// arena's untaken part, which is mapped inaccessible and made writable a
    /// huge page at a time as it is taken ([`BucketArray::take`]), so that the
    /// kernel charges it to the process's commit only then (under strict
    /// overcommit a writable private mapping is charged whole when made).
    #[cfg_attr(loom, allow(dead_code))]
    writable: std::sync::atomic::AtomicUsize,
    /// Tests: make the kernel's refusal to make more writable happen.
    #[cfg(test)]
    refuse_more: std::sync::atomic::AtomicBool,
}

// SAFETY: a BucketArray owns its buckets, which are made of atomics.
unsafe impl Send for BucketArray {}
// SAFETY: as above; shared access goes through the buckets' atomics.
unsafe impl Sync for BucketArray {}

impl BucketArray {
    /// `len` empty buckets.
    pub(crate) fn new(len: usize) -> Result<BucketArray> {
        BucketArray::with_arena(len, 0)
    }

    /// `laid + arena` empty buckets, of which the last `arena` are taken one by
    /// one ([`BucketArray::take`]) and counted in [`MAPPED_BYTES`] only then.
    pub(crate) fn with_arena(laid: usize, arena: usize) -> Result<BucketArray> {
        let len = laid
            .checked_add(arena)
            .ok_or(Error::OutOfMemory { bytes: usize::MAX })?;
        if len == 0 {
            return Ok(BucketArray {
                ptr: NonNull::dangling(),
                len: 0,
                counted: std::sync::atomic::AtomicUsize::new(0),
                writable: std::sync::atomic::AtomicUsize::new(0),
                #[cfg(test)]
                refuse_more: std::sync::atomic::AtomicBool::new(false),
            });
        }
        let layout = array_layout(len).ok_or(Error::OutOfMemory {
            bytes: len.saturating_mul(std::mem::size_of::<Bucket>()),
        })?;
        let writable_bytes = laid * std::mem::size_of::<Bucket>();
        #[cfg(not(loom))]
        let ptr = if is_mapped(layout) {
            mapped_zeroed(layout, writable_bytes)
        } else {
            // SAFETY: the layout is non-zero-sized. Zeroed memory is a valid array
            // of empty buckets: every field is an atomic integer or pointer, for
            // which all-zero bytes mean 0 or null.
            unsafe { alloc::alloc_zeroed(layout) }.cast::<Bucket>()
        };
        #[cfg(loom)]
        let ptr = {
            // Loom's atomics are not plain memory: construct each one.
            // SAFETY: the layout is non-zero-sized.
            let ptr = unsafe { alloc::alloc(layout) }.cast::<Bucket>();
            if !ptr.is_null() {
                for i in 0..len {
                    // SAFETY: `i < len`, inside the fresh allocation.
                    unsafe { ptr.add(i).write(Bucket::new()) };
                }
            }
            ptr
        };
        let ptr = NonNull::new(ptr).ok_or(Error::OutOfMemory {
            bytes: layout.size(),
        })?;
        #[cfg(not(loom))]
        let counted = if is_mapped(layout) {
            let counted = layout.size() - arena * std::mem::size_of::<Bucket>();
            MAPPED_BYTES.fetch_add(counted, std::sync::atomic::Ordering::Relaxed);
            counted
        } else {
            0
        };
        #[cfg(loom)]
        let counted = 0;
        // A mapped array is writable up to whole huge pages (`mapped_zeroed`).
        #[cfg(not(loom))]
        let writable = if is_mapped(layout) {
            writable_bytes
                .next_multiple_of(HUGE_PAGE)
                .min(mapped_len(layout).expect("mapped"))
        } else {
            layout.size()
        };
        #[cfg(loom)]
        let writable = {
            let _ = writable_bytes;
            layout.size()
        };
        Ok(BucketArray {
            ptr,
            len,
            counted: std::sync::atomic::AtomicUsize::new(counted),
            writable: std::sync::atomic::AtomicUsize::new(writable),
            #[cfg(test)]
            refuse_more: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Brings every page of the array in now (a write of zero, what the bucket
    /// already holds, to the first bucket of each 4 KiB page), so that a later
    /// writer (a device's copy-out) does not take the page faults: for the GPU
    /// engine, which does this on a second thread while the device counts. The
    /// kernel zeroes each page as it comes, the cost every new array pays once.
    pub(crate) fn prefault(&self) {
        let size = std::mem::size_of::<Bucket>();
        let buckets = self.as_slice();
        let mut at = 0;
        while at < buckets.len() {
            buckets[at].tophash.store(0, Ordering::Relaxed);
            // The first bucket whose tophash word lies on the next 4 KiB page
            // (every page holds the start of one: a bucket is smaller).
            let next_page = ((at * size) / 4096 + 1) * 4096;
            at = next_page.div_ceil(size);
        }
    }

    /// Bucket `index`, an arena bucket about to be written for the first time
    /// (arena buckets are taken in order, by the table's writer): made
    /// writable if it is not yet, and counted in [`MAPPED_BYTES`] from now on.
    /// None when the kernel refuses to make it writable (the commit limit of
    /// strict overcommit): the caller allocates the bucket alone instead.
    fn take(&self, index: usize) -> Option<&Bucket> {
        assert!(index < self.len, "an arena bucket of this array");
        #[cfg(not(loom))]
        if is_mapped(array_layout(self.len).expect("valid at allocation")) {
            let size = std::mem::size_of::<Bucket>();
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            let writable = self.writable.load(relaxed);
            let end = (index + 1) * size;
            if end > writable {
                let layout = array_layout(self.len).expect("valid at allocation");
                let more = end
                    .next_multiple_of(HUGE_PAGE)
                    .min(mapped_len(layout).expect("mapped"));
                // SAFETY: `writable..more` lies inside this array's mapping
                // (`more` is at most its length), both ends huge-page aligned;
                // nothing in it was ever written or linked (arena buckets are
                // taken in order), so no reader can be reading it.
                let made = unsafe {
                    libc::mprotect(
                        self.ptr.as_ptr().cast::<u8>().add(writable).cast(),
                        more - writable,
                        libc::PROT_READ | libc::PROT_WRITE,
                    )
                };
                #[cfg(test)]
                let made = if self.refuse_more.load(relaxed) {
                    -1
                } else {
                    made
                };
                if made != 0 {
                    return None;
                }
                self.writable.store(more, relaxed);
            }
            self.counted
                .fetch_add(size, std::sync::atomic::Ordering::Relaxed);
            MAPPED_BYTES.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: `index < len` (asserted), and its page is writable now (made
        // so above, or already): the reference is made only now.
        Some(unsafe { &*self.ptr.as_ptr().add(index) })
    }

    /// The whole array: for an array without an arena, every bucket of which is
    /// accessible (a pool array's is [`BucketArray::accessible`]).
    pub(crate) fn as_slice(&self) -> &[Bucket] {
        #[cfg(not(loom))]
        debug_assert!(
            self.writable.load(std::sync::atomic::Ordering::Relaxed)
                >= self.len * std::mem::size_of::<Bucket>(),
            "as_slice of an array with an untaken arena"
        );
        // SAFETY: `ptr` points to `len` initialised buckets owned by self, all
        // accessible (no arena; or dangling with len 0, valid for an empty slice).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The buckets that may be read and written: all but a mapped arena's
    /// untaken part beyond the last writable huge page (no reference is ever
    /// made to memory the kernel maps inaccessible).
    pub(crate) fn accessible(&self) -> &[Bucket] {
        let writable = self.writable.load(std::sync::atomic::Ordering::Relaxed);
        let len = self.len.min(writable / std::mem::size_of::<Bucket>());
        // SAFETY: `ptr` points to `len` initialised buckets owned by self (or is
        // dangling with len 0), and the first `writable` bytes are accessible.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), len) }
    }

    /// Whether `bucket` points into this array, accessible or not (no
    /// reference made).
    fn contains(&self, bucket: *const Bucket) -> bool {
        let start = self.ptr.as_ptr().cast_const();
        // SAFETY: one past the end of the array's allocation at most.
        (start..unsafe { start.add(self.len) }).contains(&bucket)
    }
}

/// Size of a transparent huge page (x86-64 and most arm64 kernels).
const HUGE_PAGE: usize = 2 << 20;

/// The layout a bucket array of `len` buckets is allocated with: arrays of a
/// huge page or more are aligned to one, so that they can be backed by huge pages.
fn array_layout(len: usize) -> Option<Layout> {
    let layout = Layout::array::<Bucket>(len).ok()?;
    if layout.size() >= HUGE_PAGE {
        layout.align_to(HUGE_PAGE).ok()
    } else {
        Some(layout)
    }
}

/// Bytes of bucket arrays mapped straight from the kernel (see [`mapped_zeroed`])
/// and not yet unmapped, process-wide: what a counting global allocator does not
/// see, for tests and benchmarks that measure memory (`mapped_table_bytes`).
/// Counted as requested (the layout's size), as the counting allocator counts
/// requests, except an overflow arena's buckets, counted as they are taken
/// (untouched, they are address space only). The mapping's rounding to whole huge pages is never written; where
/// the kernel backs the array's last huge page whole, that rounding is resident
/// too, as it was when big arrays came huge-page aligned from the allocator.
pub(crate) static MAPPED_BYTES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Whether an array of this layout is mapped straight from the kernel
/// ([`mapped_zeroed`]) rather than taken from the global allocator.
#[cfg(not(loom))]
fn is_mapped(layout: Layout) -> bool {
    cfg!(unix) && layout.size() >= HUGE_PAGE
}

/// The length of the mapping behind a mapped array: whole huge pages (a multiple
/// of every page size).
#[cfg(all(unix, not(loom)))]
fn mapped_len(layout: Layout) -> Option<usize> {
    layout.size().checked_next_multiple_of(HUGE_PAGE)
}

/// Allocates a zeroed array for a big table as an anonymous mapping, aligned to a
/// huge page and advised to be backed by transparent huge pages (a lookup's
/// random bucket access then costs no page walk). The kernel hands out anonymous
/// pages zeroed on first touch, so nothing is written here: a table costs memory
/// as its pages are first touched, not when it is created. (Keys land in random
/// buckets, and with huge pages each first touch brings in 2 MiB, so a big
/// presized table is mostly resident after a small fraction of its capacity.) (An eager memset, which is what the
/// global allocator's `alloc_zeroed` does for an over-aligned layout, would commit
/// the whole array at once; for a large initial capacity under overcommit that
/// gets the process killed instead of the allocation failing.) NULL when the
/// kernel refuses the mapping.
#[cfg(all(unix, not(loom)))]
fn mapped_zeroed(layout: Layout, writable: usize) -> *mut Bucket {
    let Some(len) = mapped_len(layout) else {
        return ptr::null_mut();
    };
    // Over-map by one huge page, then trim both ends to an aligned `len`.
    let Some(over) = len.checked_add(HUGE_PAGE) else {
        return ptr::null_mut();
    };
    // Mapped inaccessible first (reserved address space, charged to nothing),
    // then the first `writable` bytes, in whole huge pages, made writable: the
    // kernel charges (and may refuse) them then, as it would a writable
    // mapping. (Not MAP_NORESERVE: it would exempt the writable part from
    // that check, and an array larger than memory would be accepted and the
    // process killed later instead.)
    // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
    let raw = unsafe {
        libc::mmap(
            ptr::null_mut(),
            over,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let start = raw as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let head = aligned - start;
    let tail = over - head - len;
    // SAFETY: both ranges lie inside the mapping just made, are page-aligned
    // (mmap returns page-aligned memory; `aligned` and `len` are multiples of a
    // huge page) and are not used by anything.
    unsafe {
        if head > 0 {
            libc::munmap(raw, head);
        }
        if tail > 0 {
            libc::munmap((aligned + len) as *mut libc::c_void, tail);
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: the range is our mapping; madvise only changes how the kernel backs it.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    let writable = writable.next_multiple_of(HUGE_PAGE).min(len);
    // SAFETY: the start of our mapping, `writable <= len` bytes, page-aligned.
    if writable > 0
        && unsafe {
            libc::mprotect(
                aligned as *mut libc::c_void,
                writable,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        } != 0
    {
        // SAFETY: the whole (trimmed) mapping, ours, not shared.
        unsafe { libc::munmap(aligned as *mut libc::c_void, len) };
        return ptr::null_mut();
    }
    aligned as *mut Bucket
}

/// Elsewhere big arrays come from the global allocator like small ones.
#[cfg(all(not(unix), not(loom)))]
fn mapped_zeroed(_layout: Layout, _writable: usize) -> *mut Bucket {
    unreachable!("is_mapped is false off unix")
}

impl Drop for BucketArray {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        #[cfg(loom)]
        for i in 0..self.len {
            // SAFETY: each bucket was constructed in `new` and is dropped once.
            unsafe { ptr::drop_in_place(self.ptr.as_ptr().add(i)) };
        }
        let layout = array_layout(self.len).expect("layout was valid at allocation");
        #[cfg(all(unix, not(loom)))]
        if is_mapped(layout) {
            let len = mapped_len(layout).expect("mapped at allocation");
            // SAFETY: `mapped_zeroed` mapped exactly `len` bytes at `ptr`; buckets
            // need no drop (plain atomics).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), len) };
            MAPPED_BYTES.fetch_sub(
                self.counted.load(std::sync::atomic::Ordering::Relaxed),
                std::sync::atomic::Ordering::Relaxed,
            );
            return;
        }
        // SAFETY: allocated in `new` with this layout; buckets need no drop (outside
        // loom they are plain atomics).
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
    }
}

/// Where a key is, or where it would go.
pub(crate) enum Slot<'t> {
    /// The key is in `bucket`'s slot `index`; `head` is its chain's first bucket.
    Found {
        head: &'t Bucket,
        bucket: &'t Bucket,
        index: usize,
    },
    /// The key is absent. `free` is the first empty slot of its chain, if any;
    /// `tail` is the chain's last bucket (where an overflow bucket would be linked).
    Vacant {
        free: Option<(&'t Bucket, usize)>,
        tail: &'t Bucket,
    },
}

/// A shard's table (see the module docs).
pub(crate) struct Table {
    /// `log2` of the number of main buckets.
    log2: u32,
    /// The main buckets; the key with hash `h` lives in the chain of
    /// `buckets[h.frag() & mask]`.
    buckets: BucketArray,
    /// Every overflow bucket while the arena lasts: the first `laid` laid out by
    /// the rehash that built this table, then the arena ([`arena_len`] buckets),
    /// which [`Table::place`] takes from in order. So a table's buckets are two
    /// arrays, which a rebuild on the GPU copies as they are (`gpu/job.rs`).
    pool: BucketArray,
    /// Overflow buckets the rehash laid out (the front of `pool`).
    laid: usize,
    /// Overflow buckets added one by one since, from the arena: its first
    /// `arena_taken` buckets.
    arena_taken: AtomicUsize,
    /// Overflow buckets added one by one since, each a `Box`: once the arena is
    /// used up (which only a same-size rebuild that did not happen lets
    /// happen) or the kernel would not make its next bucket writable; from
    /// then on every one (the arena's taken part stays a prefix). Both counts
    /// decide when a same-size rebuild is due.
    boxed: AtomicUsize,
    /// The occupied slots' sums, kept by every slot change (`sums.rs`): what a
    /// rebuild of this table must reproduce.
    sums: SlotSums,
}

/// Overflow buckets of the arena of a table of `2^log2` main buckets: as many
/// as a same-size rebuild waits for ([`too_many_overflow`]), so that a table
/// rebuilt on time never allocates one alone, where its main buckets make a
/// mapped array (untaken, the arena is address space, not memory). None for
/// smaller tables, whose arena would be committed memory (the allocator zeroes
/// it): their overflow buckets are each a `Box`, and their rebuilds are the
/// CPU's.
pub(crate) fn arena_len(log2: u32) -> usize {
    #[cfg(not(loom))]
    if array_layout(1 << log2).is_some_and(is_mapped) {
        return 1 << log2;
    }
    let _ = log2;
    0
}

impl Table {
    /// An empty table of `2^log2` buckets.
    pub(crate) fn new(log2: u32) -> Result<Table> {
        Table::with_arrays(
            log2,
            BucketArray::new(1 << log2)?,
            Table::pool(0, log2)?,
            0,
            Sums::default(),
        )
    }

    /// The overflow array of a table of `2^log2` main buckets whose rehash lays
    /// out `laid` overflow buckets: those, then the arena.
    pub(crate) fn pool(laid: usize, log2: u32) -> Result<BucketArray> {
        BucketArray::with_arena(laid, arena_len(log2))
    }

    /// A table over arrays built by a rehash engine: `2^log2` main buckets, and
    /// `pool` from [`Table::pool`] with its first `laid` buckets laid out;
    /// `sums` are those of the slots the arrays hold.
    pub(crate) fn with_arrays(
        log2: u32,
        buckets: BucketArray,
        pool: BucketArray,
        laid: usize,
        sums: Sums,
    ) -> Result<Table> {
        // `head` indexes the main buckets without a bounds check on this.
        assert_eq!(buckets.len, 1 << log2, "a table has 2^log2 main buckets");
        assert!(laid <= pool.len, "the laid-out pool lies in the pool array");
        Ok(Table {
            log2,
            buckets,
            pool,
            laid,
            arena_taken: AtomicUsize::new(0),
            boxed: AtomicUsize::new(0),
            sums: SlotSums::new(sums),
        })
    }

    /// The occupied slots' sums (see `sums.rs`). Flag held.
    pub(crate) fn sums(&self) -> Sums {
        self.sums.get()
    }

    /// The occupied slots' sums counted afresh by a walk over every chain (for
    /// tests of the kept ones).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn recount_sums(&self) -> Sums {
        let mut sums = Sums::default();
        self.for_each_chain_bucket(|_, b| {
            let word = b.tophash.load(Ordering::Relaxed);
            for i in bucket::occupied(word) {
                let entry = b.slots[i].load(Ordering::Relaxed);
                sums = sums.with(
                    bucket::byte(word, i),
                    b.frags[i].load(Ordering::Relaxed),
                    entry,
                );
            }
        });
        sums
    }

    #[inline]
    pub(crate) fn log2(&self) -> u32 {
        self.log2
    }

    #[inline]
    pub(crate) fn mask(&self) -> u32 {
        ((1u64 << self.log2) - 1) as u32
    }

    /// The main buckets.
    #[inline]
    pub(crate) fn buckets(&self) -> &[Bucket] {
        self.buckets.as_slice()
    }

    /// The overflow pool the rehash laid out (for the engines' equivalence
    /// checks, which compare its layout too).
    #[cfg(not(loom))]
    pub(crate) fn laid_pool(&self) -> &[Bucket] {
        &self.pool.accessible()[..self.laid]
    }

    /// The overflow buckets of `pool` in use: those laid out, then the arena's
    /// taken ones. When no overflow bucket is a `Box`
    /// ([`Table::boxed_overflow`] is 0) every chain lies in these and the main
    /// buckets.
    pub(crate) fn pool_in_use(&self) -> &[Bucket] {
        &self.pool.accessible()[..self.laid + self.arena_taken()]
    }

    /// Arena buckets taken.
    fn arena_taken(&self) -> usize {
        self.arena_taken.load(Ordering::Relaxed)
    }

    /// Overflow buckets allocated alone (each a `Box`).
    pub(crate) fn boxed_overflow(&self) -> usize {
        self.boxed.load(Ordering::Relaxed)
    }

    /// Overflow buckets in use: the pool plus those added one by one.
    pub(crate) fn overflow_count(&self) -> usize {
        self.laid + self.extra_overflow()
    }

    /// Overflow buckets added one by one since this table was built.
    pub(crate) fn extra_overflow(&self) -> usize {
        self.arena_taken() + self.boxed_overflow()
    }

    /// The head of the chain that holds keys with hash `hash`.
    #[inline]
    pub(crate) fn head(&self, hash: KeyHash) -> &Bucket {
        let index = (hash.frag() & self.mask()) as usize;
        // SAFETY: `index <= mask = 2^log2 - 1`, and a table has exactly 2^log2
        // main buckets (asserted in `with_arrays`, the only constructor).
        unsafe { self.buckets().get_unchecked(index) }
    }

    /// Finds `key`: the reader's path. Lock-free; the returned entry stays valid
    /// while the caller's epoch pin lasts.
    ///
    /// It stops at the first bucket holding an `EMPTY_REST` slot, which relies
    /// on the chain invariant the writers keep (`place` and `unlink`): a slot is
    /// `EMPTY_REST` only if every later slot of its bucket and every bucket after
    /// it in the chain is empty. A writer sets `EMPTY_REST` only by turning a run
    /// of `EMPTY_ONE` slots at the chain's end back into it (after the slots'
    /// pointers are null), and filling an `EMPTY_REST` slot leaves the slots
    /// after it `EMPTY_REST`, so no key ever sits behind an `EMPTY_REST` that a
    /// reader could load first. The loom model of a reader against a delete and an insert in its
    /// chain (`tests/loom.rs`) fails when `unlink`'s back-propagation overruns a
    /// live slot.
    #[inline(always)]
    pub(crate) fn find(&self, hash: KeyHash, key: &[u8]) -> Option<*const Entry> {
        let tophash = hash.tophash();
        let mut bucket = self.head(hash);
        loop {
            let word = bucket.tophash_word();
            for index in bucket::matching(word, tophash) {
                let entry = bucket.slots[index].load(Ordering::Acquire);
                if entry.is_null() {
                    continue;
                }
                entry::prefetch_tail(entry);
                // SAFETY: a non-null slot pointer is a live entry; the caller's pin
                // was taken before this load, so it is not freed while pinned.
                if unsafe { entry::has_key(entry, key) } {
                    return Some(entry);
                }
            }
            if bucket::has_empty_rest(word) {
                return None;
            }
            bucket = bucket.next()?;
        }
    }

    /// Starts fetching the entries of the head bucket of `hash`'s chain whose
    /// tophash matches (the batch lookup's second pipeline stage). Reads the
    /// bucket, so the caller must be pinned; the entries are only prefetched.
    #[inline]
    pub(crate) fn prefetch_entry(&self, hash: KeyHash) {
        let bucket = self.head(hash);
        for index in bucket::matching(bucket.tophash_word(), hash.tophash()) {
            let entry = bucket.slots[index].load(Ordering::Relaxed);
            entry::prefetch(entry);
        }
    }

    /// Finds `key` or the place for it: the writer's path (flag held).
    pub(crate) fn locate(&self, hash: KeyHash, key: &[u8]) -> Slot<'_> {
        let tophash = hash.tophash();
        let head = self.head(hash);
        let mut bucket = head;
        let mut free = None;
        loop {
            let word = bucket.tophash.load(Ordering::Relaxed);
            for index in bucket::matching(word, tophash) {
                let entry = bucket.slots[index].load(Ordering::Relaxed);
                // SAFETY: the flag holder is the only one who frees entries of this
                // table, so every linked entry is live.
                if !entry.is_null() && unsafe { entry::has_key(entry, key) } {
                    return Slot::Found {
                        head,
                        bucket,
                        index,
                    };
                }
            }
            if free.is_none() {
                free = bucket::empty(word).next().map(|index| (bucket, index));
            }
            if bucket::has_empty_rest(word) {
                return Slot::Vacant { free, tail: bucket };
            }
            match bucket.next() {
                Some(next) => bucket = next,
                None => return Slot::Vacant { free, tail: bucket },
            }
        }
    }

    /// Finds the entry whose policy node is `node` among the keys with hash
    /// fragment `frag`: the eviction path (flag held). The fragment picks the
    /// chain and narrows the slots; the node index, which each bounded entry
    /// carries, makes the match exact.
    pub(crate) fn locate_node(&self, frag: u32, node: u32) -> Option<(&Bucket, &Bucket, usize)> {
        let index = (frag & self.mask()) as usize;
        let head = &self.buckets()[index];
        let mut bucket = head;
        loop {
            let word = bucket.tophash.load(Ordering::Relaxed);
            for slot in bucket::occupied(word) {
                if bucket.frags[slot].load(Ordering::Relaxed) != frag {
                    continue;
                }
                let entry = bucket.slots[slot].load(Ordering::Relaxed);
                // SAFETY: the flag holder is the only one who frees entries of
                // this table, so every linked entry is live.
                if !entry.is_null() && unsafe { entry::node(entry) } == Some(node) {
                    return Some((head, bucket, slot));
                }
            }
            if bucket::has_empty_rest(word) {
                return None;
            }
            bucket = bucket.next()?;
        }
    }

    /// Calls `f(head, bucket, slot, entry)` for each occupied slot of chain
    /// `index` (flag held; `f` may unlink the slot it is given).
    pub(crate) fn for_each_in_chain(
        &self,
        index: usize,
        mut f: impl FnMut(&Bucket, &Bucket, usize, *mut Entry),
    ) {
        let head = &self.buckets()[index & self.mask() as usize];
        let mut bucket = Some(head);
        while let Some(b) = bucket {
            for slot in bucket::occupied(b.tophash.load(Ordering::Relaxed)) {
                let entry = b.slots[slot].load(Ordering::Relaxed);
                if !entry.is_null() {
                    f(head, b, slot, entry);
                }
            }
            bucket = b.next();
        }
    }

    /// Publishes `entry` (hash `hash`) at the vacancy `locate` returned. Flag held.
    pub(crate) fn place(
        &self,
        free: Option<(&Bucket, usize)>,
        tail: &Bucket,
        hash: KeyHash,
        entry: *mut Entry,
    ) {
        self.sums.placed(hash.tophash(), hash.frag(), entry);
        if let Some((bucket, index)) = free {
            bucket.fill(index, hash.frag(), hash.tophash(), entry);
            return;
        }
        // The flag is held: nothing else adds overflow buckets meanwhile. The
        // arena's next bucket was never written nor linked (it is taken in
        // order, and not at all once one bucket was boxed).
        let next = self.laid + self.arena_taken();
        let from_arena = (self.boxed_overflow() == 0 && next < self.pool.len)
            .then(|| self.pool.take(next))
            .flatten();
        let overflow = match from_arena {
            Some(bucket) => {
                self.arena_taken.fetch_add(1, Ordering::Relaxed);
                bucket as *const Bucket as *mut Bucket
            }
            None => {
                self.boxed.fetch_add(1, Ordering::Relaxed);
                Box::into_raw(Box::new(Bucket::new()))
            }
        };
        // SAFETY: an arena bucket not yet taken or a fresh Box: not yet shared.
        unsafe { &*overflow }.fill(0, hash.frag(), hash.tophash(), entry);
        // Linking last publishes a bucket that is complete (Release).
        tail.overflow.store(overflow, Ordering::Release);
    }

    /// Unlinks the entry in `bucket`'s slot `index` and returns it (for the caller
    /// to retire). Keeps Go's invariant that `EMPTY_REST` marks an empty rest of
    /// chain, so lookups of absent keys stop early. Flag held.
    pub(crate) fn unlink(&self, head: &Bucket, bucket: &Bucket, index: usize) -> *mut Entry {
        let tophash = bucket::byte(bucket.tophash.load(Ordering::Relaxed), index);
        let frag = bucket.frags[index].load(Ordering::Relaxed);
        bucket.set_tophash(index, EMPTY_ONE);
        let old = bucket.slots[index].swap(ptr::null_mut(), Ordering::AcqRel);
        self.sums.removed(tophash, frag, old);

        // Is everything after this slot empty? Then it and the EMPTY_ONE slots
        // before it become EMPTY_REST.
        let rest_empty = if index == SLOTS - 1 {
            match bucket.next() {
                Some(next) => bucket::byte(next.tophash.load(Ordering::Relaxed), 0) == EMPTY_REST,
                None => true,
            }
        } else {
            bucket::byte(bucket.tophash.load(Ordering::Relaxed), index + 1) == EMPTY_REST
        };
        if rest_empty {
            let (mut bucket, mut index) = (bucket, index);
            loop {
                bucket.set_tophash(index, EMPTY_REST);
                if index == 0 {
                    if ptr::eq(bucket, head) {
                        break;
                    }
                    // Step back to the previous bucket of the chain.
                    let mut previous = head;
                    while let Some(next) = previous.next() {
                        if ptr::eq(next, bucket) {
                            break;
                        }
                        previous = next;
                    }
                    bucket = previous;
                    index = SLOTS - 1;
                } else {
                    index -= 1;
                }
                if bucket::byte(bucket.tophash.load(Ordering::Relaxed), index) != EMPTY_ONE {
                    break;
                }
            }
        }
        old
    }

    /// Publishes `new` in the occupied slot `index` of `bucket` (an update of
    /// the same key) and returns the entry it replaces. Flag held.
    pub(crate) fn replace_slot(
        &self,
        bucket: &Bucket,
        index: usize,
        new: *mut Entry,
    ) -> *mut Entry {
        let old = bucket.slots[index].load(Ordering::Relaxed);
        bucket.slots[index].store(new, Ordering::Release);
        self.sums.replaced(old, new);
        old
    }

    /// Starts loading the first overflow bucket of chain `index`, if the chain
    /// has one (see [`CHAIN_AHEAD`]).
    #[inline(always)]
    pub(crate) fn prefetch_overflow(&self, index: usize) {
        #[cfg(not(loom))]
        bucket::prefetch_whole(self.buckets()[index].overflow.load(Ordering::Relaxed));
        #[cfg(loom)]
        let _ = index;
    }

    /// Calls `f` for every bucket of every chain, main buckets in index order
    /// (the first overflow bucket of the chain [`CHAIN_AHEAD`] on prefetched).
    pub(crate) fn for_each_chain_bucket(&self, mut f: impl FnMut(usize, &Bucket)) {
        let chains = self.buckets().len();
        for (index, head) in self.buckets().iter().enumerate() {
            if index + CHAIN_AHEAD < chains {
                self.prefetch_overflow(index + CHAIN_AHEAD);
            }
            let mut bucket = Some(head);
            while let Some(b) = bucket {
                f(index, b);
                bucket = b.next();
            }
        }
    }

    /// Frees every entry this table links (made with `slab`, its shard's).
    ///
    /// # Safety
    /// No other table links these entries any more, and no reader can reach this
    /// table (it was unlinked and its epoch has passed, or the map is dropped).
    pub(crate) unsafe fn free_entries(&self, slab: &Slab) {
        // SAFETY: per the contract this table is each entry's last owner.
        self.for_each_entry(|entry| unsafe { entry::free(entry, slab) });
    }

    /// Frees the large entries this table links and leaves its small ones to the
    /// drop of their slab, which takes all its chunks back at once: for a shard
    /// being dropped, whose slab serves no allocation any more.
    ///
    /// # Safety
    /// As for [`Table::free_entries`], and no entry of this table is used after
    /// its shard's slab is dropped.
    pub(crate) unsafe fn free_large_entries(&self) {
        // SAFETY: per the contract this table is each entry's last owner.
        self.for_each_entry(|entry| unsafe { entry::free_if_large(entry) });
    }

    /// Calls `f` with every entry this table links.
    fn for_each_entry(&self, mut f: impl FnMut(*mut Entry)) {
        self.for_each_chain_bucket(|_, bucket| {
            for slot in &bucket.slots {
                let entry = slot.load(Ordering::Relaxed);
                if !entry.is_null() {
                    f(entry);
                }
            }
        });
    }

    /// A canonical byte image of the table: for each main bucket in order, each
    /// bucket of its chain as (tophash, frags, slot pointers, "more follows" byte).
    /// Two tables with the same image place the same entries in the same slots.
    /// (The engines' equivalence tests compare them, the GPU plugin's too.)
    #[cfg(not(loom))]
    pub(crate) fn image(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.log2.to_le_bytes());
        self.for_each_chain_bucket(|_, bucket| {
            out.extend_from_slice(&bucket.tophash.load(Ordering::Relaxed).to_le_bytes());
            for frag in &bucket.frags {
                out.extend_from_slice(&frag.load(Ordering::Relaxed).to_le_bytes());
            }
            for slot in &bucket.slots {
                out.extend_from_slice(&(slot.load(Ordering::Relaxed) as usize).to_le_bytes());
            }
            out.push(u8::from(!bucket.overflow.load(Ordering::Relaxed).is_null()));
        });
        out
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // Free the overflow buckets allocated one by one; the arrays free
        // themselves. Most tables have none (the arena sufficed): no walk.
        if self.boxed_overflow() == 0 {
            return;
        }
        let mut singles = Vec::new();
        self.for_each_chain_bucket(|_, bucket| {
            let next = bucket.overflow.load(Ordering::Relaxed);
            if !next.is_null() && !self.pool.contains(next) {
                singles.push(next);
            }
        });
        for single in singles {
            // SAFETY: outside the pool array (laid out and arena), so allocated
            // with Box::new in `place`, linked exactly once, and the table (its
            // only owner) is being dropped.
            drop(unsafe { Box::from_raw(single) });
        }
    }
}

/// How many chains ahead a pass over a table's chains prefetches the first
/// overflow bucket of. The main buckets are read in address order, which the
/// hardware prefetcher follows; overflow buckets added one by one lie anywhere,
/// and a dependent miss on each in turn was most of a rebuild's time (and of
/// the GPU engine's pack: `docs/bench.md`).
pub(crate) const CHAIN_AHEAD: usize = 16;

/// Whether a shard holding `count` entries in `2^log2` buckets is over Go's load
/// factor of 6.5 entries per bucket.
#[inline]
pub(crate) fn over_load(count: usize, log2: u32) -> bool {
    count > SLOTS && count > (13usize << log2) / 2
}

/// Whether a table of `2^log2` buckets has added so many overflow buckets since
/// it was built that a same-size rebuild should compact it: as many as it has
/// main buckets, Go's threshold. (Go writes it `noverflow >= 1 << min(B, 15)`,
/// but above 2^15 buckets its `noverflow` counts one in `2^(B-15)` overflow
/// buckets, so the bound is `2^B` there too. Taken literally, a 2^21-bucket
/// shard rebuilt itself at every 2^15 added overflow buckets, about a dozen
/// times between two doublings: 23 same-size rebuilds beside 22 grows while
/// 16M keys went into one shard, and 12M inserts took 8.5-8.8 s instead of
/// 5.5 s.)
#[inline]
pub(crate) fn too_many_overflow(extra_overflow: usize, log2: u32) -> bool {
    extra_overflow >= 1usize << log2
}

/// The smallest `log2` whose table holds `count` entries without growing.
pub(crate) fn log2_for(count: usize) -> u32 {
    let mut log2 = 0;
    while over_load(count, log2) && log2 < MAX_LOG2 {
        log2 += 1;
    }
    log2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_same_size_rebuild_waits_for_as_many_overflow_buckets_as_main_ones() {
        for log2 in [3, 10, 15, 16, 21, 26] {
            let main = 1usize << log2;
            assert!(!too_many_overflow(main - 1, log2), "2^{log2}");
            assert!(too_many_overflow(main, log2), "2^{log2}");
        }
        // Above 2^15 buckets too: a table filling to its load factor adds
        // about a fifth of its main buckets' number, which must not rebuild it.
        assert!(!too_many_overflow(1 << 15, 21));
        assert!(!too_many_overflow((1 << 21) / 5, 21));
    }

    /// Places `n` entries (fake pointers, never dereferenced: a table does not
    /// own its entries) into chain 0 of `table`, slot after slot.
    fn fill_chain_zero(table: &Table, n: usize) {
        fill_chain_zero_from(table, 0, n);
    }

    /// As [`fill_chain_zero`], entries `first..end` of chain 0 (those before
    /// `first` placed already).
    fn fill_chain_zero_from(table: &Table, first: usize, end: usize) {
        let mut tail = &table.buckets()[0];
        while let Some(next) = tail.next() {
            tail = next;
        }
        for i in first..end {
            let hash = KeyHash(0x77 << 32);
            let entry = (8 * (i + 1)) as *mut Entry;
            let free = (i % SLOTS != 0 || i == 0).then_some((tail, i % SLOTS));
            table.place(free, tail, hash, entry);
            if free.is_none() {
                tail = tail.next().expect("place linked an overflow bucket");
            }
        }
    }

    #[test]
    fn overflow_buckets_come_from_the_arena_in_order_then_alone() {
        assert_eq!(
            arena_len(10),
            0,
            "a small table's arena would be committed memory"
        );
        let log2 = 15;
        let arena = arena_len(log2);
        assert_eq!(arena, 1 << log2, "as many as a same-size rebuild waits for");
        let table = Table::new(log2).unwrap();
        let size = std::mem::size_of::<Bucket>();
        let counted = |t: &Table| t.pool.counted.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            counted(&table),
            0,
            "an untaken arena is not counted as memory"
        );

        // The first overflow buckets are the arena's, in order.
        fill_chain_zero(&table, SLOTS * 4);
        assert_eq!((table.extra_overflow(), table.boxed_overflow()), (3, 0));
        assert_eq!(counted(&table), 3 * size);
        let mut bucket = &table.buckets()[0];
        for k in 0..3 {
            bucket = bucket.next().unwrap();
            assert!(
                std::ptr::eq(bucket, &table.pool_in_use()[k]),
                "arena bucket {k}"
            );
        }
        drop(table);

        // Past the arena's end each is a Box, freed with the table.
        let table = Table::new(log2).unwrap();
        fill_chain_zero(&table, SLOTS * (arena + 3));
        assert_eq!(table.extra_overflow(), arena + 2);
        assert_eq!(table.boxed_overflow(), 2);
        assert_eq!(table.pool_in_use().len(), arena);
        assert_eq!(counted(&table), arena * size);
        assert_eq!(table.overflow_count(), arena + 2);
        let mut chain = 0;
        table.for_each_chain_bucket(|index, _| chain += usize::from(index == 0));
        assert_eq!(chain, arena + 3, "every bucket is linked");
    }

    /// Pages of `bytes` at `ptr` (page-aligned) that are resident.
    #[cfg(target_os = "linux")]
    fn resident_pages(ptr: *const Bucket, bytes: usize) -> usize {
        let pages = bytes.div_ceil(4096);
        let mut vec = vec![0u8; pages];
        // SAFETY: `ptr` starts a mapping of at least `bytes` (rounded up to whole
        // pages, as a huge-page-aligned mapping is); mincore only reports.
        let rc = unsafe { libc::mincore(ptr as *mut libc::c_void, bytes, vec.as_mut_ptr()) };
        assert_eq!(rc, 0, "mincore: {}", std::io::Error::last_os_error());
        vec.iter().filter(|&&v| v & 1 != 0).count()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn prefault_brings_in_every_page_and_leaves_the_buckets_empty() {
        let len = 1 << 15;
        let array = BucketArray::new(len).unwrap();
        let bytes = len * std::mem::size_of::<Bucket>();
        let pages = bytes.div_ceil(4096);
        let ptr = array.as_slice().as_ptr();
        assert!(
            resident_pages(ptr, bytes) < pages,
            "a fresh mapping is not all resident"
        );
        array.prefault();
        assert_eq!(resident_pages(ptr, bytes), pages, "every page resident");
        assert!(array
            .as_slice()
            .iter()
            .all(|b| b.tophash.load(Ordering::Relaxed) == 0));
    }

    /// The permissions `/proc/self/maps` gives the page at `address`.
    #[cfg(target_os = "linux")]
    fn permissions(address: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let range = fields.next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let (start, end) = (
                usize::from_str_radix(start, 16).unwrap(),
                usize::from_str_radix(end, 16).unwrap(),
            );
            if (start..end).contains(&address) {
                return fields.next().unwrap().to_string();
            }
        }
        panic!("{address:#x} is not mapped");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_untaken_arena_is_reserved_not_writable_and_a_refusal_boxes_the_rest() {
        let log2 = 15;
        let table = Table::new(log2).unwrap();
        let base = table.pool.ptr.as_ptr() as usize;
        let size = std::mem::size_of::<Bucket>();
        assert_eq!(
            &permissions(base)[..3],
            "---",
            "no bucket taken: nothing writable"
        );
        fill_chain_zero(&table, SLOTS * 2);
        assert_eq!(
            &permissions(base)[..3],
            "rw-",
            "the first huge page, for the first bucket"
        );
        assert_eq!(
            &permissions(base + HUGE_PAGE)[..3],
            "---",
            "the rest still reserved"
        );

        // Take up to the end of the first huge page, then the kernel refuses.
        let per_page = HUGE_PAGE / size;
        fill_chain_zero_from(&table, SLOTS * 2, SLOTS * (per_page + 1));
        assert_eq!((table.arena_taken(), table.boxed_overflow()), (per_page, 0));
        table
            .pool
            .refuse_more
            .store(true, std::sync::atomic::Ordering::Relaxed);
        fill_chain_zero_from(&table, SLOTS * (per_page + 1), SLOTS * (per_page + 4));
        assert_eq!(table.boxed_overflow(), 3, "refused: allocated alone");
        assert_eq!(
            table.arena_taken(),
            per_page,
            "the taken arena stays a prefix"
        );
        assert_eq!(table.pool_in_use().len(), per_page);
        assert_eq!(table.overflow_count(), per_page + 3);
        let mut chain = 0;
        table.for_each_chain_bucket(|index, _| chain += usize::from(index == 0));
        assert_eq!(chain, per_page + 4, "every bucket is linked");
    }
}
