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
//! The flag is not fair: a thread that drops it and takes it again a few
//! instructions later nearly always wins against a waiter that is yielding. A
//! write holds it once, so that does not matter; a bulk job that takes it
//! chunk after chunk (a live snapshot load) would hold off the shard's other
//! writers for the whole job. Such a job takes it with
//! [`WriteFlag::lock_after_waiters`], which first lets a waiting writer in:
//! writers that may wait behind such a job take the flag with
//! [`WriteFlag::lock_counted`], which counts them in a [`Waiters`] while they
//! wait. The count is kept apart from the flag's word, so that the word stays
//! alone where its owner keeps it (a shard's write half is one 128-byte line
//! pair, full; its waiters live on a line of their own, touched only by
//! writers that wait).
//!
//! Either way the flag really excludes other writers, so memory safety never
//! depends on whether a misuse was detected or reported.

use super::atomic::{spin_hint, yield_now, AtomicU32, AtomicU64, Ordering};
use super::thread_id::ThreadId;

/// The bit that says "a write is in progress".
const WRITING: u64 = 1;

/// Spins before a waiting writer starts yielding its time slice.
const SPINS_BEFORE_YIELD: u32 = 64;

/// The most time slices [`WriteFlag::lock_after_waiters`] yields to let a
/// waiting writer take the flag: a waiter that is not running (a machine with
/// more threads than cores) cannot hold up the bulk job for longer. (Under
/// loom, each yield is an interleaving point: two keep the models small.)
#[cfg(not(loom))]
const HANDOFF_YIELDS: u32 = 256;
#[cfg(loom)]
const HANDOFF_YIELDS: u32 = 2;

/// A write flag (see the module docs).
#[derive(Debug)]
pub(crate) struct WriteFlag {
    /// `0` when free, else `WRITING | owner_id << 1`.
    word: AtomicU64,
}

/// The threads waiting for one [`WriteFlag`] in [`WriteFlag::lock_counted`]:
/// whom [`WriteFlag::lock_after_waiters`] lets in first. A hint (Relaxed): it
/// orders nothing; the flag's word alone says who holds the flag.
#[derive(Debug)]
pub(crate) struct Waiters(AtomicU32);

impl Waiters {
    pub(crate) fn new() -> Waiters {
        Waiters(AtomicU32::new(0))
    }
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

    /// As [`WriteFlag::lock`], counted in `waiters` while it waits, so that a
    /// bulk job holding the flag chunk after chunk lets it in.
    #[inline]
    pub(crate) fn lock_counted(&self, me: ThreadId, waiters: &Waiters) -> FlagGuard<'_> {
        if let Ok(guard) = self.try_lock(me) {
            return guard;
        }
        self.lock_counted_slow(me, waiters)
    }

    #[cold]
    fn lock_counted_slow(&self, me: ThreadId, waiters: &Waiters) -> FlagGuard<'_> {
        /// Uncounts the waiter when it stops waiting, however it stops.
        struct Counted<'a>(&'a Waiters);
        impl Drop for Counted<'_> {
            fn drop(&mut self) {
                self.0 .0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        waiters.0.fetch_add(1, Ordering::Relaxed);
        let _counted = Counted(waiters);
        self.lock_slow(me)
    }

    /// Takes the flag for `me` as a bulk job does before each of its chunks:
    /// when writers are waiting for it (`waiters`, the count their
    /// [`WriteFlag::lock_counted`] keeps), first waits (yielding, at most
    /// [`HANDOFF_YIELDS`] time slices) until one of them has taken it or none
    /// waits any more, then waits for the flag as [`WriteFlag::lock`] does. So
    /// a job that drops the flag between chunks lets a waiting writer have it
    /// there, and that writer waits about one chunk, not the whole job.
    pub(crate) fn lock_after_waiters(&self, me: ThreadId, waiters: &Waiters) -> FlagGuard<'_> {
        let mut yields = 0;
        while waiters.0.load(Ordering::Relaxed) > 0
            && self.word.load(Ordering::Relaxed) == 0
            && yields < HANDOFF_YIELDS
        {
            yields += 1;
            yield_now();
        }
        self.lock(me)
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

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::thread_id;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    /// A bulk job taking the flag twice with `lock_after_waiters` (two chunks)
    /// against a writer taking it with `lock_counted`: they never hold it together
    /// (loom's cell reports a concurrent write), nobody waits for ever (loom
    /// reports a deadlock), and the count of waiters is back to zero.
    #[test]
    fn a_bulk_job_and_a_writer_exclude_each_other_and_the_waiters_count_returns_to_zero() {
        loom::model(|| {
            let shared = Arc::new((WriteFlag::new(), UnsafeCell::new(0u32), Waiters::new()));
            let writer = {
                let shared = shared.clone();
                loom::thread::spawn(move || {
                    let _held = shared.0.lock_counted(thread_id::current(), &shared.2);
                    // SAFETY: the flag is held: no other access to the cell.
                    shared.1.with_mut(|n| unsafe { *n += 1 });
                })
            };
            for _ in 0..2 {
                let _held = shared.0.lock_after_waiters(thread_id::current(), &shared.2);
                // SAFETY: as above.
                shared.1.with_mut(|n| unsafe { *n += 10 });
            }
            writer.join().unwrap();
            // SAFETY: every other thread has finished.
            assert_eq!(shared.1.with(|n| unsafe { *n }), 21);
            assert_eq!(shared.2 .0.load(Ordering::Relaxed), 0);
            assert_eq!(shared.0.holder(), None);
        });
    }
}
