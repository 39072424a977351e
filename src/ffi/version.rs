//! Versions and limits: what a host checks that it loaded the library it was
//! built for.

use std::ffi::c_char;

use super::boundary;

/// The ABI version this header describes. It changes only if an existing function,
/// type or status changes meaning (functions and config fields are only ever
/// added); a host should check `mapcache_abi_version() == MAPCACHE_ABI_VERSION` at
/// start-up.
///
/// History: 1, the first ABI. 2: `mapcache_config_init` takes the size of the
/// host's `mapcache_config` (and returns a status), so that a host built against
/// an older header never has more bytes written than its struct holds. 3: the
/// cache (additions only; an ABI 2 host keeps working unchanged): config fields
/// `max_entries`, `max_bytes`, `default_ttl_ms`, `clock` (and `reserved`)
/// appended after `seed`; `mapcache_put_ttl`, `mapcache_clock_advance`,
/// `mapcache_get_or_load` with its loader and result, `mapcache_stats_get`;
/// statuses `MAPCACHE_E_TOO_LARGE` and `MAPCACHE_E_LOADER`; and snapshots:
/// `mapcache_save` (with `mapcache_progress_fn` and `mapcache_save_report`),
/// `mapcache_load` and `mapcache_load_into` (with `mapcache_load_report`),
/// statuses `MAPCACHE_E_CORRUPT` and `MAPCACHE_E_IO`. Added since, within
/// 3 (a host built against the older header keeps working; a newer host's
/// non-zero GPU fields are refused by an older library): the GPU engine's config
/// fields `gpu_threshold`, `gpu_plugin_path`, `gpu_mode` (and `reserved2`)
/// appended after `reserved`, `mapcache_gpu_status`, status `MAPCACHE_E_GPU`.
pub const MAPCACHE_ABI_VERSION: u32 = 3;

/// The longest key, in bytes.
pub const MAPCACHE_MAX_KEY_LEN: usize = 65535;

/// The longest value, in bytes (1 GiB).
pub const MAPCACHE_MAX_VALUE_LEN: usize = 1073741824;

const _: () = assert!(MAPCACHE_MAX_KEY_LEN == crate::MAX_KEY_LEN);
const _: () = assert!(MAPCACHE_MAX_VALUE_LEN == crate::MAX_VALUE_LEN);

/// ============ 7. VERSIONING ============
/// mapcache_abi_version, mapcache_version (and MAPCACHE_ABI_VERSION above).
///
/// The ABI version of the loaded library (`MAPCACHE_ABI_VERSION` of the header it
/// was built with).
///
/// Thread-safety: any thread, any time. Never fails.
#[no_mangle]
pub extern "C" fn mapcache_abi_version() -> u32 {
    boundary::run_with(
        "mapcache_abi_version",
        MAPCACHE_ABI_VERSION,
        MAPCACHE_ABI_VERSION,
        || Ok(MAPCACHE_ABI_VERSION),
    )
}

/// The library's version, e.g. `"0.1.0"`.
///
/// Returns: a static NUL-terminated string, never NULL; it belongs to the library
/// (do not free it). Thread-safety: any thread, any time. Never fails.
#[no_mangle]
pub extern "C" fn mapcache_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    boundary::run_with(
        "mapcache_version",
        VERSION.as_ptr(),
        VERSION.as_ptr(),
        || Ok(VERSION.as_ptr()),
    )
    .cast()
}
