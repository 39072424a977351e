//! `mapcache_set_thread_label`: names the calling OS thread in misuse reports.

use std::ffi::c_char;

use super::boundary::{self, Fail};
use super::status::{mapcache_status, MAPCACHE_OK};

/// The longest label accepted, in bytes (without the terminating NUL).
pub const MAPCACHE_MAX_LABEL_LEN: usize = 1023;

/// ============ 6. LABELS AND ERRORS ============
/// mapcache_set_thread_label, mapcache_last_error, mapcache_status_str.
///
/// Names the calling OS thread in misuse reports (`MAPCACHE_E_CONCURRENT_WRITE`,
/// `MAPCACHE_E_CONCURRENT_READ_WRITE`): the message of a collision quotes the label
/// of each thread involved, or `thread <os tid>` for a thread without one.
/// Labels are quoted as given, not escaped (a `'` in a label stays as it is), so
/// a host that reads the two names back splits the message at its one
/// occurrence of `' collided with a write in progress by '`: the collider's
/// label lies between the first `'` and it, the holder's between it and the
/// final `'`. A label that itself holds that phrase makes the split ambiguous
/// (the Go and Python bindings then give no labels rather than wrong ones).
///
/// `label` is a NUL-terminated UTF-8 string of at most `MAPCACHE_MAX_LABEL_LEN`
/// bytes; NULL removes the label (reports then name the thread `thread <os tid>`
/// again). An empty string does not remove it: it is a label like any other, and
/// reports quote it as `''`. The label applies to every cache and stays until
/// replaced, removed, or the thread exits.
///
/// Ownership: the library copies the string during the call.
/// Thread-safety: any thread; it labels the calling thread only. (A Go host should
/// lock the goroutine to its thread to label it meaningfully.)
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: not valid UTF-8, or longer than
///   `MAPCACHE_MAX_LABEL_LEN` bytes (no NUL within the first
///   `MAPCACHE_MAX_LABEL_LEN + 1` bytes); the label is left unchanged.
/// - `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `label` must be NULL or point to a NUL-terminated string (the library reads at
/// most `MAPCACHE_MAX_LABEL_LEN + 1` bytes of it).
#[no_mangle]
pub unsafe extern "C" fn mapcache_set_thread_label(label: *const c_char) -> mapcache_status {
    boundary::run("mapcache_set_thread_label", || {
        if label.is_null() {
            crate::clear_thread_label();
            return Ok(MAPCACHE_OK);
        }
        let bytes = label.cast::<u8>();
        let mut len = 0;
        // SAFETY: the host promises a NUL-terminated string; we stop at the NUL or
        // after MAPCACHE_MAX_LABEL_LEN + 1 bytes, whichever comes first.
        while unsafe { bytes.add(len).read() } != 0 {
            len += 1;
            if len > MAPCACHE_MAX_LABEL_LEN {
                return Err(Fail::arg(format!(
                    "label is longer than MAPCACHE_MAX_LABEL_LEN ({MAPCACHE_MAX_LABEL_LEN}) bytes"
                )));
            }
        }
        // SAFETY: the `len` bytes before the NUL were just read, so they are valid.
        let bytes = unsafe { std::slice::from_raw_parts(bytes, len) };
        let label = std::str::from_utf8(bytes).map_err(|e| {
            Fail::arg(format!(
                "label is not valid UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ))
        })?;
        crate::set_thread_label(label);
        Ok(MAPCACHE_OK)
    })
}
