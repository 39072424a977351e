//! `mapcache_iter_t`: a cursor over a cache's entries for C hosts.
//!
//! An iterator holds a position ([`Cursor`]), not the map: between calls it pins
//! nothing and keeps nothing alive. Each `mapcache_iter_next` that needs more
//! entries pins the epoch, checks that its cache handle is still live (a handle
//! carries its slot's generation, so a freed cache is `MAPCACHE_E_INVALID_HANDLE`
//! even once a later `mapcache_new` reuses its slot), and copies the next batch
//! (one bucket chain) into the iterator's own buffer, from which it hands out
//! pointers that stay valid until the next call.
//!
//! Iterators are handle values of a never-freed `Arena` like cache handles, so a
//! freed (however long ago) or foreign iterator pointer is detected without
//! undefined behaviour. An iterator is not meant to be shared; a `busy` flag turns
//! concurrent use of one iterator into `MAPCACHE_E_INVALID_ARG` instead of a data
//! race.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

use super::arena::{self, Arena, Handle, Kind, Status};
use super::args;
use super::boundary::{self, Fail};
use super::handle::{self, mapcache_t, Shell};
use super::status::{
    mapcache_status, MAPCACHE_E_INVALID_HANDLE, MAPCACHE_E_NO_MEMORY, MAPCACHE_NOT_FOUND,
    MAPCACHE_OK,
};
use crate::Cursor;

/// An iteration over a cache. Opaque: obtained from `mapcache_iter_new`, released
/// with `mapcache_iter_free`. Like `mapcache_t *`, the pointer is a handle value,
/// never to be dereferenced.
pub struct mapcache_iter {
    _opaque: [u8; 0],
}

/// `mapcache_iter_t` is the name hosts use for `struct mapcache_iter`.
pub type mapcache_iter_t = mapcache_iter;

/// What an iterator handle's slot holds.
struct Slot {
    /// Held by the one call that may touch `state`.
    busy: AtomicBool,
    state: UnsafeCell<Option<State>>,
}

// SAFETY: `state` is only accessed by the thread that holds `busy` (acquired with
// Acquire, released with Release), so accesses are never concurrent and each
// happens-after the previous one. `State` is Send (plain data and a handle to a
// Sync cache slot).
unsafe impl Sync for Slot {}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            busy: AtomicBool::new(false),
            state: UnsafeCell::new(None),
        }
    }
}

struct State {
    /// The cache this iterator walks, at the generation it had when the
    /// iterator was made.
    shell: Shell,
    cursor: Cursor,
    /// Keys and values of the current batch, back to back.
    bytes: Vec<u8>,
    /// (offset, key length, value length) of each entry of the batch.
    entries: Vec<(usize, usize, usize)>,
    /// The next entry of the batch to hand out.
    next: usize,
    /// The cursor is exhausted.
    done: bool,
}

static ITERS: Arena<Slot> = Arena::new(Kind::Iterator);

/// Exclusive access to an iterator's state for the length of one call.
struct Busy {
    it: &'static Slot,
}

impl Busy {
    /// Takes the busy flag of `it`, failing if another thread holds it.
    fn try_take(it: &'static Slot) -> Result<Busy, Fail> {
        if it
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            Ok(Busy { it })
        } else {
            Err(Fail::arg(
                "it is being used by another thread at the same time (an iterator must \
                 be used by one thread at a time)",
            ))
        }
    }

    /// Takes the busy flag of `it`, waiting out a call in progress on it (which is
    /// short: it never runs host code).
    fn take(it: &'static Slot) -> Busy {
        loop {
            if let Ok(busy) = Busy::try_take(it) {
                return busy;
            }
            std::thread::yield_now();
        }
    }

    fn state(&mut self) -> &mut Option<State> {
        // SAFETY: this Busy holds the flag, so no other reference to the state
        // exists (see the Sync impl); `&mut self` makes this one unique.
        unsafe { &mut *self.it.state.get() }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.it.busy.store(false, Ordering::Release);
    }
}

/// The iterator `it` designates, if live; the failure for a NULL, foreign, freed
/// or stale pointer otherwise. Call again with the busy flag held before
/// trusting the slot's state: the handle may be freed in between.
fn find(it: *const mapcache_iter_t) -> Result<Handle<Slot>, Fail> {
    if it.is_null() {
        return Err(Fail::arg("it is NULL"));
    }
    let handle = ITERS.find(it).ok_or_else(foreign_iter)?;
    live(handle)?;
    Ok(handle)
}

/// Ok if `handle` is live, else the failure that says why not.
fn live(handle: Handle<Slot>) -> Result<(), Fail> {
    if handle.is_live() {
        return Ok(());
    }
    Err(not_live_iter(handle.status()))
}

#[cold]
fn not_live_iter(status: Status) -> Fail {
    let message = match status {
        Status::NeverIssued => return foreign_iter(),
        Status::Stale => {
            "it was freed by mapcache_iter_free (a stale handle: its memory now serves a \
             newer iterator, which this call did not touch)"
        }
        Status::Freed | Status::Live => "it was freed by mapcache_iter_free (use after free)",
    };
    Fail::new(MAPCACHE_E_INVALID_HANDLE, message)
}

#[cold]
fn foreign_iter() -> Fail {
    Fail::new(
        MAPCACHE_E_INVALID_HANDLE,
        "it is not a mapcache_iter_t * returned by mapcache_iter_new (a foreign or corrupted pointer)",
    )
}

/// ============ 5. ITERATION ============
/// mapcache_iter_new, mapcache_iter_next, mapcache_iter_free.
///
/// Starts an iteration over `cache`: `*out` receives a new iterator positioned
/// before the first entry (NULL on every error, when `out` is not NULL).
///
/// The iteration is weakly consistent: it runs concurrently with writers; a key
/// present for the whole iteration is yielded exactly once, no
/// key is yielded twice, and keys inserted or removed meanwhile may or may not be.
/// The iterator does not keep the cache alive: after `mapcache_free(cache)`, its
/// `mapcache_iter_next` returns `MAPCACHE_E_INVALID_HANDLE`.
///
/// Ownership: the caller owns the iterator and must free it with
/// `mapcache_iter_free` (also after the cache is freed). Thread-safety: any thread;
/// the iterator may move between threads but must be used by one at a time.
///
/// Returns:
/// - `MAPCACHE_OK`.
/// - `MAPCACHE_E_INVALID_ARG`: `cache` or `out` NULL.
/// - `MAPCACHE_E_INVALID_HANDLE`: `cache` was freed or is foreign.
/// - `MAPCACHE_E_NO_MEMORY`: 2097152 iterators are live (the most there can be at
///   once).
/// - `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn mapcache_iter_new(
    cache: *mut mapcache_t,
    out: *mut *mut mapcache_iter_t,
) -> mapcache_status {
    let status = boundary::run("mapcache_iter_new", || {
        let shell = handle::shell(cache)?;
        args::out(out, "out")?;
        // SAFETY: non-null and writable (contract).
        unsafe { args::put(out, std::ptr::null_mut()) };
        shell.with(|_| Ok(()))?;
        let it = ITERS.alloc().map_err(|arena::Exhausted| {
            Fail::new(
                MAPCACHE_E_NO_MEMORY,
                format!(
                    "{} iterators are live, the most there can be",
                    arena::MAX_SLOTS
                ),
            )
        })?;
        let mut busy = Busy::take(it.value());
        *busy.state() = Some(State {
            shell,
            cursor: Cursor::default(),
            bytes: Vec::new(),
            entries: Vec::new(),
            next: 0,
            done: false,
        });
        drop(busy);
        let handle = ITERS.address(it);
        // SAFETY: as above.
        unsafe { args::put(out, handle) };
        Ok(MAPCACHE_OK)
    });
    // Also when `cache` was the bad argument, which is checked before `out`.
    // SAFETY: NULL or writable (contract).
    unsafe { args::reset_on_error(status, out, std::ptr::null_mut()) };
    status
}

/// Advances the iterator: on `MAPCACHE_OK`, `*key`/`*key_len` and
/// `*value`/`*value_len` receive the next entry.
///
/// Ownership: the key and value bytes belong to the iterator; they stay valid and
/// unchanged until the next call on `it` or `mapcache_iter_free(it)`, whichever
/// comes first, even if the entry is changed or removed from the cache meanwhile.
/// Do not free or write them. (A pointer may be non-NULL with length 0.)
///
/// Thread-safety: one thread at a time per iterator (a concurrent call on the same
/// iterator is refused with `MAPCACHE_E_INVALID_ARG`); any number of iterators and
/// other calls may run on the same cache concurrently.
///
/// Returns:
/// - `MAPCACHE_OK`: an entry.
/// - `MAPCACHE_NOT_FOUND`: the iteration is over (and stays over); the outputs are
///   set to NULL and 0, as they are on every error below (each that is not NULL).
/// - `MAPCACHE_E_INVALID_ARG`: `it`, `key`, `key_len`, `value` or `value_len` NULL;
///   `it` in use by another thread.
/// - `MAPCACHE_E_INVALID_HANDLE`: `it` was freed or is foreign, or its cache was
///   freed.
/// - `MAPCACHE_E_CONCURRENT_READ_WRITE` (exclusive mode): the iterator fetches
///   entries in steps (one bucket chain each), and each step is a read: this
///   step saw another thread's write in flight, before or after it. Its entries
///   are dropped, not returned; a further call retries the step if the write was
///   seen before it, and goes on with the next step if it was seen after it.
/// - `MAPCACHE_E_INTERNAL`.
///
/// # Safety
/// The four out-pointers must be writable.
#[no_mangle]
pub unsafe extern "C" fn mapcache_iter_next(
    it: *mut mapcache_iter_t,
    key: *mut *const u8,
    key_len: *mut usize,
    value: *mut *const u8,
    value_len: *mut usize,
) -> mapcache_status {
    let status = boundary::run("mapcache_iter_next", || {
        let it = find(it)?;
        args::out(key, "key")?;
        args::out(key_len, "key_len")?;
        args::out(value, "value")?;
        args::out(value_len, "value_len")?;
        args::no_overlap(
            &[
                args::Region::scalar(key, "key"),
                args::Region::scalar(key_len, "key_len"),
                args::Region::scalar(value, "value"),
                args::Region::scalar(value_len, "value_len"),
            ],
            &[],
        )?;
        let mut busy = Busy::try_take(it.value())?;
        // Again under the flag: a free (which takes the flag) may have come
        // between `find` and here, and the slot been reused since.
        live(it)?;
        let Some(state) = busy.state().as_mut() else {
            return Err(Fail::new(
                MAPCACHE_E_INVALID_HANDLE,
                "it is not a live iterator",
            ));
        };
        let entry = state.advance()?;
        let (k, kl, v, vl) = match entry {
            Some((offset, kl, vl)) => {
                let base = state.bytes.as_ptr();
                (
                    base.wrapping_add(offset),
                    kl,
                    base.wrapping_add(offset + kl),
                    vl,
                )
            }
            None => (std::ptr::null(), 0, std::ptr::null(), 0),
        };
        // SAFETY: the four pointers were checked non-null and are writable
        // (contract).
        unsafe {
            args::put(key, k);
            args::put(key_len, kl);
            args::put(value, v);
            args::put(value_len, vl);
        }
        Ok(if entry.is_some() {
            MAPCACHE_OK
        } else {
            MAPCACHE_NOT_FOUND
        })
    });
    // SAFETY: each is NULL or writable (contract).
    unsafe {
        args::reset_on_error(status, key, std::ptr::null());
        args::reset_on_error(status, key_len, 0);
        args::reset_on_error(status, value, std::ptr::null());
        args::reset_on_error(status, value_len, 0);
    }
    status
}

impl State {
    /// The next entry (offset, key length, value length) in `bytes`, fetching
    /// batches as needed; `None` at the end.
    fn advance(&mut self) -> Result<Option<(usize, usize, usize)>, Fail> {
        // Check the map on every call, also at the end, so that a freed cache is
        // always reported.
        let shell = self.shell;
        shell
            .with(|inner| {
                while self.next == self.entries.len() && !self.done {
                    self.bytes.clear();
                    self.entries.clear();
                    self.next = 0;
                    let (bytes, entries) = (&mut self.bytes, &mut self.entries);
                    let more = inner
                        .map
                        .scan(&mut self.cursor, |k, v| {
                            entries.push((bytes.len(), k.len(), v.len()));
                            bytes.extend_from_slice(k);
                            bytes.extend_from_slice(v);
                        })
                        .inspect_err(|_| {
                            // The step overlapped a write (exclusive mode): what
                            // it copied is not handed out.
                            entries.clear();
                            bytes.clear();
                        })?;
                    if !more {
                        self.done = true;
                    }
                }
                if self.next < self.entries.len() {
                    self.next += 1;
                    Ok(Some(self.entries[self.next - 1]))
                } else {
                    Ok(None)
                }
            })
            .map_err(|fail| {
                if fail.status() == MAPCACHE_E_INVALID_HANDLE {
                    freed()
                } else {
                    fail
                }
            })
    }
}

#[cold]
fn freed() -> Fail {
    Fail::new(
        MAPCACHE_E_INVALID_HANDLE,
        "the cache of this iterator was freed by mapcache_free",
    )
}

/// Frees an iterator and the entry bytes it holds. NULL is a no-op.
///
/// May be called before or after the iterator's cache is freed. A second free of
/// the same iterator is detected (however many iterators were created since)
/// and ignored, with a message in `mapcache_last_error()`; so is a foreign
/// pointer. After the free, `mapcache_iter_next(it)` returns
/// `MAPCACHE_E_INVALID_HANDLE`, and never reaches another iterator.
///
/// Thread-safety: any thread, but not concurrently with another call on `it` (if
/// one is in progress, this waits for it to finish).
///
/// # Safety
/// `it` must be NULL or a pointer obtained from `mapcache_iter_new`.
#[no_mangle]
pub unsafe extern "C" fn mapcache_iter_free(it: *mut mapcache_iter_t) {
    boundary::run_with("mapcache_iter_free", (), (), || {
        if it.is_null() {
            return Ok(());
        }
        let it = ITERS.find(it).ok_or_else(foreign_iter)?;
        // A stale or freed handle is refused before it waits on the flag of the
        // iterator that may now use its slot.
        let refused = |status| match status {
            Status::NeverIssued => foreign_iter(),
            Status::Stale => Fail::new(
                MAPCACHE_E_INVALID_HANDLE,
                "it was already freed (double free of a stale handle: the newer iterator \
                 in its memory was left alone)",
            ),
            Status::Freed | Status::Live => Fail::new(
                MAPCACHE_E_INVALID_HANDLE,
                "it was already freed (double free)",
            ),
        };
        if !it.is_live() {
            return Err(refused(it.status()));
        }
        let mut busy = Busy::take(it.value());
        it.kill().map_err(refused)?;
        let state = busy.state().take();
        drop(busy);
        drop(state);
        ITERS.release(it);
        Ok(())
    })
}
