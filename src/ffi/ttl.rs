//! Time-to-live from C: a put with its own TTL, and the manual clock that tests
//! move instead of sleeping (`mapcache_config.clock = MAPCACHE_CLOCK_MANUAL`).
//!
//! Times cross the boundary as whole milliseconds (`uint64_t`); the core keeps
//! nanoseconds, so every millisecond value is exact there.

use std::time::Duration;

use super::boundary::{self, Fail};
use super::handle::{self, mapcache_t};
use super::ops;
use super::status::{mapcache_status, MAPCACHE_OK};

/// Inserts or replaces the value of `key` with a copy of `value[0..value_len]`
/// that expires `ttl_ms` milliseconds from now on the cache's clock. `ttl_ms` 0
/// means it never expires, whatever the cache's `default_ttl_ms`. (`mapcache_put`
/// and every other write but a load give the entry the cache's `default_ttl_ms`;
/// a load gives it the expiry its record was saved with.)
///
/// From the moment it expires (the cache's clock has moved `ttl_ms` or more past
/// the put) the entry is absent for every call: `mapcache_get` and its variants,
/// the batch gets, `mapcache_contains`, iteration, `mapcache_compare_and_swap`
/// (`MAPCACHE_NOT_FOUND`) and `mapcache_get_or_insert` and
/// `mapcache_get_or_load` (which store a new value). Its memory is reclaimed
/// lazily: when a call comes across it, or by the eviction sweep; it counts as
/// an expiration in `mapcache_stats_get`.
///
/// Ownership, thread-safety and replacement: as `mapcache_put`.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` NULL, `key` NULL with `key_len` > 0, `value`
///   NULL with `value_len` > 0.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG`.
/// - `MAPCACHE_E_TOO_LARGE` (a bounded cache: the entry is larger than its
///   shard's share of `max_bytes`; nothing was written).
/// - `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode; nothing was written),
///   `MAPCACHE_E_NO_MEMORY` (nothing was written), `MAPCACHE_E_INVALID_HANDLE`,
///   `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key` and `value` must be readable for their lengths and not modified during
/// the call.
#[no_mangle]
pub unsafe extern "C" fn mapcache_put_ttl(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    ttl_ms: u64,
) -> mapcache_status {
    // SAFETY: forwarded from the caller (mapcache_put's contract); no
    // out-pointer.
    unsafe {
        ops::put_entry(
            "mapcache_put_ttl",
            cache,
            key,
            key_len,
            value,
            value_len,
            Some(Duration::from_millis(ttl_ms)),
            std::ptr::null_mut(),
        )
    }
}

/// Moves the manual clock of `cache` forward by `ms` milliseconds, for tests of
/// expiry that must not sleep: entries whose deadline it reaches are expired for
/// every call from then on (`mapcache_len` and the stats count them until they
/// are reclaimed, see `mapcache_put_ttl`). Only for a cache made with
/// `cfg.clock = MAPCACHE_CLOCK_MANUAL`; each such cache has a clock of its own,
/// which starts at 0. The clock never moves backwards, and saturates at its end,
/// 2^63 - 1 ns (9,223,372,036,854.775807 ms, about 292 years): a move past the
/// end (`UINT64_MAX`, say) moves it to the end. A TTL entry written at any reading,
/// the end included, lives its TTL or until the end.
///
/// Thread-safety: any thread, concurrently with any call on `cache` but
/// `mapcache_free`; a call that runs while the clock moves sees it before or
/// after the move.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` NULL, or the cache's clock is
///   `MAPCACHE_CLOCK_SYSTEM` (which cannot be moved).
/// - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `cache` must be NULL or a pointer obtained from `mapcache_new` (any value is
/// memory-safe: see the conventions on handles).
#[no_mangle]
pub unsafe extern "C" fn mapcache_clock_advance(
    cache: *mut mapcache_t,
    ms: u64,
) -> mapcache_status {
    boundary::run("mapcache_clock_advance", || {
        handle::with_map(cache, |inner| {
            let clock = &inner.map.config().clock;
            if !clock.is_manual() {
                return Err(Fail::arg(
                    "the cache's clock is MAPCACHE_CLOCK_SYSTEM, which cannot be moved; \
                     create it with cfg.clock = MAPCACHE_CLOCK_MANUAL",
                ));
            }
            clock.advance(Duration::from_millis(ms))?;
            Ok(MAPCACHE_OK)
        })
    })
}
