//! A shard's slab: size-classed blocks for its small entries.
//!
//! Why not the global allocator for every entry: glibc's `malloc` puts an 8-byte
//! header before each block and rounds blocks to 16 bytes, so a typical small
//! entry (8-byte header, 16-byte key, 32-byte value: 56 bytes) occupies 64, and a
//! put spends about 40% of its instructions in `malloc` and `free` (callgrind).
//! A shard's writers are already serialised by its write flag, so the slab needs
//! no lock of its own to hand out blocks, and it stores none of malloc's headers.
//!
//! - Classes: class `c` holds blocks of `(c + 1) * 8` bytes, for entries of up to
//!   [`SLAB_MAX`] bytes; larger entries go to the global allocator, where one
//!   header is noise.
//! - Chunks: blocks are carved from chunks taken from the global allocator. A
//!   class's chunks double in size from [`FIRST_CHUNK`] to [`MAX_CHUNK`] bytes, so
//!   a small shard stays small and a big one pays one `malloc` per 64 KiB. Chunks
//!   go back only when the slab is dropped: a block freed in one class serves that
//!   class again (as memcached's slabs do), so a shard's slab memory is bounded by
//!   the peak of each class, not by the live data after a shift in sizes.
//! - Frees come from epoch-deferred closures, on any thread and at any time. They
//!   push the block onto its class's `returned` stack with a compare-exchange
//!   (Treiber's push). The allocator never pops one block from that stack: it
//!   takes the whole stack with one swap, into its private free list. With pushes
//!   and whole-stack takes only, a node is never removed while a pusher may still
//!   be comparing against it, so the stack has no ABA problem.
//!
//! Invariants:
//! - `ClassOwn` and `chunks` are touched only by the thread that holds the write
//!   flag serialising this shard's writers (the callers of [`Slab::alloc`]), or
//!   by `Drop`, which has `&mut self`.
//! - A block is in exactly one place: handed out (an entry), on a free list
//!   (`own.free` or `returned`), or not yet carved (between `bump` and `end`).
//! - The first 8 bytes of a free block hold the next free block's address; a
//!   block is written only while it is free (by a pusher, before the Release
//!   compare-exchange that publishes it) or by the entry that owns it.

use std::alloc::{self, Layout};
use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};

use crate::sync::atomic::{AtomicPtr, Ordering};

/// Entries of up to this many bytes (header included) live in the slab.
pub(crate) const SLAB_MAX: usize = 256;

/// Block sizes are multiples of this (also the blocks' alignment).
const GRAIN: usize = 8;

/// Number of size classes.
const CLASSES: usize = SLAB_MAX / GRAIN;

/// Bytes of a class's first chunk.
const FIRST_CHUNK: usize = 1024;

/// Bytes of a class's chunks once they have doubled up to it.
const MAX_CHUNK: usize = 64 * 1024;

/// A free block's link to the next one.
struct FreeBlock {
    next: *mut FreeBlock,
}

/// What only the allocating thread touches, per class.
struct ClassOwn {
    /// Private free list (taken from `returned`).
    free: *mut FreeBlock,
    /// The uncarved rest of the newest chunk: `[bump, end)`.
    bump: *mut u8,
    end: *mut u8,
    /// Bytes of this class's next chunk.
    next_chunk: usize,
}

/// One size class.
struct Class {
    /// Blocks freed by any thread, not yet taken by the allocator (see the module
    /// docs: push by compare-exchange, take all by swap).
    returned: AtomicPtr<FreeBlock>,
    /// The allocator's state (see the invariants).
    own: UnsafeCell<ClassOwn>,
}

/// A shard's slab (see the module docs).
pub(crate) struct Slab {
    classes: [Class; CLASSES],
    /// Every chunk taken from the global allocator, with its size: given back on
    /// drop. Allocator-only (see the invariants).
    chunks: UnsafeCell<Vec<(NonNull<u8>, usize)>>,
}

// SAFETY: the raw pointers are to chunks the slab owns; the allocator-only state
// is touched by one thread at a time (the write flag's holder, see the module
// invariants), and the shared state is atomic.
unsafe impl Send for Slab {}
// SAFETY: as for Send.
unsafe impl Sync for Slab {}

/// The class of a block of `size` bytes (`1..=SLAB_MAX`).
#[inline]
fn class_of(size: usize) -> usize {
    debug_assert!(size > 0 && size <= SLAB_MAX);
    (size - 1) / GRAIN
}

impl Slab {
    pub(crate) fn new() -> Slab {
        Slab {
            classes: std::array::from_fn(|_| Class {
                returned: AtomicPtr::new(ptr::null_mut()),
                own: UnsafeCell::new(ClassOwn {
                    free: ptr::null_mut(),
                    bump: ptr::null_mut(),
                    end: ptr::null_mut(),
                    next_chunk: FIRST_CHUNK,
                }),
            }),
            chunks: UnsafeCell::new(Vec::new()),
        }
    }

    /// Whether blocks of `size` bytes come from the slab.
    #[inline]
    pub(crate) fn serves(size: usize) -> bool {
        size <= SLAB_MAX
    }

    /// Bytes a block for `size` bytes occupies: `size` rounded up to the grain.
    #[inline]
    pub(crate) fn block_size(size: usize) -> usize {
        size.div_ceil(GRAIN) * GRAIN
    }

    /// A block of at least `size` bytes (`1..=SLAB_MAX`), aligned to 8; `None`
    /// when the global allocator is out of memory.
    ///
    /// # Safety
    /// The caller holds the write flag that serialises this slab's shard, so that
    /// no other thread runs `alloc` on this slab meanwhile.
    #[inline]
    pub(crate) unsafe fn alloc(&self, size: usize) -> Option<NonNull<u8>> {
        let class = &self.classes[class_of(size)];
        // SAFETY: per the contract this thread alone touches `own` now.
        let own = unsafe { &mut *class.own.get() };
        if own.free.is_null() && !class.returned.load(Ordering::Relaxed).is_null() {
            // Acquire: pairs with the pushers' Release, so their writes of the
            // links are visible before we follow them.
            own.free = class.returned.swap(ptr::null_mut(), Ordering::Acquire);
        }
        if let Some(block) = NonNull::new(own.free) {
            // SAFETY: a block on the free list is free, and its first 8 bytes hold
            // the next link (module invariants).
            own.free = unsafe { (*block.as_ptr()).next };
            return Some(block.cast());
        }
        let block = Slab::block_size(size);
        if (own.end as usize) - (own.bump as usize) < block {
            // SAFETY: forwarded contract: this thread alone touches `chunks`.
            unsafe { self.new_chunk(own, block)? };
        }
        let out = own.bump;
        // SAFETY: `[bump, end)` is uncarved chunk memory with room for `block`.
        own.bump = unsafe { own.bump.add(block) };
        NonNull::new(out)
    }

    /// Takes the class's next chunk from the global allocator.
    ///
    /// # Safety
    /// As for [`Slab::alloc`].
    #[cold]
    unsafe fn new_chunk(&self, own: &mut ClassOwn, block: usize) -> Option<()> {
        // Whole blocks only: the tail that cannot hold one is never carved.
        let bytes = own.next_chunk / block * block;
        let layout = Layout::from_size_align(bytes, GRAIN).ok()?;
        // SAFETY: `bytes` >= FIRST_CHUNK / 2 > 0 (blocks are at most SLAB_MAX).
        let chunk = NonNull::new(unsafe { alloc::alloc(layout) })?;
        // SAFETY: per the contract this thread alone touches `chunks`.
        unsafe { (*self.chunks.get()).push((chunk, bytes)) };
        own.bump = chunk.as_ptr();
        // SAFETY: one past the end of the chunk.
        own.end = unsafe { chunk.as_ptr().add(bytes) };
        own.next_chunk = (own.next_chunk * 2).min(MAX_CHUNK);
        Some(())
    }

    /// Gives a block back. Any thread, any time (lock-free).
    ///
    /// # Safety
    /// `block` came from [`Slab::alloc`] on this slab with the same `size`, and
    /// nothing reads or writes it any more.
    #[inline]
    pub(crate) unsafe fn free(&self, block: NonNull<u8>, size: usize) {
        // SAFETY: forwarded contract; a single block is a chain of one.
        unsafe { self.free_chain(block, block, size) }
    }

    /// Whether blocks for `a` and `b` bytes are of one size class.
    #[inline]
    pub(crate) fn same_class(a: usize, b: usize) -> bool {
        class_of(a) == class_of(b)
    }

    /// Makes free block `block` link to `next` (building a chain for
    /// [`Slab::free_chain`]).
    ///
    /// # Safety
    /// `block` is a free block of a slab (nothing else reads or writes it).
    #[inline]
    pub(crate) unsafe fn link(block: NonNull<u8>, next: NonNull<u8>) {
        // SAFETY: per the contract; blocks are 8-aligned and at least 8 bytes.
        unsafe { (*block.as_ptr().cast::<FreeBlock>()).next = next.as_ptr().cast() };
    }

    /// Gives back a chain of blocks, `head` linked (with [`Slab::link`]) through
    /// to `tail`, with one compare-exchange. Any thread, any time (lock-free).
    ///
    /// # Safety
    /// Every block of the chain came from [`Slab::alloc`] on this slab for a size
    /// of the class of `size`, and nothing reads or writes them any more.
    pub(crate) unsafe fn free_chain(&self, head: NonNull<u8>, tail: NonNull<u8>, size: usize) {
        let class = &self.classes[class_of(size)];
        let node = head.as_ptr().cast::<FreeBlock>();
        let tail = tail.as_ptr().cast::<FreeBlock>();
        let mut top = class.returned.load(Ordering::Relaxed);
        loop {
            // SAFETY: the tail block is ours (contract), 8-aligned, >= 8 bytes.
            unsafe { (*tail).next = top };
            // Release: the links written above (and by `link`) are visible to the
            // allocator's Acquire swap that takes the stack.
            match class.returned.compare_exchange_weak(
                top,
                node,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => top = now,
            }
        }
    }

    /// Whether any block was freed to the slab and not yet taken back, in any
    /// class (a probe for the loom model of `reclaim.rs`: `release_chunks`
    /// empties every class).
    #[cfg(all(test, loom))]
    pub(crate) fn has_returned_blocks(&self) -> bool {
        self.classes
            .iter()
            .any(|class| !class.returned.load(Ordering::Acquire).is_null())
    }

    /// Bytes of chunks the slab holds (carved or not).
    ///
    /// # Safety
    /// As for [`Slab::alloc`].
    #[cfg(all(test, not(loom)))]
    pub(crate) unsafe fn reserved(&self) -> usize {
        // SAFETY: forwarded contract.
        unsafe { (*self.chunks.get()).iter().map(|&(_, bytes)| bytes).sum() }
    }
}

impl Slab {
    /// Gives every chunk back to the global allocator now, before the slab is
    /// dropped: every block it handed out is gone with them, and the slab must
    /// serve no allocation and take no free afterwards.
    ///
    /// # Safety
    /// No allocation or free runs concurrently or afterwards, and no block of
    /// the slab is used afterwards.
    pub(crate) unsafe fn release_chunks(&self) {
        // SAFETY: per the contract no other thread touches the slab, so the
        // allocator-only state is ours.
        let chunks = std::mem::take(unsafe { &mut *self.chunks.get() });
        // Forget every block, so that nothing points into the freed chunks.
        for class in &self.classes {
            class.returned.store(ptr::null_mut(), Ordering::Relaxed);
            // SAFETY: allocator-only state, ours per the contract.
            let own = unsafe { &mut *class.own.get() };
            (own.free, own.bump, own.end) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        }
        // SAFETY: per the contract no block is used any more.
        unsafe { Self::free_chunks(&chunks) };
    }

    /// Gives `chunks` back to the global allocator.
    ///
    /// # Safety
    /// They are this slab's chunks, and no block in them is used any more.
    unsafe fn free_chunks(chunks: &[(NonNull<u8>, usize)]) {
        for &(chunk, bytes) in chunks {
            // SAFETY: each chunk was allocated in `new_chunk` with this layout,
            // and per the contract no block in it is used any more.
            unsafe {
                alloc::dealloc(
                    chunk.as_ptr(),
                    Layout::from_size_align_unchecked(bytes, GRAIN),
                )
            };
        }
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: `&mut self`, and the slab outlives every entry in it (its
        // owners hold it in an `Arc`); chunks given back by `release_chunks`
        // are no longer in the list.
        unsafe { Self::free_chunks(self.chunks.get_mut()) };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_distinct_aligned_and_reused_after_free() {
        let slab = Slab::new();
        let mut seen = std::collections::HashSet::new();
        let mut blocks = Vec::new();
        for i in 0..5000 {
            let size = 8 + (i % 31) * 8 + (i % 7);
            let size = size.min(SLAB_MAX);
            // SAFETY: single-threaded test: this thread is the only allocator.
            let block = unsafe { slab.alloc(size) }.unwrap();
            assert_eq!(block.as_ptr() as usize % GRAIN, 0);
            assert!(
                seen.insert(block.as_ptr() as usize),
                "block handed out twice"
            );
            // Writing the whole block must stay inside it (checked by Miri/ASan
            // runs; here it at least must not corrupt the other blocks' bytes).
            // SAFETY: the block has room for `size` bytes.
            unsafe { ptr::write_bytes(block.as_ptr(), (i % 251) as u8, size) };
            blocks.push((block, size, (i % 251) as u8));
        }
        for &(block, size, byte) in &blocks {
            // SAFETY: live blocks written above.
            let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), size) };
            assert!(bytes.iter().all(|&b| b == byte), "a block was overwritten");
        }
        // SAFETY: this thread is the only allocator.
        let reserved = unsafe { slab.reserved() };
        for &(block, size, _) in &blocks {
            // SAFETY: each block came from this slab with this size and is unused.
            unsafe { slab.free(block, size) };
        }
        // Freed blocks serve the same classes again, without new chunks.
        for &(_, size, _) in &blocks {
            // SAFETY: as above.
            let block = unsafe { slab.alloc(size) }.unwrap();
            assert!(
                seen.contains(&(block.as_ptr() as usize)),
                "not a reused block"
            );
        }
        // SAFETY: as above.
        assert_eq!(unsafe { slab.reserved() }, reserved);
    }

    #[test]
    fn frees_from_other_threads_all_come_back() {
        let slab = std::sync::Arc::new(Slab::new());
        // SAFETY: this thread is the only allocator.
        let blocks: Vec<usize> = (0..4000)
            .map(|_| unsafe { slab.alloc(56) }.unwrap().as_ptr() as usize)
            .collect();
        // SAFETY: as above.
        let reserved = unsafe { slab.reserved() };
        std::thread::scope(|s| {
            for part in blocks.chunks(1000) {
                let slab = &slab;
                s.spawn(move || {
                    for &b in part {
                        // SAFETY: each block is freed once, by one thread.
                        unsafe { slab.free(NonNull::new(b as *mut u8).unwrap(), 56) };
                    }
                });
            }
        });
        // SAFETY: the frees are done; this thread is the only allocator.
        let again: std::collections::HashSet<usize> = (0..4000)
            .map(|_| unsafe { slab.alloc(56) }.unwrap().as_ptr() as usize)
            .collect();
        assert_eq!(again.len(), 4000);
        assert!(again.iter().all(|b| blocks.contains(b)));
        // SAFETY: as above.
        assert_eq!(
            unsafe { slab.reserved() },
            reserved,
            "no new chunk was needed"
        );
    }

    #[test]
    fn block_sizes_round_to_the_grain() {
        assert_eq!(Slab::block_size(56), 56);
        assert_eq!(Slab::block_size(57), 64);
        assert_eq!(Slab::block_size(8), 8);
        assert!(Slab::serves(SLAB_MAX) && !Slab::serves(SLAB_MAX + 1));
    }
}

/// loom model of the free stack (run by `make test-loom`): a single free and a
/// chain free on two threads race the allocator's take, and no block is lost or
/// handed out twice.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    fn block(addr: usize) -> NonNull<u8> {
        NonNull::new(addr as *mut u8).unwrap()
    }

    #[test]
    fn frees_racing_an_allocation_lose_no_block() {
        loom::model(|| {
            let slab = Arc::new(Slab::new());
            // SAFETY (all allocs below): this thread is the slab's only allocator.
            let alloc = || unsafe { slab.alloc(56) }.unwrap().as_ptr() as usize;
            let (a, b, c) = (alloc(), alloc(), alloc());
            let single = {
                let slab = slab.clone();
                // SAFETY: `a` is freed once, by this thread, unused.
                loom::thread::spawn(move || unsafe { slab.free(block(a), 56) })
            };
            let chain = {
                let slab = slab.clone();
                loom::thread::spawn(move || {
                    // SAFETY: `b` and `c` are freed once, as one chain c -> b, unused.
                    unsafe {
                        Slab::link(block(c), block(b));
                        slab.free_chain(block(c), block(b), 56);
                    }
                })
            };
            let x = alloc();
            single.join().unwrap();
            chain.join().unwrap();
            let got = [x, alloc(), alloc(), alloc()];
            // Free blocks are used before new ones are carved: all three freed
            // blocks come back among the next four, and none is handed out twice.
            for freed in [a, b, c] {
                assert!(got.contains(&freed), "a freed block was lost");
            }
            let distinct: std::collections::HashSet<_> = got.iter().collect();
            assert_eq!(distinct.len(), 4, "a block was handed out twice");
        });
    }
}
