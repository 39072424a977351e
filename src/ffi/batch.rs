//! Batch calls: many keys in one call, a status per key.
//!
//! Keys (and values) travel packed back to back in one buffer, with an array of
//! lengths, so that a Go host can pass them without Go pointers inside Go memory
//! (the cgo pointer rules) and a Python host with two `bytes` objects; the call cost
//! is paid once per batch.
//!
//! A batch returns `MAPCACHE_OK` when it ran, with each key's own outcome in
//! `out_statuses[i]`, or an error for the call as a whole (bad arguments, invalid
//! handle: then no key was processed and nothing was written into the output
//! arrays). When some key's status is an error,
//! `mapcache_last_error()` describes the first such key: `"mapcache_put_many: key
//! <i>: ..."` for an argument error, the core's own text for a misuse report or
//! an allocation failure (see `FirstError::note`).

use super::args;
use super::boundary::{self, Fail};
use super::handle::{self, mapcache_t};
use super::last_error;
use super::status::{
    mapcache_status, MAPCACHE_E_BUFFER_TOO_SMALL, MAPCACHE_NOT_FOUND, MAPCACHE_OK,
};

/// A packed buffer `data[0..total]` cut into `n` items by `lens[0..n]`.
struct Packed {
    data: *const u8,
    lens: *const usize,
    total: usize,
    name: &'static str,
    lens_name: &'static str,
}

impl Packed {
    /// Checks the length array and the buffer it describes.
    ///
    /// # Safety
    /// `lens` must be readable for `n` elements.
    unsafe fn new(
        data: *const u8,
        lens: *const usize,
        n: usize,
        name: &'static str,
        lens_name: &'static str,
    ) -> Result<Packed, Fail> {
        args::array(lens, n, lens_name)?;
        let mut total = 0usize;
        for i in 0..n {
            // SAFETY: i < n, lens readable for n elements (contract).
            let len = unsafe { args::read(lens, i) };
            total = total.checked_add(len).ok_or_else(|| {
                Fail::arg(format!("the sum of {lens_name}[0..n] overflows size_t"))
            })?;
        }
        if total > 0 && data.is_null() {
            return Err(Fail::arg(format!(
                "{name} is NULL but the lengths in {lens_name} add up to {total}"
            )));
        }
        if (data as usize).checked_add(total).is_none() || total > isize::MAX as usize {
            return Err(Fail::arg(format!(
                "{name} with length {total} runs past the end of the address space"
            )));
        }
        Ok(Packed {
            data,
            lens,
            total,
            name,
            lens_name,
        })
    }

    /// Item `i`, which starts at `*offset`; advances `*offset` past it.
    ///
    /// # Safety
    /// `i` < the `n` given to `new`.
    unsafe fn item(&self, i: usize, offset: &mut usize) -> Result<(*const u8, usize), Fail> {
        // SAFETY: i < n (caller).
        let len = unsafe { args::read(self.lens, i) };
        match offset.checked_add(len) {
            Some(end) if end <= self.total => {
                let start = *offset;
                *offset = end;
                // SAFETY: start <= total and data + total does not wrap (new).
                Ok((self.data.wrapping_add(start), len))
            }
            // Only if the host changes the lengths during the call.
            _ => Err(Fail::arg(format!(
                "{}[{i}] changed during the call (items of {} past its checked length)",
                self.lens_name, self.name
            ))),
        }
    }

    /// The buffer and the length array, as the regions the call reads.
    fn regions(&self, n: usize) -> [args::Region; 2] {
        [
            args::Region::of(self.data, self.total, self.name),
            args::Region::of(self.lens, n, self.lens_name),
        ]
    }
}

/// Records the first per-key error of a batch for `mapcache_last_error()`.
struct FirstError {
    function: &'static str,
    message: Option<String>,
}

impl FirstError {
    fn new(function: &'static str) -> FirstError {
        FirstError {
            function,
            message: None,
        }
    }

    /// Notes `fail` for key `i` (if it is the first) and returns its status.
    ///
    /// The rule of every call, batches included: a message this layer writes
    /// starts with the function (here, and the key's index: `"mapcache_put_many:
    /// key 3: value_len = ..."`); a message of the core (a misuse report, out of
    /// memory) is passed on verbatim, so that a misuse report has the same form
    /// from a batch as from a single call.
    #[cold]
    fn note(&mut self, i: usize, fail: Fail) -> mapcache_status {
        if self.message.is_none() {
            let text = fail.message_for(self.function);
            let text = match text.strip_prefix(self.function) {
                Some(rest) => format!("{}: key {i}{rest}", self.function),
                None => text,
            };
            self.message = Some(text);
        }
        fail.status()
    }

    fn finish(self) {
        if let Some(message) = self.message {
            last_error::set(message);
        }
    }
}

/// The common front of every batch call: the handle and the statuses array.
fn front(
    cache: *mut mapcache_t,
    n: usize,
    out_statuses: *mut mapcache_status,
) -> Result<handle::Shell, Fail> {
    let shell = handle::shell(cache)?;
    args::array(out_statuses.cast_const(), n, "out_statuses")?;
    Ok(shell)
}

/// `out_statuses[0..n]` as a region (checked by `front`).
fn statuses_region(out_statuses: *mut mapcache_status, n: usize) -> args::Region {
    args::Region::of(out_statuses.cast_const(), n, "out_statuses")
}

/// ============ 4. BATCH CALLS ============
/// Many keys in one call, a status per key: mapcache_get_many,
/// mapcache_put_many, mapcache_delete_many.
///
/// Looks up `n` keys and copies their values back to back into `values`.
///
/// Keys: key `i` is the next `key_lens[i]` bytes of `keys` (packed back to back).
/// For each key, `out_statuses[i]` and `out_value_lens[i]` receive:
/// - `MAPCACHE_OK`, the value's length: the value was written into `values`, right
///   after the previous key's value that was written (value `i` starts at the sum
///   of `out_value_lens[j]` for the keys `j < i` whose status is `MAPCACHE_OK`);
/// - `MAPCACHE_NOT_FOUND`, 0;
/// - `MAPCACHE_E_BUFFER_TOO_SMALL`, the needed length: it did not fit in what was
///   left of `values_cap`; nothing was written for it, and later (smaller) values
///   may still be written;
/// - `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive
///   mode), 0.
///
/// `n` may be 0 (then every pointer may be NULL). `values` may be NULL when
/// `values_cap` is 0. No output (`values[0..values_cap]`, `out_value_lens`,
/// `out_statuses`) may overlap an input (`keys`, `key_lens`) or another output.
///
/// Ownership: all arrays are the caller's. Thread-safety: as `mapcache_get`; the
/// batch is not atomic (each key is read on its own).
///
/// Returns:
/// - `MAPCACHE_OK`: the batch ran; see `out_statuses` (the first per-key error, if
///   any, is in `mapcache_last_error()`).
/// - `MAPCACHE_E_INVALID_ARG`: `cache` NULL; with `n` > 0, `key_lens`,
///   `out_value_lens` or `out_statuses` NULL; `keys` NULL while the key lengths add
///   up to more than 0; `values` NULL with `values_cap` > 0; an output overlaps an
///   input or another output (the message names both); the key lengths overflow.
/// - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// On `MAPCACHE_E_INVALID_ARG` or `MAPCACHE_E_INVALID_HANDLE` no key was processed
/// and the output arrays were not written (unless the host changed the length
/// arrays during the call, which the contract forbids).
///
/// # Safety
/// `key_lens`, `out_value_lens`, `out_statuses` must be valid for `n` elements,
/// `keys` readable for the sum of `key_lens`, `values` writable for `values_cap`
/// bytes.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mapcache_get_many(
    cache: *mut mapcache_t,
    n: usize,
    keys: *const u8,
    key_lens: *const usize,
    values: *mut u8,
    values_cap: usize,
    out_value_lens: *mut usize,
    out_statuses: *mut mapcache_status,
) -> mapcache_status {
    const NAME: &str = "mapcache_get_many";
    boundary::run(NAME, || {
        let shell = front(cache, n, out_statuses)?;
        // SAFETY: key_lens readable for n elements (contract).
        let keys = unsafe { Packed::new(keys, key_lens, n, "keys", "key_lens") }?;
        args::array(out_value_lens.cast_const(), n, "out_value_lens")?;
        args::out_buf(values, values_cap, "values", "values_cap")?;
        args::no_overlap(
            &[
                args::Region::of(values.cast_const(), values_cap, "values"),
                args::Region::of(out_value_lens.cast_const(), n, "out_value_lens"),
                statuses_region(out_statuses, n),
            ],
            &keys.regions(n),
        )?;
        shell.with(|inner| {
            // Cut out every key first, then look them all up in one pass of
            // `Map::get_many_with`, which pins once per span of keys and
            // prefetches the buckets of the keys ahead, so that their cache misses
            // overlap.
            let mut offset = 0usize;
            let mut slices: Vec<&[u8]> = Vec::with_capacity(n);
            let mut rejected: Vec<(usize, Fail)> = Vec::new();
            for i in 0..n {
                // SAFETY: i < n.
                let (ptr, len) = unsafe { keys.item(i, &mut offset) }?;
                // SAFETY: inside the packed keys buffer, readable (contract), and
                // disjoint from `values` (checked above).
                match unsafe { args::key(ptr, len, "key", "key_len") } {
                    Ok(key) => slices.push(key),
                    Err(fail) => {
                        slices.push(&[]);
                        rejected.push((i, fail));
                    }
                }
            }
            let mut rejected = rejected.into_iter().peekable();
            let mut first = FirstError::new(NAME);
            let mut used = 0usize;
            inner.map.get_many_with(slices.iter().copied(), |i, found| {
                let outcome = match rejected.next_if(|(j, _)| *j == i) {
                    Some((_, fail)) => Err((fail, 0)),
                    None => copy_one(found, values, values_cap - used, used),
                };
                let (status, len) = match outcome {
                    Ok((status, len)) => (status, len),
                    Err((fail, len)) => (first.note(i, fail), len),
                };
                if status == MAPCACHE_OK {
                    used += len;
                }
                // SAFETY: i < n, both arrays checked for n elements (contract).
                unsafe {
                    args::put(out_statuses.add(i), status);
                    args::put(out_value_lens.add(i), len);
                }
            });
            first.finish();
            Ok(MAPCACHE_OK)
        })
    })
}

/// One key's lookup result in `mapcache_get_many`, copied out at `values + used`
/// when it fits in the `left` bytes that remain: its status and length, or its
/// failure and the length to report.
fn copy_one(
    found: crate::Result<Option<&[u8]>>,
    values: *mut u8,
    left: usize,
    used: usize,
) -> Result<(mapcache_status, usize), (Fail, usize)> {
    match found {
        Err(error) => Err((Fail::from(error), 0)),
        Ok(None) => Ok((MAPCACHE_NOT_FOUND, 0)),
        Ok(Some(v)) if v.len() <= left => {
            // SAFETY: values is valid for values_cap bytes and used + left ==
            // values_cap, so [used, used + v.len()) is inside it; disjoint from
            // the keys (checked) and from map memory.
            unsafe { args::copy_out(v, values.wrapping_add(used)) };
            Ok((MAPCACHE_OK, v.len()))
        }
        Ok(Some(v)) => Err((
            Fail::new(
                MAPCACHE_E_BUFFER_TOO_SMALL,
                format!(
                    "the value is {} bytes but only {left} bytes of values are left",
                    v.len()
                ),
            ),
            v.len(),
        )),
    }
}

/// Inserts or replaces `n` entries: key `i` is the next `key_lens[i]` bytes of
/// `keys`, its value the next `value_lens[i]` bytes of `values` (both packed back
/// to back).
///
/// `out_statuses[i]` receives `MAPCACHE_OK` (inserted or replaced),
/// `MAPCACHE_E_KEY_TOO_LONG`, `MAPCACHE_E_VALUE_TOO_LONG`, `MAPCACHE_E_TOO_LARGE`
/// (a bounded cache), `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode) or
/// `MAPCACHE_E_NO_MEMORY`; a failed
/// key changes nothing and later keys are still processed. Keys are written in
/// order, so a key repeated in the batch ends with its last value. `out_statuses`
/// must not overlap an input (`keys`, `key_lens`, `values`, `value_lens`).
///
/// Ownership: the library copies keys and values. Thread-safety: as `mapcache_put`;
/// the batch is not atomic (other threads may see part of it).
///
/// Returns:
/// - `MAPCACHE_OK`: the batch ran; see `out_statuses`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` NULL; with `n` > 0, `key_lens`, `value_lens`
///   or `out_statuses` NULL; `keys` (`values`) NULL while the key (value) lengths
///   add up to more than 0; `out_statuses` overlaps an input (the message names
///   it); the lengths overflow.
/// - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// On `MAPCACHE_E_INVALID_ARG` or `MAPCACHE_E_INVALID_HANDLE` no key was processed
/// and the output arrays were not written (unless the host changed the length
/// arrays during the call, which the contract forbids).
///
/// # Safety
/// `key_lens`, `value_lens`, `out_statuses` must be valid for `n` elements, `keys`
/// and `values` readable for the sums of their lengths, and not modified during
/// the call.
#[no_mangle]
pub unsafe extern "C" fn mapcache_put_many(
    cache: *mut mapcache_t,
    n: usize,
    keys: *const u8,
    key_lens: *const usize,
    values: *const u8,
    value_lens: *const usize,
    out_statuses: *mut mapcache_status,
) -> mapcache_status {
    const NAME: &str = "mapcache_put_many";
    boundary::run(NAME, || {
        let shell = front(cache, n, out_statuses)?;
        // SAFETY: key_lens readable for n elements (contract).
        let keys = unsafe { Packed::new(keys, key_lens, n, "keys", "key_lens") }?;
        // SAFETY: value_lens readable for n elements (contract).
        let values = unsafe { Packed::new(values, value_lens, n, "values", "value_lens") }?;
        let [k, kl] = keys.regions(n);
        let [v, vl] = values.regions(n);
        args::no_overlap(&[statuses_region(out_statuses, n)], &[k, kl, v, vl])?;
        shell.with(|inner| {
            let mut first = FirstError::new(NAME);
            let (mut key_offset, mut value_offset) = (0usize, 0usize);
            for i in 0..n {
                // SAFETY: i < n.
                let (key, key_len) = unsafe { keys.item(i, &mut key_offset) }?;
                // SAFETY: i < n.
                let (value, value_len) = unsafe { values.item(i, &mut value_offset) }?;
                let outcome = (|| {
                    // SAFETY: inside the packed buffers, readable and not modified
                    // during the call (contract).
                    let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
                    // SAFETY: as above.
                    let value = unsafe { args::value(value, value_len, "value", "value_len") }?;
                    inner.map.insert(key, value)?;
                    Ok::<_, Fail>(MAPCACHE_OK)
                })();
                let status = outcome.unwrap_or_else(|fail| first.note(i, fail));
                // SAFETY: i < n, out_statuses checked for n elements (contract).
                unsafe { args::put(out_statuses.add(i), status) };
            }
            first.finish();
            Ok(MAPCACHE_OK)
        })
    })
}

/// Removes `n` keys: key `i` is the next `key_lens[i]` bytes of `keys` (packed back
/// to back).
///
/// `out_statuses[i]` receives `MAPCACHE_OK` (was present, removed),
/// `MAPCACHE_NOT_FOUND` (was absent), `MAPCACHE_E_KEY_TOO_LONG` or
/// `MAPCACHE_E_CONCURRENT_WRITE` (exclusive mode). `out_statuses` must not overlap
/// `keys` or `key_lens`.
///
/// Ownership: all arrays are the caller's. Thread-safety: as `mapcache_delete`; the
/// batch is not atomic.
///
/// Returns:
/// - `MAPCACHE_OK`: the batch ran; see `out_statuses`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` NULL; with `n` > 0, `key_lens` or
///   `out_statuses` NULL; `keys` NULL while the key lengths add up to more than 0;
///   `out_statuses` overlaps `keys` or `key_lens`; the lengths overflow.
/// - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
///
/// On `MAPCACHE_E_INVALID_ARG` or `MAPCACHE_E_INVALID_HANDLE` no key was processed
/// and the output arrays were not written (unless the host changed the length
/// arrays during the call, which the contract forbids).
///
/// # Safety
/// `key_lens` and `out_statuses` must be valid for `n` elements, `keys` readable for
/// the sum of `key_lens`, and not modified during the call.
#[no_mangle]
pub unsafe extern "C" fn mapcache_delete_many(
    cache: *mut mapcache_t,
    n: usize,
    keys: *const u8,
    key_lens: *const usize,
    out_statuses: *mut mapcache_status,
) -> mapcache_status {
    const NAME: &str = "mapcache_delete_many";
    boundary::run(NAME, || {
        let shell = front(cache, n, out_statuses)?;
        // SAFETY: key_lens readable for n elements (contract).
        let keys = unsafe { Packed::new(keys, key_lens, n, "keys", "key_lens") }?;
        args::no_overlap(&[statuses_region(out_statuses, n)], &keys.regions(n))?;
        shell.with(|inner| {
            let mut first = FirstError::new(NAME);
            let mut offset = 0usize;
            for i in 0..n {
                // SAFETY: i < n.
                let (key, key_len) = unsafe { keys.item(i, &mut offset) }?;
                let outcome = (|| {
                    // SAFETY: inside the packed buffer, readable and not modified
                    // during the call (contract).
                    let key = unsafe { args::key(key, key_len, "key", "key_len") }?;
                    Ok::<_, Fail>(if inner.map.remove(key)? {
                        MAPCACHE_OK
                    } else {
                        MAPCACHE_NOT_FOUND
                    })
                })();
                let status = outcome.unwrap_or_else(|fail| first.note(i, fail));
                // SAFETY: i < n, out_statuses checked for n elements (contract).
                unsafe { args::put(out_statuses.add(i), status) };
            }
            first.finish();
            Ok(MAPCACHE_OK)
        })
    })
}
