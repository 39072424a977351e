//! A bucket: eight slots, Go style.
//!
//! ```text
//! offset  0: tophash   [u8; 8]   one byte per slot, read as one u64 word
//! offset  8: slots     [*Entry; 8]
//! offset 72: overflow  *Bucket   the next bucket of this chain, or null
//! offset 80: frags     [u32; 8]  the low 32 bits of each slot's hash
//! size 112
//! ```
//!
//! `tophash` is Go's: the top byte of the hash for an occupied slot, or a small
//! reserved value for an empty one ([`EMPTY_REST`], [`EMPTY_ONE`]). A lookup loads
//! the eight bytes as one word and matches them all at once (SWAR), so it touches
//! only the slots whose tophash matches. Go also reserves values for the states of
//! its incremental evacuation; this table never evacuates in place (it rebuilds
//! off to the side and publishes), so it needs only two.
//!
//! `frags` hold the low 32 bits of each slot's hash, the bits that choose a bucket.
//! They let a grow place every entry without dereferencing it (so the rehash is a
//! pure function of the bucket arrays, which a GPU can run), and they order the
//! weakly consistent iteration. They are read and written only under the write
//! flag; readers never look at them.
//!
//! Publication order for a new slot: frag, then the slot pointer (Release), then
//! the tophash word (Release). A reader loads the tophash word (Acquire), then the
//! slot pointer (Acquire): if it sees the tophash it sees the pointer.

use super::entry::Entry;
use crate::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

/// Slots in a bucket.
pub(crate) const SLOTS: usize = 8;
/// Tophash of an empty slot after which the rest of the chain is empty too.
pub(crate) const EMPTY_REST: u8 = 0;
/// Tophash of an empty slot with occupied slots after it in the chain.
pub(crate) const EMPTY_ONE: u8 = 1;
/// Smallest tophash of an occupied slot.
pub(crate) const MIN_TOPHASH: u8 = 2;

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// A mask with bit `8*i + 7` set for each byte `i` of `word` that is zero.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    // Per byte: (b & 0x7f) + 0x7f sets the high bit iff the low seven bits are not
    // all zero, and cannot carry into the next byte; or-ing `b` adds its own high
    // bit. So the high bit ends up clear exactly for zero bytes. Exact, unlike the
    // classic `(x - 0x01..) & !x & 0x80..`, which flags bytes after a zero too.
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

/// Iterates over the slot indexes named by a byte mask from the functions below.
#[derive(Clone, Copy)]
pub(crate) struct SlotMask(u64);

impl Iterator for SlotMask {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let index = (self.0.trailing_zeros() / 8) as usize;
        self.0 &= self.0 - 1;
        Some(index)
    }
}

/// The slots of `word` whose tophash is `tophash`.
#[inline]
pub(crate) fn matching(word: u64, tophash: u8) -> SlotMask {
    SlotMask(zero_bytes(word ^ (ONES * tophash as u64)))
}

/// The empty slots (`EMPTY_REST` or `EMPTY_ONE`) of `word`.
#[inline]
pub(crate) fn empty(word: u64) -> SlotMask {
    // Both reserved values are 0 or 1: clearing bit 0 of each byte makes them zero.
    SlotMask(zero_bytes(word & !ONES))
}

/// The occupied slots of `word`.
#[inline]
pub(crate) fn occupied(word: u64) -> SlotMask {
    SlotMask(!zero_bytes(word & !ONES) & (ONES << 7))
}

/// Whether `word` has an `EMPTY_REST` slot (so the chain ends in this bucket).
#[inline]
pub(crate) fn has_empty_rest(word: u64) -> bool {
    zero_bytes(word) != 0
}

/// The tophash byte of slot `index` in `word`.
#[inline]
pub(crate) fn byte(word: u64, index: usize) -> u8 {
    (word >> (8 * index)) as u8
}

/// `word` with the tophash byte of slot `index` set to `value`.
#[inline]
pub(crate) fn with_byte(word: u64, index: usize, value: u8) -> u64 {
    let shift = 8 * index;
    (word & !(0xff << shift)) | ((value as u64) << shift)
}

/// Starts loading both cache lines a lookup in `bucket` may need: the one with
/// its tophash word and the one with the end of its slot array (a bucket is 112
/// bytes, so the slot a lookup needs is often on the second line). Fetching both
/// at once turns two dependent misses (tophash, then slot) into one.
///
/// `bucket` may dangle: a prefetch never faults and has no architectural effect,
/// and the addresses are computed with `wrapping_add`, without dereferencing.
#[inline(always)]
pub(crate) fn prefetch(bucket: *const Bucket) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetches have no preconditions (see above).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = bucket.cast::<i8>();
        _mm_prefetch::<_MM_HINT_T0>(start);
        _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(8 + 8 * SLOTS - 1));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bucket;
}

/// Starts loading every cache line of `bucket` (112 bytes span two or three),
/// which may be null or dangle (as for [`prefetch`]): for a pass that reads
/// whole buckets: `Table::for_each_chain_bucket` and the rehash passes. (Not
/// under loom, whose models have no use for it.)
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn prefetch_whole(bucket: *const Bucket) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetches have no preconditions (see `prefetch`).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = bucket.cast::<i8>();
        _mm_prefetch::<_MM_HINT_T0>(start);
        _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(64));
        _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(std::mem::size_of::<Bucket>() - 1));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bucket;
}

/// Starts loading the cache line at `at`, which may dangle (computed with
/// `wrapping_add`, never dereferenced): for the policy's replay of a batch of
/// hits, which fetches every node and sketch block of the batch before it
/// touches any, so that their misses overlap.
#[inline(always)]
pub(crate) fn prefetch_line<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetches have no preconditions (see `prefetch`).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A bucket (see the module docs). All-zero bytes are a valid empty bucket.
#[repr(C)]
pub(crate) struct Bucket {
    /// One tophash byte per slot, byte `i` (little end first) for slot `i`.
    pub(crate) tophash: AtomicU64,
    /// The entries; null where the slot is empty.
    pub(crate) slots: [AtomicPtr<Entry>; SLOTS],
    /// The next bucket of the chain, or null.
    pub(crate) overflow: AtomicPtr<Bucket>,
    /// Low 32 bits of each occupied slot's hash (meaningless for empty slots).
    pub(crate) frags: [AtomicU32; SLOTS],
}

impl Bucket {
    /// An empty bucket.
    pub(crate) fn new() -> Bucket {
        Bucket {
            tophash: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            overflow: AtomicPtr::new(std::ptr::null_mut()),
            frags: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }

    /// The tophash word, as a reader sees it.
    #[inline]
    pub(crate) fn tophash_word(&self) -> u64 {
        self.tophash.load(Ordering::Acquire)
    }

    /// The next bucket of the chain.
    #[inline]
    pub(crate) fn next(&self) -> Option<&Bucket> {
        let next = self.overflow.load(Ordering::Acquire);
        // SAFETY: overflow pointers are null or point to buckets owned by the same
        // table, which outlives every reference handed out from it.
        unsafe { next.as_ref() }
    }

    /// Sets the tophash of slot `index`. Writer only (the flag is held).
    #[inline]
    pub(crate) fn set_tophash(&self, index: usize, value: u8) {
        let word = self.tophash.load(Ordering::Relaxed);
        self.tophash
            .store(with_byte(word, index, value), Ordering::Release);
    }

    /// Publishes `entry` in the empty slot `index`. Writer only.
    #[inline]
    pub(crate) fn fill(&self, index: usize, frag: u32, tophash: u8, entry: *mut Entry) {
        self.frags[index].store(frag, Ordering::Relaxed);
        self.slots[index].store(entry, Ordering::Release);
        self.set_tophash(index, tophash);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn word(bytes: [u8; 8]) -> u64 {
        u64::from_le_bytes(bytes)
    }

    #[test]
    fn layout_is_112_bytes() {
        assert_eq!(std::mem::size_of::<Bucket>(), 112);
    }

    #[test]
    fn matching_is_exact() {
        // Bytes after a zero byte are the classic SWAR trick's false positives.
        let w = word([0, 1, 7, 0, 7, 1, 255, 7]);
        assert_eq!(matching(w, 7).collect::<Vec<_>>(), vec![2, 4, 7]);
        assert_eq!(matching(w, 255).collect::<Vec<_>>(), vec![6]);
        assert_eq!(matching(w, 9).count(), 0);
        for value in 0..=255u8 {
            for i in 0..8 {
                let w = with_byte(word([MIN_TOPHASH; 8]), i, value);
                let expected: Vec<usize> = (0..8).filter(|&j| byte(w, j) == value).collect();
                assert_eq!(matching(w, value).collect::<Vec<_>>(), expected);
            }
        }
    }

    #[test]
    fn empty_and_occupied_partition_the_slots() {
        let w = word([0, 1, 2, 0, 200, 1, 255, 3]);
        assert_eq!(empty(w).collect::<Vec<_>>(), vec![0, 1, 3, 5]);
        assert_eq!(occupied(w).collect::<Vec<_>>(), vec![2, 4, 6, 7]);
        assert!(has_empty_rest(w));
        assert!(!has_empty_rest(word([1, 2, 3, 4, 5, 6, 7, 8])));
    }
}
