//! A snapshot of a cache that two threads keep writing: every key of the
//! loaded cache holds a value that key really had during the save.
//!
//! Each writer owns half the keys and rewrites them round after round, each
//! value naming its key and its round. A writer publishes each finished round.
//! With `before` the rounds finished when the save started and `after` those
//! finished when it returned, a key's saved round must lie in
//! `before ..= after + 1` (the round in flight at the end may have reached it).
//! The save's progress callback waits, after its first block, for each writer
//! to finish another round, so writes really happen while the save runs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mapcache::{Config, Map};

const KEYS_PER_WRITER: u64 = 30_000;

fn value(key: u64, round: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend_from_slice(&round.to_le_bytes());
    v.resize(64, 0xab);
    v
}

fn parse(v: &[u8]) -> (u64, u64) {
    assert_eq!(v.len(), 64);
    assert!(v[16..].iter().all(|&b| b == 0xab), "a torn value");
    (
        u64::from_le_bytes(v[..8].try_into().unwrap()),
        u64::from_le_bytes(v[8..16].try_into().unwrap()),
    )
}

#[test]
fn every_key_holds_a_value_it_had_during_the_save() {
    let dir = std::env::temp_dir().join(format!("mapcache-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("live.snap");
    let map = Map::new(Config::default()).unwrap();
    let rounds = [AtomicU64::new(0), AtomicU64::new(0)];
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for (w, done) in rounds.iter().enumerate() {
            let (map, stop) = (&map, &stop);
            s.spawn(move || {
                let keys = w as u64 * KEYS_PER_WRITER..(w as u64 + 1) * KEYS_PER_WRITER;
                for round in 1.. {
                    for key in keys.clone() {
                        map.insert(&key.to_le_bytes(), &value(key, round)).unwrap();
                    }
                    done.store(round, Ordering::Release);
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                }
            });
        }
        let wait_for = |targets: [u64; 2]| {
            while rounds
                .iter()
                .zip(targets)
                .any(|(r, t)| r.load(Ordering::Acquire) < t)
            {
                std::thread::yield_now();
            }
        };
        // Every key exists before the save starts.
        wait_for([1, 1]);
        let before = [0, 1].map(|w| rounds[w].load(Ordering::Acquire));
        let mut first = true;
        let report = map
            .save_with_progress(&path, |_| {
                if first {
                    first = false;
                    wait_for(before.map(|r| r + 1));
                }
            })
            .unwrap();
        let after = [0, 1].map(|w| rounds[w].load(Ordering::Acquire));
        stop.store(true, Ordering::Release);
        assert_eq!(report.records, 2 * KEYS_PER_WRITER);
        assert!(
            report.blocks >= 3,
            "the handshake needs a block before the end"
        );

        let loaded = Map::load(&path, Config::default()).unwrap();
        assert_eq!(loaded.len(), 2 * KEYS_PER_WRITER as usize);
        let mut newer = 0;
        for key in 0..2 * KEYS_PER_WRITER {
            let w = (key / KEYS_PER_WRITER) as usize;
            let v = loaded
                .get(&key.to_le_bytes())
                .unwrap()
                .expect("every key saved");
            let (named, round) = parse(&v);
            assert_eq!(named, key, "a value of another key");
            assert!(
                (before[w]..=after[w] + 1).contains(&round),
                "key {key}: round {round} outside {}..={} (the save's span)",
                before[w],
                after[w] + 1
            );
            newer += usize::from(round > before[w]);
        }
        // The shards copied after the handshake hold newer rounds.
        assert!(newer > 0, "no key was written during the save");
        eprintln!(
            "rounds before/after the save: {before:?}/{after:?}; {newer} of {} keys newer than at the start",
            2 * KEYS_PER_WRITER
        );
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
