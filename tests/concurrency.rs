//! Concurrency tests of the concurrent mode: mixed operations from 8 threads with
//! checks that only a linearizable map passes, and readers that must never miss a
//! key while writers force dozens of grows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use mapcache::{Config, Map};

const THREADS: usize = 8;

/// Work multiplier: 1 in `make test`, 20 under `make stress` (MAPCACHE_STRESS=1).
fn scale() -> u32 {
    if std::env::var_os("MAPCACHE_STRESS").is_some() {
        20
    } else {
        1
    }
}

fn small_map(shards: usize) -> Arc<Map> {
    // Start from one bucket per shard so the run goes through many grows.
    Arc::new(
        Map::new(Config {
            shards,
            ..Config::default()
        })
        .unwrap(),
    )
}

/// A value that says who wrote it, for which key, and when.
fn encode(key: u32, thread: u32, seq: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + (seq % 17) as usize);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend_from_slice(&thread.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.resize(12 + (seq % 17) as usize, (seq % 251) as u8);
    v
}

fn decode(v: &[u8]) -> (u32, u32, u32) {
    let word = |i: usize| u32::from_le_bytes(v[i..i + 4].try_into().unwrap());
    let (key, thread, seq) = (word(0), word(4), word(8));
    assert_eq!(v.len(), 12 + (seq % 17) as usize, "torn value");
    assert!(
        v[12..].iter().all(|&b| b == (seq % 251) as u8),
        "torn value"
    );
    (key, thread, seq)
}

/// 8 threads at once on overlapping keys:
/// - CAS increments of shared counters lose no increment;
/// - every value read from a shared key was written for that key, whole, and
///   each reader sees each writer's values for a key in write order;
/// - on keys a thread owns, it always reads its own last write.
#[test]
fn mixed_operations_are_linearizable() {
    const COUNTERS: u32 = 16;
    const SHARED: u32 = 64;
    let rounds = 20_000 * scale();
    let map = small_map(2);
    for c in 0..COUNTERS {
        map.insert(format!("counter-{c}").as_bytes(), &0u64.to_le_bytes())
            .unwrap();
    }
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS as u32)
        .map(|t| {
            let (map, start) = (Arc::clone(&map), Arc::clone(&start));
            thread::spawn(move || {
                let mut increments = vec![0u64; COUNTERS as usize];
                let mut last_seen: HashMap<(u32, u32), u32> = HashMap::new();
                let mut rng = 0x9e37_79b9u32.wrapping_mul(t + 1);
                let mut next = || {
                    rng ^= rng << 13;
                    rng ^= rng >> 17;
                    rng ^= rng << 5;
                    rng
                };
                start.wait();
                for seq in 0..rounds {
                    // A CAS increment of a random counter.
                    let c = next() % COUNTERS;
                    let key = format!("counter-{c}");
                    loop {
                        let old = map.get(key.as_bytes()).unwrap().unwrap();
                        let new =
                            (u64::from_le_bytes(old[..].try_into().unwrap()) + 1).to_le_bytes();
                        if map.compare_and_swap(key.as_bytes(), &old, &new).unwrap() == Some(true) {
                            increments[c as usize] += 1;
                            break;
                        }
                    }
                    // A write, removal or read of a shared key.
                    let k = next() % SHARED;
                    let key = format!("shared-{k}");
                    match next() % 4 {
                        0 => {
                            map.insert(key.as_bytes(), &encode(k, t, seq)).unwrap();
                        }
                        1 => {
                            map.remove(key.as_bytes()).unwrap();
                        }
                        _ => {
                            if let Some(v) = map.get(key.as_bytes()).unwrap() {
                                let (vk, writer, wseq) = decode(&v);
                                assert_eq!(vk, k, "value of another key");
                                let last = last_seen.entry((k, writer)).or_insert(0);
                                assert!(wseq >= *last, "went back in time on {key}");
                                *last = wseq;
                            }
                        }
                    }
                    // Read-your-writes on an owned key (with grows going on).
                    let own = format!("own-{t}-{}", seq % 512);
                    if seq % 3 == 0 {
                        assert!(map.remove(own.as_bytes()).is_ok());
                        assert_eq!(map.get(own.as_bytes()).unwrap(), None);
                    } else {
                        map.insert(own.as_bytes(), &encode(seq, t, seq)).unwrap();
                        assert_eq!(map.get(own.as_bytes()).unwrap(), Some(encode(seq, t, seq)));
                    }
                }
                increments
            })
        })
        .collect();
    let mut totals = vec![0u64; COUNTERS as usize];
    for worker in workers {
        for (total, n) in totals.iter_mut().zip(worker.join().unwrap()) {
            *total += n;
        }
    }
    for c in 0..COUNTERS {
        let v = map.get(format!("counter-{c}").as_bytes()).unwrap().unwrap();
        assert_eq!(
            u64::from_le_bytes(v[..].try_into().unwrap()),
            totals[c as usize]
        );
    }
    assert_eq!(totals.iter().sum::<u64>(), THREADS as u64 * rounds as u64);
    // The count matches what iteration finds.
    assert_eq!(map.iter().count(), map.len());
}

/// Marks its reader as gone when dropped, also when the reader panics, so that
/// writers waiting for its next pass stop waiting.
struct Gone(Arc<AtomicBool>);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Readers look up a fixed set of keys in a loop, and iterate, while writers
/// insert and delete enough other keys to double every table many times.
///
/// Handshakes, not timing, make the two overlap: each writer, whenever its count
/// of inserts reaches a power of two (about one grow of each table apart), waits
/// until every reader has finished a pass since the writer's previous such
/// point. So every reader's passes are spread over the whole run of grows,
/// however the threads are scheduled.
#[test]
fn readers_never_miss_during_grows() {
    const FIXED: u32 = 2_000;
    const WRITERS: u32 = 2;
    const READERS: usize = 3;
    let per_writer = 200_000 * scale();
    let map = small_map(2);
    for i in 0..FIXED {
        map.insert(format!("fixed-{i}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let reader_gone = Arc::new(AtomicBool::new(false));
    let passes: Arc<Vec<AtomicU64>> = Arc::new((0..READERS).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (map, done, passes) = (Arc::clone(&map), Arc::clone(&done), Arc::clone(&passes));
            let gone = Gone(Arc::clone(&reader_gone));
            thread::spawn(move || {
                let _gone = gone;
                let mut lookups = 0u64;
                let mut buf = Vec::new();
                // At least one pass, however late this thread starts.
                loop {
                    for i in (r as u32..FIXED).step_by(7) {
                        let key = format!("fixed-{i}");
                        assert!(
                            map.get_into(key.as_bytes(), &mut buf).unwrap(),
                            "missed {key}"
                        );
                        assert_eq!(buf, i.to_le_bytes());
                        lookups += 1;
                    }
                    if r == 0 {
                        // Every fixed key exactly once, whatever grows meanwhile.
                        let mut seen = vec![0u8; FIXED as usize];
                        for item in map.iter() {
                            let (k, _) = item.unwrap();
                            if let Some(i) = k.strip_prefix(b"fixed-") {
                                let i: usize = std::str::from_utf8(i).unwrap().parse().unwrap();
                                seen[i] += 1;
                            }
                        }
                        assert!(
                            seen.iter().all(|&n| n == 1),
                            "iteration missed or repeated a fixed key"
                        );
                    }
                    passes[r].fetch_add(1, Ordering::Release);
                    if done.load(Ordering::Acquire) {
                        break;
                    }
                }
                lookups
            })
        })
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (map, passes, reader_gone) = (
                Arc::clone(&map),
                Arc::clone(&passes),
                Arc::clone(&reader_gone),
            );
            thread::spawn(move || {
                let mut since: Vec<u64> =
                    passes.iter().map(|p| p.load(Ordering::Acquire)).collect();
                for i in 0..per_writer {
                    let key = format!("churn-{w}-{i}");
                    map.insert(key.as_bytes(), &i.to_le_bytes()).unwrap();
                    if i % 4 == 0 {
                        assert!(map.remove(key.as_bytes()).unwrap());
                    }
                    if i >= 64 && i.is_power_of_two() {
                        // A pass by every reader since the last checkpoint.
                        for (p, last) in passes.iter().zip(since.iter_mut()) {
                            while p.load(Ordering::Acquire) == *last
                                && !reader_gone.load(Ordering::Acquire)
                            {
                                thread::yield_now();
                            }
                            *last = p.load(Ordering::Acquire);
                        }
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    let stats = map.table_stats();
    assert!(stats.grows >= 24, "expected dozens of grows: {stats:?}");
    assert_eq!(
        map.len(),
        FIXED as usize + (WRITERS * per_writer * 3 / 4) as usize
    );
}

/// Writers that contend on one shard wait for each other and lose nothing.
#[test]
fn writers_on_one_shard_serialise() {
    let map = small_map(1);
    let workers: Vec<_> = (0..THREADS as u32)
        .map(|t| {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                for i in 0..10_000u32 {
                    map.insert(format!("{t}-{i}").as_bytes(), &i.to_le_bytes())
                        .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(map.len(), THREADS * 10_000);
    for t in 0..THREADS {
        for i in (0..10_000u32).step_by(97) {
            assert_eq!(
                map.get(format!("{t}-{i}").as_bytes()).unwrap(),
                Some(i.to_le_bytes().to_vec())
            );
        }
    }
}
