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

/// Makes `table` (what a plugin's `mapcache_cuda_plugin_v1` returns) the
/// plugin at `path`, without the driver or a file: a plugin linked into this
/// process (the emulated device, a fault injector). Opens its context now.
///
/// # Safety
/// `table` points to a static plugin table whose functions keep the plugin
/// ABI's contract.
pub unsafe fn install_plugin(path: &Path, table: *const std::ffi::c_void) -> Result<(), String> {
    // SAFETY: forwarded contract.
    unsafe { loader::install(path, table.cast::<PluginV1>()) }
}

/// Loads the plugin file at `path` without the CUDA driver (for a plugin built
/// without CUDA, whose device is emulated on the host; it refuses to open
/// unless `MAPCACHE_CUDA_EMULATE=1`). Later loads of `path` get this plugin.
pub fn load_plugin_without_driver(path: &Path) -> Result<(), String> {
    loader::load_without_driver(path)
}

/// Whether the GPU engine at `path` (or beside the library) loads, and why not.
pub fn probe(path: Option<&Path>) -> Result<String, String> {
    loader::load(path).map(|plugin| plugin.description.clone())
}

/// The symbol of the plugin's benchmark knob, outside the plugin ABI:
/// `int32_t mapcache_cuda_set_transfer_v1(uint32_t register_input, uint32_t
/// register_output, uint32_t chunks)` (see `cuda/src/lib.rs`).
const SET_TRANSFER_SYMBOL: &[u8] = b"mapcache_cuda_set_transfer_v1\0";

/// Tells the plugin file at `path` how its rebuilds from the next on move the
/// tables (page-lock the old table's arrays for an in-place copy-in, the new
/// arrays for the copy-out; the fill's chunks, 1 to 64), in place of the
/// environment's settings, which it read when its context opened (`chunks` 0
/// puts those back): the benchmark's way of
/// measuring each choice in one process without changing its environment
/// while other threads (the driver's) may read it.
pub fn set_plugin_transfer(
    path: &Path,
    register_input: bool,
    register_output: bool,
    chunks: u32,
) -> Result<(), String> {
    let library = super::dl::Library::open_path(path)
        .map_err(|e| format!("plugin {} failed to load: {e}", path.display()))?;
    let symbol = library.symbol(SET_TRANSFER_SYMBOL).map_err(|e| {
        format!(
            "plugin {} has no transfer settings (mapcache_cuda_set_transfer_v1): {e}",
            path.display()
        )
    })?;
    type SetTransferFn = unsafe extern "C" fn(u32, u32, u32) -> i32;
    // SAFETY: the plugin exports this symbol with this type (cuda/src/lib.rs);
    // it stays mapped, since a `Library` is never closed (`dl`).
    let set = unsafe { std::mem::transmute::<*mut std::ffi::c_void, SetTransferFn>(symbol) };
    // SAFETY: takes three integers, touches nothing of the caller's.
    match unsafe { set(register_input.into(), register_output.into(), chunks) } {
        super::abi::PLUGIN_OK => Ok(()),
        super::abi::PLUGIN_E_NO_DEVICE => Err(format!(
            "plugin {} has no transfers to set (built without CUDA)",
            path.display()
        )),
        code => Err(format!(
            "plugin {} refused the transfer settings (error {code}; chunks must be 0 to 64)",
            path.display()
        )),
    }
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

    /// Whether a GPU rebuild can copy this table's arrays in place: every
    /// overflow bucket lies in its pool (tables of 2^15 buckets and more have
    /// an arena; smaller ones only when no chain overflows).
    pub fn in_place(&self) -> bool {
        self.0.boxed_overflow() == 0
    }

    /// The address and bytes of the table's main buckets and of the overflow
    /// buckets of its pool in use: what a GPU rebuild in place copies.
    pub fn arrays(&self) -> [(*const u8, usize); 2] {
        let (main, pool) = (self.0.buckets(), self.0.pool_in_use());
        [
            (main.as_ptr().cast(), std::mem::size_of_val(main)),
            (pool.as_ptr().cast(), std::mem::size_of_val(pool)),
        ]
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
    /// The GPU plugin at this path (loaded, or installed, on first use), the
    /// old table packed on the host; no fallback: its failure is the result.
    Gpu(Option<&'a Path>),
    /// As `Gpu`, the old table's arrays copied in place where it can be (see
    /// [`SyntheticTable::in_place`]), else packed.
    GpuInPlace(Option<&'a Path>),
}

/// A rebuilt table, and whether the GPU read the old one in place.
pub struct Rebuilt(Table, bool);

impl Rebuilt {
    /// The rebuilt table (for the core's own tests).
    #[cfg(test)]
    pub(crate) fn table(&self) -> &Table {
        &self.0
    }

    /// Whether the GPU engine copied the old table's arrays in place (rather
    /// than packed them on the host, or being a CPU engine).
    pub fn was_in_place(&self) -> bool {
        self.1
    }

    /// The canonical byte image (main buckets in order, each chain's buckets),
    /// then the layout of the arrays: the pool's length and, for each bucket of
    /// each chain, where its overflow pointer points (a pool index, or a
    /// bucket outside the pool). Two rebuilt tables with the same image are the
    /// same bytes but for the arrays' base addresses.
    pub fn image(&self) -> Vec<u8> {
        let mut out = self.0.image();
        let pool = self.0.laid_pool();
        out.extend_from_slice(&(pool.len() as u64).to_le_bytes());
        let base = pool.as_ptr() as usize;
        self.0.for_each_chain_bucket(|_, bucket| {
            let next = bucket.overflow.load(Ordering::Relaxed) as usize;
            let at = if next == 0 {
                u64::MAX
            } else if next >= base && next < base + pool.len() * std::mem::size_of_val(bucket) {
                ((next - base) / std::mem::size_of_val(bucket)) as u64
            } else {
                u64::MAX - 1
            };
            out.extend_from_slice(&at.to_le_bytes());
        });
        out
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
            .map(|t| (t, false))
            .map_err(|e| e.to_string()),
        Engine::Parallel(threads) => ParallelCpu::with_threads(threads)
            .rehash(table, new_log2)
            .map(|t| (t, false))
            .map_err(|e| e.to_string()),
        Engine::Gpu(path) | Engine::GpuInPlace(path) => {
            let source = match engine {
                Engine::GpuInPlace(_) => super::job::Source::InPlace,
                _ => super::job::Source::Packed,
            };
            let plugin = loader::load(path)?;
            let mut context = plugin.lock();
            super::job::rehash(&plugin, &mut context, table, new_log2, source)
                .map(|(t, used)| (t, used == super::job::Source::InPlace))
        }
    }?;
    Ok(Rebuilt(rebuilt.0, rebuilt.1))
}

/// Host staging memory for [`pack`], reused across calls as the plugin's
/// pinned buffers are.
#[derive(Default)]
pub struct Staging {
    source: Vec<super::abi::SourceBucket>,
    starts: Vec<u32>,
}

/// Packs `table`'s source image into `staging`, as the GPU engine's first step
/// does into the plugin's pinned memory (host CPU work of every GPU rebuild,
/// which the benchmark reports apart). Returns the records packed.
pub fn pack(table: &SyntheticTable, staging: &mut Staging) -> Result<usize, String> {
    let table = &table.0;
    let chains = table.buckets().len();
    let sources = chains + table.overflow_count();
    staging.source.resize(sources, Default::default());
    staging.starts.resize(chains + 1, 0);
    super::job::pack(table, &mut staging.source, &mut staging.starts).map(|_| sources)
}

/// The check every GPU rebuild's image gets in host memory before it is
/// published (`gpu/image_check.rs`), run on `rebuilt` (for the benchmark,
/// which reports its host time apart).
pub fn check_image(rebuilt: &Rebuilt) -> Result<(), String> {
    let table = &rebuilt.0;
    super::image_check::check_image(
        table.buckets(),
        table.laid_pool(),
        table.log2(),
        table.sums(),
    )
}

/// The image of `table` rebuilt by the reference engine.
pub fn reference_image(table: &SyntheticTable, new_log2: u32) -> Result<Vec<u8>, String> {
    rebuild(table, new_log2, Engine::Single).map(|r| r.image())
}
