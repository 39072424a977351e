//! Weakly consistent iteration that survives grows, rebuilds and clears.
//!
//! Order: shard by shard; within a shard, by `R = reverse_bits(frag)`, where frag
//! is the low 32 bits of the key's hash (the bits that choose its bucket). A
//! bucket `i` of a `2^B` table holds exactly the keys whose low `B` frag bits are
//! `i`, that is whose `R` lies in one interval `[rev_B(i) << (32-B), (rev_B(i)+1) << (32-B))`.
//! So visiting buckets in bit-reversed order sweeps `R` upward in whole
//! intervals, and a cursor "every `R` below `pos` is done" is a bucket boundary at
//! every larger table size too.
//!
//! Each step pins, loads the shard's current table (whatever size it has now),
//! visits the bucket containing `pos`, lends out the entries with `pos <= R < end`
//! and moves `pos` to `end`. Since `pos` only increases and each key has one
//! fixed `R`:
//! - no key is yielded twice, even if it moved to another table in between (and
//!   within one step, where a key can appear twice in a chain while a writer
//!   moves it, the step keeps the first it met);
//! - a key present for the whole iteration is present at the step whose interval
//!   holds its `R`, so it is yielded exactly once.
//!
//! `R` is computed from the key bytes (not read from the bucket's frags, which a
//! concurrent writer may be reusing for another entry).

use std::collections::VecDeque;

use crate::error::Result;
use crate::hash::Hasher;
use crate::map::Map;
use crate::shard::Shard;
use crate::sync::atomic::Ordering;
use crate::table::bucket;
use crate::table::entry;

/// One past the largest `R`.
const END: u64 = 1 << 32;

/// A position in a map's iteration order. It borrows nothing, so it can outlive a
/// borrow of the map (the C iterator keeps one); use it with [`Map::scan`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    shard: usize,
    /// Every key of `shard` with `R < pos` has been visited.
    pos: u64,
}

impl Cursor {
    /// A cursor at the start.
    pub fn new() -> Cursor {
        Cursor::default()
    }

    /// One step of [`Map::scan`] (see the module docs).
    pub(crate) fn advance(
        &mut self,
        shards: &[Shard],
        hasher: &Hasher,
        clock: &crate::clock::Clock,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> bool {
        loop {
            let Some(shard) = shards.get(self.shard) else {
                return false;
            };
            if self.pos >= END {
                self.shard += 1;
                self.pos = 0;
                continue;
            }
            let guard = crate::sync::epoch::pin();
            let table = shard.table(&guard);
            let log2 = table.log2();
            let (index, end) = if log2 == 0 {
                (0, END)
            } else {
                let prefix = (self.pos >> (32 - log2)) as u32;
                (
                    (prefix.reverse_bits() >> (32 - log2)) as usize,
                    (prefix as u64 + 1) << (32 - log2),
                )
            };
            let from = self.pos;
            // Two passes: collect the step's entries, then lend them out. A key
            // can sit in the chain twice while the walk runs: a writer removes K
            // from a full bucket A after the walk passed it, inserts J into K's old
            // slot, and re-inserts K, which lands in A's overflow bucket B, still
            // ahead of the walk. So a key already collected in this step is
            // skipped (each entry stays live until `guard` unpins, so the keys can
            // be compared), and `f` runs after the walk, so that writes made from
            // `f` cannot move keys ahead of it.
            let mut step: Vec<(u64, *mut entry::Entry)> = Vec::new();
            let mut next = Some(&table.buckets()[index]);
            while let Some(b) = next {
                for slot in bucket::occupied(b.tophash_word()) {
                    let e = b.slots[slot].load(Ordering::Acquire);
                    if e.is_null() {
                        continue;
                    }
                    // SAFETY: a linked entry stays live while `guard` is pinned.
                    let key = unsafe { entry::key(e) };
                    let hash = hasher.hash(key);
                    let r = hash.frag().reverse_bits() as u64;
                    // SAFETY: as above, for every entry collected in this step.
                    let seen = step
                        .iter()
                        .any(|&(h, other)| h == hash.0 && unsafe { entry::key(other) } == key);
                    // SAFETY: as above.
                    let expired = unsafe { entry::expired(e, || clock.now_nanos()) };
                    if (from..end).contains(&r) && !seen && !expired {
                        step.push((hash.0, e));
                    }
                }
                next = b.next();
                #[cfg(all(test, not(loom)))]
                tests::after_bucket();
            }
            for &(_, e) in &step {
                // SAFETY: as above: still pinned by `guard`.
                f(unsafe { entry::key(e) }, unsafe { entry::value(e) });
            }
            self.pos = end;
            if !step.is_empty() {
                return true;
            }
        }
    }
}

/// An iterator over copies of a map's entries (see [`Map::iter`]).
pub struct Iter<'a> {
    map: &'a Map,
    cursor: Cursor,
    batch: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Set once the map is exhausted or a step failed.
    done: bool,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(map: &'a Map) -> Iter<'a> {
        Iter {
            map,
            cursor: Cursor::new(),
            batch: VecDeque::new(),
            done: false,
        }
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.batch.is_empty() && !self.done {
            let batch = &mut self.batch;
            match self.map.scan(&mut self.cursor, |k, v| {
                batch.push_back((k.to_vec(), v.to_vec()))
            }) {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(error) => {
                    self.done = true;
                    self.batch.clear();
                    return Some(Err(error));
                }
            }
        }
        self.batch.pop_front().map(Ok)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::RefCell;

    use super::Cursor;
    use crate::{Config, Map};

    std::thread_local! {
        /// Runs after the chain walk of a scan step leaves each bucket: a writer
        /// acting at that moment is exactly the interleaving a concurrent writer
        /// can produce while the walk is between two buckets.
        static AFTER_BUCKET: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
    }

    pub(super) fn after_bucket() {
        AFTER_BUCKET.with(|hook| {
            if let Some(hook) = hook.borrow_mut().as_mut() {
                hook();
            }
        });
    }

    /// A key moved from a full bucket A to its overflow bucket B while the walk
    /// is between A and B (K out of A[0], J into it, K back into B) is yielded
    /// once: the step skips a key it already collected.
    #[test]
    fn a_key_moved_ahead_of_the_chain_walk_is_collected_once() {
        let config = || Config {
            shards: 1,
            seed: Some(7),
            ..Config::default()
        };
        // Twelve keys of one bucket of a 4-bucket table: the first keys a full
        // iteration of a big table yields share their low fragment bits.
        let probe = Map::new(config()).unwrap();
        for i in 0..4_000u32 {
            probe.insert(format!("key-{i}").as_bytes(), b"").unwrap();
        }
        let keys: Vec<Vec<u8>> = probe.iter().take(12).map(|r| r.unwrap().0).collect();
        let map = std::sync::Arc::new(
            Map::new(Config {
                initial_capacity: 20,
                ..config()
            })
            .unwrap(),
        );
        for k in &keys[..11] {
            map.insert(k, b"v").unwrap();
        }
        assert_eq!(
            map.table_stats().overflow_buckets,
            1,
            "not one chain of A and B"
        );
        let (k, j) = (keys[0].clone(), keys[11].clone());
        let (writer, mut buckets) = (std::sync::Arc::clone(&map), 0);
        AFTER_BUCKET.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move || {
                buckets += 1;
                if buckets == 1 {
                    assert!(writer.remove(&k).unwrap());
                    writer.insert(&j, b"v").unwrap();
                    writer.insert(&k, b"v").unwrap();
                }
            }))
        });
        let mut step = Vec::new();
        map.scan(&mut Cursor::new(), |key, _| step.push(key.to_vec()))
            .unwrap();
        AFTER_BUCKET.with(|hook| hook.borrow_mut().take());
        let count = step.len();
        step.sort();
        step.dedup();
        assert_eq!(step.len(), count, "a key was collected twice");
        assert!(step.contains(&keys[0]));
    }
}
