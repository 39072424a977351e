//! `mapcache_get_or_load`: the core's singleflight load ([`crate::Map::get_or_load`])
//! with the host's loader as a C callback.
//!
//! The loader fills a `mapcache_load_result` (its value, and on failure an
//! optional message) and returns a status. The C loader becomes a Rust closure
//! that returns `Err(`[`LoaderFailure`]`)` on a non-zero status, so that the core
//! hands the same failure to every caller that waited for that load, and each
//! of them recovers the status by downcasting the shared `LoadError`.
//!
//! A `mapcache_load_result *` is a handle value of a never-freed `Arena`, like
//! `mapcache_t *`: it is live only while the loader call it was passed to runs.
//! The slot's lock is held by `mapcache_load_result_set` while it checks that
//! the handle is live and stores the value, and by the close that ends the
//! call, so a result used after its loader returned (from any thread, however
//! long after) is rejected with `MAPCACHE_E_INVALID_HANDLE`, never stored into a
//! later load that reuses the slot.

use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, MutexGuard};

use super::arena::{self, Arena, Handle, Kind, Status};
use super::args;
use super::boundary::{self, Fail};
use super::handle::{self, mapcache_t};
use super::ops;
use super::status::{
    mapcache_status, MAPCACHE_E_BUFFER_TOO_SMALL, MAPCACHE_E_INTERNAL, MAPCACHE_E_INVALID_HANDLE,
    MAPCACHE_E_LOADER, MAPCACHE_E_NO_MEMORY, MAPCACHE_OK,
};
use crate::Error;

/// What a loader fills: the value to cache, and an optional error message.
/// Opaque: the loader receives a pointer to one, valid only until the loader
/// returns. Like `mapcache_t *`, the pointer is a handle value, never to be
/// dereferenced.
pub struct mapcache_load_result {
    _opaque: [u8; 0],
}

/// The loader of `mapcache_get_or_load`: computes the value of `key` (`key_len`
/// bytes at `key`, a copy the library owns, valid during the call; `key` is not
/// NULL) and hands it over with `mapcache_load_result_set(result, ...)`.
/// Receives `ctx` unchanged.
///
/// Returns 0 on success (the value set, or the empty value if it set none), or
/// any other value on failure: nothing is cached, and that value reaches every
/// caller that waited for this load as its `*loader_status`, with
/// `MAPCACHE_E_LOADER` (attach a message with
/// `mapcache_load_result_set_error`).
///
/// It runs on the thread of the `mapcache_get_or_load` call that missed first,
/// with no lock of the cache held: it may call any mapcache function, on this
/// cache too, but `mapcache_free` on it. A `mapcache_get_or_load` of the same
/// key on the same cache from the loader's own thread returns
/// `MAPCACHE_E_INVALID_ARG` (it would wait for itself); from another thread it
/// waits for this load, so the loader must not wait for that thread. It must
/// return normally (no `longjmp`, no C++ exception).
pub type mapcache_loader_fn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        result: *mut mapcache_load_result,
    ) -> i32,
>;

/// The longest loader message kept, in bytes (a longer one is cut, at a
/// character boundary).
const MAX_MESSAGE_LEN: usize = 4096;

/// What a load result's slot holds.
#[derive(Default)]
struct Slot {
    filled: Mutex<Filled>,
}

/// What the loader handed over.
#[derive(Default)]
struct Filled {
    value: Option<Vec<u8>>,
    message: Option<String>,
}

static RESULTS: Arena<Slot> = Arena::new(Kind::LoadResult);

fn lock(slot: &Slot) -> MutexGuard<'_, Filled> {
    // The critical sections store or take whole values: a poisoned lock (a
    // panic elsewhere in the holder) still guards consistent data.
    slot.filled.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loader's failure as the core carries it to every waiter.
#[derive(Debug)]
pub(crate) enum LoaderFailure {
    /// The loader returned `status` (not 0), with the message it attached.
    Status {
        status: i32,
        message: Option<String>,
    },
    /// No result object could be made for the loader (the arena is full).
    NoResultSlot,
}

impl std::fmt::Display for LoaderFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoaderFailure::Status {
                status,
                message: Some(message),
            } => write!(f, "the loader returned {status}: {message}"),
            LoaderFailure::Status {
                status,
                message: None,
            } => write!(f, "the loader returned {status}"),
            LoaderFailure::NoResultSlot => write!(
                f,
                "{} loads are in flight, the most there can be; the loader was not called",
                arena::MAX_SLOTS
            ),
        }
    }
}

impl std::error::Error for LoaderFailure {}

/// A live result handle, for the length of one loader call. Dropped without
/// [`OpenResult::close`] (an unwind), it still closes.
struct OpenResult {
    handle: Option<Handle<Slot>>,
}

impl OpenResult {
    fn open() -> Result<OpenResult, LoaderFailure> {
        let handle = RESULTS
            .alloc()
            .map_err(|arena::Exhausted| LoaderFailure::NoResultSlot)?;
        // Empty already (every close takes what it holds); cleared anyway.
        *lock(handle.value()) = Filled::default();
        Ok(OpenResult {
            handle: Some(handle),
        })
    }

    fn address(&self) -> *mut mapcache_load_result {
        match self.handle {
            Some(handle) => RESULTS.address(handle),
            None => std::ptr::null_mut(),
        }
    }

    /// Ends the result's life and takes what the loader handed over.
    fn close(mut self) -> Filled {
        self.take()
    }

    fn take(&mut self) -> Filled {
        let Some(handle) = self.handle.take() else {
            return Filled::default();
        };
        let filled = {
            let mut filled = lock(handle.value());
            // Under the lock, so that a `set` either finished before this or
            // sees the handle dead. Only this object kills its handle.
            let _ = handle.kill();
            std::mem::take(&mut *filled)
        };
        RESULTS.release(handle);
        filled
    }
}

impl Drop for OpenResult {
    fn drop(&mut self) {
        self.take();
    }
}

/// The live result behind `result`, locked, or the failure for a NULL, foreign
/// or closed one.
fn live(
    result: *mut mapcache_load_result,
) -> Result<(Handle<Slot>, MutexGuard<'static, Filled>), Fail> {
    if result.is_null() {
        return Err(Fail::arg("result is NULL"));
    }
    let handle = RESULTS.find(result).ok_or_else(|| {
        Fail::new(
            MAPCACHE_E_INVALID_HANDLE,
            "result is not a mapcache_load_result * passed to a loader (a foreign or corrupted pointer)",
        )
    })?;
    let filled = lock(handle.value());
    match handle.status() {
        Status::Live => Ok((handle, filled)),
        Status::NeverIssued => Err(Fail::new(
            MAPCACHE_E_INVALID_HANDLE,
            "result is not a mapcache_load_result * passed to a loader (a foreign or corrupted pointer)",
        )),
        Status::Freed | Status::Stale => Err(Fail::new(
            MAPCACHE_E_INVALID_HANDLE,
            "result was used after its loader returned (a result is valid only during the \
             loader call it was passed to)",
        )),
    }
}

/// Returns the value of `key`, computing and caching it with `loader` on a miss.
///
/// - Present (and not expired): the value is copied into `buf` as by
///   `mapcache_get`; the loader is not called.
/// - Absent: `loader(ctx, key, key_len, result)` runs once, on this thread,
///   with no lock held; if it returns 0, the value it set (empty if none) is
///   stored with the cache's `default_ttl_ms` and copied into `buf`. If another
///   write stored the key while the loader ran, that value is kept and returned
///   instead.
/// - Concurrent misses on one key run one load (singleflight): the first caller
///   runs the loader, the others wait for it (blocked, without spinning) and get
///   the same value, or the same failure. A cache stampede never reaches the
///   loader's backend more than once per key at a time.
/// - A loader that returns a non-zero status caches nothing: this call and
///   every caller that waited for that load return `MAPCACHE_E_LOADER` with
///   `*loader_status` = that status and its message (see
///   `mapcache_load_result_set_error`); the next call loads again.
///
/// `buf[0..buf_cap]` receives the value; `buf` may be NULL when `buf_cap` is 0.
/// `*out_len` receives its length on `MAPCACHE_OK` and on
/// `MAPCACHE_E_BUFFER_TOO_SMALL` (the value was stored all the same, as on
/// `MAPCACHE_OK`: read it with `mapcache_get` into a buffer of `*out_len`
/// bytes, or call this again with one, which serves it without loading unless
/// it was evicted, refused by a bounded cache's admission policy, or expired
/// meanwhile), and 0 on every other status. `*loader_status` (when `loader_status` is not NULL) receives the
/// loader's status on `MAPCACHE_E_LOADER` and 0 otherwise. `buf` must not
/// overlap `key`.
///
/// The loader must follow the rules of `mapcache_loader_fn`. In
/// `MAPCACHE_MODE_EXCLUSIVE` the call is a write, and follows that mode's
/// contract (`MAPCACHE_E_CONCURRENT_WRITE`; the first lookup may report
/// `MAPCACHE_E_CONCURRENT_READ_WRITE`).
///
/// Ownership: `ctx` is passed through untouched; all buffers are the caller's.
/// Thread-safety: any thread, concurrently with other calls on `cache` except
/// `mapcache_free`.
///
/// Returns:
/// - `MAPCACHE_OK`: the value was copied, `*out_len` is its length.
/// - `MAPCACHE_E_BUFFER_TOO_SMALL`: the value is longer than `buf_cap` (stored;
///   see above).
/// - `MAPCACHE_E_LOADER`: the loader (this call's, or the one this call waited
///   for) returned a non-zero status, in `*loader_status`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache`, `loader` or `out_len` NULL, `key` NULL
///   with `key_len` > 0, `buf` NULL with `buf_cap` > 0, `buf` overlaps `key`;
///   or called from the loader of a load of the same key in progress on this
///   thread (it would wait for itself).
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG` (the loader's
///   value), `MAPCACHE_E_TOO_LARGE` (a bounded cache: the loaded entry is larger
///   than its shard's share of `max_bytes`; not cached),
///   `MAPCACHE_E_CONCURRENT_WRITE` and `MAPCACHE_E_CONCURRENT_READ_WRITE`
///   (exclusive mode), `MAPCACHE_E_NO_MEMORY`, `MAPCACHE_E_INVALID_HANDLE`,
///   `MAPCACHE_E_INTERNAL`. A waiter receives the error its load's leader got
///   storing the value.
///
/// # Safety
/// `key` must be readable for `key_len` bytes and not modified during the call
/// by another thread (the loader may modify it: the library works on a copy);
/// `buf` writable for `buf_cap` bytes; `out_len` writable; `loader_status` NULL
/// or writable; `loader` a function with the `mapcache_loader_fn` signature that
/// follows its rules.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mapcache_get_or_load(
    cache: *mut mapcache_t,
    key: *const u8,
    key_len: usize,
    loader: mapcache_loader_fn,
    ctx: *mut c_void,
    buf: *mut u8,
    buf_cap: usize,
    out_len: *mut usize,
    loader_status: *mut i32,
) -> mapcache_status {
    let mut failed_with = 0i32;
    let status = boundary::run("mapcache_get_or_load", || {
        let shell = handle::shell(cache)?;
        // SAFETY: readable for key_len bytes (contract); copied right away below.
        let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
        let Some(loader) = loader else {
            return Err(Fail::arg("loader is NULL"));
        };
        args::out_buf(buf, buf_cap, "buf", "buf_cap")?;
        args::out(out_len, "out_len")?;
        args::no_overlap(
            &[
                args::Region::buffer(buf, buf_cap, "buf"),
                args::Region::scalar(out_len, "out_len"),
                args::Region::scalar(loader_status, "loader_status"),
            ],
            &[args::Region::input(key, "key")],
        )?;
        // The loader may write the host's key buffer: work on a copy, which is
        // also what the loader is given.
        let key = args::KeyCopy::new(key);
        let key = key.as_slice();
        let loaded = shell.with(|inner| {
            Ok(inner.map.get_or_load(key, || {
                let result = OpenResult::open()?;
                // SAFETY: `loader` has the mapcache_loader_fn signature and
                // follows its rules (contract); `key` is our copy, valid for
                // key.len() bytes during the call; `result` is a handle value
                // that the loader may only pass back to the library.
                let status = unsafe { loader(ctx, key.as_ptr(), key.len(), result.address()) };
                let filled = result.close();
                if status == 0 {
                    Ok(filled.value.unwrap_or_default())
                } else {
                    Err(LoaderFailure::Status {
                        status,
                        message: filled.message,
                    })
                }
            }))
        })?;
        let value = match loaded {
            Ok(value) => value,
            Err(Error::Load(error)) => {
                return Err(match error.downcast_ref::<LoaderFailure>() {
                    Some(failure @ LoaderFailure::Status { status, .. }) => {
                        failed_with = *status;
                        Fail::new(MAPCACHE_E_LOADER, failure.to_string())
                    }
                    Some(failure @ LoaderFailure::NoResultSlot) => {
                        Fail::new(MAPCACHE_E_NO_MEMORY, failure.to_string())
                    }
                    // Only C loaders run on a C handle's map, and they cannot
                    // panic: a panic inside the library during the load.
                    None => Fail::new(
                        MAPCACHE_E_INTERNAL,
                        format!("internal error during the load (a bug in mapcache): {error}"),
                    ),
                });
            }
            Err(other) => return Err(other.into()),
        };
        // SAFETY: buf checked for buf_cap bytes; `value` is our own Vec.
        let copied = unsafe { ops::copy_if_fits(&value, buf, buf_cap) };
        match copied {
            Ok(len) => {
                // SAFETY: out_len checked non-null, writable (contract).
                unsafe { args::put(out_len, len) };
                Ok(MAPCACHE_OK)
            }
            Err(needed) => {
                // SAFETY: as above.
                unsafe { args::put(out_len, needed) };
                Err(ops::too_small(needed, buf_cap, "buf_cap"))
            }
        }
    });
    // SAFETY: NULL or writable (contract).
    unsafe {
        if status != MAPCACHE_E_BUFFER_TOO_SMALL {
            args::reset_on_error(status, out_len, 0);
        }
        args::put_opt(
            loader_status,
            if status == MAPCACHE_E_LOADER {
                failed_with
            } else {
                0
            },
        );
    }
    status
}

/// Hands the loaded value to the library: copies `value[0..value_len]` now
/// (the caller keeps its buffer). Callable only while the loader call that
/// received `result` runs, from any thread; a second call replaces the value
/// of the first. The value is cached only if the loader then returns 0.
///
/// Thread-safety: any thread, during the loader call.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `result` NULL, `value` NULL with `value_len` > 0.
/// - `MAPCACHE_E_VALUE_TOO_LONG`.
/// - `MAPCACHE_E_INVALID_HANDLE`: `result` was used after its loader call
///   returned (detected however long after), or is not a result at all.
/// - `MAPCACHE_E_NO_MEMORY` (the earlier value, if any, is kept),
///   `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `value` must be readable for `value_len` bytes and not modified during the
/// call; `result` may be any value (it is decoded, never dereferenced).
#[no_mangle]
pub unsafe extern "C" fn mapcache_load_result_set(
    result: *mut mapcache_load_result,
    value: *const u8,
    value_len: usize,
) -> mapcache_status {
    boundary::run("mapcache_load_result_set", || {
        // SAFETY: readable for value_len bytes, unmodified during the call.
        let value = unsafe { args::value(value, value_len, "value", "value_len") }?;
        let (_handle, mut filled) = live(result)?;
        let mut copy = Vec::new();
        copy.try_reserve_exact(value.len()).map_err(|_| {
            Fail::new(
                MAPCACHE_E_NO_MEMORY,
                format!("out of memory copying a value of {} bytes", value.len()),
            )
        })?;
        copy.extend_from_slice(value);
        filled.value = Some(copy);
        Ok(MAPCACHE_OK)
    })
}

/// Attaches an error message to a loader's failure: copies the NUL-terminated
/// UTF-8 string `message` now (invalid UTF-8 is replaced, a message longer than
/// 4096 bytes is cut). If the loader then returns a non-zero status, every
/// caller that waited for the load finds `"mapcache_get_or_load: the loader
/// returned <status>: <message>"` in its `mapcache_last_error()`; if it returns
/// 0 the message is ignored. NULL removes a message set before; a second call
/// replaces the first. Callable only during the loader call, as
/// `mapcache_load_result_set`.
///
/// Thread-safety: any thread, during the loader call.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `result` NULL.
/// - `MAPCACHE_E_INVALID_HANDLE`: as for `mapcache_load_result_set`.
/// - `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `message` must be NULL or a NUL-terminated string, unmodified during the
/// call; `result` may be any value.
#[no_mangle]
pub unsafe extern "C" fn mapcache_load_result_set_error(
    result: *mut mapcache_load_result,
    message: *const c_char,
) -> mapcache_status {
    boundary::run("mapcache_load_result_set_error", || {
        let message = if message.is_null() {
            None
        } else {
            // SAFETY: a NUL-terminated string, unmodified during the call.
            let bytes = unsafe { CStr::from_ptr(message) }.to_bytes();
            Some(cut(&String::from_utf8_lossy(bytes)).to_owned())
        };
        let (_handle, mut filled) = live(result)?;
        filled.message = message;
        Ok(MAPCACHE_OK)
    })
}

/// `s`, cut to at most `MAX_MESSAGE_LEN` bytes at a character boundary.
fn cut(s: &str) -> &str {
    if s.len() <= MAX_MESSAGE_LEN {
        return s;
    }
    let mut end = MAX_MESSAGE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
