//! loom models of the concurrency protocol, run on the real map code with loom's
//! atomics (`make test-loom`, which builds with `--cfg loom --cfg crossbeam_loom`).
//!
//! Each model is small (one shard, one bucket, two threads) so that loom can
//! explore every interleaving within the preemption bound.
#![cfg(loom)]

use loom::thread;
use mapcache::{Config, EngineChoice, Error, Map, Mode};

fn map(mode: Mode) -> Map {
    Map::new(Config {
        shards: 1,
        mode,
        engine: EngineChoice::Single,
        seed: Some(42),
        ..Config::default()
    })
    .unwrap()
}

/// A reader racing a writer that replaces the value sees the old or the new
/// value, whole, never nothing; the old entry is reclaimed only after the reader
/// is done with it (a use-after-free would be a loom failure).
#[test]
fn reader_against_slot_update() {
    loom::model(|| {
        let map = loom::sync::Arc::new(map(Mode::Concurrent));
        map.insert(b"k", b"old").unwrap();
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                assert!(map.insert(b"k", b"new").unwrap());
            })
        };
        let seen = map.get(b"k").unwrap().expect("a present key was missed");
        assert!(seen == b"old" || seen == b"new", "torn value {seen:?}");
        writer.join().unwrap();
        assert_eq!(map.get(b"k").unwrap().as_deref(), Some(&b"new"[..]));
    });
}

/// A reader racing a grow (the 9th key of a one-bucket table) finds a key that
/// was there all along, in the old table or the new one, and the old table is
/// retired only after the reader unpinned.
#[test]
fn reader_against_grow_publish_and_retire() {
    loom::model(|| {
        let map = loom::sync::Arc::new(map(Mode::Concurrent));
        for i in 0..8u8 {
            map.insert(&[i], &[i]).unwrap();
        }
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                map.insert(&[8], &[8]).unwrap();
            })
        };
        assert_eq!(map.get(&[3]).unwrap().as_deref(), Some(&[3u8][..]));
        writer.join().unwrap();
        assert_eq!(map.table_stats().grows, 1);
        for i in 0..9u8 {
            assert_eq!(map.get(&[i]).unwrap().as_deref(), Some(&[i][..]));
        }
    });
}

/// A reader racing a delete and an insert in its own chain (one bucket: every
/// key shares it): a key present throughout is always found, and no answer goes
/// back in time (a delete seen stays seen, an insert seen stays seen).
#[test]
fn reader_against_delete_and_insert_in_its_chain() {
    loom::model(|| {
        let map = loom::sync::Arc::new(map(Mode::Concurrent));
        map.insert(b"a", b"1").unwrap();
        map.insert(b"d", b"2").unwrap();
        let writer = {
            let map = map.clone();
            thread::spawn(move || {
                assert!(map.remove(b"d").unwrap());
                assert!(!map.insert(b"n", b"3").unwrap());
            })
        };
        let d1 = map.contains_key(b"d").unwrap();
        let n1 = map.contains_key(b"n").unwrap();
        assert!(map.contains_key(b"a").unwrap(), "a present key was missed");
        let d2 = map.contains_key(b"d").unwrap();
        let n2 = map.contains_key(b"n").unwrap();
        assert!(d1 || !d2, "a delete was seen, then undone");
        assert!(!n1 || n2, "an insert was seen, then undone");
        writer.join().unwrap();
        assert!(!map.contains_key(b"d").unwrap());
        assert!(map.contains_key(b"n").unwrap());
        assert!(map.contains_key(b"a").unwrap());
    });
}

/// Two writers in exclusive mode: at least one succeeds, a failure is always a
/// reported collision, and exactly the successful writes are in the map.
#[test]
fn two_writers_in_exclusive_mode() {
    loom::model(|| {
        let map = loom::sync::Arc::new(map(Mode::Exclusive));
        let other = {
            let map = map.clone();
            thread::spawn(move || map.insert(b"a", b"1"))
        };
        let mine = map.insert(b"b", b"2");
        let other = other.join().unwrap();
        for result in [&mine, &other] {
            assert!(
                matches!(result, Ok(false) | Err(Error::ConcurrentWrite(_))),
                "{result:?}"
            );
        }
        assert!(mine.is_ok() || other.is_ok(), "both writers failed");
        assert_eq!(map.contains_key(b"a").unwrap(), other.is_ok());
        assert_eq!(map.contains_key(b"b").unwrap(), mine.is_ok());
        assert_eq!(
            map.len(),
            usize::from(mine.is_ok()) + usize::from(other.is_ok())
        );
    });
}

/// Two writers of one shard in concurrent mode: the second waits for the first,
/// and both writes land.
#[test]
fn writer_waits_in_concurrent_mode() {
    loom::model(|| {
        let map = loom::sync::Arc::new(map(Mode::Concurrent));
        let other = {
            let map = map.clone();
            thread::spawn(move || map.insert(b"a", b"1").unwrap())
        };
        map.insert(b"b", b"2").unwrap();
        other.join().unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(map.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
    });
}
