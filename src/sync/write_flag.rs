//! The write flag: Go's `hashWriting` bit, made exact.
//!
//! One atomic word. Zero means free; otherwise it holds `WRITING | owner << 1`,
//! the id of the thread that holds it. Taking it is a compare-exchange from zero
//! with Acquire ordering and dropping it a Release store of zero, so whatever one
//! holder wrote to the table happens-before whatever the next holder reads.
//!
//! Two ways to take it, one per [`crate::Mode`]:
//! - [`WriteFlag::lock`] waits (spins briefly, then yields) until the flag is free:
//!   the concurrent mode, where any number of threads may write.
//! - [`WriteFlag::try_lock`] never waits: when the flag is taken it returns the
//!   holder's id, which the map turns into a misuse report naming both threads.
//!
//! Either way the flag really excludes other writers, so memory safety never
//! depends on whether a misuse was detected or reported.

use super::atomic::{spin_hint, yield_now, AtomicU64, Ordering};
use super::thread_id::ThreadId;

/// The bit that says "a write is in progress".
const WRITING: u64 = 1;

/// Spins before a waiting writer starts yielding its time slice.
const SPINS_BEFORE_YIELD: u32 = 64;

/// A write flag (see the module docs).
#[derive(Debug)]
pub(crate) struct WriteFlag {
    /// `0` when free, else `WRITING | owner_id << 1`.
    word: AtomicU64,
}

impl WriteFlag {
    pub(crate) fn new() -> WriteFlag {
        WriteFlag {
            word: AtomicU64::new(0),
        }
    }

    fn encode(owner: ThreadId) -> u64 {
        WRITING | (owner.get() << 1)
    }

    /// Takes the flag for `me` if it is free; otherwise returns the holder's id.
    #[inline]
    pub(crate) fn try_lock(&self, me: ThreadId) -> Result<FlagGuard<'_>, ThreadId> {
        match self
            .word
            .compare_exchange(0, Self::encode(me), Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Ok(FlagGuard { flag: self }),
            Err(word) => Err(ThreadId::from_raw(word >> 1).unwrap_or(me)),
        }
    }

    /// Takes the flag for `me`, waiting for the holder if there is one.
    #[inline]
    pub(crate) fn lock(&self, me: ThreadId) -> FlagGuard<'_> {
        if let Ok(guard) = self.try_lock(me) {
            return guard;
        }
        self.lock_slow(me)
    }

    #[cold]
    fn lock_slow(&self, me: ThreadId) -> FlagGuard<'_> {
        let mut spins = 0u32;
        loop {
            // Wait on a plain load so that waiting writers do not keep stealing the
            // cache line from the holder.
            while self.word.load(Ordering::Relaxed) != 0 {
                if spins < SPINS_BEFORE_YIELD {
                    spins += 1;
                    spin_hint();
                } else {
                    yield_now();
                }
            }
            if let Ok(guard) = self.try_lock(me) {
                return guard;
            }
        }
    }

    /// The thread holding the flag right now, if any. A hint (Relaxed): used by
    /// exclusive-mode readers to detect a write that overlaps them.
    #[inline]
    pub(crate) fn holder(&self) -> Option<ThreadId> {
        let word = self.word.load(Ordering::Relaxed);
        if word & WRITING == 0 {
            None
        } else {
            ThreadId::from_raw(word >> 1)
        }
    }
}

/// Proof of holding a [`WriteFlag`]; releases it when dropped, also on unwind.
#[must_use = "the flag is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct FlagGuard<'a> {
    flag: &'a WriteFlag,
}

impl Drop for FlagGuard<'_> {
    fn drop(&mut self) {
        self.flag.word.store(0, Ordering::Release);
    }
}
