//! Iteration's promises under writes: no key is yielded twice, even within one
//! step while a writer moves the key along its chain; and in exclusive mode every
//! iteration step (and `try_len`) is a read that reports an overlapping write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;

use mapcache::{Collision, Config, Cursor, Error, Map, Mode};

const SEED: u64 = 0x5eed;

fn one_shard(initial_capacity: usize, mode: Mode) -> Map {
    Map::new(Config {
        shards: 1,
        initial_capacity,
        mode,
        seed: Some(SEED),
        ..Config::default()
    })
    .unwrap()
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

/// Twelve keys that share one bucket of a 4-bucket, 1-shard table with seed
/// `SEED`. Iteration visits keys in order of their bit-reversed hash fragment,
/// so the first keys a full iteration of a big table yields have the smallest
/// fragments' reversals: they share their low fragment bits, hence a bucket of
/// any smaller table. (Checked below: the 4-bucket map yields them in one step.)
fn twelve_keys_in_one_bucket() -> Vec<Vec<u8>> {
    let probe = one_shard(0, Mode::Concurrent);
    for i in 0..4_000 {
        probe.insert(&key(i), b"").unwrap();
    }
    let keys: Vec<Vec<u8>> = probe.iter().take(12).map(|r| r.unwrap().0).collect();
    assert_eq!(keys.len(), 12);
    keys
}

/// A 4-bucket map holding `keys[..11]` in one chain: a full bucket A (`keys[0]`
/// in its first slot) and an overflow bucket B with three more.
fn chain_of_eleven(keys: &[Vec<u8>]) -> Map {
    let map = one_shard(20, Mode::Concurrent);
    assert_eq!(map.table_stats().buckets, 4);
    for k in &keys[..11] {
        map.insert(k, b"v").unwrap();
    }
    let stats = map.table_stats();
    assert_eq!((stats.buckets, stats.overflow_buckets), (4, 1));
    let mut step = Vec::new();
    assert!(map
        .scan(&mut Cursor::new(), |k, _| step.push(k.to_vec()))
        .unwrap());
    assert_eq!(step.len(), 11, "the eleven keys are not in one chain");
    assert_eq!(
        step[0], keys[0],
        "the first key is not in the chain's first slot"
    );
    map
}

#[test]
fn a_key_moved_along_its_chain_by_the_scan_callback_is_not_yielded_twice() {
    let keys = twelve_keys_in_one_bucket();
    let map = chain_of_eleven(&keys);
    let (k, j) = (&keys[0], &keys[11]);
    let mut yielded: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut cursor = Cursor::new();
    while map
        .scan(&mut cursor, |key, _| {
            if key == &k[..] && !yielded.contains_key(key) {
                // K leaves slot A[0], J takes it, and K comes back: A is full,
                // so K lands in B, which the chain walk has not reached yet.
                assert!(map.remove(k).unwrap());
                map.insert(j, b"v").unwrap();
                map.insert(k, b"v").unwrap();
            }
            *yielded.entry(key.to_vec()).or_default() += 1;
        })
        .unwrap()
    {}
    let twice: Vec<_> = yielded.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "yielded more than once: {twice:?}");
    // Every key present throughout was yielded; K was present at its step.
    for key in &keys[..11] {
        assert_eq!(
            yielded.get(key),
            Some(&1),
            "{:?}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn a_key_moved_along_its_chain_by_another_thread_is_not_yielded_twice() {
    // The interleaving of the issue with the writer on another thread: when a
    // step lends K, it waits while that thread moves K from A[0] to B (K out, J
    // in, K back); then J goes again so that the next round starts from the same
    // chain. (Lending after the walk is what this checks; a writer that acts
    // while the walk is between A and B is the unit test in src/iter.rs.)
    let keys = twelve_keys_in_one_bucket();
    let map = chain_of_eleven(&keys);
    let (k, j) = (&keys[0], &keys[11]);
    let (go, done) = (Barrier::new(2), Barrier::new(2));
    let finished = AtomicBool::new(false);
    let mut outcomes = Vec::new();
    thread::scope(|s| {
        s.spawn(|| loop {
            go.wait();
            if finished.load(Ordering::Relaxed) {
                return;
            }
            assert!(map.remove(k).unwrap());
            map.insert(j, b"v").unwrap();
            map.insert(k, b"v").unwrap();
            done.wait();
        });
        for _ in 0..100 {
            let mut yielded: HashMap<Vec<u8>, usize> = HashMap::new();
            let mut cursor = Cursor::new();
            while map
                .scan(&mut cursor, |key, _| {
                    if key == &k[..] && !yielded.contains_key(key) {
                        go.wait();
                        done.wait();
                    }
                    *yielded.entry(key.to_vec()).or_default() += 1;
                })
                .unwrap()
            {}
            // Checked once the writer has stopped: a panic here would leave it
            // waiting on `go` forever.
            outcomes.push(yielded);
            assert!(map.remove(j).unwrap());
        }
        finished.store(true, Ordering::Relaxed);
        go.wait();
    });
    for yielded in outcomes {
        let twice: Vec<_> = yielded.iter().filter(|(_, &n)| n > 1).collect();
        assert!(twice.is_empty(), "yielded more than once: {twice:?}");
        assert_eq!(yielded.get(k), Some(&1));
    }
}

#[test]
fn keys_moved_along_their_chain_by_a_free_running_writer_are_not_yielded_twice() {
    let keys = twelve_keys_in_one_bucket();
    let map = chain_of_eleven(&keys);
    let (k, j) = (keys[0].clone(), keys[11].clone());
    let stop = AtomicBool::new(false);
    let rounds = if std::env::var_os("MAPCACHE_STRESS").is_some() {
        2_000_000
    } else {
        100_000
    };
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                map.remove(&k).unwrap();
                map.insert(&j, b"v").unwrap();
                map.insert(&k, b"v").unwrap();
                map.remove(&j).unwrap();
            }
        });
        for _ in 0..rounds {
            let mut seen: Vec<Vec<u8>> = Vec::new();
            let mut cursor = Cursor::new();
            while map
                .scan(&mut cursor, |key, _| seen.push(key.to_vec()))
                .unwrap()
            {}
            let count = seen.len();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), count, "a key was yielded twice: {seen:?}");
            // The ten keys the writer never touches are always there.
            for key in &keys[1..11] {
                assert!(seen.binary_search(key).is_ok());
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
}

#[path = "support/hold.rs"]
mod hold;

/// Runs `read` on this thread (labelled "reader") while a thread labelled
/// "writer" holds the exclusive-mode write flag.
fn while_a_write_is_in_flight<R>(map: &Map, read: impl FnOnce() -> R) -> R {
    hold::while_held(map, b"any", ("writer", "reader"), read)
}

fn overlap() -> Error {
    Error::ConcurrentReadWrite(Collision {
        holder: "writer".into(),
        collider: "reader".into(),
    })
}

fn exclusive_map_of(n: u32) -> Map {
    let map = one_shard(0, Mode::Exclusive);
    for i in 0..n {
        map.insert(&key(i), b"v").unwrap();
    }
    map
}

#[test]
fn exclusive_mode_reports_iteration_overlapping_a_write() {
    let map = exclusive_map_of(100);
    let items: Vec<_> = while_a_write_is_in_flight(&map, || map.iter().collect());
    // The first step fails, and the iterator ends with the error.
    assert_eq!(items, vec![Err(overlap())]);
    assert_eq!(map.table_stats().misuses, 1);
    // With no write in flight the same iteration is whole.
    assert_eq!(map.iter().map(Result::unwrap).count(), 100);
}

#[test]
fn exclusive_mode_reports_a_scan_step_overlapping_a_write() {
    let map = exclusive_map_of(100);
    let mut cursor = Cursor::new();
    let mut lent = 0;
    let result = while_a_write_is_in_flight(&map, || map.scan(&mut cursor, |_, _| lent += 1));
    assert_eq!(result, Err(overlap()));
    assert_eq!(
        lent, 0,
        "the step began while the write was in flight: nothing is lent"
    );
}

#[test]
fn exclusive_mode_reports_a_scan_step_that_a_write_started_during() {
    // The write starts inside the step (from another thread, while the step's
    // callback waits for it): the check after the step reports it.
    let map = exclusive_map_of(100);
    let (started, release) = (Barrier::new(2), Barrier::new(2));
    let mut cursor = Cursor::new();
    let mut once = false;
    let result = thread::scope(|s| {
        let map = &map;
        let (started, release) = (&started, &release);
        mapcache::set_thread_label("reader");
        let result = map.scan(&mut cursor, |_, _| {
            if !std::mem::replace(&mut once, true) {
                s.spawn(move || {
                    mapcache::set_thread_label("writer");
                    let flag = map.debug_hold_write_flag(b"any").unwrap();
                    started.wait();
                    release.wait();
                    drop(flag);
                });
                started.wait();
            }
        });
        release.wait();
        mapcache::clear_thread_label();
        result
    });
    assert_eq!(result, Err(overlap()));
}

#[test]
fn exclusive_mode_try_len_reports_an_overlapping_write_and_len_does_not_check() {
    let map = exclusive_map_of(10);
    let (checked, unchecked) = while_a_write_is_in_flight(&map, || (map.try_len(), map.len()));
    assert_eq!(checked, Err(overlap()));
    assert_eq!(unchecked, 10);
    assert_eq!(map.try_len(), Ok(10));
}

#[test]
fn concurrent_mode_iteration_never_fails() {
    let map = one_shard(0, Mode::Concurrent);
    map.insert(b"k", b"v").unwrap();
    let items: Vec<_> = while_a_write_is_in_flight(&map, || map.iter().collect());
    assert_eq!(items, vec![Ok((b"k".to_vec(), b"v".to_vec()))]);
}
