//! `mapcache_t`: the handle a host holds, and its life (`mapcache_new`,
//! `mapcache_free`).
//!
//! A `mapcache_t *` is a handle value of the never-freed handle `Arena` (see
//! `arena`): it names a slot, which holds an epoch-protected pointer to the
//! `Inner` that owns the [`Map`], and a generation of that slot. Every call decodes
//! it, pins the epoch, loads the pointer, checks that the handle's generation is
//! still the slot's live one, and uses the map; `mapcache_free` marks the handle
//! freed, swaps the pointer to NULL and defers the map's destruction until no
//! pinned call can still be using it, and the slot is reused by a later
//! `mapcache_new` under the next generation. So a freed handle is
//! `MAPCACHE_E_INVALID_HANDLE` however often its slot is reused since, and a
//! call that races `mapcache_free` (a contract violation) either finishes on
//! the old map or gets `MAPCACHE_E_INVALID_HANDLE`, memory-safe either way. The
//! read path only reads the slot and this thread's own epoch record (no shared
//! counter to bump).
//!
//! The pin is on a collector of the FFI layer's own, not the core's: a
//! call-long pin on the core's collector would make the core see every write
//! through the C ABI as a write made while pinned, which never waits for
//! reclamation (the core relieves garbage only when unpinned). Handles are rare
//! garbage; the two epochs never wait on each other.

use std::ptr;
use std::sync::atomic::Ordering;

use std::sync::LazyLock;

use crossbeam_epoch::{Atomic, Collector, Guard, Owned, Shared};

use super::arena::{self, Arena, Handle, Kind, Status};
use super::args;
use super::boundary::{self, Fail};
use super::config::{self, mapcache_config};
use super::status::{
    mapcache_status, MAPCACHE_E_INVALID_HANDLE, MAPCACHE_E_NO_MEMORY, MAPCACHE_OK,
};
use crate::sync::epoch::Participant;
use crate::{Map, Mode};

/// An open cache. Opaque: a host only ever holds a pointer to it, obtained from
/// `mapcache_new` and given back with `mapcache_free`. The pointer is a handle
/// value, not the address of memory: never dereference it (it lies outside the
/// address space of the process, so doing so faults).
pub struct mapcache {
    _opaque: [u8; 0],
}

/// `mapcache_t` is the name hosts use for `struct mapcache`.
pub type mapcache_t = mapcache;

/// What a cache handle's slot holds.
#[derive(Default)]
struct Slot {
    /// The map, NULL when the slot's handle is not live.
    inner: Atomic<Inner>,
}

/// What a live handle owns.
pub(crate) struct Inner {
    pub(crate) map: Map,
    /// The mode it was created with (the debug hook needs it).
    pub(crate) mode: Mode,
}

static HANDLES: Arena<Slot> = Arena::new(Kind::Cache);

/// The collector that protects `Inner`s (see the module docs).
static COLLECTOR: LazyLock<Collector> = LazyLock::new(Collector::new);

std::thread_local! {
    // A `Participant`, not a bare `LocalHandle`: it sweeps the collector's list
    // when the thread exits, so that leak checkers see no participant of an
    // exited thread behind a tagged pointer (see `crate::sync::epoch`).
    static LOCAL: Participant = Participant::new(&COLLECTOR);
}

/// Pins this thread on the FFI collector.
#[inline]
fn pin() -> Guard {
    LOCAL
        .try_with(Participant::pin)
        // This thread's TLS is being torn down (a call from a TLS destructor): a
        // temporary participant, released when the guard drops.
        .unwrap_or_else(|_| COLLECTOR.register().pin())
}

/// A decoded `mapcache_t *`: a cache slot at one generation, live or not.
#[derive(Clone, Copy)]
pub(crate) struct Shell(Handle<Slot>);

/// The shell `c` designates, or the failure for a NULL or foreign pointer.
/// (Whether it is live is checked by [`Shell::with`], under the pin.)
#[inline]
pub(crate) fn shell(c: *const mapcache_t) -> Result<Shell, Fail> {
    if c.is_null() {
        return Err(Fail::arg("cache is NULL"));
    }
    HANDLES.find(c).map(Shell).ok_or_else(foreign)
}

#[cold]
fn foreign() -> Fail {
    Fail::new(
        MAPCACHE_E_INVALID_HANDLE,
        "cache is not a mapcache_t * returned by mapcache_new (a foreign or corrupted pointer)",
    )
}

impl Shell {
    /// Runs `f` on the live map, pinned, or fails with `MAPCACHE_E_INVALID_HANDLE`.
    #[inline]
    pub(crate) fn with<R>(self, f: impl FnOnce(&Inner) -> Result<R, Fail>) -> Result<R, Fail> {
        let guard = pin();
        let inner = self.0.value().inner.load(Ordering::Acquire, &guard);
        // Checked after the load: `mapcache_new` makes a reused slot live under
        // its new generation before it stores the new map (Release), so a stale
        // handle that loaded the new map sees the new generation here.
        if !self.0.is_live() {
            return Err(self.not_live());
        }
        // SAFETY: a non-null `inner` was stored from an `Owned` by mapcache_new and
        // is destroyed only through `defer_destroy` after being swapped out, which
        // cannot run while this thread stays pinned by `guard`.
        match unsafe { inner.as_ref() } {
            Some(inner) => f(inner),
            None => Err(self.not_live()),
        }
    }

    #[cold]
    fn not_live(self) -> Fail {
        let message = match self.0.status() {
            Status::Stale => {
                "cache was freed by mapcache_free (a stale handle: its memory now serves \
                 a newer cache, which this call did not touch)"
            }
            Status::NeverIssued => return foreign(),
            // Freed, or (racing the free) live again a moment later.
            Status::Freed | Status::Live => "cache was freed by mapcache_free (use after free)",
        };
        Fail::new(MAPCACHE_E_INVALID_HANDLE, message)
    }
}

/// Runs `f` on the live map of `c`.
#[inline]
pub(crate) fn with_map<R>(
    c: *const mapcache_t,
    f: impl FnOnce(&Inner) -> Result<R, Fail>,
) -> Result<R, Fail> {
    shell(c)?.with(f)
}

/// Runs `f` on the [`Map`] behind the live handle `cache` (pinned for the duration
/// of `f`); `None` if `cache` is not a live handle. Not part of the C ABI: it lets
/// Rust benchmarks and tests compare the C entry points with the Rust API on the
/// very same table.
#[doc(hidden)]
pub fn with_map_of<R>(cache: *const mapcache_t, f: impl FnOnce(&Map) -> R) -> Option<R> {
    with_map(cache, |inner| Ok(f(&inner.map))).ok()
}

/// Creates a cache.
///
/// `cfg` may be NULL for the defaults; otherwise it must have been filled by
/// `mapcache_config_init` and then adjusted (its `struct_size` tells the library
/// which fields the host knows). The library reads `*cfg` during the call only.
/// On success `*out` receives the new handle; on any error `*out` is set to NULL
/// (when `out` itself is not NULL).
///
/// Ownership: the caller owns the returned handle and must release it with
/// `mapcache_free` exactly once.
/// Thread-safety: any thread; the new handle may be used from any thread.
///
/// Returns:
/// - `MAPCACHE_OK`: `*out` is the new cache.
/// - `MAPCACHE_E_INVALID_ARG`: `out` is NULL.
/// - `MAPCACHE_E_INVALID_CONFIG`: `cfg->struct_size` is smaller than this ABI's
///   first `mapcache_config`, between the sizes of two of its versions (see
///   `mapcache_config_init`) or larger than 4096, a field this library does not
///   know is non-zero, or a field is out of range (`mode`, `misuse_policy`,
///   `rehash_engine`, `clock`, `gpu_mode` not one of their constants,
///   `reserved` or `reserved2` not 0, `shards` not 0 or a power of two at most
///   65536, `initial_capacity` too large, an explicit `shards` larger than a
///   non-zero `max_entries`, a non-zero `max_bytes` whose share per shard is
///   less than the charge of the smallest entry (an empty key and value as
///   `mapcache_put` writes it; the message gives both numbers),
///   `gpu_plugin_path` empty or longer than `MAPCACHE_MAX_PLUGIN_PATH`); the
///   message names the field.
/// - `MAPCACHE_E_GPU`: `gpu_mode` is `MAPCACHE_GPU_FORCE` and the GPU engine
///   cannot be loaded (the message says why: no driver, no device, no plugin).
/// - `MAPCACHE_E_NO_MEMORY`: the initial table could not be allocated, or
///   2097152 caches are live (the most there can be at once).
/// - `MAPCACHE_E_INTERNAL`: a bug (caught panic).
///
/// # Safety
/// `cfg` must be NULL or point to `cfg->struct_size` readable bytes, whose
/// `gpu_plugin_path` (if within them) is NULL or a NUL-terminated string; `out`
/// must be NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn mapcache_new(
    cfg: *const mapcache_config,
    out: *mut *mut mapcache_t,
) -> mapcache_status {
    boundary::run("mapcache_new", || {
        args::out(out, "out")?;
        // `*out` is written before `cfg` is read (NULL, so that every error
        // leaves it NULL): an `out` inside `cfg` would change the config.
        // SAFETY: cfg is NULL or readable for its struct_size field (contract).
        let cfg_region = unsafe { config::region(cfg) };
        let overlap = args::no_overlap(&[args::Region::scalar(out, "out")], &[cfg_region]);
        // SAFETY: out is non-null and, by the contract, writable.
        unsafe { args::put(out, ptr::null_mut()) };
        overlap?;
        // SAFETY: cfg is NULL or readable for its struct_size bytes (contract).
        let (config, mode) = unsafe { config::read(cfg) }?;
        let handle = register(Map::new(config)?, mode)?;
        // SAFETY: as above.
        unsafe { args::put(out, handle) };
        Ok(MAPCACHE_OK)
    })
}

/// A new live handle owning `map` (made in `mode`).
pub(crate) fn register(map: Map, mode: Mode) -> Result<*mut mapcache_t, Fail> {
    let inner = Owned::new(Inner { map, mode });
    let handle = HANDLES.alloc().map_err(|arena::Exhausted| {
        Fail::new(
            MAPCACHE_E_NO_MEMORY,
            format!(
                "{} caches are live, the most there can be",
                arena::MAX_SLOTS
            ),
        )
    })?;
    // After alloc made the slot live under the handle's generation (see
    // Shell::with).
    handle.value().inner.store(inner, Ordering::Release);
    Ok(HANDLES.address(handle))
}

/// Frees a cache and every entry in it. NULL is a no-op.
///
/// After this call `cache` must not be used again. A use of it returns
/// `MAPCACHE_E_INVALID_HANDLE` ("cache was freed by mapcache_free"), however
/// many caches were created and freed since, and never reaches another cache
/// (each `mapcache_new` returns a pointer value never returned before, even when
/// it reuses the freed cache's memory); freeing it twice is detected the same
/// way and ignored (the message is set). Iterators created on
/// the cache stay valid objects: their `mapcache_iter_next` returns
/// `MAPCACHE_E_INVALID_HANDLE` and they must still be freed with
/// `mapcache_iter_free`.
///
/// Memory: the map is destroyed as soon as no call on it is still running in
/// another thread (epoch-based reclamation), normally before this returns.
///
/// Thread-safety: must not race with other calls on the same `cache` (a call that
/// loses that race returns `MAPCACHE_E_INVALID_HANDLE` or completes on the old map;
/// either way without undefined behaviour). Must not be called from inside a
/// callback of a call on the same cache: a `mapcache_get_with` callback, a
/// `mapcache_get_or_load` loader, or a `mapcache_save` progress callback.
///
/// Errors (no return value; they set `mapcache_last_error()`): `cache` is foreign,
/// or was already freed.
///
/// # Safety
/// `cache` must be NULL or a pointer obtained from `mapcache_new`.
#[no_mangle]
pub unsafe extern "C" fn mapcache_free(cache: *mut mapcache_t) {
    boundary::run_with("mapcache_free", (), (), || {
        if cache.is_null() {
            return Ok(());
        }
        let Shell(handle) = shell(cache)?;
        handle.kill().map_err(|status| {
            let message = match status {
                Status::Stale => {
                    "cache was already freed (double free of a stale handle: the newer \
                     cache in its memory was left alone)"
                }
                Status::NeverIssued => return foreign(),
                Status::Freed | Status::Live => "cache was already freed (double free)",
            };
            Fail::new(MAPCACHE_E_INVALID_HANDLE, message)
        })?;
        // Only the winner of the kill gets here, once per mapcache_new.
        let guard = pin();
        let old = handle
            .value()
            .inner
            .swap(Shared::null(), Ordering::AcqRel, &guard);
        if !old.is_null() {
            // SAFETY: `old` was stored from an Owned by mapcache_new and is now
            // unreachable from the shell; threads that loaded it are pinned, and
            // the destruction waits for them to unpin.
            unsafe { guard.defer_destroy(old) };
        }
        guard.flush();
        drop(guard);
        // Push the epoch forward so that, when no other thread is inside a call,
        // the map is destroyed now rather than at some later collection.
        for _ in 0..3 {
            pin().flush();
        }
        HANDLES.release(handle);
        Ok(())
    })
}
