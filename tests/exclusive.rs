//! Exclusive mode: Go's "one writer at a time" contract, with overlaps reported
//! as errors that name both threads instead of crashing the process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mapcache::{Collision, Config, Error, Map, Mode};

fn exclusive(shards: usize) -> Arc<Map> {
    Arc::new(
        Map::new(Config {
            mode: Mode::Exclusive,
            shards,
            ..Config::default()
        })
        .unwrap(),
    )
}

#[path = "support/hold.rs"]
mod hold;

/// Runs `collide` on this thread (labelled "writer-2") while a thread labelled
/// "writer-1" holds the write flag for key `held`.
fn while_held<R>(map: &Arc<Map>, held: &[u8], collide: impl FnOnce(&Map) -> R) -> R {
    hold::while_held(map, held, ("writer-1", "writer-2"), || collide(map))
}

fn both_named() -> Collision {
    Collision {
        holder: "writer-1".into(),
        collider: "writer-2".into(),
    }
}

#[test]
fn overlapping_write_on_another_key_and_shard_fails_naming_both() {
    // 64 shards: "a" and "b" almost surely hash to different shards, and the
    // collision must be detected anyway.
    let map = exclusive(64);
    map.insert(b"b", b"before").unwrap();
    let error = while_held(&map, b"a", |map| map.insert(b"b", b"during")).unwrap_err();
    assert_eq!(error, Error::ConcurrentWrite(both_named()));
    assert_eq!(
        error.to_string(),
        "concurrent map writes: 'writer-2' collided with a write in progress by 'writer-1'"
    );
    // The failed write changed nothing; the flag is free again afterwards.
    assert_eq!(map.get(b"b").unwrap().as_deref(), Some(&b"before"[..]));
    assert!(map.insert(b"b", b"after").unwrap());
    assert_eq!(map.table_stats().misuses, 1);
}

#[test]
fn every_write_operation_detects_the_overlap() {
    let map = exclusive(4);
    map.insert(b"k", b"v").unwrap();
    type Op = fn(&Map) -> Result<(), Error>;
    let ops: [(&str, Op); 5] = [
        ("insert", |m| m.insert(b"k", b"x").map(drop)),
        ("remove", |m| m.remove(b"k").map(drop)),
        ("insert_if_absent", |m| {
            m.insert_if_absent(b"new", b"x").map(drop)
        }),
        ("compare_and_swap", |m| {
            m.compare_and_swap(b"k", b"v", b"x").map(drop)
        }),
        ("clear", |m| m.clear()),
    ];
    for (name, op) in ops {
        let result = while_held(&map, b"other", op);
        assert!(
            matches!(&result, Err(Error::ConcurrentWrite(c)) if *c == both_named()),
            "{name}: {result:?}"
        );
    }
    // get_or_insert_with reads first, and that read already overlaps the write.
    let result = while_held(&map, b"other", |m| m.get_or_insert_with(b"new", || b"x"));
    assert_eq!(result, Err(Error::ConcurrentReadWrite(both_named())));
    assert_eq!(map.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(map.len(), 1);
}

#[test]
fn read_during_a_write_is_reported() {
    let map = exclusive(4);
    map.insert(b"k", b"v").unwrap();
    let result = while_held(&map, b"k", |map| map.get(b"k"));
    assert_eq!(result, Err(Error::ConcurrentReadWrite(both_named())));
    assert!(result
        .unwrap_err()
        .to_string()
        .starts_with("concurrent map read and map write: 'writer-2'"));
    // Without the overlap the same read succeeds.
    assert_eq!(map.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn unlabelled_threads_are_named_by_default() {
    let map = exclusive(1);
    let holding = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let holder = {
        let (map, holding, release) =
            (Arc::clone(&map), Arc::clone(&holding), Arc::clone(&release));
        thread::Builder::new()
            .name("named-holder".into())
            .spawn(move || {
                let _flag = map.debug_hold_write_flag(b"a").unwrap();
                holding.wait();
                release.wait();
            })
            .unwrap()
    };
    holding.wait();
    let error = thread::spawn({
        let map = Arc::clone(&map);
        move || map.insert(b"b", b"v").unwrap_err()
    })
    .join()
    .unwrap();
    release.wait();
    holder.join().unwrap();
    let Error::ConcurrentWrite(collision) = error else {
        panic!("{error:?}")
    };
    assert_eq!(collision.holder, "named-holder");
    assert!(collision.collider.starts_with("thread "), "{collision:?}");
}

/// Ten million sequential operations from threads that take turns (so no two
/// ever overlap) never report a misuse.
#[test]
fn ten_million_sequential_operations_report_no_false_positive() {
    let map = exclusive(8);
    let turns = 4u32;
    let per_turn = 2_500_000u32;
    for turn in 0..turns {
        let map = Arc::clone(&map);
        // Each turn on a fresh thread, joined before the next starts.
        thread::spawn(move || {
            let mut buf = Vec::new();
            for i in 0..per_turn {
                let key = (i % 50_000).to_le_bytes();
                match i % 5 {
                    0 | 1 => drop(map.insert(&key, &turn.to_le_bytes()).unwrap()),
                    2 => drop(map.get_into(&key, &mut buf).unwrap()),
                    3 => drop(map.remove(&key).unwrap()),
                    _ => drop(map.contains_key(&key).unwrap()),
                }
            }
        })
        .join()
        .unwrap();
    }
    assert_eq!(map.table_stats().misuses, 0);
}

/// Two threads hammering writes without coordination: exclusive mode must catch
/// them (Go would crash with "fatal error: concurrent map writes"), and whatever
/// it let through must be intact.
///
/// Both keep writing until one of them is caught, however long the scheduler
/// keeps them apart: an overlap always comes (the two run on two cores at once,
/// or one is preempted while it holds the flag and the other writes), so the
/// bound is only ever reached by a build that misses the overlaps.
#[test]
fn unsynchronised_writers_are_caught() {
    const BOUND: Duration = Duration::from_secs(120);
    let map = exclusive(8);
    let start = Arc::new(Barrier::new(2));
    let caught = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + BOUND;
    let workers: Vec<_> = ["hammer-1", "hammer-2"]
        .into_iter()
        .map(|label| {
            let (map, start, caught) = (Arc::clone(&map), Arc::clone(&start), Arc::clone(&caught));
            thread::spawn(move || {
                mapcache::set_thread_label(label);
                start.wait();
                let mut collisions = Vec::new();
                for i in 0u64.. {
                    if caught.load(Ordering::Relaxed)
                        || (i % 1024 == 0 && Instant::now() > deadline)
                    {
                        break;
                    }
                    match map.insert(&((i % 1000) as u32).to_le_bytes(), label.as_bytes()) {
                        Ok(_) => {}
                        Err(Error::ConcurrentWrite(c)) => {
                            collisions.push(c);
                            caught.store(true, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                collisions
            })
        })
        .collect();
    let collisions: Vec<Collision> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        !collisions.is_empty(),
        "two unsynchronised writers were never caught in {BOUND:?}"
    );
    for c in &collisions {
        let mut pair = [c.holder.as_str(), c.collider.as_str()];
        pair.sort();
        assert_eq!(pair, ["hammer-1", "hammer-2"]);
    }
    for item in map.iter() {
        let (k, v) = item.unwrap();
        assert_eq!(k.len(), 4);
        assert!(v == b"hammer-1" || v == b"hammer-2");
    }
}
