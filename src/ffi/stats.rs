//! `mapcache_stats`: the cache's always-on counters ([`crate::Stats`]) for C
//! hosts, versioned by its first field as `mapcache_config` is.
//!
//! Compatibility rule: counters are only ever appended. The host states the
//! size of its struct; the library writes exactly that many bytes: the counters
//! both know, then zeros for counters of a newer header this library does not
//! keep ("not counted").

use std::mem::size_of;

use super::args;
use super::boundary;
use super::handle::{self, mapcache_t};
use super::host_struct;
use super::status::{mapcache_status, MAPCACHE_OK};
use crate::Stats;

/// A cache's counters, filled by `mapcache_stats_get`. Set `struct_size` to
/// `sizeof(mapcache_stats)` before the call; counters are only ever appended in
/// later versions.
///
/// Every counter counts from the cache's creation. On a cache no other thread
/// is using they add up: `hits + misses` is the number of lookups (each
/// `mapcache_get`, `mapcache_get_value`, `mapcache_get_object`,
/// `mapcache_get_with`, each key of `mapcache_get_many`, the lookup inside
/// `mapcache_get_or_insert`, and the first lookup of each `mapcache_get_or_load`;
/// `mapcache_contains`, iteration and `mapcache_compare_and_swap` are not
/// lookups), and `inserts - evictions - expirations - deletes` is `entries`.
/// While other threads run, the counters are read one after another, not at
/// one instant.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mapcache_stats {
    /// `sizeof(mapcache_stats)` as the host knows it, set by the host before
    /// the call (the library reads it, writes only that many bytes, and leaves
    /// it as it was).
    pub struct_size: usize,
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found no entry, or an expired one.
    pub misses: u64,
    /// New keys stored, by any write (loads included).
    pub inserts: u64,
    /// Values of present keys replaced (successful compare-and-swaps included).
    pub updates: u64,
    /// Entries removed by `mapcache_delete`, `mapcache_delete_many` or
    /// `mapcache_clear`.
    pub deletes: u64,
    /// Entries removed by the eviction policy to keep a bounded cache within
    /// its bounds (`rejections` included).
    pub evictions: u64,
    /// Of the evictions, new entries the policy refused to keep in favour of the
    /// entry they would have displaced (admission rejections), decided as they
    /// leave the admission window, as a rule at a later put than their own
    /// (see `mapcache_put`).
    pub rejections: u64,
    /// Expired entries removed (on access, by the sweep, or replaced by a write).
    pub expirations: u64,
    /// Loads of `mapcache_get_or_load` whose loader returned 0.
    pub load_successes: u64,
    /// Loads whose loader returned a non-zero status.
    pub load_failures: u64,
    /// Time spent in loaders, over all loads, in nanoseconds.
    pub load_time_ns: u64,
    /// Tables doubled so far.
    pub grows: u64,
    /// Entries held (expired ones not yet removed included).
    pub entries: u64,
    /// Bytes the entries held are charged (see `mapcache_config.max_bytes`).
    pub bytes: u64,
    /// Exclusive-mode misuses detected (`MAPCACHE_E_CONCURRENT_WRITE` and
    /// `MAPCACHE_E_CONCURRENT_READ_WRITE` reports).
    pub misuses: u64,
}

/// The size of the first `mapcache_stats` (ABI 3): the smallest `struct_size`
/// accepted.
const V1_SIZE: usize = size_of::<mapcache_stats>();

// No implicit padding: a size_t and 15 counters of 8 bytes (64-bit targets only,
// see `arena`).
const _: () = assert!(V1_SIZE == 128);

fn of(stats: &Stats, struct_size: usize) -> mapcache_stats {
    let wide = |n: usize| n as u64;
    mapcache_stats {
        struct_size,
        hits: stats.hits,
        misses: stats.misses,
        inserts: stats.inserts,
        updates: stats.updates,
        deletes: stats.deletes,
        evictions: stats.evictions,
        rejections: stats.rejections,
        expirations: stats.expirations,
        load_successes: stats.load_successes,
        load_failures: stats.load_failures,
        load_time_ns: u64::try_from(stats.load_time.as_nanos()).unwrap_or(u64::MAX),
        grows: stats.grows,
        entries: wide(stats.entries),
        bytes: wide(stats.bytes),
        misuses: stats.misuses,
    }
}

/// Writes `stats` into the host's struct of `size` bytes at `out`.
///
/// # Safety
/// `out` must be valid for writes of `size` bytes.
unsafe fn write(out: *mut mapcache_stats, size: usize, stats: &mapcache_stats) {
    // SAFETY: forwarded (contract); `stats` is a local value.
    unsafe { host_struct::write(out, size, stats) }
}

/// Fills `*out` with the counters of `cache` (see `mapcache_stats`).
///
/// Set `out->struct_size = sizeof(mapcache_stats)` first: the library writes
/// exactly that many bytes (the counters this library keeps, then zeros for
/// any counter of a newer header it does not know) and leaves `struct_size` as
/// it was, so a host built against an older header is never written past its
/// struct. Cheap: a sum over the cache's shards and counter stripes, with no
/// lock; it never counts as a lookup and never fails for exclusive mode's
/// contract.
///
/// Ownership: `*out` is the caller's. Thread-safety: any thread, concurrently
/// with any call on `cache` but `mapcache_free`.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `out` NULL, or `out->struct_size` smaller than the
///   first `mapcache_stats` (128 bytes) or larger than 4096 (nothing was
///   written); `cache` NULL (the counters are set to 0).
/// - `MAPCACHE_E_INVALID_HANDLE` (the counters are set to 0),
///   `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `out` must be NULL or valid for reading a `size_t` and writing
/// `out->struct_size` bytes (any alignment).
#[no_mangle]
pub unsafe extern "C" fn mapcache_stats_get(
    cache: *mut mapcache_t,
    out: *mut mapcache_stats,
) -> mapcache_status {
    boundary::run("mapcache_stats_get", || {
        args::out(out, "out")?;
        // SAFETY: non-null and readable for its first field (contract).
        let size =
            unsafe { host_struct::stated_size(out.cast(), V1_SIZE, "mapcache_stats", "out") }?;
        match handle::with_map(cache, |inner| Ok(inner.map.stats())) {
            Ok(stats) => {
                // SAFETY: writable for `size` bytes (contract).
                unsafe { write(out, size, &of(&stats, size)) };
                Ok(MAPCACHE_OK)
            }
            Err(fail) => {
                // No stale counters after an error (the header's rule).
                // SAFETY: as above.
                unsafe { write(out, size, &of(&Stats::default(), size)) };
                Err(fail)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::host_struct::MAX_STRUCT_SIZE;
    use super::*;
    use crate::ffi::status::{MAPCACHE_E_INVALID_ARG, MAPCACHE_E_INVALID_HANDLE};

    const GUARD: usize = 32;

    /// A host buffer of `size` bytes (struct_size = `size`), then guard bytes.
    fn host(size: usize) -> Vec<u8> {
        let mut buf = vec![0xAB; size + GUARD];
        buf[..size_of::<usize>()].copy_from_slice(&size.to_ne_bytes());
        buf
    }

    fn get(cache: *mut mapcache_t, buf: &mut [u8]) -> mapcache_status {
        // SAFETY: the buffer holds struct_size bytes (host() makes it so).
        unsafe { mapcache_stats_get(cache, buf.as_mut_ptr().cast()) }
    }

    #[test]
    fn writes_exactly_the_hosts_size() {
        let mut cache = ptr::null_mut();
        // SAFETY: NULL config, valid out-pointer.
        assert_eq!(
            unsafe { handle::mapcache_new(ptr::null(), &mut cache) },
            MAPCACHE_OK
        );
        // A newer host's larger struct: ours, then zeros, then its guard.
        let size = V1_SIZE + 16;
        let mut buf = host(size);
        assert_eq!(get(cache, &mut buf), MAPCACHE_OK);
        assert_eq!(&buf[..8], &size.to_ne_bytes(), "struct_size kept");
        assert!(buf[V1_SIZE..size].iter().all(|&b| b == 0));
        assert!(buf[size..].iter().all(|&b| b == 0xAB), "guard written");
        // Sizes out of range: nothing written past struct_size's bytes.
        for size in [0, 8, V1_SIZE - 1, MAX_STRUCT_SIZE + 1] {
            let mut buf = host(V1_SIZE);
            buf[..8].copy_from_slice(&size.to_ne_bytes());
            assert_eq!(get(cache, &mut buf), MAPCACHE_E_INVALID_ARG);
            assert!(buf[8..].iter().all(|&b| b == 0xAB), "size {size}");
        }
        // SAFETY: made above, freed once.
        unsafe { handle::mapcache_free(cache) };
        // A freed cache: INVALID_HANDLE, and the counters zeroed.
        let mut buf = host(V1_SIZE);
        assert_eq!(get(cache, &mut buf), MAPCACHE_E_INVALID_HANDLE);
        assert!(buf[8..V1_SIZE].iter().all(|&b| b == 0));
        assert!(buf[V1_SIZE..].iter().all(|&b| b == 0xAB));
    }
}
