//! Handle memory that is never given back to the allocator.
//!
//! `mapcache_t *` and `mapcache_iter_t *` point into arenas of slots that live
//! until the process exits. This is what makes a stale or foreign handle detectable
//! without undefined behaviour:
//! - [`Arena::find`] accepts a pointer only if it is the address of one of the
//!   arena's slots, by address arithmetic alone, so a foreign pointer is rejected
//!   without ever being read;
//! - a slot's memory stays valid after its handle is freed, so reading its tag word
//!   through a stale pointer is always defined.
//!
//! Freed slots are recycled, so memory stays bounded (by the most handles ever live
//! at once plus the quarantine), but only after [`QUARANTINE`] other slots have been
//! freed after them: a handle used soon after it was freed still finds its slot dead
//! rather than reused. (Once reused, a stale pointer designates the new handle; that
//! is memory-safe, but undetectable, as with any allocator.)
//!
//! Chunks double in size (`FIRST_CHUNK << k`), so [`Arena::find`] scans at most a
//! few chunk bounds, all read-mostly memory that every core can cache.

use std::collections::VecDeque;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Slots in the first chunk; chunk `k` holds `FIRST_CHUNK << k`.
const FIRST_CHUNK: usize = 64;
/// At most this many chunks (`64 * (2^40 - 1)` slots: more than memory can hold).
const MAX_CHUNKS: usize = 40;
/// A freed slot is reused only when more than this many freed slots are waiting.
pub(crate) const QUARANTINE: usize = 64;

/// A process-lifetime pool of `T` slots (see the module docs).
pub(crate) struct Arena<T: 'static> {
    /// Base of chunk `k`, valid once `k < published`.
    chunks: [AtomicPtr<T>; MAX_CHUNKS],
    /// Number of chunks whose base is stored (Release after the store).
    published: AtomicUsize,
    /// Allocation state: only `alloc` and `release` take it, never a lookup.
    state: Mutex<State<T>>,
}

struct State<T: 'static> {
    /// Slots of the newest chunk handed out so far.
    used_in_last: usize,
    /// Freed slots, oldest first.
    freed: VecDeque<&'static T>,
}

impl<T: Default + Sync + 'static> Arena<T> {
    pub(crate) const fn new() -> Arena<T> {
        Arena {
            chunks: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CHUNKS],
            published: AtomicUsize::new(0),
            state: Mutex::new(State {
                used_in_last: 0,
                freed: VecDeque::new(),
            }),
        }
    }

    fn chunk_len(k: usize) -> usize {
        FIRST_CHUNK << k
    }

    /// The slot at address `p`, if `p` is exactly the address of one of this
    /// arena's slots. Never dereferences `p`.
    #[inline]
    pub(crate) fn find(&self, p: *const T) -> Option<&'static T> {
        let size = std::mem::size_of::<T>();
        let published = self.published.load(Ordering::Acquire);
        for k in 0..published {
            let base = self.chunks[k].load(Ordering::Relaxed);
            let offset = (p as usize).wrapping_sub(base as usize);
            if offset < Self::chunk_len(k) * size {
                if offset % size != 0 {
                    return None;
                }
                // SAFETY: base is the start of a leaked, never-freed allocation of
                // chunk_len(k) initialised slots (published with Release, read
                // after the Acquire load of `published`), and offset is a whole
                // number of slots inside it, so the result is a valid &'static T
                // derived from the arena's own pointer.
                return Some(unsafe { &*base.byte_add(offset) });
            }
        }
        None
    }

    /// A slot for a new handle: a recycled one past the quarantine, else a fresh one.
    pub(crate) fn alloc(&self) -> &'static T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.freed.len() > QUARANTINE {
            if let Some(slot) = state.freed.pop_front() {
                return slot;
            }
        }
        let published = self.published.load(Ordering::Relaxed);
        if published == 0 || state.used_in_last == Self::chunk_len(published - 1) {
            assert!(published < MAX_CHUNKS, "mapcache handle arena exhausted");
            let len = Self::chunk_len(published);
            let chunk: Box<[T]> = (0..len).map(|_| T::default()).collect();
            // Leaked on purpose: slots must outlive every pointer a host may keep.
            let base = Box::leak(chunk).as_mut_ptr();
            self.chunks[published].store(base, Ordering::Relaxed);
            self.published.store(published + 1, Ordering::Release);
            state.used_in_last = 0;
        }
        let k = self.published.load(Ordering::Relaxed) - 1;
        let base = self.chunks[k].load(Ordering::Relaxed);
        let index = state.used_in_last;
        state.used_in_last += 1;
        // SAFETY: index < chunk_len(k), the chunk is a leaked allocation of that
        // many initialised slots, and this index was never handed out before.
        unsafe { &*base.add(index) }
    }

    /// Returns a slot whose handle was freed; it is reused after the quarantine.
    pub(crate) fn release(&self, slot: &'static T) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.freed.push_back(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[derive(Default)]
    struct Slot {
        word: AtomicU64,
    }

    fn arena() -> &'static Arena<Slot> {
        Box::leak(Box::new(Arena::new()))
    }

    #[test]
    fn find_accepts_exactly_the_slots() {
        let arena = arena();
        let slots: Vec<&'static Slot> = (0..FIRST_CHUNK * 3 + 5).map(|_| arena.alloc()).collect();
        // Three chunks: 64 + 128 + 256 slots cover 197.
        assert_eq!(arena.published.load(Ordering::Relaxed), 3);
        for (i, slot) in slots.iter().enumerate() {
            slot.word.store(i as u64, Ordering::Relaxed);
            let found = arena.find(*slot as *const Slot).expect("a slot is found");
            assert!(std::ptr::eq(found, *slot));
        }
        let first = slots[0] as *const Slot;
        // Inside a slot but not at its start; outside every chunk; NULL; the stack.
        assert!(arena
            .find(first.cast::<u8>().wrapping_add(1).cast())
            .is_none());
        assert!(arena.find(first.wrapping_sub(1)).is_none());
        assert!(arena.find(std::ptr::null()).is_none());
        let local = Slot::default();
        assert!(arena.find(&local).is_none());
        // Another arena's slots are foreign.
        let other = self::arena().alloc();
        assert!(arena.find(other).is_none());
    }

    #[test]
    fn freed_slots_wait_out_the_quarantine() {
        let arena = arena();
        let slots: Vec<&'static Slot> = (0..QUARANTINE + 1).map(|_| arena.alloc()).collect();
        let first = slots[0];
        for slot in &slots[..QUARANTINE] {
            arena.release(slot);
        }
        // Only QUARANTINE slots are waiting: a fresh slot, not a freed one.
        let fresh = arena.alloc();
        assert!(slots.iter().all(|s| !std::ptr::eq(*s, fresh)));
        // One more freed slot: the oldest comes back first.
        arena.release(slots[QUARANTINE]);
        assert!(std::ptr::eq(arena.alloc(), first));
    }
}
