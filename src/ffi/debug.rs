//! A debug hook for deterministic misuse tests: hold the write flag a write of a
//! key would take while host code runs, so that a test can make another thread
//! collide with it on purpose. Not for production use.

use std::ffi::c_void;

use super::args;
use super::boundary::{self, Fail};
use super::handle::{self, mapcache_t};
use super::status::{mapcache_status, MAPCACHE_OK};
use crate::Mode;

/// The callback of `mapcache_debug_hold_write`: receives `ctx` unchanged.
pub type mapcache_debug_fn = Option<unsafe extern "C" fn(ctx: *mut c_void)>;

/// ============ 9. DEBUG HOOKS ============
/// Declared only when MAPCACHE_TESTING is defined before including this header:
/// mapcache_debug_hold_write, mapcache_debug_panic, mapcache_debug_load_waiters.
///
/// DEBUGGING AID, not for production use: takes the write flag that a write of
/// `key` would take, calls `callback(ctx)` while holding it, then releases it.
///
/// Meant for tests of misuse detection. Only for caches in
/// `MAPCACHE_MODE_EXCLUSIVE` (in concurrent mode other writers would wait for the
/// callback, which would deadlock a callback that waits for them). An exclusive
/// cache has one write flag for all its keys, so the flag's scope is the whole
/// cache and `key` does not change what is held: while the callback runs, a write
/// of any key by another thread fails with `MAPCACHE_E_CONCURRENT_WRITE`, naming
/// this thread as the holder, and a read of any key by another thread that checks
/// for overlapping writes fails with `MAPCACHE_E_CONCURRENT_READ_WRITE`.
///
/// The callback runs on the calling thread; it must return normally and must not
/// call `mapcache_free` on `cache`. It may start and join other threads. Writes to
/// `cache` from the calling thread inside the callback collide with the flag it
/// holds.
///
/// Thread-safety: as `mapcache_put`.
///
/// Returns:
/// - `MAPCACHE_OK`: the callback ran while the flag was held.
/// - `MAPCACHE_E_CONCURRENT_WRITE`: the flag was taken by another thread; the
///   callback was not called.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `callback` NULL, `key` NULL with
///   `key_len` > 0, or the cache is not in exclusive mode.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key` must be readable for `key_len` bytes; `callback` must be a function with
/// the `mapcache_debug_fn` signature.
#[no_mangle]
pub unsafe extern "C" fn mapcache_debug_hold_write(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    callback: mapcache_debug_fn,
    ctx: *mut c_void,
) -> mapcache_status {
    boundary::run("mapcache_debug_hold_write", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable for key_len bytes (contract); copied right away, since
        // the callback may write the host's buffer.
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?.to_vec();
        let Some(callback) = callback else {
            return Err(Fail::arg("callback is NULL"));
        };
        shell.with(|inner| {
            if inner.mode != Mode::Exclusive {
                return Err(Fail::arg(
                    "cache is not in MAPCACHE_MODE_EXCLUSIVE (the hook would block writers)",
                ));
            }
            let held = inner.map.debug_hold_write_flag(&key)?;
            // SAFETY: `callback` has the documented signature (contract).
            unsafe { callback(ctx) };
            drop(held);
            Ok(MAPCACHE_OK)
        })
    })
}

/// DEBUGGING AID, not for production use: panics inside the library with
/// `message` (NULL: a fixed text), to let a host check that panics are caught at
/// the boundary. Always returns `MAPCACHE_E_INTERNAL`, with a message that contains
/// `message`; the panic is also printed to stderr by the Rust panic hook.
///
/// Thread-safety: any thread.
///
/// # Safety
/// `message` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mapcache_debug_panic(message: *const std::ffi::c_char) -> mapcache_status {
    boundary::run("mapcache_debug_panic", || {
        let text = if message.is_null() {
            "mapcache_debug_panic".to_owned()
        } else {
            // SAFETY: a NUL-terminated string (contract).
            unsafe { std::ffi::CStr::from_ptr(message) }
                .to_string_lossy()
                .into_owned()
        };
        panic!("{text}");
    })
}

/// DEBUGGING AID, not for production use: `*out` receives the number of
/// `mapcache_get_or_load` calls waiting for the load of `key` in progress on
/// `cache` (0 when none runs). For tests that must know every caller has
/// joined a load before letting its loader return: a waiter counted here gets
/// that load's outcome.
///
/// Thread-safety: any thread (from inside the loader, typically).
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL, `key` NULL with
///   `key_len` > 0.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key` must be readable for `key_len` bytes and not modified during the
/// call; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn mapcache_debug_load_waiters(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    out: *mut usize,
) -> mapcache_status {
    let status = boundary::run("mapcache_debug_load_waiters", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable and unmodified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        args::out(out, "out")?;
        shell.with(|inner| {
            let waiters = inner.map.debug_load_waiters(key);
            // SAFETY: checked non-null, writable (contract).
            unsafe { args::put(out, waiters) };
            Ok(MAPCACHE_OK)
        })
    });
    // SAFETY: NULL or writable (contract).
    unsafe { args::reset_on_error(status, out, 0) };
    status
}
