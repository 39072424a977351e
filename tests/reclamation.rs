//! Memory reclamation, measured with a counting global allocator: churn over a
//! fixed key set keeps memory within 2x of its steady state while readers run,
//! and dropping the map gives back every byte.
//!
//! One test function, so that no other test of this binary allocates meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// Lets the epoch advance until deferred frees have run: returns once live bytes
/// are at or below `target`, or have not moved for a while.
fn settle(target: isize) -> isize {
    let (mut last, mut unchanged) = (live(), 0);
    for _ in 0..100_000 {
        crossbeam_epoch::pin().flush();
        let now = live();
        if now <= target {
            return now;
        }
        unchanged = if now == last { unchanged + 1 } else { 0 };
        if unchanged >= 1_000 {
            break;
        }
        last = now;
        thread::yield_now();
    }
    live()
}

const KEYS: u32 = 20_000;
const READERS: usize = 1;

/// One full scenario: fill, churn with readers, drop. Returns (steady, peak).
fn scenario(churn_ops: u32) -> (isize, isize) {
    let map = Arc::new(Map::new(Config::default()).unwrap());
    let key = |i: u32| format!("key-{i:08}").into_bytes(); // 12 bytes
    for i in 0..KEYS {
        map.insert(&key(i), &[0u8; 32]).unwrap();
    }
    let steady = live();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (map, done) = (Arc::clone(&map), Arc::clone(&done));
            thread::spawn(move || {
                let mut buf = Vec::with_capacity(64);
                let mut i = r as u32;
                while !done.load(Ordering::Relaxed) {
                    map.get_into(format!("key-{:08}", i % KEYS).as_bytes(), &mut buf)
                        .unwrap();
                    i = i.wrapping_add(7919);
                }
            })
        })
        .collect();
    let mut peak = live();
    for n in 0..churn_ops {
        let i = n.wrapping_mul(2_654_435_761) % KEYS;
        if n % 3 == 0 {
            map.remove(&key(i)).unwrap();
            map.insert(&key(i), &[1u8; 32]).unwrap();
        } else {
            map.insert(&key(i), &n.to_le_bytes().repeat(8)).unwrap();
        }
        if n % 4096 == 0 {
            peak = peak.max(live());
        }
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    peak = peak.max(live());
    drop(map);
    (steady, peak)
}

#[test]
fn churn_stays_bounded_and_drop_frees_everything() {
    // A warm-up run sizes the process-wide structures that outlive any one map
    // (the epoch's queue, the thread registry) and gives the baseline.
    scenario(10_000);
    let baseline = settle(0);

    let churn_ops = if std::env::var_os("MAPCACHE_STRESS").is_some() {
        50_000_000
    } else {
        5_000_000
    };
    let (steady, peak) = scenario(churn_ops);
    let steady_map_bytes = steady - baseline;
    let peak_map_bytes = peak - baseline;
    eprintln!(
        "steady {steady_map_bytes} B, peak during {churn_ops} churn ops {peak_map_bytes} B ({:.2}x)",
        peak_map_bytes as f64 / steady_map_bytes as f64
    );
    assert!(
        peak_map_bytes <= 2 * steady_map_bytes,
        "churn grew memory to {peak_map_bytes} B, more than 2x the steady {steady_map_bytes} B"
    );

    let after = settle(baseline);
    assert!(
        after <= baseline,
        "dropping the map left {} bytes allocated",
        after - baseline
    );
}
