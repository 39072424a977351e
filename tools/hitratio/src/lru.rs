//! An exact LRU of a fixed number of entries, O(1) per access: a hash index
//! into a slab of nodes that form a doubly linked recency list. The harness's
//! own yardstick, independent of mapcache and of the anchors' simulator.
//!
//! Its memory follows the keys it holds, not its capacity: the index and the
//! slab grow as distinct keys arrive, up to the capacity, so that a capacity far
//! beyond a trace's distinct keys costs nothing more (the capacity is a limit,
//! not a size).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// No node: the end of the recency list.
const NIL: u32 = u32::MAX;

/// The largest capacity accepted: 2^31 entries. The slab's indices are 32-bit
/// (NIL is the largest), and 2^31 is already over 2,000 times the distinct keys
/// of the largest of the README's traces; a capacity at or above a trace's
/// distinct keys gives the same hit ratio as any larger one.
pub const MAX_CAPACITY: usize = 1 << 31;

/// How many keys the index and the slab make room for up front, at most (they
/// grow from there as keys arrive).
const INITIAL_ROOM: usize = 1024;

struct Node {
    key: u64,
    /// Towards the most recently used end.
    newer: u32,
    /// Towards the least recently used end.
    older: u32,
}

/// An exact least-recently-used cache of `capacity` keys (values play no part in
/// a hit ratio, so it stores none).
pub struct ExactLru {
    capacity: usize,
    index: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
    nodes: Vec<Node>,
    /// Most recently used.
    newest: u32,
    /// Least recently used: the next victim.
    oldest: u32,
}

impl ExactLru {
    /// An empty LRU that holds at most `capacity` keys (0: holds nothing). It
    /// allocates for the keys it holds as they arrive, never for the capacity.
    ///
    /// # Panics
    ///
    /// If `capacity` is over [`MAX_CAPACITY`] (the command line refuses such a
    /// capacity with an error before it gets here).
    pub fn new(capacity: usize) -> ExactLru {
        assert!(
            capacity <= MAX_CAPACITY,
            "capacity {capacity} is over the exact LRU's limit ({MAX_CAPACITY})"
        );
        let room = capacity.min(INITIAL_ROOM);
        ExactLru {
            capacity,
            index: HashMap::with_capacity_and_hasher(room, Default::default()),
            nodes: Vec::with_capacity(room),
            newest: NIL,
            oldest: NIL,
        }
    }

    /// One request for `key`: whether it hit. A miss admits the key as the most
    /// recently used, evicting the least recently used key when full.
    pub fn access(&mut self, key: u64) -> bool {
        if let Some(&slot) = self.index.get(&key) {
            self.unlink(slot);
            self.push_newest(slot);
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        let slot = if self.nodes.len() < self.capacity {
            self.nodes.push(Node {
                key,
                newer: NIL,
                older: NIL,
            });
            (self.nodes.len() - 1) as u32
        } else {
            let victim = self.oldest;
            self.unlink(victim);
            let old_key = std::mem::replace(&mut self.nodes[victim as usize].key, key);
            self.index.remove(&old_key);
            victim
        };
        self.index.insert(key, slot);
        self.push_newest(slot);
        false
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The keys the slab has room for without growing (what it has allocated).
    pub fn allocated(&self) -> usize {
        self.nodes.capacity().max(self.index.capacity())
    }

    fn unlink(&mut self, slot: u32) {
        let Node { newer, older, .. } = self.nodes[slot as usize];
        match newer {
            NIL => self.newest = older,
            newer => self.nodes[newer as usize].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            older => self.nodes[older as usize].newer = newer,
        }
    }

    fn push_newest(&mut self, slot: u32) {
        let node = &mut self.nodes[slot as usize];
        node.newer = NIL;
        node.older = self.newest;
        match self.newest {
            NIL => self.oldest = slot,
            newest => self.nodes[newest as usize].newer = slot,
        }
        self.newest = slot;
    }
}

/// A hasher for `u64` keys: one folded 64x64->128 multiply (the trace keys are
/// often consecutive integers, which SipHash would handle too, at several times
/// the cost).
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        let product = u128::from(value ^ self.0) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::SplitMix64;

    /// The definition, brute force: a list from most to least recently used.
    fn reference_hits(capacity: usize, keys: &[u64]) -> Vec<bool> {
        let mut recency: Vec<u64> = Vec::new();
        keys.iter()
            .map(|&key| {
                let hit = match recency.iter().position(|&k| k == key) {
                    Some(at) => {
                        recency.remove(at);
                        true
                    }
                    None => false,
                };
                recency.insert(0, key);
                recency.truncate(capacity);
                hit
            })
            .collect()
    }

    #[test]
    fn matches_the_brute_force_definition_on_random_sequences() {
        let mut rng = SplitMix64::new(11);
        for round in 0..300 {
            let capacity = (rng.next_u64() % 12) as usize;
            let key_space = 1 + rng.next_u64() % 24;
            let keys: Vec<u64> = (0..1 + rng.next_u64() % 400)
                .map(|_| rng.next_u64() % key_space)
                .collect();
            let mut lru = ExactLru::new(capacity);
            let hits: Vec<bool> = keys.iter().map(|&key| lru.access(key)).collect();
            assert_eq!(
                hits,
                reference_hits(capacity, &keys),
                "round {round}: capacity {capacity}, keys {keys:?}"
            );
            assert!(lru.len() <= capacity);
        }
    }

    /// F2: a capacity far beyond the keys seen costs the keys seen, not the
    /// capacity (2^31 entries up front were a 70 GB allocation, which aborted
    /// the process); the largest accepted capacity works like any other.
    #[test]
    fn memory_follows_the_keys_held_not_the_capacity() {
        for capacity in [MAX_CAPACITY, 600_000_000, 1 << 30, 5_000] {
            let mut lru = ExactLru::new(capacity);
            assert!(lru.allocated() <= 2 * INITIAL_ROOM, "{capacity}");
            let hits = [1u64, 2, 1, 3, 1, 2, u64::MAX, u64::MAX]
                .iter()
                .filter(|&&k| lru.access(k))
                .count();
            assert_eq!((hits, lru.len()), (4, 4), "{capacity}");
            assert!(lru.allocated() <= 2 * INITIAL_ROOM, "{capacity}");
            // Growing past the initial room, still exact.
            let keys = 10..10 + 3 * INITIAL_ROOM as u64;
            let hits = keys.clone().chain(keys).filter(|&k| lru.access(k)).count();
            assert_eq!(hits, 3 * INITIAL_ROOM, "{capacity}");
            assert!(lru.allocated() < 16 * INITIAL_ROOM, "{capacity}");
        }
    }

    #[test]
    #[should_panic(expected = "over the exact LRU's limit")]
    fn a_capacity_over_the_limit_is_refused_by_name() {
        let _ = ExactLru::new(MAX_CAPACITY + 1);
    }

    #[test]
    fn a_loop_one_longer_than_the_cache_never_hits() {
        let mut lru = ExactLru::new(3);
        let hits = (0..40u64).filter(|&i| lru.access(i % 4)).count();
        assert_eq!(hits, 0);
        let mut lru = ExactLru::new(4);
        let hits = (0..40u64).filter(|&i| lru.access(i % 4)).count();
        assert_eq!(hits, 36);
    }
}
