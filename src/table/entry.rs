//! An entry: one immutable block holding a header, the key and the value. Small
//! entries (at most `SLAB_MAX` bytes) are blocks of their shard's slab, larger
//! ones allocations of their own (see `slab.rs`).
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
//! here because the bucket keeps the bits a grow needs (see `bucket.rs`).
//!
//! `meta` flags an optional trailer after the value, so that entries without a
//! TTL, in a map without a bound, pay nothing for either feature:
//!
//! ```text
//! | header | key | value | deadline: u64 (if HAS_DEADLINE) | node: u32 (if HAS_NODE) |
//! ```
//!
//! - the deadline: the clock reading (nanoseconds, see `clock.rs`) at which the
//!   entry expires;
//! - the node: the index of the entry's node in its shard's eviction policy
//!   (bounded caches only), which a reader reports with its hit and a writer
//!   uses to find the entry again.
//!
//! Trailer fields are unaligned (the value has any length) and read with
//! unaligned loads.
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

use super::slab::Slab;
use crate::error::{Error, Result};
use crate::{MAX_KEY_LEN, MAX_VALUE_LEN};

/// The header at the start of every entry allocation.
#[repr(C)]
pub(crate) struct Entry {
    key_len: u16,
    /// Which trailer fields follow the value ([`HAS_DEADLINE`], [`HAS_NODE`]).
    meta: u16,
    value_len: u32,
}

/// `meta` flag: an 8-byte deadline follows the value.
const HAS_DEADLINE: u16 = 1;
/// `meta` flag: a 4-byte policy node index follows (the deadline, or) the value.
const HAS_NODE: u16 = 2;

/// What follows an entry's value (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trailer {
    /// The clock reading at which the entry expires.
    pub(crate) deadline: Option<u64>,
    /// Whether the entry carries a policy node index (set with
    /// [`OwnedEntry::set_node`] before the entry is published).
    pub(crate) node: bool,
}

impl Trailer {
    fn meta(self) -> u16 {
        (if self.deadline.is_some() {
            HAS_DEADLINE
        } else {
            0
        }) | if self.node { HAS_NODE } else { 0 }
    }
}

#[inline]
fn trailer_len(meta: u16) -> usize {
    (if meta & HAS_DEADLINE != 0 { 8 } else { 0 }) + if meta & HAS_NODE != 0 { 4 } else { 0 }
}

/// Size of the header; key bytes start here.
const HEADER: usize = std::mem::size_of::<Entry>();

const ALIGN: usize = 8;

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

/// Bytes an entry with these lengths and trailer fields needs (header included).
#[inline]
fn size(key_len: usize, value_len: usize, meta: u16) -> usize {
    HEADER + key_len + value_len + trailer_len(meta)
}

/// Bytes an entry for `key` and `value` with `trailer` occupies (a slab block's
/// rounding included): what [`footprint`] will say of it once made.
pub(crate) fn footprint_for(key_len: usize, value_len: usize, trailer: Trailer) -> usize {
    rounded(size(key_len, value_len, trailer.meta()))
}

#[inline]
fn rounded(size: usize) -> usize {
    if Slab::serves(size) {
        Slab::block_size(size)
    } else {
        size
    }
}

/// The smallest block a plain write makes in a bounded cache: an empty key and
/// value, the policy node index every entry of a bounded cache carries
/// ([`Trailer::node`]), and a deadline when the cache has a default TTL
/// (`with_deadline`), slab rounding included. What `max_bytes` must give each
/// shard at least (`Config::validate`): a bound checked against a smaller block
/// (the header alone, or without the default TTL's deadline) was accepted and
/// then refused every put.
pub(crate) fn smallest_bounded_block(with_deadline: bool) -> usize {
    footprint_for(
        0,
        0,
        Trailer {
            deadline: with_deadline.then_some(0),
            node: true,
        },
    )
}

/// An entry that is not (or no longer) reachable from a table: freed on drop
/// unless handed to a table with [`OwnedEntry::into_raw`]. It remembers the slab
/// of its shard, where it lives if it is small (see `slab.rs`).
pub(crate) struct OwnedEntry<'m> {
    ptr: NonNull<Entry>,
    slab: &'m Slab,
}

// SAFETY: an OwnedEntry is the only pointer to its allocation, which holds plain
// bytes; the slab is Sync and its `free` may run on any thread.
unsafe impl Send for OwnedEntry<'_> {}

/// An entry being made for a write. Large entries are allocated and filled
/// before the writer takes its flag, so that copying a big value never holds up
/// the shard's other writers; small ones come from the shard's slab, which only
/// the flag's holder may allocate from, and are made under the flag (a copy of a
/// few dozen bytes).
pub(crate) enum Pending<'a> {
    /// Allocated and filled already (a large entry).
    Ready(OwnedEntry<'a>),
    /// To be made from the slab under the flag.
    Small {
        slab: &'a Slab,
        key: &'a [u8],
        value: &'a [u8],
        trailer: Trailer,
    },
}

impl<'a> Pending<'a> {
    /// Prepares the entry for `key` and `value` (lengths must have been checked)
    /// in the shard whose slab is `slab`.
    pub(crate) fn new(
        slab: &'a Slab,
        key: &'a [u8],
        value: &'a [u8],
        trailer: Trailer,
    ) -> Result<Pending<'a>> {
        debug_assert!(key.len() <= MAX_KEY_LEN && value.len() <= MAX_VALUE_LEN);
        let size = size(key.len(), value.len(), trailer.meta());
        if Slab::serves(size) {
            return Ok(Pending::Small {
                slab,
                key,
                value,
                trailer,
            });
        }
        // Cannot fail: lengths are bounded by MAX_KEY_LEN and MAX_VALUE_LEN, far
        // below isize::MAX.
        let layout = Layout::from_size_align(size, ALIGN).expect("entry layout");
        // SAFETY: the layout has a non-zero size (the header alone is 8 bytes).
        let base = NonNull::new(unsafe { alloc::alloc(layout) })
            .ok_or(Error::OutOfMemory { bytes: size })?;
        // SAFETY: a fresh allocation of `size` bytes, aligned to 8.
        Ok(Pending::Ready(unsafe {
            fill(base, slab, key, value, trailer)
        }))
    }

    /// The slab the entry is (or will be) made with.
    #[inline]
    pub(crate) fn slab(&self) -> &'a Slab {
        match self {
            Pending::Ready(entry) => entry.slab,
            Pending::Small { slab, .. } => slab,
        }
    }

    /// The entry, allocating it from the slab if it is small.
    ///
    /// # Safety
    /// The caller holds the write flag that serialises the slab's shard.
    #[inline]
    pub(crate) unsafe fn finish(self) -> Result<OwnedEntry<'a>> {
        match self {
            Pending::Ready(entry) => Ok(entry),
            Pending::Small {
                slab,
                key,
                value,
                trailer,
            } => {
                let size = size(key.len(), value.len(), trailer.meta());
                // SAFETY: forwarded contract.
                let base = unsafe { slab.alloc(size) }.ok_or(Error::OutOfMemory { bytes: size })?;
                // SAFETY: a free slab block of at least `size` bytes, aligned to 8.
                Ok(unsafe { fill(base, slab, key, value, trailer) })
            }
        }
    }
}

/// Writes the header, the key, the value and the trailer into `base` (a node
/// index is written as 0, to be set by [`OwnedEntry::set_node`]).
///
/// # Safety
/// `base` is writable for `size(key.len(), value.len(), trailer.meta())` bytes,
/// aligned to 8, unused by anyone else, and allocated as `free` expects (slab or
/// global, by size) from `slab` or the global allocator.
unsafe fn fill<'m>(
    base: NonNull<u8>,
    slab: &'m Slab,
    key: &[u8],
    value: &[u8],
    trailer: Trailer,
) -> OwnedEntry<'m> {
    let entry = base.cast::<Entry>();
    // SAFETY: per the contract the header write, both copies and the trailer
    // writes stay inside the block and do not overlap the caller's slices.
    unsafe {
        entry.as_ptr().write(Entry {
            key_len: key.len() as u16,
            meta: trailer.meta(),
            value_len: value.len() as u32,
        });
        let bytes = base.as_ptr().add(HEADER);
        ptr::copy_nonoverlapping(key.as_ptr(), bytes, key.len());
        ptr::copy_nonoverlapping(value.as_ptr(), bytes.add(key.len()), value.len());
        let mut at = bytes.add(key.len() + value.len());
        if let Some(deadline) = trailer.deadline {
            at.cast::<u64>().write_unaligned(deadline);
            at = at.add(8);
        }
        if trailer.node {
            at.cast::<u32>().write_unaligned(0);
        }
    }
    OwnedEntry { ptr: entry, slab }
}

impl OwnedEntry<'_> {
    /// Makes an entry right away (tests: the caller is the slab's only allocator).
    ///
    /// # Safety
    /// No other thread allocates from `slab` meanwhile.
    #[cfg(all(test, not(loom)))]
    pub(crate) unsafe fn new<'m>(
        slab: &'m Slab,
        key: &'m [u8],
        value: &'m [u8],
    ) -> Result<OwnedEntry<'m>> {
        // SAFETY: forwarded contract.
        unsafe { Pending::new(slab, key, value, Trailer::default())?.finish() }
    }

    /// The entry's pointer (still owned: not yet published).
    pub(crate) fn as_ptr(&self) -> *const Entry {
        self.ptr.as_ptr()
    }

    /// Sets the policy node index of an entry made with a node trailer. The entry
    /// is not published yet, so nobody else reads it.
    pub(crate) fn set_node(&mut self, node: u32) {
        // SAFETY: we own the entry exclusively; `node_at` checks the flag and
        // stays inside the block.
        unsafe {
            let at = node_at(self.ptr.as_ptr()).expect("an entry made with a node trailer");
            at.cast_mut().cast::<u32>().write_unaligned(node);
        }
    }

    /// Gives up ownership: the caller has published the pointer into a table.
    pub(crate) fn into_raw(self) -> *mut Entry {
        let ptr = self.ptr.as_ptr();
        std::mem::forget(self);
        ptr
    }
}

impl Drop for OwnedEntry<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the allocation, nothing else points to it, and it came
        // from `slab` or the global allocator as `fill` requires.
        unsafe { free(self.ptr.as_ptr(), self.slab) }
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
/// 8-byte aligned (slab blocks are packed), so a small entry (header, 16-byte
/// key, 32-byte value: 56 bytes) straddles two lines most of the time; fetching the second line
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

/// Frees an entry: into its shard's slab if it is small, else to the global
/// allocator.
///
/// # Safety
/// `entry` came from [`OwnedEntry::into_raw`] (or is owned by an `OwnedEntry` being
/// dropped) of an entry made with `slab`, no table links it any more, and no
/// reader can still reach it (its retirement went through the epoch, or the map
/// is being dropped).
pub(crate) unsafe fn free(entry: *mut Entry, slab: &Slab) {
    // SAFETY: per the contract the header is live.
    let size = unsafe { size_of(entry) };
    if Slab::serves(size) {
        // SAFETY: per the contract the block is the entry's alone, from `slab`.
        unsafe { slab.free(NonNull::new_unchecked(entry.cast::<u8>()), size) };
    } else {
        // SAFETY: per the contract; a large entry is an allocation of its own.
        unsafe { dealloc_large(entry, size) };
    }
}

/// Frees an entry that is not in a slab; leaves a slab block alone (its slab's
/// drop gives it back with its chunk).
///
/// # Safety
/// As for [`free`].
pub(crate) unsafe fn free_if_large(entry: *mut Entry) {
    // SAFETY: per the contract the header is live.
    let size = unsafe { size_of(entry) };
    if !Slab::serves(size) {
        // SAFETY: per the contract; a large entry is an allocation of its own.
        unsafe { dealloc_large(entry, size) };
    }
}

/// Gives a large entry's allocation back to the global allocator.
///
/// # Safety
/// `entry` is an unreachable entry of `size` bytes (its [`size_of`]) that the
/// slab does not serve, allocated by [`Pending::new`].
unsafe fn dealloc_large(entry: *mut Entry, size: usize) {
    // SAFETY: per the contract it was allocated with this size and alignment.
    unsafe {
        alloc::dealloc(
            entry.cast::<u8>(),
            Layout::from_size_align_unchecked(size, ALIGN),
        )
    };
}

/// Bytes the entry at `entry` was made for (header and trailer included,
/// unrounded).
///
/// # Safety
/// As for [`key`].
#[inline]
pub(crate) unsafe fn size_of(entry: *const Entry) -> usize {
    // SAFETY: forwarded contract: the header is live.
    unsafe {
        size(
            (*entry).key_len as usize,
            (*entry).value_len as usize,
            (*entry).meta,
        )
    }
}

/// Bytes the entry at `entry` occupies (header included; a slab block's rounding
/// too).
///
/// # Safety
/// As for [`key`].
pub(crate) unsafe fn footprint(entry: *const Entry) -> usize {
    // SAFETY: forwarded contract: the header is live.
    rounded(unsafe { size_of(entry) })
}

/// Where the trailer starts.
///
/// # Safety
/// As for [`key`].
#[inline]
unsafe fn trailer_at(entry: *const Entry) -> *const u8 {
    // SAFETY: forwarded contract: the header is live; the offset stays inside
    // the block (the trailer follows the value).
    unsafe {
        entry
            .cast::<u8>()
            .add(HEADER + (*entry).key_len as usize + (*entry).value_len as usize)
    }
}

/// The entry's deadline, if it has one.
///
/// # Safety
/// As for [`key`].
#[inline]
pub(crate) unsafe fn deadline(entry: *const Entry) -> Option<u64> {
    // SAFETY: forwarded contract; the flag says the 8 bytes are there.
    unsafe {
        if (*entry).meta & HAS_DEADLINE == 0 {
            return None;
        }
        Some(trailer_at(entry).cast::<u64>().read_unaligned())
    }
}

/// Whether the entry has expired at clock reading `now` (false without a
/// deadline: the common case costs one load of the header, already fetched).
///
/// # Safety
/// As for [`key`].
#[inline]
pub(crate) unsafe fn expired(entry: *const Entry, now: impl FnOnce() -> u64) -> bool {
    // SAFETY: forwarded contract.
    match unsafe { deadline(entry) } {
        None => false,
        Some(deadline) => now() >= deadline,
    }
}

/// Where the node index is, if the entry has one.
///
/// # Safety
/// As for [`key`].
#[inline]
unsafe fn node_at(entry: *const Entry) -> Option<*const u8> {
    // SAFETY: forwarded contract; the flags say which fields are there.
    unsafe {
        let meta = (*entry).meta;
        if meta & HAS_NODE == 0 {
            return None;
        }
        let skip = if meta & HAS_DEADLINE != 0 { 8 } else { 0 };
        Some(trailer_at(entry).add(skip))
    }
}

/// The entry's policy node index, if it has one.
///
/// # Safety
/// As for [`key`].
#[inline]
pub(crate) unsafe fn node(entry: *const Entry) -> Option<u32> {
    // SAFETY: forwarded contract; `node_at` stays inside the block.
    unsafe { node_at(entry).map(|at| at.cast::<u32>().read_unaligned()) }
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
