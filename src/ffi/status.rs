//! Status codes: the values every fallible entry point returns, their names
//! (`mapcache_status_str`), and the mapping from the core's [`crate::Error`].

use std::ffi::c_char;

use crate::Error;

/// The result of every fallible mapcache call: `MAPCACHE_OK` (0), `MAPCACHE_NOT_FOUND`
/// (1), or one of the `MAPCACHE_E_*` errors (2 and up). Values are stable across
/// releases; new codes are only appended. A host must treat an unknown value as an
/// error (`mapcache_status_str` names it "unknown mapcache_status").
pub type mapcache_status = i32;

/// Success.
pub const MAPCACHE_OK: mapcache_status = 0;
/// An outcome, not an error: the key is absent (or, for `mapcache_iter_next`, the
/// iteration is over). Does not set `mapcache_last_error()`.
pub const MAPCACHE_NOT_FOUND: mapcache_status = 1;
/// A NULL pointer where one is required, a NULL data pointer with a non-zero length,
/// overlapping input and output buffers, or another out-of-range argument. The
/// message names the argument.
pub const MAPCACHE_E_INVALID_ARG: mapcache_status = 2;
/// The caller's buffer is too small for the value; nothing was copied and the needed
/// length was reported through the length out-pointer.
pub const MAPCACHE_E_BUFFER_TOO_SMALL: mapcache_status = 3;
/// A key longer than `MAPCACHE_MAX_KEY_LEN` bytes.
pub const MAPCACHE_E_KEY_TOO_LONG: mapcache_status = 4;
/// A value longer than `MAPCACHE_MAX_VALUE_LEN` bytes.
pub const MAPCACHE_E_VALUE_TOO_LONG: mapcache_status = 5;
/// Exclusive mode: another thread was writing the map at the same time. Nothing was
/// changed by this call. The message names both threads (see
/// `mapcache_set_thread_label`).
pub const MAPCACHE_E_CONCURRENT_WRITE: mapcache_status = 6;
/// Exclusive mode: this read overlapped a write by another thread. The message
/// names both threads.
pub const MAPCACHE_E_CONCURRENT_READ_WRITE: mapcache_status = 7;
/// An allocation failed; the map is unchanged.
pub const MAPCACHE_E_NO_MEMORY: mapcache_status = 8;
/// A `mapcache_t *` that was freed or never came from `mapcache_new`, a
/// `mapcache_iter_t *` that was freed or never came from `mapcache_iter_new`, or an
/// iterator whose map was freed.
pub const MAPCACHE_E_INVALID_HANDLE: mapcache_status = 9;
/// A field of `mapcache_config` is out of range; the message names it.
pub const MAPCACHE_E_INVALID_CONFIG: mapcache_status = 10;
/// A bug in mapcache: a panic was caught at the boundary. The message says where.
/// The map is still memory-safe to use and to free.
pub const MAPCACHE_E_INTERNAL: mapcache_status = 11;
/// A bounded cache: the entry's footprint is larger than its shard's share of
/// `max_bytes`, so it could never be held. Nothing was changed.
pub const MAPCACHE_E_TOO_LARGE: mapcache_status = 12;
/// The loader of `mapcache_get_or_load` failed: it returned a non-zero status
/// (reported to every caller that waited for that load), and nothing was cached.
pub const MAPCACHE_E_LOADER: mapcache_status = 13;
/// A snapshot file is damaged, truncated, not a snapshot, or of a newer format
/// version. The message says what was wrong and at which byte offset. A cache
/// loaded into is unchanged.
pub const MAPCACHE_E_CORRUPT: mapcache_status = 14;
/// A file operation of a snapshot save or load failed. The message names the
/// step, the path and the OS error (with its errno). A failed save leaves the
/// previous snapshot file intact.
pub const MAPCACHE_E_IO: mapcache_status = 15;
/// `gpu_mode` `MAPCACHE_GPU_FORCE`: the GPU engine could not be loaded (from
/// `mapcache_new`), or a rebuild on it failed (from the write that needed it,
/// which changed nothing). The message says at which step and why.
pub const MAPCACHE_E_GPU: mapcache_status = 16;

/// Whether `status` is an error: anything but `MAPCACHE_OK` and `MAPCACHE_NOT_FOUND`.
#[inline]
pub(crate) fn is_error(status: mapcache_status) -> bool {
    status != MAPCACHE_OK && status != MAPCACHE_NOT_FOUND
}

/// The status a core error maps to.
pub(crate) fn of_error(e: &Error) -> mapcache_status {
    match e {
        Error::KeyTooLong { .. } => MAPCACHE_E_KEY_TOO_LONG,
        Error::ValueTooLong { .. } => MAPCACHE_E_VALUE_TOO_LONG,
        Error::ConcurrentWrite(_) => MAPCACHE_E_CONCURRENT_WRITE,
        Error::ConcurrentReadWrite(_) => MAPCACHE_E_CONCURRENT_READ_WRITE,
        Error::OutOfMemory { .. } => MAPCACHE_E_NO_MEMORY,
        Error::InvalidConfig(_) => MAPCACHE_E_INVALID_CONFIG,
        Error::InvalidArgument(_) => MAPCACHE_E_INVALID_ARG,
        Error::TooLarge { .. } => MAPCACHE_E_TOO_LARGE,
        Error::Load(_) => MAPCACHE_E_LOADER,
        Error::Corrupt { .. } => MAPCACHE_E_CORRUPT,
        Error::Io { .. } => MAPCACHE_E_IO,
        Error::Gpu(_) => MAPCACHE_E_GPU,
    }
}

/// The static, NUL-terminated name and meaning of `s`.
pub(crate) fn describe(s: mapcache_status) -> &'static [u8] {
    match s {
        MAPCACHE_OK => b"MAPCACHE_OK: success\0",
        MAPCACHE_NOT_FOUND => b"MAPCACHE_NOT_FOUND: no such key (or the end of an iteration)\0",
        MAPCACHE_E_INVALID_ARG => b"MAPCACHE_E_INVALID_ARG: invalid argument\0",
        MAPCACHE_E_BUFFER_TOO_SMALL => b"MAPCACHE_E_BUFFER_TOO_SMALL: buffer too small\0",
        MAPCACHE_E_KEY_TOO_LONG => b"MAPCACHE_E_KEY_TOO_LONG: key too long\0",
        MAPCACHE_E_VALUE_TOO_LONG => b"MAPCACHE_E_VALUE_TOO_LONG: value too long\0",
        MAPCACHE_E_CONCURRENT_WRITE => b"MAPCACHE_E_CONCURRENT_WRITE: concurrent map writes\0",
        MAPCACHE_E_CONCURRENT_READ_WRITE => {
            b"MAPCACHE_E_CONCURRENT_READ_WRITE: concurrent map read and map write\0"
        }
        MAPCACHE_E_NO_MEMORY => b"MAPCACHE_E_NO_MEMORY: out of memory\0",
        MAPCACHE_E_INVALID_HANDLE => b"MAPCACHE_E_INVALID_HANDLE: invalid or freed handle\0",
        MAPCACHE_E_INVALID_CONFIG => b"MAPCACHE_E_INVALID_CONFIG: invalid configuration\0",
        MAPCACHE_E_INTERNAL => b"MAPCACHE_E_INTERNAL: internal error (a bug in mapcache)\0",
        MAPCACHE_E_TOO_LARGE => {
            b"MAPCACHE_E_TOO_LARGE: entry larger than the cache's byte budget\0"
        }
        MAPCACHE_E_LOADER => b"MAPCACHE_E_LOADER: the loader failed\0",
        MAPCACHE_E_CORRUPT => b"MAPCACHE_E_CORRUPT: corrupt or unsupported snapshot file\0",
        MAPCACHE_E_IO => b"MAPCACHE_E_IO: snapshot file operation failed\0",
        MAPCACHE_E_GPU => b"MAPCACHE_E_GPU: the GPU engine failed (gpu_mode force)\0",
        _ => b"unknown mapcache_status\0",
    }
}

/// Names a status: its constant's name and a short meaning, e.g.
/// `"MAPCACHE_E_BUFFER_TOO_SMALL: buffer too small"`; `"unknown mapcache_status"`
/// for a value this library does not define.
///
/// Returns: a static NUL-terminated string, never NULL. Ownership: the string belongs
/// to the library and lives as long as the library is loaded; do not free it.
/// Thread-safety: any thread, any time. Does not touch `mapcache_last_error()`.
#[no_mangle]
pub extern "C" fn mapcache_status_str(status: mapcache_status) -> *const c_char {
    let unknown = describe(-1).as_ptr().cast();
    super::boundary::run_with("mapcache_status_str", unknown, unknown, || {
        Ok(describe(status).as_ptr().cast())
    })
}
