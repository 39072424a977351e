//! `mapcache_config`: the host's view of [`crate::Config`], versioned by its first
//! field, and its validation (`MAPCACHE_E_INVALID_CONFIG`).
//!
//! Compatibility rule (as Linux's `copy_struct_from_user`): fields are only ever
//! appended. The library reads `min(struct_size, its own size)` bytes; a host built
//! against an older header gets defaults for the fields it does not know, and a host
//! built against a newer header is accepted as long as the fields this library does
//! not know are zero.

use std::ffi::{c_char, CStr};
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::ptr;
use std::time::Duration;

use super::args;
use super::boundary::{self, Fail};
use super::status::{mapcache_status, MAPCACHE_E_INVALID_CONFIG, MAPCACHE_OK};
use crate::{Clock, Config, EngineChoice, GpuMode, MisusePolicy, Mode};

/// `mapcache_config.mode`: any number of threads may read and write (the default).
pub const MAPCACHE_MODE_CONCURRENT: u32 = 0;
/// `mapcache_config.mode`: Go's contract; the host promises one writer at a time and
/// a detected overlap is reported as `MAPCACHE_E_CONCURRENT_WRITE` (or
/// `MAPCACHE_E_CONCURRENT_READ_WRITE`) instead of being waited out. Overlap is
/// judged by the write flag, which a write holds from finding its key to
/// publishing the change (a table grow included); the key and value of an
/// entry over 256 bytes are copied into it before the flag is taken (smaller
/// ones under it). Two writes whose flag windows
/// overlap always collide; a write made while another is still copying a large
/// value in is not seen, so two threads racing on large values usually go
/// unreported: the absence of a report proves nothing.
pub const MAPCACHE_MODE_EXCLUSIVE: u32 = 1;
/// `mapcache_config.misuse_policy`: a detected misuse returns an error status (the
/// default).
pub const MAPCACHE_MISUSE_ERROR: u32 = 0;
/// `mapcache_config.misuse_policy`: a detected misuse prints the report to stderr
/// and aborts the process, as Go does.
pub const MAPCACHE_MISUSE_ABORT: u32 = 1;
/// `mapcache_config.rehash_engine`: pick by table size and hardware (the default).
pub const MAPCACHE_ENGINE_AUTO: u32 = 0;
/// `mapcache_config.rehash_engine`: rehash on the calling thread only.
pub const MAPCACHE_ENGINE_SINGLE: u32 = 1;
/// `mapcache_config.rehash_engine`: rehash with several CPU threads.
pub const MAPCACHE_ENGINE_PARALLEL: u32 = 2;

/// `mapcache_config.gpu_mode`: rebuild tables of at least `gpu_threshold` entries
/// on the GPU when the CUDA driver, a device and the plugin are there, else (and
/// after any GPU failure) on the CPU; the default.
pub const MAPCACHE_GPU_AUTO: u32 = 0;
/// `mapcache_config.gpu_mode`: never use the GPU (nothing is loaded).
pub const MAPCACHE_GPU_OFF: u32 = 1;
/// `mapcache_config.gpu_mode`: use the GPU or fail: `mapcache_new` returns
/// `MAPCACHE_E_GPU` when the engine cannot be loaded, and a write whose rebuild
/// fails on the GPU returns it (changing nothing).
pub const MAPCACHE_GPU_FORCE: u32 = 2;

/// The longest `mapcache_config.gpu_plugin_path` accepted, in bytes.
pub const MAPCACHE_MAX_PLUGIN_PATH: usize = 4096;

/// `mapcache_config.clock`: TTLs are measured against the system's monotonic clock
/// (the default).
pub const MAPCACHE_CLOCK_SYSTEM: u32 = 0;
/// `mapcache_config.clock`: a manual clock for tests, which starts at 0 and moves
/// only by `mapcache_clock_advance`, so that a test never sleeps to see an entry
/// expire. For snapshots (whose expiries are wall-clock times) its wall time is
/// 2020-01-01T00:00:00Z plus its reading: between a save from one manual-clock
/// cache and a load into another, the time that passes is how far the loader's
/// clock has moved past the saver's; records saved on the system clock lie years
/// in its future.
pub const MAPCACHE_CLOCK_MANUAL: u32 = 1;

/// The largest `mapcache_config.initial_capacity` (2^30 entries); a larger one is
/// `MAPCACHE_E_INVALID_CONFIG`. It is a sizing limit, not a bound: a cache still
/// grows past it by inserting.
pub const MAPCACHE_MAX_INITIAL_CAPACITY: u64 = 1073741824;

const _: () = assert!(MAPCACHE_MAX_INITIAL_CAPACITY == crate::MAX_INITIAL_CAPACITY as u64);

/// The largest `struct_size` accepted (a guard against garbage in the field).
const MAX_STRUCT_SIZE: usize = 4096;

/// How to create a cache. Initialise with `MAPCACHE_CONFIG_INIT(&cfg)` (that is,
/// `mapcache_config_init(&cfg, sizeof cfg)`), then change the fields you need;
/// pass to `mapcache_new`, which reads it during the call only. Fields are only
/// ever appended in later versions, each with 0 as its default (see
/// `struct_size`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct mapcache_config {
    /// `sizeof(mapcache_config)` as the host knows it; set by
    /// `mapcache_config_init` to its `size` argument. Tells the library which
    /// fields are present: it reads only the first `struct_size` bytes.
    pub struct_size: usize,
    /// Entries to size the table for up front; 0 = start small and grow; at most
    /// `MAPCACHE_MAX_INITIAL_CAPACITY`. A shard's table of 2 MiB or more (more
    /// than about 106,000 entries of capacity per shard) is committed as its
    /// pages are first touched, not at creation; keys land in random buckets,
    /// so a big presized table is mostly resident after a small fraction of its
    /// capacity (where the kernel backs the table with 2 MiB transparent huge
    /// pages, each first touch commits 2 MiB: with `initial_capacity` 2^30
    /// over 16 shards, 100,000 puts, 0.01% of the capacity, made about 23 GB
    /// resident): size it to the memory you have. Smaller shard tables come from
    /// the system allocator, which may commit them at creation: spread over many
    /// shards, a presized capacity costs 17 to 35 bytes per entry up front.
    /// A bounded cache sizes for no more than its bounds hold: `max_entries`,
    /// and `max_bytes` over the smallest entry's charge (90 bytes, 98 with a
    /// `default_ttl_ms`).
    pub initial_capacity: u64,
    /// Number of shards: 0 = automatic, else a power of two, at most 65536.
    /// Each costs about 2 KB empty, about 9 KB in a bounded cache (its policy
    /// and hit buffer): 65,536 shards take 128 MB, or 560 MB bounded, before
    /// anything is stored.
    pub shards: u32,
    /// `MAPCACHE_MODE_CONCURRENT` (0) or `MAPCACHE_MODE_EXCLUSIVE` (1).
    pub mode: u32,
    /// `MAPCACHE_MISUSE_ERROR` (0) or `MAPCACHE_MISUSE_ABORT` (1); applies to
    /// exclusive mode.
    pub misuse_policy: u32,
    /// `MAPCACHE_ENGINE_AUTO` (0), `MAPCACHE_ENGINE_SINGLE` (1) or
    /// `MAPCACHE_ENGINE_PARALLEL` (2).
    pub rehash_engine: u32,
    /// Hash seed; 0 = a random seed per map (recommended: resists hash flooding).
    pub seed: u64,
    /// ABI 3. The most entries the cache holds; 0 = no bound on the count. Past
    /// it, the eviction policy chooses what to drop. With `shards` 0, a bounded
    /// cache gets at most one shard per 4096 entries of capacity; an explicit
    /// `shards` larger than `max_entries` is `MAPCACHE_E_INVALID_CONFIG`.
    pub max_entries: u64,
    /// ABI 3. The most bytes the entries may occupy, each charged its full
    /// footprint (its memory block, its share of the bucket slots and its policy
    /// metadata); 0 = no bound. The cache never holds more than this plus one
    /// entry per shard; an entry larger than a shard's share is refused with
    /// `MAPCACHE_E_TOO_LARGE`. A share smaller than the smallest entry's charge
    /// (an empty key and value as `mapcache_put` writes it: with a non-zero
    /// `default_ttl_ms`, its deadline included) is `MAPCACHE_E_INVALID_CONFIG`.
    pub max_bytes: u64,
    /// ABI 3. Time-to-live, in milliseconds, of entries written without one of
    /// their own (every write but `mapcache_put_ttl` and the loads); 0 = they
    /// never expire. An expired entry is never returned by any call. A load
    /// (`mapcache_load`, `mapcache_load_into`) gives each entry the expiry its
    /// record was saved with, whatever this value: a record saved without one
    /// (an entry that was to live for ever) never expires after the load.
    pub default_ttl_ms: u64,
    /// ABI 3. `MAPCACHE_CLOCK_SYSTEM` (0, the default) or `MAPCACHE_CLOCK_MANUAL`
    /// (1, for tests: see `mapcache_clock_advance`).
    pub clock: u32,
    /// Reserved; must be 0. (Keeps the struct free of implicit padding; a later
    /// ABI may give it a meaning, with 0 as its default.)
    pub reserved: u32,
    /// GPU engine. The smallest table, in entries it is sized for (6.5 per
    /// bucket), rebuilt on the GPU; 0 = the default (4194304, not yet measured).
    pub gpu_threshold: u64,
    /// GPU engine. The path of the plugin `libmapcache_cuda.so`, a
    /// NUL-terminated string read during `mapcache_new` only (a relative path
    /// is taken from the working directory then, never searched for on the
    /// library path); NULL = the plugin's file in the directory of
    /// `libmapcache.so` (of the program, for a program linked with
    /// `libmapcache.a`).
    pub gpu_plugin_path: *const c_char,
    /// GPU engine. `MAPCACHE_GPU_AUTO` (0, the default), `MAPCACHE_GPU_OFF` (1)
    /// or `MAPCACHE_GPU_FORCE` (2). See `mapcache_gpu_status`.
    pub gpu_mode: u32,
    /// Reserved; must be 0 (as `reserved`).
    pub reserved2: u32,
}

/// The size of the first `mapcache_config` (ABI versions 1 and 2): the smallest
/// `struct_size` there will ever be. A host built against it gets the defaults
/// of every field appended since.
const V1_SIZE: usize = offset_of!(mapcache_config, seed) + size_of::<u64>();

/// The size of ABI 3's `mapcache_config`: the first one and the cache fields.
const V3_SIZE: usize = offset_of!(mapcache_config, reserved) + size_of::<u32>();

/// The size with the GPU engine's fields (appended to ABI 3's).
const GPU_SIZE: usize = offset_of!(mapcache_config, reserved2) + size_of::<u32>();

/// The defaults, with `struct_size` set to this library's size.
pub(crate) fn defaults() -> mapcache_config {
    mapcache_config {
        struct_size: size_of::<mapcache_config>(),
        initial_capacity: 0,
        shards: 0,
        mode: MAPCACHE_MODE_CONCURRENT,
        misuse_policy: MAPCACHE_MISUSE_ERROR,
        rehash_engine: MAPCACHE_ENGINE_AUTO,
        seed: 0,
        max_entries: 0,
        max_bytes: 0,
        default_ttl_ms: 0,
        clock: MAPCACHE_CLOCK_SYSTEM,
        reserved: 0,
        gpu_threshold: 0,
        gpu_plugin_path: ptr::null(),
        gpu_mode: MAPCACHE_GPU_AUTO,
        reserved2: 0,
    }
}

#[cold]
fn invalid(message: String) -> Fail {
    Fail::new(MAPCACHE_E_INVALID_CONFIG, message)
}

/// Checks a struct size the host states (`name` is how the message calls it): at
/// least the first `mapcache_config`, at most `MAX_STRUCT_SIZE`. The error is the
/// message; the caller picks the status.
fn check_size(size: usize, name: &str) -> Result<(), String> {
    if size < V1_SIZE {
        return Err(format!(
            "{name} = {size} is smaller than the smallest mapcache_config ({V1_SIZE} bytes); \
             pass sizeof(mapcache_config), or use MAPCACHE_CONFIG_INIT"
        ));
    }
    if size > MAX_STRUCT_SIZE {
        return Err(format!(
            "{name} = {size} is larger than {MAX_STRUCT_SIZE}; pass sizeof(mapcache_config), \
             or use MAPCACHE_CONFIG_INIT"
        ));
    }
    // Between two versions' sizes: no header ever had such a struct (it would
    // end inside a field).
    if (size > V1_SIZE && size < V3_SIZE) || (size > V3_SIZE && size < GPU_SIZE) {
        return Err(format!(
            "{name} = {size} is not the size of any mapcache_config ({V1_SIZE} bytes for ABI \
             1 and 2, {V3_SIZE} for ABI 3, {GPU_SIZE} with the GPU fields, more for a newer \
             header); pass sizeof(mapcache_config), or use MAPCACHE_CONFIG_INIT"
        ));
    }
    Ok(())
}

/// The bytes `cfg` says it has (its `struct_size`, cut at the end of the address
/// space), as an input for the overlap checks: nothing for NULL, nor for a
/// `struct_size` that is no config's (`read`'s error to report, not an overlap).
///
/// # Safety
/// `cfg` must be NULL or readable for its first field.
pub(crate) unsafe fn region(cfg: *const mapcache_config) -> super::args::Region {
    let len = if cfg.is_null() {
        0
    } else {
        // SAFETY: the first field is always present (contract); unaligned read.
        let size = unsafe { ptr::addr_of!((*cfg).struct_size).read_unaligned() };
        match check_size(size, "cfg->struct_size") {
            Ok(()) => size.min(usize::MAX - cfg as usize),
            Err(_) => 0,
        }
    };
    super::args::Region::of(cfg.cast::<u8>(), len, "cfg")
}

/// Reads and validates the host's config (NULL = defaults).
///
/// # Safety
/// `cfg` must be NULL or readable for `cfg->struct_size` bytes, and its
/// `gpu_plugin_path` (if within them) NULL or a NUL-terminated string.
pub(crate) unsafe fn read(cfg: *const mapcache_config) -> Result<(Config, Mode), Fail> {
    let mut c = defaults();
    if !cfg.is_null() {
        // SAFETY: the first field is always present; unaligned read.
        let size = unsafe { ptr::addr_of!((*cfg).struct_size).read_unaligned() };
        check_size(size, "cfg->struct_size").map_err(invalid)?;
        let known = size.min(size_of::<mapcache_config>());
        let bytes = cfg.cast::<u8>();
        // Fields of a newer header that this library does not know must be zero.
        for offset in known..size {
            // SAFETY: offset < struct_size, readable by the contract.
            if unsafe { bytes.add(offset).read() } != 0 {
                return Err(invalid(format!(
                    "cfg has a non-zero field at byte offset {offset}, past the fields this \
                     library (ABI version {}) knows; it was built for a newer mapcache",
                    super::version::MAPCACHE_ABI_VERSION
                )));
            }
        }
        // SAFETY: `known` bytes are readable; `c` is a repr(C) struct of integers
        // and one raw pointer, with no padding, so any bytes form a valid value.
        unsafe { ptr::copy_nonoverlapping(bytes, ptr::addr_of_mut!(c).cast::<u8>(), known) };
        c.struct_size = size;
    }
    let (mut config, mode) = convert(&c)?;
    // SAFETY: NULL or NUL-terminated (contract).
    config.gpu_plugin = unsafe { plugin_path(c.gpu_plugin_path) }?;
    Ok((config, mode))
}

/// The plugin path a host passed (NULL: none).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string.
unsafe fn plugin_path(path: *const c_char) -> Result<Option<PathBuf>, Fail> {
    if path.is_null() {
        return Ok(None);
    }
    // SAFETY: NUL-terminated (contract).
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if bytes.is_empty() || bytes.len() > MAPCACHE_MAX_PLUGIN_PATH {
        return Err(invalid(format!(
            "cfg->gpu_plugin_path is {} bytes long: pass NULL, or a path of 1 to \
             MAPCACHE_MAX_PLUGIN_PATH ({MAPCACHE_MAX_PLUGIN_PATH}) bytes",
            bytes.len()
        )));
    }
    use std::os::unix::ffi::OsStrExt;
    Ok(Some(PathBuf::from(std::ffi::OsStr::from_bytes(bytes))))
}

// This library's config is ABI 3's with the GPU fields, with no implicit
// padding (every byte a host passes belongs to a field, so none holds an
// undefined value).
const _: () = assert!(size_of::<mapcache_config>() == GPU_SIZE);
const _: () = assert!(V1_SIZE == 40 && V3_SIZE == 72 && GPU_SIZE == 96);

fn convert(c: &mapcache_config) -> Result<(Config, Mode), Fail> {
    let mode = match c.mode {
        MAPCACHE_MODE_CONCURRENT => Mode::Concurrent,
        MAPCACHE_MODE_EXCLUSIVE => Mode::Exclusive,
        m => {
            return Err(invalid(format!(
                "cfg->mode = {m} is not MAPCACHE_MODE_CONCURRENT (0) or MAPCACHE_MODE_EXCLUSIVE (1)"
            )))
        }
    };
    let misuse_policy = match c.misuse_policy {
        MAPCACHE_MISUSE_ERROR => MisusePolicy::Error,
        MAPCACHE_MISUSE_ABORT => MisusePolicy::Abort,
        p => {
            return Err(invalid(format!(
                "cfg->misuse_policy = {p} is not MAPCACHE_MISUSE_ERROR (0) or MAPCACHE_MISUSE_ABORT (1)"
            )))
        }
    };
    let engine = match c.rehash_engine {
        MAPCACHE_ENGINE_AUTO => EngineChoice::Auto,
        MAPCACHE_ENGINE_SINGLE => EngineChoice::Single,
        MAPCACHE_ENGINE_PARALLEL => EngineChoice::Parallel,
        e => {
            return Err(invalid(format!(
                "cfg->rehash_engine = {e} is not MAPCACHE_ENGINE_AUTO (0), _SINGLE (1) or _PARALLEL (2)"
            )))
        }
    };
    if c.shards != 0 && (!c.shards.is_power_of_two() || c.shards > 65536) {
        return Err(invalid(format!(
            "cfg->shards = {} is not 0 (automatic) or a power of two at most 65536",
            c.shards
        )));
    }
    if c.initial_capacity > MAPCACHE_MAX_INITIAL_CAPACITY {
        return Err(invalid(format!(
            "cfg->initial_capacity = {} is larger than MAPCACHE_MAX_INITIAL_CAPACITY \
             ({MAPCACHE_MAX_INITIAL_CAPACITY})",
            c.initial_capacity
        )));
    }
    let clock = match c.clock {
        MAPCACHE_CLOCK_SYSTEM => Clock::system(),
        MAPCACHE_CLOCK_MANUAL => Clock::manual(),
        k => {
            return Err(invalid(format!(
                "cfg->clock = {k} is not MAPCACHE_CLOCK_SYSTEM (0) or MAPCACHE_CLOCK_MANUAL (1)"
            )))
        }
    };
    if c.reserved != 0 {
        return Err(invalid(format!("cfg->reserved = {} must be 0", c.reserved)));
    }
    if c.reserved2 != 0 {
        return Err(invalid(format!(
            "cfg->reserved2 = {} must be 0",
            c.reserved2
        )));
    }
    let gpu = match c.gpu_mode {
        MAPCACHE_GPU_AUTO => GpuMode::Auto,
        MAPCACHE_GPU_OFF => GpuMode::Off,
        MAPCACHE_GPU_FORCE => GpuMode::Force,
        g => {
            return Err(invalid(format!(
                "cfg->gpu_mode = {g} is not MAPCACHE_GPU_AUTO (0), _OFF (1) or _FORCE (2)"
            )))
        }
    };
    // At most 2^30: fits every size_t the library builds for.
    let initial_capacity = c.initial_capacity as usize;
    // `..Config::default()`: fields the C config does not carry keep their defaults
    // (and fields the core adds later need no change here).
    #[allow(clippy::needless_update)]
    let config = Config {
        initial_capacity,
        shards: c.shards as usize,
        mode,
        misuse_policy,
        engine,
        seed: if c.seed == 0 { None } else { Some(c.seed) },
        // The library builds for 64-bit targets only (see `arena`): u64 fits usize.
        max_entries: c.max_entries as usize,
        max_bytes: c.max_bytes as usize,
        default_ttl: Duration::from_millis(c.default_ttl_ms),
        clock,
        gpu,
        // The library builds for 64-bit targets only: u64 fits usize.
        gpu_threshold: c.gpu_threshold as usize,
        ..Config::default()
    };
    Ok((config, mode))
}

/// ============ 1. LIFECYCLE ============
/// Configure, create and free a cache: mapcache_config_init, mapcache_new,
/// mapcache_free.
///
/// Fills the host's `mapcache_config` with the defaults. `size` is the size of the
/// struct as the host knows it, `sizeof(mapcache_config)` from the header the host
/// was compiled with: the library writes exactly `size` bytes and never more, so a
/// host built against an older (smaller) header is safe with a newer library. Use
/// `MAPCACHE_CONFIG_INIT(&cfg)`, which passes `sizeof` for you.
///
/// Afterwards `cfg->struct_size` is `size`, every field this library knows that
/// fits in `size` holds its default, and any bytes past this library's own
/// `mapcache_config` (a host built against a newer header) are zero, which every
/// field added later reads as "not used". Defaults: `initial_capacity` 0,
/// `shards` 0 (automatic), `mode` `MAPCACHE_MODE_CONCURRENT`, `misuse_policy`
/// `MAPCACHE_MISUSE_ERROR`, `rehash_engine` `MAPCACHE_ENGINE_AUTO`, `seed` 0
/// (random per map), and (ABI 3) `max_entries` and `max_bytes` 0 (unbounded),
/// `default_ttl_ms` 0 (no expiry), `clock` `MAPCACHE_CLOCK_SYSTEM`, `reserved` 0,
/// and (the GPU fields) `gpu_threshold` 0 (the default threshold),
/// `gpu_plugin_path` NULL (beside the library), `gpu_mode` `MAPCACHE_GPU_AUTO`,
/// `reserved2` 0. A host built against an older header (a 40- or 72-byte
/// struct) gets exactly these
/// defaults for the fields it does not know.
///
/// Ownership: `*cfg` is the caller's. Thread-safety: any thread.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cfg` NULL, or `size` smaller than the first
///   `mapcache_config` (40 bytes on 64-bit targets), between the sizes of two
///   versions of it (40 for ABI 1 and 2, 72 for ABI 3, 96 with the GPU fields)
///   or larger than 4096;
///   nothing was written.
/// - `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `cfg` must be NULL or valid for writing `size` bytes (any alignment).
#[no_mangle]
pub unsafe extern "C" fn mapcache_config_init(
    cfg: *mut mapcache_config,
    size: usize,
) -> mapcache_status {
    boundary::run("mapcache_config_init", || {
        args::out(cfg, "cfg")?;
        check_size(size, "size").map_err(Fail::arg)?;
        let ours = mapcache_config {
            struct_size: size,
            ..defaults()
        };
        // SAFETY: `cfg` is non-null and writable for `size` bytes (contract); `ours`
        // is a local value, readable for its own size and disjoint from the host's.
        unsafe {
            write_prefix(
                cfg.cast::<u8>(),
                size,
                ptr::addr_of!(ours).cast::<u8>(),
                size_of::<mapcache_config>(),
            )
        };
        Ok(MAPCACHE_OK)
    })
}

/// Writes `size` bytes at `dst`: the first `min(size, src_len)` bytes of `src`,
/// then zeros. The host's struct and this library's may differ in size either way
/// (older or newer header); this writes exactly the host's.
///
/// # Safety
/// `dst` must be valid for writes of `size` bytes, `src` for reads of `src_len`
/// bytes, and the two must not overlap.
pub(crate) unsafe fn write_prefix(dst: *mut u8, size: usize, src: *const u8, src_len: usize) {
    let known = size.min(src_len);
    // SAFETY: `known` <= both lengths (contract); an untyped copy, so padding bytes
    // of `src` (none on 64-bit targets) are copied without being read as values.
    unsafe { ptr::copy_nonoverlapping(src, dst, known) };
    // SAFETY: `known..size` is inside `dst`'s `size` bytes.
    unsafe { dst.add(known).write_bytes(0, size - known) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::status::MAPCACHE_OK;

    fn read_bytes(bytes: &[u8]) -> Result<(Config, Mode), Fail> {
        // SAFETY: the buffer holds struct_size bytes (the tests write it so).
        unsafe { read(bytes.as_ptr().cast()) }
    }

    fn as_bytes(c: &mapcache_config, total: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; total.max(size_of::<mapcache_config>())];
        // SAFETY: plain integers, copied into a buffer at least as large.
        unsafe {
            ptr::copy_nonoverlapping(
                (c as *const mapcache_config).cast::<u8>(),
                bytes.as_mut_ptr(),
                size_of::<mapcache_config>(),
            )
        };
        bytes
    }

    /// A host buffer: `size` bytes of struct, then `GUARD` guard bytes, all 0xAB.
    const GUARD: usize = 32;
    fn host_buffer(size: usize) -> Vec<u8> {
        vec![0xAB; size + GUARD]
    }

    fn init(buf: &mut [u8], size: usize) -> mapcache_status {
        // SAFETY: the buffer is at least `size` bytes long (callers make it so).
        unsafe { mapcache_config_init(buf.as_mut_ptr().cast(), size) }
    }

    fn fields(buf: &[u8]) -> mapcache_config {
        // SAFETY: the buffer holds at least one mapcache_config; unaligned read of
        // plain integers.
        unsafe { buf.as_ptr().cast::<mapcache_config>().read_unaligned() }
    }

    #[test]
    fn init_writes_exactly_the_hosts_size() {
        // A host whose struct is the first mapcache_config, with guard bytes after
        // it: init writes the struct and not one byte more.
        let mut buf = host_buffer(V1_SIZE);
        assert_eq!(init(&mut buf, V1_SIZE), MAPCACHE_OK);
        assert!(
            buf[V1_SIZE..].iter().all(|&b| b == 0xAB),
            "guard bytes written"
        );
        // The first V1_SIZE bytes are the defaults (the cache fields past them
        // are the guard's bytes).
        let expected = as_bytes(
            &mapcache_config {
                struct_size: V1_SIZE,
                ..defaults()
            },
            0,
        );
        assert_eq!(buf[..V1_SIZE], expected[..V1_SIZE]);
        // ... and `read` takes struct_size at its word: the non-zero guard bytes
        // past it are not part of the config (they would be invalid as its
        // cache fields: clock and reserved 0xABABABAB).
        let (config, mode) = read_bytes(&buf).unwrap();
        assert_eq!((config.initial_capacity, mode), (0, Mode::Concurrent));
        assert_eq!((config.max_entries, config.max_bytes), (0, 0));
    }

    #[test]
    fn init_zeroes_what_a_newer_host_has_past_this_library() {
        let size = size_of::<mapcache_config>() + 24;
        let mut buf = host_buffer(size);
        assert_eq!(init(&mut buf, size), MAPCACHE_OK);
        let ours = size_of::<mapcache_config>();
        assert!(buf[ours..size].iter().all(|&b| b == 0), "tail not zeroed");
        assert!(
            buf[size..].iter().all(|&b| b == 0xAB),
            "guard bytes written"
        );
        assert_eq!(fields(&buf).struct_size, size);
        // The zero tail is what `read` accepts from a newer host.
        assert!(read_bytes(&buf).is_ok());
    }

    #[test]
    fn write_prefix_writes_the_hosts_size_whichever_side_is_larger() {
        // A newer library (64-byte config) and an older host (40 bytes).
        let library = [0x11u8; 64];
        let mut host = host_buffer(40);
        // SAFETY: host holds 40 + GUARD bytes, library 64; disjoint.
        unsafe { write_prefix(host.as_mut_ptr(), 40, library.as_ptr(), library.len()) };
        assert!(host[..40].iter().all(|&b| b == 0x11));
        assert!(
            host[40..].iter().all(|&b| b == 0xAB),
            "wrote past the host's struct"
        );
        // An older library (40 bytes) and a newer host (64 bytes).
        let library = [0x11u8; 40];
        let mut host = host_buffer(64);
        // SAFETY: host holds 64 + GUARD bytes, library 40; disjoint.
        unsafe { write_prefix(host.as_mut_ptr(), 64, library.as_ptr(), library.len()) };
        assert!(host[..40].iter().all(|&b| b == 0x11));
        assert!(host[40..64].iter().all(|&b| b == 0));
        assert!(
            host[64..].iter().all(|&b| b == 0xAB),
            "wrote past the host's struct"
        );
    }

    #[test]
    fn init_refuses_bad_sizes_and_writes_nothing() {
        for size in [
            0,
            8,
            V1_SIZE - 1,
            V1_SIZE + 8,
            V3_SIZE - 1,
            V3_SIZE + 8,
            GPU_SIZE - 1,
            MAX_STRUCT_SIZE + 1,
            usize::MAX,
        ] {
            let mut buf = host_buffer(V1_SIZE);
            assert_eq!(
                init(&mut buf, size),
                crate::ffi::status::MAPCACHE_E_INVALID_ARG,
                "size {size}"
            );
            assert!(buf.iter().all(|&b| b == 0xAB), "size {size}: wrote bytes");
        }
        // SAFETY: NULL is checked.
        let st = unsafe { mapcache_config_init(ptr::null_mut(), V1_SIZE) };
        assert_eq!(st, crate::ffi::status::MAPCACHE_E_INVALID_ARG);
    }

    #[test]
    fn defaults_and_null() {
        // SAFETY: NULL is allowed.
        let (config, mode) = unsafe { read(std::ptr::null()) }.unwrap();
        assert_eq!(mode, Mode::Concurrent);
        assert_eq!(config.seed, None);
        let (config, _) = read_bytes(&as_bytes(&defaults(), 0)).unwrap();
        assert_eq!(config.shards, 0);
        assert_eq!(config.initial_capacity, 0);
    }

    #[test]
    fn an_abi_2_host_gets_the_defaults_of_the_cache_fields() {
        // An ABI 2 host's 40-byte struct, followed by bytes that would be
        // nonsense as cache fields: none of them is read.
        let c = mapcache_config {
            struct_size: V1_SIZE,
            shards: 4,
            max_entries: 3,
            max_bytes: 1,
            default_ttl_ms: 5,
            clock: 9,
            reserved: 9,
            ..defaults()
        };
        let (config, _) = read_bytes(&as_bytes(&c, 0)).unwrap();
        assert_eq!(config.shards, 4);
        assert_eq!((config.max_entries, config.max_bytes), (0, 0));
        assert_eq!(config.default_ttl, Duration::ZERO);
        assert!(!config.clock.is_manual());
    }

    #[test]
    fn cache_fields_are_converted() {
        let c = mapcache_config {
            max_entries: 10_000,
            max_bytes: 1 << 20,
            default_ttl_ms: 1500,
            clock: MAPCACHE_CLOCK_MANUAL,
            ..defaults()
        };
        let (config, _) = read_bytes(&as_bytes(&c, 0)).unwrap();
        assert_eq!((config.max_entries, config.max_bytes), (10_000, 1 << 20));
        assert_eq!(config.default_ttl, Duration::from_millis(1500));
        assert!(config.clock.is_manual());
    }

    #[test]
    fn gpu_fields_are_converted() {
        let c = mapcache_config {
            gpu_mode: MAPCACHE_GPU_FORCE,
            gpu_threshold: 1 << 24,
            gpu_plugin_path: c"/opt/mapcache/libmapcache_cuda.so".as_ptr(),
            ..defaults()
        };
        let (config, _) = read_bytes(&as_bytes(&c, 0)).unwrap();
        assert_eq!(config.gpu, GpuMode::Force);
        assert_eq!(config.gpu_threshold, 1 << 24);
        assert_eq!(
            config.gpu_plugin,
            Some(PathBuf::from("/opt/mapcache/libmapcache_cuda.so"))
        );
        let off = mapcache_config {
            gpu_mode: MAPCACHE_GPU_OFF,
            ..defaults()
        };
        assert_eq!(read_bytes(&as_bytes(&off, 0)).unwrap().0.gpu, GpuMode::Off);
        let (config, _) = read_bytes(&as_bytes(&defaults(), 0)).unwrap();
        assert_eq!(
            (config.gpu, config.gpu_threshold, config.gpu_plugin),
            (GpuMode::Auto, 0, None)
        );
    }

    #[test]
    fn an_abi_3_host_gets_the_defaults_of_the_gpu_fields() {
        // A 72-byte struct followed by bytes that would be invalid GPU fields
        // (gpu_mode 9): none of them is read.
        let c = mapcache_config {
            struct_size: V3_SIZE,
            max_entries: 100,
            gpu_threshold: 5,
            gpu_mode: 9,
            reserved2: 9,
            ..defaults()
        };
        let (config, _) = read_bytes(&as_bytes(&c, 0)).unwrap();
        assert_eq!(config.max_entries, 100);
        assert_eq!((config.gpu, config.gpu_threshold), (GpuMode::Auto, 0));
        // ... and init writes exactly 72 bytes for it.
        let mut buf = host_buffer(V3_SIZE);
        assert_eq!(init(&mut buf, V3_SIZE), MAPCACHE_OK);
        assert!(
            buf[V3_SIZE..].iter().all(|&b| b == 0xAB),
            "guard bytes written"
        );
    }

    #[test]
    fn fields_are_converted() {
        let c = mapcache_config {
            initial_capacity: 1000,
            shards: 8,
            mode: MAPCACHE_MODE_EXCLUSIVE,
            misuse_policy: MAPCACHE_MISUSE_ABORT,
            rehash_engine: MAPCACHE_ENGINE_PARALLEL,
            seed: 7,
            ..defaults()
        };
        let (config, mode) = read_bytes(&as_bytes(&c, 0)).unwrap();
        assert_eq!(mode, Mode::Exclusive);
        assert_eq!(config.mode, Mode::Exclusive);
        assert_eq!(config.misuse_policy, MisusePolicy::Abort);
        assert_eq!(config.engine, EngineChoice::Parallel);
        assert_eq!(
            (config.initial_capacity, config.shards, config.seed),
            (1000, 8, Some(7))
        );
    }

    #[test]
    fn struct_size_rules() {
        let status = |c: mapcache_config, total: usize, tail: Option<u8>| {
            let mut bytes = as_bytes(&c, total);
            if let Some(b) = tail {
                *bytes.last_mut().unwrap() = b;
            }
            read_bytes(&bytes)
                .map(|_| MAPCACHE_OK)
                .unwrap_or_else(|f| f.status())
        };
        let small = mapcache_config {
            struct_size: V1_SIZE - 1,
            ..defaults()
        };
        assert_eq!(status(small, 0, None), MAPCACHE_E_INVALID_CONFIG);
        let huge = mapcache_config {
            struct_size: MAX_STRUCT_SIZE + 1,
            ..defaults()
        };
        assert_eq!(status(huge, 0, None), MAPCACHE_E_INVALID_CONFIG);
        let newer = mapcache_config {
            struct_size: GPU_SIZE + 16,
            ..defaults()
        };
        assert_eq!(status(newer, GPU_SIZE + 16, None), MAPCACHE_OK);
        assert_eq!(
            status(newer, GPU_SIZE + 16, Some(1)),
            MAPCACHE_E_INVALID_CONFIG
        );
        // Ending inside the GPU fields: no header has such a struct.
        let torn = mapcache_config {
            struct_size: V3_SIZE + 16,
            ..defaults()
        };
        assert_eq!(status(torn, 0, None), MAPCACHE_E_INVALID_CONFIG);
    }

    #[test]
    fn out_of_range_fields_are_named() {
        let cases = [
            (
                mapcache_config {
                    mode: 2,
                    ..defaults()
                },
                "cfg->mode",
            ),
            (
                mapcache_config {
                    misuse_policy: 2,
                    ..defaults()
                },
                "cfg->misuse_policy",
            ),
            (
                mapcache_config {
                    rehash_engine: 3,
                    ..defaults()
                },
                "cfg->rehash_engine",
            ),
            (
                mapcache_config {
                    shards: 6,
                    ..defaults()
                },
                "cfg->shards",
            ),
            (
                mapcache_config {
                    shards: 1 << 17,
                    ..defaults()
                },
                "cfg->shards",
            ),
            (
                mapcache_config {
                    initial_capacity: MAPCACHE_MAX_INITIAL_CAPACITY + 1,
                    ..defaults()
                },
                "cfg->initial_capacity = 1073741825 is larger than \
                 MAPCACHE_MAX_INITIAL_CAPACITY (1073741824)",
            ),
            (
                mapcache_config {
                    initial_capacity: u64::MAX,
                    ..defaults()
                },
                "cfg->initial_capacity",
            ),
            (
                mapcache_config {
                    clock: 2,
                    ..defaults()
                },
                "cfg->clock = 2 is not MAPCACHE_CLOCK_SYSTEM (0) or MAPCACHE_CLOCK_MANUAL (1)",
            ),
            (
                mapcache_config {
                    reserved: 1,
                    ..defaults()
                },
                "cfg->reserved = 1 must be 0",
            ),
            (
                mapcache_config {
                    gpu_mode: 3,
                    ..defaults()
                },
                "cfg->gpu_mode = 3 is not MAPCACHE_GPU_AUTO (0), _OFF (1) or _FORCE (2)",
            ),
            (
                mapcache_config {
                    reserved2: 7,
                    ..defaults()
                },
                "cfg->reserved2 = 7 must be 0",
            ),
            (
                mapcache_config {
                    gpu_plugin_path: c"".as_ptr(),
                    ..defaults()
                },
                "cfg->gpu_plugin_path is 0 bytes long",
            ),
        ];
        for (c, name) in cases {
            let fail = read_bytes(&as_bytes(&c, 0)).unwrap_err();
            assert_eq!(fail.status(), MAPCACHE_E_INVALID_CONFIG);
            assert!(fail.message_for("f").contains(name), "{name}");
        }
    }
}
