//! An entry: one immutable allocation holding a header, the key and the value.
//!
//! ```text
//! +---------+------+-----------+-----------+
//! | key_len | meta | value_len | key bytes | value bytes
//! |   u16   | u16  |    u32    |           |
//! +---------+------+-----------+-----------+
//!  0         2      4           8
//! ```
//!
//! One allocation means one cache miss for a lookup that hits (a boxed key and a
//! boxed value would be two more). The header is 8 bytes: the hash is not stored
//! here because the bucket keeps the bits a grow needs (see `bucket.rs`). `meta` is
//! reserved for per-entry cache metadata (an expiry flag with a trailing deadline,
//! a reference bit); it is zero today.
//!
//! An entry is never written after it is published: an update allocates a new
//! entry and swaps the slot pointer, and the old entry is retired through
//! crossbeam-epoch, so a reader holding a pin may read any entry it reached.
//!
//! Entries are handled through raw pointers (never `&Entry`), so that the pointer
//! that reads the key and value bytes carries the provenance of the whole
//! allocation.

use std::alloc::{self, Layout};
use std::ptr::{self, NonNull};

use crate::error::{Error, Result};
use crate::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// The header at the start of every entry allocation.
#[repr(C)]
pub(crate) struct Entry {
    key_len: u16,
    /// Reserved for cache metadata (zero today).
    meta: u16,
    value_len: u32,
}

/// Size of the header; key bytes start here.
const HEADER: usize = std::mem::size_of::<Entry>();
const ALIGN: usize = 8;

fn layout(key_len: usize, value_len: usize) -> Layout {
    // Cannot fail: lengths are bounded by MAX_KEY_LEN and MAX_VALUE_LEN, far below
    // isize::MAX.
    Layout::from_size_align(HEADER + key_len + value_len, ALIGN).expect("entry layout")
}

/// Checks a key and value against the documented limits.
pub(crate) fn check_lengths(key: &[u8], value: &[u8]) -> Result<()> {
    check_key(key)?;
    if value.len() > MAX_VALUE_LEN {
        return Err(Error::ValueTooLong { len: value.len() });
    }
    Ok(())
}

/// Checks a key against [`MAX_KEY_LEN`].
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::KeyTooLong { len: key.len() });
    }
    Ok(())
}

/// An entry that is not (or no longer) reachable from a table: freed on drop
/// unless handed to a table with [`OwnedEntry::into_raw`].
pub(crate) struct OwnedEntry(NonNull<Entry>);

// SAFETY: an OwnedEntry is the only pointer to its allocation, which holds plain bytes.
unsafe impl Send for OwnedEntry {}

impl OwnedEntry {
    /// Allocates an entry for `key` and `value` (lengths must have been checked).
    pub(crate) fn new(key: &[u8], value: &[u8]) -> Result<OwnedEntry> {
        debug_assert!(key.len() <= MAX_KEY_LEN && value.len() <= MAX_VALUE_LEN);
        let layout = layout(key.len(), value.len());
        // SAFETY: the layout has a non-zero size (the header alone is 8 bytes).
        let base = unsafe { alloc::alloc(layout) };
        let Some(base) = NonNull::new(base) else {
            return Err(Error::OutOfMemory {
                bytes: layout.size(),
            });
        };
        let entry = base.cast::<Entry>();
        // SAFETY: `base` is a fresh allocation of HEADER + key + value bytes aligned
        // to 8; the header write and both copies stay inside it and do not overlap
        // the caller's slices.
        unsafe {
            entry.as_ptr().write(Entry {
                key_len: key.len() as u16,
                meta: 0,
                value_len: value.len() as u32,
            });
            let bytes = base.as_ptr().add(HEADER);
            ptr::copy_nonoverlapping(key.as_ptr(), bytes, key.len());
            ptr::copy_nonoverlapping(value.as_ptr(), bytes.add(key.len()), value.len());
        }
        Ok(OwnedEntry(entry))
    }

    /// Gives up ownership: the caller has published the pointer into a table.
    pub(crate) fn into_raw(self) -> *mut Entry {
        let ptr = self.0.as_ptr();
        std::mem::forget(self);
        ptr
    }
}

impl Drop for OwnedEntry {
    fn drop(&mut self) {
        // SAFETY: we own the allocation and nothing else points to it.
        unsafe { free(self.0.as_ptr()) }
    }
}

/// The key bytes of the entry at `entry`.
///
/// # Safety
/// `entry` points to a live entry that stays live for `'a` (the caller holds an
/// epoch pin that was taken before it loaded the pointer, or owns the entry).
#[inline]
pub(crate) unsafe fn key<'a>(entry: *const Entry) -> &'a [u8] {
    // SAFETY: per the contract the header and the key_len bytes after it are live
    // and never written again.
    unsafe {
        let len = (*entry).key_len as usize;
        std::slice::from_raw_parts(entry.cast::<u8>().add(HEADER), len)
    }
}

/// The value bytes of the entry at `entry`.
///
/// # Safety
/// As for [`key`].
#[inline]
pub(crate) unsafe fn value<'a>(entry: *const Entry) -> &'a [u8] {
    // SAFETY: per the contract the whole allocation is live and immutable.
    unsafe {
        let key_len = (*entry).key_len as usize;
        let len = (*entry).value_len as usize;
        std::slice::from_raw_parts(entry.cast::<u8>().add(HEADER + key_len), len)
    }
}

/// The value bytes of the entry at `entry`, whose key is known to be `key_len`
/// bytes long. Same as [`value`], but the value's address does not wait for the
/// header load: the CPU can fetch the value's cache line (often the second line
/// of the entry) in parallel with the header and key bytes.
///
/// # Safety
/// As for [`key`], and the entry's key is `key_len` bytes long.
#[inline]
pub(crate) unsafe fn value_after_key<'a>(entry: *const Entry, key_len: usize) -> &'a [u8] {
    // SAFETY: per the contract the whole allocation is live and immutable, and the
    // value starts right after the key.
    unsafe {
        let len = (*entry).value_len as usize;
        std::slice::from_raw_parts(entry.cast::<u8>().add(HEADER + key_len), len)
    }
}

/// Starts loading an entry's first two cache lines (see [`prefetch_tail`]).
/// `entry` may be null or dangling: prefetches never fault.
#[inline(always)]
pub(crate) fn prefetch(entry: *const Entry) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no architectural effect, whatever
    // the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(entry.cast::<i8>());
    }
    prefetch_tail(entry);
}

/// Starts loading the cache line after the one `entry` starts in. Entries are
/// 16-byte aligned, so a small entry (header, 16-byte key, 32-byte value: 56
/// bytes) straddles two lines three times out of four; fetching the second line
/// while the key is compared takes its miss off the lookup's critical path.
#[inline(always)]
pub(crate) fn prefetch_tail(entry: *const Entry) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no architectural effect, whatever
    // the address; `wrapping_add` computes it without any dereference.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(entry.cast::<i8>().wrapping_add(63));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = entry;
}

/// Whether the entry at `entry` holds `key`.
///
/// # Safety
/// As for [`key`].
#[inline]
pub(crate) unsafe fn has_key(entry: *const Entry, key: &[u8]) -> bool {
    // SAFETY: forwarded contract; the length is compared before the bytes are read.
    unsafe { (*entry).key_len as usize == key.len() && same_bytes(self::key(entry), key) }
}

/// `a == b`, inline for the short keys caches mostly hold: from 4 to 16 bytes
/// it compares two (overlapping) words per side instead of calling `memcmp`.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    let (a, b) = (a.as_ptr(), b.as_ptr());
    // SAFETY: both slices are `len` bytes long, and each arm reads only inside
    // them: words at 0 and `len - 8` when 8 <= len <= 16, halves at 0 and
    // `len - 4` when 4 <= len < 8. Unaligned reads of plain bytes are fine.
    unsafe {
        match len {
            8..=16 => {
                let word = |p: *const u8, at: usize| p.add(at).cast::<u64>().read_unaligned();
                word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8)
            }
            4..=7 => {
                let half = |p: *const u8, at: usize| p.add(at).cast::<u32>().read_unaligned();
                half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4)
            }
            _ => std::slice::from_raw_parts(a, len) == std::slice::from_raw_parts(b, len),
        }
    }
}

/// Frees an entry.
///
/// # Safety
/// `entry` came from [`OwnedEntry::into_raw`] (or is owned by an `OwnedEntry` being
/// dropped), no table links it any more, and no reader can still reach it (its
/// retirement went through the epoch, or the map is being dropped).
pub(crate) unsafe fn free(entry: *mut Entry) {
    // SAFETY: per the contract the allocation is live and was made with this layout.
    unsafe {
        let layout = layout((*entry).key_len as usize, (*entry).value_len as usize);
        alloc::dealloc(entry.cast::<u8>(), layout);
    }
}

/// Bytes the entry at `entry` occupies (header included).
///
/// # Safety
/// As for [`key`].
pub(crate) unsafe fn footprint(entry: *const Entry) -> usize {
    // SAFETY: forwarded contract: the header is live.
    unsafe { layout((*entry).key_len as usize, (*entry).value_len as usize).size() }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::same_bytes;

    #[test]
    fn same_bytes_is_slice_equality() {
        let base: Vec<u8> = (0..40u8).collect();
        for len in 0..=40 {
            let a = &base[..len];
            assert!(same_bytes(a, a));
            for flip in 0..len {
                let mut b = a.to_vec();
                b[flip] ^= 0x80;
                assert!(!same_bytes(a, &b), "len {len}, byte {flip}");
            }
        }
    }
}
