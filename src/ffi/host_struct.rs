//! Out-structs versioned by their first field, as `mapcache_stats` and the
//! snapshot reports are: the host sets `struct_size` to the size of the struct
//! its header declares, and the library writes exactly that many bytes (the
//! fields both know, then zeros), so that a host built against an older header
//! is never written past its struct and one built against a newer header sees
//! zeros for fields this library does not fill.

use std::mem::size_of;
use std::ptr;

use super::boundary::Fail;
use super::config::write_prefix;

/// The largest `struct_size` accepted (a guard against garbage in the field).
pub(crate) const MAX_STRUCT_SIZE: usize = 4096;

/// The `struct_size` the host stated at `out` (a `size_t` first field), checked
/// to lie between `first` (the size of the struct's first version) and
/// [`MAX_STRUCT_SIZE`]; `name` is the struct's C name and `arg` the argument's.
///
/// # Safety
/// `out` must be non-NULL and valid for reading a `size_t` (any alignment).
pub(crate) unsafe fn stated_size(
    out: *const usize,
    first: usize,
    name: &'static str,
    arg: &'static str,
) -> Result<usize, Fail> {
    // SAFETY: non-null and readable for its first field (contract); unaligned.
    let size = unsafe { out.read_unaligned() };
    if (first..=MAX_STRUCT_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(Fail::arg(format!(
            "{arg}->struct_size = {size} is not between the size of the first \
             {name} ({first} bytes) and {MAX_STRUCT_SIZE}; set it to sizeof({name})"
        )))
    }
}

/// Writes `value` into the host's struct of `size` bytes at `out`.
///
/// # Safety
/// `out` must be valid for writes of `size` bytes (any alignment) and must not
/// overlap `value`.
pub(crate) unsafe fn write<T: Copy>(out: *mut T, size: usize, value: &T) {
    // SAFETY: `out` is writable for `size` bytes (contract); `value` is this
    // library's struct, readable for its size and disjoint from the host's.
    unsafe {
        write_prefix(
            out.cast::<u8>(),
            size,
            ptr::addr_of!(*value).cast::<u8>(),
            size_of::<T>(),
        )
    }
}
