//! The plugin ABI: what `libmapcache_cuda.so` exports and the core calls.
//!
//! The core `dlopen`s the plugin and calls its one exported symbol,
//! [`PLUGIN_SYMBOL`], which returns a pointer to a static [`PluginV1`]: a table
//! of C functions, versioned like `mapcache_config` (its first field is its
//! size; fields are only appended). One rebuild is four calls on one context:
//!
//! 1. `stage`: the plugin hands out host (pinned) staging memory for the source
//!    image, which the core fills: the old table's buckets as [`SourceBucket`]s
//!    (tophash word, slot words, frags; no overflow pointers, no entries), chain
//!    by chain in main-bucket order, and `chain_starts[i]`, the index of main
//!    bucket `i`'s first record (one more element at the end: the total).
//! 2. `count`: copy in, count the entries of each new bucket, lay the overflow
//!    pool out by a prefix sum; returns the pool's length in buckets.
//! 3. `fill`: build the new image on the device and copy it out into the two host
//!    arrays the core allocated, in the core's 112-byte bucket layout, overflow
//!    pointers included (`pool` is the address they point into), and report a
//!    [`Checksum`] of what it wrote, which the core compares with the source's.
//! 4. the context lives on: its device buffers and staging memory are reused by
//!    the next rebuild; `close` frees it.
//!
//! Or, in place of steps 1 and 2, `count_in_place`: the plugin copies the old
//! table's two arrays (main buckets and overflow pool, in the output's bucket
//! layout) as they are, with no packing on the host, and counts; then `fill`.
//! The core takes this way with `MAPCACHE_GPU_SOURCE=in-place` (read when the
//! plugin loads; packed is the default), when every overflow bucket of the table lies in its pool (its
//! arena, `table/table.rs`). Either way the core checks the result against the
//! old table's own sums (`table/sums.rs`), and in place the device's sums of
//! its copy too.
//!
//! Every call returns [`PLUGIN_OK`] or an error code, with a NUL-terminated
//! message written into the caller's buffer. A plugin never unwinds.
//!
//! This file is also the plugin's: `cuda/src/lib.rs` includes it as a module,
//! so it uses nothing of the core (`gpu/mod.rs` checks the layouts against it).

use std::ffi::{c_char, c_void};

/// The symbol the plugin exports: `const PluginV1 *mapcache_cuda_plugin_v1(void)`.
pub const PLUGIN_SYMBOL: &[u8] = b"mapcache_cuda_plugin_v1\0";
/// The file name the core looks for beside `libmapcache.so`.
pub const PLUGIN_FILE: &str = "libmapcache_cuda.so";
/// The `abi_version` this core speaks.
pub const PLUGIN_ABI_VERSION: u32 = 2;

/// Success.
pub const PLUGIN_OK: i32 = 0;
/// The driver has no usable device (`cuInit` or `cuDeviceGet` failed).
pub const PLUGIN_E_NO_DEVICE: i32 = 1;
/// A device or pinned host allocation failed.
pub const PLUGIN_E_ALLOC: i32 = 2;
/// A copy between host and device failed.
pub const PLUGIN_E_COPY: i32 = 3;
/// A kernel failed to load or to run.
pub const PLUGIN_E_KERNEL: i32 = 4;
/// Anything else (a call out of order, a size out of range).
pub const PLUGIN_E_OTHER: i32 = 5;

/// Slots per bucket, as in the core's bucket layout.
pub const SLOTS: usize = 8;
/// Bytes of one bucket of the output image (the core's `Bucket`): tophash word
/// at 0, slot words at 8, overflow pointer at 72, frags at 80.
pub const BUCKET_BYTES: usize = 112;

/// One bucket of the source image: what the kernels read of an old bucket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceBucket {
    /// The tophash word (byte `i` for slot `i`; 0 and 1 are empty slots).
    pub tophash: u64,
    /// The entry pointers, as words; copied, never dereferenced.
    pub slots: [u64; SLOTS],
    /// The low 32 hash bits of each slot.
    pub frags: [u32; SLOTS],
}

/// Sums over the occupied slots of an image: the table's own (kept by the
/// core as it writes), the plugin's over what it copied in place, and the
/// plugin's over what it wrote. Wrapping sums, so the order does not matter.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    /// Occupied slots.
    pub entries: u64,
    /// Wrapping sum of their slot words.
    pub slot_sum: u64,
    /// Wrapping sum of their frags.
    pub frag_sum: u64,
    /// Wrapping sum of their tophash bytes.
    pub tophash_sum: u64,
}

impl Checksum {
    /// Adds the occupied slots of one bucket (tophash word, slot words, frags).
    pub fn add(&mut self, tophash: u64, slots: &[u64; SLOTS], frags: &[u32; SLOTS]) {
        for i in 0..SLOTS {
            let byte = (tophash >> (8 * i)) as u8;
            if byte >= 2 {
                self.entries += 1;
                self.slot_sum = self.slot_sum.wrapping_add(slots[i]);
                self.frag_sum = self.frag_sum.wrapping_add(frags[i] as u64);
                self.tophash_sum = self.tophash_sum.wrapping_add(byte as u64);
            }
        }
    }
}

/// Opens a context on the first CUDA device. `*ctx` receives it.
pub type OpenFn =
    unsafe extern "C" fn(ctx: *mut *mut c_void, err: *mut c_char, err_len: usize) -> i32;
/// Returns host staging memory for `sources` source buckets and `chains`
/// chain starts, valid until the next `stage` or `close` of this context.
pub type StageFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    sources: u64,
    chains: u64,
    source: *mut *mut SourceBucket,
    chain_starts: *mut *mut u32,
    err: *mut c_char,
    err_len: usize,
) -> i32;
/// Copies the staged image in and counts: `*pool_len` receives the number of
/// overflow buckets the new image needs. When it returns, success or not, the
/// plugin no longer reads the staging memory (the core may write it again).
pub type CountFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    old_log2: u32,
    new_log2: u32,
    pool_len: *mut u64,
    err: *mut c_char,
    err_len: usize,
) -> i32;
/// Builds the new image and copies it into `main` (`main_len` buckets) and
/// `pool` (`pool_len` buckets), both zeroed host memory of `BUCKET_BYTES` per
/// bucket; `*sum` receives the checksum of what was written. The lengths are
/// the core's arrays': a plugin whose count laid out another image (not
/// `2^new_log2` main buckets and the pool length it reported) writes nothing
/// and fails with [`PLUGIN_E_OTHER`], so that no disagreement of its own can
/// write past them (version 2; version 1's fill was given no lengths). When it
/// returns, success or not, nothing of the plugin's writes `main` or `pool`
/// any more: no copy is left queued (the core frees or reuses them, its CPU
/// fallback included).
pub type FillFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    main: *mut u8,
    main_len: u64,
    pool: *mut u8,
    pool_len: u64,
    sum: *mut Checksum,
    err: *mut c_char,
    err_len: usize,
) -> i32;
/// The in-place source, instead of `stage` and `count`: copies the old table's
/// arrays in as they are and counts. `main` holds `2^old_log2` buckets and
/// `pool` `pool_len` buckets (NULL when 0), each of [`BUCKET_BYTES`] in the
/// output's layout, and every non-null overflow pointer in them points at a
/// bucket of `pool` (the core calls this only then). `*new_pool_len` receives
/// the new image's pool length, as from `count`, and `*source_sum` the sums over
/// every occupied slot of both arrays as copied, taken bucket by bucket in
/// address order (not by chain), which the core compares with the table's own
/// (a copy-in that lost or changed a slot fails there). An overflow pointer
/// outside `pool`, or a chain longer than the pool, fails the call with
/// [`PLUGIN_E_OTHER`]: the kernels never read outside what was copied. When it
/// returns, success or not, the plugin no longer reads `main` or `pool`.
pub type CountInPlaceFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    main: *const u8,
    pool: *const u8,
    pool_len: u64,
    old_log2: u32,
    new_log2: u32,
    new_pool_len: *mut u64,
    source_sum: *mut Checksum,
    err: *mut c_char,
    err_len: usize,
) -> i32;
/// Frees a context and everything it holds.
pub type CloseFn = unsafe extern "C" fn(ctx: *mut c_void);
/// The symbol's type.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginV1;

/// The plugin's function table (see the module docs).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PluginV1 {
    /// `size_of::<PluginV1>()` as the plugin knows it.
    pub struct_size: usize,
    /// [`PLUGIN_ABI_VERSION`] of the plugin.
    pub abi_version: u32,
    /// Zero.
    pub reserved: u32,
    /// A static NUL-terminated name, for status reports.
    pub name: *const c_char,
    /// See [`OpenFn`].
    pub open: OpenFn,
    /// See [`StageFn`].
    pub stage: StageFn,
    /// See [`CountFn`].
    pub count: CountFn,
    /// See [`FillFn`].
    pub fill: FillFn,
    /// See [`CloseFn`].
    pub close: CloseFn,
    /// See [`CountInPlaceFn`] (appended: a table without it is older than this
    /// core, which refuses it).
    pub count_in_place: CountInPlaceFn,
}

// SAFETY: a function table of plain function pointers and a static string.
unsafe impl Sync for PluginV1 {}
// SAFETY: as above.
unsafe impl Send for PluginV1 {}
