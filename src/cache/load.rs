//! The loader of [`crate::Map::get_or_load`]: one load per key at a time
//! (singleflight).
//!
//! Concurrent misses on one key must not all run the loader (a stampede on the
//! database behind the cache). The first caller to miss registers a [`Flight`]
//! for the key and runs the loader; the callers that miss while it runs find the
//! flight and wait on it, and all of them get the leader's outcome: the value it
//! stored, or its error. Nothing is cached on an error, and the flight is gone
//! before anyone is woken, so the next call starts a new load.
//!
//! Invariants:
//! - The loader runs with no write flag and no lock of this module held: it
//!   may read and write the map, even the same key.
//! - A flight is removed from its table before its outcome is published; a
//!   caller that arrives after the removal starts afresh (and finds the stored
//!   value, if the load succeeded).
//! - A loader that asks for its own key (on its own thread) gets
//!   [`Error::InvalidArgument`] instead of waiting for itself forever.
//! - A leader that panics still publishes an outcome (a [`LoadError`] that says
//!   so) on the way out, so no waiter waits forever, and no lock is poisoned:
//!   the mutexes are never held while the loader runs.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::sync::atomic::{AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// Why a load failed: the loader's own error, shared by every caller that
/// waited for that load (so it is reference-counted, not owned).
#[derive(Clone)]
pub struct LoadError {
    inner: Arc<Failure>,
}

enum Failure {
    /// The loader returned an error.
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// The loader panicked; the message is the panic's, when it was a string.
    Panicked(String),
}

impl LoadError {
    /// A loader's error, from anything that converts into a boxed error (an
    /// error type, a `String`, a `&str`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> LoadError {
        LoadError {
            inner: Arc::new(Failure::Failed(error.into())),
        }
    }

    fn panicked(payload: &(dyn std::any::Any + Send)) -> LoadError {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".to_string());
        LoadError {
            inner: Arc::new(Failure::Panicked(message)),
        }
    }

    /// Whether the loader panicked (rather than returning an error).
    pub fn is_panic(&self) -> bool {
        matches!(&*self.inner, Failure::Panicked(_))
    }

    /// The loader's error, if it returned one, as its own type.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match &*self.inner {
            Failure::Failed(error) => error.downcast_ref::<E>(),
            Failure::Panicked(_) => None,
        }
    }

    pub(crate) fn source_error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.inner {
            Failure::Failed(error) => Some(&**error),
            Failure::Panicked(_) => None,
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Failure::Failed(error) => write!(f, "{error}"),
            Failure::Panicked(message) => write!(f, "the loader panicked: {message}"),
        }
    }
}

impl std::fmt::Debug for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadError({self})")
    }
}

/// Two load errors are equal when they are the same failure (what the waiters
/// of one load share).
impl PartialEq for LoadError {
    fn eq(&self, other: &LoadError) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for LoadError {}

/// One load in progress, and its outcome once it is known.
struct Flight {
    outcome: Mutex<Option<Result<Vec<u8>>>>,
    done: Condvar,
    /// Callers waiting for the outcome (for tests that must know every caller
    /// has joined before the loader returns).
    waiters: AtomicUsize,
    /// The thread running the loader: if the loader itself asks for the same
    /// key, waiting would wait for itself.
    leader: crate::sync::thread_id::ThreadId,
}

/// The loads in progress of one map, in a few independently locked tables (by
/// shard), so that loads of unrelated keys do not contend on one mutex.
pub(crate) struct Flights {
    tables: Box<[FlightTable]>,
}

/// The loads in progress of one table, by key.
type FlightTable = Mutex<HashMap<Box<[u8]>, Arc<Flight>>>;

/// What [`Flights::join`] made of the caller.
pub(crate) enum Role<'a> {
    /// The caller runs the load and must [`Leader::finish`] it.
    Leader(Leader<'a>),
    /// Another caller ran the load; this is its outcome.
    Waited(Result<Vec<u8>>),
}

/// The duty of the caller that runs a load: publish its outcome. Dropped
/// without [`Leader::finish`] (the loader panicked), it publishes a panic error.
pub(crate) struct Leader<'a> {
    flight: Arc<Flight>,
    table: &'a FlightTable,
    key: Box<[u8]>,
    finished: bool,
    panic: Option<LoadError>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a lookup, an insert, a remove or a store of
    // an outcome; none can leave the data half-changed, so a poisoned lock (a
    // panic elsewhere in the holder's thread) is still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Flights {
    /// `tables` tables (at least one), or [`Error::OutOfMemory`] where their
    /// array cannot be had (one per shard, up to 2^16).
    pub(crate) fn new(tables: usize) -> Result<Flights> {
        let tables = tables.max(1);
        let mut made = Vec::new();
        made.try_reserve_exact(tables)
            .map_err(|_| Error::OutOfMemory {
                bytes: tables.saturating_mul(std::mem::size_of::<FlightTable>()),
            })?;
        made.extend((0..tables).map(|_| Mutex::new(HashMap::new())));
        Ok(Flights {
            tables: made.into_boxed_slice(),
        })
    }

    /// Joins the load of `key` in table `table` (the key's shard), or starts it.
    pub(crate) fn join(&self, table: usize, key: &[u8]) -> Role<'_> {
        let table = &self.tables[table % self.tables.len()];
        let flight = {
            let mut flights = lock(table);
            match flights.get(key) {
                Some(flight) => flight.clone(),
                None => {
                    let flight = Arc::new(Flight {
                        outcome: Mutex::new(None),
                        done: Condvar::new(),
                        waiters: AtomicUsize::new(0),
                        leader: crate::sync::thread_id::current(),
                    });
                    flights.insert(key.into(), flight.clone());
                    return Role::Leader(Leader {
                        flight,
                        table,
                        key: key.into(),
                        finished: false,
                        panic: None,
                    });
                }
            }
        };
        if flight.leader == crate::sync::thread_id::current() {
            return Role::Waited(Err(Error::InvalidArgument(
                "get_or_load was called from its own loader for the same key: it would wait for itself"
                    .into(),
            )));
        }
        flight.waiters.fetch_add(1, Ordering::SeqCst);
        let mut outcome = lock(&flight.outcome);
        loop {
            if let Some(result) = outcome.as_ref() {
                return Role::Waited(result.clone());
            }
            outcome = flight
                .done
                .wait(outcome)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

impl Flights {
    /// Callers waiting for the load of `key` in table `table` (0 when no load
    /// of it runs).
    pub(crate) fn waiters(&self, table: usize, key: &[u8]) -> usize {
        let table = &self.tables[table % self.tables.len()];
        lock(table)
            .get(key)
            .map_or(0, |flight| flight.waiters.load(Ordering::SeqCst))
    }
}

impl Leader<'_> {
    /// Publishes the outcome to the waiters (after removing the flight, so that
    /// later callers start afresh).
    pub(crate) fn finish(mut self, outcome: &Result<Vec<u8>>) {
        self.publish(outcome.clone());
        self.finished = true;
    }

    /// Records the payload of the loader's panic, published on drop.
    pub(crate) fn panicked(&mut self, payload: &(dyn std::any::Any + Send)) -> LoadError {
        let error = LoadError::panicked(payload);
        self.panic = Some(error.clone());
        error
    }

    fn publish(&self, outcome: Result<Vec<u8>>) {
        lock(self.table).remove(&self.key);
        *lock(&self.flight.outcome) = Some(outcome);
        self.flight.done.notify_all();
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let error = self
                .panic
                .take()
                .unwrap_or_else(|| LoadError::panicked(&"the load was abandoned"));
            self.publish(Err(Error::Load(error)));
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// Two callers miss on one key at once. Whoever leads publishes a value;
    /// the other either waits and gets exactly that value, or (joining after
    /// the flight was removed) leads a load of its own. Never a lost wake-up
    /// (loom reports a deadlock), never an outcome-less return.
    #[test]
    fn a_waiter_gets_the_leaders_outcome_or_leads_itself() {
        loom::model(|| {
            let flights = loom::sync::Arc::new(Flights::new(1).unwrap());
            let run = |flights: &Flights, value: u8| match flights.join(0, b"k") {
                Role::Leader(leader) => {
                    leader.finish(&Ok(vec![value]));
                    (true, vec![value])
                }
                Role::Waited(outcome) => (false, outcome.unwrap()),
            };
            let other = {
                let flights = flights.clone();
                loom::thread::spawn(move || run(&flights, 2))
            };
            let mine = run(&flights, 1);
            let theirs = other.join().unwrap();
            match (mine, theirs) {
                ((true, a), (false, b)) | ((false, b), (true, a)) => assert_eq!(a, b),
                ((true, _), (true, _)) => {} // one led after the other finished
                ((false, _), (false, _)) => panic!("nobody led the load"),
            }
            assert_eq!(flights.waiters(0, b"k"), 0, "a flight was left behind");
        });
    }
}
