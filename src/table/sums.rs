//! A table's slot sums, kept as its writer changes slots: the number of
//! occupied slots and the wrapping sums of their entry words, frags and
//! tophash bytes. They are what a rebuild's result is checked against without
//! a pass over the old table: an engine that loses, duplicates or corrupts an
//! entry writes a table whose sums differ (the GPU engine's check,
//! `gpu/job.rs`; `gpu/abi.rs`'s `Checksum` is the same four numbers). Wrapping
//! sums, so the order of changes does not matter.
//!
//! Only the table's writer changes them (the shard's flag is held), and only
//! it or a rebuild (also under the flag) reads them, so each update is a plain
//! load and store of its own word. They are the standard library's atomics,
//! not loom's: no other thread touches them, and loom need not explore them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::entry::Entry;

/// The four sums at one time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    /// Occupied slots.
    pub(crate) entries: u64,
    /// Wrapping sum of their entry pointers, as words.
    pub(crate) slot_sum: u64,
    /// Wrapping sum of their frags.
    pub(crate) frag_sum: u64,
    /// Wrapping sum of their tophash bytes.
    pub(crate) tophash_sum: u64,
}

impl Sums {
    /// Adds (`sign` 1) or takes away (`sign` -1, wrapping) one occupied slot.
    fn add(&mut self, sign: u64, tophash: u8, frag: u32, entry: *const Entry) {
        self.entries = self.entries.wrapping_add(sign);
        self.slot_sum = self
            .slot_sum
            .wrapping_add(sign.wrapping_mul(entry as usize as u64));
        self.frag_sum = self.frag_sum.wrapping_add(sign.wrapping_mul(frag.into()));
        self.tophash_sum = self
            .tophash_sum
            .wrapping_add(sign.wrapping_mul(tophash.into()));
    }

    /// The sums of these slots and `other`'s together.
    pub(crate) fn plus(self, other: Sums) -> Sums {
        Sums {
            entries: self.entries.wrapping_add(other.entries),
            slot_sum: self.slot_sum.wrapping_add(other.slot_sum),
            frag_sum: self.frag_sum.wrapping_add(other.frag_sum),
            tophash_sum: self.tophash_sum.wrapping_add(other.tophash_sum),
        }
    }

    /// These sums with one more occupied slot.
    pub(crate) fn with(mut self, tophash: u8, frag: u32, entry: *const Entry) -> Sums {
        self.add(1, tophash, frag, entry);
        self
    }
}

/// The running sums of one table (see the module docs).
#[derive(Default)]
pub(crate) struct SlotSums {
    entries: AtomicU64,
    slot_sum: AtomicU64,
    frag_sum: AtomicU64,
    tophash_sum: AtomicU64,
}

impl SlotSums {
    pub(crate) fn new(sums: Sums) -> SlotSums {
        SlotSums {
            entries: AtomicU64::new(sums.entries),
            slot_sum: AtomicU64::new(sums.slot_sum),
            frag_sum: AtomicU64::new(sums.frag_sum),
            tophash_sum: AtomicU64::new(sums.tophash_sum),
        }
    }

    /// The sums now. Writer (or a rebuild under the flag) only.
    pub(crate) fn get(&self) -> Sums {
        Sums {
            entries: self.entries.load(Ordering::Relaxed),
            slot_sum: self.slot_sum.load(Ordering::Relaxed),
            frag_sum: self.frag_sum.load(Ordering::Relaxed),
            tophash_sum: self.tophash_sum.load(Ordering::Relaxed),
        }
    }

    fn set(&self, sums: Sums) {
        self.entries.store(sums.entries, Ordering::Relaxed);
        self.slot_sum.store(sums.slot_sum, Ordering::Relaxed);
        self.frag_sum.store(sums.frag_sum, Ordering::Relaxed);
        self.tophash_sum.store(sums.tophash_sum, Ordering::Relaxed);
    }

    /// A slot was filled. Writer only.
    #[inline]
    pub(crate) fn placed(&self, tophash: u8, frag: u32, entry: *const Entry) {
        self.set(self.get().with(tophash, frag, entry));
    }

    /// An occupied slot was emptied. Writer only.
    #[inline]
    pub(crate) fn removed(&self, tophash: u8, frag: u32, entry: *const Entry) {
        let mut sums = self.get();
        sums.add(u64::MAX, tophash, frag, entry);
        self.set(sums);
    }

    /// An occupied slot's entry was replaced by another (same key, same frag
    /// and tophash). Writer only.
    #[inline]
    pub(crate) fn replaced(&self, old: *const Entry, new: *const Entry) {
        let sum = self.slot_sum.load(Ordering::Relaxed);
        self.slot_sum.store(
            sum.wrapping_sub(old as usize as u64)
                .wrapping_add(new as usize as u64),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placing_then_removing_returns_to_the_start() {
        let sums = SlotSums::new(Sums::default());
        let (a, b) = (16 as *const Entry, 48 as *const Entry);
        sums.placed(7, 0xffff_ffff, a);
        sums.placed(200, 3, b);
        let two = sums.get();
        assert_eq!(two.entries, 2);
        assert_eq!(two.slot_sum, 64);
        assert_eq!(two.frag_sum, 0xffff_ffff + 3);
        assert_eq!(two.tophash_sum, 207);
        sums.replaced(b, a);
        assert_eq!(sums.get().slot_sum, 32);
        sums.removed(7, 0xffff_ffff, a);
        sums.removed(200, 3, a);
        assert_eq!(sums.get(), Sums::default());
    }
}
