//! `mapcache_iter_t`: a cursor over a cache's entries for C hosts.
//!
//! An iterator holds a position ([`Cursor`]), not the map: between calls it pins
//! nothing and keeps nothing alive. Each `mapcache_iter_next` that needs more
//! entries pins the epoch, checks that its cache is still the live map it was made
//! for (by the map's unique id, so a freed handle, even one whose slot was reused
//! by a later `mapcache_new`, is `MAPCACHE_E_INVALID_HANDLE`), and copies the next
//! batch (one bucket chain) into the iterator's own buffer, from which it hands out
//! pointers that stay valid until the next call.
//!
//! Iterator objects live in a never-freed `Arena` like cache handles, so a freed
//! or foreign iterator pointer is detected without undefined behaviour. An iterator
//! is not meant to be shared; a `busy` flag turns concurrent use of one iterator
//! into `MAPCACHE_E_INVALID_ARG` instead of a data race.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::arena::Arena;
use super::args;
use super::boundary::{self, Fail};
use super::handle::{self, mapcache, mapcache_t};
use super::status::{mapcache_status, MAPCACHE_E_INVALID_HANDLE, MAPCACHE_NOT_FOUND, MAPCACHE_OK};
use crate::Cursor;

/// Tag of a live iterator.
const LIVE: u64 = 0x4d43_4954_4552_3131;
/// Tag of a freed iterator.
const DEAD: u64 = 0x4d43_4954_4552_4445;

/// An iteration over a cache. Opaque: obtained from `mapcache_iter_new`, released
/// with `mapcache_iter_free`.
pub struct mapcache_iter {
    /// `LIVE`, `DEAD`, or 0 for a slot never used.
    tag: AtomicU64,
    /// Held by the one call that may touch `state`.
    busy: AtomicBool,
    state: UnsafeCell<Option<State>>,
}

/// `mapcache_iter_t` is the name hosts use for `struct mapcache_iter`.
pub type mapcache_iter_t = mapcache_iter;

// SAFETY: `state` is only accessed by the thread that holds `busy` (acquired with
// Acquire, released with Release), so accesses are never concurrent and each
// happens-after the previous one. `State` is Send (plain data and a `&'static`
// to a Sync shell).
unsafe impl Sync for mapcache_iter {}

impl Default for mapcache_iter {
    fn default() -> mapcache_iter {
        mapcache_iter {
            tag: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            state: UnsafeCell::new(None),
        }
    }
}

struct State {
    shell: &'static mapcache,
    /// The id of the map this iterator walks.
    map_id: u64,
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

static ITERS: Arena<mapcache_iter> = Arena::new();

/// Exclusive access to an iterator's state for the length of one call.
struct Busy {
    it: &'static mapcache_iter,
}

impl Busy {
    /// Takes the busy flag of `it`, failing if another thread holds it.
    fn try_take(it: &'static mapcache_iter) -> Result<Busy, Fail> {
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
    fn take(it: &'static mapcache_iter) -> Busy {
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

fn find(it: *const mapcache_iter_t) -> Result<&'static mapcache_iter, Fail> {
    if it.is_null() {
        return Err(Fail::arg("it is NULL"));
    }
    ITERS.find(it).ok_or_else(|| {
        Fail::new(
            MAPCACHE_E_INVALID_HANDLE,
            "it is not a mapcache_iter_t * returned by mapcache_iter_new (a foreign or corrupted pointer)",
        )
    })
}

/// ============ 4. ITERATION ============
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
/// - `MAPCACHE_E_INVALID_HANDLE`, `MAPCACHE_E_INTERNAL`.
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
        let map_id = shell.with(|inner| Ok(inner.id))?;
        let it = ITERS.alloc();
        let mut busy = Busy::take(it);
        *busy.state() = Some(State {
            shell,
            map_id,
            cursor: Cursor::default(),
            bytes: Vec::new(),
            entries: Vec::new(),
            next: 0,
            done: false,
        });
        it.tag.store(LIVE, Ordering::Release);
        drop(busy);
        let handle = it as *const mapcache_iter as *mut mapcache_iter_t;
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
///   are dropped, not returned; a further call goes on with the next step.
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
        let mut busy = Busy::try_take(it)?;
        if it.tag.load(Ordering::Acquire) != LIVE {
            return Err(Fail::new(
                MAPCACHE_E_INVALID_HANDLE,
                "it was freed by mapcache_iter_free (use after free)",
            ));
        }
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
                if inner.id != self.map_id {
                    return Err(freed());
                }
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
/// the same iterator is detected (while its slot is not reused) and ignored, with
/// a message in `mapcache_last_error()`; so is a foreign pointer.
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
        let it = find(it)?;
        let mut busy = Busy::take(it);
        if it
            .tag
            .compare_exchange(LIVE, DEAD, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return Err(Fail::new(
                MAPCACHE_E_INVALID_HANDLE,
                "it was already freed (double free) or never returned by mapcache_iter_new",
            ));
        }
        let state = busy.state().take();
        drop(busy);
        drop(state);
        ITERS.release(it);
        Ok(())
    })
}
