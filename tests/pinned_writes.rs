//! Writes made while the writing thread is pinned itself (inside a read
//! callback, or while a `Pinned` view lives) must never wait for memory
//! reclamation: the thread's own pin holds the epoch back, so such a wait could
//! only run out of patience (20 ms an episode), stall the shard's other writers
//! meanwhile, and raise the shard's garbage limit for everyone.
//!
//! What a write costs is measured by what it did, not by a clock: the map counts
//! every write that waited for reclamation (`relief_waits`) and every wait that
//! gave up (`relief_give_ups`). A plain write that finds garbage over budget waits
//! and succeeds; a pinned one must not wait at all.
//!
//! One test function, so that no other test of this binary holds a pin while a
//! plain write's relief needs the epoch to advance.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;

use mapcache::{Config, Cursor, Map, TableStats};

/// Overwrites enough keys to retire many times a shard's garbage budget
/// (64 KiB): 20,000 overwrites of 56-byte entries retire about 1.1 MB.
fn churn(map: &Map) {
    for round in 0..10u32 {
        for i in 0..2_000u32 {
            map.insert(&i.to_le_bytes(), &[round as u8; 32]).unwrap();
        }
    }
}

fn fresh_map() -> Map {
    let map = Map::new(Config {
        shards: 1,
        ..Config::default()
    })
    .unwrap();
    for i in 0..2_000u32 {
        map.insert(&i.to_le_bytes(), &[0u8; 32]).unwrap();
    }
    map
}

fn waits(stats: &TableStats) -> (u64, u64) {
    (stats.relief_waits, stats.relief_give_ups)
}

/// Runs `pinned_churn` (which churns the map while this thread is pinned), checks
/// that no write waited, then that a plain write still relieves the garbage.
fn check(what: &str, pinned_churn: impl FnOnce(&Map)) {
    let map = fresh_map();
    pinned_churn(&map);
    assert_eq!(
        waits(&map.table_stats()),
        (0, 0),
        "{what}: a write made while pinned waited for reclamation"
    );
    // Unpinned now: the next write finds the garbage over budget, waits for the
    // epoch, and succeeds; the limit was not raised by the pinned writes.
    map.insert(b"plain", b"write").unwrap();
    let (waited, gave_up) = waits(&map.table_stats());
    assert_eq!(gave_up, 0, "{what}: the plain write gave up");
    assert_eq!(
        waited, 1,
        "{what}: the plain write did not relieve the garbage"
    );
}

#[test]
fn writes_made_while_pinned_never_wait_for_reclamation() {
    // The control: the same churn unpinned waits (and succeeds) now and then,
    // so the counters do see waits when there are any.
    let map = fresh_map();
    churn(&map);
    let (waited, gave_up) = waits(&map.table_stats());
    assert!(
        waited > 0,
        "unpinned churn never needed relief: the test proves nothing"
    );
    assert_eq!(gave_up, 0, "unpinned churn gave up waiting");

    check("get_with callback", |map| {
        map.get_with(&0u32.to_le_bytes(), |_| churn(map)).unwrap();
    });
    check("get_many_with callback", |map| {
        let key = 0u32.to_le_bytes();
        map.get_many_with([&key[..]], |_, _| churn(map));
    });
    check("scan callback", |map| {
        let mut cursor = Cursor::new();
        let mut done = false;
        map.scan(&mut cursor, |_, _| {
            if !std::mem::replace(&mut done, true) {
                churn(map);
            }
        })
        .unwrap();
    });
    check("Pinned view", |map| {
        let view = map.pin();
        assert!(view.contains_key(&0u32.to_le_bytes()).unwrap());
        churn(map);
        drop(view);
    });
    a_clear_waiting_for_a_flag_holds_no_pin();
}

/// A `clear` that waits for a shard's flag must not be pinned meanwhile: a pin
/// held while waiting would stop every map's reclamation (the epoch is the
/// library's), so another map's writers would wait in vain and give up.
fn a_clear_waiting_for_a_flag_holds_no_pin() {
    let held_map = fresh_map();
    let other = fresh_map();
    let (holding, release) = (Barrier::new(2), Barrier::new(2));
    let clearing = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let flag = held_map.debug_hold_write_flag(b"any").unwrap();
            holding.wait();
            release.wait();
            drop(flag);
        });
        holding.wait();
        let clearer = s.spawn(|| {
            clearing.store(true, Ordering::SeqCst);
            held_map.clear().unwrap();
        });
        while !clearing.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // The clearer now waits for the held flag. Churn another map until its
        // writers have needed relief a few times: each succeeded only if the
        // epoch could advance past the waiting clearer.
        while other.table_stats().relief_waits < 3 {
            churn(&other);
        }
        release.wait();
        clearer.join().unwrap();
    });
    assert_eq!(
        other.table_stats().relief_give_ups,
        0,
        "a clear waiting for a flag held the epoch back"
    );
    assert!(held_map.is_empty());
}
