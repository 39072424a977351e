//! Single-key operations: get (copy-out and zero-copy), put, delete, contains, len,
//! clear, get-or-insert and compare-and-swap.
//!
//! Common to every function here (the header repeats what applies):
//! - `cache` must come from `mapcache_new`: NULL is `MAPCACHE_E_INVALID_ARG`, a
//!   foreign or freed handle `MAPCACHE_E_INVALID_HANDLE`.
//! - A key is `key[0..key_len]`, 0 to `MAPCACHE_MAX_KEY_LEN` bytes; `key` may be
//!   NULL only when `key_len` is 0. The library reads it during the call only.
//! - Thread-safety: any number of threads may call these on the same cache at once
//!   (except with `mapcache_free`). In `MAPCACHE_MODE_EXCLUSIVE` the host promises
//!   one writer at a time; a write that overlaps another thread's write fails with
//!   `MAPCACHE_E_CONCURRENT_WRITE`, and a read that overlaps a write may fail with
//!   `MAPCACHE_E_CONCURRENT_READ_WRITE`, without changing the map.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::time::Duration;

use super::args::{self, Region};
use super::boundary::{self, Fail};
use super::handle::{self, mapcache_t};
use super::status::{
    mapcache_status, MAPCACHE_E_BUFFER_TOO_SMALL, MAPCACHE_E_NO_MEMORY, MAPCACHE_NOT_FOUND,
    MAPCACHE_OK,
};

/// The callback of `mapcache_get_with`: receives `ctx` unchanged and the value
/// (`value_len` bytes at `value`; `value` is not NULL but must not be read when
/// `value_len` is 0). The value is valid only until the callback returns; it must
/// not be written. The callback must return normally (no `longjmp`, no C++
/// exception) and must not call `mapcache_free` on the cache being read; it may
/// call other mapcache functions.
pub type mapcache_value_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, value: *const u8, value_len: usize)>;

/// Copies `value` into `buf[0..cap]` if it fits: `Ok(len)`; else `Err(needed)`.
///
/// # Safety
/// `buf` must be checked with `args::out_buf(buf, cap)` and must not overlap
/// `value`.
#[inline]
pub(crate) unsafe fn copy_if_fits(value: &[u8], buf: *mut u8, cap: usize) -> Result<usize, usize> {
    if value.len() <= cap {
        // SAFETY: value.len() <= cap, buf is valid for cap bytes; disjoint.
        unsafe { args::copy_out(value, buf) };
        Ok(value.len())
    } else {
        Err(value.len())
    }
}

/// The lookup behind `mapcache_get` and `mapcache_get_value`: copies the value
/// of `key` into `buf` when it fits. `Some(Ok(len))`: copied; `Some(Err(len))`:
/// longer than `buf_cap`, nothing copied; `None`: absent.
///
/// # Safety
/// `buf` is writable for `buf_cap` bytes and disjoint from `key` (both checked
/// by the caller).
unsafe fn copy_value(
    shell: handle::Shell,
    key: &[u8],
    buf: *mut u8,
    buf_cap: usize,
) -> Result<Option<Result<usize, usize>>, Fail> {
    shell.with(|inner| {
        // SAFETY: per the contract; the value is map memory, disjoint from buf.
        Ok(inner
            .map
            .get_with(key, |v| unsafe { copy_if_fits(v, buf, buf_cap) })?)
    })
}

#[cold]
pub(crate) fn too_small(needed: usize, cap: usize, cap_name: &str) -> Fail {
    Fail::new(
        MAPCACHE_E_BUFFER_TOO_SMALL,
        format!("the value is {needed} bytes but {cap_name} is {cap}; retry with a larger buffer"),
    )
}

/// ============ 2. SINGLE-KEY CALLS ============
/// mapcache_get, mapcache_get_value, mapcache_get_object, mapcache_get_with,
/// mapcache_put, mapcache_delete, mapcache_contains, mapcache_len, mapcache_clear,
/// mapcache_get_or_insert, mapcache_compare_and_swap; and the cache calls (ABI 3):
/// mapcache_put_ttl, mapcache_clock_advance, mapcache_get_or_load (with
/// mapcache_load_result_set and mapcache_load_result_set_error), mapcache_stats_get.
///
/// Copies the value of `key` into the caller's buffer.
///
/// `buf[0..buf_cap]` receives the value; `buf` may be NULL when `buf_cap` is 0 (a
/// way to ask for the length). `*out_len` receives the value's length on
/// `MAPCACHE_OK` and on `MAPCACHE_E_BUFFER_TOO_SMALL` (then nothing was copied: grow
/// the buffer to `*out_len` and call again), and 0 on `MAPCACHE_NOT_FOUND` and on
/// every other error. `buf` must not overlap `key`.
///
/// Ownership: all buffers are the caller's; the library keeps no pointer.
/// Thread-safety: any thread, concurrently with other calls on `cache` except
/// `mapcache_free` (a read never blocks on writers).
///
/// Returns:
/// - `MAPCACHE_OK`: the value was copied, `*out_len` is its length.
/// - `MAPCACHE_NOT_FOUND`: no such key.
/// - `MAPCACHE_E_BUFFER_TOO_SMALL`: the value is longer than `buf_cap`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `out_len` NULL, `key` NULL with
///   `key_len` > 0, `buf` NULL with `buf_cap` > 0, `buf` overlaps `key`.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`,
///   `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode), `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key` must be readable for `key_len` bytes, `buf` writable for `buf_cap` bytes,
/// `out_len` writable (when not NULL); none may be modified by another thread
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn mapcache_get(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
) -> mapcache_status {
    let status = boundary::run("mapcache_get", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable for key_len bytes, not modified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        args::out_buf(buf, buf_cap, "buf", "buf_cap")?;
        args::out(out_len, "out_len")?;
        args::no_overlap(
            &[
                Region::buffer(buf, buf_cap, "buf"),
                Region::scalar(out_len, "out_len"),
            ],
            &[Region::input(key, "key")],
        )?;
        // SAFETY: buf checked for buf_cap bytes and disjoint from key.
        let found = unsafe { copy_value(shell, key, buf, buf_cap) }?;
        match found {
            Some(Ok(len)) => {
                // SAFETY: out_len checked non-null, writable (contract).
                unsafe { args::put(out_len, len) };
                Ok(MAPCACHE_OK)
            }
            Some(Err(needed)) => {
                // SAFETY: as above.
                unsafe { args::put(out_len, needed) };
                Err(too_small(needed, buf_cap, "buf_cap"))
            }
            None => {
                // SAFETY: as above.
                unsafe { args::put(out_len, 0) };
                Ok(MAPCACHE_NOT_FOUND)
            }
        }
    });
    if status != MAPCACHE_E_BUFFER_TOO_SMALL {
        // SAFETY: NULL or writable (contract).
        unsafe { args::reset_on_error(status, out_len, 0) };
    }
    status
}

/// Copies the value of `key` into the caller's buffer, `snprintf`-style: the
/// result is the value's length, or a negated status. The same lookup as
/// `mapcache_get`, with one argument and one out-pointer fewer (for hosts that
/// pay per argument; docs/C_API.md says why).
///
/// - `>= 0`: the key is present and its value is that many bytes long. When the
///   length is at most `buf_cap` the value was copied into `buf`; otherwise
///   nothing was copied: call again with a buffer of at least that length.
///   (Not an error: `mapcache_last_error()` is not set.)
/// - `-MAPCACHE_NOT_FOUND` (-1): no such key.
/// - `-status` for any other status (all below -1): the error `mapcache_get`
///   would return (`MAPCACHE_E_INVALID_ARG` for a NULL `cache`, `key` NULL with
///   `key_len` > 0, `buf` NULL with `buf_cap` > 0, or `buf` overlapping `key`;
///   `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`,
///   `MAPCACHE_E_CONCURRENT_READ_WRITE`, `MAPCACHE_E_INTERNAL`), with its message
///   in `mapcache_last_error()`.
///
/// Ownership: all buffers are the caller's; the library keeps no pointer.
/// Thread-safety: as `mapcache_get`.
///
/// # Safety
/// `key` must be readable for `key_len` bytes and `buf` writable for `buf_cap`
/// bytes; neither may be modified by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn mapcache_get_value(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    buf: *mut u8,
    buf_cap: usize,
) -> i64 {
    let mut length = 0usize;
    let status = boundary::run("mapcache_get_value", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable for key_len bytes, not modified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        args::out_buf(buf, buf_cap, "buf", "buf_cap")?;
        args::no_overlap(
            &[Region::buffer(buf, buf_cap, "buf")],
            &[Region::input(key, "key")],
        )?;
        // SAFETY: buf checked for buf_cap bytes and disjoint from key.
        match unsafe { copy_value(shell, key, buf, buf_cap) }? {
            // A value longer than the buffer is reported by its length.
            Some(Ok(len) | Err(len)) => {
                length = len;
                Ok(MAPCACHE_OK)
            }
            None => Ok(MAPCACHE_NOT_FOUND),
        }
    });
    if status == MAPCACHE_OK {
        // At most MAPCACHE_MAX_VALUE_LEN (1 GiB): always fits.
        length as i64
    } else {
        -i64::from(status)
    }
}

/// The host's constructor of a value's copy, for `mapcache_get_object`: receives
/// the value (`value_len` bytes at `value`; `value` is not NULL but must not be
/// read when `value_len` is 0, and is valid only during the call) and returns the
/// host's own object holding a copy of it, or NULL if it could not make one.
/// Its signature is that of CPython's `PyBytes_FromStringAndSize`.
pub type mapcache_make_fn =
    Option<unsafe extern "C" fn(value: *const u8, value_len: usize) -> *mut c_void>;

/// The host's constructor of the outcome of a lookup that has no value, for
/// `mapcache_get_object`: receives the code `mapcache_get_value` would return
/// (`-MAPCACHE_NOT_FOUND` or another negated status) and returns the host's
/// object for it, or NULL. Its signature is that of CPython's
/// `PyLong_FromLongLong`.
pub type mapcache_miss_fn = Option<unsafe extern "C" fn(code: i64) -> *mut c_void>;

/// What `mapcache_get_object` needs besides the key: the cache and the host's two
/// constructors. A host makes one per cache (it may share it between threads)
/// and passes its address with each call; the library reads it during the call
/// only.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct mapcache_getter {
    /// The cache to read (NULL is `MAPCACHE_E_INVALID_ARG`, passed to `miss`).
    pub cache: *mut mapcache_t,
    /// Makes the host's object for a present key's value (not NULL).
    pub make: mapcache_make_fn,
    /// Makes the host's object for any other outcome (not NULL).
    pub miss: mapcache_miss_fn,
}

/// Values up to this long are staged on the stack by `mapcache_get_object`.
const STAGE: usize = 256;

/// Looks up `key` in `getter->cache` and returns the host's object for the
/// outcome, made by one of the host's two constructors: `getter->make(value,
/// value_len)` when the key is present, `getter->miss(code)` otherwise, where
/// `code` is what `mapcache_get_value` would return (`-MAPCACHE_NOT_FOUND`, -1,
/// for no such key; `-status` for an error, with its message in
/// `mapcache_last_error()`). For hosts that keep values as objects of their own
/// (a Python `bytes`; docs/C_API.md says why it exists). `key_len` is 32 bits wide
/// (keys are at most `MAPCACHE_MAX_KEY_LEN` bytes), so that a host may pass a C
/// `int`.
///
/// The library copies the value out of the map first and calls `make` once the
/// lookup is over, on the calling thread, before returning; no map memory is
/// protected meanwhile and `make` may call any mapcache function. `make` and
/// `miss` must return normally (no `longjmp`, no C++ exception). The result is
/// returned as is (NULL if the constructor returned NULL), and the library keeps
/// no pointer to it. Returns NULL without calling either when `getter`,
/// `getter->make` or `getter->miss` is NULL (`MAPCACHE_E_INVALID_ARG` in
/// `mapcache_last_error()`).
///
/// Errors passed to `miss`: `MAPCACHE_E_INVALID_ARG` (`getter->cache` NULL, `key`
/// NULL with `key_len` > 0), `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_NO_MEMORY`
/// (a value longer than 256 bytes is staged in memory the library allocates),
/// `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive
/// mode), `MAPCACHE_E_INTERNAL`.
///
/// Ownership: the returned object is the host's; `*getter` stays the host's.
/// Thread-safety: as `mapcache_get`.
///
/// # Safety
/// `getter` must be NULL or readable for a `mapcache_getter` (any alignment) whose
/// `make` and `miss` are NULL or functions with the signatures above that follow
/// the rules above; `key` must be readable for `key_len` bytes and not modified
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn mapcache_get_object(
    getter: *const mapcache_getter,
    key: *const u8,
    key_len: u32,
) -> *mut c_void {
    const NAME: &str = "mapcache_get_object";
    if getter.is_null() {
        Fail::arg("getter is NULL").report(NAME);
        return std::ptr::null_mut();
    }
    // SAFETY: non-null and readable for a mapcache_getter (contract); read
    // unaligned, as the host may keep it in any memory.
    let getter = unsafe { getter.read_unaligned() };
    let (Some(make), Some(miss)) = (getter.make, getter.miss) else {
        let what = if getter.make.is_none() {
            "getter->make"
        } else {
            "getter->miss"
        };
        Fail::arg(format!("{what} is NULL")).report(NAME);
        return std::ptr::null_mut();
    };
    let cache = getter.cache;
    // u32 to usize: lossless on every target the library builds for (>= 32 bits).
    let key_len = key_len as usize;
    let mut small = [MaybeUninit::<u8>::uninit(); STAGE];
    let mut large: Vec<u8> = Vec::new();
    let mut length = 0usize;
    let status = boundary::run(NAME, || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable for key_len bytes, not modified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        // The value is staged, so that `make` runs once the lookup has succeeded
        // (an exclusive-mode read may still fail after it found the entry) and
        // outside the pin.
        let staged = shell.with(|inner| {
            Ok(inner.map.get_with(key, |v| {
                if v.len() <= STAGE {
                    // SAFETY: v.len() <= STAGE bytes fit in `small`; `v` is map
                    // memory, disjoint from this stack buffer.
                    unsafe { args::copy_out(v, small.as_mut_ptr().cast::<u8>()) };
                } else {
                    large.try_reserve_exact(v.len())?;
                    large.extend_from_slice(v);
                }
                Ok::<usize, std::collections::TryReserveError>(v.len())
            })?)
        })?;
        match staged {
            Some(Ok(len)) => {
                length = len;
                Ok(MAPCACHE_OK)
            }
            Some(Err(_)) => Err(Fail::new(
                MAPCACHE_E_NO_MEMORY,
                "no memory to stage the value",
            )),
            None => Ok(MAPCACHE_NOT_FOUND),
        }
    });
    if status != MAPCACHE_OK {
        // SAFETY: `miss` has the documented signature and returns normally (contract).
        return unsafe { miss(-i64::from(status)) };
    }
    let value: *const u8 = if length <= STAGE {
        small.as_ptr().cast()
    } else {
        large.as_ptr()
    };
    // SAFETY: `make` has the documented signature and returns normally (contract);
    // `value` holds `length` initialised bytes (the first `length` bytes of
    // `small`, written by copy_out, or all of `large`) until this returns.
    unsafe { make(value, length) }
}

/// Zero-copy read: calls `callback(ctx, value, value_len)` once with the value of `key`,
/// while the entry is protected from reclamation.
///
/// The value pointer is valid only during the callback (copy what you need to
/// keep); it must not be written. The callback runs on the calling thread before
/// this returns; it must return normally and must not call `mapcache_free` on
/// `cache`. It may call other mapcache functions (a write from inside the callback
/// does not change the value it is reading). A long callback delays the
/// reclamation of memory freed by writers meanwhile. The key may be modified by the
/// callback (the library works on a copy).
///
/// Ownership: `ctx` is passed through untouched; the library keeps no pointer.
/// Thread-safety: as `mapcache_get`.
///
/// Returns:
/// - `MAPCACHE_OK`: the callback ran once.
/// - `MAPCACHE_NOT_FOUND`: no such key; the callback was not called.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `callback` NULL, `key` NULL with `key_len` > 0.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_INVALID_HANDLE`,
///   `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode), `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key` must be readable for `key_len` bytes; `callback` must be a function with the
/// `mapcache_value_fn` signature that follows the rules above.
#[no_mangle]
pub unsafe extern "C" fn mapcache_get_with(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    callback: mapcache_value_fn,
    ctx: *mut c_void,
) -> mapcache_status {
    boundary::run("mapcache_get_with", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable for key_len bytes (contract); copied right away below.
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        let Some(callback) = callback else {
            return Err(Fail::arg("callback is NULL"));
        };
        // The callback may write the host's key buffer: work on a copy, so that no
        // reference into host memory is alive while host code runs.
        let key = args::KeyCopy::new(key);
        let key = key.as_slice();
        shell.with(|inner| {
            let found = inner.map.get_with(key, |v| {
                // SAFETY: `callback` has the documented signature (contract); the
                // value is valid for v.len() bytes while the map is pinned, which
                // lasts until get_with returns.
                unsafe { callback(ctx, v.as_ptr(), v.len()) }
            })?;
            Ok(if found.is_some() {
                MAPCACHE_OK
            } else {
                MAPCACHE_NOT_FOUND
            })
        })
    })
}

/// Inserts or replaces the value of `key` with a copy of `value[0..value_len]`.
///
/// `*out_replaced` (when `out_replaced` is not NULL) receives true if an existing
/// value was replaced, false if the key was new or on an error. Readers see the
/// old or the new value, never a mix.
///
/// In a bounded cache (`max_entries`, `max_bytes`) a new key is not always
/// kept. It enters the eviction policy's admission window (the shard's most
/// recent new entries) and stays there at first, so a lookup right after the
/// put finds it; when later puts push it out of the window, the policy keeps
/// it or refuses it in favour of the entry it would displace, and that
/// refusal is what `mapcache_stats`' `rejections` (and `evictions`) count. So
/// a rejection counted during a put is, as a rule, of an earlier new key, not
/// of the one just put. The exception is an entry heavier than the whole
/// window: it meets the policy at once, may be refused, and a lookup right
/// after the put then misses. The window starts at 1% of the shard's share of
/// the bounds and adapts to the workload, down to almost nothing, so in a
/// `max_bytes` cache ordinary entries can be such an exception. Either way the put returns `MAPCACHE_OK` (with
/// `*out_replaced` false): the value was stored, and perhaps evicted.
///
/// Ownership: the library copies key and value; the caller keeps its buffers.
/// Thread-safety: any thread. Concurrent mode: writers to the same shard wait for
/// each other. Exclusive mode: see `MAPCACHE_E_CONCURRENT_WRITE`.
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
/// `key` and `value` must be readable for their lengths and not modified during the
/// call; `out_replaced` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mapcache_put(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    out_replaced: *mut bool,
) -> mapcache_status {
    // SAFETY: forwarded from the caller (the same contract).
    unsafe {
        put_entry(
            "mapcache_put",
            cache,
            key,
            key_len,
            value,
            value_len,
            None,
            out_replaced,
        )
    }
}

/// The body of `mapcache_put` and `mapcache_put_ttl`: stores the entry with
/// time-to-live `ttl` (`None`: the cache's default), reporting errors as
/// `function`.
///
/// # Safety
/// As for `mapcache_put`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn put_entry(
    function: &'static str,
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    ttl: Option<Duration>,
    out_replaced: *mut bool,
) -> mapcache_status {
    let status = boundary::run(function, || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable and unmodified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        // SAFETY: as above.
        let value = unsafe { args::value(value, value_len, "value", "value_len") }?;
        args::no_overlap(
            &[Region::scalar(out_replaced, "out_replaced")],
            &[Region::input(key, "key"), Region::input(value, "value")],
        )?;
        shell.with(|inner| {
            let replaced = match ttl {
                None => inner.map.insert(key, value)?,
                Some(ttl) => inner.map.insert_with_ttl(key, value, ttl)?,
            };
            // SAFETY: NULL or writable (contract).
            unsafe { args::put_opt(out_replaced, replaced) };
            Ok(MAPCACHE_OK)
        })
    });
    // SAFETY: NULL or writable (contract).
    unsafe { args::reset_on_error(status, out_replaced, false) };
    status
}

/// Removes `key`.
///
/// Thread-safety: as `mapcache_put`.
///
/// Returns:
/// - `MAPCACHE_OK`: the key was present and is removed.
/// - `MAPCACHE_NOT_FOUND`: the key was absent.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` NULL, `key` NULL with `key_len` > 0.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode),
///   `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key` must be readable for `key_len` bytes and not modified during the call.
#[no_mangle]
pub unsafe extern "C" fn mapcache_delete(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
) -> mapcache_status {
    boundary::run("mapcache_delete", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable and unmodified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        shell.with(|inner| {
            Ok(if inner.map.remove(key)? {
                MAPCACHE_OK
            } else {
                MAPCACHE_NOT_FOUND
            })
        })
    })
}

/// Tells whether `key` is present: `*out` receives true or false (false on an
/// error).
///
/// Thread-safety: as `mapcache_get`.
///
/// Returns:
/// - `MAPCACHE_OK` (whether or not the key is present; see `*out`).
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL, `key` NULL with `key_len` > 0.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode),
///   `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key` must be readable for `key_len` bytes; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn mapcache_contains(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    out: *mut bool,
) -> mapcache_status {
    let status = boundary::run("mapcache_contains", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable and unmodified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        args::out(out, "out")?;
        args::no_overlap(&[Region::scalar(out, "out")], &[Region::input(key, "key")])?;
        shell.with(|inner| {
            let present = inner.map.contains_key(key)?;
            // SAFETY: checked non-null, writable (contract).
            unsafe { args::put(out, present) };
            Ok(MAPCACHE_OK)
        })
    });
    // SAFETY: NULL or writable (contract).
    unsafe { args::reset_on_error(status, out, false) };
    status
}

/// The number of entries: `*out` receives it (0 on an error). Under concurrent
/// writes it is a moment's count (it may be stale by the time the caller reads it).
/// Entries whose TTL has run out are counted until they are reclaimed (a lookup
/// that comes across one, or the eviction sweep), although no call returns them.
///
/// Thread-safety: any thread; never blocks. In exclusive mode it is a read like
/// `mapcache_get`.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL.
/// - `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode): another thread's write
///   was in flight.
/// - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn mapcache_len(cache: *mut mapcache_t, out: *mut usize) -> mapcache_status {
    let status = boundary::run("mapcache_len", || {
        let shell = handle::shell(cache)?;
        args::out(out, "out")?;
        shell.with(|inner| {
            let len = inner.map.try_len()?;
            // SAFETY: checked non-null, writable (contract).
            unsafe { args::put(out, len) };
            Ok(MAPCACHE_OK)
        })
    });
    // SAFETY: NULL or writable (contract).
    unsafe { args::reset_on_error(status, out, 0) };
    status
}

/// Removes every entry.
///
/// Thread-safety: as `mapcache_put` (it is a write of every shard). Entries inserted
/// by other threads while it runs may survive it.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` NULL.
/// - `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode), `MAPCACHE_E_INVALID_HANDLE`,
///   `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `cache` must be NULL or a pointer obtained from `mapcache_new`.
#[no_mangle]
pub unsafe extern "C" fn mapcache_clear(cache: *mut mapcache_t) -> mapcache_status {
    boundary::run("mapcache_clear", || {
        handle::with_map(cache, |inner| {
            inner.map.clear()?;
            Ok(MAPCACHE_OK)
        })
    })
}

/// Returns the value of `key`, inserting `value` first if the key is absent, as
/// one atomic step (two threads racing on an absent key: exactly one inserts, the
/// other sees its value).
///
/// - Absent: a copy of `value[0..value_len]` is inserted, `*out_inserted` = true,
///   `*out_len` = `value_len`, `buf` is not touched.
/// - Present: nothing is inserted, `*out_inserted` = false, and the existing value
///   is copied into `buf[0..buf_cap]` as by `mapcache_get`: `*out_len` is its
///   length; if it does not fit, `MAPCACHE_E_BUFFER_TOO_SMALL` with `*out_len` =
///   the needed length (call again with a larger buffer; nothing was inserted).
///
/// `buf` may be NULL when `buf_cap` is 0; it must not overlap `key` or `value`.
/// On any other error `*out_len` is 0 and `*out_inserted` false (each when not
/// NULL).
///
/// Ownership: the library copies key and value; all buffers stay the caller's.
/// Thread-safety: as `mapcache_put`.
///
/// Returns:
/// - `MAPCACHE_OK`: see above.
/// - `MAPCACHE_E_BUFFER_TOO_SMALL`: present, and longer than `buf_cap`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache`, `out_len` or `out_inserted` NULL; `key`,
///   `value` or `buf` NULL with a non-zero length; `buf` overlaps `key` or `value`.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG`,
///   `MAPCACHE_E_TOO_LARGE` (a bounded cache; nothing was inserted),
///   `MAPCACHE_E_CONCURRENT_WRITE` and `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive
///   mode), `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`,
///   `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key`, `value` readable for their lengths, `buf` writable for `buf_cap` bytes,
/// `out_len` and `out_inserted` writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mapcache_get_or_insert(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
    out_inserted: *mut bool,
) -> mapcache_status {
    let status = boundary::run("mapcache_get_or_insert", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable and unmodified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        // SAFETY: as above.
        let value = unsafe { args::value(value, value_len, "value", "value_len") }?;
        args::out_buf(buf, buf_cap, "buf", "buf_cap")?;
        args::out(out_len, "out_len")?;
        args::out(out_inserted, "out_inserted")?;
        args::no_overlap(
            &[
                Region::buffer(buf, buf_cap, "buf"),
                Region::scalar(out_len, "out_len"),
                Region::scalar(out_inserted, "out_inserted"),
            ],
            &[Region::input(key, "key"), Region::input(value, "value")],
        )?;
        shell.with(|inner| {
            let present = |copied: Result<usize, usize>| {
                // SAFETY: both checked non-null and writable (contract).
                unsafe { args::put(out_inserted, false) };
                match copied {
                    Ok(len) => {
                        // SAFETY: as above.
                        unsafe { args::put(out_len, len) };
                        Ok(MAPCACHE_OK)
                    }
                    Err(needed) => {
                        // SAFETY: as above.
                        unsafe { args::put(out_len, needed) };
                        Err(too_small(needed, buf_cap, "buf_cap"))
                    }
                }
            };
            // Fast path without allocation: the key is usually present.
            // SAFETY: buf checked for buf_cap bytes, disjoint from key and value.
            let found = inner
                .map
                .get_with(key, |v| unsafe { copy_if_fits(v, buf, buf_cap) })?;
            if let Some(copied) = found {
                return present(copied);
            }
            match inner.map.insert_if_absent(key, value)? {
                None => {
                    // SAFETY: both checked non-null and writable (contract).
                    unsafe {
                        args::put(out_inserted, true);
                        args::put(out_len, value.len());
                    }
                    Ok(MAPCACHE_OK)
                }
                // Another thread inserted it between the two steps.
                // SAFETY: as for the fast path; `existing` is our own Vec.
                Some(existing) => present(unsafe { copy_if_fits(&existing, buf, buf_cap) }),
            }
        })
    });
    // SAFETY: NULL or writable (contract).
    unsafe {
        if status != MAPCACHE_E_BUFFER_TOO_SMALL {
            args::reset_on_error(status, out_len, 0);
        }
        args::reset_on_error(status, out_inserted, false);
    }
    status
}

/// Atomically replaces the value of `key` with `new_value[0..new_len]` if it is
/// currently equal to `expected[0..expected_len]` (byte for byte).
///
/// `*out_swapped` receives true if the value was replaced, false otherwise (also on
/// `MAPCACHE_NOT_FOUND` and on every error).
///
/// Ownership: the library copies `new_value`; all buffers stay the caller's.
/// Thread-safety: as `mapcache_put`.
///
/// Returns:
/// - `MAPCACHE_OK`: the key is present; `*out_swapped` says whether it was swapped.
/// - `MAPCACHE_NOT_FOUND`: the key is absent (`*out_swapped` = false).
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `out_swapped` NULL; `key`, `expected` or
///   `new_value` NULL with a non-zero length.
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG` (`expected_len` or
///   `new_len`), `MAPCACHE_E_TOO_LARGE` (a bounded cache: the new entry is larger
///   than its shard's share of `max_bytes`; nothing was swapped),
///   `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode),
///   `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `key`, `expected` and `new_value` readable for their lengths and not modified
/// during the call; `out_swapped` writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mapcache_compare_and_swap(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    expected: *const u8,
    expected_len: usize,
    new_value: *const u8,
    new_len: usize,
    out_swapped: *mut bool,
) -> mapcache_status {
    let status = boundary::run("mapcache_compare_and_swap", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable and unmodified during the call (contract).
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        // SAFETY: as above.
        let expected = unsafe { args::value(expected, expected_len, "expected", "expected_len") }?;
        // SAFETY: as above.
        let new_value = unsafe { args::value(new_value, new_len, "new_value", "new_len") }?;
        args::out(out_swapped, "out_swapped")?;
        args::no_overlap(
            &[Region::scalar(out_swapped, "out_swapped")],
            &[
                Region::input(key, "key"),
                Region::input(expected, "expected"),
                Region::input(new_value, "new_value"),
            ],
        )?;
        shell.with(|inner| {
            let outcome = inner.map.compare_and_swap(key, expected, new_value)?;
            // SAFETY: checked non-null, writable (contract).
            unsafe { args::put(out_swapped, outcome == Some(true)) };
            Ok(match outcome {
                Some(_) => MAPCACHE_OK,
                None => MAPCACHE_NOT_FOUND,
            })
        })
    });
    // SAFETY: NULL or writable (contract).
    unsafe { args::reset_on_error(status, out_swapped, false) };
    status
}
