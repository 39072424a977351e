//! Chain filters: one 32-bit word per main bucket, a two-bit Bloom filter over
//! the keys of that bucket's chain, in an array of their own.
//!
//! A lookup of an absent key otherwise reads its bucket (a 112-byte bucket, a
//! cache miss on a large table) and, when the bucket is full, the overflow
//! buckets behind it. The filters are 4 bytes per main bucket, about one byte
//! per entry, so a table's filters are a small fraction of its buckets and stay
//! cached when its buckets do not: a lookup whose key's bits are not all set in
//! its chain's filter answers "absent" without touching the bucket.
//!
//! The two bits of a key come from hash bits a rehash has without dereferencing
//! the entry (see `bucket.rs`): the low five bits of its tophash (the hash's top
//! byte) and the top five bits of its frag (bits 27..32, above the bucket index
//! of any table of up to 2^27 buckets). At Go's load factor of 6.5 keys per
//! chain about 1 in 9 absent keys still reads its bucket (a false positive); at
//! the 3.25 right after a grow, about 1 in 30.
//!
//! **Invariant: a chain's filter is a superset of the bits of the keys its
//! chain holds, at every moment a reader can observe.** Writers (flag held) keep
//! it so:
//! - an insert ORs the key's bits in **before** it publishes the slot (the slot
//!   and tophash stores are Release and come after, so a reader that sees the
//!   key sees its bits);
//! - a delete unlinks the key first and then stores the filter recomputed from
//!   the keys left in the chain, with Release; a reader that loads that filter
//!   with Acquire (and so may answer "absent") also sees the unlink, and so does
//!   every thread that learns of its answer;
//! - a replacement keeps the key, hence its bits;
//! - a rehash computes each new chain's filter from the entries it places there,
//!   before the table is published.
//!
//! A filter is never cleared except by a delete's recomputation, so bits of
//! deleted keys never linger past their chain's next delete.

use crate::sync::atomic::{AtomicU32, Ordering};

/// The filter bits of a key with this frag and tophash.
#[inline]
pub(crate) fn bits(frag: u32, tophash: u8) -> u32 {
    (1 << (tophash & 31)) | (1 << (frag >> 27))
}

/// Whether a chain whose filter is `filter` may hold a key with filter `bits`.
#[inline]
pub(crate) fn may_contain(filter: u32, bits: u32) -> bool {
    filter & bits == bits
}

/// Starts loading the cache line of the filter at `filter`, which may dangle: a
/// prefetch never faults and has no architectural effect, and the caller
/// computes the address with `wrapping_add`, without dereferencing.
#[inline(always)]
pub(crate) fn prefetch(filter: *const u32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetches have no preconditions (see above).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(filter.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = filter;
}

/// The filters of a table's main buckets, all zero (empty chains) at first.
pub(crate) struct FilterArray {
    words: Box<[AtomicU32]>,
}

impl FilterArray {
    /// `len` empty filters.
    pub(crate) fn new(len: usize) -> FilterArray {
        FilterArray {
            words: (0..len).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The filter of chain `index`, as a reader sees it (Acquire: see the
    /// module docs for why a negative answer needs it).
    ///
    /// # Safety
    /// `index < len`. The caller's index is masked by the table's mask, and a
    /// table's filter array has one word per main bucket (asserted when the
    /// table is built).
    #[inline]
    pub(crate) unsafe fn load(&self, index: usize) -> u32 {
        // SAFETY: in bounds per the contract.
        unsafe { self.words.get_unchecked(index) }.load(Ordering::Acquire)
    }

    /// Adds `bits` to chain `index`'s filter, before the key is published.
    /// Writer only (the flag is held).
    #[inline]
    pub(crate) fn add(&self, index: usize, bits: u32) {
        let word = &self.words[index];
        let old = word.load(Ordering::Relaxed);
        if old & bits != bits {
            // Relaxed: the slot and tophash stores that publish the key are
            // Release and come after this one.
            word.store(old | bits, Ordering::Relaxed);
        }
    }

    /// Replaces chain `index`'s filter with `filter`, computed from the keys the
    /// chain holds after a delete. Writer only.
    #[inline]
    pub(crate) fn set(&self, index: usize, filter: u32) {
        self.words[index].store(filter, Ordering::Release);
    }

    /// The filter of chain `index` (for tests, at quiescent points).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn get(&self, index: usize) -> u32 {
        self.words[index].load(Ordering::Relaxed)
    }

    /// Where the words start, for prefetch hints (never dereferenced as such).
    pub(crate) fn as_ptr(&self) -> *const u32 {
        self.words.as_ptr().cast()
    }

    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_always_in_a_filter_holding_it() {
        for tophash in 0..=255u8 {
            for frag in [0, 1 << 27, u32::MAX, 0x1234_5678, 0xf000_0000] {
                let b = bits(frag, tophash);
                assert!(b.count_ones() >= 1 && b.count_ones() <= 2);
                assert!(may_contain(b, b));
                assert!(may_contain(b | 0x0101_0000, b));
                assert!(!may_contain(0, b));
            }
        }
    }

    #[test]
    fn the_two_bits_come_from_independent_hash_bits() {
        // Tophash bits 0..5 and frag bits 27..32: changing one moves one bit.
        assert_eq!(bits(0, 0), 1);
        assert_eq!(bits(0, 5), 1 << 5 | 1);
        assert_eq!(bits(3 << 27, 0), 1 << 3 | 1);
        assert_eq!(bits(0x07ff_ffff, 0xe0), 1, "bucket-index bits do not count");
    }

    #[test]
    fn add_and_set() {
        let filters = FilterArray::new(4);
        assert_eq!(filters.len(), 4);
        filters.add(2, 0b101);
        filters.add(2, 0b100);
        filters.add(2, 0b010);
        assert_eq!(filters.get(2), 0b111);
        // SAFETY: 2 < 4.
        assert_eq!(unsafe { filters.load(2) }, 0b111);
        filters.set(2, 0b010);
        assert_eq!(filters.get(2), 0b010);
        assert_eq!(filters.get(0) | filters.get(1) | filters.get(3), 0);
    }
}
