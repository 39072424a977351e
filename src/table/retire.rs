//! A shard's retire batch: entries its writers unlinked, handed to the epoch
//! together instead of one deferred free each.
//!
//! Why: a deferred free per entry cost every put four atomic read-modify-writes
//! on lines that both cores write in a 2-thread mix (the count of retired bytes
//! up and down, the shard memory's `Arc` count up and down; the down halves run
//! on whichever thread collects the garbage) and one compare-exchange on the
//! slab's free stack. Removing them took the 2-thread 90/10 mix from about 190
//! to about 166 ns per operation pair. A batch does them once per
//! [`BATCH_ENTRIES`] entries (or [`BATCH_BYTES`] bytes, so that large values do
//! not wait), and its small blocks of one size class go back to the slab as one
//! chain with one compare-exchange.
//!
//! Deferring an unlinked entry later than it could have been is always safe: the
//! epoch then frees it after even more readers are done. The cost is that up to
//! one batch per shard waits for the shard's next write (or the map's drop)
//! before it reaches the epoch; [`BATCH_BYTES`] bounds that memory.
//!
//! The batch belongs to the shard's writers: it is only touched by the thread
//! that holds the write flag serialising the shard (or by the shard's drop).

use std::ptr::NonNull;

use super::entry::{self, Entry};
use super::slab::Slab;

/// Entries a batch collects before it goes to the epoch (1 under loom, so that
/// the models see every entry's reclamation).
pub(crate) const BATCH_ENTRIES: usize = if cfg!(loom) { 1 } else { 64 };

/// Bytes a batch collects before it goes to the epoch, whatever its count.
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

/// Unlinked entries waiting to be handed to the epoch.
#[derive(Default)]
pub(crate) struct RetireBatch {
    entries: Vec<*mut Entry>,
    /// Their footprints, summed.
    bytes: usize,
}

impl RetireBatch {
    /// Adds an unlinked entry of `footprint` bytes; `true` when the batch is full
    /// and should be handed over with [`RetireBatch::take`].
    #[inline]
    pub(crate) fn push(&mut self, entry: *mut Entry, footprint: usize) -> bool {
        if self.entries.capacity() == 0 {
            self.entries.reserve_exact(BATCH_ENTRIES);
        }
        self.entries.push(entry);
        self.bytes += footprint;
        self.entries.len() >= BATCH_ENTRIES || self.bytes >= BATCH_BYTES
    }

    /// Empties the batch: its entries and their bytes.
    pub(crate) fn take(&mut self) -> (RetiredEntries, usize) {
        let entries = std::mem::replace(&mut self.entries, Vec::with_capacity(BATCH_ENTRIES));
        (RetiredEntries(entries), std::mem::take(&mut self.bytes))
    }

    /// Frees the large entries of the batch and leaves the small ones to their
    /// slab's drop (see `Table::free_large_entries`).
    ///
    /// # Safety
    /// The shard is being dropped: nothing can reach these entries, and their
    /// slab serves no allocation any more.
    pub(crate) unsafe fn free_large(&mut self) {
        for &entry in &self.entries {
            // SAFETY: per the contract the entry is unreachable and ours.
            unsafe { entry::free_if_large(entry) };
        }
        self.entries.clear();
        self.bytes = 0;
    }
}

/// A batch on its way through the epoch (see [`RetiredEntries::free`]).
pub(crate) struct RetiredEntries(Vec<*mut Entry>);

// SAFETY: the entries are unlinked and owned by this value alone; they are plain
// bytes, and freeing them into a slab is thread-safe.
unsafe impl Send for RetiredEntries {}

impl RetiredEntries {
    /// Frees the large entries and leaves the small ones to their slab's
    /// chunks, which the caller frees.
    ///
    /// # Safety
    /// Nothing can reach these entries any more, and their slab serves no
    /// allocation any more.
    pub(crate) unsafe fn free_large(self) {
        for entry in self.0 {
            // SAFETY: per the contract the entry is unreachable and ours.
            unsafe { entry::free_if_large(entry) };
        }
    }

    /// Frees the entries: large ones to the global allocator, small ones to
    /// `slab`, runs of one size class as one chain.
    ///
    /// # Safety
    /// The entries were made with `slab`, no table links them, and no reader can
    /// reach them any more (the epoch has passed).
    pub(crate) unsafe fn free(self, slab: &Slab) {
        let mut chain: Option<(NonNull<u8>, NonNull<u8>, usize)> = None;
        for entry in self.0 {
            // SAFETY: per the contract the entry is live until freed here.
            let size = unsafe { entry::size_of(entry) };
            if !Slab::serves(size) {
                // SAFETY: per the contract; a large entry is not in the slab.
                unsafe { entry::free_if_large(entry) };
                continue;
            }
            // SAFETY: an entry pointer is never null.
            let block = unsafe { NonNull::new_unchecked(entry.cast::<u8>()) };
            chain = match chain {
                Some((head, tail, class_size)) if Slab::same_class(class_size, size) => {
                    // SAFETY: `block` is free and ours; linking it is a write of
                    // its first 8 bytes.
                    unsafe { Slab::link(block, head) };
                    Some((block, tail, class_size))
                }
                other => {
                    if let Some((head, tail, class_size)) = other {
                        // SAFETY: a chain of free blocks of this class, ours.
                        unsafe { slab.free_chain(head, tail, class_size) };
                    }
                    Some((block, block, size))
                }
            };
        }
        if let Some((head, tail, class_size)) = chain {
            // SAFETY: as above.
            unsafe { slab.free_chain(head, tail, class_size) };
        }
    }
}
