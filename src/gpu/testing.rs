//! Hooks for the GPU plugin's tests and benchmarks (`cuda/`): synthetic tables,
//! rebuilds by a named engine, and installing a plugin in-process. Not part of
//! the API: hidden, and free to change with the plugin.

use std::path::Path;

use super::abi::PluginV1;
use super::loader;
use crate::hash::KeyHash;
use crate::sync::atomic::Ordering;
use crate::table::bucket::{self, EMPTY_REST};
use crate::table::rehash::{ParallelCpu, RehashEngine, SingleThreaded};
use crate::table::table::Table;

/// Makes `table` the plugin at `path` without the driver or a file: a plugin
/// whose "device" runs in this process (the emulated kernels, a fault injector).
///
/// # Safety
/// `table`'s functions must keep the plugin ABI's contract.
pub unsafe fn install_plugin(path: &Path, table: &PluginV1) -> Result<(), String> {
    // SAFETY: forwarded contract.
    unsafe { loader::install(path, *table) }
}

/// A table for rebuilding: made-up hashes and entry words (never dereferenced:
/// no engine looks at an entry), overflow chains from one-by-one inserts, and
/// deleted slots.
pub struct SyntheticTable(Table);

/// A splitmix64 step: the synthetic tables' random numbers.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SyntheticTable {
    /// `entries` made-up entries in `2^log2` buckets, then about `deleted` per
    /// mille of them unlinked (leaving `EMPTY_ONE` holes in the chains).
    pub fn new(
        entries: usize,
        log2: u32,
        seed: u64,
        deleted: u32,
    ) -> Result<SyntheticTable, String> {
        let table = Table::new(log2).map_err(|e| e.to_string())?;
        let mut state = seed;
        for i in 0..entries {
            let hash = KeyHash(next(&mut state));
            // An aligned, non-null, unique word: what a slot holds.
            let entry = ((i as u64 + 1) * 16) as usize as *mut crate::table::entry::Entry;
            let head = table.head(hash);
            let mut bucket = head;
            let mut free = None;
            loop {
                let word = bucket.tophash.load(Ordering::Relaxed);
                if let Some(index) = bucket::empty(word).next() {
                    free = Some((bucket, index));
                    break;
                }
                match bucket.next() {
                    Some(b) => bucket = b,
                    None => break,
                }
            }
            table.place(free, bucket, hash, entry);
        }
        if deleted > 0 {
            for index in 0..table.buckets().len() {
                table.for_each_in_chain(index, |head, bucket, slot, _| {
                    if next(&mut state) % 1000 < deleted as u64 {
                        table.unlink(head, bucket, slot);
                    }
                });
            }
        }
        Ok(SyntheticTable(table))
    }

    /// Occupied slots.
    pub fn entries(&self) -> usize {
        let mut n = 0;
        self.0.for_each_chain_bucket(|_, b| {
            n += bucket::occupied(b.tophash.load(Ordering::Relaxed)).count()
        });
        n
    }

    /// `log2` of the main buckets.
    pub fn log2(&self) -> u32 {
        self.0.log2()
    }

    /// Whether any slot is `EMPTY_ONE` (a deleted slot with entries after it).
    pub fn has_holes(&self) -> bool {
        let mut holes = false;
        self.0.for_each_chain_bucket(|_, b| {
            let word = b.tophash.load(Ordering::Relaxed);
            holes |= bucket::empty(word).any(|i| bucket::byte(word, i) != EMPTY_REST);
        });
        holes
    }
}

/// An engine to rebuild with.
pub enum Engine<'a> {
    /// The single-threaded reference.
    Single,
    /// The parallel CPU engine on this many threads.
    Parallel(usize),
    /// The GPU plugin at this path (loaded, or installed, on first use); no
    /// fallback: its failure is the result.
    Gpu(Option<&'a Path>),
}

/// A rebuilt table.
pub struct Rebuilt(Table);

impl Rebuilt {
    /// The canonical byte image (main buckets in order, each chain's buckets).
    pub fn image(&self) -> Vec<u8> {
        self.0.image()
    }
}

/// Rebuilds `table` at `2^new_log2` buckets with `engine`.
pub fn rebuild(
    table: &SyntheticTable,
    new_log2: u32,
    engine: Engine<'_>,
) -> Result<Rebuilt, String> {
    let table = &table.0;
    let rebuilt = match engine {
        Engine::Single => SingleThreaded
            .rehash(table, new_log2)
            .map_err(|e| e.to_string()),
        Engine::Parallel(threads) => ParallelCpu::with_threads(threads)
            .rehash(table, new_log2)
            .map_err(|e| e.to_string()),
        Engine::Gpu(path) => {
            let plugin = loader::load(path)?;
            let mut context = plugin.lock();
            super::job::rehash(&plugin, &mut context, table, new_log2)
        }
    }?;
    Ok(Rebuilt(rebuilt))
}

/// The image of `table` rebuilt by the reference engine.
pub fn reference_image(table: &SyntheticTable, new_log2: u32) -> Result<Vec<u8>, String> {
    rebuild(table, new_log2, Engine::Single).map(|r| r.image())
}
