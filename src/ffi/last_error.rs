//! The thread-local message of the last failed call (`mapcache_last_error`).
//!
//! Only errors set it; `MAPCACHE_OK` and `MAPCACHE_NOT_FOUND` leave it as it was, so
//! that a host can read it after any failing call without racing other threads.

use std::cell::RefCell;
use std::ffi::{c_char, CString};

std::thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

/// Replaces this thread's message. Interior NUL bytes (which a C string cannot
/// hold) are replaced by spaces.
pub(crate) fn set(message: String) {
    let mut bytes = message.into_bytes();
    for b in bytes.iter_mut().filter(|b| **b == 0) {
        *b = b' ';
    }
    let message = CString::new(bytes).unwrap_or_default();
    // `try_with` fails only while this thread's TLS is being torn down; the message
    // is then dropped, which is the best that can be done.
    let _ = LAST.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = message;
        }
    });
}

/// The message of the last call on this thread that returned an error status (any
/// status other than `MAPCACHE_OK` and `MAPCACHE_NOT_FOUND`), or `""` when no call
/// on this thread has failed yet.
///
/// One rule for every call, batches included. A message about the call's
/// arguments or handles starts with the function's name and, for one key of a
/// batch, the key's index: `"mapcache_get: key is NULL but key_len is 5"`,
/// `"mapcache_put_many: key 3: key_len = 70000 is longer than MAPCACHE_MAX_KEY_LEN
/// (65535)"`. A report of the library core is passed on verbatim, with no prefix
/// and no index, whichever call it comes from: the misuse reports
/// (`MAPCACHE_E_CONCURRENT_WRITE`: `concurrent map writes: 'B' collided with a
/// write in progress by 'A'`; `MAPCACHE_E_CONCURRENT_READ_WRITE`: `concurrent map
/// read and map write: 'B' collided with a write in progress by 'A'`) and
/// allocation failures (`out of memory allocating N bytes`), and so are the
/// snapshot and GPU failures, which start with the step that failed
/// (`snapshot open of <path>: ...`, `corrupt snapshot at byte offset N: ...`,
/// `GPU engine (gpu = force): ...`). A batch that returns
/// `MAPCACHE_OK` with per-key errors leaves the message of its first failing key
/// (which key failed how is in its `out_statuses`).
///
/// Returns: a NUL-terminated UTF-8 string, never NULL. Ownership: it belongs to the
/// library; it stays valid on this thread until the next failing mapcache call on
/// this thread, or until the thread exits; copy it to keep it. Do not free it.
/// Thread-safety: any thread; each thread has its own message, so another thread's
/// failures never change it.
#[no_mangle]
pub extern "C" fn mapcache_last_error() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    let empty: *const c_char = EMPTY.as_ptr().cast();
    // No `Fail` is possible here; a panic (there is none to expect) yields "".
    super::boundary::run_with("mapcache_last_error", empty, empty, || {
        Ok(LAST
            .try_with(|last| match last.try_borrow() {
                // The CString's heap buffer does not move while it stays in the
                // cell; it is replaced (and the old one freed) only by `set` on
                // this same thread.
                Ok(last) => last.as_ptr(),
                Err(_) => empty,
            })
            .unwrap_or(empty))
    })
}
