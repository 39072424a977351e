//! Memory reclamation, measured with a counting global allocator: churn over a
//! fixed key set keeps memory within 2x of its steady state while readers run,
//! and dropping the map gives its memory back at once, with no help (no manual
//! flush of the epoch) and while another thread that wrote to it sits idle with
//! deferred frees of the map's garbage in its epoch bag.
//!
//! One test function, so that no other test of this binary allocates meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use mapcache::{Config, Map};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, LIVE};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const KEYS: u32 = 20_000;
const READERS: usize = 1;
/// What a dropped shard may leave behind until the deferred closures that name
/// it have run: its `ShardMemory` (the slab's per-class heads, the registry's
/// locks) and its `Arc` counts, about 1.4 KiB (`src/table/reclaim.rs`).
const SHARD_RESIDUE: isize = 2048;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:08}").into_bytes() // 12 bytes
}

/// The value churn writes for operation `n` and key `i`: mostly small entries
/// (slab blocks), every 16th key a large one (an allocation of its own).
fn value(n: u32, i: u32) -> Vec<u8> {
    let len = if i % 16 == 0 { 300 } else { 32 };
    n.to_le_bytes().repeat(len / 4)
}

fn churn(map: &Map, ops: std::ops::Range<u32>) -> isize {
    let mut peak = live();
    for n in ops {
        let i = n.wrapping_mul(2_654_435_761) % KEYS;
        if n % 3 == 0 {
            map.remove(&key(i)).unwrap();
            map.insert(&key(i), &value(n, i)).unwrap();
        } else {
            map.insert(&key(i), &value(n, i)).unwrap();
        }
        if n % 4096 == 0 {
            peak = peak.max(live());
        }
    }
    peak.max(live())
}

/// What one scenario measured: bytes live in the full map, at the churn's peak,
/// and right after the drop, each relative to before the map was made.
struct Measured {
    steady: isize,
    peak: isize,
    after_drop: isize,
    shards: usize,
}

/// One full scenario: fill; churn from this thread and from a second writer,
/// with readers running; the second writer then waits, idle, while this thread
/// drops the map and counts what is left.
fn scenario(churn_ops: u32) -> Measured {
    let before = live();
    let map = Arc::new(Map::new(Config::default()).unwrap());
    let shards = map.table_stats().shards;
    for i in 0..KEYS {
        map.insert(&key(i), &value(0, i)).unwrap();
    }
    let steady = live() - before;
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (map, done) = (Arc::clone(&map), Arc::clone(&done));
            thread::spawn(move || {
                let mut buf = Vec::with_capacity(512);
                let mut i = r as u32;
                while !done.load(Ordering::Relaxed) {
                    map.get_into(&key(i % KEYS), &mut buf).unwrap();
                    i = i.wrapping_add(7919);
                }
            })
        })
        .collect();
    // The second writer churns the other half, reports its peak, drops its
    // handle of the map, and idles until the drop has been measured: its epoch
    // bag keeps whatever deferred frees it made last.
    let (peak_tx, peak_rx) = mpsc::channel();
    let measured = Arc::new(Barrier::new(2));
    let idle_writer = {
        let (map, measured) = (Arc::clone(&map), Arc::clone(&measured));
        thread::spawn(move || {
            let peak = churn(&map, churn_ops / 2..churn_ops);
            drop(map);
            peak_tx.send(peak).unwrap();
            measured.wait();
        })
    };
    let mut peak = churn(&map, 0..churn_ops / 2);
    peak = peak.max(peak_rx.recv().unwrap());
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    let map = Arc::into_inner(map).expect("every other handle of the map is gone");
    drop(map);
    let after_drop = live() - before;
    measured.wait();
    idle_writer.join().unwrap();
    Measured {
        steady,
        peak: peak - before,
        after_drop,
        shards,
    }
}

#[test]
fn churn_stays_bounded_and_drop_frees_the_map_at_once() {
    // A warm-up run sizes the process-wide structures that outlive any one map
    // (the epoch's queues, the thread registry).
    scenario(10_000);

    let churn_ops = if std::env::var_os("MAPCACHE_STRESS").is_some() {
        50_000_000
    } else {
        5_000_000
    };
    let m = scenario(churn_ops);
    eprintln!(
        "steady {} B, peak during {churn_ops} churn ops {} B ({:.2}x), {} B left right after the drop",
        m.steady,
        m.peak,
        m.peak as f64 / m.steady as f64,
        m.after_drop
    );
    assert!(
        m.peak <= 2 * m.steady,
        "churn grew memory to {} B, more than 2x the steady {} B",
        m.peak,
        m.steady
    );
    let residue = m.shards as isize * SHARD_RESIDUE;
    assert!(
        m.after_drop <= residue,
        "dropping the map left {} B allocated (of {} B), more than the {residue} B its {} \
         shards' memory shells may hold until deferred frees run",
        m.after_drop,
        m.steady,
        m.shards
    );
}
