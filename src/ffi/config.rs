//! `mapcache_config`: the host's view of [`crate::Config`], versioned by its first
//! field, and its validation (`MAPCACHE_E_INVALID_CONFIG`).
//!
//! Compatibility rule (as Linux's `copy_struct_from_user`): fields are only ever
//! appended. The library reads `min(struct_size, its own size)` bytes; a host built
//! against an older header gets defaults for the fields it does not know, and a host
//! built against a newer header is accepted as long as the fields this library does
//! not know are zero.

use std::mem::{offset_of, size_of};
use std::ptr;

use super::args;
use super::boundary::{self, Fail};
use super::status::MAPCACHE_E_INVALID_CONFIG;
use crate::{Config, EngineChoice, MisusePolicy, Mode};

/// `mapcache_config.mode`: any number of threads may read and write (the default).
pub const MAPCACHE_MODE_CONCURRENT: u32 = 0;
/// `mapcache_config.mode`: Go's contract; the host promises one writer at a time and
/// a detected overlap is reported as `MAPCACHE_E_CONCURRENT_WRITE` (or
/// `MAPCACHE_E_CONCURRENT_READ_WRITE`) instead of being waited out.
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

/// The largest `struct_size` accepted (a guard against garbage in the field).
const MAX_STRUCT_SIZE: usize = 4096;

/// How to create a cache. Initialise with `mapcache_config_init`, then change the
/// fields you need; pass to `mapcache_new`, which reads it during the call only.
/// Fields are only ever appended in later versions (see `struct_size`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct mapcache_config {
    /// `sizeof(mapcache_config)` as the code that filled it knows it; set by
    /// `mapcache_config_init`. Tells the library which fields are present.
    pub struct_size: usize,
    /// Entries to size the table for up front; 0 = start small and grow.
    pub initial_capacity: u64,
    /// Number of shards: 0 = automatic, else a power of two, at most 65536.
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
}

/// The size of ABI version 1's `mapcache_config`: the smallest `struct_size` there
/// will ever be.
const V1_SIZE: usize = offset_of!(mapcache_config, seed) + size_of::<u64>();

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
    }
}

#[cold]
fn invalid(message: String) -> Fail {
    Fail::new(MAPCACHE_E_INVALID_CONFIG, message)
}

/// Reads and validates the host's config (NULL = defaults).
///
/// # Safety
/// `cfg` must be NULL or readable for `cfg->struct_size` bytes.
pub(crate) unsafe fn read(cfg: *const mapcache_config) -> Result<(Config, Mode), Fail> {
    let mut c = defaults();
    if !cfg.is_null() {
        // SAFETY: the first field is always present; unaligned read.
        let size = unsafe { ptr::addr_of!((*cfg).struct_size).read_unaligned() };
        if size < V1_SIZE {
            return Err(invalid(format!(
                "cfg->struct_size = {size} is smaller than the smallest mapcache_config \
                 ({V1_SIZE} bytes); initialise it with mapcache_config_init"
            )));
        }
        if size > MAX_STRUCT_SIZE {
            return Err(invalid(format!(
                "cfg->struct_size = {size} is larger than {MAX_STRUCT_SIZE}; \
                 initialise it with mapcache_config_init"
            )));
        }
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
        // SAFETY: `known` bytes are readable; `c` is a plain-integer repr(C) struct
        // whose padding (if any) holds no value, so any bytes form a valid value.
        unsafe { ptr::copy_nonoverlapping(bytes, ptr::addr_of_mut!(c).cast::<u8>(), known) };
        c.struct_size = size;
    }
    convert(&c)
}

// This library is ABI version 1: its config is exactly the first one.
const _: () = assert!(size_of::<mapcache_config>() == V1_SIZE);

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
    let initial_capacity = usize::try_from(c.initial_capacity).map_err(|_| {
        invalid(format!(
            "cfg->initial_capacity = {} does not fit in this platform's size_t",
            c.initial_capacity
        ))
    })?;
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
        ..Config::default()
    };
    Ok((config, mode))
}

/// Fills `*cfg` with the defaults and sets `cfg->struct_size` to the size of
/// `mapcache_config` as this library knows it. NULL is a no-op.
///
/// Defaults: `initial_capacity` 0, `shards` 0 (automatic), `mode`
/// `MAPCACHE_MODE_CONCURRENT`, `misuse_policy` `MAPCACHE_MISUSE_ERROR`,
/// `rehash_engine` `MAPCACHE_ENGINE_AUTO`, `seed` 0 (random per map).
///
/// A host built against a newer header (a larger `mapcache_config`) can compare
/// `cfg->struct_size` with its `sizeof(mapcache_config)` afterwards: a smaller value
/// means this library does not know the later fields, which must then stay zero.
///
/// Ownership: `*cfg` is the caller's. Thread-safety: any thread.
///
/// # Safety
/// `cfg` must be NULL or valid for writing a `mapcache_config`.
#[no_mangle]
pub unsafe extern "C" fn mapcache_config_init(cfg: *mut mapcache_config) {
    boundary::run_with("mapcache_config_init", (), (), || {
        if !cfg.is_null() {
            // SAFETY: non-null and writable by the contract.
            unsafe { args::put(cfg, defaults()) };
        }
        Ok(())
    })
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
            struct_size: V1_SIZE + 16,
            ..defaults()
        };
        assert_eq!(status(newer, V1_SIZE + 16, None), MAPCACHE_OK);
        assert_eq!(
            status(newer, V1_SIZE + 16, Some(1)),
            MAPCACHE_E_INVALID_CONFIG
        );
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
        ];
        for (c, name) in cases {
            let fail = read_bytes(&as_bytes(&c, 0)).unwrap_err();
            assert_eq!(fail.status(), MAPCACHE_E_INVALID_CONFIG);
            assert!(fail.message_for("f").contains(name), "{name}");
        }
    }
}
