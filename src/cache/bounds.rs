//! A bounded shard's cache state: its share of the bounds, its eviction policy,
//! and the buffer of readers' hits waiting to be replayed into the policy.
//!
//! What an entry is charged against `max_bytes` (its footprint, see
//! [`charge`]): the memory block it occupies (slab rounding included), its
//! share of the bucket array, and the policy's per-entry memory. The bucket
//! share is the worst case: a table holds between 3.25 and 6.5 entries per
//! 112-byte bucket (it doubles at 6.5), so an entry is charged 112 / 3.25 = 35
//! bytes of buckets, and the table's memory is always covered by the charges.

use std::cell::UnsafeCell;

use super::policy::Policy;
use super::read_buffer::ReadBuffer;
use crate::table::bucket::Bucket;

/// Bucket bytes charged per entry (see the module docs): `size / 3.25`, rounded up.
pub(crate) const SLOT_SHARE: usize = (std::mem::size_of::<Bucket>() * 4).div_ceil(13);

/// What an entry whose memory block is `footprint` bytes is charged.
#[inline]
pub(crate) const fn charge(footprint: usize) -> usize {
    footprint + SLOT_SHARE + Policy::BYTES_PER_ENTRY
}

/// What a bounded cache charges its smallest entry (an empty key and value,
/// with a deadline if `with_deadline`).
pub(crate) fn smallest_charge(with_deadline: bool) -> usize {
    charge(crate::table::entry::smallest_bounded_block(with_deadline))
}

/// The most entries bounds of `max_entries` and `max_bytes` (0: no such
/// bound) can hold, whatever the entries' sizes (a byte bound over the
/// smallest entry's charge, with a deadline if `with_deadline`); `None` when
/// there is neither bound.
pub(crate) fn most_entries(
    max_entries: usize,
    max_bytes: usize,
    with_deadline: bool,
) -> Option<usize> {
    let by_bytes = (max_bytes > 0).then(|| max_bytes / smallest_charge(with_deadline));
    let by_entries = (max_entries > 0).then_some(max_entries);
    match (by_entries, by_bytes) {
        (Some(e), Some(b)) => Some(e.min(b)),
        (e, b) => e.or(b),
    }
}

/// A small entry's memory block: its header, a 16-byte key and a 32-byte
/// value.
const TYPICAL_BLOCK: usize = 64;

/// What a byte bound assumes an entry is charged when it is turned into a
/// number of entries: a small entry's charge, [`charge`] of [`TYPICAL_BLOCK`]
/// (64 + 35 + 39 = 138 bytes). The one estimate for both places that need
/// one, the shard count of a cache bounded by `max_bytes` alone
/// (`Config::resolved_shards`) and [`READER_DRAIN_MAX_ENTRIES`] here: they
/// had an estimate each (96 bytes, without the policy's bytes, and 128),
/// which could only drift apart, and derived from [`charge`] it follows any
/// change of what an entry is charged.
pub(crate) const TYPICAL_CHARGE: usize = charge(TYPICAL_BLOCK);

/// The largest shard (in entries of capacity) whose readers drain a full hit
/// buffer themselves. Replaying a hit costs the policy a few cache misses once
/// its structures outgrow the CPU's caches (a sketch counter, a node and its
/// list neighbours): about 250 ns at 125,000 entries a shard, which made a hit
/// on a read-only cache 2.3x a hit on an unbounded map when the reader paid it.
/// So past this size a reader whose stripe is full drops the hit instead, and
/// the replay is left to writers, who drain before every write (as Caffeine
/// leaves it to its maintenance task); a read-only phase then records the
/// first `read_buffer::SLOTS` hits per stripe between two writes. Up to this
/// size (every cache the trace replays measure) the policy's structures fit
/// in the caches, a replay costs tens of nanoseconds, and every hit reaches
/// the policy, in order, on one thread.
pub(crate) const READER_DRAIN_MAX_ENTRIES: usize = 1 << 16;

/// A bounded shard's cache state (see the module docs).
pub(crate) struct Bounds {
    /// The most entries the shard may hold (0: no count bound).
    pub(crate) max_entries: usize,
    /// The most bytes its entries may be charged (0: no byte bound).
    pub(crate) max_bytes: usize,
    /// The policy. Touched only by the holder of the flag that serialises the
    /// shard's writers.
    policy: UnsafeCell<Policy>,
    /// Hits recorded by readers, replayed into the policy under the flag.
    pub(crate) reads: ReadBuffer,
    /// Whether a reader that finds its stripe full drains the buffer (see
    /// [`READER_DRAIN_MAX_ENTRIES`]).
    pub(crate) readers_drain: bool,
}

// SAFETY: `policy` is touched only under the shard's write flag (see
// `Bounds::policy`); everything else is immutable or atomic.
unsafe impl Sync for Bounds {}
// SAFETY: as above; the policy holds plain data.
unsafe impl Send for Bounds {}

impl Bounds {
    pub(crate) fn new(max_entries: usize, max_bytes: usize, stripes: usize) -> Bounds {
        // The policy's capacity is in its weight unit: bytes under a byte bound,
        // entries otherwise.
        let capacity = if max_bytes > 0 {
            max_bytes
        } else {
            max_entries
        };
        // The most entries the shard can hold, whatever their sizes.
        let most_entries = most_entries(max_entries, max_bytes, false).unwrap_or(capacity);
        Bounds {
            max_entries,
            max_bytes,
            policy: UnsafeCell::new(Policy::with_most_entries(
                capacity.max(1) as u64,
                most_entries as u64,
            )),
            reads: ReadBuffer::new(stripes),
            readers_drain: match (max_entries, max_bytes) {
                (0, bytes) => bytes / TYPICAL_CHARGE <= READER_DRAIN_MAX_ENTRIES,
                (entries, _) => entries <= READER_DRAIN_MAX_ENTRIES,
            },
        }
    }

    /// The weight the policy gives an entry whose memory block is `footprint`.
    #[inline]
    pub(crate) fn weight(&self, footprint: usize) -> u32 {
        if self.max_bytes > 0 {
            u32::try_from(charge(footprint)).unwrap_or(u32::MAX)
        } else {
            1
        }
    }

    /// Whether a shard holding `len` entries charged `charged` bytes is over a bound.
    #[inline]
    pub(crate) fn over(&self, len: usize, charged: usize) -> bool {
        (self.max_entries > 0 && len > self.max_entries)
            || (self.max_bytes > 0 && charged > self.max_bytes)
    }

    /// The policy.
    ///
    /// # Safety
    /// The caller holds the flag that serialises the shard's writers, and does
    /// not keep another reference from this function alive.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn policy(&self) -> &mut Policy {
        // SAFETY: per the contract this thread alone touches the policy now.
        unsafe { &mut *self.policy.get() }
    }
}
