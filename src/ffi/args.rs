//! Checks of the pointers and lengths a host passes, before any of them is turned
//! into a Rust reference. Every failure is a [`Fail`] whose message names the
//! argument.
//!
//! The rules (docs/C_API.md): a data pointer may be NULL only when its length is 0;
//! a required out-pointer must not be NULL; a buffer or array the library writes
//! must not overlap an input it reads or another output of the same call
//! ([`no_overlap`]), and neither may a scalar out-pointer (which is written
//! only once the inputs are read, so that an overlap with an input would do no
//! harm, but one with another output loses a result: the header's rule names
//! every output alike). Out-pointers are written with
//! unaligned stores, so a misaligned pointer from the host is not undefined
//! behaviour either.

use std::ptr;
use std::slice;

use super::boundary::Fail;
use super::status::{self, mapcache_status, MAPCACHE_E_KEY_TOO_LONG, MAPCACHE_E_VALUE_TOO_LONG};
use crate::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// `ptr .. ptr + len` as addresses, or a failure if it wraps around.
#[inline]
fn span(ptr: *const u8, len: usize, name: &'static str) -> Result<(usize, usize), Fail> {
    let start = ptr as usize;
    match start.checked_add(len) {
        Some(end) if len <= isize::MAX as usize => Ok((start, end)),
        _ => Err(wraps(name, len)),
    }
}

#[cold]
fn wraps(name: &'static str, len: usize) -> Fail {
    Fail::arg(format!(
        "{name} with length {len} runs past the end of the address space"
    ))
}

#[cold]
fn null_data(name: &'static str, len_name: &'static str, len: usize) -> Fail {
    Fail::arg(format!("{name} is NULL but {len_name} is {len}"))
}

#[cold]
fn key_too_long(len_name: &'static str, len: usize) -> Fail {
    Fail::new(
        MAPCACHE_E_KEY_TOO_LONG,
        format!("{len_name} = {len} is longer than MAPCACHE_MAX_KEY_LEN ({MAX_KEY_LEN})"),
    )
}

#[cold]
fn value_too_long(len_name: &'static str, len: usize) -> Fail {
    Fail::new(
        MAPCACHE_E_VALUE_TOO_LONG,
        format!("{len_name} = {len} is longer than MAPCACHE_MAX_VALUE_LEN ({MAX_VALUE_LEN})"),
    )
}

/// The input bytes `ptr[0..len]` (empty when `len` is 0, whatever `ptr` is).
///
/// # Safety
/// If `ptr` is not NULL and `len` is not 0, `ptr` must be valid for reads of `len`
/// bytes that nothing writes for the lifetime `'a` (the host's promise for the
/// duration of the call).
#[inline]
unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    name: &'static str,
    len_name: &'static str,
) -> Result<&'a [u8], Fail> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null_data(name, len_name, len));
    }
    span(ptr, len, name)?;
    // SAFETY: ptr is non-null, ptr + len does not wrap and len <= isize::MAX; the
    // caller guarantees validity for reads of len bytes and no writes during 'a.
    Ok(unsafe { slice::from_raw_parts(ptr, len) })
}

/// A key argument: NULL only with length 0, at most `MAPCACHE_MAX_KEY_LEN` bytes.
///
/// # Safety
/// As for [`bytes`].
#[inline]
pub(crate) unsafe fn key<'a>(
    ptr: *const u8,
    len: usize,
    name: &'static str,
    len_name: &'static str,
) -> Result<&'a [u8], Fail> {
    if len > MAX_KEY_LEN {
        if ptr.is_null() {
            return Err(null_data(name, len_name, len));
        }
        return Err(key_too_long(len_name, len));
    }
    // SAFETY: forwarded from the caller.
    unsafe { bytes(ptr, len, name, len_name) }
}

/// A value argument: NULL only with length 0, at most `MAPCACHE_MAX_VALUE_LEN` bytes.
///
/// # Safety
/// As for [`bytes`].
#[inline]
pub(crate) unsafe fn value<'a>(
    ptr: *const u8,
    len: usize,
    name: &'static str,
    len_name: &'static str,
) -> Result<&'a [u8], Fail> {
    if len > MAX_VALUE_LEN {
        if ptr.is_null() {
            return Err(null_data(name, len_name, len));
        }
        return Err(value_too_long(len_name, len));
    }
    // SAFETY: forwarded from the caller.
    unsafe { bytes(ptr, len, name, len_name) }
}

/// An output buffer the library writes up to `cap` bytes into: NULL only when `cap`
/// is 0. It is never turned into a reference; writes go through [`copy_out`].
#[inline]
pub(crate) fn out_buf(
    ptr: *mut u8,
    cap: usize,
    name: &'static str,
    cap_name: &'static str,
) -> Result<(), Fail> {
    if cap == 0 {
        return Ok(());
    }
    if ptr.is_null() {
        return Err(null_data(name, cap_name, cap));
    }
    span(ptr, cap, name).map(|_| ())
}

/// A required out-pointer: not NULL.
#[inline]
pub(crate) fn out<T>(ptr: *mut T, name: &'static str) -> Result<(), Fail> {
    if ptr.is_null() {
        Err(null_out(name))
    } else {
        Ok(())
    }
}

/// A required input array of `n` elements: not NULL when `n` > 0, and its byte
/// length must not wrap.
#[inline]
pub(crate) fn array<T>(ptr: *const T, n: usize, name: &'static str) -> Result<(), Fail> {
    if n == 0 {
        return Ok(());
    }
    if ptr.is_null() {
        return Err(Fail::arg(format!("{name} is NULL but n is {n}")));
    }
    match n.checked_mul(std::mem::size_of::<T>()) {
        Some(bytes) => span(ptr.cast(), bytes, name).map(|_| ()),
        None => Err(wraps(name, n)),
    }
}

#[cold]
fn null_out(name: &'static str) -> Fail {
    Fail::arg(format!("{name} is NULL"))
}

/// A byte range of host memory that a call reads or writes, named for the
/// message. Built only from pointers and lengths already checked not to wrap.
#[derive(Clone, Copy)]
pub(crate) struct Region {
    start: usize,
    end: usize,
    name: &'static str,
}

impl Region {
    /// `ptr[0..count]`, as bytes (`count` elements of `T`; its byte length was
    /// checked by [`array`], [`out_buf`] or the caller).
    #[inline]
    pub(crate) fn of<T>(ptr: *const T, count: usize, name: &'static str) -> Region {
        let start = ptr as usize;
        Region {
            start,
            end: start + count * std::mem::size_of::<T>(),
            name,
        }
    }

    /// The bytes of an input the call reads.
    #[inline]
    pub(crate) fn input(bytes: &[u8], name: &'static str) -> Region {
        Region::of(bytes.as_ptr(), bytes.len(), name)
    }

    /// An output buffer of `cap` bytes (checked not to wrap by [`out_buf`]).
    #[inline]
    pub(crate) fn buffer(buf: *mut u8, cap: usize, name: &'static str) -> Region {
        Region::of(buf.cast_const(), cap, name)
    }

    /// The `T` a scalar out-pointer points at; nothing when it is NULL (a
    /// nullable out-pointer the host left out).
    #[inline]
    pub(crate) fn scalar<T>(ptr: *mut T, name: &'static str) -> Region {
        Region::of(ptr.cast_const(), usize::from(!ptr.is_null()), name)
    }

    #[inline]
    fn overlaps(&self, other: &Region) -> bool {
        self.start < self.end
            && other.start < other.end
            && self.start < other.end
            && other.start < self.end
    }
}

/// Fails when an output overlaps an input or another output: the library would
/// otherwise write memory that it is reading (through a shared reference, for the
/// keys and values), or write one result over another. Empty regions overlap
/// nothing.
#[inline]
pub(crate) fn no_overlap(outputs: &[Region], inputs: &[Region]) -> Result<(), Fail> {
    for (i, out) in outputs.iter().enumerate() {
        for other in inputs.iter().chain(&outputs[i + 1..]) {
            if out.overlaps(other) {
                return Err(overlap(out.name, other.name));
            }
        }
    }
    Ok(())
}

#[cold]
fn overlap(out_name: &'static str, input_name: &'static str) -> Fail {
    Fail::arg(format!("{out_name} overlaps {input_name}"))
}

/// Copies `src` to `dst` (checked by [`out_buf`] with a capacity of at least
/// `src.len()`, and disjoint from `src`).
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and must not overlap `src`.
#[inline]
pub(crate) unsafe fn copy_out(src: &[u8], dst: *mut u8) {
    if !src.is_empty() {
        // SAFETY: by the caller's contract dst is valid for src.len() bytes and the
        // two ranges do not overlap (src is map memory or checked with `disjoint`).
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) }
    }
}

/// A copy of a key for the library to work on while host code runs (a
/// callback or a loader), which may write the host's key buffer: no reference
/// into host memory may be alive meanwhile. On the stack up to 128 bytes.
pub(crate) enum KeyCopy {
    Small { bytes: [u8; 128], len: usize },
    Heap(Vec<u8>),
}

impl KeyCopy {
    #[inline]
    pub(crate) fn new(key: &[u8]) -> KeyCopy {
        let mut bytes = [0u8; 128];
        match bytes.get_mut(..key.len()) {
            Some(prefix) => {
                prefix.copy_from_slice(key);
                KeyCopy::Small {
                    bytes,
                    len: key.len(),
                }
            }
            None => KeyCopy::Heap(key.to_vec()),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            KeyCopy::Small { bytes, len } => &bytes[..*len],
            KeyCopy::Heap(key) => key,
        }
    }
}

/// Stores `value` through a checked out-pointer.
///
/// # Safety
/// `ptr` must be non-null (checked with [`out`]) and valid for writes of a `T`.
#[inline]
pub(crate) unsafe fn put<T>(ptr: *mut T, value: T) {
    // SAFETY: non-null and valid by the caller's contract; unaligned store, so the
    // host's alignment does not matter.
    unsafe { ptr.write_unaligned(value) }
}

/// Stores `value` through an out-pointer documented as nullable.
///
/// # Safety
/// `ptr` must be NULL or valid for writes of a `T`.
#[inline]
pub(crate) unsafe fn put_opt<T>(ptr: *mut T, value: T) {
    if !ptr.is_null() {
        // SAFETY: non-null and valid by the caller's contract.
        unsafe { ptr.write_unaligned(value) }
    }
}

/// After a call returned `status`: if it is an error, stores `empty` (NULL, 0 or
/// false) through the out-pointer `ptr` when it is not NULL, so that after an
/// error a host never finds a stale or partial result there (the header's rule).
/// Called once the call's work is over, so it never writes memory the call was
/// still reading.
///
/// # Safety
/// `ptr` must be NULL or valid for writes of a `T` (the host's promise for every
/// out-pointer it passes).
#[inline]
pub(crate) unsafe fn reset_on_error<T>(status: mapcache_status, ptr: *mut T, empty: T) {
    if status::is_error(status) {
        // SAFETY: NULL or writable (contract).
        unsafe { put_opt(ptr, empty) }
    }
}

/// Reads element `i` of an input array checked with [`array`].
///
/// # Safety
/// `ptr` must be valid for reads of at least `i + 1` elements.
#[inline]
pub(crate) unsafe fn read<T: Copy>(ptr: *const T, i: usize) -> T {
    // SAFETY: in bounds by the caller's contract; unaligned load.
    unsafe { ptr.add(i).read_unaligned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: usize, len: usize, name: &'static str) -> Region {
        Region::of(start as *const u8, len, name)
    }

    #[test]
    fn overlap_is_checked_between_every_output_and_every_other_region() {
        let inputs = [at(0x1000, 16, "keys"), at(0x2000, 16, "key_lens")];
        // Adjacent and empty regions do not overlap.
        let ok = [
            at(0x1010, 16, "values"),
            at(0x1ff0, 16, "out"),
            at(0x1000, 0, "e"),
        ];
        assert!(no_overlap(&ok, &inputs).is_ok());
        let cases: [(&[Region], &str); 3] = [
            (&[at(0x100f, 1, "values")], "values overlaps keys"),
            (&[at(0x1fff, 2, "out")], "out overlaps key_lens"),
            (&[at(0x3000, 8, "a"), at(0x3004, 8, "b")], "a overlaps b"),
        ];
        for (outputs, message) in cases {
            let fail = no_overlap(outputs, &inputs).unwrap_err();
            assert_eq!(fail.message_for("f"), format!("f: {message}"));
        }
    }
}
