//! Model-based property test: random operation sequences run against the map and
//! against `std::collections::HashMap`, which must agree on every result. Small
//! key spaces and one or two shards force long chains, many grows, and (through
//! insert/remove churn) same-size rebuilds.

use std::collections::HashMap;

use mapcache::{Config, EngineChoice, Map};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u8),
    Remove(u16),
    Get(u16),
    Contains(u16),
    InsertIfAbsent(u16, u8),
    Cas(u16, u8, u8),
    GetOrInsert(u16, u8),
    Clear,
    Len,
}

fn key(k: u16) -> Vec<u8> {
    // Keys of varying length, some sharing prefixes.
    let mut key = format!("k{k}").into_bytes();
    key.resize(1 + (k as usize % 23), b'x');
    key.extend_from_slice(&k.to_le_bytes());
    key
}

fn value(v: u8) -> Vec<u8> {
    vec![v; v as usize % 40]
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => (0..keys).prop_map(Op::Remove),
        4 => (0..keys).prop_map(Op::Get),
        1 => (0..keys).prop_map(Op::Contains),
        2 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::InsertIfAbsent(k, v)),
        2 => (0..keys, any::<u8>(), any::<u8>()).prop_map(|(k, e, v)| Op::Cas(k, e, v)),
        1 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        // Clear is rare (about one op in 1600), so that tables get big between clears.
        2 => any::<u8>().prop_map(|n| if n < 4 { Op::Clear } else { Op::Len }),
    ]
}

fn config(shards: usize, seed: u64, engine: EngineChoice) -> Config {
    Config {
        shards,
        seed: Some(seed),
        engine,
        ..Config::default()
    }
}

fn run(map: &Map, ops: &[Op]) {
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for op in ops {
        match *op {
            Op::Insert(k, v) => {
                let replaced = map.insert(&key(k), &value(v)).unwrap();
                assert_eq!(replaced, model.insert(key(k), value(v)).is_some(), "{op:?}");
            }
            Op::Remove(k) => {
                assert_eq!(
                    map.remove(&key(k)).unwrap(),
                    model.remove(&key(k)).is_some(),
                    "{op:?}"
                );
            }
            Op::Get(k) => assert_eq!(
                map.get(&key(k)).unwrap().as_ref(),
                model.get(&key(k)),
                "{op:?}"
            ),
            Op::Contains(k) => {
                assert_eq!(
                    map.contains_key(&key(k)).unwrap(),
                    model.contains_key(&key(k))
                )
            }
            Op::InsertIfAbsent(k, v) => {
                let got = map.insert_if_absent(&key(k), &value(v)).unwrap();
                let expected = model.get(&key(k)).cloned();
                if expected.is_none() {
                    model.insert(key(k), value(v));
                }
                assert_eq!(got, expected, "{op:?}");
            }
            Op::Cas(k, e, v) => {
                let got = map.compare_and_swap(&key(k), &value(e), &value(v)).unwrap();
                let expected = match model.get_mut(&key(k)) {
                    None => None,
                    Some(current) if *current == value(e) => {
                        *current = value(v);
                        Some(true)
                    }
                    Some(_) => Some(false),
                };
                assert_eq!(got, expected, "{op:?}");
            }
            Op::GetOrInsert(k, v) => {
                let got = map.get_or_insert_with(&key(k), || value(v)).unwrap();
                let expected = model.entry(key(k)).or_insert_with(|| value(v)).clone();
                assert_eq!(got, expected, "{op:?}");
            }
            Op::Clear => {
                map.clear().unwrap();
                model.clear();
            }
            Op::Len => assert_eq!(map.len(), model.len()),
        }
    }
    assert_eq!(map.len(), model.len());
    let mut seen: Vec<(Vec<u8>, Vec<u8>)> = map.iter().collect::<Result<_, _>>().unwrap();
    seen.sort();
    let mut expected: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
    expected.sort();
    assert_eq!(seen, expected);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_hashmap_one_shard(seed: u64, ops in prop::collection::vec(op(400), 1..3000)) {
        run(&Map::new(config(1, seed, EngineChoice::Single)).unwrap(), &ops);
    }

    #[test]
    fn agrees_with_hashmap_tiny_keyspace(seed: u64, ops in prop::collection::vec(op(24), 1..2000)) {
        run(&Map::new(config(2, seed, EngineChoice::Single)).unwrap(), &ops);
    }

    #[test]
    fn agrees_with_hashmap_parallel_engine(seed: u64, ops in prop::collection::vec(op(3000), 1..4000)) {
        run(&Map::new(config(1, seed, EngineChoice::Parallel)).unwrap(), &ops);
    }
}

/// Churn on a small table must trigger same-size rebuilds (overflow compaction):
/// each round fills 8 buckets to their load limit with fresh keys and empties
/// them again, so every chain meets its overflow buckets sooner or later, and the
/// model must still agree afterwards.
#[test]
fn churn_forces_same_size_rebuilds() {
    let map = Map::new(config(1, 7, EngineChoice::Single)).unwrap();
    let mut model = HashMap::new();
    let mut next = 0u64;
    for _round in 0..4000 {
        let keys: Vec<Vec<u8>> = (0..50)
            .map(|_| {
                next += 1;
                next.to_le_bytes().to_vec()
            })
            .collect();
        for k in &keys {
            map.insert(k, k).unwrap();
            model.insert(k.clone(), k.clone());
        }
        assert_eq!(map.len(), model.len());
        for k in &keys {
            assert!(map.remove(k).unwrap());
            model.remove(k);
        }
    }
    let stats = map.table_stats();
    assert!(
        stats.rebuilds > 0,
        "no same-size rebuild happened: {stats:?}"
    );
    assert!(stats.grows > 0, "{stats:?}");
    assert_eq!(map.len(), model.len());
    for (k, v) in &model {
        assert_eq!(map.get(k).unwrap().as_ref(), Some(v));
    }
}

#[test]
fn limits_are_enforced_with_errors() {
    let map = Map::new(Config::default()).unwrap();
    let long_key = vec![0u8; mapcache::MAX_KEY_LEN + 1];
    assert_eq!(
        map.insert(&long_key, b"v"),
        Err(mapcache::Error::KeyTooLong {
            len: long_key.len()
        })
    );
    assert!(matches!(
        map.get(&long_key),
        Err(mapcache::Error::KeyTooLong { .. })
    ));
    assert!(matches!(
        map.remove(&long_key),
        Err(mapcache::Error::KeyTooLong { .. })
    ));
    let max_key = vec![7u8; mapcache::MAX_KEY_LEN];
    assert!(!map.insert(&max_key, b"ok").unwrap());
    assert_eq!(map.get(&max_key).unwrap().as_deref(), Some(&b"ok"[..]));
    // An empty key and an empty value are ordinary.
    assert!(!map.insert(b"", b"").unwrap());
    assert_eq!(map.get(b"").unwrap(), Some(vec![]));
    let bad = Map::new(Config {
        shards: 3,
        ..Config::default()
    });
    assert!(matches!(bad, Err(mapcache::Error::InvalidConfig(m)) if m.contains("shards")));
}

#[test]
fn value_over_limit_is_rejected_without_allocating_it() {
    // Build a slice longer than the limit without committing its memory: a
    // zero-filled allocation is lazily backed by the OS.
    let too_long = vec![0u8; mapcache::MAX_VALUE_LEN + 1];
    let map = Map::new(Config::default()).unwrap();
    assert_eq!(
        map.insert(b"k", &too_long),
        Err(mapcache::Error::ValueTooLong {
            len: too_long.len()
        })
    );
    assert!(map.is_empty());
}

/// The batch lookup gives, key by key and in order, what single lookups give:
/// present, absent, empty, and too-long keys mixed, across many shards.
#[test]
fn get_many_with_agrees_with_single_gets() {
    let map = Map::new(config(8, 3, EngineChoice::Auto)).unwrap();
    for i in 0..5_000u32 {
        if i % 3 != 0 {
            map.insert(&i.to_le_bytes(), &i.to_be_bytes().repeat(i as usize % 5))
                .unwrap();
        }
    }
    map.insert(b"", b"empty key").unwrap();
    let too_long = vec![1u8; mapcache::MAX_KEY_LEN + 1];
    let owned: Vec<Vec<u8>> = (0..5_000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let mut keys: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    keys.insert(17, b"");
    keys.insert(400, &too_long);
    let mut seen = 0;
    map.get_many_with(keys.iter().copied(), |i, result| {
        assert_eq!(i, seen, "keys must be served in order");
        seen += 1;
        match map.get(keys[i]) {
            Ok(expected) => assert_eq!(result.unwrap().map(<[u8]>::to_vec), expected),
            Err(expected) => assert_eq!(result.unwrap_err(), expected),
        }
    });
    assert_eq!(seen, keys.len());
}

/// Reads through a pinned view agree with plain reads, also while another
/// thread replaces and removes the values (old or new, never torn), and the view
/// can be re-pinned.
#[test]
fn pinned_view_reads_agree() {
    let map = std::sync::Arc::new(Map::new(config(4, 9, EngineChoice::Auto)).unwrap());
    for i in 0..20_000u32 {
        map.insert(&i.to_le_bytes(), &[i as u8; 24]).unwrap();
    }
    let writer = {
        let map = std::sync::Arc::clone(&map);
        std::thread::spawn(move || {
            for round in 0..5u32 {
                for i in (0..20_000u32).step_by(3) {
                    map.insert(&i.to_le_bytes(), &[(i + round) as u8; 24])
                        .unwrap();
                }
            }
            for i in 20_000..60_000u32 {
                map.insert(&i.to_le_bytes(), b"grow").unwrap();
            }
        })
    };
    let mut view = map.pin();
    let mut buf = Vec::new();
    for pass in 0..20 {
        for i in 0..20_000u32 {
            assert!(view.get_into(&i.to_le_bytes(), &mut buf).unwrap());
            assert_eq!(buf.len(), 24);
            assert!(buf.iter().all(|&b| b == buf[0]), "torn value");
            assert!(view.contains_key(&i.to_le_bytes()).unwrap());
        }
        assert_eq!(view.get(b"absent").unwrap(), None);
        if pass % 4 == 0 {
            view.repin();
        }
    }
    drop(view);
    writer.join().unwrap();
    let view = map.pin();
    for i in 0..60_000u32 {
        assert_eq!(
            view.get(&i.to_le_bytes()).unwrap(),
            map.get(&i.to_le_bytes()).unwrap()
        );
    }
}

/// Iteration stays exactly-once across resizes that happen between its steps:
/// grows (keys present throughout are yielded once), and a clear that shrinks
/// the tables mid-iteration (no key is ever yielded twice, even keys re-inserted
/// into the small table at positions the cursor has already passed).
#[test]
fn iteration_survives_grows_and_a_shrinking_clear() {
    use mapcache::Cursor;
    use std::collections::HashSet;

    let map = Map::new(config(2, 11, EngineChoice::Single)).unwrap();
    let fixed: Vec<Vec<u8>> = (0..3_000u32)
        .map(|i| format!("fixed-{i}").into_bytes())
        .collect();
    for k in &fixed {
        map.insert(k, b"v").unwrap();
    }
    // Grows between steps: every fixed key exactly once.
    let grows_before = map.table_stats().grows;
    let mut cursor = Cursor::new();
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut extra = 0u32;
    while map
        .scan(&mut cursor, |k, _| {
            *seen.entry(k.to_vec()).or_default() += 1
        })
        .unwrap()
    {
        // 20,000 more keys over the first 400 steps: several doublings.
        if extra < 20_000 {
            for _ in 0..50 {
                map.insert(format!("extra-{extra}").as_bytes(), b"x")
                    .unwrap();
                extra += 1;
            }
        }
    }
    assert!(
        map.table_stats().grows >= grows_before + 4,
        "the tables must double several times during the iteration"
    );
    for k in &fixed {
        assert_eq!(seen.get(k), Some(&1), "{}", String::from_utf8_lossy(k));
    }
    assert!(seen.values().all(|&n| n == 1), "a key was yielded twice");

    // A clear halfway (tables shrink back to their initial size), then the fixed
    // keys again: none twice.
    let mut cursor = Cursor::new();
    let mut yielded: HashSet<Vec<u8>> = HashSet::new();
    let mut steps = 0;
    while map
        .scan(&mut cursor, |k, _| {
            assert!(
                yielded.insert(k.to_vec()),
                "{} yielded twice",
                String::from_utf8_lossy(k)
            );
        })
        .unwrap()
    {
        steps += 1;
        // 43 steps: the cursor stops mid-bucket of the smaller tables the
        // re-inserted keys grow to (a multiple of 8 would fall on a boundary).
        if steps == 43 {
            map.clear().unwrap();
            for k in &fixed {
                map.insert(k, b"again").unwrap();
            }
        }
    }
    assert!(steps > 43, "the clear happened mid-iteration");
}
