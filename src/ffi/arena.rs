//! Handle memory that is never given back to the allocator, and the handle values
//! that designate it.
//!
//! A `mapcache_t *`, `mapcache_iter_t *` or `mapcache_load_result *` is not the
//! address of anything: it is
//! a [`Handle`] value that names a slot of an arena and a generation of that
//! slot, and the library decodes it on every call. This is what makes a stale or
//! foreign handle detectable without undefined behaviour:
//! - [`Arena::find`] decodes a pointer by arithmetic alone, so any value a host
//!   passes (foreign, misaligned, freed, wild) is either rejected or resolves to
//!   one of the arena's slots, and is never dereferenced;
//! - slots live until the process exits, so a handle always resolves to valid
//!   memory, even long after it was freed;
//! - each slot counts the handles it has held (its generation); a handle is live
//!   only while its generation is the slot's current one and the slot is live,
//!   so a handle freed long ago is told from the newer handle now in its slot.
//!
//! A slot is reused after its handle is freed (memory stays bounded by the most
//! handles ever live at once), under the next generation. A slot that has held
//! 2^32 handles is retired instead of wrapping its generation: a stale handle is
//! rejected for as long as the process lives, at the cost of one slot (a few
//! dozen bytes) per 2^32 handles.
//!
//! The encoding, 64 bits:
//!
//! ```text
//!   63..55  54..53  52..32        31..0
//!   1...1   kind    slot index    generation
//! ```
//!
//! With bits 63 to 55 all set, a handle lies above every user address space the
//! library runs on (x86-64 with 4- or 5-level paging, AArch64 with or without
//! top-byte tagging, RISC-V Sv39 to Sv57: the kernel half or non-canonical), so it
//! can never equal the address of a host object, a foreign pointer is rejected
//! by its top bits, a garbage collector that scans it (Go keeps handles in
//! `unsafe.Pointer`s) never finds it inside its heap, and a host that dereferences
//! it faults at once. No address space is reserved: reserving 4 GiB per slot, as
//! a range of real addresses with 2^32 generations per slot would need, exceeds
//! what valgrind can map (32 GiB) at 8 slots.
//!
//! Slots come in chunks of [`CHUNK_LEN`], allocated as needed and found through a
//! fixed directory, so [`Arena::find`] is a mask, a shift and two loads.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;

/// Slots per chunk (a power of two).
// Handle values use all 64 bits of a pointer (see the module docs): on a 32-bit
// target the tag and the slot index would not fit.
const _: () = assert!(
    usize::BITS == 64,
    "mapcache's C handles need 64-bit pointers"
);

const CHUNK_BITS: u32 = 8;
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
/// Most slots an arena holds (live handles of one kind, plus retired slots):
/// every index the handle's 21 bits can name.
pub(crate) const MAX_SLOTS: usize = 1 << 21;
/// Entries of the chunk directory (its untouched part costs no memory).
const MAX_CHUNKS: usize = MAX_SLOTS / CHUNK_LEN;

/// Bits 63..55, set in every handle.
const HANDLE_TAG: u64 = 0xff80_0000_0000_0000;
/// The tag and the two kind bits: what `find` compares.
const TAG_AND_KIND: u64 = 0xffe0_0000_0000_0000;
const KIND_SHIFT: u32 = 53;
const INDEX_SHIFT: u32 = 32;
const INDEX_MASK: u64 = (1 << 21) - 1;

// Slot indices fit their 21 bits, below the kind bits.
const _: () = assert!(INDEX_MASK << INDEX_SHIFT < 1 << KIND_SHIFT);
// The kind bits lie below the tag.
const _: () = assert!((3 << KIND_SHIFT) & HANDLE_TAG == 0);
const _: () = assert!(TAG_AND_KIND == HANDLE_TAG | 3 << KIND_SHIFT);
// Slot indices fit their 21 bits.
const _: () = assert!(MAX_SLOTS as u64 == INDEX_MASK + 1);

/// Which arena a handle belongs to (bits 54..53 of the handle), so that a
/// handle of one kind passed as another is foreign.
#[derive(Clone, Copy)]
#[repr(u64)]
pub(crate) enum Kind {
    Cache = 0,
    Iterator = 1,
    /// The result object a loader of `mapcache_get_or_load` fills.
    LoadResult = 2,
}

/// A slot's state word: the generation of the slot's latest handle in the low
/// 32 bits, and two flags.
const LIVE: u64 = 1 << 32;
/// The slot has held at least one handle (a never-used slot has generation 0
/// too, but no handle of it was ever given out).
const ISSUED: u64 = 1 << 33;

/// One slot: the state word and what the handle owns.
pub(crate) struct Slot<T> {
    state: AtomicU64,
    /// Fixed at creation: the slot's position, for encoding its handles.
    index: u32,
    value: T,
}

/// A pool of `T` slots that lives as long as the process (see the module docs).
pub(crate) struct Arena<T: 'static> {
    /// `HANDLE_TAG` and the kind bit: bits 63..54 of this arena's handles.
    tag: u64,
    /// Base of chunk `k` (slots `k * CHUNK_LEN ..`), NULL until it is allocated;
    /// stored once, with Release, after the chunk is initialised.
    chunks: [AtomicPtr<Slot<T>>; MAX_CHUNKS],
    /// Allocation state: only `alloc` and `release` take it, never a lookup.
    free: Mutex<Free<T>>,
}

struct Free<T: 'static> {
    /// Slots handed out so far (the next fresh slot's index).
    used: usize,
    /// Slots whose handle was freed, ready for their next generation.
    freed: Vec<&'static Slot<T>>,
}

/// What a handle value designates: a slot at one generation. Whether that
/// handle is still live is [`Handle::status`]'s question.
pub(crate) struct Handle<T: 'static> {
    slot: &'static Slot<T>,
    generation: u32,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Handle<T> {
        *self
    }
}
impl<T> Copy for Handle<T> {}

/// Where a handle stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// The slot's current handle, not freed.
    Live,
    /// The slot's current handle, freed (the slot is not reused yet).
    Freed,
    /// Freed, and its slot has held a newer handle since.
    Stale,
    /// A generation the slot never had: a foreign or corrupted value.
    NeverIssued,
}

/// Every slot of the arena is in use (`MAX_SLOTS` handles live at once).
#[derive(Debug)]
pub(crate) struct Exhausted;

impl<T: Default + Sync + 'static> Arena<T> {
    pub(crate) const fn new(kind: Kind) -> Arena<T> {
        Arena {
            tag: HANDLE_TAG | (kind as u64) << KIND_SHIFT,
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS],
            free: Mutex::new(Free {
                used: 0,
                freed: Vec::new(),
            }),
        }
    }

    /// The handle value `p` encodes, if it is one of this arena's: its top bits
    /// and kind match and its slot index lies in a chunk allocated so far. Pure
    /// arithmetic on `p`, which is never dereferenced. (The generation is not
    /// checked here: see [`Handle::status`].)
    #[inline]
    pub(crate) fn find<P>(&self, p: *const P) -> Option<Handle<T>> {
        let bits = p as usize as u64;
        if bits & TAG_AND_KIND != self.tag {
            return None;
        }
        let index = ((bits >> INDEX_SHIFT) & INDEX_MASK) as usize;
        let base = self.chunks[index >> CHUNK_BITS].load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY: a non-null chunk base is a leaked, never-freed allocation of
        // CHUNK_LEN initialised slots (initialised before the Release store that
        // the Acquire load above read), and the offset is below CHUNK_LEN.
        let slot = unsafe { &*base.add(index & (CHUNK_LEN - 1)) };
        Some(Handle {
            slot,
            generation: bits as u32,
        })
    }

    /// A new live handle: a freed slot under its next generation, else a fresh
    /// slot. The slot's value is left as its previous handle left it.
    pub(crate) fn alloc(&self) -> Result<Handle<T>, Exhausted> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (slot, generation) = match free.freed.pop() {
            // A freed slot's generation is below u32::MAX (see `release`).
            Some(slot) => (slot, slot.state.load(Ordering::Relaxed) as u32 + 1),
            None => (self.fresh(&mut free)?, 0),
        };
        // Before the caller publishes anything in the slot's value: a stale
        // handle that sees the new value then sees the new generation too.
        slot.state
            .store(ISSUED | LIVE | u64::from(generation), Ordering::Release);
        Ok(Handle { slot, generation })
    }

    /// The next never-used slot, allocating its chunk when it is the first.
    fn fresh(&self, free: &mut Free<T>) -> Result<&'static Slot<T>, Exhausted> {
        let index = free.used;
        if index == MAX_SLOTS {
            return Err(Exhausted);
        }
        let chunk = &self.chunks[index >> CHUNK_BITS];
        let offset = index & (CHUNK_LEN - 1);
        if offset == 0 {
            let slots: Box<[Slot<T>]> = (0..CHUNK_LEN)
                .map(|i| Slot {
                    state: AtomicU64::new(0),
                    index: (index + i) as u32,
                    value: T::default(),
                })
                .collect();
            // Leaked on purpose: slots must outlive every handle a host may keep.
            chunk.store(Box::leak(slots).as_mut_ptr(), Ordering::Release);
        }
        free.used += 1;
        // Only `alloc`, under the lock this caller holds, stores chunk bases.
        let base = chunk.load(Ordering::Relaxed);
        // SAFETY: the chunk of `index` was allocated when its first slot was
        // handed out (above, now or earlier): a leaked allocation of CHUNK_LEN
        // initialised slots, and offset < CHUNK_LEN.
        Ok(unsafe { &*base.add(offset) })
    }

    /// Takes back the slot of a handle that [`Handle::kill`] freed, for reuse
    /// under its next generation; a slot whose generations are used up is
    /// retired instead (never reused, so its handles stay rejected).
    pub(crate) fn release(&self, handle: Handle<T>) {
        if handle.generation == u32::MAX {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.freed.push(handle.slot);
    }

    /// The value a host holds for `handle`.
    pub(crate) fn address<P>(&self, handle: Handle<T>) -> *mut P {
        let bits =
            self.tag | u64::from(handle.slot.index) << INDEX_SHIFT | u64::from(handle.generation);
        // The value is never dereferenced (by the library; a host must not): an
        // integer in pointer clothing, with no provenance to speak of.
        bits as usize as *mut P
    }
}

impl<T> Handle<T> {
    /// What the slot owns (shared by all its generations: check
    /// [`Handle::status`] before trusting it is this handle's).
    #[inline]
    pub(crate) fn value(self) -> &'static T {
        &self.slot.value
    }

    /// Where this handle stands now (Acquire: a `Live` answer is ordered after
    /// the allocation that made it live).
    #[inline]
    pub(crate) fn status(self) -> Status {
        self.status_of(self.slot.state.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn is_live(self) -> bool {
        self.slot.state.load(Ordering::Acquire) == ISSUED | LIVE | u64::from(self.generation)
    }

    fn status_of(self, state: u64) -> Status {
        let current = state as u32;
        if state & ISSUED == 0 || self.generation > current {
            Status::NeverIssued
        } else if self.generation < current {
            Status::Stale
        } else if state & LIVE != 0 {
            Status::Live
        } else {
            Status::Freed
        }
    }

    /// Frees the handle: live to freed, exactly once over all threads. Fails
    /// with the handle's status when it is not live (a double free, a stale or
    /// never-issued handle); the slot is then left alone.
    pub(crate) fn kill(self) -> Result<(), Status> {
        let live = ISSUED | LIVE | u64::from(self.generation);
        self.slot
            .state
            .compare_exchange(live, live & !LIVE, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
            .map_err(|state| self.status_of(state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[derive(Default)]
    struct Value {
        word: AtomicU32,
    }

    fn arena() -> &'static Arena<Value> {
        Box::leak(Box::new(Arena::new(Kind::Cache)))
    }

    fn addr(arena: &Arena<Value>, h: Handle<Value>) -> *const u8 {
        arena.address::<u8>(h)
    }

    #[test]
    fn find_decodes_exactly_the_handles_given_out() {
        let arena = arena();
        let handles: Vec<_> = (0..CHUNK_LEN * 2 + 5)
            .map(|_| arena.alloc().unwrap())
            .collect();
        // Three chunks.
        assert!(!arena.chunks[2].load(Ordering::Relaxed).is_null());
        assert!(arena.chunks[3].load(Ordering::Relaxed).is_null());
        for (i, h) in handles.iter().enumerate() {
            h.value().word.store(i as u32, Ordering::Relaxed);
        }
        for (i, h) in handles.iter().enumerate() {
            let found = arena.find(addr(arena, *h)).expect("a handle is found");
            assert!(ptr::eq(found.value(), h.value()));
            assert_eq!(found.value().word.load(Ordering::Relaxed), i as u32);
            assert_eq!(found.status(), Status::Live);
        }
        let first = addr(arena, handles[0]);
        // The next generation of a slot was never issued; the next index is in
        // an allocated chunk but was never used either.
        let next_generation = first.wrapping_add(1);
        assert_eq!(
            arena.find(next_generation).unwrap().status(),
            Status::NeverIssued
        );
        let unused_index = addr(arena, handles[handles.len() - 1]).wrapping_add(1 << 32);
        assert_eq!(
            arena.find(unused_index).unwrap().status(),
            Status::NeverIssued
        );
        // Beyond the allocated chunks; NULL; the stack; the other kind.
        assert!(arena
            .find(first.wrapping_add((CHUNK_LEN * 3) << 32))
            .is_none());
        assert!(arena.find(ptr::null::<u8>()).is_none());
        let local = 0u64;
        assert!(arena.find(&local).is_none());
        assert!(arena.find(first.wrapping_add(1 << KIND_SHIFT)).is_none());
        // Every top-bit pattern but the tag is foreign.
        for bit in 55..64 {
            assert!(arena
                .find((first as usize ^ (1 << bit)) as *const u8)
                .is_none());
        }
        // Another arena's handles name slots it has not allocated.
        let other = self::arena();
        assert!(other.find(first).is_none());
    }

    #[test]
    fn every_handle_value_decodes_without_touching_memory() {
        let arena = arena();
        let live = arena.alloc().unwrap();
        // Any value with the tag and kind resolves to a slot of the arena or to
        // nothing; walk the index bits and a few generations.
        for index_bit in 0..21 {
            for generation in [0u64, 1, u32::MAX as u64] {
                let bits = HANDLE_TAG | (1 << (INDEX_SHIFT + index_bit)) | generation;
                if let Some(h) = arena.find(bits as usize as *const u8) {
                    assert_ne!(h.status(), Status::Live);
                }
            }
        }
        assert_eq!(live.status(), Status::Live);
    }

    #[test]
    fn a_reused_slot_rejects_its_earlier_handles() {
        let arena = arena();
        let first = arena.alloc().unwrap();
        let first_addr = addr(arena, first);
        first.kill().unwrap();
        assert_eq!(first.status(), Status::Freed);
        assert_eq!(first.kill(), Err(Status::Freed));
        arena.release(first);
        let second = arena.alloc().unwrap();
        assert!(ptr::eq(second.value(), first.value()), "LIFO reuse");
        assert_ne!(addr(arena, second), first_addr);
        let stale = arena.find(first_addr).unwrap();
        assert_eq!(stale.status(), Status::Stale);
        assert_eq!(stale.kill(), Err(Status::Stale));
        assert_eq!(second.status(), Status::Live);
    }

    #[test]
    fn a_slot_is_retired_when_its_generations_run_out() {
        let arena = arena();
        let h = arena.alloc().unwrap();
        h.kill().unwrap();
        // Jump the slot to its last generation, as 2^32 - 1 reuses would.
        h.slot
            .state
            .store(ISSUED | u64::from(u32::MAX - 1), Ordering::Relaxed);
        arena.release(h);
        let last = arena.alloc().unwrap();
        assert_eq!(last.generation, u32::MAX);
        last.kill().unwrap();
        arena.release(last);
        // Not reused: the next handle gets a fresh slot, and both old ones stay
        // rejected.
        let next = arena.alloc().unwrap();
        assert!(!ptr::eq(next.value(), last.value()));
        assert_eq!(
            arena.find(addr(arena, last)).unwrap().status(),
            Status::Freed
        );
        assert_eq!(arena.find(addr(arena, h)).unwrap().status(), Status::Stale);
    }

    #[test]
    fn the_arena_reports_exhaustion() {
        let arena = arena();
        // As if MAX_SLOTS handles were live: no freed slot, no fresh one.
        arena.free.lock().unwrap().used = MAX_SLOTS;
        assert!(arena.alloc().is_err());
    }
}
