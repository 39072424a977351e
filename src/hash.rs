//! Hashing: xxh3-64 with a per-map seed, and the three things a hash decides.
//!
//! ```text
//!  63        64-s  40      32 31                               0
//! +-----------+----+--------+----------------------------------+
//! |  shard    |    |tophash |   frag: bucket index (low bits)  |
//! +-----------+----+--------+----------------------------------+
//! ```
//!
//! The top `s` bits pick the shard; bits 32..40 give the tophash byte that
//! filters slots; the low 32 bits (the "frag") pick the bucket, `frag & mask`.
//! The three fields do not overlap (`s` is at most 16), so within a shard the
//! tophash filter keeps all eight bits of entropy.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::table::bucket::MIN_TOPHASH;

/// A key's 64-bit hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyHash(pub(crate) u64);

impl KeyHash {
    /// The low 32 bits: the bucket index at any table size, kept per slot.
    #[inline]
    pub(crate) fn frag(self) -> u32 {
        self.0 as u32
    }

    /// The tophash byte, moved out of the reserved range as Go does.
    #[inline]
    pub(crate) fn tophash(self) -> u8 {
        let top = (self.0 >> 32) as u8;
        if top < MIN_TOPHASH {
            top + MIN_TOPHASH
        } else {
            top
        }
    }
}

/// The seeded hasher of one map.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hasher {
    seed: u64,
    /// `log2` of the shard count.
    shard_bits: u32,
}

impl Hasher {
    pub(crate) fn new(seed: u64, shard_bits: u32) -> Hasher {
        debug_assert!(shard_bits <= 16);
        Hasher { seed, shard_bits }
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> KeyHash {
        KeyHash(xxh3_64_with_seed(key, self.seed))
    }

    /// The shard that holds keys with this hash.
    #[inline]
    pub(crate) fn shard(&self, hash: KeyHash) -> usize {
        // Two shifts instead of `>> (64 - bits)`, which would overflow at 0 bits.
        ((hash.0 >> 32) >> (32 - self.shard_bits)) as usize
    }
}

/// A seed no caller can predict: std's per-process random keys, mixed with a
/// counter so that maps created in the same process differ too.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}
