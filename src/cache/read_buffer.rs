//! A shard's buffer of readers' hits, replayed into its eviction policy by the
//! holder of the shard's write flag.
//!
//! A policy wants to hear of every hit (to reorder its lists and count
//! frequencies), but readers never lock, and a reader must not write a cache
//! line that every other reader writes too. So, as Caffeine's read buffers do, a
//! hit is recorded as an event in one of several stripes, picked by the reading
//! thread's id, and the policy sees the events later, in a batch, when a writer
//! (or a reader whose stripe filled up) drains them under the flag.
//!
//! The buffer is lossy on purpose: an event that finds its stripe full, or that
//! two threads sharing a stripe write to the same slot at once, may be dropped
//! or replayed garbled. Events are hints (a node index and the key's hash
//! fragment, which the policy checks against the node before it trusts it), so a
//! lost or stale event costs a little hit ratio, never correctness.
//!
//! Invariants:
//! - Only the drainer (the flag holder) writes `head`; readers write `tail` and
//!   the slots. Every field is atomic, so a race between readers is a lost
//!   event, not undefined behaviour.
//! - A reader writes slot `tail % SLOTS` only when `tail - head < SLOTS` as it
//!   read them, so with one reader per stripe no undrained event is ever
//!   overwritten (the loom model below checks this: every event pushed
//!   without overflow is drained exactly once).
//! - `pending` is set by a reader only when it is clear (one store per drain
//!   period, not per hit), and cleared by the drainer before it reads the
//!   stripes. A push that races a drain can find `pending` still set, just
//!   before the drainer clears it, while the drainer misses its tail: that event
//!   then waits in its stripe, undrained and unflagged, until the next push to
//!   the shard sets `pending` again, or its stripe fills and its reader drains
//!   regardless of the bit (in a shard whose readers drain, see `bounds.rs`).
//!   It is delayed, never lost: a drain advances `head` only to the tail it
//!   read. Closing that window would take a full fence on every hit (a store
//!   then a load of another location), which is what the buffer exists to
//!   avoid. Single-threaded, events are replayed exactly and in order.

use crate::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Events a stripe holds.
pub(crate) const SLOTS: usize = 32;

/// One event: the hit entry's policy node, and the low 32 bits of its key's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) node: u32,
    pub(crate) frag: u32,
}

impl Hit {
    fn pack(self) -> u64 {
        (u64::from(self.node) << 32) | u64::from(self.frag)
    }

    fn unpack(word: u64) -> Hit {
        Hit {
            node: (word >> 32) as u32,
            frag: word as u32,
        }
    }
}

/// One stripe, on a line pair of its own.
#[repr(align(128))]
struct Stripe {
    /// Events pushed so far (wrapping); written by readers.
    tail: AtomicU32,
    /// Events drained so far (wrapping); written by the drainer.
    head: AtomicU32,
    slots: [AtomicU64; SLOTS],
}

/// What [`ReadBuffer::push`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Recorded.
    Recorded,
    /// The stripe is full: the event was dropped; the caller should drain the
    /// buffer if it can take the flag without waiting.
    Full,
}

/// The stripes of one shard (see the module docs).
pub(crate) struct ReadBuffer {
    stripes: Box<[Stripe]>,
    /// Whether any stripe may hold events (set by readers when clear).
    pending: AtomicBool,
}

impl ReadBuffer {
    /// A buffer of `stripes` stripes (rounded up to a power of two).
    pub(crate) fn new(stripes: usize) -> ReadBuffer {
        let count = stripes.max(1).next_power_of_two();
        ReadBuffer {
            stripes: (0..count)
                .map(|_| Stripe {
                    tail: AtomicU32::new(0),
                    head: AtomicU32::new(0),
                    slots: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            pending: AtomicBool::new(false),
        }
    }

    /// Records `hit` in the stripe of the thread whose stripe number is `thread`.
    #[inline]
    pub(crate) fn push(&self, thread: usize, hit: Hit) -> Pushed {
        let stripe = &self.stripes[thread & (self.stripes.len() - 1)];
        let tail = stripe.tail.load(Ordering::Relaxed);
        let head = stripe.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) as usize >= SLOTS {
            return Pushed::Full;
        }
        stripe.slots[tail as usize % SLOTS].store(hit.pack(), Ordering::Relaxed);
        // Release: the drainer that sees the new tail sees the slot.
        stripe.tail.store(tail.wrapping_add(1), Ordering::Release);
        if !self.pending.load(Ordering::Relaxed) {
            self.pending.store(true, Ordering::Release);
        }
        Pushed::Recorded
    }

    /// Whether a drain would find anything (cheap: one shared load).
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Hands every recorded event to `f`, oldest first within each stripe.
    /// Only the holder of the shard's write flag may drain.
    pub(crate) fn drain(&self, mut f: impl FnMut(Hit)) {
        self.pending.store(false, Ordering::Relaxed);
        for stripe in self.stripes.iter() {
            let head = stripe.head.load(Ordering::Relaxed);
            let tail = stripe.tail.load(Ordering::Acquire);
            // A tail more than SLOTS ahead can only come from racing readers
            // of one stripe: replay the last SLOTS slots.
            let count = tail.wrapping_sub(head).min(SLOTS as u32);
            let start = tail.wrapping_sub(count);
            for i in 0..count {
                let slot = start.wrapping_add(i) as usize % SLOTS;
                f(Hit::unpack(stripe.slots[slot].load(Ordering::Relaxed)));
            }
            // Release: a reader that sees the new head may reuse the slots.
            stripe.head.store(tail, Ordering::Release);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_in_order_per_stripe_and_a_full_stripe_drops() {
        let buffer = ReadBuffer::new(2);
        for i in 0..SLOTS as u32 {
            assert_eq!(buffer.push(0, Hit { node: i, frag: !i }), Pushed::Recorded);
        }
        assert_eq!(buffer.push(0, Hit { node: 99, frag: 0 }), Pushed::Full);
        assert_eq!(buffer.push(1, Hit { node: 7, frag: 8 }), Pushed::Recorded);
        assert!(buffer.is_pending());
        let mut seen = Vec::new();
        buffer.drain(|hit| seen.push(hit));
        assert!(!buffer.is_pending());
        let mut expected: Vec<Hit> = (0..SLOTS as u32)
            .map(|i| Hit { node: i, frag: !i })
            .collect();
        expected.push(Hit { node: 7, frag: 8 });
        assert_eq!(seen, expected);
        // Drained: the stripe takes events again, and nothing is replayed twice.
        assert_eq!(buffer.push(0, Hit { node: 5, frag: 5 }), Pushed::Recorded);
        let mut again = Vec::new();
        buffer.drain(|hit| again.push(hit));
        assert_eq!(again, vec![Hit { node: 5, frag: 5 }]);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// One reader pushing three events while the flag holder drains: every
    /// event that was recorded is replayed exactly once and in order, at the
    /// latest by the drain after the next push (see the module docs: a push that
    /// races a drain may be delayed, never lost or replayed twice).
    #[test]
    fn recorded_hits_are_drained_exactly_once() {
        loom::model(|| {
            let buffer = std::sync::Arc::new(ReadBuffer::new(1));
            let reader = {
                let buffer = buffer.clone();
                loom::thread::spawn(move || {
                    let mut recorded = Vec::new();
                    for node in 0..3 {
                        if buffer.push(0, Hit { node, frag: node }) == Pushed::Recorded {
                            recorded.push(node);
                        }
                    }
                    recorded
                })
            };
            let mut drained = Vec::new();
            buffer.drain(|hit| drained.push(hit.node));
            let mut recorded = reader.join().unwrap();
            // A later push flags the buffer, and the drain after it replays
            // whatever the first drain missed.
            assert_eq!(buffer.push(0, Hit { node: 9, frag: 9 }), Pushed::Recorded);
            recorded.push(9);
            assert!(buffer.is_pending(), "a push must flag the buffer");
            buffer.drain(|hit| drained.push(hit.node));
            assert_eq!(drained, recorded);
        });
    }
}
