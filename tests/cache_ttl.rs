//! Time-to-live, against an injected clock (no test sleeps): an expired entry is
//! never returned by any read path, is treated as absent by every write, is
//! reclaimed lazily and by the sweep, and counts as an expiration.

use std::time::Duration;

use mapcache::{Clock, Config, Map, Mode};

const SEC: Duration = Duration::from_secs(1);

fn cache_with(clock: &Clock, mode: Mode, max_entries: usize) -> Map {
    Map::new(Config {
        clock: clock.clone(),
        mode,
        max_entries,
        shards: 1,
        ..Config::default()
    })
    .unwrap()
}

/// Every read path sees `key` while it is live and none sees it once expired.
fn assert_visible(map: &Map, key: &[u8], visible: bool) {
    assert_eq!(map.get(key).unwrap().is_some(), visible, "get");
    let mut buf = Vec::new();
    assert_eq!(map.get_into(key, &mut buf).unwrap(), visible, "get_into");
    assert_eq!(
        map.get_with(key, |v| v.len()).unwrap().is_some(),
        visible,
        "get_with"
    );
    assert_eq!(map.contains_key(key).unwrap(), visible, "contains_key");
    let mut batch = Vec::new();
    map.get_many_with([key, b"absent"], |_, found| {
        batch.push(found.unwrap().is_some())
    });
    assert_eq!(batch, vec![visible, false], "get_many_with");
    let view = map.pin();
    assert_eq!(view.get(key).unwrap().is_some(), visible, "Pinned::get");
    assert_eq!(
        view.contains_key(key).unwrap(),
        visible,
        "Pinned::contains_key"
    );
    drop(view);
    let listed = map.iter().map(|item| item.unwrap().0).any(|k| k == key);
    assert_eq!(listed, visible, "iter");
}

#[test]
fn an_expired_entry_is_never_returned_by_any_read_path() {
    for (mode, max_entries) in [
        (Mode::Concurrent, 0),
        (Mode::Exclusive, 0),
        (Mode::Concurrent, 100),
    ] {
        let clock = Clock::manual();
        let map = cache_with(&clock, mode, max_entries);
        map.insert_with_ttl(b"k", b"v", 10 * SEC).unwrap();
        map.insert(b"forever", b"v").unwrap();
        assert_visible(&map, b"k", true);
        clock.advance(10 * SEC - Duration::from_nanos(1)).unwrap();
        assert_visible(&map, b"k", true);
        clock.advance(Duration::from_nanos(1)).unwrap();
        assert_visible(&map, b"k", false);
        assert_visible(&map, b"forever", true);
        clock.advance(1_000_000 * SEC).unwrap();
        assert_visible(&map, b"forever", true);
    }
}

#[test]
fn writes_treat_an_expired_entry_as_absent() {
    let clock = Clock::manual();
    let map = cache_with(&clock, Mode::Concurrent, 0);
    let expire = |key: &[u8]| {
        map.insert_with_ttl(key, b"old", SEC).unwrap();
    };
    for key in [&b"a"[..], b"b", b"c", b"d", b"e"] {
        expire(key);
    }
    clock.advance(SEC).unwrap();
    // insert over an expired entry is an insert, not an update.
    assert!(!map.insert(b"a", b"new").unwrap());
    assert_eq!(map.get(b"a").unwrap().as_deref(), Some(&b"new"[..]));
    // insert_if_absent stores, CAS finds nothing, remove reports absent.
    assert_eq!(map.insert_if_absent(b"b", b"new").unwrap(), None);
    assert_eq!(map.compare_and_swap(b"c", b"old", b"new").unwrap(), None);
    assert!(!map.remove(b"d").unwrap());
    assert_eq!(
        map.get_or_insert_with(b"e", || b"new".to_vec()).unwrap(),
        b"new"
    );
    let stats = map.stats();
    // a, b, c, d, e expired: each was taken out as an expiration.
    assert_eq!(stats.expirations, 5, "{stats:?}");
    assert_eq!(stats.updates, 0);
    assert_eq!(stats.deletes, 0);
    assert_eq!(
        stats.inserts - stats.expirations - stats.deletes - stats.evictions,
        map.len() as u64
    );
    assert_eq!(map.len(), 3);
}

#[test]
fn a_zero_ttl_never_expires_and_the_default_ttl_applies_to_plain_writes() {
    let clock = Clock::manual();
    let map = Map::new(Config {
        clock: clock.clone(),
        default_ttl: 5 * SEC,
        ..Config::default()
    })
    .unwrap();
    map.insert(b"default", b"v").unwrap();
    map.insert_with_ttl(b"never", b"v", Duration::ZERO).unwrap();
    map.insert_with_ttl(b"long", b"v", 50 * SEC).unwrap();
    map.insert_if_absent(b"absent", b"v").unwrap();
    map.get_or_load(b"loaded", || Ok::<_, std::io::Error>(b"v".to_vec()))
        .unwrap();
    clock.advance(5 * SEC).unwrap();
    for (key, live) in [
        (&b"default"[..], false),
        (b"never", true),
        (b"long", true),
        (b"absent", false),
        (b"loaded", false),
    ] {
        assert_eq!(
            map.get(key).unwrap().is_some(),
            live,
            "{}",
            String::from_utf8_lossy(key)
        );
    }
    // An update gives the entry a fresh default TTL.
    map.insert_with_ttl(b"long", b"v2", Duration::ZERO).unwrap();
    clock.advance(100 * SEC).unwrap();
    assert!(map.get(b"long").unwrap().is_some());
}

#[test]
fn expired_entries_are_reclaimed_by_readers_and_by_the_sweep() {
    let clock = Clock::manual();
    let map = cache_with(&clock, Mode::Concurrent, 0);
    for i in 0..1000u32 {
        map.insert_with_ttl(&i.to_le_bytes(), b"v", SEC).unwrap();
    }
    clock.advance(SEC).unwrap();
    // A reader that finds an expired entry removes it (concurrent mode).
    assert_eq!(map.get(&7u32.to_le_bytes()).unwrap(), None);
    assert_eq!(map.len(), 999);
    assert_eq!(map.stats().expirations, 1);
    // Writes of other keys sweep one chain each: after as many writes as the
    // table has chains, every expired entry is gone.
    let chains = map.table_stats().buckets;
    for i in 0..chains as u32 + 1 {
        map.insert(&(1_000_000 + i).to_le_bytes(), b"live").unwrap();
    }
    assert_eq!(map.len(), chains + 1, "{:?}", map.stats());
    let stats = map.stats();
    assert_eq!(stats.expirations, 1000);
    assert_eq!(stats.inserts - stats.expirations, stats.entries as u64);
}

#[test]
fn a_system_clock_cannot_be_advanced() {
    let clock = Clock::system();
    assert!(matches!(
        clock.advance(SEC),
        Err(mapcache::Error::InvalidArgument(_))
    ));
    assert!(!clock.is_manual());
    assert!(Clock::manual().is_manual());
}

/// The manual clock ends at `Clock::MANUAL_END` (about 292 years): a move past
/// it stops there, so the clock never reaches the saturated deadlines, and an
/// entry written at the end is not born expired. (It used to saturate at 2^64
/// ns, where every new TTL entry was expired at once and a save left it out
/// without counting it.)
#[test]
fn the_manual_clock_stops_at_its_end_where_new_entries_still_live() {
    let clock = Clock::manual();
    let map = cache_with(&clock, Mode::Concurrent, 0);
    map.insert_with_ttl(b"short", b"1", SEC).unwrap();
    map.insert_with_ttl(b"long", b"2", Duration::MAX).unwrap();
    clock.advance(Clock::MANUAL_END - SEC).unwrap();
    assert_visible(&map, b"short", false);
    // Past the end: the clock stops at it.
    clock.advance(Duration::MAX).unwrap();
    clock.advance(Duration::MAX).unwrap();
    // A TTL entry written at the end lives; so does one whose TTL passed it.
    map.insert_with_ttl(b"at-end", b"3", SEC).unwrap();
    assert_visible(&map, b"at-end", true);
    assert_visible(&map, b"long", true);
    // And a save at the end keeps it (with an expiry after the end).
    let dir = std::env::temp_dir().join(format!("mapcache-clock-end-{}.snap", std::process::id()));
    let saved = map.save(&dir).unwrap();
    assert_eq!((saved.records, saved.expired_skipped), (2, 0));
    let loaded = Map::load(
        &dir,
        Config {
            clock: clock.clone(),
            ..Config::default()
        },
    )
    .unwrap();
    std::fs::remove_file(&dir).unwrap();
    assert_visible(&loaded, b"at-end", true);
}
