//! Bounded caches: the entry and byte bounds hold after every operation, the
//! shard count follows the capacity, statistics add up, and eviction under
//! concurrent readers and writers never shows a value that was not written nor
//! loses an entry the policy did not evict.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use mapcache::{Config, Error, Map, MIN_ENTRIES_PER_SHARD};

/// A tiny deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn cache(max_entries: usize, max_bytes: usize, shards: usize) -> Map {
    Map::new(Config {
        max_entries,
        max_bytes,
        shards,
        seed: Some(7),
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn a_small_cache_is_one_shard_and_a_large_one_is_split_into_shares_that_add_up() {
    assert_eq!(cache(250, 0, 0).table_stats().shards, 1);
    assert_eq!(
        cache(2 * MIN_ENTRIES_PER_SHARD - 1, 0, 0)
            .table_stats()
            .shards,
        1
    );
    // 4 MiB at the assumed 138 bytes an entry (a small entry's charge) is
    // 30,393 entries: 4 shards of at least MIN_ENTRIES_PER_SHARD (the largest
    // power of two up to 7; or fewer, on a machine with fewer cores).
    let auto = cache(0, 0, 0).table_stats().shards;
    assert_eq!(cache(0, 4 << 20, 0).table_stats().shards, auto.min(4));
    // 1,003 entries over 8 explicit shards: the shares add up to exactly 1,003.
    let map = cache(1003, 0, 8);
    for i in 0..20_000u32 {
        map.insert(&i.to_le_bytes(), b"v").unwrap();
    }
    assert_eq!(map.len(), 1003);
    assert!(matches!(
        Map::new(Config { max_entries: 3, shards: 8, ..Config::default() }),
        Err(Error::InvalidConfig(m)) if m.contains("max_entries")
    ));
}

/// Random puts (mixed sizes, some with a TTL), updates, removes, CAS and
/// insert-if-absent against a cache bounded both ways: after every operation
/// the count and the charged bytes are within their bounds.
#[test]
fn the_entry_and_byte_bounds_hold_after_every_operation() {
    for (max_entries, max_bytes, shards) in [
        (500, 0, 1),
        (0, 64 << 10, 1),
        (300, 40 << 10, 2),
        (2000, 256 << 10, 4),
    ] {
        let map = cache(max_entries, max_bytes, shards);
        let mut rng = Rng(max_entries as u64 + 1);
        let value = vec![0x5a_u8; 3000];
        for step in 0..60_000u64 {
            let key = rng.below(5_000).to_le_bytes();
            let len = match rng.below(10) {
                0 => rng.below(3000) as usize,
                1..=3 => rng.below(200) as usize,
                _ => rng.below(40) as usize,
            };
            let v = &value[..len];
            match rng.below(10) {
                0 => {
                    map.remove(&key).unwrap();
                }
                1 => {
                    map.compare_and_swap(&key, v, &value[..len / 2]).unwrap();
                }
                2 => {
                    map.insert_if_absent(&key, v).unwrap();
                }
                3 => {
                    map.insert_with_ttl(&key, v, std::time::Duration::from_secs(3600))
                        .unwrap();
                }
                _ => {
                    map.insert(&key, v).unwrap();
                }
            }
            if rng.below(4) == 0 {
                map.get(&rng.below(5_000).to_le_bytes()).unwrap();
            }
            let stats = map.stats();
            if max_entries > 0 {
                assert!(
                    stats.entries <= max_entries,
                    "step {step}: {} entries > {max_entries}",
                    stats.entries
                );
            }
            if max_bytes > 0 {
                assert!(
                    stats.bytes <= max_bytes,
                    "step {step}: {} bytes > {max_bytes}",
                    stats.bytes
                );
            }
            assert_eq!(stats.entries, map.len());
        }
        let stats = map.stats();
        assert!(stats.evictions > 0, "{stats:?}");
        assert_eq!(
            stats.inserts - stats.evictions - stats.expirations - stats.deletes,
            stats.entries as u64
        );
    }
}

#[test]
fn an_entry_larger_than_a_shards_byte_budget_is_refused_and_nothing_changes() {
    let map = cache(0, 4096, 1);
    map.insert(b"small", b"v").unwrap();
    let big = vec![1u8; 5000];
    match map.insert(b"big", &big) {
        Err(Error::TooLarge { bytes, limit }) => {
            assert!(bytes > 5000);
            assert_eq!(limit, 4096);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(map.get(b"big").unwrap(), None);
    assert_eq!(map.get(b"small").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(matches!(
        map.get_or_load(b"big", || Ok::<_, Error>(big.clone())),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(map.stats().evictions, 0);
}

/// Single-threaded, a model (a HashMap of what should be present, given the
/// evictions the statistics report) checks that the counters add up exactly.
#[test]
fn statistics_add_up_exactly_on_a_single_thread() {
    let map = cache(100, 0, 1);
    let mut rng = Rng(99);
    let (mut lookups, mut hits, mut inserts, mut updates, mut deletes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for _ in 0..50_000 {
        let key = rng.below(300).to_le_bytes();
        match rng.below(6) {
            0 | 1 => {
                lookups += 1;
                if map.get(&key).unwrap().is_some() {
                    hits += 1;
                }
            }
            2 => {
                if map.remove(&key).unwrap() {
                    deletes += 1;
                }
            }
            3 => {
                let keys: Vec<[u8; 8]> = (0..4).map(|_| rng.below(300).to_le_bytes()).collect();
                map.get_many_with(keys.iter().map(|k| &k[..]), |_, found| {
                    lookups += 1;
                    if found.unwrap().is_some() {
                        hits += 1;
                    }
                });
            }
            _ => {
                if map.insert(&key, b"value").unwrap() {
                    updates += 1;
                } else {
                    inserts += 1;
                }
            }
        }
    }
    // contains_key is not a lookup.
    map.contains_key(b"x").unwrap();
    let stats = map.stats();
    assert_eq!(stats.hits + stats.misses, lookups);
    assert_eq!(stats.hits, hits);
    assert_eq!(stats.inserts, inserts);
    assert_eq!(stats.updates, updates);
    assert_eq!(stats.deletes, deletes);
    assert_eq!(stats.expirations, 0);
    assert_eq!(
        stats.inserts - stats.evictions - stats.deletes,
        stats.entries as u64
    );
    assert_eq!(stats.entries, map.len());
    assert!(stats.evictions > 0);
    let before = stats.entries as u64;
    map.clear().unwrap();
    let stats = map.stats();
    assert_eq!(stats.deletes, deletes + before);
    assert_eq!(stats.entries, 0);
    assert_eq!(stats.bytes, 0);
}

/// Values encode their key and writer, so a reader can tell a value that was
/// never written for the key it asked for.
fn value_for(key: u64, writer: u64, version: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + (key % 40) as usize);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend_from_slice(&writer.to_le_bytes());
    v.extend_from_slice(&version.to_le_bytes());
    v.resize(24 + (key % 40) as usize, key as u8);
    v
}

fn check_value(key: u64, value: &[u8]) {
    assert!(value.len() >= 24, "short value for key {key}");
    assert_eq!(
        u64::from_le_bytes(value[..8].try_into().unwrap()),
        key,
        "a value of another key"
    );
    assert_eq!(value.len(), 24 + (key % 40) as usize);
    assert!(value[24..].iter().all(|&b| b == key as u8));
}

/// 8 threads (4 writers, 4 readers) on a cache far smaller than their key
/// space: every value read belongs to its key, and at the end every key that
/// was written is either present or one of the evictions the cache reports.
#[test]
fn eight_threads_during_heavy_eviction_see_only_written_values_and_lose_nothing_unevicted() {
    let map = cache(2_000, 0, 4);
    let stop = AtomicBool::new(false);
    const KEYS_PER_WRITER: u64 = 20_000;
    thread::scope(|s| {
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let map = &map;
                s.spawn(move || {
                    let mut rng = Rng(w + 11);
                    for version in 0..40_000u64 {
                        let key = w * KEYS_PER_WRITER + rng.below(KEYS_PER_WRITER);
                        map.insert(&key.to_le_bytes(), &value_for(key, w, version))
                            .unwrap();
                    }
                })
            })
            .collect();
        for r in 0..4u64 {
            let (map, stop) = (&map, &stop);
            s.spawn(move || {
                let mut rng = Rng(r + 101);
                while !stop.load(Ordering::Relaxed) {
                    let key = rng.below(4 * KEYS_PER_WRITER);
                    if let Some(v) = map.get(&key.to_le_bytes()).unwrap() {
                        check_value(key, &v);
                    }
                }
            });
        }
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let stats = map.stats();
    assert!(map.len() <= 2_000);
    // No deletes, no TTLs: every key inserted is present or was evicted.
    assert_eq!(
        stats.inserts - stats.evictions,
        map.len() as u64,
        "{stats:?}"
    );
    let mut present = 0u64;
    for item in map.iter() {
        let (k, v) = item.unwrap();
        check_value(u64::from_le_bytes(k[..].try_into().unwrap()), &v);
        present += 1;
    }
    assert_eq!(present, map.len() as u64);
}

/// An exact model of the policy's choices is not needed to see that eviction
/// removes only what the policy chose: with a capacity above the keys written,
/// nothing is ever evicted.
#[test]
fn a_cache_that_never_fills_never_evicts() {
    let map = cache(10_000, 0, 0);
    let mut model = HashMap::new();
    let mut rng = Rng(5);
    for _ in 0..30_000 {
        let key = rng.below(9_000);
        let value = rng.next().to_le_bytes();
        map.insert(&key.to_le_bytes(), &value).unwrap();
        model.insert(key, value);
    }
    assert_eq!(map.stats().evictions, 0);
    for (key, value) in &model {
        assert_eq!(
            map.get(&key.to_le_bytes()).unwrap().as_deref(),
            Some(&value[..])
        );
    }
}

/// A large shard's readers drop hits their full stripe cannot take (the
/// writers replay what the buffer holds): a long read-only phase counts every
/// hit in the statistics, evicts nothing, and the cache keeps its bound once
/// writes resume.
#[test]
fn a_large_shards_read_only_phase_drops_hits_without_losing_anything() {
    let map = cache(100_000, 0, 1);
    for i in 0..1_000u32 {
        map.insert(&i.to_le_bytes(), b"v").unwrap();
    }
    for round in 0..100u32 {
        for i in 0..1_000u32 {
            assert!(map
                .get(&((i + round) % 1_000).to_le_bytes())
                .unwrap()
                .is_some());
        }
    }
    let stats = map.stats();
    assert_eq!(stats.hits, 100_000);
    assert_eq!(stats.evictions, 0);
    for i in 1_000..150_000u32 {
        map.insert(&i.to_le_bytes(), b"v").unwrap();
    }
    assert_eq!(map.len(), 100_000);
    let stats = map.stats();
    assert_eq!(stats.inserts - stats.evictions, 100_000);
}

#[test]
fn a_byte_bound_too_small_for_any_entry_in_a_shard_is_refused() {
    // 8 bytes over 16 shards would leave shards with a share of 0: unbounded.
    for (max_bytes, shards) in [(8, 16), (100, 256), (8, 0)] {
        let result = Map::new(Config {
            max_bytes,
            shards,
            ..Config::default()
        });
        assert!(
            matches!(&result, Err(Error::InvalidConfig(m)) if m.contains("max_bytes")),
            "{max_bytes} over {shards}: {:?}",
            result.as_ref().err()
        );
    }
    assert!(Map::new(Config {
        max_bytes: 4096,
        shards: 16,
        ..Config::default()
    })
    .is_ok());
}

/// The edge of the check above: the smallest byte bound a shard accepts holds
/// the smallest entry (an empty key and value), and one byte less is refused.
/// (The check once used the entry header alone, 8 bytes less than what a put
/// is charged, so bounds of 82 to 89 bytes were accepted and every put refused.)
#[test]
fn the_smallest_byte_bound_accepted_holds_the_smallest_entry() {
    // With a default TTL every plain write carries a deadline too.
    for default_ttl in [
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(60),
    ] {
        smallest_byte_bound_holds_the_smallest_entry(default_ttl);
    }
}

fn smallest_byte_bound_holds_the_smallest_entry(default_ttl: std::time::Duration) {
    let new = |max_bytes, shards| {
        Map::new(Config {
            max_bytes,
            shards,
            default_ttl,
            ..Config::default()
        })
    };
    for shards in [1, 4] {
        // The smallest accepted share, found from the bottom up.
        let share = (1..4096)
            .find(|share| new(share * shards, shards).is_ok())
            .expect("some share under 4 KiB is accepted");
        let map = new(share * shards, shards).unwrap();
        // Empty keys are one key; each shard holds at least one entry.
        map.insert(b"", b"").unwrap();
        assert_eq!(map.get(b"").unwrap().as_deref(), Some(&b""[..]));
        let message = match new((share - 1) * shards, shards) {
            Err(Error::InvalidConfig(m)) => m,
            other => panic!("one byte under the share: {:?}", other.err()),
        };
        assert!(
            message.contains(&format!("smallest entry's charge ({share} bytes)")),
            "{message}"
        );
    }
}

#[test]
fn expired_entries_make_room_before_the_policy_evicts_a_live_one() {
    let clock = mapcache::Clock::manual();
    let map = Map::new(Config {
        max_entries: 2,
        clock: clock.clone(),
        seed: Some(3),
        ..Config::default()
    })
    .unwrap();
    map.insert_with_ttl(b"a", b"1", std::time::Duration::from_secs(1))
        .unwrap();
    map.insert_with_ttl(b"b", b"2", std::time::Duration::from_secs(1))
        .unwrap();
    clock.advance(std::time::Duration::from_secs(2)).unwrap();
    map.insert(b"c", b"3").unwrap();
    let stats = map.stats();
    // The write's sweep runs before its evictions: the table is one chain, so
    // it removes both expired entries, and nothing live is evicted for c.
    assert_eq!(map.len(), 1);
    assert_eq!(map.get(b"c").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!((stats.evictions, stats.expirations), (0, 2), "{stats:?}");
    assert_eq!(
        stats.inserts - stats.evictions - stats.expirations - stats.deletes,
        map.len() as u64
    );
}
