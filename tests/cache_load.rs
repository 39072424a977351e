//! `get_or_load`: one load per key under concurrent misses, the loader's error
//! reaches every waiter and caches nothing, a panicking loader poisons nothing,
//! and the loader may use the cache itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use mapcache::{Config, Error, Map};

const THREADS: usize = 16;

fn map() -> Arc<Map> {
    Arc::new(Map::new(Config::default()).unwrap())
}

/// Runs `THREADS` callers of `get_or_load(key)` at once; the loader (run by
/// whichever caller leads) waits until the other callers are all waiting on
/// its load, then returns `outcome` (or panics in it). Returns each caller's
/// result, a panic caught as `Err`, and the number of loader runs.
fn stampede_caught(
    map: &Arc<Map>,
    key: &'static [u8],
    outcome: fn() -> Result<Vec<u8>, String>,
) -> (Vec<std::thread::Result<mapcache::Result<Vec<u8>>>>, usize) {
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let callers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (map, runs, start) = (map.clone(), runs.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let inner = map.clone();
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    map.get_or_load(key, move || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        // Deterministic: return only once every other caller
                        // has joined this load (no sleeps, no timing).
                        while inner.debug_load_waiters(key) < THREADS - 1 {
                            thread::yield_now();
                        }
                        outcome()
                    })
                }))
            })
        })
        .collect();
    let results = callers.into_iter().map(|c| c.join().unwrap()).collect();
    (results, runs.load(Ordering::SeqCst))
}

/// As [`stampede_caught`], for a loader that does not panic.
fn stampede(
    map: &Arc<Map>,
    key: &'static [u8],
    outcome: fn() -> Result<Vec<u8>, String>,
) -> (Vec<mapcache::Result<Vec<u8>>>, usize) {
    let (results, runs) = stampede_caught(map, key, outcome);
    let results = results
        .into_iter()
        .map(|r| r.expect("no caller panics"))
        .collect();
    (results, runs)
}

#[test]
fn sixteen_threads_missing_on_one_key_run_the_loader_once_and_share_its_value() {
    let map = map();
    let (results, runs) = stampede(&map, b"hot", || Ok(b"loaded".to_vec()));
    assert_eq!(runs, 1);
    for result in results {
        assert_eq!(result.unwrap(), b"loaded");
    }
    assert_eq!(map.get(b"hot").unwrap().as_deref(), Some(&b"loaded"[..]));
    let stats = map.stats();
    assert_eq!(stats.load_successes, 1);
    assert_eq!(stats.load_failures, 0);
    assert_eq!(stats.misses, THREADS as u64);
    assert_eq!(stats.inserts, 1);
}

#[test]
fn a_loader_error_reaches_every_waiter_caches_nothing_and_the_next_call_retries() {
    let map = map();
    let (results, runs) = stampede(&map, b"down", || Err("database down".to_string()));
    assert_eq!(runs, 1);
    let errors: Vec<_> = results
        .into_iter()
        .map(|r| match r {
            Err(Error::Load(e)) => e,
            other => panic!("{other:?}"),
        })
        .collect();
    // All of them got the same failure, with the loader's message.
    for e in &errors {
        assert_eq!(e, &errors[0]);
        assert_eq!(e.to_string(), "database down");
        assert!(!e.is_panic());
    }
    assert_eq!(map.get(b"down").unwrap(), None);
    assert_eq!(map.stats().load_failures, 1);
    // The next call loads again.
    assert_eq!(
        map.get_or_load(b"down", || Ok::<_, String>(b"up".to_vec()))
            .unwrap(),
        b"up"
    );
    assert_eq!(map.stats().load_successes, 1);
}

#[derive(Debug)]
struct DbError(u32);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "db error {}", self.0)
    }
}

impl std::error::Error for DbError {}

#[test]
fn the_loaders_own_error_type_comes_back() {
    let map = map();
    let Err(Error::Load(e)) = map.get_or_load(b"k", || Err::<Vec<u8>, _>(DbError(42))) else {
        panic!()
    };
    assert_eq!(e.downcast_ref::<DbError>().map(|d| d.0), Some(42));
    let error = Error::Load(e);
    assert!(std::error::Error::source(&error).is_some());
    assert_eq!(error.to_string(), "loader failed: db error 42");
}

#[test]
fn a_panicking_loader_poisons_nothing_and_its_waiters_get_an_error() {
    let map = map();
    let (results, runs) = stampede_caught(&map, b"boom", || panic!("loader exploded"));
    let mut panics = 0;
    for result in results {
        match result {
            Err(_) => panics += 1,
            Ok(Err(Error::Load(e))) => {
                assert!(e.is_panic());
                assert!(e.to_string().contains("loader exploded"), "{e}");
            }
            Ok(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(runs, 1);
    assert_eq!(panics, 1, "the panic continues in the leader only");
    // Nothing is poisoned: the key loads fine now, and the map works.
    assert_eq!(
        map.get_or_load(b"boom", || Ok::<_, String>(b"ok".to_vec()))
            .unwrap(),
        b"ok"
    );
    map.insert(b"other", b"v").unwrap();
    assert_eq!(map.stats().load_failures, 1);
}

#[test]
fn a_loader_may_read_and_write_the_cache_even_its_own_key() {
    let map = map();
    let inner = map.clone();
    let value = map
        .get_or_load(b"k", || {
            inner.insert(b"side", b"effect").unwrap();
            assert_eq!(inner.get(b"k").unwrap(), None);
            Ok::<_, String>(b"loaded".to_vec())
        })
        .unwrap();
    assert_eq!(value, b"loaded");
    assert_eq!(map.get(b"side").unwrap().as_deref(), Some(&b"effect"[..]));
    // A write of the same key during the load wins over the loaded value.
    let inner = map.clone();
    let value = map
        .get_or_load(b"raced", || {
            inner.insert(b"raced", b"newer").unwrap();
            Ok::<_, String>(b"older".to_vec())
        })
        .unwrap();
    assert_eq!(value, b"newer");
    assert_eq!(map.get(b"raced").unwrap().as_deref(), Some(&b"newer"[..]));
}

#[test]
fn a_hit_never_runs_the_loader() {
    let map = map();
    map.insert(b"k", b"v").unwrap();
    let value = map.get_or_load(b"k", || -> Result<Vec<u8>, String> {
        panic!("must not run")
    });
    assert_eq!(value.unwrap(), b"v");
    assert_eq!(map.stats().hits, 1);
    assert_eq!(map.stats().load_successes, 0);
}

#[test]
fn a_loader_asking_for_its_own_key_gets_an_error_instead_of_waiting_for_itself() {
    let map = map();
    let inner = map.clone();
    let value = map
        .get_or_load(b"self", || {
            let nested = inner.get_or_load(b"self", || Ok::<_, String>(b"nested".to_vec()));
            assert!(
                matches!(nested, Err(Error::InvalidArgument(m)) if m.contains("its own loader"))
            );
            // Another key loads fine from inside a loader.
            assert_eq!(
                inner
                    .get_or_load(b"other", || Ok::<_, String>(b"o".to_vec()))
                    .unwrap(),
                b"o"
            );
            Ok::<_, String>(b"outer".to_vec())
        })
        .unwrap();
    assert_eq!(value, b"outer");
}
